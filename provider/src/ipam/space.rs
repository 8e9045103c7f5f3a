//! The cluster-wide in-use set and each pool's free space.
//!
//! ```text
//!   in_use: address -> holders            (one entry per held address, all pools)
//!   free:   pool -> family -> RangeSet    (free intervals of that pool, never expanded)
//! ```
//! Taking an address removes it from the free space of *every* pool that contains it, so
//! overlapping namespace pools can never hand it out twice. Avoided `.0`/`.255` addresses are
//! dropped from a pool's free space lazily, when a search reaches them, which keeps a fresh /8
//! at one interval instead of 65,536.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::family::IpFamily;
use super::ranges::{RangeSet, from_number, is_buggy, to_number};
use super::request::{OneOrMore, ServiceKey};
use crate::pools::{Pool, PoolSet, SearchOrder};

/// Free space of one pool, by family.
#[derive(Clone, Debug, Default)]
struct FreeSpace {
    v4: RangeSet,
    v6: RangeSet,
}

impl FreeSpace {
    fn family(&mut self, family: IpFamily) -> &mut RangeSet {
        match family {
            IpFamily::V4 => &mut self.v4,
            IpFamily::V6 => &mut self.v6,
        }
    }
}

/// In-use set plus free space; see the module doc.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressSpace {
    in_use: BTreeMap<IpAddr, OneOrMore<ServiceKey>>,
    free: BTreeMap<String, FreeSpace>,
}

impl AddressSpace {
    /// Recomputes every pool's free space from its ranges minus the in-use set. Called when the
    /// pools change; costs O(ranges + held addresses in them).
    pub(crate) fn rebuild(&mut self, pools: &PoolSet) {
        self.free.clear();
        for pool in pools.pools() {
            let space = self.free.entry(pool.name.clone()).or_default();
            for range in &pool.ranges {
                let (start, end) = range.numbers();
                let set = space.family(range.family());
                set.insert_range(start, end);
                for address in self
                    .in_use
                    .range(range.start()..=range.end())
                    .map(|(a, _)| a)
                {
                    set.remove(to_number(*address).1);
                }
            }
        }
    }

    /// The Services holding `address` (empty when it is free).
    pub(crate) fn holders(&self, address: IpAddr) -> &[ServiceKey] {
        self.in_use
            .get(&address)
            .map_or(&[], |holders| holders.as_slice())
    }

    /// Held addresses in `first..=last`, ascending.
    pub(crate) fn held_between(
        &self,
        first: IpAddr,
        last: IpAddr,
    ) -> impl DoubleEndedIterator<Item = (&IpAddr, &OneOrMore<ServiceKey>)> {
        self.in_use.range(first..=last)
    }

    /// Adds `key` as a holder of `address`.
    pub(crate) fn take(&mut self, address: IpAddr, key: &ServiceKey) {
        let holders = self.in_use.entry(address).or_default();
        if holders.is_empty() {
            let (family, number) = to_number(address);
            for space in self.free.values_mut() {
                space.family(family).remove(number);
            }
        }
        if !holders.contains(key) {
            holders.push(key.clone());
            holders.sort();
        }
    }

    /// Removes `key` as a holder of `address`; a now unheld address goes back to the free space
    /// of every pool that may pick it. Returns the remaining holders.
    pub(crate) fn give_back(
        &mut self,
        pools: &PoolSet,
        address: IpAddr,
        key: &ServiceKey,
    ) -> Vec<ServiceKey> {
        let Some(holders) = self.in_use.get_mut(&address) else {
            return Vec::new();
        };
        holders.retain(|h| h != key);
        if !holders.is_empty() {
            return holders.to_vec();
        }
        self.in_use.remove(&address);
        let (family, number) = to_number(address);
        for pool in pools.pools().filter(|p| p.can_pick(address)) {
            self.free
                .entry(pool.name.clone())
                .or_default()
                .family(family)
                .insert(number);
        }
        Vec::new()
    }

    /// The free address the pool hands out next for `family` (lowest, or highest with
    /// descending order), without taking it. Avoided addresses met on the way are dropped from
    /// the pool's free space for good (they are never handed out by search).
    pub(crate) fn next_free(&mut self, pool: &Pool, family: IpFamily) -> Option<IpAddr> {
        let set = self.free.get_mut(&pool.name)?.family(family);
        loop {
            let candidate = match pool.search_order {
                SearchOrder::Ascending => set.first()?,
                SearchOrder::Descending => set.last()?,
            };
            if pool.avoid_buggy_ips && is_buggy(family, candidate) {
                set.remove(candidate);
                continue;
            }
            return Some(from_number(family, candidate));
        }
    }

    /// Every held address with its holders.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&IpAddr, &OneOrMore<ServiceKey>)> {
        self.in_use.iter()
    }
}
