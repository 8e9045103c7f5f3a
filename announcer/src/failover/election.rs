//! The election (pure: no I/O, no clock; `now` is passed in).
//!
//! Each failover *group* is one layer2/vip address with its ordered candidates (this node among
//! them). Every node tells each peer, in one heartbeat per interval, which of their shared
//! addresses it holds and which it is ready to hold. From the last heartbeat of each peer, a
//! peer is *alive* (heard within the dead interval), *unknown* (never heard since it became a
//! peer, for less than one dead interval) or *dead*. For each group:
//!
//! - a holder keeps the address while it lives, unless an alive peer earlier in the candidate
//!   list holds it too (after a partition heals: the earlier one keeps it), or, with
//!   preemption, an earlier peer is alive and ready;
//! - a node that does not hold it claims it when no alive peer holds it, no peer is unknown
//!   (a node that just started first listens, so it never takes an address back from a
//!   holder it has not heard yet), and every candidate before it is dead or not ready.
//!
//! So exactly one live candidate holds each address once heartbeats flow, the tie-break is the
//! candidate order, and a returning node does not preempt by default.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node name.
pub type NodeId = Arc<str>;

/// What the election needs to know about timing and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Heartbeat interval.
    pub interval: Duration,
    /// A peer is dead after `interval × multiplier` without a heartbeat.
    pub multiplier: u32,
    /// A live earlier candidate takes an address back from a later one.
    pub preempt: bool,
}

impl Settings {
    /// The dead interval.
    pub fn dead(&self) -> Duration {
        self.interval * self.multiplier.max(1)
    }
}

/// A change the engine must make, with the sentence its status reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Put the address in force here.
    Claim { address: IpAddr, message: String },
    /// Take it out of force here; `holder` answers for it (if known).
    Release {
        address: IpAddr,
        holder: Option<NodeId>,
        message: String,
    },
    /// Not held here, and the reason changed (who holds it, or what we wait for).
    Standby {
        address: IpAddr,
        holder: Option<NodeId>,
        message: String,
    },
}

/// One heartbeat to send: to `peer` at `address`, the shared addresses held and ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub peer: NodeId,
    pub address: IpAddr,
    pub held: Vec<IpAddr>,
    pub ready: Vec<IpAddr>,
}

#[derive(Debug)]
struct Peer {
    address: IpAddr,
    known_since: Instant,
    heard: Option<Instant>,
    held: BTreeSet<IpAddr>,
    ready: BTreeSet<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Alive,
    Unknown,
    Dead,
}

#[derive(Debug)]
struct Group {
    candidates: Vec<NodeId>,
    held: bool,
    /// Not ready here until then (activation failed).
    unable_until: Option<Instant>,
    /// The last node seen holding it (this one included).
    last_holder: Option<NodeId>,
    /// The standby reason last reported, to report only changes.
    reported: Option<(Option<NodeId>, String)>,
}

/// The election state of one node. See the module documentation.
///
/// Deciding costs O(groups × candidates), so it runs only when something it depends on
/// changed: the configuration, a peer's sets, a peer's liveness, or a readiness that expired.
/// A steady stream of identical heartbeats costs O(peers) per call.
#[derive(Debug)]
pub struct Election {
    settings: Settings,
    me: NodeId,
    peers: BTreeMap<NodeId, Peer>,
    groups: BTreeMap<IpAddr, Group>,
    /// Something changed since the last decision.
    dirty: bool,
    /// Each peer's liveness at the last decision.
    last_seen: BTreeMap<NodeId, Seen>,
    /// The earliest `unable_until` still ahead.
    next_ready: Option<Instant>,
    /// The heartbeats' address lists, rebuilt when the groups or what is held change.
    outgoing: Option<Vec<Outgoing>>,
}

impl Election {
    pub fn new(settings: Settings) -> Self {
        Election {
            settings,
            me: Arc::from(""),
            peers: BTreeMap::new(),
            groups: BTreeMap::new(),
            dirty: true,
            last_seen: BTreeMap::new(),
            next_ready: None,
            outgoing: None,
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Replaces the configuration: this node's name, its peers' heartbeat addresses and the
    /// groups (address → ordered candidates, and whether it is already in force here, for an
    /// address that becomes a group while held). Peers and groups that stay keep their state;
    /// a new peer is unknown for one dead interval.
    pub fn configure(
        &mut self,
        now: Instant,
        me: &str,
        peers: BTreeMap<NodeId, IpAddr>,
        groups: BTreeMap<IpAddr, (Vec<NodeId>, bool)>,
    ) {
        if *self.me != *me {
            self.me = Arc::from(me);
        }
        let mut old_peers = std::mem::take(&mut self.peers);
        for (name, address) in peers {
            if *name == *me {
                continue;
            }
            let peer = match old_peers.remove(&name) {
                Some(mut peer) => {
                    peer.address = address;
                    peer
                }
                None => Peer {
                    address,
                    known_since: now,
                    heard: None,
                    held: BTreeSet::new(),
                    ready: BTreeSet::new(),
                },
            };
            self.peers.insert(name, peer);
        }
        let mut old_groups = std::mem::take(&mut self.groups);
        for (address, (candidates, held)) in groups {
            let group = match old_groups.remove(&address) {
                Some(mut group) => {
                    group.candidates = candidates;
                    group
                }
                None => Group {
                    candidates,
                    held,
                    unable_until: None,
                    last_holder: None,
                    reported: None,
                },
            };
            self.groups.insert(address, group);
        }
        self.dirty = true;
        self.outgoing = None;
    }

    /// The addresses held here.
    #[cfg(test)]
    pub fn held(&self) -> Vec<IpAddr> {
        self.groups
            .iter()
            .filter(|(_, g)| g.held)
            .map(|(a, _)| *a)
            .collect()
    }

    /// A verified heartbeat from `from`, with the shared addresses it holds and is ready to
    /// hold (`None`: part of a heartbeat whose sets are not complete yet, liveness only);
    /// false when `from` is not a peer.
    pub fn heard(
        &mut self,
        now: Instant,
        from: &str,
        sets: Option<(BTreeSet<IpAddr>, BTreeSet<IpAddr>)>,
    ) -> bool {
        let Some(peer) = self.peers.get_mut(from) else {
            return false;
        };
        peer.heard = Some(now);
        if let Some((held, ready)) = sets
            && (peer.held != held || peer.ready != ready)
        {
            peer.held = held;
            peer.ready = ready;
            self.dirty = true;
        }
        true
    }

    /// The engine could not put `address` in force: not ready here for one dead interval.
    pub fn unable(&mut self, now: Instant, address: IpAddr) {
        let dead = self.settings.dead();
        if let Some(group) = self.groups.get_mut(&address) {
            group.held = false;
            group.unable_until = Some(now + dead);
            group.reported = None;
            self.next_ready = Some(self.next_ready.map_or(now + dead, |t| t.min(now + dead)));
        }
        self.dirty = true;
        self.outgoing = None;
    }

    /// The heartbeats to send now: one per peer.
    pub fn outgoing(&mut self, now: Instant) -> Vec<Outgoing> {
        if self.next_ready.is_some_and(|t| now >= t) {
            self.outgoing = None;
        }
        if let Some(cached) = &self.outgoing {
            return cached.clone();
        }
        let built = self.build_outgoing(now);
        self.outgoing = Some(built.clone());
        built
    }

    fn build_outgoing(&self, now: Instant) -> Vec<Outgoing> {
        let mut out: BTreeMap<&NodeId, Outgoing> = self
            .peers
            .iter()
            .map(|(name, peer)| {
                (
                    name,
                    Outgoing {
                        peer: name.clone(),
                        address: peer.address,
                        held: Vec::new(),
                        ready: Vec::new(),
                    },
                )
            })
            .collect();
        for (address, group) in &self.groups {
            let ready = group.unable_until.is_none_or(|until| now >= until);
            for candidate in &group.candidates {
                if let Some(entry) = out.get_mut(candidate) {
                    if group.held {
                        entry.held.push(*address);
                    } else if ready {
                        entry.ready.push(*address);
                    }
                }
            }
        }
        out.into_values().collect()
    }

    fn seen(&self, now: Instant, name: &NodeId) -> Seen {
        let Some(peer) = self.peers.get(name) else {
            return Seen::Dead;
        };
        let dead = self.settings.dead();
        match peer.heard {
            Some(at) if now.saturating_duration_since(at) < dead => Seen::Alive,
            None if now.saturating_duration_since(peer.known_since) < dead => Seen::Unknown,
            _ => Seen::Dead,
        }
    }

    /// A peer's liveness as [`Election::evaluate`] computed it for this decision (a node that
    /// is no peer is dead).
    fn seen_at_evaluation(&self, name: &NodeId) -> Seen {
        self.last_seen.get(name).copied().unwrap_or(Seen::Dead)
    }

    /// This node's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Decides every group when something changed; returns only changes.
    pub fn evaluate(&mut self, now: Instant) -> Vec<Decision> {
        let seen: BTreeMap<NodeId, Seen> = self
            .peers
            .keys()
            .map(|name| (name.clone(), self.seen(now, name)))
            .collect();
        if seen != self.last_seen {
            self.last_seen = seen;
            self.dirty = true;
        }
        if self.next_ready.is_some_and(|t| now >= t) {
            self.next_ready = None;
            self.dirty = true;
        }
        if !std::mem::take(&mut self.dirty) {
            return Vec::new();
        }
        let addresses: Vec<IpAddr> = self.groups.keys().copied().collect();
        let decisions: Vec<Decision> = addresses
            .into_iter()
            .filter_map(|address| self.evaluate_one(now, address))
            .collect();
        if decisions
            .iter()
            .any(|d| !matches!(d, Decision::Standby { .. }))
        {
            self.outgoing = None;
        }
        // A group still waiting for a peer to become known or dead is decided again when
        // that peer's liveness changes (seen above); nothing else can change it.
        decisions
    }

    fn evaluate_one(&mut self, now: Instant, address: IpAddr) -> Option<Decision> {
        let group = self.groups.get(&address)?;
        let me = self.me.clone();
        let my_rank = group.candidates.iter().position(|c| *c == me)?;
        let ready_here = group.unable_until.is_none_or(|until| now >= until);
        let mut holders: Vec<(usize, NodeId)> = Vec::new();
        let mut unknown: Option<NodeId> = None;
        let mut earlier_ready: Option<NodeId> = None;
        for (rank, candidate) in group.candidates.iter().enumerate() {
            if *candidate == me {
                continue;
            }
            let seen = self.seen_at_evaluation(candidate);
            let peer = self.peers.get(candidate);
            match seen {
                Seen::Alive => {
                    let peer = peer?;
                    if peer.held.contains(&address) {
                        holders.push((rank, candidate.clone()));
                    } else if rank < my_rank
                        && peer.ready.contains(&address)
                        && earlier_ready.is_none()
                    {
                        earlier_ready = Some(candidate.clone());
                    }
                }
                Seen::Unknown => {
                    unknown.get_or_insert(candidate.clone());
                }
                Seen::Dead => {}
            }
        }
        let first_holder = holders.first().map(|(_, n)| n.clone());
        let previous_alive = group
            .last_holder
            .as_ref()
            .map(|p| self.seen_at_evaluation(p) == Seen::Alive);
        let group = self.groups.get_mut(&address)?;
        if let Some(holder) = &first_holder {
            group.last_holder = Some(holder.clone());
        }
        if group.held {
            let earlier_holder = holders.iter().find(|(rank, _)| *rank < my_rank);
            let release = match (earlier_holder, &earlier_ready) {
                (Some((_, holder)), _) => Some((
                    holder.clone(),
                    format!(
                        "released: {holder} holds it too and comes first in the candidate list"
                    ),
                )),
                (None, Some(earlier)) if self.settings.preempt => Some((
                    earlier.clone(),
                    format!("released: {earlier} is back and comes first (preemption is on)"),
                )),
                _ => None,
            };
            let (holder, message) = release?;
            group.held = false;
            group.reported = Some((Some(holder.clone()), message.clone()));
            return Some(Decision::Release {
                address,
                holder: Some(holder),
                message,
            });
        }
        let (holder, message) = if !ready_here {
            return None;
        } else if let Some(holder) = first_holder {
            let message = format!("standby: {holder} holds it");
            (Some(holder), message)
        } else if let Some(peer) = unknown {
            (
                None,
                format!("standby: waiting for the first heartbeat from {peer}"),
            )
        } else if let Some(earlier) = earlier_ready {
            (
                None,
                format!("standby: {earlier} comes first and may claim it"),
            )
        } else {
            group.held = true;
            group.reported = None;
            let previous = group.last_holder.replace(me.clone());
            let message = match previous {
                Some(previous) if previous != me => {
                    if previous_alive == Some(true) {
                        format!("took over from {previous}: {previous} released it")
                    } else {
                        format!(
                            "took over from {previous}: {previous} stopped answering heartbeats"
                        )
                    }
                }
                _ => "claimed: no live candidate before this node holds it".to_string(),
            };
            return Some(Decision::Claim { address, message });
        };
        let report = (holder.clone(), message.clone());
        if group.reported.as_ref() == Some(&report) {
            return None;
        }
        group.reported = Some(report);
        Some(Decision::Standby {
            address,
            holder,
            message,
        })
    }
}

#[cfg(test)]
mod tests;
