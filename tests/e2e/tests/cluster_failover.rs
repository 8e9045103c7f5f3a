//! Cluster mode end to end, part 2: failover. A node made NotReady or excluded (g) and an
//! announcer killed (h) move the addresses to another eligible node — IPv4 (gratuitous ARP),
//! IPv6 (unsolicited NA) and BGP (the node's paths leave BIRD) — and the condition and Events
//! say why.

use e2e as support;

use serde_json::json;
use support::checks::{
    wait_announced, wait_bgp, wait_moved, wait_not_announced, wait_reachable_at, wait_single_owner,
    wait_single_owner_among, wait_withdrawn,
};
use support::cluster::{Cluster, NODES};
use support::scenario::{cluster_with_provider, create_announced, ipv6_only, mode};

/// The Services both failover tests follow: a layer2 IPv4, a BGP and a layer2 IPv6 one;
/// returns their addresses.
fn layer2_bgp_and_ipv6(cluster: &Cluster) -> (String, String, String) {
    let (ip, _) = create_announced(cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let (ip6, _) = create_announced(cluster, "default", "web6", json!({}), ipv6_only(), "layer2");
    (ip, bgp, ip6)
}

#[test]
fn not_ready_or_excluded_node_loses_its_addresses() {
    let Some(cluster) = cluster_with_provider("the cluster-mode e2e test (NotReady, excluded)")
    else {
        return;
    };
    let (ip, bgp, ip6) = layer2_bgp_and_ipv6(&cluster);
    let first = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &first);
    wait_bgp(&cluster, &bgp, &NODES);
    // The IPv6 address lands wherever rendezvous hashing puts it; it must stay reachable
    // through every step, on an eligible node (unsolicited NA on takeover).
    let check_v6 = |allowed: &[&str]| -> String {
        let owner = wait_single_owner_among(&cluster, &ip6, "layer2", allowed);
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
    let moved = wait_moved(&cluster, "default", "web", &ip, &first, &second);
    assert!(
        moved.contains("not Ready"),
        "(g) the Moved Event should say {first} is not Ready: {moved:?}"
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
    let moved = wait_moved(&cluster, "default", "web", &ip, &second, &third);
    assert!(
        moved.contains("exclude-from-external-load-balancers"),
        "(g) the Moved Event should say {second} is labelled excluded: {moved:?}"
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
    let (ip, bgp, ip6) = layer2_bgp_and_ipv6(&cluster);
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
    let moved = wait_moved(&cluster, "default", "web", &ip, &victim, &heir);
    assert!(
        moved.contains("unreachable"),
        "(h) the Moved Event should say {victim}'s announcer is unreachable: {moved:?}"
    );
    let survivors: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    wait_bgp(&cluster, &bgp, &survivors);
    let heir6 = wait_single_owner_among(&cluster, &ip6, "layer2", &survivors);
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
    let moved = wait_moved(&cluster, "default", "web6", &ip6, &owner6, &heir6);
    assert!(
        moved.contains("unreachable"),
        "(h) the Moved Event should say {owner6}'s announcer is unreachable: {moved:?}"
    );
    cluster.restart_announcer(&owner6);
    wait_bgp(&cluster, &bgp, &NODES);
    cluster.steps.log(&format!(
        "(h) announcer on {owner6} killed → IPv6 {ip6} moved to {heir6}; client got {greeting:?}, \
         neighbour {mac}; Event Moved {moved:?}; restarted → BGP via node-1..3 again"
    ));
}
