//! Pool objects at scale: 100 `LoadBalancerPool`s with service selectors and 10,000 Services.
//!
//! Run with `cargo bench -p provider --bench pools`. It drives the provider's pure index (no
//! API server) and prints
//!
//! ```text
//! pools 100x10000 assign_ms=<n> reconcile_after_pool_edit_ms=<n> full_reconcile_ms=<n> ratio=<x> rss_mb=<n>
//! ```
//! - `assign_ms`: from the pools' first list to every Service holding an address (one pool per
//!   team label, each a /24 of 198.18.0.0/15, so every Service's selector is evaluated against
//!   every pool);
//! - `reconcile_after_pool_edit_ms`: the slowest of 10 edits of one pool each (priority,
//!   an added block, disabled and enabled again): only the Services the edited pool can affect
//!   are reconciled;
//! - `full_reconcile_ms`: the same work done for every Service (a ConfigMap edit), in the same
//!   run, and `ratio` = full / edit;
//! - `rss_mb`: the bench process's resident memory afterwards (the index is all it holds).
//!
//! Times are wall-clock; on a shared machine compare the ratio, not absolute figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use provider::args::StatusMode;
use provider::index::{Index, IndexSettings};
use provider::metrics::Metrics;
use provider::pools::objects::{ObjectPool, PoolKind, parse};
use provider::service_view::ClassFilter;
use serde_json::json;

const POOLS: usize = 100;
const SERVICES: usize = 10_000;

fn pool(i: usize, priority: i64, extra_block: bool, disabled: bool) -> ObjectPool {
    let mut blocks = vec![json!({"cidr": format!("198.18.{i}.0/24")})];
    if extra_block {
        blocks.push(json!({"cidr": format!("198.19.{i}.0/24")}));
    }
    parse::lbpool(&json!({
        "metadata": {"name": format!("team-{i}"), "generation": 1,
                     "creationTimestamp": "2026-12-01T00:00:00Z"},
        "spec": {
            "blocks": blocks,
            "priority": priority,
            "disabled": disabled,
            "serviceSelector": {"matchLabels": {"team": format!("t{i}")}},
        },
    }))
}

fn service(i: usize) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(format!("ns{}", i % 50)),
            name: Some(format!("svc-{i}")),
            uid: Some(format!("uid-{i}")),
            resource_version: Some("1".into()),
            labels: Some(BTreeMap::from([("team".into(), format!("t{}", i % POOLS))])),
            creation_timestamp: Some(Time(
                Timestamp::from_second(1_700_000_000 + i as i64).unwrap_or(Timestamp::UNIX_EPOCH),
            )),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: Some(Default::default()),
    }
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let settings = IndexSettings {
        classes: ClassFilter::default(),
        write_load_balancer_ip: true,
        status: StatusMode::Allocated,
        reallocate_outside_pools: false,
        config_source: "kube-system/kubevip".into(),
        cluster_default_mode: None,
        ingress_ip_only: false,
        requests_unchecked: false,
    };
    let mut index = Index::new(settings, Arc::new(Metrics::default()));
    index.expect_pool_kinds(&[PoolKind::LoadBalancerPool]);
    let services: Vec<Service> = (0..SERVICES).map(service).collect();
    assert!(index.reset_services(&services).is_empty());
    assert!(index.apply_config(None).is_empty());

    let start = Instant::now();
    let writes = index.reset_pool_objects(
        PoolKind::LoadBalancerPool,
        (0..POOLS).map(|i| pool(i, 0, false, false)).collect(),
    );
    let assign_ms = ms(start);
    let allocated = (0..SERVICES)
        .filter(|i| {
            let key = provider::ipam::ServiceKey::new(format!("ns{}", i % 50), format!("svc-{i}"));
            index.allocation(&key).is_some()
        })
        .count();
    assert_eq!(allocated, SERVICES, "every Service got an address");
    assert_eq!(writes.len(), SERVICES);

    let mut slowest_edit: f64 = 0.0;
    let edits: [(i64, bool, bool); 10] = [
        (5, false, false),
        (5, true, false),
        (5, true, true),
        (5, true, false),
        (0, false, false),
        (7, false, false),
        (7, true, false),
        (7, true, true),
        (7, false, false),
        (0, false, false),
    ];
    for (n, (priority, extra, disabled)) in edits.into_iter().enumerate() {
        let target = (n * 13) % POOLS;
        let start = Instant::now();
        let _ = index.apply_pool_object(pool(target, priority, extra, disabled));
        slowest_edit = slowest_edit.max(ms(start));
    }

    // The same index reconciling every Service: what a ConfigMap edit costs.
    let config = ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubevip".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "range-unused".to_string(),
            "192.0.2.1-192.0.2.2".to_string(),
        )])),
        ..Default::default()
    };
    let start = Instant::now();
    let _ = index.apply_config(Some(&config));
    let full_ms = ms(start);

    println!(
        "pools {POOLS}x{SERVICES} assign_ms={assign_ms:.0} reconcile_after_pool_edit_ms={slowest_edit:.1} \
         full_reconcile_ms={full_ms:.0} ratio={:.0} rss_mb={:.1}",
        full_ms / slowest_edit.max(0.001),
        rss_mb()
    );
}
