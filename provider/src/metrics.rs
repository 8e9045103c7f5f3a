//! Prometheus metrics of the provider.
//!
//! One [`Metrics`] value is created by `main`, registered into a `prometheus_client` registry
//! served at `/metrics`, and shared (behind an `Arc`) with the index task, the writer and the
//! lease loop. No global state: tests build their own.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of the per-pool gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// Pool name: `global` or the namespace.
    pub pool: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// Label of counters split by pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    /// Pool name.
    pub pool: String,
}

/// Label of counters split by reason or error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Stable CamelCase reason (allocation failures) or snake_case kind (errors).
    pub reason: String,
}

/// Labels of the per-node announcement gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeModeLabels {
    /// Node name.
    pub node: String,
    /// `layer2`, `vip` or `bgp`.
    pub mode: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the provider exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Addresses in each pool and family (a pool of IPv6 /64 exceeds i64, hence f64).
    pub pool_size: Family<PoolLabels, FloatGauge>,
    /// Addresses in use in each pool and family.
    pub pool_used: Family<PoolLabels, FloatGauge>,
    /// Addresses still free in each pool and family.
    pub pool_free: Family<PoolLabels, FloatGauge>,
    /// Successful allocations (new or changed addresses) by pool.
    pub allocations: Family<PoolLabel, Counter>,
    /// Failed allocations by ipam reason (NoPool, OutOfAddresses, ...).
    pub allocation_failures: Family<ReasonLabel, Counter>,
    /// Releases of addresses (Service deleted, left our scope, or changed address).
    pub releases: Counter,
    /// Seconds from seeing a Service that needs an address to the write that gave it one.
    pub allocation_latency: Histogram,
    /// Failed reconcile steps (API writes, reads) by error kind.
    pub reconcile_errors: Family<ReasonLabel, Counter>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// Times this replica acquired the Lease.
    pub leader_transitions: Counter,
    /// Malformed entries in the pool ConfigMap at its last reading.
    pub config_errors: Gauge,
    /// Announcers the leader holds a working connection to (cluster mode).
    pub announcers_connected: Gauge,
    /// Announcements in each node's desired set, by mode (cluster mode).
    pub node_announcements: Family<NodeModeLabels, Gauge>,
    /// Addresses that moved to another node (or to none), by reason.
    pub moves: Family<ReasonLabel, Counter>,
    /// Seconds a Sync to an announcer took, call to answer.
    pub sync_latency: Histogram,
    /// Syncs refused by an announcer (stale generation, invalid set).
    pub sync_refusals: Counter,
    /// Conflicts announcers reported: another host answered for an address they answer for.
    pub address_conflicts: Counter,
    /// Failed attempts to read or create the heartbeat key Secret, by error kind.
    pub heartbeat_key_errors: Family<ReasonLabel, Counter>,
    /// Services kept as kube-vip-cloud-provider left them although FerroLB would refuse the
    /// same request today, by reason (`address_conflict`, `outside_pool`, `no_pool`).
    pub adopted_as_is: Family<ReasonLabel, Counter>,
    /// Places where the ConfigMap gives new Services addresses differently than
    /// kube-vip-cloud-provider would, at its last reading.
    pub config_kvcp_differences: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            pool_size: Family::default(),
            pool_used: Family::default(),
            pool_free: Family::default(),
            allocations: Family::default(),
            allocation_failures: Family::default(),
            releases: Counter::default(),
            // 1 ms .. ~8 s
            allocation_latency: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 14),
            ),
            reconcile_errors: Family::default(),
            leader: Gauge::default(),
            leader_transitions: Counter::default(),
            config_errors: Gauge::default(),
            announcers_connected: Gauge::default(),
            node_announcements: Family::default(),
            moves: Family::default(),
            // 0.5 ms .. ~4 s
            sync_latency: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
            ),
            sync_refusals: Counter::default(),
            address_conflicts: Counter::default(),
            heartbeat_key_errors: Family::default(),
            adopted_as_is: Family::default(),
            config_kvcp_differences: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `ferrolb_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("ferrolb");
        r.register(
            "pool_size_addresses",
            "Addresses in the pool",
            self.pool_size.clone(),
        );
        r.register(
            "pool_used_addresses",
            "Addresses of the pool in use",
            self.pool_used.clone(),
        );
        r.register(
            "pool_free_addresses",
            "Addresses of the pool still free",
            self.pool_free.clone(),
        );
        r.register(
            "allocations",
            "Addresses allocated to Services",
            self.allocations.clone(),
        );
        r.register(
            "allocation_failures",
            "Failed allocations by reason",
            self.allocation_failures.clone(),
        );
        r.register(
            "releases",
            "Services whose addresses were released",
            self.releases.clone(),
        );
        r.register(
            "allocation_latency_seconds",
            "Time from observing a Service that needs an address to writing it",
            self.allocation_latency.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed API reads and writes by error kind",
            self.reconcile_errors.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader Lease",
            self.leader.clone(),
        );
        r.register(
            "leader_transitions",
            "Times this replica acquired the leader Lease",
            self.leader_transitions.clone(),
        );
        r.register(
            "config_errors",
            "Malformed entries in the pool ConfigMap",
            self.config_errors.clone(),
        );
        r.register(
            "announcers_connected",
            "Announcers the leader holds a working connection to",
            self.announcers_connected.clone(),
        );
        r.register(
            "node_announcements",
            "Announcements in each node's desired set, by mode",
            self.node_announcements.clone(),
        );
        r.register(
            "announcement_moves",
            "Addresses that moved to another node, by reason",
            self.moves.clone(),
        );
        r.register(
            "announcer_sync_latency_seconds",
            "Time a Sync to an announcer took",
            self.sync_latency.clone(),
        );
        r.register(
            "announcer_sync_refusals",
            "Syncs an announcer refused (stale generation or invalid set)",
            self.sync_refusals.clone(),
        );
        r.register(
            "address_conflicts",
            "Address conflicts announcers reported (another host answered for an address they answer for)",
            self.address_conflicts.clone(),
        );
        r.register(
            "heartbeat_key_errors",
            "Failed attempts to read or create the heartbeat key Secret, by error kind",
            self.heartbeat_key_errors.clone(),
        );
        r.register(
            "adopted_as_is",
            "Services kept as kube-vip-cloud-provider left them although a new Service would be \
             refused the same request, by reason",
            self.adopted_as_is.clone(),
        );
        r.register(
            "config_kvcp_differences",
            "Places where the pool ConfigMap gives new Services addresses differently than \
             kube-vip-cloud-provider",
            self.config_kvcp_differences.clone(),
        );
    }

    /// Replaces the pool gauges with the allocator's current figures.
    pub fn set_pool_stats(&self, stats: &[PoolFigures]) {
        self.pool_size.clear();
        self.pool_used.clear();
        self.pool_free.clear();
        for stat in stats {
            let labels = PoolLabels {
                pool: stat.pool.clone(),
                family: stat.family.to_string(),
            };
            // u128 -> f64 loses precision only beyond 2^53 addresses, fine for a gauge.
            self.pool_size.get_or_create(&labels).set(stat.size as f64);
            self.pool_used.get_or_create(&labels).set(stat.used as f64);
            self.pool_free.get_or_create(&labels).set(stat.free as f64);
        }
    }

    /// Counts one failed reconcile step.
    pub fn reconcile_error(&self, kind: &str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabel {
                reason: kind.to_string(),
            })
            .inc();
    }

    /// Counts one allocation failure.
    pub fn allocation_failed(&self, reason: &str) {
        self.allocation_failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one Service adopted as kube-vip-cloud-provider left it.
    pub fn adopted_as_is(&self, reason: &str) {
        self.adopted_as_is
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one successful allocation.
    pub fn allocated(&self, pool: &str) {
        self.allocations
            .get_or_create(&PoolLabel {
                pool: pool.to_string(),
            })
            .inc();
    }
}

/// Size and use of one pool family (from the allocator's `pool_stats()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolFigures {
    /// Pool name.
    pub pool: String,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Addresses in the pool.
    pub size: u128,
    /// Addresses in use.
    pub used: u128,
    /// Addresses free.
    pub free: u128,
}

/// Renders the registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        // Encoding into a String cannot fail; keep the endpoint answering anyway.
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_name_pool_and_family() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.set_pool_stats(&[PoolFigures {
            pool: "global".into(),
            family: "ipv6",
            size: 1 << 64,
            used: 3,
            free: (1 << 64) - 3,
        }]);
        metrics.allocation_failed("OutOfAddresses");
        let text = render(&registry);
        assert!(
            text.contains("ferrolb_pool_used_addresses{pool=\"global\",family=\"ipv6\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_allocation_failures_total{reason=\"OutOfAddresses\"} 1"),
            "{text}"
        );
        assert!(text.contains("ferrolb_leader 0"), "{text}");
    }
}
