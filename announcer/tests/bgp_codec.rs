//! Byte-vector tests of the BGP wire format: every message type and every attribute FerroLB
//! reads or writes, checked in both directions (encode gives exactly these bytes, decode gives
//! exactly this message), plus a table of malformed messages and the error each must produce
//! (RFC 4271 §6, RFC 7606).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use announcer::bgp::codec::{
    AsPath, AsSegment, AsSegmentKind, Capability, CodecContext, ErrorAction, Family,
    GracefulRestartFamily, LargeCommunity, Message, MpReach, MpUnreach, Notification, Open, Origin,
    PathAttribute, RouteRefresh, Update, frame_length,
};
use ipnet::IpNet;

const FOUR: CodecContext = CodecContext {
    four_octet_as: true,
};
const TWO: CodecContext = CodecContext {
    four_octet_as: false,
};

/// Hex (spaces allowed) to bytes.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("test hex is ASCII");
            u8::from_str_radix(pair, 16).expect("test hex is valid")
        })
        .collect()
}

/// A whole message: marker, length, type, then the body given in hex.
fn framed(message_type: u8, body_hex: &str) -> Vec<u8> {
    let body = hex(body_hex);
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&u16::try_from(19 + body.len()).expect("short").to_be_bytes());
    out.push(message_type);
    out.extend_from_slice(&body);
    out
}

fn net(text: &str) -> IpNet {
    text.parse().expect("test prefix is valid")
}

fn ebgp_path() -> PathAttribute {
    PathAttribute::AsPath(AsPath::sequence(vec![65001]))
}

/// (name, codec context, bytes, message): each pair must hold in both directions.
fn vectors() -> Vec<(&'static str, CodecContext, Vec<u8>, Message)> {
    let many_communities: Vec<u32> = (0..64).map(|i| 0xfde9_0000 + i).collect();
    let mut many_hex = String::from("0000 0104 d008 0100");
    for community in &many_communities {
        many_hex.push_str(&format!("{community:08x}"));
    }
    vec![
        ("keepalive", FOUR, framed(4, ""), Message::Keepalive),
        (
            "open with multiprotocol, route refresh, 4-octet AS and graceful restart",
            FOUR,
            framed(
                1,
                "04 fde9 0009 c0000201 22 02 20
                 01 04 0001 00 01
                 01 04 0002 00 01
                 02 00
                 41 04 0000fde9
                 40 0a 0078 0001 01 80 0002 01 00",
            ),
            Message::Open(Open {
                my_as: 65001,
                hold_time: 9,
                bgp_identifier: Ipv4Addr::new(192, 0, 2, 1),
                capabilities: vec![
                    Capability::Multiprotocol(Family::IPV4_UNICAST),
                    Capability::Multiprotocol(Family::IPV6_UNICAST),
                    Capability::RouteRefresh,
                    Capability::FourOctetAs(65001),
                    Capability::GracefulRestart {
                        restarting: false,
                        restart_time: 120,
                        families: vec![
                            GracefulRestartFamily {
                                family: Family::IPV4_UNICAST,
                                forwarding_preserved: true,
                            },
                            GracefulRestartFamily {
                                family: Family::IPV6_UNICAST,
                                forwarding_preserved: false,
                            },
                        ],
                    },
                ],
            }),
        ),
        (
            "open with a 4-octet AS (AS_TRANS in My AS), restart bit and an unknown capability",
            FOUR,
            framed(
                1,
                "04 5ba0 005a c0000202 11 02 0f 41 04 fa56ea00 49 03 616263 40 02 8000",
            ),
            Message::Open(Open {
                my_as: 23456,
                hold_time: 90,
                bgp_identifier: Ipv4Addr::new(192, 0, 2, 2),
                capabilities: vec![
                    Capability::FourOctetAs(4_200_000_000),
                    Capability::Unknown {
                        code: 0x49,
                        value: b"abc".to_vec(),
                    },
                    Capability::GracefulRestart {
                        restarting: true,
                        restart_time: 0,
                        families: vec![],
                    },
                ],
            }),
        ),
        (
            "open without optional parameters",
            FOUR,
            framed(1, "04 fde9 0000 c0000201 00"),
            Message::Open(Open {
                my_as: 65001,
                hold_time: 0,
                bgp_identifier: Ipv4Addr::new(192, 0, 2, 1),
                capabilities: vec![],
            }),
        ),
        (
            "notification cease administrative shutdown",
            FOUR,
            framed(3, "06 02"),
            Message::Notification(Notification::admin_shutdown()),
        ),
        (
            "notification with data",
            FOUR,
            framed(3, "02 02 fde9"),
            Message::Notification(Notification::with_data(2, 2, vec![0xfd, 0xe9])),
        ),
        (
            "route refresh ipv6 unicast",
            FOUR,
            framed(5, "0002 00 01"),
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype: 0,
            }),
        ),
        (
            "update ipv4 eBGP with MED, communities and large communities",
            FOUR,
            framed(
                2,
                "0000 0031
                 40 01 01 00
                 40 02 06 02 01 0000fde9
                 40 03 04 c0000201
                 80 04 04 00000064
                 c0 08 04 fde90064
                 c0 20 0c 0000fde9 00000001 00000002
                 20 c6336410",
            ),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![
                    PathAttribute::Origin(Origin::Igp),
                    ebgp_path(),
                    PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
                    PathAttribute::MultiExitDisc(100),
                    PathAttribute::Communities(vec![0xfde9_0064]),
                    PathAttribute::LargeCommunities(vec![LargeCommunity {
                        global_admin: 65001,
                        local_data_1: 1,
                        local_data_2: 2,
                    }]),
                ],
                nlri: vec![net("198.51.100.16/32")],
            }),
        ),
        (
            "update over a 2-octet session: AS_TRANS in AS_PATH, real AS in AS4_PATH",
            TWO,
            framed(
                2,
                "0000 001b
                 40 01 01 02
                 40 02 04 02 01 5ba0
                 c0 11 06 02 01 fa56ea00
                 40 03 04 c0000201
                 18 cb0071",
            ),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![
                    PathAttribute::Origin(Origin::Incomplete),
                    PathAttribute::AsPath(AsPath::sequence(vec![23456])),
                    PathAttribute::As4Path(AsPath::sequence(vec![4_200_000_000])),
                    PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
                ],
                nlri: vec![net("203.0.113.0/24")],
            }),
        ),
        (
            "update ipv4 iBGP with empty AS_PATH and LOCAL_PREF",
            FOUR,
            framed(
                2,
                "0000 0015
                 40 01 01 01
                 40 02 00
                 40 03 04 c0000201
                 40 05 04 00000064
                 20 c6336410",
            ),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![
                    PathAttribute::Origin(Origin::Egp),
                    PathAttribute::AsPath(AsPath::default()),
                    PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
                    PathAttribute::LocalPref(100),
                ],
                nlri: vec![net("198.51.100.16/32")],
            }),
        ),
        (
            "update ipv6 in MP_REACH_NLRI with global and link-local next hops",
            FOUR,
            framed(
                2,
                "0000 0046
                 40 01 01 00
                 40 02 06 02 01 0000fde9
                 80 0e 36 0002 01 20
                   20010db8025000000000000000000001 fe800000000000000000000000000001 00
                   80 20010db8ffff00000000000000000010",
            ),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![
                    PathAttribute::Origin(Origin::Igp),
                    ebgp_path(),
                    PathAttribute::MpReachNlri(MpReach {
                        family: Family::IPV6_UNICAST,
                        next_hops: vec![
                            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x250, 0, 0, 0, 0, 1)),
                            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
                        ],
                        nlri: vec![net("2001:db8:ffff::10/128")],
                    }),
                ],
                nlri: vec![],
            }),
        ),
        (
            "update withdrawing an ipv4 route",
            FOUR,
            framed(2, "0005 20 c6336410 0000"),
            Message::Update(Update {
                withdrawn: vec![net("198.51.100.16/32")],
                attributes: vec![],
                nlri: vec![],
            }),
        ),
        (
            "update withdrawing an ipv6 route in MP_UNREACH_NLRI",
            FOUR,
            framed(
                2,
                "0000 0017 80 0f 14 0002 01 80 20010db8ffff00000000000000000010",
            ),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![PathAttribute::MpUnreachNlri(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: vec![net("2001:db8:ffff::10/128")],
                })],
                nlri: vec![],
            }),
        ),
        (
            "end-of-rib ipv4",
            FOUR,
            framed(2, "0000 0000"),
            Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        ),
        (
            "end-of-rib ipv6",
            FOUR,
            framed(2, "0000 0006 80 0f 03 0002 01"),
            Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        ),
        (
            "update with ATOMIC_AGGREGATE and an unknown optional attribute",
            FOUR,
            framed(2, "0000 000a 40 06 00 80 09 04 c0000202"),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![
                    PathAttribute::AtomicAggregate,
                    PathAttribute::Unknown {
                        flags: 0x80,
                        type_code: 9,
                        value: vec![0xc0, 0, 2, 2],
                    },
                ],
                nlri: vec![],
            }),
        ),
        (
            "update with an extended-length attribute (64 communities, 256 bytes)",
            FOUR,
            framed(2, &many_hex),
            Message::Update(Update {
                withdrawn: vec![],
                attributes: vec![PathAttribute::Communities(many_communities)],
                nlri: vec![],
            }),
        ),
    ]
}

#[test]
fn every_vector_encodes_to_its_bytes() {
    for (name, ctx, bytes, message) in vectors() {
        let encoded = message.to_bytes(ctx).expect(name);
        assert_eq!(encoded, bytes, "{name}: encoded bytes differ");
    }
}

#[test]
fn every_vector_decodes_to_its_message() {
    for (name, ctx, bytes, message) in vectors() {
        let decoded = Message::decode(&bytes, ctx).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(decoded, message, "{name}: decoded message differs");
    }
}

#[test]
fn four_octet_as_becomes_as_trans_on_a_two_octet_session() {
    let update = Message::Update(Update {
        withdrawn: vec![],
        attributes: vec![PathAttribute::AsPath(AsPath::sequence(vec![
            4_200_000_000,
            65001,
        ]))],
        nlri: vec![],
    });
    assert_eq!(
        update.to_bytes(TWO).expect("encodes"),
        framed(2, "0000 0009 40 02 06 02 02 5ba0 fde9")
    );
}

#[test]
fn open_reports_the_real_as_and_offered_families() {
    let open = Open::new(
        4_200_000_000,
        9,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::FourOctetAs(4_200_000_000),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
        ],
    );
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.asn(), 4_200_000_000);
    assert!(open.supports(Family::IPV6_UNICAST));
    assert!(!open.supports(Family::IPV4_UNICAST));
    let plain = Open::new(65001, 9, Ipv4Addr::new(192, 0, 2, 1), vec![]);
    assert!(
        plain.supports(Family::IPV4_UNICAST),
        "no MP capability means IPv4 unicast only"
    );
}

#[test]
fn end_of_rib_is_recognised_per_family() {
    assert_eq!(
        Update::end_of_rib(Family::IPV4_UNICAST).end_of_rib_family(),
        Some(Family::IPV4_UNICAST)
    );
    assert_eq!(
        Update::end_of_rib(Family::IPV6_UNICAST).end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
    let withdrawal = Update {
        withdrawn: vec![net("198.51.100.16/32")],
        ..Update::default()
    };
    assert_eq!(withdrawal.end_of_rib_family(), None);
}

enum Expect {
    Notify(u8, u8),
    Withdraw,
}

/// (name, bytes, expected handling) for malformed messages.
fn malformed() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let mut bad_marker = framed(4, "");
    bad_marker[3] = 0;
    let mut short_length = framed(4, "");
    short_length[17] = 18;
    vec![
        ("marker not all ones", bad_marker, Expect::Notify(1, 1)),
        ("length below 19", short_length, Expect::Notify(1, 2)),
        ("unknown message type", framed(9, ""), Expect::Notify(1, 3)),
        (
            "keepalive with a body",
            framed(4, "00"),
            Expect::Notify(1, 2),
        ),
        (
            "open shorter than 29 bytes",
            framed(1, "04 fde9"),
            Expect::Notify(1, 2),
        ),
        (
            "route refresh of wrong length",
            framed(5, "0001 00"),
            Expect::Notify(1, 2),
        ),
        (
            "open version 3",
            framed(1, "03 fde9 0009 c0000201 00"),
            Expect::Notify(2, 1),
        ),
        (
            "open hold time 2",
            framed(1, "04 fde9 0002 c0000201 00"),
            Expect::Notify(2, 6),
        ),
        (
            "open BGP identifier 0",
            framed(1, "04 fde9 0009 00000000 00"),
            Expect::Notify(2, 3),
        ),
        (
            "open optional parameter type 1",
            framed(1, "04 fde9 0009 c0000201 04 01 02 0000"),
            Expect::Notify(2, 4),
        ),
        (
            "open capability overrunning its parameter",
            framed(1, "04 fde9 0009 c0000201 04 02 02 41 04"),
            Expect::Notify(2, 0),
        ),
        (
            "update withdrawn length overruns",
            framed(2, "0009 20 c6336410"),
            Expect::Notify(3, 1),
        ),
        (
            "update attribute length overruns",
            framed(2, "0000 0009 40 01 01 00"),
            Expect::Notify(3, 1),
        ),
        (
            "update NLRI prefix longer than 32",
            framed(2, "0000 0000 21 c633641000"),
            Expect::Notify(3, 10),
        ),
        (
            "unrecognized well-known attribute",
            framed(2, "0000 0004 40 63 01 00"),
            Expect::Notify(3, 2),
        ),
        (
            "repeated MP_REACH_NLRI",
            framed(2, "0000 000c 80 0f 03 0002 01 80 0f 03 0002 01"),
            Expect::Notify(3, 1),
        ),
        (
            "MP_REACH_NLRI with a 5-byte IPv6 next hop",
            framed(2, "0000 000c 80 0e 09 0002 01 05 0000000000 00"),
            Expect::Notify(3, 9),
        ),
        (
            "MP_UNREACH_NLRI with flags of a well-known attribute",
            framed(2, "0000 0006 40 0f 03 0002 01"),
            Expect::Notify(3, 4),
        ),
        (
            "ORIGIN value 3",
            framed(
                2,
                "0000 000e 40 01 01 03 40 02 00 40 03 04 c0000201 20 c6336410",
            ),
            Expect::Withdraw,
        ),
        (
            "ORIGIN flagged optional",
            framed(
                2,
                "0000 000e c0 01 01 00 40 02 00 40 03 04 c0000201 20 c6336410",
            ),
            Expect::Withdraw,
        ),
        (
            "NEXT_HOP of 5 bytes",
            framed(
                2,
                "0000 000f 40 01 01 00 40 02 00 40 03 05 c000020100 20 c6336410",
            ),
            Expect::Withdraw,
        ),
        (
            "AS_PATH with segment type 7",
            framed(
                2,
                "0000 0012 40 01 01 00 40 02 04 07 01 fde9 40 03 04 c0000201 20 c6336410",
            ),
            Expect::Withdraw,
        ),
        (
            "COMMUNITIES of 3 bytes",
            framed(2, "0000 0006 c0 08 03 000000 20 c6336410"),
            Expect::Withdraw,
        ),
        (
            "LARGE_COMMUNITY of 8 bytes",
            framed(2, "0000 000b c0 20 08 0000000000000000"),
            Expect::Withdraw,
        ),
        (
            "routes without NEXT_HOP",
            framed(2, "0000 0007 40 01 01 00 40 02 00 20 c6336410"),
            Expect::Withdraw,
        ),
        (
            "attribute overrunning the attribute list",
            framed(2, "0000 0004 40 01 05 00 20 c6336410"),
            Expect::Withdraw,
        ),
        (
            "a reset error wins over a treat-as-withdraw error (RFC 7606 §3)",
            framed(2, "0000 0008 40 01 01 07 40 63 01 00"),
            Expect::Notify(3, 2),
        ),
    ]
}

#[test]
fn malformed_messages_get_the_rfc_error_handling() {
    for (name, bytes, expect) in malformed() {
        let err = match Message::decode(&bytes, FOUR) {
            Ok(message) => panic!("{name}: decoded as {message:?}"),
            Err(err) => err,
        };
        assert!(!err.reason.is_empty(), "{name}: error has no reason");
        match (expect, &err.action) {
            (Expect::Notify(code, subcode), ErrorAction::SendNotification(n)) => {
                assert_eq!(
                    (n.code, n.subcode),
                    (code, subcode),
                    "{name}: {}",
                    err.reason
                )
            }
            (Expect::Withdraw, ErrorAction::TreatAsWithdraw) => {}
            (_, action) => panic!("{name}: unexpected action {action:?} ({})", err.reason),
        }
    }
}

#[test]
fn malformed_optional_attributes_are_discarded_not_fatal() {
    // AS4_PATH with segment type 9 (RFC 6793 §6) and ATOMIC_AGGREGATE of length 1
    // (RFC 7606 §7.6) are discarded; the rest of the UPDATE is kept.
    let bytes = framed(
        2,
        "0000 0011 c0 11 06 09 01 fa56ea00 40 06 01 00 40 01 01 00",
    );
    let decoded = Message::decode(&bytes, FOUR).expect("decodes");
    assert_eq!(
        decoded,
        Message::Update(Update {
            withdrawn: vec![],
            attributes: vec![PathAttribute::Origin(Origin::Igp)],
            nlri: vec![],
        })
    );
}

#[test]
fn repeated_attributes_keep_the_first() {
    let bytes = framed(2, "0000 0008 40 01 01 00 40 01 01 02");
    let decoded = Message::decode(&bytes, FOUR).expect("decodes");
    let Message::Update(update) = decoded else {
        panic!("not an update")
    };
    assert_eq!(update.attributes, vec![PathAttribute::Origin(Origin::Igp)]);
}

#[test]
fn host_bits_beyond_the_prefix_length_are_masked() {
    let bytes = framed(2, "0009 18 cb0071 19 cb007180 0000");
    let Message::Update(update) = Message::decode(&bytes, FOUR).expect("decodes") else {
        panic!("not an update")
    };
    assert_eq!(
        update.withdrawn,
        vec![net("203.0.113.0/24"), net("203.0.113.128/25")]
    );
}

#[test]
fn framing_waits_for_the_whole_message() {
    let bytes = framed(4, "");
    assert_eq!(frame_length(&bytes[..10]).expect("ok"), None);
    assert_eq!(frame_length(&bytes).expect("ok"), Some(19));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes[..5]);
    assert_eq!(frame_length(&two).expect("ok"), Some(19));
    let mut too_long = bytes.clone();
    too_long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert!(frame_length(&too_long).is_err());
}

#[test]
fn oversized_messages_are_refused_when_encoding() {
    let nlri: Vec<IpNet> = (0..1000u32)
        .map(|i| IpNet::from(IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i))))
        .collect();
    let update = Message::Update(Update {
        withdrawn: vec![],
        attributes: vec![],
        nlri,
    });
    assert!(update.to_bytes(FOUR).is_err());
}

#[test]
fn notifications_print_rfc_names() {
    let cases = [
        (
            Notification::admin_shutdown(),
            "Cease/Administrative Shutdown",
        ),
        (Notification::new(4, 0), "Hold Timer Expired/Unspecific"),
        (
            Notification::with_data(2, 2, vec![0xfd, 0xe9]),
            "OPEN Message Error/Bad Peer AS (data fde9)",
        ),
        (
            Notification::new(3, 11),
            "UPDATE Message Error/Malformed AS_PATH",
        ),
    ];
    for (notification, text) in cases {
        assert_eq!(notification.to_string(), text);
    }
}

#[test]
fn as_path_sequence_of_nothing_is_empty() {
    assert_eq!(AsPath::sequence(vec![]), AsPath::default());
    let path = AsPath {
        segments: vec![AsSegment {
            kind: AsSegmentKind::Set,
            asns: vec![1, 70000],
        }],
    };
    assert!(path.contains(70000));
    assert!(path.needs_four_octets());
}
