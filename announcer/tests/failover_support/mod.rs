//! Shared parts of the failover tests (`tests/failover.rs`) and bench (`benches/failover.rs`):
//! a LAN of candidate nodes and clients, the real `ferrolb-announcer` in every node, synced
//! the way the provider would (same entries and candidate order everywhere, each node naming
//! itself, the peers' LAN addresses, one heartbeat key), and the crash of a node.
//!
//! ```text
//!                         br0 (own namespace)
//!   ┌──────────────┬──────────────┼──────────────┬──────────────┐
//! node-a .1      node-b .2      node-c .3      client .4      client .5 ...
//! announcer      announcer      announcer      kernel         arp_accept=1,
//! heartbeats     :9722/udp      metrics        defaults       accept_untracked_na=1
//! ```
//!
//! In layer-2 mode the announcer only answers ARP/NDP; something on the node must accept the
//! traffic, as kube-proxy does. Every node gets a local route for the address on `lo`
//! ([`Cluster::accept_locally`]), with `arp_ignore=1` and `arp_announce=2` so that its kernel
//! neither answers ARP for that address nor puts it in its own ARP requests: only the
//! announcer speaks for it on the wire.
//!
//! A node "crashes" the way a machine does: its link goes down first (nothing it would send
//! in its last moments, such as a goodbye, can leave), then the announcer gets SIGKILL.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Announcer, Host, Lan, path, run, try_run};

/// The announcers' default heartbeat port.
pub const HEARTBEAT_PORT: u16 = 9722;

/// A candidate node: its name in `candidates`, its namespace, and its announcer while it runs.
pub struct Node {
    pub name: String,
    pub host: Host,
    pub announcer: Option<Announcer>,
}

/// One address of the desired set, sent to every node.
#[derive(Debug, Clone)]
pub struct Entry {
    pub address: String,
    /// "layer2" or "vip".
    pub mode: &'static str,
    /// Node names, preferred owner first.
    pub candidates: Vec<String>,
}

impl Entry {
    pub fn new(address: &str, mode: &'static str, candidates: &[&str]) -> Entry {
        Entry {
            address: address.to_string(),
            mode,
            candidates: candidates.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// Candidate nodes and clients on one LAN.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub clients: Vec<Host>,
    /// Flags every announcer of this cluster is started with (besides the test defaults).
    pub flags: Vec<String>,
    pub entries: Vec<Entry>,
    generation: u64,
    dir: tempfile::TempDir,
    pub key_file: PathBuf,
    // Last: dropped after the announcers, so they exit before their namespaces go.
    pub lan: Lan,
}

/// "node-a", "node-b", ...
pub fn node_name(index: usize) -> String {
    format!("node-{}", (b'a' + index as u8) as char)
}

/// 32 random bytes as 64 hex characters (one of the two key-file forms the announcer reads).
pub fn random_key_hex() -> String {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("read /dev/urandom");
    key.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cluster {
    /// `nodes` candidate nodes (named node-a, node-b, ...) and `clients` clients on one LAN;
    /// client 0 keeps the kernel's default sysctls, the others learn neighbours from
    /// unsolicited announcements. No announcer runs yet ([`Cluster::start_all`]).
    pub fn new(nodes: usize, clients: usize, flags: &[&str]) -> Cluster {
        let lan = Lan::new(nodes + clients);
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("heartbeat.key");
        std::fs::write(&key_file, random_key_hex()).expect("write key");
        let nodes: Vec<Node> = lan.hosts[..nodes]
            .iter()
            .enumerate()
            .map(|(i, host)| Node {
                name: node_name(i),
                host: host.clone(),
                announcer: None,
            })
            .collect();
        for node in &nodes {
            node.host.sysctl(&[
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.eth0.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth0.arp_announce=2",
            ]);
        }
        let clients: Vec<Host> = lan.hosts[nodes.len()..].to_vec();
        for client in clients.iter().skip(1) {
            client.accept_unsolicited();
        }
        Cluster {
            nodes,
            clients,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            entries: Vec::new(),
            generation: 0,
            dir,
            key_file,
            lan,
        }
    }

    /// Makes every node's kernel accept traffic for `address` (layer-2 mode), as kube-proxy
    /// would: a local route on `lo`.
    pub fn accept_locally(&self, address: &str) {
        for node in &self.nodes {
            run(&[
                "ip",
                "-n",
                &node.host.ns,
                "route",
                "add",
                "local",
                address,
                "dev",
                "lo",
            ]);
        }
    }

    /// Starts the announcer on every node that has none.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].announcer.is_none() {
                self.start(i, &[]);
            }
        }
    }

    /// Starts node `i`'s announcer with the cluster flags plus `extra`; syncs it when the
    /// cluster already has a desired set.
    pub fn start(&mut self, i: usize, extra: &[&str]) {
        let mut flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        flags.extend_from_slice(extra);
        let announcer = Announcer::start(&self.nodes[i].host, &flags);
        self.nodes[i].announcer = Some(announcer);
        if !self.entries.is_empty() {
            self.sync_node(i);
        }
    }

    /// Replaces the desired set on every running node (a new generation).
    pub fn sync(&mut self, entries: &[Entry]) {
        self.entries = entries.to_vec();
        self.generation += 1;
        for i in 0..self.nodes.len() {
            if self.nodes[i].announcer.is_some() {
                self.sync_node(i);
            }
        }
    }

    /// The `ctl sync` arguments for node `i`: the current set, every candidate's LAN address.
    pub fn sync_args(&self, i: usize, file: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "sync",
            "--generation",
            &self.generation.to_string(),
            "--node",
            &self.nodes[i].name,
            "--heartbeat-key-file",
            path(&self.key_file),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for node in &self.nodes {
            args.push("--failover-peer".into());
            args.push(format!("{}={}", node.name, node.host.ipv4));
        }
        args.push("--file".into());
        args.push(file.into());
        args
    }

    fn sync_node(&self, i: usize) {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({"address": e.address, "mode": e.mode, "interface": "eth0",
                       "candidates": e.candidates})
            })
            .collect();
        let file = self.dir.path().join(format!("set-{i}.json"));
        std::fs::write(&file, serde_json::to_vec(&entries).expect("json")).expect("write set");
        let args = self.sync_args(i, path(&file));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.announcer(i).ctl_ok(&args);
    }

    pub fn announcer(&self, i: usize) -> &Announcer {
        self.nodes[i]
            .announcer
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no running announcer", self.nodes[i].name))
    }

    /// Crashes node `i`: link down, then SIGKILL to its announcer. Returns the instant the
    /// link was down (the `ip` command returned): from then on nothing reaches the node.
    pub fn crash(&mut self, i: usize) -> Instant {
        run(&[
            "ip",
            "-n",
            &self.nodes[i].host.ns,
            "link",
            "set",
            "eth0",
            "down",
        ]);
        let down = Instant::now();
        if let Some(mut announcer) = self.nodes[i].announcer.take() {
            let _ = announcer.child.kill();
            let _ = announcer.child.wait();
        }
        down
    }

    /// Brings node `i`'s link back (with its IPv6 address, which link down may flush).
    pub fn link_up(&self, i: usize) {
        let host = &self.nodes[i].host;
        run(&["ip", "-n", &host.ns, "link", "set", "eth0", "up"]);
        run(&[
            "ip",
            "-n",
            &host.ns,
            "addr",
            "replace",
            &format!("{}/64", host.ipv6),
            "dev",
            "eth0",
            "nodad",
        ]);
    }

    /// Node `i`'s view of `address`: its status object from `ctl state` (Null if absent).
    pub fn status(&self, i: usize, address: &str) -> Value {
        let state = self.announcer(i).ctl_ok(&["state"]);
        state["announcements"]
            .as_array()
            .and_then(|list| list.iter().find(|a| a["address"] == address).cloned())
            .unwrap_or(Value::Null)
    }

    /// (node name, phase, holder) for `address` on every running node.
    pub fn views(&self, address: &str) -> Vec<(String, String, String)> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].announcer.is_some())
            .map(|i| {
                let s = self.status(i, address);
                (
                    self.nodes[i].name.clone(),
                    s["phase"].as_str().unwrap_or("").to_string(),
                    s["holder"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// True when exactly node `owner` is active for `address` and every other running node
    /// is standby naming it as holder.
    pub fn settled_on(&self, address: &str, owner: usize) -> bool {
        let owner_name = &self.nodes[owner].name;
        self.views(address).iter().all(|(name, phase, holder)| {
            if name == owner_name {
                phase == "active"
            } else {
                phase == "standby" && holder == owner_name
            }
        })
    }

    /// Polls until [`Cluster::settled_on`] holds, for at most `timeout`; returns how long it
    /// took, or panics with every node's view.
    pub fn wait_settled(&self, address: &str, owner: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.settled_on(address, owner) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "{address} not settled on {} within {timeout:?}: {:?}\n{}",
                    self.nodes[owner].name,
                    self.views(address),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Node `i`'s metrics text (empty when nothing answers).
    pub fn metrics(&self, i: usize) -> String {
        self.nodes[i].host.http_get("/metrics")
    }

    /// The tail of every running announcer's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            if let Some(a) = &node.announcer {
                let text = a.log_text();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                out.push_str(&format!("--- {} log (last 30 lines):\n", node.name));
                for line in tail.iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Runs nft in node `i`'s namespace.
    pub fn nft(&self, i: usize, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.nodes[i].host.ns, "nft"];
        full.extend_from_slice(args);
        run(&full);
    }

    /// Drops heartbeat UDP both ways in node `i`'s namespace (everything else still flows).
    pub fn partition(&self, i: usize) {
        let port = HEARTBEAT_PORT.to_string();
        self.nft(i, &["add", "table", "inet", "flbpartition"]);
        for (chain, hook) in [("in", "input"), ("out", "output")] {
            self.nft(
                i,
                &[
                    "add",
                    "chain",
                    "inet",
                    "flbpartition",
                    chain,
                    &format!("{{ type filter hook {hook} priority 0; }}"),
                ],
            );
            for dir in ["sport", "dport"] {
                self.nft(
                    i,
                    &[
                        "add",
                        "rule",
                        "inet",
                        "flbpartition",
                        chain,
                        "udp",
                        dir,
                        &port,
                        "counter",
                        "drop",
                    ],
                );
            }
        }
    }

    /// Removes the partition of node `i`.
    pub fn heal(&self, i: usize) {
        self.nft(i, &["delete", "table", "inet", "flbpartition"]);
    }
}

/// Every MAC that answers ARP for `address` from `client` within about two seconds (sorted,
/// deduplicated): exactly one when exactly one node answers. Four requests, all replies
/// (not only the first) are read.
pub fn arp_answerers(client: &Host, address: &str) -> Vec<String> {
    let out = try_run(&[
        "ip", "netns", "exec", &client.ns, "arping", "-r", "-c", "4", "-W", "0.3", "-w", "2", "-I",
        "eth0", address,
    ]);
    let is_mac = |w: &str| {
        w.len() == 17
            && w.split(':')
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let mut macs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || "[]()".contains(c))
        .filter(|w| is_mac(w))
        .map(str::to_lowercase)
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// True when one ping from `client` to `address` is answered within `wait_s` seconds.
pub fn ping(client: &Host, address: &str, wait_s: u32) -> bool {
    let wait = wait_s.to_string();
    client
        .exec(&["ping", "-c", "1", "-W", &wait, address])
        .status
        .success()
}

/// Polls until a ping from `client` to `address` is answered, for at most `timeout`.
pub fn wait_ping(client: &Host, address: &str, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ping(client, address, 1) {
            return Some(start.elapsed());
        }
    }
    None
}
