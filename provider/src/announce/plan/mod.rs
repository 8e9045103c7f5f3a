//! The planner: who announces which address, and what each Service should say about it.
//!
//! ```text
//!   Target per Service (index) ─┐
//!   Nodes, announcer endpoints ─┼─▶ Planner ──flush()──▶ per-node desired sets (drivers)
//!   ready endpoints (ETP Local) ┤              └───────▶ ServiceStatus + moves (index)
//!   announcer reports ──────────┘
//! ```
//!
//! Placement is per address. The Services sharing an address are served together: the
//! oldest one decides the mode and interface. A node is eligible when its Node is Ready and
//! not excluded, and its announcer has a ready endpoint and is reachable; with
//! `externalTrafficPolicy: Local` it must also hold a ready endpoint of every such Service
//! sharing the address. Eligible nodes are ranked by rendezvous hashing of (address, node):
//! in layer2 and vip the first `--failover-candidates` are the address's ordered
//! candidates; in BGP every eligible node advertises. Rendezvous hashing spreads addresses
//! evenly, changes only the lists that named a node that is lost, and gives every leader the
//! same answer from the same inputs, so a new leader's first Sync changes nothing.
//!
//! Layer2/vip failover is the announcers' (issue #11): with the heartbeat key known
//! ([`Planner::set_failover`]) every candidate gets the entry and the candidates elect the
//! one that answers; without it only the first candidate gets it and answers at once. Either
//! way the planner learns who answers from the reports, never from its own placement: it
//! keeps the last Active holder of each address, and a new Active holder is a [`Move`]. So
//! the provider adopts what the announcers decided (also after a takeover while it was
//! away) and never moves an address a second time (`holders.rs`). The Services' statuses
//! come from the placements and the reports (`status.rs`).
//!
//! Pure: no I/O, no clock. Changes are recorded as dirty and computed on [`Planner::flush`],
//! so a burst of events costs one placement per touched address.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
};

use super::model::{
    AnnouncerEndpoint, BgpAttributes, FailoverPeer, Ineligible, InterfaceChoice, Mode,
    NodeAnnouncement, NodeInfo, NodeName, NodeSelection, Phase, Target,
};
use crate::ipam::{OneOrMore, ServiceKey};

mod holders;
mod sets;
mod status;

pub use holders::Move;
use sets::{Report, SetEdits};
pub use status::ServiceStatus;

/// Where one address is announced.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Placement {
    mode: Mode,
    interface: InterfaceChoice,
    /// "ns/name" of the Services served, sorted, comma-separated.
    services: Arc<str>,
    /// The ranked nodes: the ordered candidates, owner first (layer2, vip), or every
    /// eligible node (BGP).
    ranked: Arc<[NodeName]>,
    /// How many of `ranked` are sent the entry: every candidate (layer2, vip with failover),
    /// the first (layer2, vip without a heartbeat key) or all (BGP).
    sent: usize,
    /// BGP path attributes (from the deciding Service's pool).
    bgp: Option<Arc<BgpAttributes>>,
    /// Why nobody announces it: (reason, message). Boxed: nearly always `None`.
    nobody: Option<Box<(&'static str, String)>>,
}

impl Placement {
    /// The nodes sent the entry.
    fn nodes(&self) -> &[NodeName] {
        &self.ranked[..self.sent.min(self.ranked.len())]
    }

    /// The ordered failover candidates the entry names (empty for BGP).
    fn candidates(&self) -> Arc<[NodeName]> {
        if self.mode.single_owner() {
            self.ranked.clone()
        } else {
            Arc::from(Vec::new())
        }
    }
}

/// What the planner knows about one address (one record, not one map per field: a B-tree
/// entry costs about 60 bytes, at 10,000 addresses).
#[derive(Debug, Default)]
struct Address {
    /// The Services of the address, sorted (nearly always one, kept inline).
    services: OneOrMore<ServiceKey>,
    /// Where it is announced; `None` until placed, or when nothing is left to announce.
    placement: Option<Placement>,
    /// The last node reported Active for it (single-owner modes).
    holder: Option<NodeName>,
}

impl Address {
    fn is_empty(&self) -> bool {
        self.services.is_empty() && self.placement.is_none() && self.holder.is_none()
    }
}

/// What changed since the last flush.
#[derive(Debug, Default)]
pub struct Flush {
    /// Nodes whose desired set changed, with the whole new set.
    pub sets: Vec<(NodeName, Arc<Vec<NodeAnnouncement>>)>,
    /// Services whose status may have changed.
    pub statuses: Vec<(ServiceKey, Option<ServiceStatus>)>,
    /// Owners that changed.
    pub moves: Vec<Move>,
}

/// The planner. See the module documentation.
#[derive(Debug)]
pub struct Planner {
    /// How many failover candidates each layer2/vip announcement names.
    candidates: usize,
    /// The heartbeat key is known: layer2/vip entries go to every candidate.
    failover: bool,
    /// Boxed: a 180-byte `Target` inline in each of the table's slots (a third of them
    /// empty) cost more than the box.
    targets: HashMap<ServiceKey, Box<Target>>,
    /// Every address a target names, placed, or held. Boxed: a record inline in each B-tree
    /// slot (a third of them empty) cost more than the box.
    addresses: BTreeMap<IpAddr, Box<Address>>,
    nodes: BTreeMap<NodeName, NodeInfo>,
    announcers: BTreeMap<NodeName, AnnouncerEndpoint>,
    unreachable: BTreeMap<NodeName, String>,
    endpoints: HashMap<ServiceKey, BTreeSet<NodeName>>,
    reports: BTreeMap<NodeName, Report>,
    /// Addresses whose holder may have changed (reports or placement).
    dirty_holders: BTreeSet<IpAddr>,
    /// Each node's desired set, sorted by (address, mode). The same `Arc` is handed to the
    /// node's driver, so a set is held once, not once here and once per driver.
    sets: BTreeMap<NodeName, Arc<Vec<NodeAnnouncement>>>,
    dirty_addresses: BTreeSet<IpAddr>,
    topology_dirty: bool,
    dirty_services: BTreeSet<ServiceKey>,
    /// Nodes whose set was never sent (every known announcer gets one, even if empty).
    unsent: BTreeSet<NodeName>,
}

impl Planner {
    /// An empty planner naming `candidates` failover candidates per address (at least 1).
    pub fn new(candidates: usize) -> Self {
        Planner {
            candidates: candidates.max(1),
            failover: false,
            targets: HashMap::new(),
            addresses: BTreeMap::new(),
            nodes: BTreeMap::new(),
            announcers: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            endpoints: HashMap::new(),
            reports: BTreeMap::new(),
            dirty_holders: BTreeSet::new(),
            sets: BTreeMap::new(),
            dirty_addresses: BTreeSet::new(),
            topology_dirty: false,
            dirty_services: BTreeSet::new(),
            unsent: BTreeSet::new(),
        }
    }

    /// Whether the heartbeat key is known. With it, layer2/vip entries go to every
    /// candidate and the announcers elect the holder; without it, to the first candidate
    /// only (several candidates without a key would all answer).
    pub fn set_failover(&mut self, on: bool) {
        if self.failover != on {
            self.failover = on;
            self.topology_dirty = true;
        }
    }

    /// A Service's target changed (`None`: nothing to announce).
    pub fn set_target(&mut self, key: &ServiceKey, target: Option<Target>) {
        if self.targets.get(key).map(|t| &**t) == target.as_ref() {
            return;
        }
        if let Some(old) = self.targets.remove(key) {
            for address in &old.addresses {
                self.dirty_addresses.insert(*address);
                if let Some(entry) = self.addresses.get_mut(address)
                    && let Ok(at) = entry.services.binary_search(key)
                {
                    entry.services.remove(at);
                }
                self.prune(*address);
            }
        }
        if let Some(new) = target {
            for address in &new.addresses {
                self.dirty_addresses.insert(*address);
                let keys = &mut self.addresses.entry(*address).or_default().services;
                if let Err(at) = keys.binary_search(key) {
                    keys.insert(at, key.clone());
                }
            }
            self.targets.insert(key.clone(), Box::new(new));
        }
        self.dirty_services.insert(key.clone());
    }

    /// A Node was added or changed (`None`: deleted).
    pub fn set_node(&mut self, name: &str, info: Option<NodeInfo>) {
        let layer2_before = self.nodes.get(name).and_then(|i| i.layer2_address);
        let layer2_after = info.as_ref().and_then(|i| i.layer2_address);
        if layer2_before != layer2_after
            && let Some(set) = self.sets.get_mut(name)
        {
            // The node's own interface choice changed: rewrite its entries in place.
            for entry in Arc::make_mut(set).iter_mut() {
                let automatic = self
                    .addresses
                    .get(&entry.address)
                    .and_then(|a| a.placement.as_ref())
                    .is_some_and(|p| p.interface == InterfaceChoice::Automatic);
                if automatic && entry.mode.single_owner() {
                    entry.interface =
                        layer2_after.map_or(InterfaceChoice::Automatic, InterfaceChoice::CanReach);
                }
            }
            self.unsent.insert(name.into());
        }
        let changed = match info {
            Some(info) => self.nodes.insert(name.into(), info.clone()) != Some(info),
            None => self.nodes.remove(name).is_some(),
        };
        self.topology_dirty |= changed;
    }

    /// The complete list of Nodes.
    pub fn reset_nodes(&mut self, nodes: BTreeMap<NodeName, NodeInfo>) {
        if self.nodes != nodes {
            self.nodes = nodes;
            self.topology_dirty = true;
        }
    }

    /// The complete set of announcer endpoints, by node; true when it changed.
    pub fn set_announcers(&mut self, announcers: BTreeMap<NodeName, AnnouncerEndpoint>) -> bool {
        let changed = self.announcers != announcers;
        if changed {
            for name in announcers.keys() {
                if !self.announcers.contains_key(name) {
                    self.unsent.insert(name.clone());
                }
            }
            self.announcers = announcers;
            self.topology_dirty = true;
        }
        changed
    }

    /// The announcers to drive: every node with an announcer endpoint.
    pub fn announcers(&self) -> &BTreeMap<NodeName, AnnouncerEndpoint> {
        &self.announcers
    }

    /// A known Node's labels.
    pub fn node_labels(&self, node: &str) -> Option<&Arc<BTreeMap<String, String>>> {
        self.nodes.get(node).map(|info| &info.labels)
    }

    /// Every node with an announcer and its labels (BGP peers' `nodeSelector`s select on
    /// them); a node whose Node object is unknown has none.
    pub fn announcer_labels(&self) -> BTreeMap<NodeName, Arc<BTreeMap<String, String>>> {
        self.announcers
            .keys()
            .map(|node| {
                let labels = self
                    .nodes
                    .get(node)
                    .map(|info| Arc::clone(&info.labels))
                    .unwrap_or_default();
                (node.clone(), labels)
            })
            .collect()
    }

    /// Whether the provider can reach a node's announcer (`None`: reachable).
    pub fn set_unreachable(&mut self, node: &str, problem: Option<String>) {
        let changed = match problem {
            Some(problem) => {
                let was = self.unreachable.insert(node.into(), problem);
                was.is_none()
            }
            None => self.unreachable.remove(node).is_some(),
        };
        self.topology_dirty |= changed;
    }

    /// The nodes holding a ready endpoint of a Service (from its EndpointSlices).
    pub fn set_endpoints(&mut self, key: &ServiceKey, nodes: BTreeSet<NodeName>) {
        let before = self.endpoints.get(key);
        if before == Some(&nodes) || (before.is_none() && nodes.is_empty()) {
            return;
        }
        if nodes.is_empty() {
            self.endpoints.remove(key);
        } else {
            self.endpoints.insert(key.clone(), nodes);
        }
        if let Some(target) = self.targets.get(key)
            && target.local_traffic
        {
            self.dirty_addresses
                .extend(target.addresses.iter().copied());
        }
    }

    /// What a node's announcer reports for its announcements (the whole list).
    pub fn set_report(&mut self, node: &str, report: HashMap<(IpAddr, Mode), Phase>) {
        let report = Report::new(report);
        let empty = Report::default();
        let before = self.reports.get(node).unwrap_or(&empty);
        if self.reports.contains_key(node) && *before == report {
            return;
        }
        // Every report repeats the node's whole list, so only the entries whose phase changed
        // (or that appeared or went) can change a Service's status; touching every listed
        // address would recompute the status of every Service on the node per report.
        let touched: BTreeSet<IpAddr> = report
            .iter()
            .filter(|(k, v)| before.get(k) != Some(v))
            .map(|((a, _), _)| *a)
            .chain(
                before
                    .iter()
                    .filter(|(k, _)| report.get(k).is_none())
                    .map(|((a, _), _)| *a),
            )
            .collect();
        self.dirty_holders.extend(touched.iter().copied());
        for address in touched {
            if let Some(entry) = self.addresses.get(&address) {
                self.dirty_services.extend(entry.services.iter().cloned());
            }
        }
        self.reports.insert(node.into(), report);
    }

    /// Forgets a node's report (its announcer restarted or is unreachable).
    pub fn clear_report(&mut self, node: &str) {
        if self.reports.contains_key(node) {
            self.set_report(node, HashMap::new());
            self.reports.remove(node);
        }
    }

    /// Why `node` may not announce, or `Ok` when it may.
    pub fn eligibility(&self, node: &str) -> Result<(), Ineligible> {
        let Some(announcer) = self.announcers.get(node) else {
            return Err(Ineligible::NoAnnouncer);
        };
        let Some(info) = self.nodes.get(node) else {
            return Err(Ineligible::NoNode);
        };
        if !info.ready {
            return Err(Ineligible::NodeNotReady);
        }
        if info.excluded {
            return Err(Ineligible::Excluded);
        }
        if !announcer.ready {
            return Err(Ineligible::AnnouncerNotReady);
        }
        if let Some(problem) = self.unreachable.get(node) {
            return Err(Ineligible::Unreachable(problem.clone()));
        }
        Ok(())
    }

    /// Computes what changed since the last flush.
    pub fn flush(&mut self) -> Flush {
        let mut flush = Flush::default();
        let addresses: Vec<IpAddr> = if std::mem::take(&mut self.topology_dirty) {
            self.dirty_addresses.clear();
            self.addresses.keys().copied().collect()
        } else {
            std::mem::take(&mut self.dirty_addresses)
                .into_iter()
                .collect()
        };
        let eligible: BTreeMap<NodeName, Result<(), Ineligible>> = self
            .nodes
            .keys()
            .chain(self.announcers.keys())
            .map(|n| (n.clone(), self.eligibility(n)))
            .collect();
        let mut changed_nodes: BTreeSet<NodeName> = std::mem::take(&mut self.unsent);
        let mut edits: BTreeMap<NodeName, SetEdits> = BTreeMap::new();
        for address in addresses {
            let before = self
                .addresses
                .get_mut(&address)
                .and_then(|entry| entry.placement.take());
            let after = self.place(address, &eligible);
            if before == after {
                self.set_placement(address, before);
                continue;
            }
            if let Some(entry) = self.addresses.get(&address) {
                self.dirty_services.extend(entry.services.iter().cloned());
            }
            if let Some(old) = &before {
                for node in old.nodes() {
                    edits
                        .entry(node.clone())
                        .or_default()
                        .remove((address, old.mode));
                    changed_nodes.insert(node.clone());
                }
            }
            if let Some(new) = &after {
                let candidates = new.candidates();
                for node in new.nodes() {
                    let interface = match (&new.interface, self.nodes.get(node)) {
                        (InterfaceChoice::Automatic, Some(info)) if new.mode.single_owner() => info
                            .layer2_address
                            .map_or(InterfaceChoice::Automatic, InterfaceChoice::CanReach),
                        (interface, _) => interface.clone(),
                    };
                    edits
                        .entry(node.clone())
                        .or_default()
                        .put(NodeAnnouncement {
                            address,
                            mode: new.mode,
                            interface,
                            services: new.services.clone(),
                            candidates: candidates.clone(),
                            bgp: new.bgp.clone(),
                        });
                    changed_nodes.insert(node.clone());
                }
            }
            self.dirty_holders.insert(address);
            self.set_placement(address, after);
        }
        for address in std::mem::take(&mut self.dirty_holders) {
            if let Some(mv) = self.follow_holder(address, &eligible) {
                flush.moves.push(mv);
            }
            self.prune(address);
        }
        for (node, edits) in edits {
            let old = self.sets.remove(&node).unwrap_or_default();
            let new = edits.apply(&old);
            drop(old);
            if !new.is_empty() {
                self.sets.insert(node, Arc::new(new));
            }
        }
        for node in changed_nodes {
            let set = self.set_of(&node);
            if self.announcers.contains_key(&node) {
                flush.sets.push((node, set));
            }
        }
        for key in std::mem::take(&mut self.dirty_services) {
            let status = self.status(&key);
            flush.statuses.push((key, status));
        }
        flush
    }

    /// The Services served by `address`.
    pub fn services_at(&self, address: IpAddr) -> Vec<ServiceKey> {
        self.addresses
            .get(&address)
            .map(|entry| entry.services.to_vec())
            .unwrap_or_default()
    }

    /// Where `address` is announced, if placed.
    fn placement(&self, address: &IpAddr) -> Option<&Placement> {
        self.addresses.get(address)?.placement.as_ref()
    }

    /// Records where `address` is announced (`None`: nowhere), keeping its record only while
    /// it holds anything.
    fn set_placement(&mut self, address: IpAddr, placement: Option<Placement>) {
        match placement {
            Some(placement) => {
                self.addresses.entry(address).or_default().placement = Some(placement);
            }
            None => {
                if let Some(entry) = self.addresses.get_mut(&address) {
                    entry.placement = None;
                }
                self.prune(address);
            }
        }
    }

    /// Forgets `address` once no target names it, it is not placed and has no holder.
    fn prune(&mut self, address: IpAddr) {
        if self.addresses.get(&address).is_some_and(|e| e.is_empty()) {
            self.addresses.remove(&address);
        }
    }

    /// The desired set of a node as last flushed.
    pub fn set_of(&self, node: &str) -> Arc<Vec<NodeAnnouncement>> {
        self.sets.get(node).cloned().unwrap_or_default()
    }

    /// The failover peers of a node: every node named in the candidate lists of its set
    /// (itself included) that has an announcer, with that announcer's address. Empty
    /// without failover.
    pub fn failover_peers(&self, node: &str) -> Vec<FailoverPeer> {
        let Some(set) = self.sets.get(node).filter(|_| self.failover) else {
            return Vec::new();
        };
        let named: BTreeSet<&NodeName> = set.iter().flat_map(|a| a.candidates.iter()).collect();
        named
            .into_iter()
            .filter_map(|name| {
                self.announcers.get(name).map(|e| FailoverPeer {
                    node: name.clone(),
                    address: e.address,
                })
            })
            .collect()
    }

    /// Where `address` should be announced now.
    fn place(
        &self,
        address: IpAddr,
        eligible: &BTreeMap<NodeName, Result<(), Ineligible>>,
    ) -> Option<Placement> {
        let keys = &self.addresses.get(&address)?.services;
        let mut served: Vec<(&ServiceKey, &Target)> = keys
            .iter()
            .filter_map(|k| self.targets.get(k).map(|t| (k, &**t)))
            .collect();
        served.sort_by(|a, b| a.1.age.cmp(&b.1.age).then_with(|| a.0.cmp(b.0)));
        let (first_key, first) = served.iter().find(|(_, t)| t.mode.is_ok())?;
        let mode = first.mode.clone().ok()?;
        let served: Vec<(&ServiceKey, &Target)> = served
            .iter()
            .filter(|(_, t)| t.mode.as_ref().ok() == Some(&mode))
            .copied()
            .collect();
        let services: Vec<String> = served.iter().map(|(k, _)| k.to_string()).collect();
        let mut local: Option<BTreeSet<NodeName>> = None;
        for (key, target) in &served {
            if target.local_traffic {
                let ready = self.endpoints.get(*key).cloned().unwrap_or_default();
                local = Some(match local {
                    None => ready,
                    Some(acc) => acc.intersection(&ready).cloned().collect(),
                });
            }
        }
        let mut ranked: Vec<(u64, &NodeName)> = eligible
            .iter()
            .filter(|(_, e)| e.is_ok())
            .map(|(n, _)| n)
            .filter(|n| local.as_ref().is_none_or(|l| l.contains(*n)))
            .filter(|n| self.selected(first.nodes.as_ref(), n))
            .map(|n| (rendezvous_score(address, n), n))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let ranked: Vec<NodeName> = ranked.into_iter().map(|(_, n)| n.clone()).collect();
        let nobody = if ranked.is_empty() {
            Some(self.nobody(
                address,
                eligible,
                local.as_ref(),
                first.nodes.as_ref(),
                first_key,
            ))
        } else {
            None
        };
        let (ranked, sent): (Arc<[NodeName]>, usize) = if mode.single_owner() {
            let candidates: Arc<[NodeName]> = ranked.into_iter().take(self.candidates).collect();
            let sent = if self.failover { candidates.len() } else { 1 };
            (candidates, sent)
        } else {
            let sent = ranked.len();
            (ranked.into(), sent)
        };
        Some(Placement {
            mode,
            interface: first.interface.clone(),
            services: services.join(",").into(),
            ranked,
            sent,
            bgp: first.bgp.clone().filter(|_| mode == Mode::Bgp),
            nobody: nobody.map(Box::new),
        })
    }

    /// Whether the pool's node selector (if any) selects `node`.
    fn selected(&self, selection: Option<&NodeSelection>, node: &str) -> bool {
        selection.is_none_or(|s| {
            self.nodes
                .get(node)
                .is_some_and(|info| s.selects(&info.labels))
        })
    }

    /// Why no node may announce `address`: (reason, message).
    fn nobody(
        &self,
        address: IpAddr,
        eligible: &BTreeMap<NodeName, Result<(), Ineligible>>,
        local: Option<&BTreeSet<NodeName>>,
        selection: Option<&NodeSelection>,
        service: &ServiceKey,
    ) -> (&'static str, String) {
        let usable = eligible.values().filter(|e| e.is_ok()).count();
        if let Some(selection) = selection {
            let selected: Vec<&NodeName> = eligible
                .keys()
                .filter(|n| self.selected(Some(selection), n))
                .collect();
            if selected.is_empty() {
                return (
                    "NoEligibleNode",
                    format!(
                        "{address}: pool {} has nodeSelector `{}`, which selects none of the {} \
                         nodes with an announcer or Node object",
                        selection.pool,
                        selection.describe(),
                        eligible.len()
                    ),
                );
            }
            if usable > 0 && local.is_none() {
                let why: Vec<String> = selected
                    .iter()
                    .take(5)
                    .filter_map(|n| eligible[*n].as_ref().err().map(|e| format!("{n}: {e}")))
                    .collect();
                return (
                    "NoEligibleNode",
                    format!(
                        "{address}: none of the nodes pool {}'s nodeSelector `{}` selects may \
                         announce it ({})",
                        selection.pool,
                        selection.describe(),
                        why.join("; ")
                    ),
                );
            }
        }
        if usable > 0 && local.is_some() {
            let with_endpoints: Vec<&str> =
                local.into_iter().flatten().map(|n| n.as_ref()).collect();
            let detail = if with_endpoints.is_empty() {
                "no node holds a ready endpoint".to_string()
            } else {
                let why: Vec<String> = with_endpoints
                    .iter()
                    .map(|n| match eligible.get(*n) {
                        Some(Err(e)) => format!("{n}: {e}"),
                        _ => format!("{n}: no announcer"),
                    })
                    .collect();
                format!(
                    "the nodes holding ready endpoints may not announce ({})",
                    why.join("; ")
                )
            };
            return (
                "NoReadyEndpoints",
                format!("{address} (externalTrafficPolicy: Local, Service {service}): {detail}"),
            );
        }
        if eligible.is_empty() {
            return (
                "NoEligibleNode",
                format!(
                    "{address}: no announcer was found (is the ferrolb-announcer DaemonSet running?)"
                ),
            );
        }
        let all_unreachable = eligible
            .values()
            .all(|e| matches!(e, Err(Ineligible::Unreachable(_))));
        let reason = if all_unreachable {
            "AnnouncerUnreachable"
        } else {
            "NoEligibleNode"
        };
        let why: Vec<String> = eligible
            .iter()
            .take(5)
            .filter_map(|(n, e)| e.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        let more = eligible.len().saturating_sub(5);
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        (
            reason,
            format!(
                "{address}: no node may announce it ({}{more})",
                why.join("; ")
            ),
        )
    }
}

/// Rendezvous (highest random weight) score of `node` for `address`.
///
/// FNV-1a over the address bytes and the node name, finished with the splitmix64 mixer. Written
/// here rather than taken from `std::hash`, whose output may change between Rust releases: two
/// provider versions (an upgrade with a leader hand-over) must rank nodes identically, or the
/// hand-over moves addresses.
pub fn rendezvous_score(address: IpAddr, node: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    match address {
        IpAddr::V4(a) => feed(&a.octets()),
        IpAddr::V6(a) => feed(&a.octets()),
    }
    feed(&[0xff]);
    feed(node.as_bytes());
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
