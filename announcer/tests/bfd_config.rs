//! A peer's BFD block from the gRPC `Bfd` message (also what config files and `ctl` flags
//! become): defaults, every refusal naming its field and value, and the way back to gRPC
//! without the key.

use std::time::Duration;

use announcer::bfd::BfdConfig;
use announcer::bfd::packet::AuthType;
use proto::announcer::v1 as pb;

fn enabled() -> pb::Bfd {
    pb::Bfd {
        enabled: true,
        ..pb::Bfd::default()
    }
}

#[test]
fn defaults_are_300_ms_times_3_single_hop_without_auth() {
    let config = BfdConfig::from_proto(&enabled(), "peer.bfd")
        .expect("valid")
        .expect("enabled");
    assert_eq!(config.params.desired_min_tx, Duration::from_millis(300));
    assert_eq!(config.params.required_min_rx, Duration::from_millis(300));
    assert_eq!(config.params.detect_mult, 3);
    assert!(!config.multihop);
    assert!(config.auth.is_none());
    assert_eq!(
        BfdConfig::from_proto(&pb::Bfd::default(), "peer.bfd"),
        Ok(None)
    );
}

#[test]
fn bad_values_are_refused_with_the_field_and_value() {
    let dir = tempfile::tempdir().expect("dir");
    let long_key = dir.path().join("long.key");
    std::fs::write(&long_key, "x".repeat(21)).expect("write");
    let long_key = long_key.to_string_lossy().into_owned();
    let cases = [
        (
            pb::Bfd {
                min_tx_ms: Some(5),
                ..enabled()
            },
            "peer.bfd.min_tx_ms: 5 must be 10..=60000 milliseconds".to_string(),
        ),
        (
            pb::Bfd {
                min_rx_ms: Some(60_001),
                ..enabled()
            },
            "peer.bfd.min_rx_ms: 60001 must be 10..=60000 milliseconds".into(),
        ),
        (
            pb::Bfd {
                detect_multiplier: Some(256),
                ..enabled()
            },
            "peer.bfd.detect_multiplier: 256 must be 1..=255".into(),
        ),
        (
            pb::Bfd {
                auth_type: "md5".into(),
                ..enabled()
            },
            "peer.bfd.auth_type: \"md5\" is not one of none, simple, keyed-sha1, meticulous-keyed-sha1".into(),
        ),
        (
            pb::Bfd {
                auth_type: "keyed-sha1".into(),
                ..enabled()
            },
            "peer.bfd.key_file: is required with auth_type".into(),
        ),
        (
            pb::Bfd {
                auth_type: "keyed-sha1".into(),
                key_file: long_key.clone(),
                ..enabled()
            },
            format!("peer.bfd.key_file: {long_key:?} holds 21 bytes, need 1..=20"),
        ),
        (
            pb::Bfd {
                min_tx_ms: Some(100),
                ..pb::Bfd::default()
            },
            "peer.bfd.min_tx_ms: is set but BFD is not enabled (set enabled / --bfd)".into(),
        ),
    ];
    for (bfd, expected) in cases {
        assert_eq!(BfdConfig::from_proto(&bfd, "peer.bfd"), Err(expected));
    }
}

#[test]
fn sha1_key_is_read_from_its_file_and_never_reported() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("bfd.key");
    std::fs::write(&key, "s3cret\n").expect("write");
    let bfd = pb::Bfd {
        auth_type: "meticulous-keyed-sha1".into(),
        key_id: 4,
        key_file: key.to_string_lossy().into_owned(),
        multihop: true,
        min_tx_ms: Some(50),
        ..enabled()
    };
    let config = BfdConfig::from_proto(&bfd, "peer.bfd")
        .expect("valid")
        .expect("enabled");
    let auth = config.auth.clone().expect("auth");
    assert_eq!(auth.kind, AuthType::MeticulousKeyedSha1);
    assert_eq!((auth.key_id, auth.secret.as_slice()), (4, &b"s3cret"[..]));
    assert!(!format!("{auth:?}").contains("s3cret"));
    let back = config.to_proto();
    assert_eq!(back.auth_type, "meticulous-keyed-sha1");
    assert_eq!(back.key_file, bfd.key_file);
    assert_eq!(back.min_tx_ms, Some(50));
    assert!(back.multihop);
    assert_eq!(
        BfdConfig::from_proto(&back, "peer.bfd").expect("valid"),
        Some(config)
    );
}
