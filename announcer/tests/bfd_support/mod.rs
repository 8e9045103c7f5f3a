//! Shared parts of the BFD router tests and the BFD benchmark: a BIRD 2 router with one
//! passive BGP session per family (optionally `bfd on`), the BFD settings the speaker uses,
//! and nftables cuts of the speaker's link. Builds on `bgp_support` (the two namespaces).
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use announcer::bfd::BfdConfig;
use announcer::bfd::packet::AuthKey;
use announcer::bfd::session::Parameters;
use announcer::bgp::fsm::State;
use announcer::bgp::metrics::BgpMetrics;
use announcer::bgp::session::PeerSnapshot;
use announcer::bgp::speaker::Speaker;

use super::bgp_support::*;

/// BIRD in the router namespace.
pub struct Bird {
    pub daemon: Daemon,
    pub socket: PathBuf,
}

/// How BIRD is set up.
pub struct BirdSetup<'a> {
    /// `bfd on` in both BGP sessions, BFD at 300 ms × 3.
    pub bfd: bool,
    /// Extra lines for BFD's interface block (authentication).
    pub bfd_auth: &'a str,
    /// BGP hold time offered; keepalive is a third of it.
    pub hold_seconds: u16,
    /// Multihop BGP (`multihop 2`), so BIRD runs multihop BFD (RFC 5883) for it.
    pub multihop: bool,
}

impl Bird {
    pub fn start(topology: &Topology, setup: BirdSetup<'_>) -> Bird {
        let keepalive = (setup.hold_seconds / 3).max(1);
        let hold = setup.hold_seconds;
        let bfd_on = if setup.bfd { "bfd on;" } else { "" };
        let multihop = if setup.multihop { "multihop 2;" } else { "" };
        let session = |name: &str, local: &str, neighbor: &str| {
            format!(
                r#"protocol bgp {name} {{
  local {local} port {ROUTER_PORT} as {ROUTER_AS};
  neighbor {neighbor} as {SPEAKER_AS};
  passive on;
  hold time {hold}; keepalive time {keepalive};
  error wait time 1, 2;
  {bfd_on}
  {multihop}
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
            )
        };
        let bfd = if setup.bfd {
            format!(
                "protocol bfd {{\n  interface \"*\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; {auth} }};\n  multihop {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; {auth} }};\n}}\n",
                auth = setup.bfd_auth
            )
        } else {
            String::new()
        };
        let config = format!(
            "router id {ROUTER_V4};\nlog stderr all;\nprotocol device {{ scan time 1; }}\n{bfd}{}{}",
            session("lb4", ROUTER_V4, SPEAKER_V4),
            session("lb6", ROUTER_V6, SPEAKER_V6)
        );
        let path = topology.path("bird.conf");
        write(&path, &config);
        let socket = topology.path("bird.ctl");
        let daemon = topology.spawn_router(
            &[
                "bird",
                "-f",
                "-c",
                &path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
                "-P",
                &topology.path("bird.pid").to_string_lossy(),
            ],
            "bird.log",
            &[],
        );
        Bird { daemon, socket }
    }

    pub fn birdc(&self, command: &str) -> String {
        let socket = self.socket.to_string_lossy().into_owned();
        let mut args = vec!["birdc", "-s", &socket];
        args.extend(command.split(' '));
        try_run(&args)
    }

    /// BIRD's BFD state for `address` ("Up", "Down", "Init"), if it has a session.
    pub fn bfd_state(&self, address: &str) -> Option<String> {
        self.birdc("show bfd sessions")
            .lines()
            .find(|l| l.split_whitespace().next() == Some(address))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
    }

    /// Whether BIRD holds `prefix` from one of our sessions; `None` when `birdc` did not
    /// answer (so a failed query is never taken for a withdrawn route).
    pub fn route(&self, prefix: &str) -> Option<bool> {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        let text = self.birdc(&format!("show route table {table} for {prefix}"));
        if !text.contains(" ready.") {
            return None;
        }
        Some(text.lines().any(|l| l.contains("[lb")))
    }

    /// BIRD answered and holds `prefix` from us.
    pub fn has_route(&self, prefix: &str) -> bool {
        self.route(prefix) == Some(true)
    }

    /// BIRD answered and does not hold `prefix` from us.
    pub fn lacks_route(&self, prefix: &str) -> bool {
        self.route(prefix) == Some(false)
    }
}

/// A speaker that keeps every status report, so a test can see a state that did not last
/// (the BGP session closed by BFD, before its reconnect attempts replace the last error).
pub fn recording_speaker() -> (Speaker, Arc<Mutex<Vec<PeerSnapshot>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let speaker = Speaker::new(
        BgpMetrics::default(),
        Arc::new(move |snapshot: &PeerSnapshot| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(snapshot.clone());
        }),
    );
    (speaker, reports)
}

/// Whether `address`'s BGP session was reported closed because BFD went down.
pub fn closed_by_bfd(reports: &Mutex<Vec<PeerSnapshot>>, address: IpAddr) -> bool {
    reports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|s| {
            s.config.address == address
                && s.state != State::Established
                && s.last_error.starts_with("BFD session down")
        })
}

/// BFD at 300 ms × 3, single hop.
pub fn bfd(auth: Option<AuthKey>) -> BfdConfig {
    BfdConfig {
        params: Parameters {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        },
        multihop: false,
        auth,
        key_file: None,
    }
}

fn nft(ns: &str, args: &str) {
    let mut command = vec!["ip", "netns", "exec", ns, "nft"];
    command.extend(args.split(' '));
    run(&command);
}

/// The node's link drops every packet, both ways (nftables table `flbbfd` in `ns`).
pub fn cut(ns: &str) {
    nft(ns, "add table inet flbbfd");
    nft(
        ns,
        "add chain inet flbbfd out { type filter hook output priority 0 ; policy drop ; }",
    );
    nft(
        ns,
        "add chain inet flbbfd in { type filter hook input priority 0 ; policy drop ; }",
    );
}

/// Undoes [`cut`].
pub fn heal(ns: &str) {
    nft(ns, "delete table inet flbbfd");
}
