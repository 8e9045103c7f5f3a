//! Cluster mode end to end, part 1: what a user on the LAN sees. The provider's leader drives
//! every node's announcer over mTLS gRPC; each test builds its own cluster in network
//! namespaces (the `e2e` library) and plays the issue's scenarios in sequence, logging each step with
//! the figures it saw:
//!
//! - every mode reachable, then withdrawn on delete: (a) layer2 IPv4, (b) IPv6 (NDP),
//!   (c) vip, (d) BGP /32 at BIRD from every node, (i) Service deleted;
//! - (e) `externalTrafficPolicy: Local` follows the application's EndpointSlice;
//! - (f) a shared address answered by exactly one node.
//!
//! Failover is in `cluster_failover.rs`, restarts and leader hand-over in `cluster_no_flap.rs`.

use e2e as support;

use serde_json::{Value, json};
use support::certs::AnnouncerTlsMode;
use support::checks::{
    CHANGE, host_prefix, wait_announced, wait_bgp, wait_event, wait_moved, wait_not_announced,
    wait_reachable_at, wait_single_owner, wait_withdrawn,
};
use support::client::{arp_responders, tcp_hello};
use support::cluster::{Cluster, NODES, POOL_BGP, POOL_GLOBAL};
use support::kube::{endpoint_slice, lb_service, pool_configmap};
use support::scenario::{
    cluster_with_provider, cluster_with_provider_tls, create_announced, ipv6_only, mode,
};
use support::wait_for;

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
        ipv6_only(),
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

    // The README's two commands that show which node answers for which address.
    let wide = cluster.kubectl.ok(&["get", "svc", "-o", "wide"], None);
    assert!(
        wide.lines()
            .any(|l| l.contains("vip-v4") && l.contains(&vip)),
        "kubectl get svc -o wide shows no EXTERNAL-IP {vip} for vip-v4:\n{wide}"
    );
    let columns = cluster.kubectl.ok(
        &[
            "get",
            "svc",
            "-A",
            "-o",
            r#"custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,EXTERNAL-IP:.status.loadBalancer.ingress[*].ip,ANNOUNCED:.status.conditions[?(@.type=="ferrolb.io/Announced")].message"#,
        ],
        None,
    );
    let answered = format!("{vip} by {vip_owner} (held in vip mode)");
    assert!(
        columns
            .lines()
            .any(|l| l.contains("vip-v4") && l.contains(&answered)),
        "the README's custom-columns command does not show {answered:?} for vip-v4:\n{columns}"
    );
    cluster
        .steps
        .log(&format!("README commands: vip-v4 {answered}"));

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
    let moved = wait_moved(&cluster, "default", "local", &ip, "node-2", "node-3");
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
