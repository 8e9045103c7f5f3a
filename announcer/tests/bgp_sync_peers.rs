//! SyncPeers against a real BIRD 2 router: the managed peer set is declarative. A peer sent
//! again unchanged keeps its session (BIRD receives no second OPEN), a changed one is
//! replaced (a new OPEN), one left out is closed with Cease/Peer De-configured; the TCP MD5
//! password comes in the request, not from a file. Local peers (AddPeer) and managed ones
//! never touch each other, and generations follow Sync's rules.

mod bgp_support;

use std::net::IpAddr;
use std::time::Duration;

use announcer::bgp::config::desired_peers;
use announcer::bgp::fsm::State;
use announcer::bgp::speaker::SpeakerError;
use bgp_support::*;
use proto::announcer::v1 as pb;

const PASSWORD: &str = "rack-1-secret";

/// BIRD, passive, MD5-keyed, logging every packet (so OPENs can be counted).
fn start_bird(topology: &Topology) -> (Daemon, String) {
    let config = format!(
        r#"router id {ROUTER_V4};
log stderr all;
protocol device {{ scan time 1; }}
protocol bgp lb {{
  local {ROUTER_V4} port {ROUTER_PORT} as {ROUTER_AS};
  neighbor {SPEAKER_V4} as {SPEAKER_AS};
  passive on;
  password "{PASSWORD}";
  hold time 9; keepalive time 3;
  debug {{ states, packets }};
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
    );
    let path = topology.path("bird.conf");
    write(&path, &config);
    let socket = topology.path("bird.ctl").to_string_lossy().into_owned();
    let daemon = topology.spawn_router(
        &[
            "bird",
            "-f",
            "-c",
            &path.to_string_lossy(),
            "-s",
            &socket,
            "-P",
            &topology.path("bird.pid").to_string_lossy(),
        ],
        "bird.log",
        &[],
    );
    (daemon, socket)
}

/// OPEN messages BIRD received (its packet debug log).
fn opens_received(bird: &Daemon) -> usize {
    bird.log()
        .lines()
        .filter(|l| l.contains("lb: Got OPEN"))
        .count()
}

/// The managed peer as the provider sends it: password bytes in the request.
fn managed_peer(hold: u32) -> pb::Peer {
    pb::Peer {
        address: ROUTER_V4.into(),
        port: u32::from(ROUTER_PORT),
        peer_asn: ROUTER_AS,
        local_asn: 0, // from --bgp-local-asn
        hold_time_seconds: Some(hold),
        connect_retry_seconds: Some(1),
        password: PASSWORD.as_bytes().to_vec(),
        families: vec!["ipv4-unicast".into()],
        ..pb::Peer::default()
    }
}

#[test]
fn sync_peers_leaves_identical_peers_alone_replaces_changed_ones_and_closes_removed_ones() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let (bird, socket) = start_bird(&topology);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let router: IpAddr = ROUTER_V4.parse().expect("ip");
        let desired = |peers: &[pb::Peer]| desired_peers(peers, Some(SPEAKER_AS));

        let outcome = speaker
            .sync_peers(10, desired(&[managed_peer(9)]))
            .await
            .expect("first set");
        assert_eq!(
            (outcome.added, outcome.refused.len()),
            (1, 0),
            "{outcome:?}"
        );
        let up = established(&speaker, router).await;
        assert!(up.managed);
        assert_eq!(
            up.capabilities.first().map(String::as_str),
            Some("mp-ipv4-unicast")
        );
        assert!(
            !up.capabilities.iter().any(|c| c == "mp-ipv6-unicast"),
            "{up:?}"
        );
        // The password is never reported back, only that one is set.
        let reported = announcer::bgp::backend::peer_status(&up);
        let shown = reported.peer.expect("peer");
        assert!(shown.password.is_empty() && shown.password_set);
        assert!(!format!("{up:?}").contains(PASSWORD));
        let opens = opens_received(&bird);
        assert_eq!(opens, 1, "{}", bird.log());

        // The same set again (a new leader, a resend): nothing happens to the session.
        let outcome = speaker
            .sync_peers(11, desired(&[managed_peer(9)]))
            .await
            .expect("same set");
        assert_eq!(
            (outcome.unchanged, outcome.added, outcome.replaced),
            (1, 0, 0)
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        let still = speaker.peer(router).expect("peer");
        assert_eq!(still.state, State::Established);
        assert!(still.uptime_seconds >= up.uptime_seconds + 3, "{still:?}");
        assert_eq!(opens_received(&bird), 1, "a second OPEN: {}", bird.log());

        // Generations: older is refused, equal only with the identical set.
        let stale = speaker.sync_peers(10, desired(&[managed_peer(9)])).await;
        assert!(
            matches!(stale, Err(SpeakerError::Generation(_))),
            "{stale:?}"
        );
        let different = speaker.sync_peers(11, desired(&[managed_peer(30)])).await;
        assert!(
            matches!(different, Err(SpeakerError::Generation(_))),
            "{different:?}"
        );

        // Local peers and managed ones keep apart.
        let mut local = router_peer();
        local.address = ROUTER_V6.parse().expect("ip");
        speaker.add_peer(local.clone()).await.expect("local peer");
        let mut over_managed = router_peer();
        over_managed.hold_time = 30;
        let refused = speaker.add_peer(over_managed).await;
        assert!(
            matches!(refused, Err(SpeakerError::Managed(_))),
            "{refused:?}"
        );
        let mut v6 = managed_peer(9);
        v6.address = ROUTER_V6.into();
        let outcome = speaker
            .sync_peers(12, desired(&[managed_peer(9), v6]))
            .await
            .expect("set with a local address");
        assert_eq!(outcome.unchanged, 1);
        assert_eq!(outcome.refused.len(), 1, "{outcome:?}");
        assert!(
            outcome.refused[0]
                .message
                .contains("peers[1].address: 2001:db8:250::2 is a locally configured peer"),
            "{outcome:?}"
        );
        assert!(!speaker.peer(local.address).expect("local").managed);
        assert_eq!(opens_received(&bird), 1);

        // A changed peer is replaced: a new OPEN, Established again.
        let outcome = speaker
            .sync_peers(13, desired(&[managed_peer(12)]))
            .await
            .expect("changed set");
        assert_eq!(outcome.replaced, 1, "{outcome:?}");
        let again = established(&speaker, router).await;
        assert_eq!(again.config.hold_time, 12);
        eventually("a second OPEN at BIRD", Duration::from_secs(10), || {
            (opens_received(&bird) == 2).then_some(())
        })
        .await;

        // Removed: Cease/Peer De-configured at BIRD, the local peer untouched.
        let outcome = speaker.sync_peers(14, Vec::new()).await.expect("empty set");
        assert_eq!(outcome.removed, 1);
        assert!(speaker.peer(router).is_none());
        assert!(speaker.peer(local.address).is_some());
        let closed = eventually("BIRD sees the Cease", Duration::from_secs(10), || {
            let text = try_run(&["birdc", "-s", &socket, "show", "protocols", "all", "lb"]);
            text.contains("Peer de-configured").then_some(text)
        })
        .await;
        assert!(!closed.contains("Established"), "{closed}");
    });
}

#[test]
fn managed_peers_refuse_bad_fields_by_name_and_need_a_local_asn() {
    let mut bad_hold = managed_peer(2);
    bad_hold.address = "192.0.2.7".into();
    let mut bad_family = managed_peer(9);
    bad_family.families = vec!["l2vpn-evpn".into()];
    let mut with_file = managed_peer(9);
    with_file.password_file = "/etc/passwd".into();
    let entries = desired_peers(&[bad_hold, bad_family, with_file], Some(SPEAKER_AS));
    let messages: Vec<String> = entries
        .iter()
        .map(|e| e.as_ref().expect_err("refused").message.clone())
        .collect();
    assert_eq!(
        messages,
        [
            "peers[0].hold_time_seconds: 2 must be 0 or 3..=65535",
            "peers[1].families[0]: \"l2vpn-evpn\" is not \"ipv4-unicast\" or \"ipv6-unicast\"",
            "peers[2].password_file: managed peers give the password itself (password)",
        ]
    );
    let without_asn = desired_peers(&[managed_peer(9)], None);
    assert_eq!(
        without_asn[0].as_ref().expect_err("refused").message,
        "peers[0].local_asn: not given, and the announcer has no --bgp-local-asn"
    );
}
