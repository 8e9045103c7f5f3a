//! Property tests of the BGP codec: random OPEN and UPDATE messages survive encode → decode
//! unchanged, and an independent decoder (`zettabgp`) reads from our bytes the same prefixes,
//! next hops, AS path and attributes.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use announcer::bgp::codec::{
    AsPath, Capability, CodecContext, Family, LargeCommunity, Message, MpReach, Open, Origin,
    PathAttribute, Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use zettabgp::prelude::*;

const FOUR: CodecContext = CodecContext {
    four_octet_as: true,
};

fn ipv4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32).prop_map(|(addr, len)| {
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(addr), len)
                .expect("len <= 32")
                .trunc(),
        )
    })
}

fn ipv6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128).prop_map(|(addr, len)| {
        IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(addr), len)
                .expect("len <= 128")
                .trunc(),
        )
    })
}

fn origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ]
}

/// What a FerroLB UPDATE carries: IPv4 routes or IPv6 routes with common attributes.
#[derive(Debug, Clone)]
struct Routes {
    origin: Origin,
    path: Vec<u32>,
    med: Option<u32>,
    local_pref: Option<u32>,
    communities: BTreeSet<u32>,
    large: BTreeSet<(u32, u32, u32)>,
    next_hop_v4: Ipv4Addr,
    next_hop_v6: Ipv6Addr,
    v4: Vec<IpNet>,
    v6: Vec<IpNet>,
}

fn routes() -> impl Strategy<Value = Routes> {
    (
        origin(),
        proptest::collection::vec(1u32..u32::MAX, 0..6),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::btree_set(any::<u32>(), 0..6),
        proptest::collection::btree_set(any::<(u32, u32, u32)>(), 0..4),
        any::<u32>(),
        any::<u128>(),
        proptest::collection::vec(ipv4_prefix(), 0..40),
        proptest::collection::vec(ipv6_prefix(), 0..40),
    )
        .prop_map(
            |(origin, path, med, local_pref, communities, large, nh4, nh6, v4, v6)| Routes {
                origin,
                path,
                med,
                local_pref,
                communities,
                large,
                next_hop_v4: Ipv4Addr::from(nh4),
                next_hop_v6: Ipv6Addr::from(nh6),
                v4,
                v6,
            },
        )
}

fn to_update(routes: &Routes) -> Update {
    let mut attributes = vec![
        PathAttribute::Origin(routes.origin),
        PathAttribute::AsPath(AsPath::sequence(routes.path.clone())),
    ];
    if !routes.v4.is_empty() {
        attributes.push(PathAttribute::NextHop(routes.next_hop_v4));
    }
    if let Some(med) = routes.med {
        attributes.push(PathAttribute::MultiExitDisc(med));
    }
    if let Some(local_pref) = routes.local_pref {
        attributes.push(PathAttribute::LocalPref(local_pref));
    }
    if !routes.communities.is_empty() {
        attributes.push(PathAttribute::Communities(
            routes.communities.iter().copied().collect(),
        ));
    }
    if !routes.v6.is_empty() {
        attributes.push(PathAttribute::MpReachNlri(MpReach {
            family: Family::IPV6_UNICAST,
            next_hops: vec![IpAddr::V6(routes.next_hop_v6)],
            nlri: routes.v6.clone(),
        }));
    }
    if !routes.large.is_empty() {
        attributes.push(PathAttribute::LargeCommunities(
            routes
                .large
                .iter()
                .map(
                    |&(global_admin, local_data_1, local_data_2)| LargeCommunity {
                        global_admin,
                        local_data_1,
                        local_data_2,
                    },
                )
                .collect(),
        ));
    }
    Update {
        withdrawn: vec![],
        attributes,
        nlri: routes.v4.clone(),
    }
}

fn zetta_session() -> BgpSessionParams {
    let mut params = BgpSessionParams::new(
        65000,
        9,
        BgpTransportMode::IPv4,
        Ipv4Addr::new(192, 0, 2, 2),
        vec![
            BgpCapability::SafiIPv4u,
            BgpCapability::SafiIPv6u,
            BgpCapability::CapASN32(65000),
        ],
    );
    params.has_as32bit = true;
    params.fuzzy_pathid = false;
    params
}

fn zetta_v4(addrs: &BgpAddrs) -> Vec<IpNet> {
    match addrs {
        BgpAddrs::None => vec![],
        BgpAddrs::IPV4U(list) => list
            .iter()
            .map(|a| IpNet::V4(Ipv4Net::new(a.addr, a.prefixlen).expect("valid").trunc()))
            .collect(),
        other => panic!("zettabgp read unexpected IPv4 NLRI {other:?}"),
    }
}

fn zetta_v6(addrs: &BgpAddrs) -> Vec<IpNet> {
    match addrs {
        BgpAddrs::IPV6U(list) => list
            .iter()
            .map(|a| IpNet::V6(Ipv6Net::new(a.addr, a.prefixlen).expect("valid").trunc()))
            .collect(),
        other => panic!("zettabgp read unexpected IPv6 NLRI {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn updates_round_trip_and_match_an_independent_decoder(routes in routes()) {
        let update = to_update(&routes);
        let message = Message::Update(update.clone());
        let Ok(bytes) = message.to_bytes(FOUR) else {
            // Too many routes for one message: the packer never builds such an UPDATE.
            return Ok(());
        };
        prop_assert_eq!(Message::decode(&bytes, FOUR).expect("own bytes decode"), message);

        let params = zetta_session();
        let (kind, len) = params.decode_message_head(&bytes).expect("zettabgp reads the header");
        prop_assert_eq!(kind, BgpMessageType::Update);
        prop_assert_eq!(len + 19, bytes.len());
        let mut oracle = BgpUpdateMessage::new();
        oracle.decode_from(&params, &bytes[19..]).expect("zettabgp decodes our UPDATE");

        prop_assert_eq!(zetta_v4(&oracle.updates), routes.v4.clone());
        let expected_origin = match routes.origin {
            Origin::Igp => BgpAttrOrigin::Igp,
            Origin::Egp => BgpAttrOrigin::Egp,
            Origin::Incomplete => BgpAttrOrigin::Incomplete,
        };
        prop_assert_eq!(&oracle.get_attr_origin().expect("origin").value, &expected_origin);
        let path: Vec<u32> = oracle
            .get_attr_aspath()
            .expect("as path")
            .value
            .iter()
            .flat_map(|item| match item {
                BgpASitem::Seq(seq) => seq.value.iter().map(|asn| asn.value).collect::<Vec<_>>(),
                BgpASitem::Set(_) => panic!("we never send AS_SET"),
            })
            .collect();
        prop_assert_eq!(path, routes.path.clone());
        if !routes.v4.is_empty() {
            prop_assert_eq!(
                oracle.get_attr_nexthop().expect("next hop").value,
                IpAddr::V4(routes.next_hop_v4)
            );
        }
        let communities: BTreeSet<u32> = oracle
            .get_attr_communitylist()
            .map(|list| list.value.iter().map(|c| c.value).collect())
            .unwrap_or_default();
        prop_assert_eq!(communities, routes.communities.clone());
        let large: BTreeSet<(u32, u32, u32)> = oracle
            .get_attr_largecommunitylist()
            .map(|list| list.value.iter().map(|c| (c.ga, c.ldp1, c.ldp2)).collect())
            .unwrap_or_default();
        prop_assert_eq!(large, routes.large.clone());
        let med = oracle.attrs.iter().find_map(|a| match a {
            BgpAttrItem::MED(med) => Some(med.value),
            _ => None,
        });
        prop_assert_eq!(med, routes.med);
        let local_pref = oracle.attrs.iter().find_map(|a| match a {
            BgpAttrItem::LocalPref(lp) => Some(lp.value),
            _ => None,
        });
        prop_assert_eq!(local_pref, routes.local_pref);
        match oracle.get_mpupdates() {
            Some(mp) => {
                prop_assert_eq!(&mp.nexthop, &BgpAddr::V6(routes.next_hop_v6));
                prop_assert_eq!(zetta_v6(&mp.addrs), routes.v6.clone());
            }
            None => prop_assert!(routes.v6.is_empty()),
        }
    }

    #[test]
    fn withdrawals_match_an_independent_decoder(v4 in proptest::collection::vec(ipv4_prefix(), 1..100)) {
        let message = Message::Update(Update { withdrawn: v4.clone(), ..Update::default() });
        let bytes = message.to_bytes(FOUR).expect("fits");
        prop_assert_eq!(Message::decode(&bytes, FOUR).expect("own bytes decode"), message);
        let params = zetta_session();
        let mut oracle = BgpUpdateMessage::new();
        oracle.decode_from(&params, &bytes[19..]).expect("zettabgp decodes our withdrawal");
        prop_assert_eq!(zetta_v4(&oracle.withdraws), v4);
    }

    #[test]
    fn opens_round_trip_and_match_an_independent_decoder(
        asn in 1u32..u32::MAX,
        hold in prop_oneof![Just(0u16), 3u16..=u16::MAX],
        id in 1u32..u32::MAX,
        route_refresh in any::<bool>(),
    ) {
        let mut capabilities = vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(asn),
        ];
        if route_refresh {
            capabilities.push(Capability::RouteRefresh);
        }
        let open = Open::new(asn, hold, Ipv4Addr::from(id), capabilities);
        let message = Message::Open(open.clone());
        let bytes = message.to_bytes(FOUR).expect("fits");
        prop_assert_eq!(Message::decode(&bytes, FOUR).expect("own bytes decode"), message);

        let params = zetta_session();
        let mut oracle = BgpOpenMessage::new();
        oracle.decode_from(&params, &bytes[19..]).expect("zettabgp decodes our OPEN");
        prop_assert_eq!(oracle.hold_time, hold);
        prop_assert_eq!(oracle.router_id, Ipv4Addr::from(id));
        prop_assert_eq!(oracle.as_num, u32::from(open.my_as));
        prop_assert!(oracle.caps.contains(&BgpCapability::CapASN32(asn)));
        prop_assert!(oracle.caps.contains(&BgpCapability::SafiIPv6u));
        prop_assert_eq!(oracle.caps.contains(&BgpCapability::CapRR), route_refresh);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 1u8..=5) {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&u16::try_from(19 + body.len()).expect("short").to_be_bytes());
        bytes.push(kind);
        bytes.extend_from_slice(&body);
        for ctx in [FOUR, CodecContext { four_octet_as: false }] {
            if let Err(err) = Message::decode(&bytes, ctx) {
                prop_assert!(!err.reason.is_empty(), "every decode error says what was wrong");
            }
        }
    }
}
