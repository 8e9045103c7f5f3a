//! Graceful restart (RFC 4724) that keeps routes, with the real `ferrolb-announcer` binary and
//! a client pinging through the route, against BIRD and FRR (bgpd + zebra) as GR helpers.
//!
//! ```text
//!  client ns 203.0.113.2 ── 203.0.113.1 router ns (BIRD / FRR, kernel routes) 192.0.2.2
//!                                                   │ veth
//!  speaker ns 192.0.2.1: ferrolb-announcer; 198.51.100.10 and .11 answered locally
//!                         (a `local` route, not an interface address the announcer refuses)
//! ```
//!
//! The announcer announces .10 and .11 (a Sync), the client pings .10, the announcer is
//! SIGKILLed and started again: its OPEN carries the Restart State bit, End-of-RIB waits, both
//! routes stay at the router while no Sync has come; then a Sync with .10 alone releases
//! End-of-RIB: .11 goes, .10 never left — not one ping lost. A clean stop (SIGTERM) removes
//! the restart marker and the routes.

mod bgp_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bgp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");
const KEPT: &str = "198.51.100.10";
const DROPPED: &str = "198.51.100.11";
const ROUTER_CLIENT_SIDE: &str = "203.0.113.1";
const CLIENT: &str = "203.0.113.2";

/// The router daemon under test.
trait Helper {
    /// Whether the router saw the Restart State bit in our last OPEN.
    fn saw_restart_bit(&self) -> bool;
    /// Diagnostics for a failed assertion.
    fn describe(&self) -> String;
}

struct Bird {
    _daemon: Daemon,
    socket: PathBuf,
}

impl Bird {
    fn start(topology: &Topology) -> Bird {
        let config = format!(
            r#"router id {ROUTER_V4};
log stderr all;
protocol device {{ scan time 1; }}
protocol kernel {{ ipv4 {{ export all; }}; }}
protocol bgp lb {{
  local {ROUTER_V4} port {ROUTER_PORT} as {ROUTER_AS};
  neighbor {SPEAKER_V4} as {SPEAKER_AS};
  passive on;
  hold time 9; keepalive time 3;
  graceful restart on;
  ipv4 {{ import all; export none; }};
}}
"#
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
        Bird {
            _daemon: daemon,
            socket,
        }
    }

    fn birdc(&self, command: &str) -> String {
        let socket = self.socket.to_string_lossy().into_owned();
        let mut args = vec!["birdc", "-s", &socket];
        args.extend(command.split(' '));
        try_run(&args)
    }
}

impl Helper for Bird {
    fn saw_restart_bit(&self) -> bool {
        // BIRD lists the neighbor's capabilities; "Restart recovery" is the R bit.
        self.birdc("show protocols all lb")
            .contains("Restart recovery")
    }

    fn describe(&self) -> String {
        self.birdc("show protocols all lb") + &self.birdc("show route all")
    }
}

struct Frr {
    _zebra: Daemon,
    _bgpd: Daemon,
    vty_dir: PathBuf,
}

impl Frr {
    fn start(topology: &Topology) -> Frr {
        let dir = topology.dir.path().to_string_lossy().into_owned();
        let zserv = topology.path("zserv.api").to_string_lossy().into_owned();
        let empty = topology.path("zebra.conf");
        write(&empty, "hostname rtr\n");
        let zebra = topology.spawn_router(
            &[
                "/usr/lib/frr/zebra",
                "-z",
                &zserv,
                "-f",
                &empty.to_string_lossy(),
                "-i",
                &topology.path("zebra.pid").to_string_lossy(),
                "--vty_socket",
                &dir,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            "zebra.log",
            &[],
        );
        eventually_blocking("zebra's socket", Duration::from_secs(10), || {
            Path::new(&zserv).exists().then_some(())
        });
        // Helper mode is FRR's default; the restart and stale-path times are its defaults too.
        let config = format!(
            "frr defaults datacenter
hostname rtr
log stdout informational
router bgp {ROUTER_AS}
 bgp router-id {ROUTER_V4}
 no bgp ebgp-requires-policy
 neighbor {SPEAKER_V4} remote-as {SPEAKER_AS}
 neighbor {SPEAKER_V4} passive
 neighbor {SPEAKER_V4} timers 3 9
 address-family ipv4 unicast
  neighbor {SPEAKER_V4} activate
 exit-address-family
"
        );
        let path = topology.path("bgpd.conf");
        write(&path, &config);
        let port = ROUTER_PORT.to_string();
        let bgpd = topology.spawn_router(
            &[
                "/usr/lib/frr/bgpd",
                "-S",
                "-z",
                &zserv,
                "-p",
                &port,
                "-l",
                ROUTER_V4,
                "-f",
                &path.to_string_lossy(),
                "-i",
                &topology.path("bgpd.pid").to_string_lossy(),
                "--vty_socket",
                &dir,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            "bgpd.log",
            &[],
        );
        Frr {
            _zebra: zebra,
            _bgpd: bgpd,
            vty_dir: topology.dir.path().to_path_buf(),
        }
    }

    fn vtysh(&self, command: &str) -> String {
        try_run(&[
            "vtysh",
            "--vty_socket",
            &self.vty_dir.to_string_lossy(),
            "-d",
            "bgpd",
            "-c",
            command,
        ])
    }
}

impl Helper for Frr {
    fn saw_restart_bit(&self) -> bool {
        let text = self.vtysh(&format!("show bgp neighbors {SPEAKER_V4} json"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        json[SPEAKER_V4]["gracefulRestartInfo"]["rBit"] == serde_json::Value::Bool(true)
    }

    fn describe(&self) -> String {
        self.vtysh(&format!("show bgp neighbors {SPEAKER_V4}")) + &self.vtysh("show bgp ipv4")
    }
}

/// The third namespace (the client) and the forwarding around the router.
struct Client {
    ns: String,
    topology_router_ns: String,
}

impl Client {
    fn attach(topology: &Topology) -> Client {
        let ns = format!("{}c", topology.speaker_ns);
        let (near, far) = (
            format!("{}c", topology.router_if),
            format!("{}c", topology.speaker_if),
        );
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip",
            "link",
            "add",
            &near,
            "netns",
            &topology.router_ns,
            "type",
            "veth",
            "peer",
            "name",
            &far,
            "netns",
            &ns,
        ]);
        let router = topology.router_ns.as_str();
        let speaker = topology.speaker_ns.as_str();
        let cidr = |a: &str| format!("{a}/24");
        for args in [
            vec![
                "ip",
                "-n",
                router,
                "addr",
                "add",
                &cidr(ROUTER_CLIENT_SIDE),
                "dev",
                &near,
            ],
            vec!["ip", "-n", router, "link", "set", &near, "up"],
            vec![
                "ip",
                "netns",
                "exec",
                router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
            vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", &ns, "addr", "add", &cidr(CLIENT), "dev", &far],
            vec!["ip", "-n", &ns, "link", "set", &far, "up"],
            vec![
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                ROUTER_CLIENT_SIDE,
            ],
            vec![
                "ip",
                "-n",
                speaker,
                "route",
                "add",
                "203.0.113.0/24",
                "via",
                ROUTER_V4,
            ],
        ] {
            run(&args);
        }
        for vip in [KEPT, DROPPED] {
            let host = format!("{vip}/32");
            run(&[
                "ip", "-n", speaker, "route", "add", "local", &host, "dev", "lo", "table", "local",
            ]);
        }
        Client {
            ns,
            topology_router_ns: router.to_string(),
        }
    }

    /// `ping -i 0.05` to `KEPT` until [`Ping::stop`].
    fn ping(&self) -> Ping {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "ping", "-n", "-i", "0.05", KEPT])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        Ping { child }
    }

    /// Whether the router's kernel has a route for `vip`.
    fn router_has_route(&self, vip: &str) -> bool {
        !try_run(&["ip", "-n", &self.topology_router_ns, "route", "show", vip])
            .trim()
            .is_empty()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

struct Ping {
    child: Child,
}

impl Ping {
    /// Stops ping (SIGINT) and returns (highest sequence answered, sequences lost below it).
    fn stop(mut self) -> (u64, Vec<u64>) {
        run(&["kill", "-INT", &self.child.id().to_string()]);
        let output =
            std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"))
                .wait_with_output()
                .expect("ping output");
        let text = String::from_utf8_lossy(&output.stdout);
        let answered: std::collections::BTreeSet<u64> = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        let highest = answered.iter().next_back().copied().unwrap_or(0);
        let lost = (1..=highest).filter(|s| !answered.contains(s)).collect();
        (highest, lost)
    }
}

impl Drop for Ping {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The announcer binary in the speaker namespace; killed by PID on drop.
struct Announcer {
    child: Child,
    socket: String,
}

impl Announcer {
    fn start(topology: &Topology, marker: &Path, deferral: &str, log: &str) -> Announcer {
        let config = topology.path("peers.json");
        write(
            &config,
            &format!(
                r#"{{"peers": [{{"address": "{ROUTER_V4}", "peer_asn": {ROUTER_AS},
                "local_asn": {SPEAKER_AS}, "port": {ROUTER_PORT}, "hold_time_seconds": 9,
                "connect_retry_seconds": 1, "graceful_restart": true,
                "graceful_restart_seconds": 90}}]}}"#
            ),
        );
        let socket = topology
            .path("announcer.sock")
            .to_string_lossy()
            .into_owned();
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::File::create(topology.path(log)).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &topology.speaker_ns, BIN])
            .args(["--bgp-config", &config.to_string_lossy()])
            .args([
                "--listen",
                &format!("unix:{socket}"),
                "--metrics-listen",
                "",
            ])
            .args(["--bgp-restart-marker", &marker.to_string_lossy()])
            .args(["--bgp-eor-deferral", deferral])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("announcer starts");
        eventually_blocking("the gRPC socket", Duration::from_secs(10), || {
            Path::new(&socket).exists().then_some(())
        });
        Announcer { child, socket }
    }

    fn ctl(&self, args: &[&str]) -> String {
        let server = format!("unix:{}", self.socket);
        let mut all = vec![BIN, "ctl", "--server", &server];
        all.extend_from_slice(args);
        run(&all)
    }

    fn established(&self) {
        eventually_blocking("the session Established", Duration::from_secs(30), || {
            self.ctl(&["peers", "list"])
                .contains("\"state\":\"established\"")
                .then_some(())
        });
    }

    fn sync(&self, topology: &Topology, vips: &[&str]) {
        let entries: Vec<String> = vips
            .iter()
            .map(|v| format!(r#"{{"address": "{v}", "mode": "bgp"}}"#))
            .collect();
        let file = topology.path("sync.json");
        write(&file, &format!("[{}]", entries.join(",")));
        self.ctl(&[
            "sync",
            "--generation",
            "1",
            "--file",
            &file.to_string_lossy(),
        ]);
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn restart_keeps_routes(topology: &Topology, router: &dyn Helper) {
    let client = Client::attach(topology);
    let marker = topology.path("run/bgp-advertised");
    let first = Announcer::start(topology, &marker, "60s", "announcer-1.log");
    first.established();
    first.sync(topology, &[KEPT, DROPPED]);
    eventually_blocking("both routes at the router", Duration::from_secs(20), || {
        (client.router_has_route(KEPT) && client.router_has_route(DROPPED)).then_some(())
    });
    assert!(marker.exists(), "the restart marker after advertising");
    assert!(!router.saw_restart_bit(), "R bit on a first start");
    let ping = client.ping();
    eventually_blocking("pings answered", Duration::from_secs(10), || {
        // Cheap check: the route works before the restart.
        try_run(&[
            "ip", "netns", "exec", &client.ns, "ping", "-c1", "-W1", KEPT,
        ])
        .contains("1 received")
        .then_some(())
    });

    // Crash: no Cease, no withdraw.
    drop(first);
    std::thread::sleep(Duration::from_secs(2));
    let second = Announcer::start(topology, &marker, "60s", "announcer-2.log");
    second.established();
    eventually_blocking(
        "the Restart State bit at the router",
        Duration::from_secs(10),
        || router.saw_restart_bit().then_some(()),
    );
    // End-of-RIB is held: the stale route that nobody re-announced is still there.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        client.router_has_route(DROPPED) && client.router_has_route(KEPT),
        "stale routes dropped before the first Sync:\n{}",
        router.describe()
    );
    second.sync(topology, &[KEPT]);
    eventually_blocking(
        "the route not re-announced removed after End-of-RIB",
        Duration::from_secs(20),
        || (!client.router_has_route(DROPPED)).then_some(()),
    );
    assert!(client.router_has_route(KEPT), "{}", router.describe());
    std::thread::sleep(Duration::from_secs(2));
    let (answered, lost) = ping.stop();
    assert!(answered > 100, "only {answered} pings answered");
    assert!(
        lost.is_empty(),
        "pings lost across the restart: {lost:?} of {answered}\n{}",
        router.describe()
    );

    // A clean stop withdraws and forgets the restart.
    run(&["kill", "-TERM", &second.child.id().to_string()]);
    eventually_blocking("the route withdrawn", Duration::from_secs(10), || {
        (!client.router_has_route(KEPT)).then_some(())
    });
    eventually_blocking("the marker removed", Duration::from_secs(10), || {
        (!marker.exists()).then_some(())
    });
}

#[test]
fn bird_keeps_routes_across_an_announcer_restart_with_zero_ping_loss() {
    if !prerequisites(&["bird", "birdc", "ping"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start(&topology);
    restart_keeps_routes(&topology, &router);
}

#[test]
fn frr_keeps_routes_across_an_announcer_restart_with_zero_ping_loss() {
    if !prerequisites(&["/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh", "ping"]) {
        return;
    }
    let topology = Topology::new();
    let router = Frr::start(&topology);
    restart_keeps_routes(&topology, &router);
}

/// The deferral bounds the wait: with `--bgp-eor-deferral 0s` and no Sync, End-of-RIB goes out
/// with nothing announced and BIRD drops every stale route (what the held End-of-RIB above
/// prevents).
#[test]
fn bird_drops_stale_routes_when_the_eor_deferral_expires_without_a_sync() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start(&topology);
    let client = Client::attach(&topology);
    let marker = topology.path("run/bgp-advertised");
    let first = Announcer::start(&topology, &marker, "60s", "announcer-1.log");
    first.established();
    first.sync(&topology, &[KEPT, DROPPED]);
    eventually_blocking("both routes at the router", Duration::from_secs(20), || {
        (client.router_has_route(KEPT) && client.router_has_route(DROPPED)).then_some(())
    });
    drop(first);
    std::thread::sleep(Duration::from_secs(1));
    assert!(client.router_has_route(KEPT), "kept while restarting");
    let second = Announcer::start(&topology, &marker, "0s", "announcer-2.log");
    second.established();
    eventually_blocking(
        "the Restart State bit at BIRD",
        Duration::from_secs(10),
        || router.saw_restart_bit().then_some(()),
    );
    eventually_blocking(
        "stale routes dropped after End-of-RIB",
        Duration::from_secs(20),
        || (!client.router_has_route(KEPT) && !client.router_has_route(DROPPED)).then_some(()),
    );
}
