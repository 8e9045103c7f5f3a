//! The typed pool model: what a parsed ConfigMap means.
//!
//! A [`PoolSet`] holds the global pool and one pool per namespace that has its own `cidr-<ns>`
//! or `range-<ns>` entries. A [`Pool`] keeps its addresses as merged, sorted [`AddrRange`]s
//! (never expanded), plus the settings that steer allocation from it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::ipam::IpFamily;
use crate::ipam::ranges::{buggy_between, from_number, to_number};

/// Name of the pool built from the `-global` keys.
pub const GLOBAL_POOL: &str = "global";

/// Which end of a pool the allocator takes free addresses from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SearchOrder {
    /// Lowest free address first (the default).
    #[default]
    Ascending,
    /// Highest free address first (`search-order: desc`).
    Descending,
}

/// An inclusive range of addresses of one family (`start <= end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange {
    start: IpAddr,
    end: IpAddr,
}

impl AddrRange {
    /// The range `start..=end`; None when the families differ or `end < start`.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        (IpFamily::of(&start) == IpFamily::of(&end) && start <= end)
            .then_some(AddrRange { start, end })
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address.
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// Family of both ends.
    pub fn family(&self) -> IpFamily {
        IpFamily::of(&self.start)
    }

    /// Whether `address` lies in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.start <= address && address <= self.end
    }

    /// Both ends as numbers of their family.
    pub(crate) fn numbers(&self) -> (u128, u128) {
        (to_number(self.start).1, to_number(self.end).1)
    }

    pub(crate) fn from_numbers(family: IpFamily, start: u128, end: u128) -> Self {
        AddrRange {
            start: from_number(family, start),
            end: from_number(family, end),
        }
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// One address pool: the global one or a namespace's.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// "global" or the namespace name; used in events and metrics.
    pub name: String,
    /// The pool's only IPv4 entry is `0.0.0.0/32`: every IPv4 address it gives is `0.0.0.0`
    /// (kube-vip leases one by DHCP). Its IPv6 ranges, if any, are allocated as usual.
    pub dhcp: bool,
    /// Which end free addresses are taken from.
    pub search_order: SearchOrder,
    /// Services may share an address when their (protocol, port) pairs do not overlap.
    pub allow_share: bool,
    /// From `interface-<ns>` / `interface-global`; carried for the announcer.
    pub interface: Option<String>,
    /// First and last address of each listed IPv4 CIDR (shorter than /31) were left out.
    pub skip_end_ips_in_cidr: bool,
    /// IPv4 addresses ending in `.0` or `.255` are never picked by the allocator.
    pub avoid_buggy_ips: bool,
    /// The usable addresses: sorted, merged, IPv4 before IPv6. Skip-end is already applied.
    pub ranges: Vec<AddrRange>,
}

impl Pool {
    /// An empty pool with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Pool {
            name: name.into(),
            dhcp: false,
            search_order: SearchOrder::Ascending,
            allow_share: false,
            interface: None,
            skip_end_ips_in_cidr: false,
            avoid_buggy_ips: true,
            ranges: Vec::new(),
        }
    }

    /// Whether `address` lies in one of the pool's ranges. O(log ranges).
    pub fn contains(&self, address: IpAddr) -> bool {
        let after = self.ranges.partition_point(|r| r.start <= address);
        after > 0 && self.ranges[after - 1].contains(address)
    }

    /// Whether the pool has any address of `family` (DHCP counts for IPv4).
    pub fn has_family(&self, family: IpFamily) -> bool {
        (self.dhcp && family == IpFamily::V4) || self.ranges.iter().any(|r| r.family() == family)
    }

    /// Whether `family` of this pool is DHCP (`0.0.0.0` for every Service).
    pub fn is_dhcp(&self, family: IpFamily) -> bool {
        self.dhcp && family == IpFamily::V4
    }

    /// The ranges of one family, ascending.
    pub fn ranges_of(&self, family: IpFamily) -> impl DoubleEndedIterator<Item = &AddrRange> {
        self.ranges.iter().filter(move |r| r.family() == family)
    }

    /// Whether the allocator may pick `address` on its own (it lies in the pool and is not an
    /// avoided `.0`/`.255` address).
    pub fn can_pick(&self, address: IpAddr) -> bool {
        let (family, number) = to_number(address);
        self.contains(address)
            && !(self.avoid_buggy_ips && crate::ipam::ranges::is_buggy(family, number))
    }

    /// How many addresses of `family` the allocator can hand out (avoided ones not counted).
    pub fn size(&self, family: IpFamily) -> u128 {
        self.ranges_of(family)
            .map(|r| {
                let (start, end) = r.numbers();
                // A full IPv6 range holds 2^128 addresses; saturate instead of overflowing.
                let all = (end - start).saturating_add(1);
                if self.avoid_buggy_ips && family == IpFamily::V4 {
                    all - buggy_between(start, end)
                } else {
                    all
                }
            })
            .fold(0u128, u128::saturating_add)
    }
}

/// All pools of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolSet {
    pub(crate) global: Option<Pool>,
    pub(crate) namespaces: BTreeMap<String, Pool>,
    /// `interface-<ns>` of namespaces that use the global pool.
    pub(crate) interfaces: BTreeMap<String, String>,
    /// `allow-share-<ns>` of namespaces that use the global pool.
    pub(crate) shares: BTreeMap<String, bool>,
}

impl PoolSet {
    /// The pool a Service in `namespace` allocates from: its own (`cidr-<ns>` ∪ `range-<ns>`)
    /// if it has any entry, else the global one. None = no pool for this namespace.
    pub fn pool_for_namespace(&self, namespace: &str) -> Option<&Pool> {
        self.namespaces.get(namespace).or(self.global.as_ref())
    }

    /// Every pool: the global one first, then namespaces by name.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.global.iter().chain(self.namespaces.values())
    }

    /// The pool named `name` ("global" or a namespace).
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        if name == GLOBAL_POOL {
            self.global.as_ref()
        } else {
            self.namespaces.get(name)
        }
    }

    /// The interface to announce a Service of `namespace` on: `interface-<ns>`, else the
    /// interface of its pool (which for the global pool is `interface-global`).
    pub fn interface_for_namespace(&self, namespace: &str) -> Option<&str> {
        self.interfaces
            .get(namespace)
            .map(String::as_str)
            .or_else(|| self.pool_for_namespace(namespace)?.interface.as_deref())
    }

    /// Whether Services of `namespace` may share addresses: its own pool's setting, else
    /// `allow-share-<ns>` (which, as in kube-vip-cloud-provider, also counts for a namespace
    /// on the global pool), else the global pool's.
    pub fn allow_share_for(&self, namespace: &str) -> bool {
        if let Some(own) = self.namespaces.get(namespace) {
            return own.allow_share;
        }
        self.shares
            .get(namespace)
            .copied()
            .unwrap_or_else(|| self.global.as_ref().is_some_and(|g| g.allow_share))
    }

    /// Adds or replaces a pool (used by tests and by the parser).
    pub fn insert(&mut self, pool: Pool) {
        if pool.name == GLOBAL_POOL {
            self.global = Some(pool);
        } else {
            self.namespaces.insert(pool.name.clone(), pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn size_leaves_out_avoided_addresses_only_when_asked() {
        let mut pool = Pool::new("default");
        pool.ranges = vec![
            AddrRange::new(ip("10.0.0.0"), ip("10.0.1.255")).expect("range"),
            AddrRange::new(ip("2001:db8::"), ip("2001:db8::ffff:ffff:ffff:ffff")).expect("range"),
        ];
        assert_eq!(pool.size(IpFamily::V4), 512 - 4);
        assert_eq!(pool.size(IpFamily::V6), 1u128 << 64);
        pool.avoid_buggy_ips = false;
        assert_eq!(pool.size(IpFamily::V4), 512);
    }

    #[test]
    fn contains_checks_every_range() {
        let mut pool = Pool::new("default");
        pool.ranges = vec![
            AddrRange::new(ip("10.0.0.5"), ip("10.0.0.9")).expect("range"),
            AddrRange::new(ip("10.0.1.5"), ip("10.0.1.9")).expect("range"),
        ];
        assert!(pool.contains(ip("10.0.0.5")) && pool.contains(ip("10.0.1.9")));
        assert!(!pool.contains(ip("10.0.0.10")) && !pool.contains(ip("10.0.1.4")));
        assert!(!pool.contains(ip("2001:db8::5")));
    }
}
