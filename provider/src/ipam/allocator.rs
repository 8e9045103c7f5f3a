//! The allocator: turns a [`ServiceRequest`] into an [`Allocation`] from its namespace's pool.
//!
//! ```text
//!  ServiceRequest ─► requested only 0.0.0.0, or unchecked requests? ─ yes ─► take as written
//!                          │ no
//!                          ▼
//!                 PoolSet::candidates ─► requested? ─ yes ─► the candidate holding them:
//!                  (named pool, namespace                      validate, reserve (or join)
//!                   pool, or selecting                │ no
//!                   objects by priority,              ▼
//!                   then global)           per candidate pool, until one succeeds:
//!                          per family slot (family policy, ipFamilies order):
//!                          DHCP family ─► 0.0.0.0; else previous address ─► shareable
//!                          address (allow-share or sharing key) ─► next free address
//! ```
//! Disabled and conflicting candidates give nothing new; when every candidate is closed or
//! full, the error says why, naming the first.
//! A Service adopted as kube-vip-cloud-provider left it (`Held::as_requested`) keeps its
//! addresses unchecked for as long as it asks for the same ones.
//! All state lives in one [`AddressSpace`] (cluster-wide in-use set and per-pool free space)
//! and the map of what each Service holds; nothing here does I/O or reads a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::errors::AllocationError;
use super::family::{FamilyPolicy, IpFamily, family_order};
use super::request::{
    Allocation, OneOrMore, ServiceKey, ServiceRequest, parse_requested, requested_addresses,
};
use super::sharing::{JoinRefused, Joiner, Protocol, ShareInfo, SharingKey, can_join};
use super::space::AddressSpace;
use crate::pools::{Closed, Pool, PoolSet, SearchOrder, Unmatched};

/// What the allocator keeps per Service.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) allocation: Allocation,
    /// The request it was made for (idempotency check).
    pub(crate) request: ServiceRequest,
    /// Others may join its addresses.
    pub(crate) shareable: bool,
    /// Adopted as the Service asked for it (kube-vip-cloud-provider's rules): while its
    /// requested addresses stay the same, it keeps them without being checked again.
    pub(crate) as_requested: bool,
}

impl ShareInfo for Held {
    fn pool(&self) -> &str {
        &self.allocation.pool
    }
    fn shareable(&self) -> bool {
        self.shareable
    }
    fn ports(&self) -> &[(Protocol, u16)] {
        &self.request.ports
    }
    fn sharing(&self) -> Option<&SharingKey> {
        self.request.sharing.as_deref()
    }
}

/// Size and use of one family of one pool, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Pool name.
    pub pool: String,
    /// Family.
    pub family: IpFamily,
    /// Addresses the allocator can hand out (avoided `.0`/`.255` not counted).
    pub size: u128,
    /// Of those, how many are held (by any Service, from any pool).
    pub used: u128,
    /// size - used.
    pub free: u128,
}

/// The address allocator. See the module doc.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    /// Shared so an allocation can read its pool while it updates the space (no clone).
    pub(crate) pools: Arc<PoolSet>,
    pub(crate) space: AddressSpace,
    /// Boxed: a `BTreeMap` node holds 11 values, and 300-byte records inline left about a
    /// third of every node empty.
    pub(crate) held: BTreeMap<ServiceKey, Box<Held>>,
    /// Requested addresses are taken as written, like kube-vip-cloud-provider does: no pool,
    /// family or conflict check (`--requested-addresses=unchecked`).
    pub(crate) requests_unchecked: bool,
    /// Every pool name an allocation has named, so 10,000 allocations from one pool share
    /// one string (a few pools; names of pools since removed are few and small).
    pub(crate) pool_names: BTreeSet<Arc<str>>,
}

impl Allocator {
    /// An allocator with no allocations.
    pub fn new(pools: PoolSet) -> Self {
        let mut allocator = Allocator {
            pools: Arc::new(pools),
            ..Allocator::default()
        };
        allocator.space.rebuild(&allocator.pools);
        allocator
    }

    /// Take requested addresses as written, without checks (kube-vip-cloud-provider's way).
    pub fn set_requests_unchecked(&mut self, unchecked: bool) {
        self.requests_unchecked = unchecked;
    }

    /// The current pools.
    pub fn pools(&self) -> &PoolSet {
        &self.pools
    }

    /// Replace the pools (ConfigMap changed). Existing allocations are kept, even when they no
    /// longer lie in any pool; `outside_pools()` lists those.
    pub fn set_pools(&mut self, pools: PoolSet) {
        self.pools = Arc::new(pools);
        self.space.rebuild(&self.pools);
    }

    /// Idempotent: if the Service already holds an allocation that still satisfies `req`
    /// (same requested addresses, families, policy, sharing still valid), returns it unchanged.
    /// If the request changed, the new allocation replaces the old one, keeping the old
    /// addresses where they still fit; if the new request fails, the old allocation is
    /// released and the error is returned (a Service whose request cannot be met should not
    /// keep announcing an address it no longer asks for).
    pub fn allocate(&mut self, req: &ServiceRequest) -> Result<Allocation, AllocationError> {
        // Adopted as kube-vip-cloud-provider left it: kept while the request stands.
        let may_share = self.pools.allow_share_for(&req.key.namespace) && !req.ports.is_empty();
        if let Some(held) = self.held.get_mut(&req.key)
            && held.as_requested
            && held.request.requested == req.requested
        {
            held.request = req.clone();
            held.shareable = may_share;
            return Ok(held.allocation.clone());
        }
        if let Some(held) = self.held.get(&req.key) {
            if held.request == *req {
                return Ok(held.allocation.clone());
            }
            if self.only_ports_changed_and_still_fit(held, req)
                && let Some(held) = self.held.get_mut(&req.key)
            {
                held.request.ports = req.ports.clone();
                held.shareable = may_share;
                return Ok(held.allocation.clone());
            }
        }
        let previous = self.release(&req.key);
        self.allocate_fresh(req, &previous)
    }

    fn only_ports_changed_and_still_fit(&self, held: &Held, req: &ServiceRequest) -> bool {
        let same_rest = ServiceRequest {
            ports: req.ports.clone(),
            ..held.request.clone()
        } == *req;
        if !same_rest || (held.allocation.shared && req.ports.is_empty()) {
            return false;
        }
        held.allocation.addresses.iter().all(|&address| {
            self.space
                .holders(address)
                .iter()
                .filter(|h| **h != req.key)
                .all(|other| {
                    self.held.get(other).is_some_and(|o| {
                        !super::sharing::ports_overlap(&o.request.ports, &req.ports)
                    })
                })
        })
    }

    fn allocate_fresh(
        &mut self,
        req: &ServiceRequest,
        previous: &[IpAddr],
    ) -> Result<Allocation, AllocationError> {
        let pools = Arc::clone(&self.pools);
        let candidates = pools.candidates(&req.key, &req.query);
        let first_name = candidates
            .as_ref()
            .ok()
            .and_then(|c| c.first())
            .map_or("", |p| p.name.as_str());
        let shareable = pools.allow_share_for(&req.key.namespace) && !req.ports.is_empty();
        let requested = parse_requested(req, first_name)?;
        // `0.0.0.0` asks kube-vip for a DHCP lease: valid in any namespace, pool or family.
        let only_dhcp = !requested.is_empty() && requested.iter().all(IpAddr::is_unspecified);
        if only_dhcp || (self.requests_unchecked && !requested.is_empty()) {
            let pool_name = first_name.to_owned();
            for &address in requested.iter().filter(|a| !a.is_unspecified()) {
                self.space.take(address, &req.key);
            }
            return Ok(self.record(req, &pool_name, requested, shareable));
        }
        let candidates = candidates.map_err(|unmatched| unmatched_error(req, unmatched))?;
        if !requested.is_empty() {
            // The first candidate holding every requested address serves the request.
            let specific: Vec<&IpAddr> = requested.iter().filter(|a| !a.is_unspecified()).collect();
            let holding = candidates
                .iter()
                .copied()
                .find(|p| specific.iter().all(|&&a| p.contains(a)));
            let pool = match (holding, candidates.as_slice()) {
                (Some(pool), _) => pool,
                // One candidate: its own validation names the address and the pool.
                (None, [only]) => only,
                (None, all) => {
                    let address = specific
                        .iter()
                        .find(|&&&a| !all.iter().any(|p| p.contains(a)))
                        .map_or(specific[0], |a| *a);
                    return Err(AllocationError::NotInAnyPool {
                        service: req.key.clone(),
                        pools: all.iter().map(|p| p.name.clone()).collect(),
                        address: *address,
                    });
                }
            };
            if let Some(closed) = pool
                .closed()
                .filter(|_| specific.iter().all(|&&a| pool.contains(a)))
            {
                return Err(closed_error(req, pool, closed));
            }
            let requested = requested_addresses(req, pool)?;
            let addresses = self.reserve_requested(req, pool, shareable, &requested)?;
            return Ok(self.record(req, &pool.name, addresses, shareable));
        }
        // The pool holding the previous addresses first, so a changed request keeps them.
        let mut order = candidates.clone();
        if let Some(at) = order.iter().position(|p| {
            previous
                .iter()
                .any(|&a| !a.is_unspecified() && p.contains(a))
        }) {
            let home = order.remove(at);
            order.insert(0, home);
        }
        let mut first_error = None;
        for pool in order {
            if let Some(closed) = pool.closed() {
                first_error.get_or_insert(closed_error(req, pool, closed));
                continue;
            }
            match self.pick_by_policy(req, pool, shareable, previous) {
                Ok(addresses) => return Ok(self.record(req, &pool.name, addresses, shareable)),
                Err(error) => {
                    // A full or single-family pool lets the next candidate try; a closed
                    // one found earlier is the less useful thing to report.
                    if first_error
                        .as_ref()
                        .is_none_or(|e: &AllocationError| e.is_closed_pool())
                    {
                        first_error = Some(error);
                    }
                }
            }
        }
        Err(first_error.unwrap_or_else(|| unmatched_error(req, Unmatched::NoPool)))
    }

    /// The pool a Service's existing `addresses` belong to: the first of its candidates that
    /// holds one of them, else its first candidate.
    pub(crate) fn home_pool(&self, req: &ServiceRequest, addresses: &[IpAddr]) -> Option<&Pool> {
        let candidates = self.pools.candidates(&req.key, &req.query).ok()?;
        candidates
            .iter()
            .copied()
            .find(|p| {
                addresses
                    .iter()
                    .any(|&a| !a.is_unspecified() && p.contains(a))
            })
            .or_else(|| candidates.first().copied())
    }

    /// Requested addresses: all of them or none.
    fn reserve_requested(
        &mut self,
        req: &ServiceRequest,
        pool: &Pool,
        shareable: bool,
        requested: &[IpAddr],
    ) -> Result<Vec<IpAddr>, AllocationError> {
        for &address in requested.iter().filter(|a| !a.is_unspecified()) {
            let holders = self.space.holders(address);
            if let Err(JoinRefused {
                holder,
                ports_clash,
            }) = can_join(holders, &self.held, &joiner(req, pool, shareable))
            {
                return Err(AllocationError::AlreadyAllocated {
                    service: req.key.clone(),
                    pool: pool.name.clone(),
                    address,
                    holder,
                    shareable: ports_clash,
                });
            }
        }
        for &address in requested.iter().filter(|a| !a.is_unspecified()) {
            self.space.take(address, &req.key);
        }
        Ok(requested.to_vec())
    }

    /// No requested address: one per family slot of the policy, in output order.
    fn pick_by_policy(
        &mut self,
        req: &ServiceRequest,
        pool: &Pool,
        shareable: bool,
        previous: &[IpAddr],
    ) -> Result<Vec<IpAddr>, AllocationError> {
        let required = req.family_policy != FamilyPolicy::PreferDualStack;
        let order = family_order(req.family_policy, &req.families, |f| pool.has_family(f));
        let mut picked = Vec::new();
        let mut first_error = None;
        for family in order {
            let failure = if pool.is_dhcp(family) {
                // kube-vip leases the address; nothing to reserve.
                picked.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                None
            } else if !pool.has_family(family) {
                Some(AllocationError::FamilyUnavailable {
                    service: req.key.clone(),
                    pool: pool.name.clone(),
                    family,
                })
            } else if let Some(address) = self.pick_one(req, pool, shareable, family, previous) {
                self.space.take(address, &req.key);
                picked.push(address);
                None
            } else {
                Some(AllocationError::OutOfAddresses {
                    service: req.key.clone(),
                    pool: pool.name.clone(),
                    family,
                })
            };
            if let Some(error) = failure {
                if required {
                    for &address in &picked {
                        self.space.give_back(&self.pools, address, &req.key);
                    }
                    return Err(error);
                }
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) if picked.is_empty() => Err(error),
            _ => Ok(picked),
        }
    }

    /// One address of `family`: the Service's previous one if it still fits, else an address
    /// it may share, else the next free one.
    fn pick_one(
        &mut self,
        req: &ServiceRequest,
        pool: &Pool,
        shareable: bool,
        family: IpFamily,
        previous: &[IpAddr],
    ) -> Option<IpAddr> {
        let fits = |allocator: &Self, address: IpAddr| {
            let holders = allocator.space.holders(address);
            can_join(holders, &allocator.held, &joiner(req, pool, shareable)).is_ok()
                && (!holders.is_empty() || pool.can_pick(address))
        };
        if let Some(&address) = previous
            .iter()
            .find(|&&a| IpFamily::of(&a) == family && pool.contains(a) && fits(self, a))
        {
            return Some(address);
        }
        if joiner(req, pool, shareable).wants_to_share()
            && let Some(address) = self.shareable_address(req, pool, shareable, family)
        {
            return Some(address);
        }
        self.space.next_free(pool, family)
    }

    /// The first held address of the pool (in search order) that `req` may join. This walks
    /// the held addresses of the pool, so it costs O(held in pool); only sharing pools pay it.
    fn shareable_address(
        &self,
        req: &ServiceRequest,
        pool: &Pool,
        shareable: bool,
        family: IpFamily,
    ) -> Option<IpAddr> {
        let joinable = |(address, holders): (&IpAddr, &OneOrMore<ServiceKey>)| {
            can_join(holders, &self.held, &joiner(req, pool, shareable))
                .is_ok()
                .then_some(*address)
        };
        let ranges = pool.ranges_of(family);
        match pool.search_order {
            SearchOrder::Ascending => ranges
                .flat_map(|r| self.space.held_between(r.start(), r.end()))
                .find_map(joinable),
            SearchOrder::Descending => ranges
                .rev()
                .flat_map(|r| self.space.held_between(r.start(), r.end()).rev())
                .find_map(joinable),
        }
    }

    /// The shared copy of a pool's name.
    fn pool_name(&mut self, pool: &str) -> Arc<str> {
        if let Some(name) = self.pool_names.get(pool) {
            return name.clone();
        }
        let name: Arc<str> = pool.into();
        self.pool_names.insert(name.clone());
        name
    }

    /// Stores the allocation and updates the `shared` flag of everyone involved.
    pub(crate) fn record(
        &mut self,
        req: &ServiceRequest,
        pool: &str,
        addresses: Vec<IpAddr>,
        shareable: bool,
    ) -> Allocation {
        let mut shared = false;
        for &address in &addresses {
            if self.space.holders(address).len() > 1 {
                let holders = self.space.holders(address).to_vec();
                shared = true;
                for other in holders.iter().filter(|h| **h != req.key) {
                    if let Some(o) = self.held.get_mut(other) {
                        o.allocation.shared = true;
                    }
                }
            }
        }
        let allocation = Allocation {
            key: req.key.clone(),
            addresses,
            pool: self.pool_name(pool),
            shared,
        };
        self.held.insert(
            req.key.clone(),
            Box::new(Held {
                allocation: allocation.clone(),
                request: req.clone(),
                shareable,
                as_requested: false,
            }),
        );
        allocation
    }

    /// Release everything the Service holds; returns the released addresses.
    pub fn release(&mut self, key: &ServiceKey) -> Vec<IpAddr> {
        let Some(held) = self.held.remove(key) else {
            return Vec::new();
        };
        // `0.0.0.0` (DHCP) was never taken; giving it back is a no-op.
        for &address in &held.allocation.addresses {
            let remaining = self.space.give_back(&self.pools, address, key);
            if let [last] = remaining.as_slice() {
                self.refresh_shared(&last.clone());
            }
        }
        held.allocation.addresses
    }

    fn refresh_shared(&mut self, key: &ServiceKey) {
        let Some(held) = self.held.get(key) else {
            return;
        };
        let shared = held
            .allocation
            .addresses
            .iter()
            .any(|&a| self.space.holders(a).len() > 1);
        if let Some(held) = self.held.get_mut(key) {
            held.allocation.shared = shared;
        }
    }

    /// The Service's current allocation.
    pub fn allocation(&self, key: &ServiceKey) -> Option<&Allocation> {
        self.held.get(key).map(|h| &h.allocation)
    }

    /// Every allocation, by Service.
    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.held.values().map(|h| &h.allocation)
    }

    /// Services holding an address that lies in none of the pools that may serve them.
    pub fn outside_pools(&self) -> Vec<ServiceKey> {
        self.outside(self.held.iter().map(|(k, h)| (k, &**h)))
    }

    /// [`Allocator::outside_pools`] among `keys` only.
    pub fn outside_pools_among(
        &self,
        keys: &std::collections::BTreeSet<ServiceKey>,
    ) -> std::collections::BTreeSet<ServiceKey> {
        self.outside(
            keys.iter()
                .filter_map(|k| self.held.get_key_value(k))
                .map(|(k, h)| (k, &**h)),
        )
        .into_iter()
        .collect()
    }

    fn outside<'a>(
        &'a self,
        held: impl Iterator<Item = (&'a ServiceKey, &'a Held)>,
    ) -> Vec<ServiceKey> {
        held.filter(|(key, held)| {
            let candidates = self
                .pools
                .candidates(key, &held.request.query)
                .unwrap_or_default();
            // `0.0.0.0` (a DHCP request) is valid anywhere; any other address belongs to
            // a pool containing it (never to a DHCP family).
            held.allocation.addresses.iter().any(|&address| {
                !address.is_unspecified()
                    && !candidates
                        .iter()
                        .any(|pool| !pool.is_dhcp(IpFamily::of(&address)) && pool.contains(address))
            })
        })
        .map(|(key, _)| key.clone())
        .collect()
    }

    /// The addresses held in `pool`'s ranges, with their holders, ascending.
    pub fn held_in(&self, pool: &Pool) -> Vec<(IpAddr, &[ServiceKey])> {
        pool.ranges
            .iter()
            .flat_map(|r| self.space.held_between(r.start(), r.end()))
            .map(|(address, holders)| (*address, holders.as_slice()))
            .collect()
    }

    /// Per pool and family: size, used, free — for metrics. Costs O(held addresses).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats = Vec::new();
        for pool in self.pools.pools() {
            for family in [IpFamily::V4, IpFamily::V6]
                .into_iter()
                .filter(|&f| pool.ranges_of(f).next().is_some())
            {
                let size = pool.size(family);
                let used = pool
                    .ranges_of(family)
                    .flat_map(|r| self.space.held_between(r.start(), r.end()))
                    .filter(|(address, _)| pool.can_pick(**address))
                    .count() as u128;
                stats.push(PoolStats {
                    pool: pool.name.clone(),
                    family,
                    size,
                    used,
                    free: size.saturating_sub(used),
                });
            }
        }
        stats
    }
}

/// The joiner `req` is when it allocates from `pool`.
fn joiner<'a>(req: &'a ServiceRequest, pool: &'a Pool, shareable: bool) -> Joiner<'a> {
    Joiner {
        key: &req.key,
        pool: &pool.name,
        shareable,
        ports: &req.ports,
        sharing: req.sharing.as_deref(),
    }
}

fn unmatched_error(req: &ServiceRequest, unmatched: Unmatched) -> AllocationError {
    let service = req.key.clone();
    match unmatched {
        Unmatched::NoPool => AllocationError::NoPool { service },
        Unmatched::NoSuchPool(named) => AllocationError::NoSuchPool {
            service,
            annotation: named.annotation,
            name: named.name,
        },
        Unmatched::NotSelected(pool) => AllocationError::NotSelected { service, pool },
    }
}

fn closed_error(req: &ServiceRequest, pool: &Pool, closed: Closed) -> AllocationError {
    let service = req.key.clone();
    let pool = pool.name.clone();
    match closed {
        Closed::Disabled => AllocationError::PoolDisabled { service, pool },
        Closed::Conflict(message) => AllocationError::PoolConflict {
            service,
            pool,
            message,
        },
    }
}
