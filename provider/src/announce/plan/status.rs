//! What a Service's `ferrolb.io/Announced` condition says, from the placement of its addresses
//! and what their announcers report (Active, Standby, Pending, Failed).

use std::net::IpAddr;

use super::Planner;
use crate::{
    announce::model::{Mode, NodeName, Phase},
    ipam::ServiceKey,
};

/// What a Service's `ferrolb.io/Announced` condition and ingress should say. The index keeps
/// one per Service, so its lists are boxed slices (a `Vec` grown by `push` reserves room for
/// four entries where one is the rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Every address is in force.
    Announced {
        /// The mode.
        mode: Mode,
        /// Each address and the nodes announcing it.
        by: Box<[(IpAddr, Box<[NodeName]>)]>,
    },
    /// Sent, not yet confirmed by the announcers.
    Pending {
        /// Addresses already in force.
        active: Box<[IpAddr]>,
        /// What we wait for.
        message: Box<str>,
    },
    /// Not announced (or only partly): a typed reason and a sentence.
    NotAnnounced {
        /// Addresses in force anyway (partial).
        active: Box<[IpAddr]>,
        /// `NoEligibleNode`, `NoReadyEndpoints`, `AnnouncerUnreachable`, `Refused`,
        /// `Conflict` or `InvalidMode`.
        reason: &'static str,
        /// Names the address, the nodes and what to fix.
        message: Box<str>,
    },
}

impl ServiceStatus {
    /// The addresses to publish in `status.loadBalancer.ingress`.
    pub fn active(&self) -> Vec<IpAddr> {
        match self {
            ServiceStatus::Announced { by, .. } => by.iter().map(|(a, _)| *a).collect(),
            ServiceStatus::Pending { active, .. } | ServiceStatus::NotAnnounced { active, .. } => {
                active.to_vec()
            }
        }
    }
}

impl Planner {
    /// The status of one Service from placements and reports; `None` when it has no target.
    pub(super) fn status(&self, key: &ServiceKey) -> Option<ServiceStatus> {
        let target = self.targets.get(key)?;
        let mode = match &target.mode {
            Ok(mode) => *mode,
            Err(problem) => {
                return Some(ServiceStatus::NotAnnounced {
                    active: Box::default(),
                    reason: "InvalidMode",
                    message: problem.as_str().into(),
                });
            }
        };
        let mut by = Vec::new();
        let mut active = Vec::new();
        let mut problem: Option<(&'static str, String)> = None;
        let mut waiting: Vec<String> = Vec::new();
        for address in &target.addresses {
            let Some(placement) = self.placement(address) else {
                waiting.push(format!("{address}: not placed yet"));
                continue;
            };
            if placement.mode != mode {
                problem.get_or_insert((
                    "Conflict",
                    format!(
                        "{address} is shared with {} in mode {}; this Service asks for mode {mode}",
                        placement.services, placement.mode
                    ),
                ));
                continue;
            }
            if let Some((reason, message)) = placement.nobody.as_deref() {
                problem.get_or_insert((reason, message.clone()));
                continue;
            }
            let mut in_force = Vec::new();
            let mut refused = None;
            let mut standing_by = Vec::new();
            let mut seen_holder = None;
            let mut not_yet = Vec::new();
            for node in placement.nodes() {
                match self
                    .reports
                    .get(node)
                    .and_then(|r| r.get(&(*address, mode)))
                {
                    Some(Phase::Active(_)) => in_force.push(node.clone()),
                    Some(Phase::Standby { holder }) => {
                        standing_by.push(node.as_ref());
                        seen_holder = seen_holder.or(holder.as_ref());
                    }
                    Some(Phase::Failed(message)) => {
                        refused.get_or_insert(format!("{node} refused {address}: {message}"));
                    }
                    Some(Phase::Pending(message)) => {
                        not_yet.push(format!("{node} has {address} pending: {message}"))
                    }
                    None => not_yet.push(format!("waiting for {node} to announce {address}")),
                }
            }
            if !in_force.is_empty() {
                active.push(*address);
                by.push((*address, in_force.into_boxed_slice()));
            } else if let Some(message) = refused {
                problem.get_or_insert(("Refused", message));
            } else if !standing_by.is_empty() {
                let seen = match seen_holder {
                    Some(holder) => format!(" (they see {holder} answering)"),
                    None => String::new(),
                };
                let verb = if standing_by.len() == 1 {
                    "stands"
                } else {
                    "stand"
                };
                waiting.push(format!(
                    "{address}: {} {verb} by{seen}; waiting for one to take over",
                    standing_by.join(", ")
                ));
                waiting.extend(not_yet);
            } else {
                waiting.extend(not_yet);
            }
        }
        Some(if let Some((reason, message)) = problem {
            ServiceStatus::NotAnnounced {
                active: active.into_boxed_slice(),
                reason,
                message: message.into_boxed_str(),
            }
        } else if by.len() == target.addresses.len() && !by.is_empty() {
            ServiceStatus::Announced {
                mode,
                by: by.into_boxed_slice(),
            }
        } else {
            ServiceStatus::Pending {
                active: active.into_boxed_slice(),
                message: waiting.join("; ").into_boxed_str(),
            }
        })
    }
}
