//! Which address a Service gets: search order, avoided addresses, families, big pools,
//! overlapping pools.

use super::*;

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
