//! Pure parts around the session: packing routes into UPDATEs, the attributes sent to eBGP and
//! iBGP peers, peer configuration validation, and next-hop choice. No sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use announcer::bgp::codec::{
    AS_TRANS, AsPath, CodecContext, Family, Message, MpReach, PathAttribute, Update,
};
use announcer::bgp::config::{PeerConfig, RouteAttributes, parse_community, parse_large_community};
use announcer::bgp::next_hop::{NextHops, choose_from};
use announcer::bgp::updates::SessionPolicy;
use announcer::interfaces::Interface;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proto::announcer::v1 as pb;

fn policy(ebgp: bool) -> SessionPolicy {
    SessionPolicy {
        local_asn: 64513,
        ebgp,
        four_octet_as: true,
        ipv4_next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ipv6_next_hops: vec![
            "2001:db8:250::1".parse().expect("v6"),
            "fe80::1".parse().expect("v6"),
        ],
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        defaults: RouteAttributes::default(),
    }
}

fn v4_routes(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).expect("/32")))
        .collect()
}

fn v6_routes(n: u128) -> Vec<IpNet> {
    let base = u128::from("2001:db8:ffff::".parse::<Ipv6Addr>().expect("v6"));
    (0..n)
        .map(|i| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base + i), 128).expect("/128")))
        .collect()
}

fn encoded_sizes(updates: &[Update]) -> Vec<usize> {
    updates
        .iter()
        .map(|u| {
            Message::Update(u.clone())
                .to_bytes(CodecContext {
                    four_octet_as: true,
                })
                .expect("fits")
                .len()
        })
        .collect()
}

fn announced(updates: &[Update]) -> Vec<IpNet> {
    let mut all = Vec::new();
    for update in updates {
        all.extend(update.nlri.iter().copied());
        for attribute in &update.attributes {
            if let PathAttribute::MpReachNlri(reach) = attribute {
                all.extend(reach.nlri.iter().copied());
            }
        }
    }
    all.sort();
    all
}

#[test]
fn many_routes_pack_into_full_messages_within_4096_bytes() {
    let attrs = RouteAttributes::default();
    for routes in [v4_routes(10_000), v6_routes(3_000)] {
        let updates = policy(true).announce(routes.iter().map(|p| (p, &attrs)));
        let sizes = encoded_sizes(&updates);
        assert!(sizes.iter().all(|s| *s <= 4096), "{sizes:?}");
        // All but the last message are nearly full: few messages for many routes.
        assert!(
            sizes[..sizes.len() - 1].iter().all(|s| *s > 3900),
            "{sizes:?}"
        );
        let mut expected = routes.clone();
        expected.sort();
        assert_eq!(announced(&updates), expected);
    }
    let withdrawals = policy(true).withdraw(&v4_routes(10_000));
    assert!(encoded_sizes(&withdrawals).iter().all(|s| *s <= 4096));
    assert_eq!(
        withdrawals.iter().map(|u| u.withdrawn.len()).sum::<usize>(),
        10_000
    );
    assert_eq!(withdrawals.len(), 10_000usize.div_ceil((4096 - 23) / 5));
}

#[test]
fn ebgp_routes_carry_our_as_and_ibgp_routes_local_pref() {
    let attrs = RouteAttributes::default();
    let route = v4_routes(1);
    let ebgp = policy(true).announce(route.iter().map(|p| (p, &attrs)));
    assert!(
        ebgp[0]
            .attributes
            .contains(&PathAttribute::AsPath(AsPath::sequence(vec![64513])))
    );
    assert!(
        ebgp[0]
            .attributes
            .contains(&PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)))
    );
    assert!(
        !ebgp[0]
            .attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::LocalPref(_)))
    );
    let ibgp = policy(false).announce(route.iter().map(|p| (p, &attrs)));
    assert!(
        ibgp[0]
            .attributes
            .contains(&PathAttribute::AsPath(AsPath::default()))
    );
    assert!(ibgp[0].attributes.contains(&PathAttribute::LocalPref(100)));
}

#[test]
fn four_octet_as_goes_in_as4_path_when_the_peer_lacks_the_capability() {
    let mut old_peer = policy(true);
    old_peer.four_octet_as = false;
    old_peer.local_asn = 4_200_000_000;
    let attrs = RouteAttributes::default();
    let updates = old_peer.announce(v4_routes(1).iter().map(|p| (p, &attrs)).collect::<Vec<_>>());
    let attributes = &updates[0].attributes;
    assert!(
        attributes.contains(&PathAttribute::AsPath(AsPath::sequence(vec![u32::from(
            AS_TRANS
        )])))
    );
    assert!(
        attributes.contains(&PathAttribute::As4Path(AsPath::sequence(vec![
            4_200_000_000
        ])))
    );
}

#[test]
fn announcement_attributes_override_the_peers() {
    let mut peer = policy(true);
    peer.defaults = RouteAttributes {
        communities: vec![1],
        med: Some(5),
        ..RouteAttributes::default()
    };
    let own = RouteAttributes {
        communities: vec![2],
        ..RouteAttributes::default()
    };
    let routes = v4_routes(1);
    let updates = peer.announce(routes.iter().map(|p| (p, &own)));
    assert!(
        updates[0]
            .attributes
            .contains(&PathAttribute::Communities(vec![2]))
    );
    assert!(
        updates[0]
            .attributes
            .contains(&PathAttribute::MultiExitDisc(5))
    );
}

#[test]
fn ipv6_routes_use_global_then_link_local_next_hops() {
    let attrs = RouteAttributes::default();
    let updates =
        policy(true).announce(v6_routes(1).iter().map(|p| (p, &attrs)).collect::<Vec<_>>());
    let reach = updates[0].attributes.iter().find_map(|a| match a {
        PathAttribute::MpReachNlri(reach) => Some(reach.clone()),
        _ => None,
    });
    let MpReach {
        family, next_hops, ..
    } = reach.expect("MP_REACH_NLRI");
    assert_eq!(family, Family::IPV6_UNICAST);
    assert_eq!(
        next_hops,
        vec![
            IpAddr::V6("2001:db8:250::1".parse().expect("v6")),
            IpAddr::V6("fe80::1".parse().expect("v6"))
        ]
    );
}

#[test]
fn families_not_negotiated_or_without_next_hop_are_not_sent() {
    let mut v4_only = policy(true);
    v4_only.families = vec![Family::IPV4_UNICAST];
    let mut no_v6_hop = policy(true);
    no_v6_hop.ipv6_next_hops.clear();
    let attrs = RouteAttributes::default();
    for p in [v4_only, no_v6_hop] {
        assert!(
            p.announce(v6_routes(3).iter().map(|r| (r, &attrs)).collect::<Vec<_>>())
                .is_empty()
        );
        assert!(p.withdraw(&v6_routes(3)).is_empty());
    }
}

fn valid_peer() -> pb::Peer {
    pb::Peer {
        address: "192.0.2.2".into(),
        peer_asn: 64512,
        local_asn: 64513,
        ..pb::Peer::default()
    }
}

#[test]
fn bad_peer_fields_are_refused_with_the_field_and_value() {
    let cases: Vec<(pb::Peer, &str)> = vec![
        (
            pb::Peer {
                address: "192.0.2.300".into(),
                ..valid_peer()
            },
            "peer.address: \"192.0.2.300\" is not an IP address",
        ),
        (
            pb::Peer {
                peer_asn: 0,
                ..valid_peer()
            },
            "peer.peer_asn: 0 is not a valid AS number",
        ),
        (
            pb::Peer {
                port: 70000,
                ..valid_peer()
            },
            "peer.port: 70000 is not a TCP port",
        ),
        (
            pb::Peer {
                hold_time_seconds: Some(2),
                ..valid_peer()
            },
            "peer.hold_time_seconds: 2 must be 0 or 3..=65535",
        ),
        (
            pb::Peer {
                router_id: "2001:db8::1".into(),
                ..valid_peer()
            },
            "peer.router_id: 2001:db8::1 is not a non-zero IPv4 address",
        ),
        (
            pb::Peer {
                source_address: "2001:db8::1".into(),
                ..valid_peer()
            },
            "peer.source_address: 2001:db8::1 is not of the family of 192.0.2.2",
        ),
        (
            pb::Peer {
                ipv6_next_hop: "192.0.2.1".into(),
                ..valid_peer()
            },
            "peer.ipv6_next_hop: 192.0.2.1 is not a usable global IPv6 address",
        ),
        (
            pb::Peer {
                password_file: "/nonexistent/ferrolb.pw".into(),
                ..valid_peer()
            },
            "peer.password_file: \"/nonexistent/ferrolb.pw\": No such file",
        ),
        (
            pb::Peer {
                graceful_restart: true,
                graceful_restart_seconds: Some(5000),
                ..valid_peer()
            },
            "peer.graceful_restart_seconds: 5000 exceeds 4095",
        ),
        (
            pb::Peer {
                attributes: Some(pb::BgpAttributes {
                    communities: vec!["65000".into()],
                    ..pb::BgpAttributes::default()
                }),
                ..valid_peer()
            },
            "peer.attributes.communities[0]: \"65000\" is not ASN:VALUE",
        ),
    ];
    for (peer, expected) in cases {
        let error = PeerConfig::from_proto(&peer)
            .expect_err(expected)
            .to_string();
        assert!(
            error.starts_with(expected),
            "got {error:?}, want {expected:?}"
        );
    }
}

#[test]
fn valid_peer_gets_defaults_and_ttl_one_for_direct_ebgp() {
    let config = PeerConfig::from_proto(&valid_peer()).expect("valid");
    assert_eq!(
        (
            config.port,
            config.hold_time,
            config.connect_retry.as_secs()
        ),
        (179, 90, 5)
    );
    assert_eq!(config.ttl(), 1);
    let ibgp = PeerConfig::from_proto(&pb::Peer {
        local_asn: 64512,
        ..valid_peer()
    })
    .expect("valid");
    assert_eq!(ibgp.ttl(), 64);
    let multihop = PeerConfig::from_proto(&pb::Peer {
        ebgp_multihop_ttl: 3,
        ..valid_peer()
    })
    .expect("valid");
    assert_eq!(multihop.ttl(), 3);
    assert_eq!(
        PeerConfig::from_proto(&config.to_proto()).expect("round trip"),
        config
    );
}

#[test]
fn password_file_trailing_newline_is_not_part_of_the_password() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pw");
    std::fs::write(&path, "s3cret\n").expect("write");
    let peer = pb::Peer {
        password_file: path.to_string_lossy().into_owned(),
        ..valid_peer()
    };
    assert_eq!(
        PeerConfig::from_proto(&peer).expect("valid").password,
        Some(b"s3cret".to_vec())
    );
}

#[test]
fn communities_parse_and_print() {
    assert_eq!(parse_community("65000:100"), Ok(65000 << 16 | 100));
    assert!(parse_community("70000:1").is_err());
    assert!(parse_large_community("4200000000:1:2").is_ok());
    assert!(parse_large_community("1:2").is_err());
    let attrs = RouteAttributes::from_proto(
        &pb::BgpAttributes {
            communities: vec!["65000:100".into()],
            large_communities: vec!["4200000000:1:2".into()],
            local_pref: Some(5),
            med: None,
        },
        "x",
    )
    .expect("valid");
    assert_eq!(
        RouteAttributes::from_proto(&attrs.to_proto(), "x").expect("round trip"),
        attrs
    );
}

fn interface(addresses: &[&str]) -> Interface {
    Interface {
        name: "eth0".into(),
        index: 2,
        mac: None,
        up: true,
        loopback: false,
        addresses: addresses.iter().map(|a| a.parse().expect("net")).collect(),
    }
}

#[test]
fn next_hops_come_from_the_session_interface_and_link_local_only_when_adjacent() {
    let interfaces = [interface(&[
        "192.0.2.1/24",
        "2001:db8:250::1/64",
        "fe80::1/64",
    ])];
    let mut config = PeerConfig::new("192.0.2.2".parse().expect("ip"), 64513, 64512);
    let local = "192.0.2.1".parse().expect("ip");
    assert_eq!(
        choose_from(&config, local, &interfaces),
        NextHops {
            ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ipv6: vec![
                "2001:db8:250::1".parse().expect("v6"),
                "fe80::1".parse().expect("v6")
            ],
        }
    );
    config.ebgp_multihop_ttl = 2;
    assert_eq!(
        choose_from(&config, local, &interfaces).ipv6,
        vec!["2001:db8:250::1".parse::<Ipv6Addr>().expect("v6")]
    );
    config.ipv6_next_hop = Some("2001:db8:99::1".parse().expect("v6"));
    config.ipv4_next_hop = Some(Ipv4Addr::new(203, 0, 113, 1));
    let chosen = choose_from(&config, local, &interfaces);
    assert_eq!(chosen.ipv4, Some(Ipv4Addr::new(203, 0, 113, 1)));
    assert_eq!(
        chosen.ipv6,
        vec!["2001:db8:99::1".parse::<Ipv6Addr>().expect("v6")]
    );
    let no_v6 = [interface(&["192.0.2.1/24"])];
    assert!(
        choose_from(
            &PeerConfig::new("192.0.2.2".parse().expect("ip"), 1, 2),
            local,
            &no_v6
        )
        .ipv6
        .is_empty()
    );
}
