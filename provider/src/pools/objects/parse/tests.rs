//! Every kind's object, as the seeds write it, read into an [`ObjectPool`]; and each field a
//! schema cannot check, refused with a sentence naming it.

use serde_json::json;

use super::*;
use crate::pools::objects::Block;

fn cidr(text: &str) -> Block {
    Block::Cidr(text.parse().expect("test CIDR"))
}

fn range(start: &str, stop: &str) -> Block {
    Block::Range(
        start.parse().expect("test address"),
        stop.parse().expect("test address"),
    )
}

#[test]
fn the_cilium_seed_pool_reads_every_block_form() {
    let pool = cilium(&json!({
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": "blue-pool", "uid": "u1", "generation": 2,
                     "creationTimestamp": "2026-12-02T05:00:00Z"},
        "spec": {"blocks": [
            {"cidr": "198.51.100.0/24"},
            {"cidr": "2001:db8:4::/64"},
            {"start": "203.0.113.100", "stop": "203.0.113.200"},
            {"start": "192.0.2.4"},
        ]},
    }));
    assert_eq!(
        pool.blocks,
        [
            cidr("198.51.100.0/24"),
            cidr("2001:db8:4::/64"),
            range("203.0.113.100", "203.0.113.200"),
            range("192.0.2.4", "192.0.2.4"),
        ]
    );
    assert_eq!(pool.meta.name, "blue-pool");
    assert_eq!(pool.meta.generation, 2);
    assert!(pool.meta.created > 0);
    assert!(
        !pool.skip_first_last,
        "Cilium 1.16 uses every address by default"
    );
    assert!(pool.problems.is_empty(), "{:?}", pool.problems);
    assert_eq!(pool.pool_name(), "cilium/blue-pool");
}

#[test]
fn allow_first_last_no_skips_the_ends_of_cidrs_only() {
    let pool = cilium(&json!({
        "metadata": {"name": "p"},
        "spec": {"allowFirstLastIPs": "No", "blocks": [
            {"cidr": "198.51.100.0/24"}, {"cidr": "198.51.100.254/31"},
            {"start": "192.0.2.0", "stop": "192.0.2.9"}]},
    }));
    let ranges: Vec<String> = pool
        .blocks
        .iter()
        .filter_map(|b| b.usable(pool.skip_first_last))
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        ranges,
        [
            "198.51.100.1-198.51.100.254",
            "198.51.100.254-198.51.100.255",
            "192.0.2.0-192.0.2.9"
        ]
    );
}

#[test]
fn the_openelb_seed_eip_reads_as_a_layer2_pool_for_openelb_services() {
    let pool = eip(&json!({
        "apiVersion": "network.kubesphere.io/v1alpha2",
        "kind": "Eip",
        "metadata": {"name": "porter-layer2-eip"},
        "spec": {"address": "192.0.2.91-192.0.2.100", "interface": "eth0", "protocol": "layer2"},
    }));
    assert_eq!(pool.blocks, [range("192.0.2.91", "192.0.2.100")]);
    assert_eq!(pool.mode, Some(Mode::Layer2));
    assert_eq!(pool.interface.as_deref(), Some("eth0"));
    assert!(pool.openelb_only && !pool.disabled);
    assert_eq!(pool.priority, 0);
}

#[test]
fn an_eip_defaults_to_bgp_and_takes_one_address_a_cidr_or_can_reach() {
    let one = eip(&json!({"metadata": {"name": "a"}, "spec": {"address": "192.0.2.100"}}));
    assert_eq!(one.blocks, [range("192.0.2.100", "192.0.2.100")]);
    assert_eq!(one.mode, Some(Mode::Bgp));
    let net = eip(&json!({
        "metadata": {"name": "b", "annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
        "spec": {"address": "198.51.100.0/24", "protocol": "vip",
                 "interface": "can_reach:198.51.100.1", "disable": true,
                 "namespaces": ["tenant-a"]},
    }));
    assert_eq!(net.blocks, [cidr("198.51.100.0/24")]);
    assert_eq!(net.mode, Some(Mode::Vip));
    assert_eq!(net.interface.as_deref(), Some("can_reach:198.51.100.1"));
    assert!(net.disabled);
    assert_eq!(net.priority, 1, "the default Eip is tried first");
    assert!(net.service_selector.is_some());
}

#[test]
fn a_lbpool_reads_every_field() {
    let pool = lbpool(&json!({
        "metadata": {"name": "rack-1"},
        "spec": {
            "blocks": [{"cidr": "203.0.113.0/28"}],
            "serviceSelector": {"matchLabels": {"tier": "web"}},
            "disabled": true, "mode": "bgp", "interface": "eth1",
            "nodeSelector": {"matchLabels": {"rack": "1"}},
            "bgp": {"communities": ["65000:100", "no-export"],
                    "largeCommunities": ["65000:1:2"], "localPreference": 200},
            "searchOrder": "Descending", "priority": 10,
        },
    }));
    assert!(pool.problems.is_empty(), "{:?}", pool.problems);
    assert!(pool.disabled && pool.service_selector.is_some() && pool.node_selector.is_some());
    assert_eq!(pool.mode, Some(Mode::Bgp));
    assert_eq!(pool.search_order, SearchOrder::Descending);
    assert_eq!(pool.priority, 10);
    assert_eq!(pool.bgp.communities, ["65000:100", "no-export"]);
    assert_eq!(pool.bgp.large_communities, ["65000:1:2"]);
    assert_eq!(pool.bgp.local_preference, Some(200));
}

#[test]
fn fields_a_schema_cannot_check_are_refused_by_name_and_the_rest_counts() {
    let table: &[(serde_json::Value, &str)] = &[
        (
            json!({"blocks": [{"cidr": "192.0.2.1/24"}]}),
            "spec.blocks[0]: cidr: `192.0.2.1/24` has host bits set; the network is 192.0.2.0/24",
        ),
        (
            json!({"blocks": [{"start": "192.0.2.9", "stop": "192.0.2.1"}]}),
            "spec.blocks[0]: 192.0.2.9-192.0.2.1 ends before it starts",
        ),
        (
            json!({"blocks": [{"start": "192.0.2.1", "stop": "2001:db8::1"}]}),
            "spec.blocks[0]: 192.0.2.1-2001:db8::1 mixes IPv4 and IPv6",
        ),
        (
            json!({"blocks": [{"stop": "192.0.2.1"}]}),
            "spec.blocks[0]: needs `cidr` or `start` (and optionally `stop`)",
        ),
        (
            json!({"bgp": {"communities": ["65000"]}}),
            "spec.bgp.communities[0]: `65000` is not a community (ASN:value with two 16-bit numbers, or a well-known name such as no-export)",
        ),
        (
            json!({"bgp": {"largeCommunities": ["1:2"]}}),
            "spec.bgp.largeCommunities[0]: `1:2` is not a large community (three 32-bit numbers, global:data1:data2)",
        ),
        (
            json!({"interface": "can_reach:nowhere"}),
            "spec.interface: `can_reach:nowhere`: `nowhere` is not an IP address",
        ),
        (
            json!({"mode": "ospf"}),
            "spec.mode: `ospf` is not layer2, vip or bgp",
        ),
    ];
    for (spec, problem) in table {
        let mut spec = spec.clone();
        match spec["blocks"].as_array_mut() {
            Some(blocks) => blocks.push(json!({"cidr": "198.51.100.0/30"})),
            None => spec["blocks"] = json!([{"cidr": "198.51.100.0/30"}]),
        }
        let pool = lbpool(&json!({"metadata": {"name": "p"}, "spec": spec}));
        assert_eq!(pool.problems, [*problem], "spec {spec}");
        assert!(
            pool.blocks.contains(&cidr("198.51.100.0/30")),
            "the good block still counts: {spec}"
        );
    }
}

#[test]
fn a_selector_that_cannot_be_read_selects_nothing() {
    let pool = lbpool(&json!({
        "metadata": {"name": "p"},
        "spec": {"blocks": [], "serviceSelector": {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}},
    }));
    let labels = std::collections::BTreeMap::new();
    let selector = pool.service_selector.expect("a selector");
    assert!(!selector.matches(crate::pools::objects::Subject {
        labels: &labels,
        namespace: Some("default"),
        name: Some("svc"),
    }));
    assert_eq!(pool.problems.len(), 1);
}
