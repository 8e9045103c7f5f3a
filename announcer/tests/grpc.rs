//! The API contract over the real binary: Sync generations, BGP without a speaker, transport
//! security (TLS with client certificates, plaintext refused off loopback).
//!
//! These tests need no root: the announcer runs in the test's own namespace and only BGP-mode
//! announcements are made, which open no packet socket.

mod common;

use std::time::{Duration, Instant};

use announcer::ctl::{CtlArgs, CtlCommand, connect};
use common::pki::{free_port, leaf, new_ca};
use common::{Announcer, ctl_at, stderr};
use proto::announcer::v1 as pb;

#[test]
fn sync_replaces_the_set_and_refuses_older_generations() {
    let announcer = Announcer::start_here(&[], true);
    let first = announcer.write_file(
        "first.json",
        br#"[{"address": "203.0.113.1", "mode": "bgp"}, {"address": "203.0.113.2", "mode": "bgp", "labels": {"service": "default/web"}}]"#,
    );
    let second = announcer.write_file("second.json", br#"[{"address": "203.0.113.2", "mode": "bgp", "labels": {"service": "default/web"}}, {"address": "2001:db8:1::3", "mode": "bgp"}]"#);

    let r = announcer.ctl_ok(&["sync", "--generation", "5", "--file", common::path(&first)]);
    assert_eq!(
        (
            r["generation"].as_u64(),
            r["added"].as_u64(),
            r["removed"].as_u64()
        ),
        (Some(5), Some(2), Some(0))
    );
    // Same generation, same set: an idempotent retry.
    let r = announcer.ctl_ok(&["sync", "--generation", "5", "--file", common::path(&first)]);
    assert_eq!(
        (r["added"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    // Same generation, different set: refused.
    let out = announcer.ctl(&["sync", "--generation", "5", "--file", common::path(&second)]);
    assert!(
        stderr(&out).contains("FailedPrecondition: generation: 5 was already accepted"),
        "{}",
        stderr(&out)
    );
    let r = announcer.ctl_ok(&["sync", "--generation", "6", "--file", common::path(&second)]);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["removed"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let out = announcer.ctl(&["sync", "--generation", "4", "--file", common::path(&first)]);
    assert!(
        stderr(&out).contains("generation: 4 is older than the accepted generation 6"),
        "{}",
        stderr(&out)
    );

    let state = announcer.ctl_ok(&["state"]);
    assert_eq!(state["generation"], 6);
    let addresses: Vec<&str> = state["announcements"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert_eq!(addresses, ["203.0.113.2", "2001:db8:1::3"]);
}

#[test]
fn a_bad_entry_in_sync_is_named_by_index_and_field() {
    let announcer = Announcer::start_here(&[], true);
    let file = announcer.write_file(
        "bad.json",
        br#"[{"address": "203.0.113.1", "mode": "bgp"}, {"address": "203.0.113.300", "mode": "bgp"}]"#,
    );
    let out = announcer.ctl(&["sync", "--generation", "1", "--file", common::path(&file)]);
    assert!(
        stderr(&out).contains(
            r#"InvalidArgument: announcements[1].address: "203.0.113.300" is not an IP address"#
        ),
        "{}",
        stderr(&out)
    );
    let dup = announcer.write_file(
        "dup.json",
        br#"[{"address": "203.0.113.1", "mode": "bgp"}, {"address": "203.0.113.1", "mode": "bgp"}]"#,
    );
    let out = announcer.ctl(&["sync", "--generation", "1", "--file", common::path(&dup)]);
    assert!(
        stderr(&out).contains("announcements[1]: duplicates announcements[0]"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn without_a_bgp_speaker_bgp_announcements_are_pending_and_peer_calls_fail() {
    let announcer = Announcer::start_here(&[], true);
    let args = CtlArgs {
        server: announcer.server(),
        ca: None,
        cert: None,
        key: None,
        server_name: None,
        command: CtlCommand::State,
    };
    let mut client = connect(&args).await.expect("connect");
    let announcement = pb::Announcement {
        address: "203.0.113.7".into(),
        mode: pb::Mode::Bgp.into(),
        bgp: Some(pb::BgpAttributes {
            communities: vec!["65000:100".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = client
        .announce(pb::AnnounceRequest {
            announcement: Some(announcement),
        })
        .await
        .expect("announce")
        .into_inner()
        .status
        .expect("status");
    assert_eq!(status.phase, pb::Phase::Pending as i32);
    assert_eq!(status.message, "no BGP speaker configured");

    let error = client
        .add_peer(pb::AddPeerRequest {
            peer: Some(pb::Peer::default()),
        })
        .await
        .expect_err("add_peer");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert!(
        error.message().contains("BGP mode is not enabled"),
        "{}",
        error.message()
    );
    let error = client
        .list_peers(pb::ListPeersRequest {})
        .await
        .expect_err("list_peers");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);

    let state = client
        .get_state(pb::GetStateRequest {})
        .await
        .expect("state")
        .into_inner();
    let bgp = state
        .modes
        .iter()
        .find(|m| m.mode == pb::Mode::Bgp as i32)
        .expect("bgp health");
    assert!(!bgp.healthy);

    // Validation errors name the field and the value.
    let error = client
        .announce(pb::AnnounceRequest {
            announcement: Some(pb::Announcement {
                address: "203.0.113.8".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("no mode");
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        error.message(),
        "announcement.mode: is required (layer2, vip or bgp)"
    );
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused_at_start() {
    let mut announcer = Announcer::start_here(&["--listen", "0.0.0.0:0"], false);
    let status = announcer.child.wait().expect("wait");
    assert!(!status.success());
    let log = announcer.log_text();
    assert!(
        log.contains("refusing plaintext gRPC on 0.0.0.0:0"),
        "{log}"
    );
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    rogue_cert: String,
    rogue_key: String,
}

fn pki() -> Pki {
    let ca = new_ca("ferrolb test CA");
    let rogue_ca = new_ca("someone else");
    let (server_cert, server_key) = leaf(&ca, vec!["localhost".into()], true);
    let (client_cert, client_key) = leaf(&ca, vec!["ferrolb-provider".into()], false);
    let (rogue_cert, rogue_key) = leaf(&rogue_ca, vec!["ferrolb-provider".into()], false);
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

#[test]
fn tls_requires_a_client_certificate_from_the_configured_ca() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_string()
    };
    let (ca, cert, key) = (
        write("ca.pem", &pki.ca),
        write("server.pem", &pki.server_cert),
        write("server.key", &pki.server_key),
    );
    let (client_cert, client_key) = (
        write("client.pem", &pki.client_cert),
        write("client.key", &pki.client_key),
    );
    let (rogue_cert, rogue_key) = (
        write("rogue.pem", &pki.rogue_cert),
        write("rogue.key", &pki.rogue_key),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _announcer = Announcer::start_here(
        &[
            "--listen",
            &listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
        ],
        false,
    );
    let server = format!("https://127.0.0.1:{port}");
    let with = |extra: &[&str]| {
        let mut args = vec!["--tls-ca", ca.as_str(), "--tls-server-name", "localhost"];
        args.extend_from_slice(extra);
        args.push("state");
        ctl_at(&server, &args)
    };
    // Wait for the listener with the authenticated client.
    let start = Instant::now();
    let mut ok = with(&["--tls-cert", &client_cert, "--tls-key", &client_key]);
    while !ok.status.success() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        ok = with(&["--tls-cert", &client_cert, "--tls-key", &client_key]);
    }
    assert!(
        ok.status.success(),
        "authenticated client refused: {}",
        stderr(&ok)
    );
    let state: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("JSON");
    assert_eq!(state["generation"], 0);

    let anonymous = with(&[]);
    assert!(
        !anonymous.status.success(),
        "a client without certificate got an answer"
    );
    assert!(anonymous.stdout.is_empty());
    assert!(
        stderr(&anonymous).contains(
            "it requires a client certificate and none was given; pass --tls-cert and --tls-key"
        ),
        "{}",
        stderr(&anonymous)
    );
    let rogue = with(&["--tls-cert", &rogue_cert, "--tls-key", &rogue_key]);
    assert!(
        !rogue.status.success(),
        "a client with a certificate from another CA got an answer"
    );
    assert!(rogue.stdout.is_empty());
    assert!(
        stderr(&rogue).contains(&format!("it refused the client certificate {rogue_cert}")),
        "{}",
        stderr(&rogue)
    );
    let plaintext = ctl_at(&format!("http://127.0.0.1:{port}"), &["state"]);
    assert!(
        !plaintext.status.success(),
        "a plaintext client got an answer"
    );
}

#[tokio::test]
async fn malformed_bgp_attributes_are_refused_naming_the_request_field() {
    let announcer = Announcer::start_here(&[], true);
    let args = CtlArgs {
        server: announcer.server(),
        ca: None,
        cert: None,
        key: None,
        server_name: None,
        command: CtlCommand::State,
    };
    let mut client = connect(&args).await.expect("connect");
    let bgp = |address: &str, communities: &[&str], large: &[&str]| pb::Announcement {
        address: address.into(),
        mode: pb::Mode::Bgp.into(),
        bgp: Some(pb::BgpAttributes {
            communities: communities.iter().map(|c| c.to_string()).collect(),
            large_communities: large.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };

    let error = client
        .announce(pb::AnnounceRequest {
            announcement: Some(bgp("203.0.113.7", &["65000"], &[])),
        })
        .await
        .expect_err("bad community accepted");
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
    assert_eq!(
        error.message(),
        r#"announcement.bgp.communities[0]: "65000" is not ASN:VALUE"#
    );

    let error = client
        .sync(pb::SyncRequest {
            generation: 1,
            announcements: vec![
                bgp("203.0.113.1", &["65000:1"], &[]),
                bgp("203.0.113.2", &[], &[]),
                bgp("203.0.113.3", &[], &["1:2:3"]),
                bgp("203.0.113.4", &[], &["1:2"]),
            ],
            node: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("bad large community accepted");
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
    assert_eq!(
        error.message(),
        r#"announcements[3].bgp.large_communities[0]: "1:2" is not GLOBAL:LOCAL1:LOCAL2"#
    );

    let state = client
        .get_state(pb::GetStateRequest {})
        .await
        .expect("state")
        .into_inner();
    assert!(state.announcements.is_empty(), "{state:?}");
    assert_eq!(state.generation, 0);
}

/// Runs the server with `args` and waits (10 s at most) for it to exit on its own.
fn exit_of(args: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = format!("unix:{}", dir.path().join("a.sock").display());
    let mut child = std::process::Command::new(common::BIN)
        .args(args)
        .args(["--listen", &socket])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_listener_that_cannot_be_bound_stops_the_process_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();

    let (status, stderr) = exit_of(&["--metrics-listen", &address]);
    assert!(
        !status.success(),
        "ran with its metrics port taken: {stderr}"
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("binding --metrics-listen {address}")),
        "{stderr}"
    );

    let (status, stderr) = exit_of(&["--metrics-listen", "", "--listen", &address]);
    assert!(!status.success(), "ran with its gRPC port taken: {stderr}");
    assert!(stderr.contains(&address), "{stderr}");
}

#[test]
fn candidates_and_labels_are_reported_back_and_a_change_of_them_is_counted_as_added() {
    let announcer = Announcer::start_here(&[], true);
    let first = announcer.write_file(
        "first.json",
        br#"[{"address": "203.0.113.1", "mode": "bgp", "labels": {"service": "default/web"}, "candidates": ["node-a", "node-b"]}]"#,
    );
    let second = announcer.write_file(
        "second.json",
        br#"[{"address": "203.0.113.1", "mode": "bgp", "labels": {"service": "default/web"}, "candidates": ["node-b", "node-a"]}]"#,
    );
    let path = common::path;
    announcer.ctl_ok(&[
        "sync",
        "--generation",
        "1",
        "--node",
        "node-a",
        "--file",
        path(&first),
    ]);
    let r = announcer.ctl_ok(&[
        "sync",
        "--generation",
        "2",
        "--node",
        "node-a",
        "--file",
        path(&second),
    ]);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["removed"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{r}"
    );
    let state = announcer.ctl_ok(&["state"]);
    let entry = &state["announcements"][0];
    assert_eq!(
        entry["candidates"],
        serde_json::json!(["node-b", "node-a"]),
        "{state}"
    );
    assert_eq!(entry["labels"]["service"], "default/web", "{state}");
}
