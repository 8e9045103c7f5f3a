//! OpenELB's walkthroughs (seeds 001 layer 2 and 002 vip), objects verbatim apart from the
//! addresses (192.168.0.x → 192.0.2.x): an Eip, a Deployment of two Pods on node-1 and
//! node-3, a Service with OpenELB's annotations. Then what the walkthrough checks:
//! `kubectl get svc` shows the address, the client's `ip neigh` maps it to the announcing
//! node's MAC, `curl` reaches both Pods with `externalTrafficPolicy: Cluster` and only the
//! announcing node's Pod with `Local`.

use std::collections::BTreeSet;

use crate::checks::{wait_single_owner, wait_single_owner_among};
use crate::client::tcp_hello_at;
use crate::wait_for;

use super::pods::{Deployment, ProxiedService};
use super::{Demo, ROLLOUT_KUBE_PROXY, STRICT_ARP};

/// Seed 001, step 1: kube-proxy in IPVS mode must stop answering ARP for every address it
/// holds (`strictARP`), so only FerroLB answers for load-balancer addresses.
pub fn strict_arp(demo: &mut Demo) {
    demo.report
        .section("Before layer 2 with kube-proxy in IPVS mode: strictARP (seed 001, step 1)");
    demo.shell(STRICT_ARP);
    demo.shell(ROLLOUT_KUBE_PROXY);
    let config = demo.kubectl(&[
        "get",
        "configmap",
        "kube-proxy",
        "-n",
        "kube-system",
        "-o",
        r#"jsonpath={.data.config\.conf}"#,
    ]);
    assert!(config.contains("strictARP: true"), "{config}");
    demo.report.say(
        "The demo's nodes behave like that already: they answer ARP only for their own \
         address (arp_ignore=1, arp_announce=2), as kube-proxy's strictARP makes them.",
    );
}

const LAYER2_EIP: &str = r#"apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: porter-layer2-eip
spec:
  address: 192.0.2.91-192.0.2.100
  interface: eth0
  protocol: layer2
"#;

const LAYER2_SERVICE: &str = r#"kind: Service
apiVersion: v1
metadata:
  name: porter-layer2-svc
  annotations:
    lb.kubesphere.io/v1alpha1: porter
    protocol.porter.kubesphere.io/v1alpha1: layer2
    eip.porter.kubesphere.io/v1alpha2: porter-layer2-eip
spec:
  selector:
    app: porter-layer2
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      targetPort: 8080
  externalTrafficPolicy: Cluster
"#;

const VIP_EIP: &str = r#"apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: vip-eip
spec:
  address: 192.0.2.91-192.0.2.100
  protocol: vip
"#;

const VIP_SERVICE: &str = r#"kind: Service
apiVersion: v1
metadata:
  name: vip-svc
  annotations:
    lb.kubesphere.io/v1alpha1: openelb
    protocol.openelb.kubesphere.io/v1alpha1: vip
    eip.openelb.kubesphere.io/v1alpha2: vip-eip
spec:
  selector:
    app: vip-openelb
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      targetPort: 8080
  externalTrafficPolicy: Cluster
"#;

/// The Deployment of the walkthroughs (two kubia Pods), for `app`.
fn deployment_yaml(app: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
        - image: luksa/kubia
          name: kubia
          ports:
            - containerPort: 8080
"#
    )
}

/// One walkthrough's objects and names.
struct Walkthrough<'a> {
    title: &'a str,
    eip_file: &'a str,
    eip: &'a str,
    eip_name: &'a str,
    app: &'a str,
    service_file: &'a str,
    service_yaml: &'a str,
    service: &'a str,
    /// The announcer's mode word (`layer2`, `vip`).
    mode: &'a str,
}

/// Seed 001: layer 2.
pub fn layer2(demo: &mut Demo) {
    play(
        demo,
        &Walkthrough {
            title: "OpenELB layer 2 (seed 001)",
            eip_file: "porter-layer2-eip.yaml",
            eip: LAYER2_EIP,
            eip_name: "porter-layer2-eip",
            app: "porter-layer2",
            service_file: "porter-layer2-svc.yaml",
            service_yaml: LAYER2_SERVICE,
            service: "porter-layer2-svc",
            mode: "layer2",
        },
    );
}

/// Seed 002: vip mode.
pub fn vip(demo: &mut Demo) {
    play(
        demo,
        &Walkthrough {
            title: "OpenELB vip mode (seed 002)",
            eip_file: "vip-eip.yaml",
            eip: VIP_EIP,
            eip_name: "vip-eip",
            app: "vip-openelb",
            service_file: "vip-svc.yaml",
            service_yaml: VIP_SERVICE,
            service: "vip-svc",
            mode: "vip",
        },
    );
}

fn play(demo: &mut Demo, w: &Walkthrough<'_>) {
    demo.report.section(w.title);
    demo.apply(w.eip_file, w.eip);
    demo.apply(&format!("{}.yaml", w.app), &deployment_yaml(w.app));
    // The Pods run on node-1 and node-3: with `Local` the address must leave a node
    // without a Pod (node-2 is where rendezvous hashing puts 192.0.2.91 among all three).
    let pod_nodes = ["node-1", "node-3"];
    let deployment = Deployment::start(&demo.cluster, "default", w.app, &pod_nodes);
    deployment.publish_endpoints(&demo.cluster, w.service);
    // No Pod objects exist (nothing schedules them): the stand-ins' placement is told, not
    // shown as kubectl output.
    demo.report.say(
        "The Deployment's two Pods are stand-ins (e2e-hello answering `You've hit <pod>` on \
         :8080 of its node), not Pod objects:",
    );
    demo.report.say(&deployment.placement());
    demo.apply(w.service_file, w.service_yaml);

    let ip = demo.external_ip("default", w.service);
    // The Eip's status, as seed 000 shows it (the address and the Service holding it).
    let kubectl = &demo.cluster.kubectl;
    wait_for(
        &format!("Eip {} to count the Service", w.eip_name),
        crate::checks::CHANGE,
        || {
            let status = kubectl.ok(
                &["get", "eip", w.eip_name, "-o", "jsonpath={.status}"],
                None,
            );
            status.contains("\"usage\":1").then_some(()).ok_or(status)
        },
    );
    demo.kubectl(&["get", "eip", w.eip_name, "-o", "jsonpath={.status}"]);
    let owner = wait_single_owner(&demo.cluster, &ip, w.mode, None);
    let service = demo.cluster.service("default", w.service);
    let proxied = ProxiedService::from_service(&service, &deployment)
        .unwrap_or_else(|e| panic!("{}: {e}", w.service));
    demo.kube_proxy.set(&demo.cluster, proxied);
    demo.report.say(&format!(
        "kube-proxy (stand-in) on every node now sends {ip}:80 to the Pods."
    ));
    if w.mode == "vip" {
        let host = demo.cluster.host(&owner).clone();
        let out = host.exec_ok(&["ip", "-4", "-br", "addr", "show", "dev", "eth0"]);
        demo.report
            .command(&owner, "ip -4 -br addr show dev eth0", &out);
        assert!(
            out.contains(&format!("{ip}/32")),
            "vip: {ip}/32 should be on {owner}'s eth0: {out}"
        );
    }
    show_neighbour(demo, &ip, &owner);
    show_arping(demo, &ip, &owner);
    let both: BTreeSet<String> = deployment.pods.iter().map(|p| p.name.clone()).collect();
    curl_until(
        demo,
        &ip,
        &both,
        "both Pods answer (externalTrafficPolicy: Cluster)",
    );

    // externalTrafficPolicy: Local: only nodes with a Pod may announce, and each node sends
    // traffic to its own Pods only.
    demo.kubectl(&[
        "patch",
        "svc",
        w.service,
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
    ]);
    let local_owner = wait_single_owner_among(&demo.cluster, &ip, w.mode, &pod_nodes);
    let service = demo.cluster.service("default", w.service);
    let proxied = ProxiedService::from_service(&service, &deployment)
        .unwrap_or_else(|e| panic!("{}: {e}", w.service));
    assert!(proxied.local_only, "the Service should say Local now");
    demo.kube_proxy.set(&demo.cluster, proxied);
    let local_pod: BTreeSet<String> = deployment
        .pods
        .iter()
        .filter(|p| p.node == local_owner)
        .map(|p| p.name.clone())
        .collect();
    show_neighbour(demo, &ip, &local_owner);
    curl_until(
        demo,
        &ip,
        &local_pod,
        &format!("only the Pod on {local_owner} answers (externalTrafficPolicy: Local)"),
    );

    if w.mode == "layer2" {
        demo.kubectl(&["get", "svc", "-A", "-o", "wide"]);
    }

    // Clean up for the next walkthrough (the two Eips share their range).
    demo.delete_services("default", &[w.service]);
    demo.kube_proxy.remove(&demo.cluster, &ip);
    demo.kubectl(&["delete", "eip", w.eip_name]);
    drop(deployment);
}

/// Pings the address from the client, shows `ip neigh` and checks the MAC is `owner`'s.
fn show_neighbour(demo: &mut Demo, ip: &str, owner: &str) {
    let client = demo.cluster.host("client").clone();
    let out = client.exec(&["ping", "-c", "1", "-W", "2", ip]);
    demo.report.say(&format!(
        "client$ ping -c 1 {ip}   ({})",
        if out.status.success() {
            "answered"
        } else {
            "no answer"
        }
    ));
    let mac = demo.cluster.host(owner).mac();
    wait_for(
        &format!("the client's neighbour entry for {ip} to be {owner}'s MAC {mac}"),
        crate::checks::CHANGE,
        || match client.neighbour(ip) {
            Some((lladdr, _)) if lladdr == mac => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let out = client.exec_ok(&["ip", "neigh", "show", ip]);
    demo.report
        .command("client", &format!("ip neigh show {ip}"), &out);
    let owner_ip = demo.cluster.host(owner).ipv4.clone();
    demo.report.say(&format!(
        "The MAC of {ip} is the MAC of {owner} ({owner_ip}): FerroLB mapped the Service \
         address to {owner}."
    ));
}

/// `arping -c 3 -I eth0 <ip>` from the client: every reply comes from `owner`'s MAC. The raw
/// output (with timings) is shown; the check is what is compared.
fn show_arping(demo: &mut Demo, ip: &str, owner: &str) {
    let client = demo.cluster.host("client").clone();
    let command = format!("arping -c 3 -I eth0 {ip}");
    let out = client.exec(&["arping", "-c", "3", "-I", "eth0", ip]);
    demo.report.shown_only(&format!(
        "client$ {command}\n{}",
        String::from_utf8_lossy(&out.stdout)
    ));
    let macs = crate::client::arp_responders(&client, ip);
    let mac = demo.cluster.host(owner).mac();
    assert_eq!(
        macs,
        vec![mac.clone()],
        "ARP for {ip} answered by {macs:?}, not {owner} alone"
    );
    demo.report.say(&format!(
        "arping: every reply for {ip} comes from {mac} ({owner}) alone."
    ));
}

/// Runs `curl http://<ip>/` from the client until the set of Pods answering over the
/// last four requests is `want`, then reports four requests.
fn curl_until(demo: &mut Demo, ip: &str, want: &BTreeSet<String>, what: &str) {
    let client = demo.cluster.host("client").clone();
    wait_for(
        &format!("{what}: curl {ip} answered by {want:?}"),
        crate::checks::CHANGE,
        || {
            let mut seen = BTreeSet::new();
            for _ in 0..4 {
                let text = tcp_hello_at(&client, ip, 80)?;
                seen.insert(text.trim_start_matches("You've hit ").to_string());
            }
            (seen == *want)
                .then_some(())
                .ok_or_else(|| format!("answered by {seen:?}"))
        },
    );
    // Four requests; the distinct answers are shown sorted (the order depends on where
    // kube-proxy's round robin stood).
    let url = format!("http://{ip}/");
    let mut answers = BTreeSet::new();
    for _ in 0..4 {
        let out = client.exec(&["curl", &url]);
        answers.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let shown: Vec<&str> = answers.iter().map(String::as_str).collect();
    demo.report.command(
        "client",
        &format!("for i in 1 2 3 4; do curl {url}; done | sort -u"),
        &shown.join("\n"),
    );
    let answered: BTreeSet<String> = answers
        .iter()
        .map(|a| a.trim_start_matches("You've hit ").to_string())
        .collect();
    assert_eq!(
        answered, *want,
        "{what}: curl {ip} answered by {answered:?}"
    );
    demo.report.say(&format!("{what}."));
}
