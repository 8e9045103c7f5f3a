//! Cluster-mode benchmark: 100 announcers and 10,000 Services.
//!
//! ```text
//!   test API server ◀── Nodes, EndpointSlices, ConfigMap, 10,000 Services (this bench)
//!        │   ▲
//!        ▼   │ annotations, Announced condition
//!   ferrolb-provider ──mTLS gRPC Sync──▶ 100 in-process fake announcers (support/announcer.rs)
//!        │
//!   Service watcher (this bench) ── sees `ferrolb.io/Announced` True ─▶ latency per Service
//! ```
//!
//! `cargo bench -p provider --bench announce` prints one line:
//!
//! `announce 10000 nodes=100 first_sync_ms=… create_to_announced_p50_ms=…
//! create_to_announced_p99_ms=… all_announced_ms=… resync_ms=… resync_changes_after_restart=…
//! rss_mb=… rss_after_burst_mb=… peak_rss_mb=…` (or `bench_rss_mb=…`, see below)
//!
//! - `first_sync_ms`: from starting the provider (no Services yet) until every announcer has
//!   accepted its first Sync.
//! - `create_to_announced_*`: 10,000 Services created in a burst (64 requests in flight), each
//!   timed from its create request until a watcher sees its `ferrolb.io/Announced` condition
//!   `True`; `all_announced_ms` runs from the first create until the last is seen.
//! - `resync_ms`, `resync_changes_after_restart`: the provider is stopped and a new one
//!   started (a later epoch); the time until every announcer has accepted a Sync from it, and
//!   the entries those Syncs added or removed (counted 1 s after the last announcer re-synced,
//!   so follow-up Syncs are included). A restart should change nothing: 0.
//! - `rss_mb`: the `ferrolb-provider` binary's resident set, as a child process against the
//!   test API server's HTTP front door, once it is idle after the burst (its CPU time grows
//!   by at most 20 ms over half a second; at most 15 s after the last Service was announced:
//!   the Events that trail the announcements are published by then). `rss_after_burst_mb`:
//!   the same 0.5 s after the last Service was announced; `peak_rss_mb`: its high-water mark
//!   (`VmHWM`), the burst included. It needs
//!   the binary to take the announcers' TLS material from files (`--announcer-tls=files`);
//!   when its `--help` does not offer that, the provider runs in-process instead and the line
//!   says `bench_rss_mb`: the whole bench process, API server, 10,000 Services, 100 fake
//!   announcers and the watcher included — not the provider's figure.
//!
//! Progress and diagnostics (phase timings, Syncs accepted during the burst, Service writes
//! and write conflicts, the resident set before the burst and split by kind) go to stderr.
//! `FERROLB_BENCH_DEADLINE_S` sets how long the burst may take (default 300 s); past it the
//! bench prints, for up to 20 Services not seen announced, their resourceVersion, address,
//! `ferrolb.io/Announced` condition and the announcers holding the address, then fails.
//! `--in-process` forces the in-process provider. `FERROLB_BENCH_WRAP=heaptrack` runs the
//! provider binary under a wrapper command, for profiling.

#[path = "../tests/support/announcer.rs"]
mod announcer;

#[path = "common/figures.rs"]
mod figures;
#[path = "common/process.rs"]
mod process;
use figures::{cpu_ticks, percentile, status_mb};
use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use announcer::{FakeAnnouncer, Pki};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use provider::{args::Args, controller, http::Health, metrics::Metrics};
use serde_json::json;
use test_apiserver::TestApiServer;

const NODES: usize = 100;
const SERVICES: usize = 10_000;
/// Requests in flight during the burst (as in the controller benchmark).
const CREATE_CONCURRENCY: usize = 64;
const DEADLINE: Duration = Duration::from_secs(300);

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// When each Service was first seen allocated (annotated) and announced.
#[derive(Clone, Default)]
struct Observed {
    annotated: Seen,
    announced: Seen,
    /// Service watch events (each a successful write, once the list is done).
    updates: Arc<std::sync::atomic::AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn node_name(i: usize) -> String {
    format!("node-{i:03}")
}

/// Nodes (Ready) and one announcer EndpointSlice per node, shaped as in `tests/cluster.rs`.
async fn cluster(client: &Client, announcers: &[FakeAnnouncer]) {
    let names: Vec<String> = (0..announcers.len()).map(node_name).collect();
    announcer::register_nodes(client, &names, announcers).await;
}

async fn set_pool(client: &Client) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "kubevip"},
        // The benchmarking prefix (RFC 2544), 32,768 addresses.
        "data": {"cidr-global": "198.18.0.0/17"},
    }))
    .expect("ConfigMap");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap");
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "type": "LoadBalancer",
            // 10,000 Services would exhaust the node ports the API server hands out.
            "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
    }))
    .expect("Service")
}

fn is_announced(svc: &Service) -> bool {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "ferrolb.io/Announced" && c.status == "True")
        })
}

/// Records when each Service is first seen annotated, and with `ferrolb.io/Announced` True.
fn spawn_observer(client: Client, seen: Observed) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Service> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            let svc = match stream.try_next().await {
                Ok(Some(svc)) => svc,
                Ok(None) => {
                    eprintln!("  (observer: the Service watch ended)");
                    return;
                }
                Err(error) => {
                    eprintln!("  (observer: Service watch error, the watcher retries: {error})");
                    continue;
                }
            };
            seen.updates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(name) = svc.metadata.name.clone() else {
                continue;
            };
            let annotated = svc
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kube-vip.io/loadbalancerIPs"));
            if annotated {
                lock(&seen.annotated)
                    .entry(name.clone())
                    .or_insert_with(Instant::now);
            }
            if is_announced(&svc) {
                lock(&seen.announced)
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    })
}

/// How long the burst may take: `FERROLB_BENCH_DEADLINE_S` seconds, or [`DEADLINE`].
fn burst_deadline() -> Duration {
    std::env::var("FERROLB_BENCH_DEADLINE_S")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEADLINE, Duration::from_secs)
}

/// Prints (stderr) what each Service that was never seen announced looks like: its
/// resourceVersion, address annotation, `ferrolb.io/Announced` condition, and which
/// announcers hold its address, so a stall can be told apart from a lost write.
async fn describe_stuck(client: &Client, announcers: &[FakeAnnouncer], missing: &[String]) {
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    eprintln!("  ({} Services not seen announced:", missing.len());
    for name in missing.iter().take(20) {
        let Ok(svc) = api.get(name).await else {
            eprintln!("    {name}: cannot be read");
            continue;
        };
        let address = svc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kube-vip.io/loadbalancerIPs").cloned())
            .unwrap_or_default();
        let condition = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "ferrolb.io/Announced"))
            .map(|c| format!("{} {} {:?}", c.status, c.reason, c.message))
            .unwrap_or_else(|| "no Announced condition".into());
        let holders: Vec<String> = announcers
            .iter()
            .enumerate()
            .filter(|(_, a)| !address.is_empty() && a.addresses().contains(&address))
            .map(|(i, a)| {
                let active = a.active().contains(&address);
                format!("{}{}", node_name(i), if active { "(active)" } else { "" })
            })
            .collect();
        eprintln!(
            "    {name}: rv {} address {address:?}; {condition}; held by [{}]",
            svc.metadata.resource_version.unwrap_or_default(),
            holders.join(", ")
        );
    }
    eprintln!("  )");
}

/// Accepted Syncs per announcer.
fn sync_counts(announcers: &[FakeAnnouncer]) -> Vec<usize> {
    announcers
        .iter()
        .map(|a| lock(&a.state).syncs.len())
        .collect()
}

/// Waits until every announcer has accepted more than `before[i]` Syncs.
async fn wait_synced(announcers: &[FakeAnnouncer], before: &[usize], what: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = sync_counts(announcers);
        if now.iter().zip(before).all(|(n, b)| n > b) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `FERROLB_BENCH_WRITE_CONCURRENCY` overrides the controller's default for experiments.
fn write_concurrency() -> String {
    let n = std::env::var("FERROLB_BENCH_WRITE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64);
    format!("--write-concurrency={n}")
}

/// The provider under test: a task in this process or the built binary.
enum Provider {
    InProcess(tokio::task::JoinHandle<()>, Arc<Metrics>),
    Binary(std::process::Child),
}

impl Provider {
    fn stop(self) {
        match self {
            Provider::InProcess(task, _) => task.abort(),
            // The whole process group: under a wrapper (heaptrack) the provider is the
            // wrapper's child, and must not outlive the restart.
            Provider::Binary(child) => process::stop(child),
        }
    }

    /// The provider's failed writes by kind (in-process only: the binary's metrics port is
    /// not known to the bench).
    fn write_errors(&self) -> String {
        let Provider::InProcess(_, metrics) = self else {
            return "write errors not counted".to_string();
        };
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("errors", "", metrics.reconcile_errors.clone());
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &registry);
        let counts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("errors_total"))
            .collect();
        format!("write errors: {}", counts.join(" "))
    }

    /// The resident set in MiB, and whether it is the provider's alone.
    fn rss_mb(&self) -> (f64, bool) {
        (
            status_mb(&self.pid(), "VmRSS:"),
            matches!(self, Provider::Binary(_)),
        )
    }

    /// The resident set split into (heap and stacks, mapped files), in MiB.
    fn rss_split_mb(&self) -> (f64, f64) {
        let pid = self.pid();
        (status_mb(&pid, "RssAnon:"), status_mb(&pid, "RssFile:"))
    }

    /// Waits until the provider is idle after the burst: its CPU time grew by at most 20 ms
    /// over half a second (the Events and writes that trail the last announcement are done),
    /// for at most 15 s. Returns how long that took.
    async fn settle(&self) -> Duration {
        let started = Instant::now();
        let pid = self.pid();
        let mut before = cpu_ticks(&pid);
        while started.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = cpu_ticks(&pid);
            // Clock ticks are 10 ms here (USER_HZ 100).
            if now.saturating_sub(before) <= 2 {
                break;
            }
            before = now;
        }
        started.elapsed()
    }

    fn pid(&self) -> String {
        match self {
            Provider::InProcess(..) => "self".to_string(),
            Provider::Binary(child) => child.id().to_string(),
        }
    }
}

/// How to start a provider.
enum Launcher {
    InProcess {
        client: Client,
        tls: provider::announce::driver::ClientTls,
    },
    Binary {
        kubeconfig: std::path::PathBuf,
        tls_flags: Vec<String>,
    },
}

impl Launcher {
    fn start(&self) -> Provider {
        match self {
            Launcher::InProcess { client, tls } => {
                let concurrency = write_concurrency();
                let args = Args::try_parse_from([
                    "ferrolb-provider",
                    "--leader-elect=false",
                    "--initialize-nodes=false",
                    "--announcers=cluster",
                    &concurrency,
                ])
                .expect("flags");
                let metrics = Arc::new(Metrics::default());
                let mut ctx = controller::Context::from_args(
                    client.clone(),
                    &args,
                    metrics.clone(),
                    Arc::new(Health::default()),
                );
                let (tls_tx, tls_rx) = tokio::sync::watch::channel(Some(Arc::new(tls.clone())));
                if let Some(cluster) = ctx.cluster.as_mut() {
                    cluster.tls = tls_rx;
                }
                let task = tokio::spawn(async move {
                    let _keep_tls = tls_tx;
                    controller::run(ctx, &args).await
                });
                Provider::InProcess(task, metrics)
            }
            Launcher::Binary {
                kubeconfig,
                tls_flags,
            } => Provider::Binary(
                process::wrapped_provider()
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args([
                        "--leader-elect=false",
                        "--initialize-nodes=false",
                        "--announcers=cluster",
                        "--metrics-addr=127.0.0.1:0",
                        &write_concurrency(),
                    ])
                    .args(tls_flags)
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("provider binary starts"),
            ),
        }
    }
}

/// Whether the built binary can read the announcers' TLS material from files.
fn binary_takes_tls_files() -> bool {
    Command::new(env!("CARGO_BIN_EXE_ferrolb-provider"))
        .arg("--help")
        .output()
        .is_ok_and(|out| {
            let help = String::from_utf8_lossy(&out.stdout);
            [
                "--announcer-tls",
                "--announcer-client-cert",
                "--announcer-ca",
            ]
            .iter()
            .all(|flag| help.contains(flag))
        })
}

/// Writes the provider's client certificate, key and the CA; returns the flags naming them.
fn tls_files(dir: &Path, pki: &Pki) -> Vec<String> {
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.display().to_string()
    };
    vec![
        "--announcer-tls=files".into(),
        "--announcer-client-cert".into(),
        write("client.pem", &pki.client_cert),
        "--announcer-client-key".into(),
        write("client-key.pem", &pki.client_key),
        "--announcer-ca".into(),
        write("ca.pem", &pki.ca),
    ]
}

/// Creates the Services in a burst; returns when each create was sent.
async fn burst_create(client: &Client, names: &[String]) -> HashMap<String, Instant> {
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    futures::stream::iter(names.iter().cloned())
        .for_each_concurrent(CREATE_CONCURRENCY, |name| {
            let api = api.clone();
            let created = created.clone();
            async move {
                lock(&created).insert(name.clone(), Instant::now());
                api.create(&PostParams::default(), &service(&name))
                    .await
                    .expect("create");
            }
        })
        .await;
    lock(&created).clone()
}

/// Milliseconds from each create to `seen`, sorted.
fn latencies(
    names: &[String],
    created: &HashMap<String, Instant>,
    seen: &HashMap<String, Instant>,
) -> Vec<f64> {
    let mut ms: Vec<f64> = names
        .iter()
        .filter_map(|n| {
            let d = seen.get(n)?.saturating_duration_since(*created.get(n)?);
            Some(d.as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Resolves to the time after `since` when the announcers together hold every address.
fn spawn_held_watch(
    announcers: &[FakeAnnouncer],
    since: Instant,
) -> tokio::task::JoinHandle<Duration> {
    let states: Vec<_> = announcers.iter().map(|a| a.state.clone()).collect();
    tokio::spawn(async move {
        loop {
            let held: usize = states.iter().map(|s| lock(s).set.len()).sum();
            if held >= SERVICES {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::main]
async fn main() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    // One election: each layer2 address goes to its three candidates, one answers.
    let election = announcer::Election::default();
    let mut announcers = Vec::with_capacity(NODES);
    for _ in 0..NODES {
        announcers.push(FakeAnnouncer::start_in(&pki, &election).await);
    }
    cluster(&client, &announcers).await;
    set_pool(&client).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let in_process = std::env::args().any(|a| a == "--in-process") || !binary_takes_tls_files();
    let _serving;
    let launcher = if in_process {
        _serving = None;
        Launcher::InProcess {
            client: client.clone(),
            tls: pki.client(),
        }
    } else {
        let (address, serving) = server.serve_http(0).await.expect("HTTP front door");
        _serving = Some(serving);
        let kubeconfig = dir.path().join("kubeconfig");
        TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
        Launcher::Binary {
            kubeconfig,
            tls_flags: tls_files(dir.path(), &pki),
        }
    };
    eprintln!(
        "  (provider {})",
        if in_process {
            "in-process"
        } else {
            "binary over HTTP"
        }
    );

    // First Sync: a provider with no Services reaches every announcer.
    let seen = Observed::default();
    let observer = spawn_observer(client.clone(), seen.clone());
    let started = Instant::now();
    let provider = launcher.start();
    wait_synced(&announcers, &[0; NODES], "every announcer's first Sync").await;
    let first_sync_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = provider.rss_mb();

    // The burst.
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i}")).collect();
    let syncs_before_burst: usize = sync_counts(&announcers).iter().sum();
    let burst = Instant::now();
    let held = spawn_held_watch(&announcers, burst);
    let updates_before = seen.updates.load(std::sync::atomic::Ordering::Relaxed);
    let created = burst_create(&client, &names).await;
    let created_in = burst.elapsed();
    let deadline = Instant::now() + burst_deadline();
    while lock(&seen.announced).len() < SERVICES {
        if Instant::now() >= deadline {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !lock(&seen.announced).contains_key(*n))
                .cloned()
                .collect();
            describe_stuck(&client, &announcers, &missing).await;
            panic!(
                "only {} of {SERVICES} Services were announced within {:?}",
                lock(&seen.announced).len(),
                burst_deadline()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_announced_ms = burst.elapsed().as_secs_f64() * 1000.0;
    observer.abort();
    let announced = latencies(&names, &created, &lock(&seen.announced));
    let annotated = latencies(&names, &created, &lock(&seen.annotated));
    let updates = seen.updates.load(std::sync::atomic::Ordering::Relaxed) - updates_before;
    let errors = provider.write_errors();
    eprintln!(
        "  ({updates} Service watch events during the burst (creates and successful writes), {:.1} per Service; {errors})",
        updates as f64 / SERVICES as f64
    );
    let syncs_in_burst = sync_counts(&announcers).iter().sum::<usize>() - syncs_before_burst;
    eprintln!(
        "  (creates took {:.2} s; annotated p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms after its create; \
         announcers held all {SERVICES} addresses after {:.0} ms; {syncs_in_burst} Syncs accepted \
         during the burst, {:.1} per announcer)",
        created_in.as_secs_f64(),
        percentile(&annotated, 0.5),
        percentile(&annotated, 0.99),
        percentile(&annotated, 1.0),
        held.await.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        syncs_in_burst as f64 / NODES as f64,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (burst_rss, alone) = provider.rss_mb();
    let settled_in = provider.settle().await;
    let (rss, _) = provider.rss_mb();
    let (anon, file) = provider.rss_split_mb();
    let peak_rss = status_mb(&provider.pid(), "VmHWM:");
    eprintln!(
        "  (resident set: {idle_rss:.1} MiB connected to every announcer with no Services; \
         {burst_rss:.1} MiB 0.5 s after the last Service was announced; {rss:.1} MiB once idle \
         ({:.1} s later): {anon:.1} MiB heap and stacks, {file:.1} MiB mapped files; peak {peak_rss:.1} MiB)",
        settled_in.as_secs_f64()
    );

    // Restart: a later epoch re-sends every set, which should change nothing.
    let before = sync_counts(&announcers);
    provider.stop();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let restarted = Instant::now();
    let provider = launcher.start();
    wait_synced(&announcers, &before, "every announcer re-synced").await;
    let resync_ms = restarted.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let changes: usize = announcers
        .iter()
        .zip(&before)
        .flat_map(|(a, b)| lock(&a.state).syncs[*b..].to_vec())
        .map(|s| s.added + s.removed)
        .sum();
    let (restarted_rss, _) = provider.rss_mb();
    eprintln!(
        "  (resident set after the restart, 1 s after every announcer re-synced: {restarted_rss:.1} MiB)"
    );
    provider.stop();

    let rss_field = if alone { "rss_mb" } else { "bench_rss_mb" };
    println!(
        "announce {SERVICES} nodes={NODES} first_sync_ms={first_sync_ms:.1} create_to_announced_p50_ms={:.1} create_to_announced_p99_ms={:.1} all_announced_ms={all_announced_ms:.0} resync_ms={resync_ms:.1} resync_changes_after_restart={changes} {rss_field}={rss:.1} rss_after_burst_mb={burst_rss:.1} peak_rss_mb={peak_rss:.1}",
        percentile(&announced, 0.5),
        percentile(&announced, 0.99),
    );
}
