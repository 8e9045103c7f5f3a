//! Overlapping pools, judged as Cilium does: pools may not share addresses; of two that do,
//! the one created later is *conflicting* and gives no addresses until the overlap is gone.
//!
//! The ConfigMap's pools are the kube-vip-cloud-provider contract and carry no status, so an
//! object pool overlapping one of them is always the conflicting side; overlaps among the
//! ConfigMap's own keys stay warnings (see `pools::overlap_warnings`), as before. A
//! conflicting pool is left out of later comparisons, so fixing one pool never leaves a
//! third one judged against a pool that gives nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ObjectPool, PoolKind};
use crate::pools::{AddrRange, PoolSet};

/// Why a pool conflicts, as the condition message says it.
pub type ConflictMessage = String;

/// Judges every object pool against the ConfigMap's pools and the pools created before it.
/// Returns the message of each conflicting pool, by (kind, name).
pub fn judge(
    objects: &[Arc<ObjectPool>],
    config: &PoolSet,
    config_source: &str,
) -> HashMap<(PoolKind, String), ConflictMessage> {
    let mut order: Vec<&Arc<ObjectPool>> = objects.iter().collect();
    order.sort_by(|a, b| {
        (a.meta.created, a.kind, &a.meta.name).cmp(&(b.meta.created, b.kind, &b.meta.name))
    });
    let mut conflicts = HashMap::new();
    let mut accepted: Vec<&Arc<ObjectPool>> = Vec::new();
    for pool in order {
        if let Some(message) = first_overlap(pool, &accepted, config, config_source) {
            conflicts.insert((pool.kind, pool.meta.name.clone()), message);
        } else {
            accepted.push(pool);
        }
    }
    conflicts
}

fn first_overlap(
    pool: &ObjectPool,
    accepted: &[&Arc<ObjectPool>],
    config: &PoolSet,
    config_source: &str,
) -> Option<ConflictMessage> {
    for block in &pool.blocks {
        let Some(mine) = block.whole() else { continue };
        for other in config.pools().filter(|p| p.object.is_none()) {
            if let Some(range) = other.ranges.iter().find(|r| overlaps(&mine, r)) {
                return Some(format!(
                    "Pool conflicts since {} '{block}' overlaps range '{range}' of pool '{}' \
                     in ConfigMap {config_source}",
                    block.form(),
                    other.name
                ));
            }
        }
        for other in accepted {
            for theirs in &other.blocks {
                if theirs.whole().is_some_and(|r| overlaps(&mine, &r)) {
                    let whose = if pool.kind == PoolKind::Cilium && other.kind == PoolKind::Cilium {
                        format!("IP Pool '{}'", other.meta.name)
                    } else {
                        other.describe()
                    };
                    return Some(format!(
                        "Pool conflicts since {} '{block}' overlaps {} '{theirs}' from {whose}",
                        block.form(),
                        theirs.form()
                    ));
                }
            }
        }
    }
    None
}

fn overlaps(a: &AddrRange, b: &AddrRange) -> bool {
    a.family() == b.family() && a.start() <= b.end() && b.start() <= a.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pools::objects::Block;

    fn pool(kind: PoolKind, name: &str, created: i64, blocks: &[&str]) -> Arc<ObjectPool> {
        let mut pool = ObjectPool::new(kind, name);
        pool.meta.created = created;
        pool.blocks = blocks
            .iter()
            .map(|b| Block::Cidr(b.parse().expect("test CIDR")))
            .collect();
        Arc::new(pool)
    }

    #[test]
    fn the_later_of_two_overlapping_pools_conflicts_with_ciliums_message() {
        let blue = pool(PoolKind::Cilium, "blue-pool", 10, &["20.0.10.0/24"]);
        let red = pool(PoolKind::Cilium, "red-pool", 20, &["20.0.10.0/24"]);
        let conflicts = judge(&[red, blue], &PoolSet::default(), "kube-system/kubevip");
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            conflicts[&(PoolKind::Cilium, "red-pool".to_string())],
            "Pool conflicts since CIDR '20.0.10.0/24' overlaps CIDR '20.0.10.0/24' from IP Pool 'blue-pool'"
        );
    }

    #[test]
    fn a_conflicting_pool_does_not_make_a_third_one_conflict() {
        let a = pool(PoolKind::LoadBalancerPool, "a", 1, &["192.0.2.0/25"]);
        let b = pool(PoolKind::LoadBalancerPool, "b", 2, &["192.0.2.0/24"]);
        let c = pool(PoolKind::Eip, "c", 3, &["192.0.2.128/25"]);
        let conflicts = judge(&[a, b, c], &PoolSet::default(), "kube-system/kubevip");
        assert_eq!(
            conflicts.keys().collect::<Vec<_>>(),
            [&(PoolKind::LoadBalancerPool, "b".to_string())]
        );
        assert!(
            conflicts
                .values()
                .all(|m| m.contains("LoadBalancerPool 'a'"))
        );
    }

    #[test]
    fn an_object_pool_overlapping_the_configmap_always_conflicts() {
        let mut config = PoolSet::default();
        let mut global = crate::pools::Pool::new("global");
        global.ranges = vec![
            AddrRange::new(
                "192.0.2.10".parse().expect("ip"),
                "192.0.2.20".parse().expect("ip"),
            )
            .expect("range"),
        ];
        config.insert(global);
        let old = pool(PoolKind::LoadBalancerPool, "old", -100, &["192.0.2.16/28"]);
        let conflicts = judge(&[old], &config, "kube-system/kubevip");
        assert_eq!(
            conflicts[&(PoolKind::LoadBalancerPool, "old".to_string())],
            "Pool conflicts since CIDR '192.0.2.16/28' overlaps range '192.0.2.10-192.0.2.20' of \
             pool 'global' in ConfigMap kube-system/kubevip"
        );
    }

    #[test]
    fn families_never_overlap() {
        let v4 = pool(PoolKind::Cilium, "v4", 1, &["0.0.0.0/0"]);
        let v6 = pool(PoolKind::Cilium, "v6", 2, &["::/0"]);
        assert!(judge(&[v4, v6], &PoolSet::default(), "x").is_empty());
    }
}
