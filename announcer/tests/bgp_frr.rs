//! The speaker against a real FRR `bgpd` (standalone, `-Z`, no zebra) in a network namespace:
//! eBGP and iBGP sessions, the /32 and the /128 with our next hops, withdraw, routes dropped
//! when the speaker dies. FRR advertises our own routes back to us (AS path "64512 64513"); the
//! speaker must discard them without harm. A third test brings a session up with TCP MD5.

mod bgp_support;

use std::path::PathBuf;
use std::time::Duration;

use announcer::bgp::fsm::State;
use bgp_support::*;
use serde_json::Value;

const BGPD: &str = "/usr/lib/frr/bgpd";

struct Frr {
    daemon: Daemon,
    vty_dir: PathBuf,
}

impl Frr {
    fn start(topology: &Topology, peer_as: u32, password: Option<&str>) -> Frr {
        let auth = password
            .map(|p| format!(" neighbor {SPEAKER_V4} password {p}\n"))
            .unwrap_or_default();
        let config = format!(
            "frr defaults datacenter
hostname rtr
log stdout informational
router bgp {ROUTER_AS}
 bgp router-id {ROUTER_V4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {SPEAKER_V4} remote-as {peer_as}
 neighbor {SPEAKER_V4} passive
 neighbor {SPEAKER_V4} timers 3 9
{auth} address-family ipv4 unicast
  neighbor {SPEAKER_V4} activate
 exit-address-family
 address-family ipv6 unicast
  neighbor {SPEAKER_V4} activate
 exit-address-family
"
        );
        let path = topology.path("bgpd.conf");
        write(&path, &config);
        let vty_dir = topology.dir.path().to_path_buf();
        let port = ROUTER_PORT.to_string();
        let daemon = topology.spawn_router(
            &[
                BGPD,
                "-Z",
                "-S",
                "-p",
                &port,
                "-l",
                ROUTER_V4,
                "-f",
                &path.to_string_lossy(),
                "-i",
                &topology.path("bgpd.pid").to_string_lossy(),
                "--vty_socket",
                &vty_dir.to_string_lossy(),
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            "bgpd.log",
            &[],
        );
        Frr { daemon, vty_dir }
    }

    fn show(&self, command: &str) -> Value {
        let text = try_run(&[
            "vtysh",
            "--vty_socket",
            &self.vty_dir.to_string_lossy(),
            "-d",
            "bgpd",
            "-c",
            command,
        ]);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The next hops FRR holds for `prefix` from us, if present.
    fn next_hops(&self, prefix: &str) -> Option<Vec<String>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let table = self.show(&format!("show bgp {family} unicast json"));
        let paths = table["routes"][prefix].as_array()?;
        let ours = paths.iter().find(|p| p["peerId"] == SPEAKER_V4)?;
        Some(
            ours["nexthops"]
                .as_array()?
                .iter()
                .filter_map(|n| n["ip"].as_str().map(str::to_string))
                .collect(),
        )
    }
}

fn exercise(router_as_peer: u32, local_asn: u32) {
    if !prerequisites(&[BGPD, "vtysh"]) {
        return;
    }
    let topology = Topology::new();
    let router = Frr::start(&topology, router_as_peer, None);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut peer = router_peer();
        peer.local_asn = local_asn;
        // bgpd without zebra knows no interfaces and withdraws routes whose MP_REACH carries a
        // link-local next hop ("no peer interface information"). A multihop TTL makes the
        // speaker send the global IPv6 next hop alone, as it does for any non-adjacent peer.
        peer.ebgp_multihop_ttl = 2;
        speaker.add_peer(peer).await.expect("peer added");
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        announce_vips(&speaker);
        let v4 = eventually("the /32 in FRR", Duration::from_secs(10), || {
            router.next_hops(VIP_V4)
        })
        .await;
        assert_eq!(v4.first().map(String::as_str), Some(SPEAKER_V4));
        let v6 = eventually("the /128 in FRR", Duration::from_secs(10), || {
            router.next_hops(VIP_V6)
        })
        .await;
        assert!(v6.iter().any(|h| h == SPEAKER_V6), "{v6:?}");
        // FRR reflects our routes back (eBGP); they are discarded and the session stays up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = speaker.peer(ROUTER_V4.parse().expect("ip")).expect("peer");
        assert_eq!(status.state, State::Established, "{}", status.last_error);

        withdraw_vips(&speaker);
        eventually("routes withdrawn from FRR", Duration::from_secs(10), || {
            (router.next_hops(VIP_V4).is_none() && router.next_hops(VIP_V6).is_none()).then_some(())
        })
        .await;
        announce_vips(&speaker);
        eventually("routes back in FRR", Duration::from_secs(10), || {
            (router.next_hops(VIP_V4).is_some() && router.next_hops(VIP_V6).is_some()).then_some(())
        })
        .await;
    });
    let start = std::time::Instant::now();
    while router.next_hops(VIP_V4).is_some() || router.next_hops(VIP_V6).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "routes stayed after the speaker died; bgpd log:\n{}",
            router.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn frr_ebgp_installs_withdraws_and_drops_our_routes() {
    exercise(SPEAKER_AS, SPEAKER_AS);
}

#[test]
fn frr_ibgp_installs_withdraws_and_drops_our_routes() {
    exercise(ROUTER_AS, ROUTER_AS);
}

#[test]
fn frr_md5_session_comes_up_only_with_the_right_password() {
    if !prerequisites(&[BGPD, "vtysh"]) {
        return;
    }
    let topology = Topology::new();
    let router = Frr::start(&topology, SPEAKER_AS, Some("frr-md5-key"));
    let right = topology.path("right.pw");
    let wrong = topology.path("wrong.pw");
    write(&right, "frr-md5-key\n");
    write(&wrong, "not-the-key\n");
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut wrong_peer = router_peer();
        wrong_peer.password = Some(b"not-the-key".to_vec());
        wrong_peer.password_file = Some(wrong.clone());
        let mut right_peer = router_peer();
        right_peer.password = Some(b"frr-md5-key".to_vec());
        right_peer.password_file = Some(right.clone());
        right_peer.ebgp_multihop_ttl = 2;
        md5_wrong_then_right(&speaker, wrong_peer, right_peer).await;
        announce_vips(&speaker);
        let v4 = eventually("the /32 in FRR over MD5", Duration::from_secs(10), || {
            router.next_hops(VIP_V4)
        })
        .await;
        assert_eq!(v4.first().map(String::as_str), Some(SPEAKER_V4));
    });
    drop(router);
}
