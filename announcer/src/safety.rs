//! Safety rules: which addresses this node may announce at all.
//!
//! An announcer that answers for an address someone else uses breaks the network (kube-vip
//! #836, #1016: nodes announcing other nodes' IPs). So an announcement is refused when the
//! address belongs to an interface of this node, lies in `--deny-prefixes`, or lies outside
//! `--allow-prefixes` when that list is given.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::interfaces::Interface;

/// The configured prefix lists.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub deny: Vec<IpNet>,
    pub allow: Vec<IpNet>,
}

/// Why an address may not be announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{address} is an address of this node (interface {interface})")]
    OwnAddress { address: IpAddr, interface: String },
    #[error("{address} lies in --deny-prefixes entry {prefix}")]
    Denied { address: IpAddr, prefix: IpNet },
    #[error("{address} lies outside --allow-prefixes ({allowed})")]
    NotAllowed { address: IpAddr, allowed: String },
}

impl Policy {
    /// Checks the prefix lists only (static configuration).
    pub fn check_prefixes(&self, address: IpAddr) -> Result<(), Refusal> {
        if let Some(prefix) = self.deny.iter().find(|p| p.contains(&address)) {
            return Err(Refusal::Denied {
                address,
                prefix: *prefix,
            });
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.contains(&address)) {
            let allowed = self
                .allow
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Refusal::NotAllowed { address, allowed });
        }
        Ok(())
    }

    /// Checks the prefix lists and that no interface holds `address`, except as a VIP this
    /// announcer put there itself (`is_ours`).
    pub fn check(
        &self,
        address: IpAddr,
        interfaces: &[Interface],
        is_ours: impl Fn(IpAddr) -> bool,
    ) -> Result<(), Refusal> {
        self.check_prefixes(address)?;
        if is_ours(address) {
            return Ok(());
        }
        if let Some(owner) = crate::interfaces::owner_of(address, interfaces) {
            return Err(Refusal::OwnAddress {
                address,
                interface: owner.name.clone(),
            });
        }
        Ok(())
    }
}
