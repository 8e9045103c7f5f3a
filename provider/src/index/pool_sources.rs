//! The index's pools from every source: the ConfigMap and the pool objects.
//!
//! ```text
//!  ConfigMap ──apply_config──┐
//!  LoadBalancerPool ─┐       ▼
//!  Eip ──────────────┼──► PoolSources ──merged()──► PoolSet ──► Allocator::set_pools
//!  Cilium pool ──────┘   (conflicts judged here)        │
//!                                                        └─► only Services the changed pools
//!                                                            can affect are reconciled
//! ```
//! Adopt-before-allocate holds for objects too: the index starts allocating only once every
//! source the controller watches has been listed (an absent CRD counts as an empty list).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{Index, ServiceWrite};
use crate::ipam::{IpFamily, ServiceKey};
use crate::pools::objects::status::PoolReport;
use crate::pools::objects::{ObjectPool, PoolKind, conflicts};
use crate::pools::{Pool, PoolSet};

/// Every pool source as last seen.
#[derive(Debug, Default)]
pub struct PoolSources {
    /// The ConfigMap's pools.
    pub(super) config: PoolSet,
    /// Pool objects by (kind, name).
    objects: BTreeMap<(PoolKind, String), Arc<ObjectPool>>,
    /// Watched kinds whose first list has not arrived.
    pending: BTreeSet<PoolKind>,
}

impl PoolSources {
    /// True once every watched kind has been listed.
    pub(super) fn all_listed(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pools the allocator should use: the ConfigMap's plus every object's, each object
    /// judged for conflicts.
    fn merged(&self, config_source: &str) -> PoolSet {
        let objects: Vec<Arc<ObjectPool>> = self.objects.values().cloned().collect();
        let mut conflicts = conflicts::judge(&objects, &self.config, config_source);
        let mut set = self.config.clone();
        set.set_objects(
            objects
                .iter()
                .map(|object| {
                    let conflict = conflicts.remove(&(object.kind, object.meta.name.clone()));
                    object.to_pool(conflict)
                })
                .collect(),
        );
        set
    }
}

impl Index {
    /// The pool kinds the controller watches: allocation waits for their first lists.
    pub fn expect_pool_kinds(&mut self, kinds: &[PoolKind]) {
        self.sources.pending = kinds.iter().copied().collect();
    }

    /// A complete list of one kind's objects (also: its CRD is not installed, an empty list).
    pub fn reset_pool_objects(
        &mut self,
        kind: PoolKind,
        objects: Vec<ObjectPool>,
    ) -> Vec<ServiceWrite> {
        self.sources.objects.retain(|(k, _), _| *k != kind);
        for object in objects {
            self.sources
                .objects
                .insert((kind, object.meta.name.clone()), Arc::new(object));
        }
        self.sources.pending.remove(&kind);
        self.pools_changed(false)
    }

    /// A pool object was created or changed.
    pub fn apply_pool_object(&mut self, object: ObjectPool) -> Vec<ServiceWrite> {
        let key = (object.kind, object.meta.name.clone());
        if self
            .sources
            .objects
            .get(&key)
            .is_some_and(|o| **o == object)
        {
            return Vec::new();
        }
        self.sources.objects.insert(key, Arc::new(object));
        self.pools_changed(false)
    }

    /// A pool object was deleted. Addresses Services hold from it are kept (and reported
    /// as outside every pool), as when a ConfigMap key is removed.
    pub fn delete_pool_object(&mut self, kind: PoolKind, name: &str) -> Vec<ServiceWrite> {
        if self
            .sources
            .objects
            .remove(&(kind, name.to_string()))
            .is_none()
        {
            return Vec::new();
        }
        self.pools_changed(false)
    }

    /// Recomputes the pools; reconciles only the Services a change can affect: those holding
    /// an address in a changed pool (old or new ranges) and those still waiting for one. A
    /// ConfigMap change, or `everyone`, reconciles every Service (its problems are quoted in
    /// every failure).
    pub(super) fn pools_changed(&mut self, everyone: bool) -> Vec<ServiceWrite> {
        let merged = self.sources.merged(&self.settings.config_source);
        let old = self.allocator.pools();
        let config_changed = everyone
            || merged.global != old.global
            || merged.namespaces != old.namespaces
            || merged.interfaces != old.interfaces
            || merged.shares != old.shares;
        let changed = changed_pools(old, &merged);
        let mut writes = Vec::new();
        if !config_changed && changed.is_empty() {
            if !self.serving {
                self.maybe_start(&mut writes);
            }
            return writes;
        }
        let mut affected: BTreeSet<ServiceKey> = BTreeSet::new();
        if !config_changed {
            for pool in changed.iter().filter_map(|name| old.pool(name)) {
                affected.extend(self.holders_in(pool));
            }
        }
        self.allocator.set_pools(merged);
        if !self.serving {
            self.maybe_start(&mut writes);
            return writes;
        }
        if config_changed {
            self.refresh_outside();
            self.reconcile_all(&mut writes);
            return writes;
        }
        for name in &changed {
            if let Some(pool) = self.allocator.pools().pool(name) {
                affected.extend(self.holders_in(pool));
            }
        }
        affected.extend(self.failed.iter().cloned());
        self.refresh_outside_of(&affected);
        let mut keys: Vec<_> = affected
            .iter()
            .filter_map(|k| self.view(k).map(|v| v.age_key()))
            .collect();
        keys.sort();
        let keys: Vec<ServiceKey> = keys.into_iter().map(|(_, _, k)| k.clone()).collect();
        for key in keys {
            self.reconcile_into(&key, &mut writes);
        }
        super::coalesce(writes)
    }

    fn holders_in(&self, pool: &Pool) -> Vec<ServiceKey> {
        self.allocator
            .held_in(pool)
            .into_iter()
            .flat_map(|(_, holders)| holders.iter().cloned())
            .collect()
    }

    /// [`Index::refresh_outside`] for some Services only.
    fn refresh_outside_of(&mut self, keys: &BTreeSet<ServiceKey>) {
        if self.pools_unknown {
            return;
        }
        let outside = self.allocator.outside_pools_among(keys);
        for key in keys {
            if outside.contains(key) {
                if self.settings.reallocate_outside_pools {
                    if !self.allocator.release(key).is_empty() {
                        self.metrics.releases.inc();
                    }
                } else {
                    self.outside.insert(key.clone());
                }
            } else {
                self.outside.remove(key);
            }
        }
    }

    /// What each pool object's status should say now. Costs O(held addresses in object
    /// pools); the controller calls it on its stats timer.
    pub fn pool_reports(&self) -> Vec<PoolReport> {
        self.allocator
            .pools()
            .objects()
            .iter()
            .filter_map(|pool| {
                let origin = pool.object.as_ref()?;
                let in_pool = self.allocator.held_in(pool);
                let used = in_pool.len() as u128;
                // Only an Eip's status lists who holds each address.
                let held = if origin.object.kind == PoolKind::Eip {
                    in_pool
                        .into_iter()
                        .map(|(address, holders)| (address, holders.to_vec()))
                        .collect()
                } else {
                    Vec::new()
                };
                let total = [IpFamily::V4, IpFamily::V6]
                    .into_iter()
                    .filter(|&f| pool.ranges_of(f).next().is_some())
                    .map(|f| (f, pool.size(f)))
                    .collect();
                let first_last = pool
                    .ranges
                    .first()
                    .zip(pool.ranges.last())
                    .map(|(first, last)| (first.start(), last.end()));
                Some(PoolReport {
                    object: Arc::clone(&origin.object),
                    conflict: origin.conflict.clone(),
                    total,
                    used,
                    held,
                    first_last,
                })
            })
            .collect()
    }
}

/// Names of the object pools that differ between `old` and `new` (added, removed, changed).
fn changed_pools(old: &PoolSet, new: &PoolSet) -> Vec<String> {
    let before: HashMap<&str, &Pool> = old.objects().iter().map(|p| (p.name.as_str(), p)).collect();
    let after: HashMap<&str, &Pool> = new.objects().iter().map(|p| (p.name.as_str(), p)).collect();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (name, pool) in &before {
        if after.get(name) != Some(pool) {
            names.insert(name);
        }
    }
    for (name, pool) in &after {
        if before.get(name) != Some(pool) {
            names.insert(name);
        }
    }
    names.into_iter().map(str::to_string).collect()
}
