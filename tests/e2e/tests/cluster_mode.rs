//! Cluster mode end to end: the provider's leader drives every node's announcer over mTLS
//! gRPC, and a client on the LAN (and the BGP router) see the result. Each test builds its own
//! cluster in network namespaces (support/), starts the provider with `--announcers=cluster`,
//! and plays the issue's scenarios in sequence, logging each step with the figures it saw:
//!
//! - every mode reachable, then withdrawn on delete: (a) layer2 IPv4, (b) IPv6 (NDP),
//!   (c) vip, (d) BGP /32 at BIRD from every node, (i) Service deleted;
//! - (e) `externalTrafficPolicy: Local` follows the application's EndpointSlice;
//! - (f) a shared address answered by exactly one node;
//! - (g) a node made NotReady or excluded: the address moves, the condition and an Event say why;
//! - (h) an announcer killed: the address moves; restarted, it is re-synced;
//! - (j) the provider restarted, and a leader hand-over: no flap (zero ping loss, `since` unchanged).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::certs::AnnouncerTlsMode;
use support::checks::{
    CHANGE, host_prefix, snapshot, wait_announced, wait_bgp, wait_event, wait_not_announced,
    wait_reachable_at, wait_single_owner, wait_withdrawn,
};
use support::client::{Ping, arp_responders, tcp_hello};
use support::cluster::{Cluster, NODES, POOL_BGP, POOL_GLOBAL, ProviderOptions};
use support::kube::{endpoint_slice, lb_service, pool_configmap};
use support::wait_for;

/// What the tests run besides `ip`: the router, kubectl, and the client's ping and arping.
const TOOLS: &[&str] = &["bird", "birdc", "kubectl", "ping", "arping"];

/// A cluster with one provider in cluster mode (provider-managed TLS), or None (with a
/// message) when this machine cannot run it and CI is not set.
fn cluster_with_provider(test: &str) -> Option<Cluster> {
    cluster_with_provider_tls(test, support::cluster::ANNOUNCER_TLS)
}

fn cluster_with_provider_tls(test: &str, tls: AnnouncerTlsMode) -> Option<Cluster> {
    if !support::netns::prerequisites(test, TOOLS) {
        return None;
    }
    Some(Cluster::start_with_tls(
        tls,
        &[provider("p1", false, 18080)],
    ))
}

fn provider(identity: &str, leader_elect: bool, metrics_port: u16) -> ProviderOptions {
    ProviderOptions {
        cluster_mode: true,
        leader_elect,
        identity: identity.into(),
        metrics_port,
    }
}

fn ipv6_only() -> Value {
    json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"]})
}

fn mode(mode: &str) -> Value {
    json!({"ferrolb.io/mode": mode})
}

/// Creates a LoadBalancer Service and waits until it is announced; returns its first address
/// and the condition message.
fn create_announced(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    annotations: Value,
    spec: Value,
    mode_word: &str,
) -> (String, String) {
    cluster
        .kubectl
        .apply(&lb_service(namespace, name, annotations, spec));
    let seen = wait_announced(
        cluster,
        namespace,
        name,
        &format!("message naming mode {mode_word} (any case)"),
        |s| s.message.to_lowercase().contains(mode_word),
    );
    (seen.ips[0].clone(), seen.message)
}

/// (a), (b), (c) for one Service: exactly one node announces it, the condition names that
/// node, the client reaches it, an Event `Announced` says so.
fn check_single_node_service(
    cluster: &Cluster,
    label: &str,
    name: &str,
    annotations: Value,
    spec: Value,
    mode_word: &str,
) -> (String, String) {
    let (ip, message) = create_announced(cluster, "default", name, annotations, spec, mode_word);
    let owner = wait_single_owner(cluster, &ip, mode_word, None);
    assert!(
        message.contains(&owner),
        "{label}: condition message {message:?} does not name the node announcing {ip}, {owner}"
    );
    let (greeting, mac) = wait_reachable_at(cluster, &ip, &owner);
    let mut arp_note = String::new();
    if !ip.contains(':') {
        let responders = arp_responders(cluster.host("client"), &ip);
        assert_eq!(
            responders,
            vec![mac.clone()],
            "{label}: ARP for {ip} should be answered by {owner} ({mac}) alone"
        );
        arp_note = format!("; arping answered by {mac} alone");
    }
    let event = wait_event(cluster, "default", name, "Announced", &[&ip]);
    cluster.steps.log(&format!(
        "{label}: default/{name} {ip} announced by {owner} only (ctl state of all 3 nodes); \
         client got {greeting:?} and holds {ip} at {mac} ({owner}'s eth0){arp_note}; \
         condition {message:?}; Event Announced {event:?}"
    ));
    (ip, owner)
}

#[test]
fn every_mode_is_reachable_from_the_lan_and_withdrawn_when_the_service_is_deleted() {
    // Bring-your-own-CA TLS here (--announcer-tls=files); the other tests use managed mode.
    let Some(cluster) = cluster_with_provider_tls(
        "the cluster-mode e2e test (every mode)",
        AnnouncerTlsMode::Files,
    ) else {
        return;
    };
    let (l2_v4, _) = check_single_node_service(
        &cluster,
        "(a) layer2 IPv4",
        "l2-v4",
        json!({}),
        json!({}),
        "layer2",
    );
    let (l2_v6, _) = check_single_node_service(
        &cluster,
        "(b) layer2 IPv6 (NDP)",
        "l2-v6",
        json!({}),
        json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"]}),
        "layer2",
    );
    let (vip, vip_owner) =
        check_single_node_service(&cluster, "(c) vip", "vip-v4", mode("vip"), json!({}), "vip");
    let on_eth0 = cluster
        .host(&vip_owner)
        .exec_ok(&["ip", "-br", "addr", "show", "dev", "eth0"]);
    assert!(
        on_eth0.contains(&format!("{vip}/32")),
        "(c) vip: {vip}/32 is not on {vip_owner}'s eth0: {on_eth0}"
    );
    cluster
        .steps
        .log(&format!("(c) vip: {vip}/32 is on {vip_owner}'s eth0"));

    // (d) BGP: every eligible node advertises; BIRD holds one path per node. The OpenELB
    // annotation selects the mode too.
    let (bgp, message) = create_announced(&cluster, "bgp", "bgp-v4", mode("bgp"), json!({}), "bgp");
    wait_bgp(&cluster, &bgp, &NODES);
    for node in NODES {
        assert!(
            message.contains(node),
            "(d) bgp: condition message {message:?} does not name {node}"
        );
    }
    let router = cluster.host("router").clone();
    let greeting = wait_for(
        &format!("the router's TCP connection to {bgp}:80 answered"),
        CHANGE,
        || tcp_hello(&router, &bgp),
    );
    let (openelb, _) = create_announced(
        &cluster,
        "bgp",
        "bgp-openelb",
        json!({"protocol.openelb.kubesphere.io/v1alpha1": "bgp"}),
        json!({}),
        "bgp",
    );
    wait_bgp(&cluster, &openelb, &NODES);
    cluster.steps.log(&format!(
        "(d) bgp: bgp/bgp-v4 {} at BIRD via node-1..3 (ctl state: bgp on all 3); router got \
         {greeting:?}; condition {message:?}; OpenELB-annotated bgp/bgp-openelb {openelb} too",
        host_prefix(&bgp)
    ));

    // (i) Deleted: withdrawn everywhere.
    for (namespace, name, ip) in [
        ("default", "l2-v4", &l2_v4),
        ("default", "l2-v6", &l2_v6),
        ("default", "vip-v4", &vip),
        ("bgp", "bgp-v4", &bgp),
        ("bgp", "bgp-openelb", &openelb),
    ] {
        cluster.kubectl.delete("service", namespace, name);
        wait_withdrawn(&cluster, ip);
        wait_for(
            &format!("Service {namespace}/{name} gone (finalizer released)"),
            CHANGE,
            || match cluster.kubectl.get("service", Some(namespace), name) {
                None => Ok(()),
                Some(s) => Err(format!("still there: {}", s["metadata"])),
            },
        );
    }
    let vip_left = cluster
        .host(&vip_owner)
        .exec_ok(&["ip", "-br", "addr", "show", "dev", "eth0"]);
    assert!(
        !vip_left.contains(&format!("{vip}/32")),
        "(i) {vip}/32 still on {vip_owner}'s eth0 after delete: {vip_left}"
    );
    for node in NODES {
        let left = cluster.announced(node).expect("ctl state");
        assert!(left.is_empty(), "(i) {node} still announces {left:?}");
    }
    cluster.steps.log(
        "(i) all five Services deleted: every ctl state empty, BIRD routes gone, vip address off eth0",
    );
}

#[test]
fn etp_local_address_follows_the_ready_endpoint() {
    let Some(cluster) = cluster_with_provider("the cluster-mode e2e test (ETP Local)") else {
        return;
    };
    let slice = |endpoints: &[(&str, &str, bool)]| {
        endpoint_slice("default", "local", "IPv4", "http", 80, endpoints)
    };
    // No endpoint yet: allocated, not announced, and no ingress shown.
    cluster.kubectl.apply(&lb_service(
        "default",
        "local",
        json!({}),
        json!({"externalTrafficPolicy": "Local"}),
    ));
    let waiting = wait_not_announced(&cluster, "default", "local", "NoReadyEndpoints");
    assert!(
        waiting.ips.is_empty(),
        "(e) ETP Local: ingress {:?} shown before any node announces it",
        waiting.ips
    );
    cluster.steps.log(&format!(
        "(e) ETP Local: no endpoint yet → False NoReadyEndpoints {:?}, no ingress",
        waiting.message
    ));
    cluster
        .kubectl
        .apply(&slice(&[("node-2", "203.0.113.2", true)]));
    let seen = wait_announced(&cluster, "default", "local", "naming node-2", |s| {
        s.message.contains("node-2")
    });
    let (ip, message) = (seen.ips[0].clone(), seen.message);
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    assert_eq!(
        owner, "node-2",
        "(e) ETP Local: {ip} is announced by {owner}, but only node-2 has a ready endpoint ({message})"
    );
    let (greeting, _) = wait_reachable_at(&cluster, &ip, "node-2");
    cluster.steps.log(&format!(
        "(e) ETP Local: endpoint on node-2 → {ip} announced by node-2 only; client got {greeting:?}"
    ));

    cluster
        .kubectl
        .apply(&slice(&[("node-3", "203.0.113.3", true)]));
    let owner = wait_single_owner(&cluster, &ip, "layer2", Some("node-2"));
    assert_eq!(
        owner, "node-3",
        "(e) ETP Local: endpoint moved to node-3 but {ip} went to {owner}"
    );
    let (greeting, mac) = wait_reachable_at(&cluster, &ip, "node-3");
    let moved = wait_event(&cluster, "default", "local", "Moved", &["node-2", "node-3"]);
    assert!(
        moved.contains("ready endpoint"),
        "(e) ETP Local: the Moved Event should say why {ip} left node-2 (it has no ready \
         endpoint of default/local any more), but says: {moved:?}"
    );
    let seen = wait_announced(&cluster, "default", "local", "naming node-3", |s| {
        s.message.contains("node-3")
    });
    cluster.steps.log(&format!(
        "(e) ETP Local: endpoint moved to node-3 → {ip} moved to node-3; client got {greeting:?}, \
         neighbour {mac}; Event Moved {moved:?}; condition {:?}",
        seen.message
    ));

    cluster
        .kubectl
        .apply(&slice(&[("node-3", "203.0.113.3", false)]));
    let seen = wait_not_announced(&cluster, "default", "local", "NoReadyEndpoints");
    wait_withdrawn(&cluster, &ip);
    cluster.steps.log(&format!(
        "(e) ETP Local: no ready endpoint → withdrawn everywhere; condition False NoReadyEndpoints {:?}",
        seen.message
    ));
}

#[test]
fn shared_address_is_answered_by_exactly_one_node() {
    let Some(cluster) = cluster_with_provider("the cluster-mode e2e test (shared address)") else {
        return;
    };
    cluster.kubectl.apply(&pool_configmap(&[
        ("range-global", POOL_GLOBAL),
        ("range-bgp", POOL_BGP),
        ("allow-share-global", "true"),
    ]));
    let shared = "192.0.2.110";
    let request = json!({"kube-vip.io/loadbalancerIPs": shared});
    let (http_ip, http_msg) = create_announced(
        &cluster,
        "default",
        "shared-http",
        request.clone(),
        json!({}),
        "layer2",
    );
    let (https_ip, https_msg) = create_announced(
        &cluster,
        "default",
        "shared-https",
        request,
        json!({"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}),
        "layer2",
    );
    assert_eq!(
        (http_ip.as_str(), https_ip.as_str()),
        (shared, shared),
        "(f) both Services should hold the requested shared address"
    );
    let owner = wait_single_owner(&cluster, shared, "layer2", None);
    for message in [&http_msg, &https_msg] {
        assert!(
            message.contains(&owner),
            "(f) condition {message:?} does not name {owner}, the node announcing {shared}"
        );
    }
    let (greeting, mac) = wait_reachable_at(&cluster, shared, &owner);
    let responders = arp_responders(cluster.host("client"), shared);
    assert_eq!(
        responders,
        vec![mac.clone()],
        "(f) ARP for {shared} should be answered by {owner} ({mac}) alone"
    );
    cluster.steps.log(&format!(
        "(f) shared {shared} (TCP/80 + TCP/443): announced by {owner} only (ctl state of all 3 \
         nodes); client got {greeting:?}, neighbour {mac}, ARP answered by {mac} alone"
    ));

    cluster.kubectl.delete("service", "default", "shared-http");
    let still = wait_single_owner(&cluster, shared, "layer2", None);
    assert_eq!(
        still, owner,
        "(f) deleting one sharer moved {shared} from {owner} to {still}"
    );
    cluster.kubectl.delete("service", "default", "shared-https");
    wait_withdrawn(&cluster, shared);
    cluster.steps.log(&format!(
        "(f) one sharer deleted: {shared} stays on {owner}; both deleted: withdrawn"
    ));
}

#[test]
fn not_ready_or_excluded_node_loses_its_addresses() {
    let Some(cluster) = cluster_with_provider("the cluster-mode e2e test (NotReady, excluded)")
    else {
        return;
    };
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let (ip6, _) = create_announced(
        &cluster,
        "default",
        "web6",
        json!({}),
        ipv6_only(),
        "layer2",
    );
    let first = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &first);
    wait_bgp(&cluster, &bgp, &NODES);
    // The IPv6 address lands wherever rendezvous hashing puts it; it must stay reachable
    // through every step, on an eligible node (unsolicited NA on takeover).
    let check_v6 = |allowed: &[&str]| -> String {
        let owner = support::checks::wait_single_owner_among(&cluster, &ip6, "layer2", allowed);
        wait_reachable_at(&cluster, &ip6, &owner);
        format!("IPv6 {ip6} on {owner}, reachable")
    };
    cluster
        .steps
        .log(&format!("(g) start: {ip} on {first}; {}", check_v6(&NODES)));
    let others = |gone: &[&str]| -> Vec<&str> {
        NODES
            .iter()
            .copied()
            .filter(|n| !gone.contains(n))
            .collect()
    };

    // NotReady.
    cluster.set_node_ready(&first, false);
    let second = wait_single_owner(&cluster, &ip, "layer2", Some(&first));
    let (greeting, mac) = wait_reachable_at(&cluster, &ip, &second);
    let moved = wait_event(
        &cluster,
        "default",
        "web",
        "Moved",
        &[&first, &second, "not Ready"],
    );
    let seen = wait_announced(
        &cluster,
        "default",
        "web",
        &format!("naming {second}"),
        |s| s.message.contains(&second),
    );
    wait_bgp(&cluster, &bgp, &others(&[&first]));
    cluster.steps.log(&format!(
        "(g) {first} NotReady → {ip} moved to {second}; client got {greeting:?}, neighbour {mac}; \
         Event Moved {moved:?}; condition {:?}; BGP {bgp} now via {:?}; {}",
        seen.message,
        others(&[&first]),
        check_v6(&others(&[&first]))
    ));

    // Excluded.
    let label = "node.kubernetes.io/exclude-from-external-load-balancers=true";
    cluster.kubectl.ok(&["label", "node", &second, label], None);
    let third = wait_single_owner(&cluster, &ip, "layer2", Some(&second));
    assert_ne!(third, first, "(g) {ip} went back to NotReady {first}");
    let (greeting, mac) = wait_reachable_at(&cluster, &ip, &third);
    let moved = wait_event(
        &cluster,
        "default",
        "web",
        "Moved",
        &[&second, &third, "exclude-from-external-load-balancers"],
    );
    wait_bgp(&cluster, &bgp, &[third.as_str()]);
    cluster.steps.log(&format!(
        "(g) {second} labelled excluded → {ip} moved to {third}; client got {greeting:?}, \
         neighbour {mac}; Event Moved {moved:?}; BGP {bgp} now via [{third}]; {}",
        check_v6(&[third.as_str()])
    ));

    // Nobody left.
    cluster.set_node_ready(&third, false);
    let seen = wait_not_announced(&cluster, "default", "web", "NoEligibleNode");
    for (node, why) in [
        (&first, "not Ready"),
        (&second, "exclude-from-external-load-balancers"),
        (&third, "not Ready"),
    ] {
        assert!(
            seen.message.contains(&format!("{node}: ")) && seen.message.contains(why),
            "(g) NoEligibleNode message should say {node}: …{why}…: {:?}",
            seen.message
        );
    }
    let bgp_seen = wait_not_announced(&cluster, "bgp", "route", "NoEligibleNode");
    wait_withdrawn(&cluster, &ip);
    wait_withdrawn(&cluster, &bgp);
    wait_withdrawn(&cluster, &ip6);
    cluster.steps.log(&format!(
        "(g) {third} NotReady too → withdrawn everywhere (IPv4, IPv6, BGP); conditions False NoEligibleNode {:?} / {:?}",
        seen.message, bgp_seen.message
    ));

    // Back.
    cluster.set_node_ready(&first, true);
    let back = wait_single_owner(&cluster, &ip, "layer2", None);
    assert_eq!(
        back, first,
        "(g) only {first} is eligible again, but {ip} is on {back}"
    );
    wait_reachable_at(&cluster, &ip, &first);
    wait_bgp(&cluster, &bgp, &[first.as_str()]);
    cluster.steps.log(&format!(
        "(g) {first} Ready again → {ip} back on {first}, BGP via [{first}]; {}",
        check_v6(&[first.as_str()])
    ));
}

#[test]
fn killed_announcer_loses_its_addresses_and_is_resynced_on_restart() {
    let Some(mut cluster) = cluster_with_provider("the cluster-mode e2e test (announcer killed)")
    else {
        return;
    };
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let (ip6, _) = create_announced(
        &cluster,
        "default",
        "web6",
        json!({}),
        ipv6_only(),
        "layer2",
    );
    let victim = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &victim);
    wait_bgp(&cluster, &bgp, &NODES);
    let owner6 = wait_single_owner(&cluster, &ip6, "layer2", None);
    wait_reachable_at(&cluster, &ip6, &owner6);

    // SIGKILL. The kubelet's readiness probe needs seconds to notice; the provider must see
    // the broken connection itself (docs/cluster-mode.md, "Failure behaviour").
    cluster.kill_announcer(&victim);
    let heir = wait_single_owner(&cluster, &ip, "layer2", Some(&victim));
    let (greeting, mac) = wait_reachable_at(&cluster, &ip, &heir);
    let moved = wait_event(&cluster, "default", "web", "Moved", &[&victim, &heir]);
    assert!(
        moved.contains("unreachable"),
        "(h) the Moved Event should say {victim}'s announcer is unreachable: {moved:?}"
    );
    let survivors: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    wait_bgp(&cluster, &bgp, &survivors);
    let heir6 = support::checks::wait_single_owner_among(&cluster, &ip6, "layer2", &survivors);
    wait_reachable_at(&cluster, &ip6, &heir6);
    // Then the kubelet marks the endpoint not ready; nothing else changes.
    cluster.set_announcer_endpoint_ready(&victim, false);
    let still = wait_single_owner(&cluster, &ip, "layer2", Some(&victim));
    assert_eq!(
        still, heir,
        "(h) {ip} moved again, to {still}, when the endpoint turned not ready"
    );
    cluster.steps.log(&format!(
        "(h) announcer on {victim} killed → {ip} moved to {heir}; client got {greeting:?}, \
         neighbour {mac}; Event Moved {moved:?}; BGP {bgp} via {survivors:?}; IPv6 {ip6} \
         {owner6} → {heir6}, reachable"
    ));

    // Restarted (empty state): the provider re-sends its set.
    cluster.restart_announcer(&victim);
    cluster.set_announcer_endpoint_ready(&victim, true);
    wait_bgp(&cluster, &bgp, &NODES);
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    cluster.steps.log(&format!(
        "(h) announcer on {victim} restarted → re-synced: BGP {bgp} via node-1..3 again; {ip} on {owner}"
    ));

    // The same for the IPv6 address's owner: NDP takeover (unsolicited NA) on the heir.
    let owner6 = wait_single_owner(&cluster, &ip6, "layer2", None);
    cluster.kill_announcer(&owner6);
    let heir6 = wait_single_owner(&cluster, &ip6, "layer2", Some(&owner6));
    let (greeting, mac) = wait_reachable_at(&cluster, &ip6, &heir6);
    let moved = wait_event(
        &cluster,
        "default",
        "web6",
        "Moved",
        &[&owner6, &heir6, "unreachable"],
    );
    cluster.restart_announcer(&owner6);
    wait_bgp(&cluster, &bgp, &NODES);
    cluster.steps.log(&format!(
        "(h) announcer on {owner6} killed → IPv6 {ip6} moved to {heir6}; client got {greeting:?}, \
         neighbour {mac}; Event Moved {moved:?}; restarted → BGP via node-1..3 again"
    ));
}

/// (j) The addresses of `before`'s Services, in every node's ctl state, unchanged: same
/// nodes, same phase, same `since`.
fn assert_no_withdraw(
    cluster: &Cluster,
    before: &[(String, Vec<support::cluster::Announced>)],
    what: &str,
) {
    let after = snapshot(cluster);
    for ((node, old), (_, new)) in before.iter().zip(&after) {
        let new: Vec<_> = new
            .iter()
            .filter(|a| old.iter().any(|o| o.address == a.address))
            .cloned()
            .collect();
        assert_eq!(
            old, &new,
            "{what}: {node}'s ctl state changed (a withdraw or re-announce): before {old:?}, after {new:?}"
        );
    }
}

/// Pings `ip` from the client 400 times at 50 ms while `disturb` runs; returns the result.
fn ping_through(
    cluster: &mut Cluster,
    ip: &str,
    disturb: impl FnOnce(&mut Cluster),
) -> support::client::PingResult {
    let client = cluster.host("client").clone();
    let ping = Ping::start(&client, ip, "0.05", 400, cluster.dir.path());
    let log = cluster
        .dir
        .path()
        .join(format!("ping-{}.log", ip.replace([':', '.'], "_")));
    wait_for(
        &format!("the client's ping of {ip} to get 20 replies before the disturbance"),
        Duration::from_secs(15),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let replies = text.lines().filter(|l| l.contains("bytes from")).count();
            (replies >= 20)
                .then_some(())
                .ok_or(format!("{replies} replies"))
        },
    );
    disturb(cluster);
    ping.finish(Duration::from_secs(60))
}

#[test]
fn provider_restart_does_not_flap() {
    let Some(mut cluster) = cluster_with_provider("the cluster-mode e2e test (provider restart)")
    else {
        return;
    };
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    wait_bgp(&cluster, &bgp, &NODES);
    let before = snapshot(&cluster);
    let generations_before = cluster.generations();

    let result = ping_through(&mut cluster, &ip, |cluster| {
        cluster.stop_provider("p1", false);
        cluster.steps.log("(j) provider p1 stopped (SIGTERM)");
        cluster.start_provider(&provider("p1-again", false, 18080));
        // The new process drives the announcers: a Service created now gets announced.
        let (after_ip, _) =
            create_announced(cluster, "default", "after", json!({}), json!({}), "layer2");
        wait_single_owner(cluster, &after_ip, "layer2", None);
        cluster.steps.log(&format!(
            "(j) provider restarted; new Service default/after {after_ip} announced"
        ));
    });
    wait_bgp(&cluster, &bgp, &NODES);
    assert_no_withdraw(&cluster, &before, "(j) provider restart");
    let events = cluster.kubectl.events_for("Service", "default", "web");
    assert!(
        !events.iter().any(|(reason, _)| reason == "Moved"),
        "(j) provider restart moved {ip}: {events:?}"
    );
    assert_eq!(
        result.lost(),
        0,
        "(j) provider restart: ping {ip} lost {}/{}",
        result.lost(),
        result.transmitted
    );
    cluster.steps.log(&format!(
        "(j) provider restart: ping {ip} lost {}/{}; every ctl state unchanged (same since); \
         BGP {bgp} via node-1..3 throughout; Sync generations {generations_before:?} → {:?}",
        result.lost(),
        result.transmitted,
        cluster.generations()
    ));
}

#[test]
fn leader_handover_does_not_flap() {
    if !support::netns::prerequisites("the cluster-mode e2e test (leader hand-over)", TOOLS) {
        return;
    }
    let mut cluster = Cluster::start(&[provider("a", true, 18081), provider("b", true, 18082)]);
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    wait_bgp(&cluster, &bgp, &NODES);
    let holder = |cluster: &Cluster| -> Result<String, String> {
        let lease = cluster
            .kubectl
            .get("lease", Some("kube-system"), "ferrolb-provider")
            .ok_or("no Lease kube-system/ferrolb-provider")?;
        lease["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no holder: {}", lease["spec"]))
    };
    let leader = wait_for("a Lease holder", CHANGE, || holder(&cluster));
    let standby = if leader == "a" { "b" } else { "a" };
    let before = snapshot(&cluster);
    let generations_before = cluster.generations();

    let result = ping_through(&mut cluster, &ip, |cluster| {
        // A crash: the Lease is not released; the standby waits for it to expire.
        cluster.stop_provider(&leader, true);
        cluster.steps.log(&format!(
            "(j) leader {leader} killed (SIGKILL); standby {standby}"
        ));
        wait_for(
            &format!("Lease kube-system/ferrolb-provider held by {standby}"),
            CHANGE,
            || {
                let now = holder(cluster)?;
                (now == standby).then_some(()).ok_or(now)
            },
        );
        let (after_ip, _) =
            create_announced(cluster, "default", "after", json!({}), json!({}), "layer2");
        wait_single_owner(cluster, &after_ip, "layer2", None);
        cluster.steps.log(&format!(
            "(j) {standby} leads; new Service default/after {after_ip} announced"
        ));
    });
    wait_bgp(&cluster, &bgp, &NODES);
    assert_no_withdraw(&cluster, &before, "(j) leader hand-over");
    assert_eq!(
        result.lost(),
        0,
        "(j) leader hand-over: ping {ip} lost {}/{}",
        result.lost(),
        result.transmitted
    );
    cluster.steps.log(&format!(
        "(j) leader hand-over {leader} → {standby}: ping {ip} lost {}/{}; every ctl state \
         unchanged (same since); BGP {bgp} via node-1..3 throughout; Sync generations \
         {generations_before:?} → {:?}",
        result.lost(),
        result.transmitted,
        cluster.generations()
    ));
}
