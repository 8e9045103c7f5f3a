//! The announce job as the controller task holds it: the planner, the EndpointSlice view,
//! and one driver task per announcer.
//!
//! ```text
//!   Node / EndpointSlice watch events ─▶ Job ─▶ Planner
//!   Index::take_targets ───────────────▶ Job::flush ─▶ per-node NodeDesired (drivers)
//!   DriverReport ──────────────────────▶ Job          └▶ Index::set_announced / note_move
//! ```
//!
//! Nothing is sent to any announcer before the term knows everything it needs (Services
//! allocated, Nodes and EndpointSlices listed, and the first attempt to read the heartbeat
//! key done): a leader that synced a partial picture would withdraw addresses that are still
//! wanted. Without the key (its Secret unreadable) layer2/vip entries go to their first
//! candidate only, with no key; once it is read every candidate gets them, and every node its
//! failover peers and the key. Generations are `(epoch << 20) + n`, where the
//! epoch grows with every leader change (`lease::Claim::epoch`) and `n` counts this term's
//! sets per node, so they keep increasing across leaders.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    driver::{self, ClientTls, DriverReport, NodeDesired},
    heartbeat_key::KeyOutcome,
    model::{HeartbeatKey, Mode, NodeAnnouncement, NodeInfo, NodeName},
    plan::Planner,
    topology::{SliceId, SliceView, Slices, node_info},
};
use crate::{
    index::{Index, ServiceWrite},
    ipam::ServiceKey,
    metrics::{Metrics, NodeModeLabels},
    peers::{BgpPeer, PeerBook, PeerReport, book::ObjectReport, watch::SecretData},
    relist::Change,
};

/// The Sync generation of the `sent`-th set of a term.
fn generation(epoch: u64, sent: u64) -> u64 {
    (epoch << 20).wrapping_add(sent)
}

struct Driver {
    desired: watch::Sender<NodeDesired>,
    task: JoinHandle<()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the term stands with the heartbeat key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyState {
    /// The first attempt to read it is not done: send nothing yet.
    NotReadYet,
    /// Its Secret cannot be read or created: first candidates only, no key.
    Unavailable,
    /// Read: every candidate gets layer2/vip entries, with the key.
    Known(HeartbeatKey),
}

/// See the module documentation.
pub struct Job {
    /// Conflicts announcers reported since the last flush: (address, sentence).
    conflicts: Vec<(IpAddr, String)>,
    planner: Planner,
    slices: Slices,
    drivers: BTreeMap<NodeName, Driver>,
    /// Sets sent per node this term. Kept when a node's driver stops: an announcer whose
    /// endpoint left the EndpointSlices for a moment (a slice replaced by another) still
    /// holds the generation it accepted, and refuses any lower one.
    sent: BTreeMap<NodeName, u64>,
    /// Peer sets sent per node this term (SyncPeers generations), kept for the same reason.
    peers_sent: BTreeMap<NodeName, u64>,
    connected: BTreeMap<NodeName, bool>,
    epoch: u64,
    tls: watch::Receiver<Option<Arc<ClientTls>>>,
    reports: mpsc::UnboundedSender<DriverReport>,
    metrics: Arc<Metrics>,
    /// The announcer endpoints changed since drivers were last started or stopped.
    announcers_changed: bool,
    nodes_listed: bool,
    slices_listed: bool,
    /// The heartbeat key, once the first attempt to read it is done.
    key: KeyState,
    /// Every driver's desired state must be recomputed (key or announcer addresses changed).
    resend_all: bool,
    /// BGPPeers, their Secrets and the announcers' session reports.
    peers: PeerBook,
    /// Peer sets must be recomputed (objects, Secrets, node labels or announcers changed).
    peers_dirty: bool,
}

impl Job {
    /// A job for one term.
    pub fn new(
        announcer_service: ServiceKey,
        candidates: usize,
        epoch: u64,
        tls: watch::Receiver<Option<Arc<ClientTls>>>,
        reports: mpsc::UnboundedSender<DriverReport>,
        metrics: Arc<Metrics>,
        peers: PeerBook,
    ) -> Self {
        Job {
            peers,
            peers_dirty: true,
            conflicts: Vec::new(),
            planner: Planner::new(candidates),
            slices: Slices::new(announcer_service),
            drivers: BTreeMap::new(),
            sent: BTreeMap::new(),
            peers_sent: BTreeMap::new(),
            connected: BTreeMap::new(),
            announcers_changed: true,
            epoch,
            tls,
            reports,
            metrics,
            nodes_listed: false,
            slices_listed: false,
            key: KeyState::NotReadYet,
            resend_all: false,
        }
    }

    /// An attempt to read or create the heartbeat key Secret.
    pub fn key_outcome(&mut self, outcome: KeyOutcome) {
        match outcome {
            Ok(key) => {
                if self.key != KeyState::Known(key) {
                    tracing::info!(
                        "heartbeat key read: layer2/vip announcements go to every failover candidate"
                    );
                    self.key = KeyState::Known(key);
                    self.planner.set_failover(true);
                    self.resend_all = true;
                }
            }
            Err(_) if self.key == KeyState::NotReadYet => self.key = KeyState::Unavailable,
            // Logged by the key task; a key once read stays for the term.
            Err(_) => {}
        }
    }

    /// A change of the BGPPeer objects.
    pub fn peer_change(&mut self, change: Change<BgpPeer, BgpPeer>) {
        match change {
            Change::Listed(peers) => self.peers.reset_objects(peers),
            Change::Applied(peer) => self.peers.apply_object(peer),
            Change::Deleted(peer) => self.peers.delete_object(&peer.name),
        }
        self.peers_dirty = true;
    }

    /// A change of the password Secrets.
    pub fn secret_change(&mut self, change: Change<SecretData, SecretData>) {
        match change {
            Change::Listed(secrets) => self.peers.reset_secrets(secrets),
            Change::Applied((name, data)) => self.peers.apply_secret(name, data),
            Change::Deleted((name, _)) => self.peers.delete_secret(&name),
        }
        self.peers_dirty = true;
    }

    /// What every BGPPeer's status should say now.
    pub fn peer_reports(&self) -> Vec<ObjectReport> {
        self.peers.reports(&self.planner.announcer_labels())
    }

    /// A change of the Nodes (listed as their [`NodeInfo`]).
    pub fn node_change(&mut self, change: Change<Node, (NodeName, NodeInfo)>) {
        match change {
            Change::Listed(nodes) => {
                self.planner.reset_nodes(nodes.into_iter().collect());
                self.nodes_listed = true;
                self.peers_dirty = true;
            }
            Change::Applied(node) => {
                if let Some((name, info)) = node_info(&node) {
                    // Kubelets rewrite their Node's status every few seconds; only a change
                    // of labels can change which BGP peers a node has.
                    self.peers_dirty |= self.planner.node_labels(&name) != Some(&info.labels);
                    self.planner.set_node(&name, Some(info));
                }
            }
            Change::Deleted(node) => {
                if let Some((name, _)) = node_info(&node) {
                    self.planner.set_node(&name, None);
                    self.peers_dirty = true;
                }
            }
        }
    }

    /// A change of the EndpointSlices.
    pub fn slice_change(&mut self, change: Change<EndpointSlice, (SliceId, SliceView)>) {
        let touched: Vec<ServiceKey> = match change {
            Change::Listed(listed) => {
                self.slices_listed = true;
                self.slices.reset(listed).into_iter().collect()
            }
            Change::Applied(slice) => self.slices.apply(&slice).into_iter().collect(),
            Change::Deleted(slice) => {
                let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
                let name = slice.metadata.name.as_deref().unwrap_or_default();
                self.slices.delete(namespace, name).into_iter().collect()
            }
        };
        for service in touched {
            if self.slices.is_announcer_service(&service) {
                // A relist touches every Service: only a real change restarts drivers.
                self.announcers_changed |= self.planner.set_announcers(self.slices.announcers());
            } else {
                self.planner
                    .set_endpoints(&service, self.slices.ready_nodes(&service));
            }
        }
    }

    /// A driver's report.
    pub fn report(&mut self, report: DriverReport) {
        match report {
            DriverReport::Connected(node) => {
                self.connected.insert(node.clone(), true);
                self.planner.set_unreachable(&node, None);
            }
            DriverReport::Unreachable(node, problem) => {
                self.peers.set_report(
                    &node,
                    Some(PeerReport {
                        problem: Some(format!("announcer unreachable: {problem}")),
                        ..PeerReport::default()
                    }),
                );
                self.connected.insert(node.clone(), false);
                self.planner.clear_report(&node);
                self.planner.set_unreachable(&node, Some(problem));
            }
            DriverReport::Synced(_, latency) => {
                self.metrics.sync_latency.observe(latency.as_secs_f64());
            }
            DriverReport::Refused(node, message) => {
                self.metrics.sync_refusals.inc();
                tracing::error!(%node, "announcer refused its desired set: {message}");
            }
            DriverReport::State(node, state) => self.planner.set_report(&node, state),
            DriverReport::Peers(node, report) => self.peers.set_report(&node, Some(report)),
            DriverReport::Conflict(node, address, sentence) => {
                tracing::warn!(%node, %address, "address conflict: {sentence}");
                self.metrics.address_conflicts.inc();
                self.conflicts.push((address, sentence));
            }
        }
        let up = self.connected.values().filter(|c| **c).count();
        self.metrics
            .announcers_connected
            .set(i64::try_from(up).unwrap_or(i64::MAX));
    }

    /// True once the term knows enough to tell announcers anything.
    pub fn ready(&self, index: &Index) -> bool {
        index.is_serving()
            && self.nodes_listed
            && self.slices_listed
            && self.key != KeyState::NotReadYet
    }

    /// Moves what changed into the planner and out to the drivers and the index.
    pub fn flush(&mut self, index: &mut Index) -> Vec<ServiceWrite> {
        for (key, target) in index.take_targets() {
            self.planner.set_target(&key, target);
        }
        if !self.ready(index) {
            return Vec::new();
        }
        let flush = self.planner.flush();
        if std::mem::take(&mut self.announcers_changed) {
            self.sync_drivers();
            // A node's failover peers name other nodes' announcer addresses.
            self.resend_all = true;
            self.peers_dirty = true;
        }
        if self.peers.ready() && std::mem::take(&mut self.peers_dirty) {
            self.send_peers();
        }
        let mut sent = std::collections::BTreeSet::new();
        for (node, set) in flush.sets {
            self.send(&node, set);
            sent.insert(node);
        }
        if std::mem::take(&mut self.resend_all) {
            let others: Vec<NodeName> = self
                .drivers
                .keys()
                .filter(|n| !sent.contains(*n))
                .cloned()
                .collect();
            for node in others {
                let set = self.planner.set_of(&node);
                self.send(&node, set);
            }
        }
        for moved in &flush.moves {
            self.metrics
                .moves
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: moved.reason.to_string(),
                })
                .inc();
            tracing::info!(
                address = %moved.address,
                from = %moved.from,
                to = ?moved.to,
                "moved: {}",
                moved.why
            );
            index.note_move(moved);
        }
        let mut writes = Vec::new();
        for (key, status) in flush.statuses {
            writes.extend(index.set_announced(&key, status));
        }
        for (address, sentence) in std::mem::take(&mut self.conflicts) {
            for key in self.planner.services_at(address) {
                writes.extend(index.note_conflict(&key, &sentence));
            }
        }
        writes
    }

    /// Starts drivers for new announcers, stops those that left, re-points moved ones.
    fn sync_drivers(&mut self) {
        let announcers = self.planner.announcers().clone();
        let gone: Vec<NodeName> = self
            .drivers
            .keys()
            .filter(|n| !announcers.contains_key(*n))
            .cloned()
            .collect();
        for node in gone {
            self.peers.set_report(&node, None);
            self.drivers.remove(&node);
            self.connected.remove(&node);
            self.planner.clear_report(&node);
            self.planner.set_unreachable(&node, None);
        }
        for (node, endpoint) in announcers {
            match self.drivers.get(&node) {
                Some(driver) => {
                    if driver.desired.borrow().endpoint != endpoint {
                        driver.desired.send_modify(|d| d.endpoint = endpoint);
                    }
                }
                None => {
                    let set = self.planner.set_of(&node);
                    let generation = self.next_generation(&node);
                    let (tx, rx) = watch::channel(NodeDesired {
                        endpoint,
                        generation,
                        set: set.clone(),
                        peers: Arc::new(self.planner.failover_peers(&node)),
                        key: self.current_key(),
                        bgp_peers: None,
                        peers_generation: 0,
                    });
                    self.publish_counts(&node, &set);
                    let task = tokio::spawn(driver::run(
                        node.clone(),
                        rx,
                        self.tls.clone(),
                        self.reports.clone(),
                    ));
                    self.drivers
                        .insert(node.clone(), Driver { desired: tx, task });
                }
            }
        }
    }

    /// The generation of the next set sent to `node` this term.
    fn next_generation(&mut self, node: &NodeName) -> u64 {
        let sent = self.sent.entry(node.clone()).or_default();
        *sent += 1;
        generation(self.epoch, *sent)
    }

    /// The key sent with every Sync: only with failover on (the key was read).
    fn current_key(&self) -> Option<HeartbeatKey> {
        match self.key {
            KeyState::Known(key) => Some(key),
            _ => None,
        }
    }

    /// Gives a node's driver its set, failover peers and key, under a new generation when
    /// any of them changed.
    fn send(&mut self, node: &NodeName, set: Arc<Vec<NodeAnnouncement>>) {
        self.publish_counts(node, &set);
        let peers = self.planner.failover_peers(node);
        let key = self.current_key();
        let Some(driver) = self.drivers.get(node) else {
            return;
        };
        {
            let known = driver.desired.borrow();
            if known.set == set && *known.peers == peers && known.key == key {
                return;
            }
        }
        let generation = self.next_generation(node);
        let Some(driver) = self.drivers.get(node) else {
            return;
        };
        driver.desired.send_modify(|d| {
            d.generation = generation;
            d.set = set;
            d.peers = Arc::new(peers);
            d.key = key;
        });
    }

    /// Gives every driver its node's BGP peer set, under a new generation when it changed
    /// (an identical set is not sent again, so the announcer's sessions are not touched).
    fn send_peers(&mut self) {
        let mut sets = self.peers.desired(&self.planner.announcer_labels());
        let epoch = self.epoch;
        for (node, driver) in &self.drivers {
            let set = sets.remove(node).unwrap_or_default();
            if driver.desired.borrow().bgp_peers.as_deref() == Some(&set) {
                continue;
            }
            let sent = self.peers_sent.entry(node.clone()).or_default();
            *sent += 1;
            let generation = generation(epoch, *sent);
            driver.desired.send_modify(|d| {
                d.bgp_peers = Some(Arc::new(set));
                d.peers_generation = generation;
            });
        }
    }

    fn publish_counts(&self, node: &NodeName, set: &[NodeAnnouncement]) {
        let mut counts: HashMap<Mode, i64> = HashMap::new();
        for entry in set {
            *counts.entry(entry.mode).or_default() += 1;
        }
        for mode in [Mode::Layer2, Mode::Vip, Mode::Bgp] {
            self.metrics
                .node_announcements
                .get_or_create(&NodeModeLabels {
                    node: node.to_string(),
                    mode: mode.as_str().to_string(),
                })
                .set(counts.get(&mode).copied().unwrap_or(0));
        }
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
