//! The announcers: one `ferrolb-announcer` per node namespace with the flags of the
//! DaemonSet (gRPC with mTLS on the node address, a Unix socket for `ctl`, metrics, BGP to the
//! router), killed and restarted by PID, and read back through `ferrolb-announcer ctl state`
//! (what each node really announces, with `since` timestamps).

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::bird::{NODE_ASN, ROUTER_ASN};
use super::cluster::{Cluster, GRPC_PORT, METRICS_PORT, NODES};
use super::daemon::Daemon;
use super::{wait_for, workspace_binary};

/// One node's announcer.
pub struct NodeAnnouncer {
    pub daemon: Daemon,
    pub socket: PathBuf,
}
/// One line of an announcer's `ctl state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub address: String,
    pub mode: String,
    pub phase: String,
    pub since_unix_ms: u64,
}
impl Cluster {
    pub(super) fn spawn_announcer(&self, index: usize) -> NodeAnnouncer {
        let node = NODES[index];
        let host = self.topology.host(node).clone();
        let bin = workspace_binary("ferrolb-announcer");
        let socket = self.dir.path().join(format!("{node}.sock"));
        let _ = std::fs::remove_file(&socket);
        let bgp_config = self.dir.path().join(format!("bgp-{node}.json"));
        let router = self.topology.host("router").ipv4.clone();
        std::fs::write(
            &bgp_config,
            json!({"peers": [{
                "address": router, "peer_asn": ROUTER_ASN, "local_asn": NODE_ASN,
                "hold_time_seconds": 9, "connect_retry_seconds": 1
            }]})
            .to_string(),
        )
        .expect("write BGP config");
        let listen = format!("{}:{GRPC_PORT},unix:{}", host.ipv4, socket.display());
        let metrics = format!("{}:{METRICS_PORT}", host.ipv4);
        let tls = &self.announcer_tls;
        let daemon = Daemon::spawn(
            &format!("announcer-{node}"),
            &host.ns,
            &[
                &bin.to_string_lossy(),
                "--listen",
                &listen,
                "--tls-cert",
                &tls.cert.to_string_lossy(),
                "--tls-key",
                &tls.key.to_string_lossy(),
                "--client-ca",
                &tls.client_ca.to_string_lossy(),
                "--metrics-listen",
                &metrics,
                "--garp-count",
                "3",
                "--garp-interval",
                "300ms",
                "--link-poll-interval",
                "500ms",
                "--bgp-config",
                &bgp_config.to_string_lossy(),
            ],
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
            self.dir.path(),
        );
        NodeAnnouncer { daemon, socket }
    }

    pub(super) fn wait_announcer_ready(&mut self, index: usize) {
        let node = NODES[index];
        let announcer = self.announcers[index]
            .as_mut()
            .unwrap_or_else(|| panic!("announcer of {node} is not running"));
        let socket = announcer.socket.clone();
        wait_for(
            &format!("the announcer on {node} to answer `ctl state`"),
            Duration::from_secs(15),
            || {
                announcer.daemon.assert_running();
                ctl_state(&socket).map(|_| ())
            },
        );
    }

    /// SIGKILLs the announcer of `node` (a crash: it withdraws nothing itself).
    pub fn kill_announcer(&mut self, node: &str) {
        let index = Self::node_index(node);
        if let Some(mut announcer) = self.announcers[index].take() {
            announcer.daemon.kill();
        }
    }

    /// Starts the announcer of `node` again and waits until it answers.
    pub fn restart_announcer(&mut self, node: &str) {
        let index = Self::node_index(node);
        let announcer = self.spawn_announcer(index);
        self.announcers[index] = Some(announcer);
        self.wait_announcer_ready(index);
    }

    /// `ferrolb-announcer ctl state` of `node`: the JSON, or why it could not be read.
    pub fn ctl_state(&self, node: &str) -> Result<Value, String> {
        let index = Self::node_index(node);
        let announcer = self.announcers[index]
            .as_ref()
            .ok_or_else(|| format!("the announcer of {node} is not running"))?;
        ctl_state(&announcer.socket)
    }

    /// `ctl` with other arguments on `node`'s socket; panics on failure.
    pub fn ctl(&self, node: &str, args: &[&str]) -> Value {
        let index = Self::node_index(node);
        let announcer = self.announcers[index]
            .as_ref()
            .unwrap_or_else(|| panic!("the announcer of {node} is not running"));
        ctl(&announcer.socket, args).unwrap_or_else(|e| panic!("{node}: {e}"))
    }

    /// The announcements in `node`'s ctl state: `(address, mode, phase, since_unix_ms)`.
    pub fn announced(&self, node: &str) -> Result<Vec<Announced>, String> {
        let state = self.ctl_state(node)?;
        Ok(state["announcements"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| Announced {
                        address: a["address"].as_str().unwrap_or_default().to_string(),
                        mode: a["mode"].as_str().unwrap_or_default().to_string(),
                        phase: a["phase"].as_str().unwrap_or_default().to_string(),
                        since_unix_ms: a["since_unix_ms"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The nodes whose announcer lists `address` (any mode, any phase).
    pub fn nodes_announcing(&self, address: &str) -> Result<Vec<String>, String> {
        let mut nodes = Vec::new();
        for (index, node) in NODES.iter().enumerate() {
            if self.announcers[index].is_none() {
                continue;
            }
            if self.announced(node)?.iter().any(|a| a.address == address) {
                nodes.push(node.to_string());
            }
        }
        Ok(nodes)
    }

    /// The generation each running announcer reports in `ctl state` (the provider's Sync
    /// generation, which grows across leaders), for the log.
    pub fn generations(&self) -> Vec<(String, u64)> {
        NODES
            .iter()
            .filter_map(|node| {
                let state = self.ctl_state(node).ok()?;
                Some((node.to_string(), state["generation"].as_u64().unwrap_or(0)))
            })
            .collect()
    }
}

/// `ferrolb-announcer ctl --server unix:<socket> <args>` → its JSON output.
pub fn ctl(socket: &Path, args: &[&str]) -> Result<Value, String> {
    let bin = workspace_binary("ferrolb-announcer");
    let server = format!("unix:{}", socket.display());
    let out = std::process::Command::new(&bin)
        .args(["ctl", "--server", &server])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "ctl {args:?} on {server} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ctl {args:?} printed no JSON: {e}"))
}

fn ctl_state(socket: &Path) -> Result<Value, String> {
    ctl(socket, &["state"])
}

/// `ferrolb-announcer ctl watch` on one node: the announcer's own event stream, recorded
/// while a test disturbs the control plane.
pub struct EventWatch {
    pub node: String,
    daemon: Daemon,
}

impl Cluster {
    /// Starts `ctl watch` on `node`'s socket and waits until it is subscribed.
    pub fn watch_announcer(&self, node: &str) -> EventWatch {
        let index = Self::node_index(node);
        let socket = self.announcers[index]
            .as_ref()
            .unwrap_or_else(|| panic!("the announcer of {node} is not running"))
            .socket
            .clone();
        let bin = workspace_binary("ferrolb-announcer");
        let server = format!("unix:{}", socket.display());
        let host = self.topology.host(node).clone();
        let mut daemon = Daemon::spawn(
            &format!("watch-{node}"),
            &host.ns,
            &[&bin.to_string_lossy(), "ctl", "--server", &server, "watch"],
            &[],
            self.dir.path(),
        );
        wait_for(
            &format!("`ctl watch` on {node} to subscribe"),
            Duration::from_secs(10),
            || {
                daemon.assert_running();
                let log = daemon.log_text();
                log.contains("watching").then_some(()).ok_or(log)
            },
        );
        EventWatch {
            node: node.to_string(),
            daemon,
        }
    }
}

impl EventWatch {
    /// Stops the watch. Returns how many events it recorded and those that withdrew one of
    /// `addresses` or took it out of force (`removed`, or a phase other than active), as JSON.
    pub fn withdrawals(mut self, addresses: &[String]) -> (usize, Vec<String>) {
        self.daemon.stop();
        let events: Vec<Value> = self
            .daemon
            .log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .collect();
        let withdrawals = events
            .iter()
            .filter(|event| {
                event["type"] == "announcement_changed"
                    && addresses.iter().any(|a| event["address"] == a.as_str())
                    && (event["removed"] == true || event["phase"] != "active")
            })
            .map(|event| event.to_string())
            .collect();
        (events.len(), withdrawals)
    }
}
