//! The typed pool model: what a parsed ConfigMap means.
//!
//! A [`PoolSet`] holds the global pool and one pool per namespace that has its own `cidr-<ns>`
//! or `range-<ns>` entries. A [`Pool`] keeps its addresses as merged, sorted [`AddrRange`]s
//! (never expanded), plus the settings that steer allocation from it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::objects::{ObjectPool, PoolKind, Subject};
use crate::announce::Mode;
use crate::ipam::ranges::{buggy_between, from_number, to_number};
use crate::ipam::{IpFamily, ServiceKey};

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
    /// For a pool read from an object (not the ConfigMap): the object and its conflict.
    pub object: Option<PoolOrigin>,
}

/// Where an object pool came from, and whether it may give addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolOrigin {
    /// The object as read.
    pub object: Arc<ObjectPool>,
    /// Why it conflicts with an older pool (it then gives no new addresses).
    pub conflict: Option<String>,
}

/// A Service's pool annotation: which pool it names, and where it named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NamedPool {
    /// The annotation that named it (for messages).
    pub annotation: &'static str,
    /// The kind it must be (None: a `LoadBalancerPool`, or any kind as `<prefix>/<name>`).
    pub kind: Option<PoolKind>,
    /// The value as written.
    pub name: String,
}

/// What pool selection needs to know about a Service besides its namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PoolQuery {
    /// metadata.labels (service selectors match them).
    pub labels: BTreeMap<String, String>,
    /// The pool the Service names, if any.
    pub named: Option<NamedPool>,
    /// The Service asks for OpenELB (`lb.kubesphere.io/v1alpha1: openelb`, or names an Eip).
    pub openelb: bool,
    /// The mode its annotation states (pools with another mode do not serve it).
    pub mode: Option<Mode>,
}

/// Why no pool can serve a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// No ConfigMap key and no pool object selects the Service.
    NoPool,
    /// The named pool does not exist.
    NoSuchPool(NamedPool),
    /// The named pool exists but its selector (or kind) does not take the Service.
    NotSelected(String),
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
            object: None,
        }
    }

    /// Whether the pool may serve the Service `key` asking with `query`: its selector, kind
    /// and mode allow it. ConfigMap pools serve whoever their key assigns them to.
    pub fn selects(&self, key: &ServiceKey, query: &PoolQuery) -> bool {
        let Some(origin) = &self.object else {
            return true;
        };
        let object = &origin.object;
        (!object.openelb_only || query.openelb)
            && object
                .mode
                .is_none_or(|mode| query.mode.is_none_or(|m| m == mode))
            && object.service_selector.as_ref().is_none_or(|selector| {
                selector.matches(Subject {
                    labels: &query.labels,
                    namespace: Some(&key.namespace),
                    name: Some(&key.name),
                })
            })
    }

    /// Why the pool gives no new addresses now (disabled or conflicting), if so.
    pub fn closed(&self) -> Option<Closed> {
        let origin = self.object.as_ref()?;
        if let Some(message) = &origin.conflict {
            return Some(Closed::Conflict(message.clone()));
        }
        origin.object.disabled.then_some(Closed::Disabled)
    }

    /// The mode the pool's addresses are announced in, if it sets one.
    pub fn mode(&self) -> Option<Mode> {
        self.object.as_ref().and_then(|o| o.object.mode)
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

/// Why a pool gives no new addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    /// `disabled: true` (`disable: true` on an Eip).
    Disabled,
    /// It overlaps an older pool; the message says which.
    Conflict(String),
}

/// All pools: the ConfigMap's and the objects'.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolSet {
    /// Pools read from objects, in the order they are tried: priority (highest first), then
    /// oldest first, then by name.
    pub(crate) objects: Vec<Pool>,
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

    /// Every pool: the global one first, then namespaces by name, then the objects' pools.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.global
            .iter()
            .chain(self.namespaces.values())
            .chain(self.objects.iter())
    }

    /// The pool named `name` ("global", a namespace, or `<prefix>/<object name>`).
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        if name == GLOBAL_POOL {
            self.global.as_ref()
        } else if name.contains('/') {
            self.objects.iter().find(|p| p.name == name)
        } else {
            self.namespaces.get(name)
        }
    }

    /// The pools a Service may take addresses from, in the order to try them:
    /// 1. the pool its annotation names, alone;
    /// 2. else its namespace's own ConfigMap pool (`cidr-<ns>`/`range-<ns>`), alone;
    /// 3. else every object pool that selects it, by priority, then the ConfigMap's global
    ///    pool.
    ///
    /// Disabled and conflicting pools are listed too (the allocator says why they give
    /// nothing, and existing addresses in them stay "inside a pool").
    pub fn candidates(&self, key: &ServiceKey, query: &PoolQuery) -> Result<Vec<&Pool>, Unmatched> {
        if let Some(named) = &query.named {
            let (kind, name) = match (named.kind, named.name.split_once('/')) {
                (Some(kind), _) => (kind, named.name.as_str()),
                (None, Some((prefix, name))) => {
                    match PoolKind::ALL.into_iter().find(|k| k.prefix() == prefix) {
                        Some(kind) => (kind, name),
                        None => return Err(Unmatched::NoSuchPool(named.clone())),
                    }
                }
                (None, None) => (PoolKind::LoadBalancerPool, named.name.as_str()),
            };
            let pool = self
                .objects
                .iter()
                .find(|p| {
                    p.object
                        .as_ref()
                        .is_some_and(|o| o.object.kind == kind && o.object.meta.name == name)
                })
                .ok_or_else(|| Unmatched::NoSuchPool(named.clone()))?;
            return if pool.selects(key, query) {
                Ok(vec![pool])
            } else {
                Err(Unmatched::NotSelected(pool.name.clone()))
            };
        }
        if let Some(own) = self.namespaces.get(&*key.namespace) {
            return Ok(vec![own]);
        }
        let list: Vec<&Pool> = self
            .objects
            .iter()
            .filter(|p| p.selects(key, query))
            .chain(self.global.iter())
            .collect();
        if list.is_empty() {
            Err(Unmatched::NoPool)
        } else {
            Ok(list)
        }
    }

    /// Replaces the object pools (sorted into trial order here).
    pub fn set_objects(&mut self, mut objects: Vec<Pool>) {
        let order = |p: &Pool| {
            let o = p.object.as_ref().map(|o| &o.object);
            (
                std::cmp::Reverse(o.map_or(0, |o| o.priority)),
                o.map_or(0, |o| o.meta.created),
                p.name.clone(),
            )
        };
        objects.sort_by_cached_key(order);
        self.objects = objects;
    }

    /// The object pools, in trial order.
    pub fn objects(&self) -> &[Pool] {
        &self.objects
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
