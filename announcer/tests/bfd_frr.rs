//! BFD against FRR's `bfdd` (with `zebra` and `bgpd`, `neighbor … bfd`) in network namespaces:
//! the session comes Up at both ends; when the node dies without a word FRR withdraws our
//! routes within the BFD detection time, long before the 9 s hold timer; a link that drops
//! packets (nftables) takes BFD down and it comes back Up when the link heals.

mod bfd_support;
mod bgp_support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use announcer::bfd::State as BfdState;
use announcer::bgp::config::PeerConfig;
use bfd_support::*;
use bgp_support::*;
use serde_json::Value;

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BFDD: &str = "/usr/lib/frr/bfdd";
const BGPD: &str = "/usr/lib/frr/bgpd";

struct Frr {
    _daemons: Vec<Daemon>,
    vty_dir: PathBuf,
}

impl Frr {
    fn start(topology: &Topology) -> Frr {
        let dir = topology.dir.path().to_path_buf();
        let zserv = topology.path("zserv.api").to_string_lossy().into_owned();
        let vty = dir.to_string_lossy().into_owned();
        write(
            &topology.path("zebra.conf"),
            "hostname rtr\nlog stdout informational\n",
        );
        write(
            &topology.path("bfdd.conf"),
            "hostname rtr\nlog stdout informational\n",
        );
        write(
            &topology.path("bgpd.conf"),
            &format!(
                "frr defaults datacenter
hostname rtr
log stdout informational
router bgp {ROUTER_AS}
 bgp router-id {ROUTER_V4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {SPEAKER_V4} remote-as {SPEAKER_AS}
 neighbor {SPEAKER_V4} passive
 neighbor {SPEAKER_V4} timers 3 9
 neighbor {SPEAKER_V4} bfd
 address-family ipv4 unicast
  neighbor {SPEAKER_V4} activate
 exit-address-family
"
            ),
        );
        let daemon = |binary: &str, name: &str, extra: &[&str]| {
            let config = topology.path(&format!("{name}.conf"));
            let pid = topology.path(&format!("{name}.pid"));
            let mut args = vec![
                binary,
                "-z",
                &zserv,
                "-f",
                config.to_str().expect("path"),
                "-i",
                pid.to_str().expect("path"),
                "--vty_socket",
                &vty,
                "-P",
                "0",
                "--log",
                "stdout",
            ];
            args.extend_from_slice(extra);
            topology.spawn_router(&args, &format!("{name}.log"), &[])
        };
        let zebra = daemon(ZEBRA, "zebra", &[]);
        // bgpd and bfdd register with zebra; give it its socket first.
        eventually_blocking("zebra's socket", Duration::from_secs(10), || {
            std::path::Path::new(&zserv).exists().then_some(())
        });
        let bfdctl = topology.path("bfdd.sock").to_string_lossy().into_owned();
        let bfdd = daemon(BFDD, "bfdd", &["--bfdctl", &bfdctl]);
        let port = ROUTER_PORT.to_string();
        let bgpd = daemon(BGPD, "bgpd", &["-S", "-p", &port, "-l", ROUTER_V4]);
        Frr {
            _daemons: vec![zebra, bfdd, bgpd],
            vty_dir: dir,
        }
    }

    fn show(&self, daemon: &str, command: &str) -> Value {
        let text = try_run(&[
            "vtysh",
            "--vty_socket",
            &self.vty_dir.to_string_lossy(),
            "-d",
            daemon,
            "-c",
            command,
        ]);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// bfdd's status for our address ("up", "down", "init"), if it has a session.
    fn bfd_state(&self) -> Option<String> {
        let peers = self.show("bfdd", "show bfd peers json");
        peers.as_array()?.iter().find(|p| p["peer"] == SPEAKER_V4)?["status"]
            .as_str()
            .map(str::to_string)
    }

    /// Whether bgpd holds `prefix`; `None` when vtysh did not answer with a table (so a
    /// failed query is never taken for a withdrawn route).
    fn route(&self, prefix: &str) -> Option<bool> {
        let table = self.show("bgpd", "show bgp ipv4 unicast json");
        let routes = table.get("routes")?.as_object()?;
        Some(routes.get(prefix).is_some_and(Value::is_array))
    }

    fn logs(&self) -> String {
        self._daemons
            .iter()
            .map(Daemon::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

fn peer() -> PeerConfig {
    let mut peer = router_peer();
    peer.ebgp_multihop_ttl = 2;
    peer.bfd = Some(bfd(None));
    peer
}

fn router() -> IpAddr {
    ROUTER_V4.parse().expect("ip")
}

async fn up_at_both_ends(speaker: &announcer::bgp::speaker::Speaker, frr: &Frr) {
    eventually("BFD Up at both ends", Duration::from_secs(30), || {
        let ours = speaker.peer(router())?.bfd?.state;
        (ours == BfdState::Up && frr.bfd_state().as_deref() == Some("up")).then_some(())
    })
    .await;
    established(speaker, router()).await;
}

#[test]
fn frr_bfdd_sees_bfd_up_and_withdraws_routes_within_detection_time_when_the_node_dies() {
    if !prerequisites(&[ZEBRA, BFDD, BGPD, "vtysh", "nft"]) {
        return;
    }
    let topology = Topology::new();
    let frr = Frr::start(&topology);
    let killed_at = topology.in_speaker_ns(|| async {
        let speaker = speaker();
        speaker.add_peer(peer()).await.expect("peer added");
        up_at_both_ends(&speaker, &frr).await;
        announce_vips(&speaker);
        eventually("the /32 in FRR", Duration::from_secs(10), || {
            (frr.route(VIP_V4) == Some(true)).then_some(())
        })
        .await;
        // The node dies: nothing leaves it any more and the announcer is gone.
        cut(&topology.speaker_ns);
        Instant::now()
    });
    eventually_blocking("the /32 withdrawn by FRR", Duration::from_secs(20), || {
        (frr.route(VIP_V4) == Some(false)).then_some(())
    });
    let took = killed_at.elapsed();
    // The 9 s hold timer could not have fired before 6 s (our last keepalive at most 3 s
    // before the cut); 3 s leaves room for a busy machine and still rules it out.
    assert!(
        took < Duration::from_secs(3),
        "FRR took {took:?}: that is the hold timer, not BFD; logs:\n{}",
        frr.logs()
    );
    assert_ne!(frr.bfd_state().as_deref(), Some("up"));
}

#[test]
fn frr_bfdd_goes_down_when_the_link_drops_packets_and_comes_back_when_it_heals() {
    if !prerequisites(&[ZEBRA, BFDD, BGPD, "vtysh", "nft"]) {
        return;
    }
    let topology = Topology::new();
    let frr = Frr::start(&topology);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        speaker.add_peer(peer()).await.expect("peer added");
        up_at_both_ends(&speaker, &frr).await;
        cut(&topology.speaker_ns);
        eventually("BFD down at both ends", Duration::from_secs(10), || {
            let ours = speaker.peer(router())?.bfd?.state;
            (ours != BfdState::Up && frr.bfd_state().as_deref() == Some("down")).then_some(())
        })
        .await;
        heal(&topology.speaker_ns);
        up_at_both_ends(&speaker, &frr).await;
    });
}
