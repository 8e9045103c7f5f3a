//! Controller benchmark: Services created in a burst (and at a steady rate) against the
//! test API server, timed from the create request to the moment a watcher sees the
//! `kube-vip.io/loadbalancerIPs` annotation.
//!
//! `cargo bench -p provider --bench controller` prints one line per case:
//!
//! - `controller <n> services_per_s=<x> p50_ms=<x> p99_ms=<x> rss_mb=<x> anon_mb=<x> file_mb=<x>`
//!   for n = 1,000 and 10,000: the built `ferrolb-provider` binary as a child process against
//!   the in-process server's HTTP front door. `rss_mb` is that process alone (measured 0.5 s
//!   after the last Service was annotated), split into `anon_mb` (heap, stacks) and `file_mb`
//!   (mapped binary and libraries).
//! - `controller <n>-restart settled_s=<x> rss_mb=<x> …`: a second process started against the
//!   same n annotated Services, once its resident set has not grown for 2 s (included in
//!   `settled_s`).
//! - `controller <n>-in-process … bench_rss_mb=<x>` and `controller steady100 …`: the
//!   controller as a library in the bench process, with the in-process front door (no HTTP).
//!   `bench_rss_mb` is the whole bench process, API server and all its Services included.
//!
//! `--binary-only` runs only the 10,000 binary cases. `FERROLB_BENCH_WRAP=heaptrack` runs the
//! child under a wrapper command, for profiling.

#[path = "common/figures.rs"]
mod figures;
#[path = "common/process.rs"]
mod process;
use figures::{percentile, status_mb};
use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use provider::{args::Args, controller, http::Health, metrics::Metrics};
use test_apiserver::TestApiServer;

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            // 10,000 Services would exhaust the 2,768 node ports the API server hands out.
            allocate_load_balancer_node_ports: Some(false),
            ports: Some(vec![ServicePort {
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn set_pool(client: &Client) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubevip".into()),
            ..Default::default()
        },
        data: Some([("cidr-global".to_string(), "10.64.0.0/16".to_string())].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap");
}

/// Records when each Service is first seen annotated.
fn spawn_observer(client: Client, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Service> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Ok(Some(svc)) = stream.try_next().await {
            let annotated = svc
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kube-vip.io/loadbalancerIPs"));
            if annotated && let Some(name) = svc.metadata.name {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    })
}

fn rss_mb(pid: &str) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// Creates `n` Services (at `rate` per second, or as fast as possible) and waits until all
/// are annotated. Returns (services per second, latencies in ms).
async fn run_case(client: &Client, n: usize, rate: Option<f64>) -> (f64, Vec<f64>) {
    let seen: Seen = Arc::default();
    let observer = spawn_observer(client.clone(), seen.clone());
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
    match rate {
        None => {
            futures::stream::iter(names.clone())
                .for_each_concurrent(64, |name| {
                    let api = api.clone();
                    let created = created.clone();
                    async move {
                        created
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.clone(), Instant::now());
                        api.create(&PostParams::default(), &service(&name))
                            .await
                            .expect("create");
                    }
                })
                .await;
        }
        Some(per_second) => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
            for name in &names {
                tick.tick().await;
                created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.clone(), Instant::now());
                api.create(&PostParams::default(), &service(name))
                    .await
                    .expect("create");
            }
        }
    }
    let created_in = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if seen.lock().unwrap_or_else(|e| e.into_inner()).len() >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every Service was annotated within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!("  ({n} creates took {created_in:.2} s of {elapsed:.2} s)");
    observer.abort();
    let created = created.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut latencies: Vec<f64> = names
        .iter()
        .filter_map(|name| {
            Some(
                seen.get(name)?
                    .saturating_duration_since(*created.get(name)?)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    (n as f64 / elapsed, latencies)
}

async fn in_process(case: &str, n: usize, rate: Option<f64>) {
    let server = TestApiServer::new();
    let client = server.client();
    set_pool(&client).await;
    let concurrency = format!("--write-concurrency={}", write_concurrency());
    let args = Args::try_parse_from([
        "ferrolb-provider",
        "--leader-elect=false",
        "--initialize-nodes=false",
        "--announcers=none",
        &concurrency,
    ])
    .expect("flags");
    let ctx = controller::Context::from_args(
        client.clone(),
        &args,
        Arc::new(Metrics::default()),
        Arc::new(Health::default()),
    );
    let task = tokio::spawn(async move { controller::run(ctx, &args).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (per_second, latencies) = run_case(&client, n, rate).await;
    println!(
        "controller {case} services_per_s={per_second:.0} p50_ms={:.1} p99_ms={:.1} bench_rss_mb={:.1}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        rss_mb("self")
    );
    task.abort();
}

/// The built binary alone, against the HTTP front door, for its own resident set.
async fn binary_rss(n: usize) {
    let server = TestApiServer::new();
    let client = server.client();
    set_pool(&client).await;
    let (address, _serving) = server.serve_http(0).await.expect("HTTP front door");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
    let child = spawn_provider(&kubeconfig);
    let (per_second, latencies) = run_case(&client, n, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().to_string();
    let rss = rss_mb(&pid);
    println!(
        "controller {n} services_per_s={per_second:.0} p50_ms={:.1} p99_ms={:.1} rss_mb={rss:.1} anon_mb={:.1} file_mb={:.1}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        status_mb(&pid, "RssAnon:"),
        status_mb(&pid, "RssFile:"),
    );
    process::stop(child);

    // A restart: a new process lists the n annotated Services and adopts them all.
    let started = Instant::now();
    let child = spawn_provider(&kubeconfig);
    let pid = child.id().to_string();
    let settled = settle_rss(&pid).await;
    println!(
        "controller {n}-restart settled_s={:.1} rss_mb={settled:.1} anon_mb={:.1} file_mb={:.1}",
        started.elapsed().as_secs_f64(),
        status_mb(&pid, "RssAnon:"),
        status_mb(&pid, "RssFile:"),
    );
    process::stop(child);
}

/// The provider binary (under `FERROLB_BENCH_WRAP` when set) against `kubeconfig`.
fn spawn_provider(kubeconfig: &std::path::Path) -> std::process::Child {
    process::wrapped_provider()
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--leader-elect=false",
            "--initialize-nodes=false",
            "--announcers=none",
            "--metrics-addr=127.0.0.1:0",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("provider binary starts")
}

/// Waits until the resident set has stopped growing for 2 s (at most 60 s) and returns it.
async fn settle_rss(pid: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = 0.0;
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss_mb(pid);
        if now > last + 0.05 {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) && last > 0.0 {
            break;
        }
    }
    last.max(rss_mb(pid))
}

/// `FERROLB_BENCH_WRITE_CONCURRENCY` overrides the controller's default for experiments.
fn write_concurrency() -> usize {
    std::env::var("FERROLB_BENCH_WRITE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--binary-only") {
        binary_rss(10_000).await;
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    if quick {
        in_process("1000-in-process", 1_000, None).await;
        return;
    }
    // In-process first: `bench_rss_mb` then counts no API server left over from another case.
    in_process("1000-in-process", 1_000, None).await;
    in_process("10000-in-process", 10_000, None).await;
    in_process("steady100", 1_000, Some(100.0)).await;
    binary_rss(1_000).await;
    binary_rss(10_000).await;
}
