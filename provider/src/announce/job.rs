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
//! allocated, Nodes and EndpointSlices listed): a leader that synced a partial picture would
//! withdraw addresses that are still wanted. Generations are `(epoch << 20) + n`, where the
//! epoch grows with every leader change (`lease::Claim::epoch`) and `n` counts this term's
//! sets per node, so they keep increasing across leaders.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    driver::{self, ClientTls, DriverReport, NodeDesired},
    model::{Mode, NodeInfo, NodeName},
    plan::Planner,
    topology::{Slices, node_info},
};
use crate::{
    index::{Index, ServiceWrite},
    ipam::ServiceKey,
    metrics::{Metrics, NodeModeLabels},
    relist::Change,
};

/// The Sync generation of the `sent`-th set of a term.
fn generation(epoch: u64, sent: u64) -> u64 {
    (epoch << 20).wrapping_add(sent)
}

struct Driver {
    desired: watch::Sender<NodeDesired>,
    task: JoinHandle<()>,
    sent: u64,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// See the module documentation.
pub struct Job {
    planner: Planner,
    slices: Slices,
    drivers: BTreeMap<NodeName, Driver>,
    connected: BTreeMap<NodeName, bool>,
    epoch: u64,
    tls: watch::Receiver<Option<Arc<ClientTls>>>,
    reports: mpsc::UnboundedSender<DriverReport>,
    metrics: Arc<Metrics>,
    /// The announcer endpoints changed since drivers were last started or stopped.
    announcers_changed: bool,
    nodes_listed: bool,
    slices_listed: bool,
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
    ) -> Self {
        Job {
            planner: Planner::new(candidates),
            slices: Slices::new(announcer_service),
            drivers: BTreeMap::new(),
            connected: BTreeMap::new(),
            announcers_changed: true,
            epoch,
            tls,
            reports,
            metrics,
            nodes_listed: false,
            slices_listed: false,
        }
    }

    /// A change of the Nodes (listed as their [`NodeInfo`]).
    pub fn node_change(&mut self, change: Change<Node, (NodeName, NodeInfo)>) {
        match change {
            Change::Listed(nodes) => {
                self.planner.reset_nodes(nodes.into_iter().collect());
                self.nodes_listed = true;
            }
            Change::Applied(node) => {
                if let Some((name, info)) = node_info(&node) {
                    self.planner.set_node(&name, Some(info));
                }
            }
            Change::Deleted(node) => {
                if let Some((name, _)) = node_info(&node) {
                    self.planner.set_node(&name, None);
                }
            }
        }
    }

    /// A change of the EndpointSlices.
    pub fn slice_change(&mut self, change: Change<EndpointSlice, EndpointSlice>) {
        let touched: Vec<ServiceKey> = match change {
            Change::Listed(listed) => {
                self.slices_listed = true;
                self.slices.reset(&listed).into_iter().collect()
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
                self.planner.set_announcers(self.slices.announcers());
                self.announcers_changed = true;
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
        }
        let up = self.connected.values().filter(|c| **c).count();
        self.metrics
            .announcers_connected
            .set(i64::try_from(up).unwrap_or(i64::MAX));
    }

    /// True once the term knows enough to tell announcers anything.
    pub fn ready(&self, index: &Index) -> bool {
        index.is_serving() && self.nodes_listed && self.slices_listed
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
        }
        for (node, set) in flush.sets {
            self.send(&node, set);
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
                    let sent = 1;
                    let (tx, rx) = watch::channel(NodeDesired {
                        endpoint,
                        generation: generation(self.epoch, sent),
                        set: set.clone(),
                    });
                    self.publish_counts(&node, &set);
                    let task = tokio::spawn(driver::run(
                        node.clone(),
                        rx,
                        self.tls.clone(),
                        self.reports.clone(),
                    ));
                    self.drivers.insert(
                        node.clone(),
                        Driver {
                            desired: tx,
                            task,
                            sent,
                        },
                    );
                }
            }
        }
    }

    fn send(&mut self, node: &NodeName, set: Arc<Vec<super::model::NodeAnnouncement>>) {
        self.publish_counts(node, &set);
        let epoch = self.epoch;
        let Some(driver) = self.drivers.get_mut(node) else {
            return;
        };
        if driver.desired.borrow().set == set {
            return;
        }
        driver.sent += 1;
        let generation = generation(epoch, driver.sent);
        driver.desired.send_modify(|d| {
            d.generation = generation;
            d.set = set;
        });
    }

    fn publish_counts(&self, node: &NodeName, set: &[super::model::NodeAnnouncement]) {
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
