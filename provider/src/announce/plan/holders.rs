//! Who answers for a layer2/vip address, as the announcers report it, and the [`Move`]s
//! between holders.
//!
//! ```text
//!   reports (Active, Standby) ─▶ follow_holder ─▶ last holder per address
//!                                     └─ a new Active holder ─▶ Move (why: the old holder's
//!                                        ineligibility, else the new holder's own message)
//! ```
//!
//! The holder is never taken from the placement: the candidates elect it among themselves, so
//! the provider adopts their decision and never forces a second move.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use super::Planner;
use crate::{
    announce::model::{Ineligible, NodeName, Phase},
    ipam::ServiceKey,
};

/// An address moved from one node to another (layer2, vip).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The address.
    pub address: IpAddr,
    /// Previous owner.
    pub from: NodeName,
    /// New owner (`None`: nobody may announce it now).
    pub to: Option<NodeName>,
    /// Why, as a sentence fragment: the old holder's ineligibility ("node-1: it is not
    /// Ready") or the new holder's own message ("took over from node-1: node-1 stopped
    /// answering heartbeats").
    pub why: String,
    /// Metric label of the reason.
    pub reason: &'static str,
    /// The Services served.
    pub services: Vec<ServiceKey>,
    /// Learnt from the new holder's report only (this provider never saw the old holder,
    /// e.g. the takeover happened while no provider ran): an earlier provider may have
    /// reported it already.
    pub adopted: bool,
}

/// The node an announcer says it took an address over from: its takeover sentence starts
/// with `took over from <node>:` (announcer `failover::election`).
fn took_over_from(message: &str) -> Option<NodeName> {
    let rest = message.strip_prefix("took over from ")?;
    let (node, _) = rest.split_once(':')?;
    (!node.is_empty()).then(|| NodeName::from(node))
}

impl Planner {
    /// Follows the holder of a single-owner address from the reports: a node reporting
    /// Active other than the last holder is a move (a holder that is still Active stays the
    /// holder, so two nodes Active for a moment move nothing). An address nobody may announce
    /// any more is a move to no node.
    pub(super) fn follow_holder(
        &mut self,
        address: IpAddr,
        eligible: &BTreeMap<NodeName, Result<(), Ineligible>>,
    ) -> Option<Move> {
        let entry = self.addresses.get(&address)?;
        let Some(placement) = entry.placement.as_ref().filter(|p| p.mode.single_owner()) else {
            self.take_holder(address);
            return None;
        };
        if placement.nobody.is_some() {
            let from = self.take_holder(address)?;
            return self.moved(address, from, None, String::new(), eligible);
        }
        let mode = placement.mode;
        let active = |node: &NodeName| match self.reports.get(node)?.get(&(address, mode))? {
            Phase::Active(message) => Some(message.clone()),
            _ => None,
        };
        let previous = entry.holder.clone();
        if previous.as_ref().is_some_and(|p| active(p).is_some()) {
            return None;
        }
        let (to, message) = placement
            .nodes()
            .iter()
            .find_map(|n| active(n).map(|m| (n.clone(), m)))?;
        if let Some(entry) = self.addresses.get_mut(&address) {
            entry.holder = Some(to.clone());
        }
        match previous {
            Some(previous) => self.moved(address, previous, Some(to), message, eligible),
            // A fresh provider: the announcers may have moved the address while none ran.
            None => {
                let from = took_over_from(&message).filter(|from| *from != to)?;
                let mut moved = self.moved(address, from, Some(to), message, eligible)?;
                moved.adopted = true;
                Some(moved)
            }
        }
    }

    /// Forgets the holder of `address`, returning it.
    fn take_holder(&mut self, address: IpAddr) -> Option<NodeName> {
        self.addresses.get_mut(&address)?.holder.take()
    }

    /// The move of `address` from `from` to `to`, with why: `from`'s ineligibility when the
    /// planner sees one, else the new holder's own `message` (an announcer-side takeover).
    fn moved(
        &self,
        address: IpAddr,
        from: NodeName,
        to: Option<NodeName>,
        message: String,
        eligible: &BTreeMap<NodeName, Result<(), Ineligible>>,
    ) -> Option<Move> {
        let services = self.services_at(address);
        if services.is_empty() {
            return None;
        }
        // With externalTrafficPolicy: Local a node must hold a ready endpoint of every such
        // Service on the address.
        let lost_endpoints = services.iter().any(|key| {
            self.targets.get(key).is_some_and(|t| t.local_traffic)
                && !self.endpoints.get(key).is_some_and(|n| n.contains(&from))
        });
        let candidates = self
            .placement(&address)
            .map(|p| p.candidates())
            .unwrap_or_else(|| Arc::from(Vec::new()));
        let (why, reason) = match eligible.get(&from) {
            Some(Err(e)) => (format!("{from}: {e}"), e.metric_label()),
            None => (
                format!("{from}: {}", Ineligible::NoAnnouncer),
                "announcer_missing",
            ),
            Some(Ok(())) if lost_endpoints => (
                format!(
                    "{from}: it holds no ready endpoint of the Service (externalTrafficPolicy: Local)"
                ),
                "no_ready_endpoints",
            ),
            Some(Ok(())) => match &to {
                None => (
                    format!("{from}: no node may announce it"),
                    "no_eligible_node",
                ),
                Some(to) if !self.failover => {
                    (format!("{to} ranks first for it now"), "rebalanced")
                }
                Some(_) if !candidates.contains(&from) => (
                    format!(
                        "{from} is no longer among its failover candidates ({})",
                        candidates.join(", ")
                    ),
                    "rebalanced",
                ),
                Some(to) if message.is_empty() => (format!("{to} took over"), "heartbeat"),
                Some(_) => (message, "heartbeat"),
            },
        };
        Some(Move {
            address,
            from,
            to,
            why,
            reason,
            services,
            adopted: false,
        })
    }
}
