//! Behaviour tests of the allocator: one test per rule of the issue, plus every failure reason.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::pools::{PoolSet, parse_config};

mod properties;

pub(super) fn pools(entries: &[(&str, &str)]) -> PoolSet {
    let data: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let parsed = parse_config("kube-system/kubevip", &data);
    assert_eq!(parsed.errors, vec![], "test ConfigMap must be valid");
    parsed.pools
}

pub(super) fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| ip(t)).collect()
}

fn key(namespace: &str, name: &str) -> ServiceKey {
    ServiceKey::new(namespace, name)
}

fn req(namespace: &str, name: &str) -> ServiceRequest {
    ServiceRequest::new(key(namespace, name))
}

fn dual(
    namespace: &str,
    name: &str,
    policy: FamilyPolicy,
    families: &[IpFamily],
) -> ServiceRequest {
    ServiceRequest {
        family_policy: policy,
        families: families.to_vec(),
        ..req(namespace, name)
    }
}

fn asking(namespace: &str, name: &str, requested: &[&str]) -> ServiceRequest {
    ServiceRequest {
        requested: requested.iter().map(|s| (*s).to_owned()).collect(),
        ..req(namespace, name)
    }
}

fn with_ports(namespace: &str, name: &str, ports: &[(Protocol, u16)]) -> ServiceRequest {
    ServiceRequest {
        ports: ports.to_vec(),
        ..req(namespace, name)
    }
}

fn addresses(allocator: &mut Allocator, request: &ServiceRequest) -> Vec<IpAddr> {
    match allocator.allocate(request) {
        Ok(allocation) => allocation.addresses,
        Err(error) => panic!("allocation of {} failed: {error}", request.key),
    }
}

fn failure(allocator: &mut Allocator, request: &ServiceRequest) -> AllocationError {
    match allocator.allocate(request) {
        Ok(allocation) => panic!(
            "{} unexpectedly got {:?}",
            request.key, allocation.addresses
        ),
        Err(error) => error,
    }
}

#[test]
fn first_free_address_ascending_skips_dot_zero() {
    let mut allocator = Allocator::new(pools(&[("cidr-default", "192.0.2.0/24")]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.1"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("default", "b")),
        ips(&["192.0.2.2"])
    );
}

#[test]
fn descending_order_starts_at_the_top_and_skips_dot_255() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-default", "192.0.2.0/24"),
        ("search-order", "desc"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.254"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("default", "b")),
        ips(&["192.0.2.253"])
    );
}

#[test]
fn avoid_buggy_ips_false_hands_out_dot_zero_and_dot_255() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-default", "192.0.2.0/24"),
        ("avoid-buggy-ips", "false"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.0"])
    );
    let mut allocator = Allocator::new(pools(&[
        ("cidr-default", "192.0.2.0/24"),
        ("avoid-buggy-ips-default", "false"),
        ("search-order-default", "desc"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.255"])
    );
}

#[test]
fn skip_end_ips_in_cidr_skips_network_and_broadcast_even_without_avoid_buggy() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-default", "192.0.2.0/25"),
        ("avoid-buggy-ips", "false"),
        ("skip-end-ips-in-cidr", "true"),
        ("search-order", "desc"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.126"])
    );
}

#[test]
fn avoided_addresses_are_skipped_across_range_boundaries() {
    // 198.51.100.254, then .255 and 198.51.101.0 are avoided.
    let mut allocator = Allocator::new(pools(&[("range-default", "198.51.100.254-198.51.101.2")]));
    let got: Vec<IpAddr> = (0..3)
        .flat_map(|i| addresses(&mut allocator, &req("default", &format!("s{i}"))))
        .collect();
    assert_eq!(
        got,
        ips(&["198.51.100.254", "198.51.101.1", "198.51.101.2"])
    );
    let error = failure(&mut allocator, &req("default", "s3"));
    assert_eq!(error.reason(), "OutOfAddresses");
}

#[test]
fn prefer_dual_stack_follows_ip_families_order_as_in_the_kube_vip_example() {
    let pools = pools(&[(
        "range-default",
        "192.168.0.10-192.168.0.11,2001::10-2001::11",
    )]);
    let mut allocator = Allocator::new(pools);
    let v6_first = dual(
        "default",
        "my-service",
        FamilyPolicy::PreferDualStack,
        &[IpFamily::V6, IpFamily::V4],
    );
    assert_eq!(
        addresses(&mut allocator, &v6_first),
        ips(&["2001::10", "192.168.0.10"])
    );
    let v4_first = dual(
        "default",
        "other",
        FamilyPolicy::PreferDualStack,
        &[IpFamily::V4, IpFamily::V6],
    );
    assert_eq!(
        addresses(&mut allocator, &v4_first),
        ips(&["192.168.0.11", "2001::11"])
    );
}

#[test]
fn prefer_dual_stack_succeeds_with_one_family() {
    let mut allocator = Allocator::new(pools(&[(
        "range-default",
        "192.0.2.1-192.0.2.2,2001:db8::1-2001:db8::1",
    )]));
    let first = dual(
        "default",
        "a",
        FamilyPolicy::PreferDualStack,
        &[IpFamily::V6, IpFamily::V4],
    );
    assert_eq!(
        addresses(&mut allocator, &first),
        ips(&["2001:db8::1", "192.0.2.1"])
    );
    let second = dual(
        "default",
        "b",
        FamilyPolicy::PreferDualStack,
        &[IpFamily::V6, IpFamily::V4],
    );
    assert_eq!(addresses(&mut allocator, &second), ips(&["192.0.2.2"]));
    let v4_only = Allocator::new(pools(&[("cidr-default", "192.0.2.0/30")]))
        .allocate(&dual("default", "c", FamilyPolicy::PreferDualStack, &[]))
        .map(|a| a.addresses);
    assert_eq!(v4_only, Ok(ips(&["192.0.2.1"])));
}

#[test]
fn require_dual_stack_gets_both_or_nothing() {
    let mut allocator = Allocator::new(pools(&[(
        "range-default",
        "192.0.2.1-192.0.2.2,2001:db8::1-2001:db8::1",
    )]));
    let a = dual(
        "default",
        "a",
        FamilyPolicy::RequireDualStack,
        &[IpFamily::V4, IpFamily::V6],
    );
    assert_eq!(
        addresses(&mut allocator, &a),
        ips(&["192.0.2.1", "2001:db8::1"])
    );
    let b = dual(
        "default",
        "b",
        FamilyPolicy::RequireDualStack,
        &[IpFamily::V4, IpFamily::V6],
    );
    let error = failure(&mut allocator, &b);
    assert_eq!(error.reason(), "OutOfAddresses");
    assert_eq!(
        error.to_string(),
        "Service default/b: pool `default` has no free IPv6 address"
    );
    // The IPv4 address it took on the way was given back.
    assert_eq!(
        addresses(&mut allocator, &req("default", "c")),
        ips(&["192.0.2.2"])
    );

    let mut v4_only = Allocator::new(pools(&[("cidr-default", "192.0.2.0/30")]));
    let error = failure(
        &mut v4_only,
        &dual("default", "d", FamilyPolicy::RequireDualStack, &[]),
    );
    assert_eq!(error.reason(), "FamilyUnavailable");
    assert_eq!(
        error.to_string(),
        "Service default/d: pool `default` has no IPv6 addresses but the Service requires one"
    );
}

#[test]
fn single_stack_takes_ip_families_first_entry_or_ipv4() {
    let mut allocator = Allocator::new(pools(&[(
        "range-default",
        "192.0.2.1-192.0.2.9,2001:db8::1-2001:db8::9",
    )]));
    assert_eq!(
        addresses(&mut allocator, &req("default", "a")),
        ips(&["192.0.2.1"])
    );
    let v6 = dual("default", "b", FamilyPolicy::SingleStack, &[IpFamily::V6]);
    assert_eq!(addresses(&mut allocator, &v6), ips(&["2001:db8::1"]));
    let mut v6_pool = Allocator::new(pools(&[("cidr-default", "2001:db8::/64")]));
    assert_eq!(
        addresses(&mut v6_pool, &req("default", "c")),
        ips(&["2001:db8::"])
    );
    let error = failure(
        &mut v6_pool,
        &dual("default", "d", FamilyPolicy::SingleStack, &[IpFamily::V4]),
    );
    assert_eq!(error.reason(), "FamilyUnavailable");
}

#[test]
fn big_pools_work_without_expanding_them() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-eight", "10.0.0.0/8"),
        ("cidr-site", "2001:db8:1::/48"),
        ("cidr-lan", "2001:db8::/64"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("eight", "a")),
        ips(&["10.0.0.1"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("site", "a")),
        ips(&["2001:db8:1::"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("lan", "a")),
        ips(&["2001:db8::"])
    );
    let stats = allocator.pool_stats();
    let eight = stats
        .iter()
        .find(|s| s.pool == "eight")
        .expect("stats of eight");
    assert_eq!(
        (eight.size, eight.used, eight.free),
        ((1 << 24) - 2 * 65536, 1, (1 << 24) - 2 * 65536 - 1)
    );
    let lan = stats
        .iter()
        .find(|s| s.pool == "lan")
        .expect("stats of lan");
    assert_eq!((lan.size, lan.used), (1u128 << 64, 1));
}

#[test]
fn overlapping_namespace_pools_never_give_an_address_twice() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-a", "192.0.2.0/30"),
        ("range-b", "192.0.2.1-192.0.2.3"),
    ]));
    assert_eq!(
        addresses(&mut allocator, &req("a", "x")),
        ips(&["192.0.2.1"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("b", "x")),
        ips(&["192.0.2.2"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("a", "y")),
        ips(&["192.0.2.3"])
    );
    assert_eq!(
        failure(&mut allocator, &req("b", "y")).reason(),
        "OutOfAddresses"
    );
    allocator.release(&key("a", "x"));
    assert_eq!(
        addresses(&mut allocator, &req("b", "y")),
        ips(&["192.0.2.1"])
    );
}

#[test]
fn requested_addresses_are_validated_and_reserved() {
    let mut allocator = Allocator::new(pools(&[(
        "range-web",
        "192.0.2.10-192.0.2.20,2001:db8::10-2001:db8::20",
    )]));
    // loadBalancerIP repeats the annotation's first address; duplicates collapse.
    let both = ServiceRequest {
        requested: vec!["192.0.2.15".into(), " 2001:db8::15 , 192.0.2.15".into()],
        ..dual(
            "web",
            "a",
            FamilyPolicy::PreferDualStack,
            &[IpFamily::V6, IpFamily::V4],
        )
    };
    assert_eq!(
        addresses(&mut allocator, &both),
        ips(&["2001:db8::15", "192.0.2.15"])
    );
    assert_eq!(
        addresses(&mut allocator, &asking("web", "b", &["", "192.0.2.20"])),
        ips(&["192.0.2.20"])
    );

    let table: &[(ServiceRequest, &str)] = &[
        (
            asking("web", "c", &["192.0.2.300"]),
            "Service web/c: requested addresses `192.0.2.300` for pool `web`: `192.0.2.300` is not an IP address",
        ),
        (
            asking("web", "c", &["192.0.2.11,,192.0.2.12"]),
            "Service web/c: requested addresses `192.0.2.11,,192.0.2.12` for pool `web`: item 2 of \
             `192.0.2.11,,192.0.2.12` is empty",
        ),
        (
            asking("web", "c", &["198.51.100.1"]),
            "Service web/c: requested address 198.51.100.1 is not in pool `web`",
        ),
        (
            asking("web", "c", &["192.0.2.15"]),
            "Service web/c: address 192.0.2.15 in pool `web` is already allocated to Service web/a",
        ),
        (
            asking("web", "c", &["192.0.2.11,192.0.2.12"]),
            "Service web/c: requested addresses `192.0.2.11,192.0.2.12` for pool `web`: more than \
             one IPv4 address requested",
        ),
        (
            asking("web", "c", &["192.0.2.11,2001:db8::11"]),
            "Service web/c: requested addresses `192.0.2.11,2001:db8::11` for pool `web`: a \
             SingleStack Service takes one address",
        ),
        (
            ServiceRequest {
                requested: vec!["2001:db8::11".into()],
                ..dual("web", "c", FamilyPolicy::SingleStack, &[IpFamily::V4])
            },
            "Service web/c: requested addresses `2001:db8::11` for pool `web`: 2001:db8::11 is \
             IPv6 but the Service asks for IPv4 only",
        ),
        (
            ServiceRequest {
                requested: vec!["192.0.2.11".into()],
                ..dual(
                    "web",
                    "c",
                    FamilyPolicy::RequireDualStack,
                    &[IpFamily::V4, IpFamily::V6],
                )
            },
            "Service web/c: requested addresses `192.0.2.11` for pool `web`: a RequireDualStack \
             Service needs one IPv4 and one IPv6 address",
        ),
        (
            asking("nowhere", "c", &["192.0.2.11"]),
            "Service nowhere/c: no address pool for namespace `nowhere` (none of `cidr-nowhere`, \
             `range-nowhere`, `cidr-global`, `range-global` is set)",
        ),
    ];
    for (request, message) in table {
        let error = failure(&mut allocator, request);
        assert_eq!(error.to_string(), *message);
    }
    // None of the failures reserved anything.
    assert_eq!(allocator.allocation(&key("web", "c")), None);
    assert_eq!(
        addresses(&mut allocator, &req("web", "d")),
        ips(&["192.0.2.10"])
    );
    assert_eq!(
        addresses(&mut allocator, &asking("web", "e", &["192.0.2.11"])),
        ips(&["192.0.2.11"])
    );
}

#[test]
fn every_failure_has_its_reason_name() {
    let mut allocator = Allocator::new(pools(&[("range-web", "192.0.2.1-192.0.2.1")]));
    addresses(&mut allocator, &req("web", "a"));
    let cases = [
        (req("other", "b"), "NoPool"),
        (req("web", "b"), "OutOfAddresses"),
        (asking("web", "b", &["192.0.2.1"]), "AlreadyAllocated"),
        (asking("web", "b", &["192.0.2.2"]), "NotInPool"),
        (
            dual("web", "b", FamilyPolicy::SingleStack, &[IpFamily::V6]),
            "FamilyUnavailable",
        ),
        (asking("web", "b", &["web.example"]), "InvalidRequest"),
    ];
    for (request, reason) in cases {
        assert_eq!(
            failure(&mut allocator, &request).reason(),
            reason,
            "{request:?}"
        );
    }
}

#[test]
fn sharing_joins_addresses_whose_protocol_and_port_pairs_do_not_overlap() {
    let mut allocator = Allocator::new(pools(&[
        ("range-dns", "192.0.2.1-192.0.2.9,2001:db8::1-2001:db8::9"),
        ("allow-share-dns", "true"),
    ]));
    let tcp = with_ports("dns", "tcp", &[(Protocol::Tcp, 53)]);
    let udp = with_ports("dns", "udp", &[(Protocol::Udp, 53)]);
    let tcp2 = with_ports("dns", "tcp2", &[(Protocol::Tcp, 53)]);
    let portless = req("dns", "portless");
    assert_eq!(addresses(&mut allocator, &tcp), ips(&["192.0.2.1"]));
    assert_eq!(addresses(&mut allocator, &udp), ips(&["192.0.2.1"]));
    assert_eq!(addresses(&mut allocator, &tcp2), ips(&["192.0.2.2"]));
    assert_eq!(addresses(&mut allocator, &portless), ips(&["192.0.2.3"]));
    let shared = |a: &Allocator, name: &str| a.allocation(&key("dns", name)).map(|x| x.shared);
    assert_eq!(shared(&allocator, "tcp"), Some(true));
    assert_eq!(shared(&allocator, "udp"), Some(true));
    assert_eq!(shared(&allocator, "tcp2"), Some(false));
    // A Service without ports neither joins nor is joined.
    let http = with_ports("dns", "http", &[(Protocol::Tcp, 80)]);
    assert_eq!(addresses(&mut allocator, &http), ips(&["192.0.2.1"]));
    assert_eq!(
        addresses(&mut allocator, &asking("dns", "late", &[])),
        ips(&["192.0.2.4"])
    );
    allocator.release(&key("dns", "udp"));
    allocator.release(&key("dns", "http"));
    assert_eq!(shared(&allocator, "tcp"), Some(false));

    // IPv6 shares the same way.
    let v6 = |name: &str, proto| ServiceRequest {
        ports: vec![(proto, 443)],
        ..dual("dns", name, FamilyPolicy::SingleStack, &[IpFamily::V6])
    };
    assert_eq!(
        addresses(&mut allocator, &v6("v6a", Protocol::Tcp)),
        ips(&["2001:db8::1"])
    );
    assert_eq!(
        addresses(&mut allocator, &v6("v6b", Protocol::Udp)),
        ips(&["2001:db8::1"])
    );
    assert_eq!(
        addresses(&mut allocator, &v6("v6c", Protocol::Tcp)),
        ips(&["2001:db8::2"])
    );
}

#[test]
fn sharing_picks_the_highest_shareable_address_with_descending_order() {
    let mut allocator = Allocator::new(pools(&[
        ("range-dns", "192.0.2.1-192.0.2.9"),
        ("allow-share-dns", "true"),
        ("search-order-dns", "desc"),
    ]));
    let a = with_ports("dns", "a", &[(Protocol::Tcp, 80)]);
    let b = with_ports("dns", "b", &[(Protocol::Tcp, 80)]);
    let c = with_ports("dns", "c", &[(Protocol::Tcp, 443)]);
    assert_eq!(addresses(&mut allocator, &a), ips(&["192.0.2.9"]));
    assert_eq!(addresses(&mut allocator, &b), ips(&["192.0.2.8"]));
    assert_eq!(addresses(&mut allocator, &c), ips(&["192.0.2.9"]));
}

#[test]
fn requested_address_can_be_shared_only_without_port_clash() {
    let mut allocator = Allocator::new(pools(&[
        ("range-web", "192.0.2.1-192.0.2.9"),
        ("allow-share-global", "true"),
    ]));
    let web = with_ports("web", "a", &[(Protocol::Tcp, 443)]);
    addresses(&mut allocator, &web);
    let clash = ServiceRequest {
        requested: vec!["192.0.2.1".into()],
        ..with_ports("web", "b", &[(Protocol::Tcp, 443)])
    };
    assert_eq!(
        failure(&mut allocator, &clash).to_string(),
        "Service web/b: address 192.0.2.1 in pool `web` is already allocated to Service web/a and their ports overlap"
    );
    let fine = ServiceRequest {
        requested: vec!["192.0.2.1".into()],
        ..with_ports("web", "c", &[(Protocol::Udp, 443)])
    };
    assert_eq!(addresses(&mut allocator, &fine), ips(&["192.0.2.1"]));
}

#[test]
fn allocate_is_idempotent_and_a_changed_request_keeps_addresses_that_still_fit() {
    let mut allocator = Allocator::new(pools(&[(
        "range-web",
        "192.0.2.1-192.0.2.9,2001:db8::1-2001:db8::9",
    )]));
    let first = allocator.allocate(&req("web", "a"));
    assert_eq!(allocator.allocate(&req("web", "a")), first);
    addresses(&mut allocator, &req("web", "b"));
    allocator.release(&key("web", "b"));
    // Ports changed: same address. Families changed: the IPv4 address stays, IPv6 is added.
    let ported = with_ports("web", "a", &[(Protocol::Tcp, 80)]);
    assert_eq!(addresses(&mut allocator, &ported), ips(&["192.0.2.1"]));
    let dual_stack = ServiceRequest {
        family_policy: FamilyPolicy::PreferDualStack,
        families: vec![IpFamily::V6, IpFamily::V4],
        ..ported
    };
    assert_eq!(
        addresses(&mut allocator, &dual_stack),
        ips(&["2001:db8::1", "192.0.2.1"])
    );
    // A request that now fails releases the old addresses (documented choice).
    let error = failure(&mut allocator, &asking("web", "a", &["198.51.100.1"]));
    assert_eq!(error.reason(), "NotInPool");
    assert_eq!(allocator.allocation(&key("web", "a")), None);
    assert_eq!(
        addresses(&mut allocator, &req("web", "z")),
        ips(&["192.0.2.1"])
    );
}

#[test]
fn allocate_release_allocate_is_stable() {
    let mut allocator = Allocator::new(pools(&[("cidr-web", "192.0.2.0/24")]));
    for name in ["a", "b", "c"] {
        addresses(&mut allocator, &req("web", name));
    }
    assert_eq!(allocator.release(&key("web", "b")), ips(&["192.0.2.2"]));
    assert_eq!(allocator.release(&key("web", "b")), Vec::<IpAddr>::new());
    assert_eq!(
        addresses(&mut allocator, &req("web", "b")),
        ips(&["192.0.2.2"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("web", "d")),
        ips(&["192.0.2.4"])
    );
}

#[test]
fn dhcp_pools_give_every_service_0_0_0_0_and_track_nothing() {
    let mut allocator = Allocator::new(pools(&[("cidr-lab", "0.0.0.0/32")]));
    assert_eq!(
        addresses(&mut allocator, &req("lab", "a")),
        ips(&["0.0.0.0"])
    );
    assert_eq!(
        addresses(&mut allocator, &req("lab", "b")),
        ips(&["0.0.0.0"])
    );
    assert_eq!(
        addresses(&mut allocator, &asking("lab", "c", &["0.0.0.0"])),
        ips(&["0.0.0.0"])
    );
    assert_eq!(
        failure(&mut allocator, &asking("lab", "d", &["192.0.2.1"])).reason(),
        "NotInPool"
    );
    assert_eq!(allocator.pool_stats(), vec![]);
    assert_eq!(allocator.space.iter().count(), 0);
    assert_eq!(allocator.release(&key("lab", "a")), ips(&["0.0.0.0"]));
}

fn adoption(namespace: &str, name: &str, held: &[&str], created: i64) -> Adoption {
    Adoption {
        request: asking(namespace, name, held),
        addresses: ips(held),
        order: (created, name.to_owned()),
    }
}

#[test]
fn adoption_keeps_existing_addresses_and_the_older_service_wins() {
    let mut allocator = Allocator::new(pools(&[("cidr-web", "192.0.2.0/24")]));
    let conflicts = allocator.adopt(vec![
        adoption("web", "young", &["192.0.2.7"], 200),
        adoption("web", "old", &["192.0.2.7"], 100),
        adoption("web", "other", &["192.0.2.1"], 150),
        adoption("web", "stray", &["203.0.113.5"], 150),
    ]);
    assert_eq!(
        conflicts,
        vec![AdoptionConflict {
            key: key("web", "young"),
            address: ip("192.0.2.7"),
            held_by: key("web", "old")
        }]
    );
    assert_eq!(
        allocator
            .allocation(&key("web", "old"))
            .map(|a| a.addresses.clone()),
        Some(ips(&["192.0.2.7"]))
    );
    assert_eq!(allocator.allocation(&key("web", "young")), None);
    // Adopted addresses are never handed out again, and an adopted Service keeps its address.
    assert_eq!(
        addresses(&mut allocator, &req("web", "new")),
        ips(&["192.0.2.2"])
    );
    assert_eq!(
        addresses(&mut allocator, &asking("web", "other", &["192.0.2.1"])),
        ips(&["192.0.2.1"])
    );
    // An adopted address outside every pool is kept and reported.
    assert_eq!(allocator.outside_pools(), vec![key("web", "stray")]);
}

#[test]
fn adoption_lets_shareable_services_keep_one_address() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-dns", "192.0.2.0/24"),
        ("allow-share-dns", "true"),
    ]));
    let mut tcp = adoption("dns", "tcp", &["192.0.2.5"], 1);
    tcp.request.ports = vec![(Protocol::Tcp, 53)];
    let mut udp = adoption("dns", "udp", &["192.0.2.5"], 2);
    udp.request.ports = vec![(Protocol::Udp, 53)];
    assert_eq!(allocator.adopt(vec![tcp, udp]), vec![]);
    assert_eq!(
        allocator.allocation(&key("dns", "udp")).map(|a| a.shared),
        Some(true)
    );
}

#[test]
fn changed_pools_keep_allocations_and_report_those_outside() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-web", "192.0.2.0/24"),
        ("cidr-db", "198.51.100.0/24"),
    ]));
    addresses(&mut allocator, &req("web", "a"));
    addresses(&mut allocator, &req("db", "a"));
    allocator.set_pools(pools(&[
        ("cidr-web", "192.0.2.0/28"),
        ("cidr-db", "203.0.113.0/24"),
    ]));
    assert_eq!(allocator.outside_pools(), vec![key("db", "a")]);
    assert_eq!(
        allocator.allocate(&req("db", "a")).map(|a| a.addresses),
        Ok(ips(&["198.51.100.1"]))
    );
    assert_eq!(
        addresses(&mut allocator, &req("web", "b")),
        ips(&["192.0.2.2"])
    );
    let web = allocator
        .pool_stats()
        .into_iter()
        .find(|s| s.pool == "web")
        .expect("web stats");
    assert_eq!((web.size, web.used, web.free), (15, 2, 13));
}
