//! Test support: network namespaces on a bridge, the real `ferrolb-announcer` binary running
//! in them, and the real ARP/NDP clients (`arping`, `ndisc6`, `ip neigh`).
//!
//! Every name carries the test process id and a counter, so parallel tests and parallel test
//! runs never collide; everything is deleted by Drop guards, even when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");

#[path = "../netns/mod.rs"]
mod netns;
pub use netns::{run, unique};

pub mod pki;

/// True when the test can use namespaces and the ARP/NDP clients (see
/// [`netns::prerequisites`]).
pub fn can_use_netns(test: &str) -> bool {
    netns::prerequisites(test, &["arping", "ndisc6"])
}

/// [`can_use_netns`] plus more tools (e.g. `ping`).
pub fn netns_tools(test: &str, extra: &[&str]) -> bool {
    let mut tools = vec!["arping", "ndisc6"];
    tools.extend_from_slice(extra);
    netns::prerequisites(test, &tools)
}

/// Runs a command, returning its output whatever the exit status.
pub fn try_run(args: &[&str]) -> Output {
    netns::output(args)
}

/// A LAN: a bridge in its own namespace and hosts attached to it, each with `eth0`
/// holding `192.0.2.<i>/24` and `2001:db8::<i>/64`.
pub struct Lan {
    pub bridge_ns: String,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub ns: String,
    pub ipv4: String,
    pub ipv6: String,
}

impl Host {
    /// `ip netns exec <ns> <args>`.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        try_run(&full)
    }

    pub fn mac(&self) -> String {
        let out = run(&["ip", "-n", &self.ns, "-br", "link", "show", "dev", "eth0"]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_lowercase()
    }

    /// Sets `name=value` sysctls inside the namespace (through /proc/sys, so the `sysctl`
    /// tool of procps is not needed).
    pub fn sysctl(&self, settings: &[&str]) {
        for setting in settings {
            let (name, value) = setting.split_once('=').expect("name=value");
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            run(&[
                "ip",
                "netns",
                "exec",
                &self.ns,
                "sh",
                "-c",
                &format!("echo {value} > {path}"),
            ]);
        }
    }

    /// Makes this host learn neighbours from gratuitous ARP / unsolicited NA alone
    /// (testinfra.md §1.3).
    pub fn accept_unsolicited(&self) {
        self.sysctl(&[
            "net.ipv4.conf.eth0.arp_accept=1",
            "net.ipv6.conf.eth0.forwarding=1",
            "net.ipv6.conf.eth0.accept_untracked_na=1",
        ]);
    }

    /// The MAC `arping` resolves `ip` to, if anyone answers within about a second.
    pub fn arping(&self, ip: &str) -> Option<String> {
        // Up to three requests half a second apart, stopping at the first reply: one request
        // lost on a loaded machine must not fail a test, and silence still takes 2 s to prove.
        let out = self.exec(&[
            "arping", "-r", "-C", "1", "-c", "3", "-W", "0.5", "-w", "2", "-I", "eth0", ip,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_lowercase();
        (!text.is_empty()).then_some(text)
    }

    /// The MAC `ndisc6` resolves `ip` to, if anyone answers.
    pub fn ndisc6(&self, ip: &str) -> Option<String> {
        let out = self.exec(&["ndisc6", "-1", "-q", "-r", "4", "-w", "500", ip, "eth0"]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_lowercase();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// The link-layer address of `ip` in this host's kernel neighbour table.
    pub fn neighbour(&self, ip: &str) -> Option<String> {
        let out = run(&["ip", "-n", &self.ns, "neigh", "show", ip, "dev", "eth0"]);
        let mut words = out.split_whitespace();
        words.by_ref().find(|w| *w == "lladdr")?;
        words.next().map(str::to_lowercase)
    }

    /// Polls `neighbour(ip)` until it equals `mac` or `timeout` passes.
    pub fn wait_neighbour(&self, ip: &str, mac: &str, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.neighbour(ip).as_deref() == Some(mac) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    /// GET `path` from the announcer's metrics server on 127.0.0.1:9721 in this namespace
    /// (bash's /dev/tcp, so no HTTP client needs installing).
    pub fn http_get(&self, path: &str) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/9721; printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        );
        let out = self.exec(&["bash", "-c", &script]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn addresses(&self) -> String {
        run(&["ip", "-n", &self.ns, "addr", "show", "dev", "eth0"])
    }
}

impl Lan {
    /// Creates a LAN with `count` hosts (host i gets .i+1 addresses).
    pub fn new(count: usize) -> Lan {
        let bridge_ns = unique("flbbr");
        let mut lan = Lan {
            bridge_ns: bridge_ns.clone(),
            hosts: Vec::new(),
        };
        run(&["ip", "netns", "add", &bridge_ns]);
        run(&[
            "ip",
            "-n",
            &bridge_ns,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", &bridge_ns, "link", "set", "br0", "up"]);
        for i in 0..count {
            let ns = unique("flbh");
            run(&["ip", "netns", "add", &ns]);
            // Pushed before configuring so Drop deletes it even if a step below fails.
            let host = Host {
                ns: ns.clone(),
                ipv4: format!("192.0.2.{}", i + 1),
                ipv6: format!("2001:db8::{}", i + 1),
            };
            lan.hosts.push(host.clone());
            let veth = unique("fv");
            let port = format!("p{i}");
            run(&[
                "ip", "link", "add", &veth, "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &bridge_ns,
            ]);
            run(&[
                "ip", "-n", &bridge_ns, "link", "set", &port, "master", "br0", "up",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", &ns, "link", "set", &veth, "name", "eth0"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", host.ipv4),
                "dev",
                "eth0",
            ]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/64", host.ipv6),
                "dev",
                "eth0",
                "nodad",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = try_run(&["ip", "netns", "del", &host.ns]);
        }
        let _ = try_run(&["ip", "netns", "del", &self.bridge_ns]);
    }
}

/// A running `ferrolb-announcer` in a namespace, with a Unix socket for its API.
pub struct Announcer {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Announcer {
    /// Starts the announcer in `host`'s namespace with fast gratuitous bursts and `extra` flags.
    pub fn start(host: &Host, extra: &[&str]) -> Announcer {
        let mut args = vec![
            "netns",
            "exec",
            &host.ns,
            BIN,
            "--metrics-listen",
            "127.0.0.1:9721",
        ];
        args.extend_from_slice(extra);
        Self::spawn("ip", &args, true)
    }

    /// Starts the announcer in the test's own namespace (no packet sockets are opened until a
    /// layer-2 or vip announcement arrives), without a metrics server.
    /// Failover heartbeats are off: tests running here in parallel would share UDP 9722.
    pub fn start_here(extra: &[&str], with_unix_socket: bool) -> Announcer {
        let mut args = vec!["--metrics-listen", "", "--heartbeat-port", "0"];
        args.extend_from_slice(extra);
        Self::spawn(BIN, &args, with_unix_socket)
    }

    fn spawn(program: &str, args: &[&str], with_unix_socket: bool) -> Announcer {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("announcer.sock");
        let log = dir.path().join("announcer.log");
        let listen = format!("unix:{}", socket.display());
        let mut args: Vec<&str> = args.to_vec();
        args.extend_from_slice(&["--garp-count", "3", "--garp-interval", "300ms"]);
        if !args.contains(&"--link-poll-interval") {
            args.extend_from_slice(&["--link-poll-interval", "500ms"]);
        }
        if with_unix_socket {
            args.extend_from_slice(&["--listen", &listen]);
        }
        let child = Command::new(program)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn ferrolb-announcer");
        let announcer = Announcer {
            child,
            socket,
            log,
            _dir: dir,
        };
        if with_unix_socket {
            announcer.wait_ready();
        }
        announcer
    }

    /// Writes `contents` to a file in this announcer's temporary directory.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self._dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.socket.exists() && self.ctl(&["state"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("announcer did not become ready; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn server(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Runs `ferrolb-announcer ctl --server unix:<socket> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_at(&self.server(), args)
    }

    /// Runs ctl and returns its JSON output, panicking on failure.
    pub fn ctl_ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("ctl prints JSON")
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) {
        // `ip netns exec` execs the announcer, so the child pid is the announcer itself.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Runs `ferrolb-announcer ctl --server <server> <args>`.
pub fn ctl_at(server: &str, args: &[&str]) -> Output {
    let mut full = vec!["ctl", "--server", server];
    full.extend_from_slice(args);
    Command::new(BIN).args(&full).output().expect("run ctl")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The value of one series in Prometheus text output (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}
