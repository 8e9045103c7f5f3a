//! Throughput of the in-process front door, through `kube::Client` over the
//! tower service, with 10,000 Services stored:
//!
//! `apiserver get_per_s=<x> patch_per_s=<x> list10k_ms=<x> watch_fanout_p99_ms=<x>`
//!
//! - get_per_s / patch_per_s: sequential requests from one task (merge patches
//!   of one annotation, spread over all Services);
//! - list10k_ms: mean time to LIST all 10,000 Services (one page);
//! - watch_fanout_p99_ms: 10 watchers on all Services; the 99th percentile of
//!   the delay between sending a patch and each watcher decoding its event.
//!
//! Run with `cargo bench -p test-apiserver` (release profile).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;
use test_apiserver::TestApiServer;

const SERVICES: usize = 10_000;
const GETS: usize = 20_000;
const PATCHES: usize = 20_000;
const LISTS: usize = 5;
const WATCHERS: usize = 10;
const FANOUT_PATCHES: usize = 2_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    runtime.block_on(run());
}

fn seed(server: &TestApiServer) {
    for i in 0..SERVICES {
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": format!("svc-{i:05}"), "namespace": "default", "labels": {"app": format!("app-{}", i % 100)}},
            "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        });
        if let Err(e) = server.seed(svc) {
            panic!("seeding svc-{i:05}: {e}");
        }
    }
}

async fn run() {
    let server = TestApiServer::new();
    seed(&server);
    let api: Api<Service> = Api::namespaced(server.client(), "default");

    let start = Instant::now();
    for i in 0..GETS {
        let name = format!("svc-{:05}", (i * 7919) % SERVICES);
        if let Err(e) = api.get(&name).await {
            panic!("get {name}: {e}");
        }
    }
    let get_per_s = GETS as f64 / start.elapsed().as_secs_f64();

    let pp = PatchParams::default();
    let start = Instant::now();
    for i in 0..PATCHES {
        let name = format!("svc-{:05}", (i * 7919) % SERVICES);
        let patch = json!({"metadata": {"annotations": {"bench/n": i.to_string()}}});
        if let Err(e) = api.patch(&name, &pp, &Patch::Merge(&patch)).await {
            panic!("patch {name}: {e}");
        }
    }
    let patch_per_s = PATCHES as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..LISTS {
        match api.list(&ListParams::default()).await {
            Ok(list) if list.items.len() == SERVICES => {}
            Ok(list) => panic!(
                "list returned {} services, want {SERVICES}",
                list.items.len()
            ),
            Err(e) => panic!("list: {e}"),
        }
    }
    let list10k_ms = start.elapsed().as_secs_f64() * 1000.0 / LISTS as f64;

    let watch_fanout_p99_ms = fanout_p99(&server, &api).await;
    println!(
        "apiserver get_per_s={get_per_s:.0} patch_per_s={patch_per_s:.0} list10k_ms={list10k_ms:.1} watch_fanout_p99_ms={watch_fanout_p99_ms:.2}"
    );
}

/// Starts the watchers, sends paced patches stamped with their send time, and
/// returns the p99 of send-to-receive delays over all watchers and events.
async fn fanout_p99(server: &TestApiServer, api: &Api<Service>) -> f64 {
    let epoch = Arc::new(Instant::now());
    let rv = server.store().revision().to_string();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let stream = match api.watch(&WatchParams::default().timeout(290), &rv).await {
            Ok(stream) => stream,
            Err(e) => panic!("watch: {e}"),
        };
        let epoch = epoch.clone();
        watchers.push(tokio::spawn(async move {
            let mut delays = Vec::with_capacity(FANOUT_PATCHES);
            let mut stream = stream.boxed();
            while delays.len() < FANOUT_PATCHES {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Modified(svc))) => {
                        let sent = svc
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("bench/sent-us"))
                            .and_then(|v| v.parse::<u64>().ok());
                        if let Some(sent) = sent {
                            let now = epoch.elapsed().as_micros() as u64;
                            delays.push(now.saturating_sub(sent));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("watch ended after {} events", delays.len()),
                    Err(e) => panic!("watch: {e}"),
                }
            }
            delays
        }));
    }
    let pp = PatchParams::default();
    for i in 0..FANOUT_PATCHES {
        let name = format!("svc-{:05}", i % SERVICES);
        let sent = epoch.elapsed().as_micros() as u64;
        let patch = json!({"metadata": {"annotations": {"bench/sent-us": sent.to_string()}}});
        if let Err(e) = api.patch(&name, &pp, &Patch::Merge(&patch)).await {
            panic!("patch {name}: {e}");
        }
        // Pace at about 2,000 patches/s so the figure is latency, not queueing behind a burst.
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let mut all = Vec::new();
    for watcher in watchers {
        match tokio::time::timeout(Duration::from_secs(60), watcher).await {
            Ok(Ok(delays)) => all.extend(delays),
            Ok(Err(e)) => panic!("watcher task: {e}"),
            Err(_) => panic!("watchers did not receive all events within 60 s"),
        }
    }
    all.sort_unstable();
    let index = ((all.len() as f64) * 0.99).ceil() as usize;
    all[index.saturating_sub(1).min(all.len() - 1)] as f64 / 1000.0
}
