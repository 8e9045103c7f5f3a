//! Shared parts of the BGP router tests: a two-namespace topology joined by a veth pair, the
//! speaker run on a thread inside the speaker namespace, and polling helpers.
//!
//! ```text
//!   <ns>s (speaker, this process on a setns thread)      <ns>r (router daemon)
//!   veth 192.0.2.1/24, 2001:db8:250::1/64  ───────────  192.0.2.2/24, 2001:db8:250::2/64
//! ```
//! Every name includes the process id and a counter; Drop deletes exactly what was created.
#![allow(dead_code)]

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use announcer::bgp::config::{PeerConfig, RouteAttributes};
use announcer::bgp::fsm::State;
use announcer::bgp::metrics::BgpMetrics;
use announcer::bgp::session::PeerSnapshot;
use announcer::bgp::speaker::Speaker;
use serde_json::Value;

pub const SPEAKER_V4: &str = "192.0.2.1";
pub const ROUTER_V4: &str = "192.0.2.2";
pub const SPEAKER_V6: &str = "2001:db8:250::1";
pub const ROUTER_V6: &str = "2001:db8:250::2";
pub const ROUTER_PORT: u16 = 10179;
pub const SPEAKER_AS: u32 = 64513;
pub const ROUTER_AS: u32 = 64512;
pub const VIP_V4: &str = "198.51.100.10/32";
pub const VIP_V6: &str = "2001:db8:ffff::10/128";

#[path = "../netns/mod.rs"]
mod netns;
pub use netns::run;

/// Whether the test can run: root and the given binaries (see [`netns::prerequisites`]).
pub fn prerequisites(binaries: &[&str]) -> bool {
    netns::prerequisites("this BGP test", binaries)
}

/// Runs a command and returns stdout, or an empty string if it failed.
pub fn try_run(args: &[&str]) -> String {
    netns::try_output(args)
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Two namespaces and a veth pair; removed on drop.
pub struct Topology {
    pub speaker_ns: String,
    pub router_ns: String,
    pub speaker_if: String,
    pub router_if: String,
    pub dir: tempfile::TempDir,
}

impl Topology {
    pub fn new() -> Topology {
        let id = netns::unique("");
        let topology = Topology {
            speaker_ns: format!("flb{id}s"),
            router_ns: format!("flb{id}r"),
            speaker_if: format!("fb{id}s"),
            router_if: format!("fb{id}r"),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        // Permissions for daemons dropping privileges (frr) to reach their files.
        let _ = std::fs::set_permissions(
            topology.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        );
        run(&["ip", "netns", "add", &topology.speaker_ns]);
        run(&["ip", "netns", "add", &topology.router_ns]);
        run(&[
            "ip",
            "link",
            "add",
            &topology.speaker_if,
            "netns",
            &topology.speaker_ns,
            "type",
            "veth",
            "peer",
            "name",
            &topology.router_if,
            "netns",
            &topology.router_ns,
        ]);
        for (ns, ifname, v4, v6) in [
            (
                &topology.speaker_ns,
                &topology.speaker_if,
                SPEAKER_V4,
                SPEAKER_V6,
            ),
            (
                &topology.router_ns,
                &topology.router_if,
                ROUTER_V4,
                ROUTER_V6,
            ),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                ifname,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        topology
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a daemon in the router namespace, output to `<dir>/<log>`.
    pub fn spawn_router(&self, args: &[&str], log: &str, envs: &[(&str, &str)]) -> Daemon {
        self.spawn_in(&self.router_ns, args, log, envs)
    }

    /// Starts a daemon in namespace `ns`, output to `<dir>/<log>`.
    pub fn spawn_in(&self, ns: &str, args: &[&str], log: &str, envs: &[(&str, &str)]) -> Daemon {
        let log_path = self.path(log);
        let log_file = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("spawn router");
        Daemon {
            child,
            log: log_path,
        }
    }

    /// Runs `make_test()` on a thread inside the speaker namespace, on its own tokio runtime.
    /// Dropping the runtime at the end closes every socket the way a killed process would.
    pub fn in_speaker_ns<F, Fut>(&self, make_test: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        let ns_path = format!("/var/run/netns/{}", self.speaker_ns);
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let ns = std::fs::File::open(&ns_path).expect("open namespace");
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    let output = runtime.block_on(make_test());
                    runtime.shutdown_background();
                    output
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.speaker_ns])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.router_ns])
            .status();
    }
}

/// A router daemon, killed by PID on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A speaker whose peer status changes are ignored (the tests poll).
pub fn speaker() -> Speaker {
    Speaker::new(BgpMetrics::default(), Arc::new(|_: &PeerSnapshot| {}))
}

/// The router as seen from the speaker: eBGP, port 10179, short timers.
pub fn router_peer() -> PeerConfig {
    let mut peer = PeerConfig::new(ROUTER_V4.parse().expect("ip"), SPEAKER_AS, ROUTER_AS);
    peer.port = ROUTER_PORT;
    peer.hold_time = 9;
    peer.connect_retry = Duration::from_secs(1);
    peer
}

pub fn net(text: &str) -> ipnet::IpNet {
    text.parse().expect("prefix")
}

/// Announces the test's /32 and /128.
pub fn announce_vips(speaker: &Speaker) {
    speaker.announce(net(VIP_V4), RouteAttributes::default());
    speaker.announce(net(VIP_V6), RouteAttributes::default());
}

pub fn withdraw_vips(speaker: &Speaker) {
    speaker.withdraw(&net(VIP_V4));
    speaker.withdraw(&net(VIP_V6));
}

/// Polls `check` (blocking calls allowed) every 100 ms until it returns Some or `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the peer is Established.
pub async fn established(speaker: &Speaker, peer: IpAddr) -> PeerSnapshot {
    eventually("session Established", Duration::from_secs(20), || {
        speaker.peer(peer).filter(|p| p.state == State::Established)
    })
    .await
}

/// TCP MD5 against a keyed router: the peer `wrong` (another password) never reaches
/// Established and its error names MD5; then `right` replaces it and comes up. Returns the
/// error report of the wrong phase.
pub async fn md5_wrong_then_right(
    speaker: &Speaker,
    wrong: PeerConfig,
    right: PeerConfig,
) -> PeerSnapshot {
    let router_ip = wrong.address;
    speaker.add_peer(wrong).await.expect("peer added");
    let status = eventually("an error report", Duration::from_secs(10), || {
        speaker.peer(router_ip).filter(|p| !p.last_error.is_empty())
    })
    .await;
    assert_ne!(status.state, State::Established);
    assert!(status.last_error.contains("MD5"), "{}", status.last_error);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(
        speaker.peer(router_ip).expect("peer").state,
        State::Established
    );
    speaker.add_peer(right).await.expect("peer replaced");
    established(speaker, router_ip).await;
    status
}

/// Writes a file in the topology's temp dir.
pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

/// [`eventually`] for plain threads (after the speaker's runtime is gone).
pub fn eventually_blocking<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A passive GoBGP router (`gobgpd`) in the router namespace, API on its loopback.
pub struct GoBgp {
    /// Killed by PID when the test ends.
    pub daemon: Daemon,
    pub router_ns: String,
}

impl GoBgp {
    pub fn start(topology: &Topology, peer_as: u32, password: Option<&str>) -> GoBgp {
        let auth = password
            .map(|p| format!("    auth-password = \"{p}\"\n"))
            .unwrap_or_default();
        let config = format!(
            r#"[global.config]
  as = {ROUTER_AS}
  router-id = "{ROUTER_V4}"
  port = {ROUTER_PORT}
  local-address-list = ["{ROUTER_V4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{SPEAKER_V4}"
    peer-as = {peer_as}
{auth}  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
        );
        let path = topology.path("gobgpd.toml");
        write(&path, &config);
        let path = path.to_string_lossy().into_owned();
        let daemon = topology.spawn_router(
            &[
                "gobgpd",
                "-f",
                &path,
                "-p",
                "--api-hosts",
                "127.0.0.1:50051",
                "--pprof-disable",
            ],
            "gobgpd.log",
            &[],
        );
        GoBgp {
            daemon,
            router_ns: topology.router_ns.clone(),
        }
    }

    /// `gobgp global rib -a <family> -j` as JSON (empty object when unreachable).
    pub fn rib(&self, family: &str) -> Value {
        let text = try_run(&[
            "ip",
            "netns",
            "exec",
            &self.router_ns,
            "gobgp",
            "-p",
            "50051",
            "global",
            "rib",
            "-a",
            family,
            "-j",
        ]);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The attributes of the best path for `prefix`, if present.
    pub fn path_attrs(&self, prefix: &str) -> Option<Vec<Value>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let rib = self.rib(family);
        let paths = rib.get(prefix)?.as_array()?;
        let best = paths.iter().find(|p| p["best"] == Value::Bool(true))?;
        best["attrs"].as_array().cloned()
    }
}

pub fn attr(attrs: &[Value], type_code: u64) -> Option<&Value> {
    attrs.iter().find(|a| a["type"] == type_code)
}
