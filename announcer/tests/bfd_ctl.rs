//! BFD configured the ways a user does it, on the real `ferrolb-announcer` binary against
//! BIRD: an IPv6 peer from a `--bgp-config` file (JSON keys), an IPv4 peer from `ctl peers add`
//! flags with keyed SHA1; `ctl peers list` shows both BFD sessions Up, BIRD too; a bad BFD
//! value is refused with the field named.

mod bfd_support;
mod bgp_support;

use std::process::Command;
use std::time::Duration;

use bfd_support::*;
use bgp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");

fn ctl(socket: &str, args: &[&str]) -> std::process::Output {
    let server = format!("unix:{socket}");
    let mut all = vec![BIN, "ctl", "--server", &server];
    all.extend_from_slice(args);
    netns_output(&all)
}

fn netns_output(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs")
}

#[test]
fn bfd_from_config_file_and_ctl_flags_comes_up_and_shows_in_peers_list() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let bird = Bird::start(
        &topology,
        BirdSetup {
            bfd: true,
            bfd_auth: r#"authentication keyed sha1; password "ctl-bfd-key" { id 9; };"#,
            hold_seconds: 9,
            multihop: false,
        },
    );
    let key = topology.path("bfd.key");
    write(&key, "ctl-bfd-key\n");
    let key = key.to_string_lossy().into_owned();
    let config = topology.path("bgp.json");
    write(
        &config,
        &format!(
            r#"{{"peers": [{{"address": "{ROUTER_V6}", "peer_asn": {ROUTER_AS}, "local_asn": {SPEAKER_AS},
                "port": {ROUTER_PORT}, "hold_time_seconds": 9, "connect_retry_seconds": 1,
                "bfd": true, "bfd_min_tx_ms": 300, "bfd_min_rx_ms": 300, "bfd_multiplier": 3,
                "bfd_auth_type": "keyed-sha1", "bfd_key_id": 9, "bfd_key_file": "{key}"}}]}}"#
        ),
    );
    let socket = topology
        .path("announcer.sock")
        .to_string_lossy()
        .into_owned();
    let log = std::fs::File::create(topology.path("announcer.log")).expect("log");
    let mut announcer = Command::new("ip")
        .args(["netns", "exec", &topology.speaker_ns, BIN])
        .args([
            "--bgp-config",
            &config.to_string_lossy(),
            "--listen",
            &format!("unix:{socket}"),
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("announcer starts");
    eventually_blocking("the gRPC socket", Duration::from_secs(10), || {
        std::path::Path::new(&socket).exists().then_some(())
    });
    let added = ctl(
        &socket,
        &[
            "peers",
            "add",
            "--address",
            ROUTER_V4,
            "--peer-asn",
            "64512",
            "--local-asn",
            "64513",
            "--port",
            "10179",
            "--hold-time-seconds",
            "9",
            "--connect-retry-seconds",
            "1",
            "--bfd",
            "--bfd-auth-type",
            "keyed-sha1",
            "--bfd-key-id",
            "9",
            "--bfd-key-file",
            &key,
        ],
    );
    assert!(added.status.success(), "{added:?}");
    // Up at 300 ms × 3 both ways: a detection time of 900 ms once the Poll Sequence that
    // follows Up has settled the intervals.
    let peers = eventually_blocking("both BFD sessions Up", Duration::from_secs(30), || {
        let out = ctl(&socket, &["peers", "list"]);
        let peers: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let all_up = peers.as_array()?.len() == 2
            && peers.as_array()?.iter().all(|p| {
                p["bfd"]["state"] == "up"
                    && p["bfd"]["detection_time_ms"] == 900
                    && p["state"] == "established"
            });
        all_up.then_some(peers)
    });
    assert_eq!(peers[0]["bfd"]["up_count"], 1, "{peers}");
    assert_eq!(bird.bfd_state(SPEAKER_V4).as_deref(), Some("Up"));
    assert_eq!(bird.bfd_state(SPEAKER_V6).as_deref(), Some("Up"));

    let refused = ctl(
        &socket,
        &[
            "peers",
            "add",
            "--address",
            "192.0.2.9",
            "--peer-asn",
            "64512",
            "--local-asn",
            "64513",
            "--bfd",
            "--bfd-multiplier",
            "0",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("peer.bfd.detect_multiplier: 0 must be 1..=255"),
        "{stderr}"
    );
    let _ = announcer.kill();
    let _ = announcer.wait();
}
