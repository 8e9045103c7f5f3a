//! Adoption: loading the addresses Services already hold, before anything new is allocated.
//!
//! After a restart the controller must neither move nor duplicate an address. It hands every
//! Service's current addresses to [`Allocator::adopt`] first. Services are taken oldest first
//! (creationTimestamp, then uid/name), so when two hold the same address and may not share it,
//! the older keeps it and the younger is reported as an [`AdoptionConflict`]. Addresses that lie
//! outside every pool are still adopted (kept, and listed by `outside_pools`).

use std::net::IpAddr;

use super::allocator::Allocator;
use super::request::{ServiceKey, ServiceRequest};
use super::sharing::{Joiner, can_join};

/// A Service's existing addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adoption {
    /// The Service's current request (for idempotency of later `allocate` calls).
    pub request: ServiceRequest,
    /// The addresses it holds now (from its `kube-vip.io/loadbalancerIPs` annotation).
    pub addresses: Vec<IpAddr>,
    /// (creation unix seconds, uid or name): smaller is older and wins.
    pub order: (i64, String),
    /// The addresses are what the Service explicitly asks for (its annotation or
    /// `spec.loadBalancerIP`), as every Service kube-vip-cloud-provider left behind does.
    /// kube-vip-cloud-provider never checked those, so they are kept as they are: a
    /// conflict with another Service does not take them away (it is reported with
    /// `kept: true`), and they are not checked again while the request stays the same.
    pub as_requested: bool,
}

/// An address a Service held that went to an older Service instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdoptionConflict {
    /// The Service that lost the address.
    pub key: ServiceKey,
    /// The contested address.
    pub address: IpAddr,
    /// The older Service that keeps it.
    pub held_by: ServiceKey,
    /// Both keep it: the address was the younger Service's explicit request (see
    /// [`Adoption::as_requested`]).
    pub kept: bool,
}

impl Allocator {
    /// Load addresses Services already hold, before any allocation (restart safety). Each
    /// adoption carries the Service's creationTimestamp as an ordering key (older wins when two
    /// Services hold the same unshareable address); the losers are returned, with a reason.
    pub fn adopt(&mut self, mut existing: Vec<Adoption>) -> Vec<AdoptionConflict> {
        existing.sort_by(|a, b| {
            a.order
                .cmp(&b.order)
                .then_with(|| a.request.key.cmp(&b.request.key))
        });
        let mut conflicts = Vec::new();
        for adoption in existing {
            let key = adoption.request.key.clone();
            self.release(&key);
            let pool_name = self
                .home_pool(&adoption.request, &adoption.addresses)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let shareable =
                self.pools.allow_share_for(&key.namespace) && !adoption.request.ports.is_empty();
            let mut kept = Vec::new();
            for address in adoption.addresses {
                if kept.contains(&address) {
                    continue;
                }
                // `0.0.0.0` marks a DHCP Service: nothing to reserve.
                if address.is_unspecified() {
                    kept.push(address);
                    continue;
                }
                let holders = self.space.holders(address);
                let joiner = Joiner {
                    key: &key,
                    pool: &pool_name,
                    shareable,
                    ports: &adoption.request.ports,
                    sharing: adoption.request.sharing.as_deref(),
                };
                match can_join(holders, &self.held, &joiner) {
                    Ok(()) => {
                        self.space.take(address, &key);
                        kept.push(address);
                    }
                    Err(refused) => {
                        if adoption.as_requested {
                            self.space.take(address, &key);
                            kept.push(address);
                        }
                        conflicts.push(AdoptionConflict {
                            key: key.clone(),
                            address,
                            held_by: refused.holder,
                            kept: adoption.as_requested,
                        });
                    }
                }
            }
            if !kept.is_empty() {
                self.record(&adoption.request, &pool_name, kept, shareable);
                if let Some(held) = self.held.get_mut(&key) {
                    held.as_requested = adoption.as_requested;
                }
            }
        }
        conflicts
    }
}
