//! The BGP speaker wired into the real `ferrolb-announcer` binary: peers added with
//! `ctl peers add`, an address announced with `ctl announce --mode bgp` reaches a gobgpd
//! router, `ctl peers list` and `/metrics` report the session, and SIGTERM withdraws the route
//! and sends Cease before the process exits.

mod bgp_support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use bgp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");

fn ctl(socket: &str, args: &[&str]) -> String {
    let server = format!("unix:{socket}");
    let mut all = vec![BIN, "ctl", "--server", &server];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn announcer_binary_announces_over_bgp_via_ctl_and_withdraws_on_sigterm() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, SPEAKER_AS, None);
    let socket = topology
        .path("announcer.sock")
        .to_string_lossy()
        .into_owned();
    let log = std::fs::File::create(topology.path("announcer.log")).expect("log");
    let mut announcer = Command::new("ip")
        .args(["netns", "exec", &topology.speaker_ns, BIN])
        .args([
            "--bgp",
            "--listen",
            &format!("unix:{socket}"),
            "--metrics-listen",
            "127.0.0.1:9721",
            // No link poll within the test: the phase must follow the session by itself.
            "--link-poll-interval",
            "600s",
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("announcer starts");
    eventually_blocking("the gRPC socket", Duration::from_secs(10), || {
        std::path::Path::new(&socket).exists().then_some(())
    });

    // Peer events arrive on WatchEvents.
    let watch = Command::new(BIN)
        .args([
            "ctl",
            "--server",
            &format!("unix:{socket}"),
            "watch",
            "--count",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ctl watch");
    std::thread::sleep(Duration::from_millis(300));
    // Announced before any session exists: PENDING until the session comes up.
    ctl(&socket, &["announce", "198.51.100.10", "--mode", "bgp"]);
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
        ],
    );
    assert!(added.contains("\"address\":\"192.0.2.2\""), "{added}");
    eventually_blocking("the /32 at gobgpd", Duration::from_secs(15), || {
        router.path_attrs(VIP_V4)
    });

    let peers: serde_json::Value =
        serde_json::from_str(&ctl(&socket, &["peers", "list"])).expect("JSON");
    assert_eq!(peers[0]["state"], "established", "{peers}");
    assert_eq!(peers[0]["prefixes_sent"], 1, "{peers}");

    // With the session up, a malformed community is refused with the request's field, not
    // stored as PENDING "no BGP session is established".
    let refused = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let args = announcer::ctl::CtlArgs {
                server: format!("unix:{socket}"),
                ca: None,
                cert: None,
                key: None,
                server_name: None,
                command: announcer::ctl::CtlCommand::State,
            };
            let mut client = announcer::ctl::connect(&args).await.expect("connect");
            let announcement = proto::announcer::v1::Announcement {
                address: "198.51.100.11".into(),
                mode: proto::announcer::v1::Mode::Bgp.into(),
                bgp: Some(proto::announcer::v1::BgpAttributes {
                    communities: vec!["65000".into()],
                    ..Default::default()
                }),
                ..Default::default()
            };
            client
                .announce(proto::announcer::v1::AnnounceRequest {
                    announcement: Some(announcement),
                })
                .await
                .expect_err("malformed community accepted")
        });
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert_eq!(
        refused.message(),
        r#"announcement.bgp.communities[0]: "65000" is not ASN:VALUE"#
    );

    // The phase follows the session's PeerChanged event, asynchronously.
    let state = eventually_blocking("the announcement active", Duration::from_secs(5), || {
        let state: serde_json::Value =
            serde_json::from_str(&ctl(&socket, &["state"])).expect("JSON");
        state
            .to_string()
            .contains("\"phase\":\"active\"")
            .then_some(state)
    });
    assert_eq!(
        state["announcements"].as_array().map(Vec::len),
        Some(1),
        "{state}"
    );
    let events = watch.wait_with_output().expect("watch ends after 3 events");
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(events.contains("peer_changed"), "{events}");

    let metrics = topology.in_speaker_ns(|| async {
        let mut stream = std::net::TcpStream::connect("127.0.0.1:9721").expect("metrics port");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("response");
        text
    });
    assert!(
        metrics.contains("bgp_session_up{peer=\"192.0.2.2\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bgp_announced_prefixes{peer=\"192.0.2.2\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bgp_updates_sent_total{peer=\"192.0.2.2\"}"),
        "{metrics}"
    );

    let pid = announcer.id().to_string();
    run(&["kill", "-TERM", &pid]);
    let status = announcer.wait().expect("announcer exits");
    assert!(status.success(), "announcer exit status {status}");
    eventually_blocking("the /32 withdrawn", Duration::from_secs(10), || {
        router.path_attrs(VIP_V4).is_none().then_some(())
    });
    let log = router.daemon.log();
    assert!(
        log.contains("code 6(cease) subcode 2(administrative shutdown)"),
        "gobgpd log:\n{log}"
    );
}

/// `ctl announce` flags and `ctl sync` file keys set one route's attributes (iBGP, so
/// LOCAL_PREF is sent too); gobgpd receives them. A bad value is one line on stderr naming the
/// request's field.
#[test]
fn ctl_announce_and_sync_set_per_route_attributes_that_gobgpd_receives() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, ROUTER_AS, None);
    let socket = topology
        .path("announcer.sock")
        .to_string_lossy()
        .into_owned();
    let log = std::fs::File::create(topology.path("announcer.log")).expect("log");
    let _announcer = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &topology.speaker_ns, BIN])
            .args(["--bgp", "--listen", &format!("unix:{socket}")])
            .args(["--metrics-listen", "", "--bgp-restart-marker", ""])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("announcer starts"),
    );
    eventually_blocking("the gRPC socket", Duration::from_secs(10), || {
        std::path::Path::new(&socket).exists().then_some(())
    });
    ctl(
        &socket,
        &[
            "peers",
            "add",
            "--address",
            ROUTER_V4,
            "--peer-asn",
            "64512",
            "--local-asn",
            "64512",
            "--port",
            "10179",
            "--connect-retry-seconds",
            "1",
            "--community",
            "64512:1",
        ],
    );
    let announced = ctl(
        &socket,
        &[
            "announce",
            "198.51.100.10",
            "--mode",
            "bgp",
            "--community",
            "65000:100",
            "--community",
            "65000:200",
            "--large-community",
            "64512:7:8",
            "--local-pref",
            "250",
            "--med",
            "30",
        ],
    );
    assert!(announced.contains("\"local_pref\":250"), "{announced}");
    let attrs = eventually_blocking("the /32 at gobgpd", Duration::from_secs(20), || {
        router.path_attrs(VIP_V4)
    });
    assert_eq!(attr(&attrs, 5).expect("LOCAL_PREF")["value"], 250);
    assert_eq!(attr(&attrs, 4).expect("MED")["metric"], 30);
    // The route's communities replace the peer's 64512:1.
    assert_eq!(
        attr(&attrs, 8).expect("COMMUNITIES")["communities"],
        serde_json::json!([65000u32 << 16 | 100, 65000u32 << 16 | 200])
    );
    let large = attr(&attrs, 32).expect("LARGE_COMMUNITIES").to_string();
    assert!(
        large.contains("64512") && large.contains('7') && large.contains('8'),
        "{large}"
    );

    // The same through a Sync file; the first entry keeps the peer's community.
    let file = topology.path("set.json");
    write(
        &file,
        r#"[{"address": "198.51.100.10", "mode": "bgp"},
            {"address": "198.51.100.11", "mode": "bgp", "communities": ["65001:5"],
             "large_communities": ["1:2:3"], "local_pref": 90, "med": 4}]"#,
    );
    let file = file.to_string_lossy().into_owned();
    ctl(&socket, &["sync", "--generation", "1", "--file", &file]);
    let attrs = eventually_blocking("the second /32 at gobgpd", Duration::from_secs(20), || {
        router.path_attrs("198.51.100.11/32")
    });
    assert_eq!(attr(&attrs, 5).expect("LOCAL_PREF")["value"], 90);
    assert_eq!(attr(&attrs, 4).expect("MED")["metric"], 4);
    assert_eq!(
        attr(&attrs, 8).expect("COMMUNITIES")["communities"],
        serde_json::json!([65001u32 << 16 | 5])
    );
    eventually_blocking(
        "the first route re-sent with the peer's community",
        Duration::from_secs(20),
        || {
            router
                .path_attrs(VIP_V4)
                .and_then(|a| attr(&a, 8).cloned())
                .filter(|c| c["communities"] == serde_json::json!([64512u32 << 16 | 1]))
        },
    );

    // Errors: one line, the gRPC code, the request's field.
    let bad = std::process::Command::new(BIN)
        .args(["ctl", "--server", &format!("unix:{socket}")])
        .args([
            "announce",
            "198.51.100.12",
            "--mode",
            "bgp",
            "--community",
            "65000",
        ])
        .output()
        .expect("ctl");
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "InvalidArgument: announcement.bgp.communities[0]: \"65000\" is not ASN:VALUE\n"
    );
    write(
        &topology.path("bad.json"),
        r#"[{"address": "198.51.100.10", "mode": "bgp", "large_communities": ["1:2"]}]"#,
    );
    let bad = std::process::Command::new(BIN)
        .args(["ctl", "--server", &format!("unix:{socket}")])
        .args(["sync", "--generation", "2", "--file"])
        .arg(topology.path("bad.json"))
        .output()
        .expect("ctl");
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "InvalidArgument: announcements[0].bgp.large_communities[0]: \"1:2\" is not GLOBAL:LOCAL1:LOCAL2\n"
    );
}

/// The announcer process, killed by PID when the test ends (also when it fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
