//! The harness checked on its own, without cluster mode: the provider only allocates
//! (`--announcers=none`), and the test drives each announcer directly with
//! `ferrolb-announcer ctl announce`, then checks what a user on the LAN sees — the client's
//! neighbour entry, which node answers TCP, the routes at BIRD. If this test fails, the
//! cluster-mode test's failures say nothing about the provider.

use e2e as support;

use std::time::Duration;

use serde_json::json;
use support::client::tcp_hello;
use support::cluster::Cluster;
use support::kube::{ingress_ips, lb_service};
use support::provider::ProviderOptions;
use support::wait_for;

#[test]
fn announcers_driven_by_ctl_make_allocated_addresses_reachable_from_the_lan() {
    if !support::netns::prerequisites(
        "the e2e harness test",
        &["bird", "birdc", "kubectl", "ping"],
    ) {
        return;
    }
    let cluster = Cluster::start(&[ProviderOptions {
        cluster_mode: false,
        leader_elect: false,
        identity: "alloc-only".into(),
        metrics_port: 18080,
        extra_args: Vec::new(),
    }]);

    let services = [
        ("default", "l2-v4", json!({})),
        ("default", "l2-v6", json!({"ipFamilies": ["IPv6"]})),
        ("default", "vip-v4", json!({})),
        ("bgp", "bgp-v4", json!({})),
    ];
    let mut address = std::collections::HashMap::new();
    for (namespace, name, spec) in &services {
        cluster
            .kubectl
            .apply(&lb_service(namespace, name, json!({}), spec.clone()));
        let ip = wait_for(
            &format!("Service {namespace}/{name} to get an address (status.loadBalancer.ingress)"),
            Duration::from_secs(20),
            || {
                let ips = ingress_ips(&cluster.service(namespace, name));
                ips.first().cloned().ok_or_else(|| "no ingress".to_string())
            },
        );
        let event =
            support::checks::wait_event(&cluster, namespace, name, "AddressAllocated", &[&ip]);
        cluster.steps.log(&format!(
            "provider allocated {ip} to {namespace}/{name}; Event AddressAllocated {event:?}"
        ));
        address.insert(*name, ip);
    }

    // Layer 2 and vip: one node each, driven by hand.
    for (name, node, mode) in [
        ("l2-v4", "node-2", "layer2"),
        ("l2-v6", "node-3", "layer2"),
        ("vip-v4", "node-1", "vip"),
    ] {
        let ip = &address[name];
        cluster.ctl(node, &["announce", ip, "--mode", mode]);
        let client = cluster.host("client").clone();
        let greeting = wait_for(
            &format!("a TCP answer from {node} at {ip} ({mode})"),
            Duration::from_secs(10),
            || {
                let text = tcp_hello(&client, ip)?;
                (text == format!("You've hit {node}"))
                    .then_some(text.clone())
                    .ok_or(text)
            },
        );
        let mac = cluster.host(node).mac();
        let (seen, state) = client
            .neighbour(ip)
            .unwrap_or_else(|| panic!("client has no neighbour entry for {ip}"));
        assert_eq!(
            seen, mac,
            "client's MAC for {ip} ({state}) is not {node}'s eth0"
        );
        cluster.steps.log(&format!(
            "{mode} {ip} on {node}: client got {greeting:?}, neighbour {seen} = {node}'s MAC"
        ));
    }

    // The ping reader the no-flap scenarios use: 20 echo requests, none lost.
    let client = cluster.host("client").clone();
    let ping =
        support::client::Ping::start(&client, &address["l2-v4"], "0.05", 20, cluster.dir.path());
    let result = ping.finish(Duration::from_secs(15));
    assert_eq!(
        (result.transmitted, result.lost()),
        (20, 0),
        "ping of {} from the client",
        address["l2-v4"]
    );
    cluster.steps.log(&format!(
        "client pinged {}: lost {}/{}",
        address["l2-v4"],
        result.lost(),
        result.transmitted
    ));

    // BGP: every node advertises; BIRD holds one path per node and installs one.
    let ip = address["bgp-v4"].clone();
    for node in support::cluster::NODES {
        cluster.ctl(node, &["announce", &ip, "--mode", "bgp"]);
    }
    let expected: Vec<String> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        .map(String::from)
        .to_vec();
    let prefix = format!("{ip}/32");
    wait_for(
        &format!("BIRD to hold {prefix} via node-1..3"),
        Duration::from_secs(10),
        || {
            let hops = cluster.bird.next_hops(&prefix);
            (hops == expected).then_some(()).ok_or(format!("{hops:?}"))
        },
    );
    let router = cluster.host("router").clone();
    let greeting = wait_for(
        &format!("a TCP answer at {ip} from the router"),
        Duration::from_secs(10),
        || tcp_hello(&router, &ip),
    );
    cluster.steps.log(&format!(
        "bgp {prefix}: BIRD next hops {expected:?}; router got {greeting:?}"
    ));
    for node in support::cluster::NODES {
        cluster.ctl(node, &["withdraw", &ip]);
    }
    wait_for(
        &format!("{prefix} gone from BIRD"),
        Duration::from_secs(10),
        || {
            let hops = cluster.bird.next_hops(&prefix);
            hops.is_empty().then_some(()).ok_or(format!("{hops:?}"))
        },
    );
    cluster
        .steps
        .log(&format!("withdrawn: {prefix} gone from BIRD; harness OK"));
}
