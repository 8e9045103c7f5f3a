//! BFD Control packets as byte vectors (RFC 5880 §4): each vector decodes to its packet and
//! the packet encodes back to the same bytes; malformed packets are refused with the check
//! of §6.8.6 that failed. The SHA1 digest was computed independently (Python hashlib).

use announcer::bfd::packet::{
    AuthKey, AuthSection, AuthType, ControlPacket, DecodeError, Diagnostic, State, verify,
};
use proptest::prelude::*;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn down_packet() -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::NONE,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: 0x1122_3344,
        your_discriminator: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
        auth: None,
    }
}

#[test]
fn down_packet_round_trips_through_its_bytes() {
    let bytes = hex("204003181122334400000000000f4240000493e000000000");
    assert_eq!(bytes.len(), 24);
    assert_eq!(ControlPacket::decode(&bytes), Ok(down_packet()));
    assert_eq!(down_packet().encode(None), bytes);
}

#[test]
fn flags_and_diagnostic_have_their_bits() {
    let packet = ControlPacket {
        state: State::Up,
        poll: true,
        diagnostic: Diagnostic::CONTROL_DETECTION_TIME_EXPIRED,
        your_discriminator: 7,
        ..down_packet()
    };
    let bytes = packet.encode(None);
    assert_eq!(&bytes[..4], &[0x21, 0xe0, 0x03, 0x18]);
    assert_eq!(&bytes[8..12], &[0, 0, 0, 7]);
    let final_ = ControlPacket {
        poll: false,
        final_: true,
        ..packet
    };
    assert_eq!(final_.encode(None)[1], 0xd0);
}

#[test]
fn keyed_sha1_packet_matches_an_independent_digest() {
    let key = AuthKey {
        kind: AuthType::KeyedSha1,
        key_id: 7,
        secret: b"secret".to_vec(),
    };
    let packet = ControlPacket {
        state: State::Up,
        your_discriminator: 0x5566_7788,
        desired_min_tx: 300_000,
        ..down_packet()
    };
    let bytes = packet.encode(Some((&key, 0x0102_0304)));
    let expected = hex(concat!(
        "20c403341122334455667788000493e0000493e000000000041c070001020304",
        "1192788c6a6a3d6e6f354ad4cb79c28eed216bd1"
    ));
    assert_eq!(bytes, expected);
    let decoded = ControlPacket::decode(&bytes).expect("decodes");
    assert_eq!(
        decoded.auth,
        Some(AuthSection {
            auth_type: 4,
            key_id: 7,
            sequence: 0x0102_0304
        })
    );
    assert!(verify(&bytes, &decoded, &key));
    let wrong = AuthKey {
        secret: b"secreT".to_vec(),
        ..key.clone()
    };
    assert!(!verify(&bytes, &decoded, &wrong));
    let other_id = AuthKey { key_id: 8, ..key };
    assert!(!verify(&bytes, &decoded, &other_id));
}

#[test]
fn simple_password_is_carried_in_clear() {
    let key = AuthKey {
        kind: AuthType::SimplePassword,
        key_id: 1,
        secret: b"pw".to_vec(),
    };
    let bytes = down_packet().encode(Some((&key, 0)));
    assert_eq!(&bytes[24..], &[1, 5, 1, b'p', b'w']);
    assert_eq!(bytes[3], 29);
    let decoded = ControlPacket::decode(&bytes).expect("decodes");
    assert!(verify(&bytes, &decoded, &key));
}

#[test]
fn malformed_packets_name_the_failed_check() {
    let good = down_packet().encode(None);
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (good[..20].to_vec(), DecodeError::Short(20)),
        (
            {
                let mut b = good.clone();
                b[0] = 0x40;
                b
            },
            DecodeError::Version(2),
        ),
        (
            {
                let mut b = good.clone();
                b[3] = 30;
                b
            },
            DecodeError::Length {
                field: 30,
                received: 24,
            },
        ),
        (
            {
                let mut b = good.clone();
                b[2] = 0;
                b
            },
            DecodeError::ZeroDetectMult,
        ),
        (
            {
                let mut b = good.clone();
                b[1] |= 0x01;
                b
            },
            DecodeError::Multipoint,
        ),
        (
            {
                let mut b = good.clone();
                b[4..8].copy_from_slice(&[0, 0, 0, 0]);
                b
            },
            DecodeError::ZeroMyDiscriminator,
        ),
        (
            {
                // A bit set, auth section claims SHA1 but is too short.
                let mut b = good.clone();
                b[1] |= 0x04;
                b.extend_from_slice(&[4, 8, 1, 0, 0, 0, 0, 1]);
                b[3] = 32;
                b
            },
            DecodeError::AuthSection {
                auth_type: 4,
                len: 8,
            },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(ControlPacket::decode(&bytes), Err(expected));
    }
}

fn any_state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::AdminDown),
        Just(State::Down),
        Just(State::Init),
        Just(State::Up)
    ]
}

proptest! {
    /// Every packet we can send decodes to itself, with or without SHA1, and verifies.
    #[test]
    fn encode_then_decode_is_identity(
        state in any_state(), diag in 0u8..32, poll: bool, cpi: bool, mult in 1u8..,
        mine in 1u32.., yours: u32, tx: u32, rx: u32, seq: u32, secret in proptest::collection::vec(any::<u8>(), 1..=20),
        with_auth: bool,
    ) {
        let packet = ControlPacket {
            diagnostic: Diagnostic(diag), state, poll, final_: !poll, control_plane_independent: cpi,
            demand: false, multipoint: false, detect_mult: mult, my_discriminator: mine,
            your_discriminator: yours, desired_min_tx: tx, required_min_rx: rx,
            required_min_echo_rx: 0, auth: None,
        };
        let key = AuthKey { kind: AuthType::MeticulousKeyedSha1, key_id: 3, secret };
        let bytes = packet.encode(with_auth.then_some((&key, seq)));
        let decoded = ControlPacket::decode(&bytes).expect("decodes");
        prop_assert_eq!(&decoded.auth.is_some(), &with_auth);
        prop_assert_eq!(ControlPacket { auth: None, ..decoded.clone() }, packet);
        if with_auth {
            prop_assert!(verify(&bytes, &decoded, &key));
        }
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = ControlPacket::decode(&bytes);
    }
}
