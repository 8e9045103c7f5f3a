//! Idempotency, changed requests, release, DHCP pools, adoption and changed pools.

use super::*;

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
        families: [IpFamily::V6, IpFamily::V4].into_iter().collect(),
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
        as_requested: false,
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
            held_by: key("web", "old"),
            kept: false,
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
    tcp.request.ports = [(Protocol::Tcp, 53)].into_iter().collect();
    let mut udp = adoption("dns", "udp", &["192.0.2.5"], 2);
    udp.request.ports = [(Protocol::Udp, 53)].into_iter().collect();
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

/// `0.0.0.0` asks kube-vip for a DHCP lease; such a request is valid in any pool (issue #12,
/// point 4), so it never counts as outside one.
#[test]
fn adopted_dhcp_services_are_never_outside_a_pool() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-lab", "0.0.0.0/32"),
        ("cidr-web", "192.0.2.0/24"),
    ]));
    let conflicts = allocator.adopt(vec![
        adoption("lab", "a", &["0.0.0.0"], 1),
        adoption("lab", "b", &["0.0.0.0"], 2),
        adoption("web", "c", &["0.0.0.0"], 3),
    ]);
    assert_eq!(conflicts, vec![]);
    assert_eq!(allocator.outside_pools(), vec![]);
}

#[test]
fn a_service_whose_ports_go_away_stops_being_joinable() {
    let mut allocator = Allocator::new(pools(&[
        ("cidr-dns", "192.0.2.0/24"),
        ("allow-share-dns", "true"),
    ]));
    let tcp = with_ports("dns", "a", &[(Protocol::Tcp, 53)]);
    assert_eq!(addresses(&mut allocator, &tcp), ips(&["192.0.2.1"]));
    // Same request without ports: the address stays, but nobody may join it any more.
    assert_eq!(
        addresses(&mut allocator, &req("dns", "a")),
        ips(&["192.0.2.1"])
    );
    let udp = with_ports("dns", "b", &[(Protocol::Udp, 53)]);
    assert_eq!(addresses(&mut allocator, &udp), ips(&["192.0.2.2"]));
}

/// Addresses a Service explicitly asks for — every address kube-vip-cloud-provider left — are
/// adopted as they are: a conflict does not take them away, and they are not checked again
/// while the request stays the same (issue #12, point 5).
#[test]
fn adoption_as_requested_keeps_conflicting_and_outside_addresses() {
    let mut allocator = Allocator::new(pools(&[("cidr-web", "192.0.2.0/24")]));
    let as_requested = |namespace: &str, name: &str, held: &[&str], created: i64| Adoption {
        as_requested: true,
        ..adoption(namespace, name, held, created)
    };
    let conflicts = allocator.adopt(vec![
        as_requested("web", "tcp", &["192.0.2.53"], 1),
        as_requested("web", "udp", &["192.0.2.53"], 2),
        as_requested("web", "outside", &["198.51.100.7"], 3),
        as_requested("lab", "no-pool", &["203.0.113.9"], 4),
    ]);
    assert_eq!(
        conflicts,
        vec![AdoptionConflict {
            key: key("web", "udp"),
            address: ip("192.0.2.53"),
            held_by: key("web", "tcp"),
            kept: true,
        }]
    );
    for (namespace, name, address) in [
        ("web", "tcp", "192.0.2.53"),
        ("web", "udp", "192.0.2.53"),
        ("web", "outside", "198.51.100.7"),
        ("lab", "no-pool", "203.0.113.9"),
    ] {
        // The same request again, now with a port: kept, not re-validated.
        let mut again = asking(namespace, name, &[address]);
        again.ports = [(Protocol::Udp, 5353)].into_iter().collect();
        assert_eq!(addresses(&mut allocator, &again), ips(&[address]), "{name}");
    }
    // Asking for something else is judged like any new request.
    let moved = asking("web", "outside", &["198.51.100.8"]);
    assert_eq!(failure(&mut allocator, &moved).reason(), "NotInPool");
    // New Services never get an address adopted as is.
    assert_eq!(
        addresses(&mut allocator, &req("web", "new")),
        ips(&["192.0.2.1"])
    );
}
