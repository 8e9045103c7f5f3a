//! Requested addresses, sharing, and every failure reason with its message.

use super::*;

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
             `range-nowhere`, `cidr-global`, `range-global` is set, and no pool object selects \
             this Service)",
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
        ports: [(proto, 443)].into_iter().collect(),
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
