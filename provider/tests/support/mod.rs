//! Shared helpers of the provider's integration tests: an in-process test API server, the
//! real controller running against it, object builders and polling assertions.
#![allow(dead_code)] // each test binary uses a different subset

pub mod announcer;

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use clap::Parser;
use k8s_openapi::{
    api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use provider::{args::Args, controller, http::Health, metrics::Metrics};
use test_apiserver::TestApiServer;
use tokio::task::JoinHandle;

/// How long a convergence may take before a test fails.
pub const CONVERGE: Duration = Duration::from_secs(20);

/// A controller task; aborted on drop so a failing test stops it.
pub struct Running {
    pub task: JoinHandle<()>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the real controller against `server` with extra flags.
pub fn start(server: &TestApiServer, flags: &[&str]) -> Running {
    start_full(server, flags, None, |_| {})
}

/// Same, with a change to the context the flags give (for settings without a flag yet).
pub fn start_with(
    server: &TestApiServer,
    flags: &[&str],
    adjust: impl FnOnce(&mut controller::Context),
) -> Running {
    start_full(server, flags, None, adjust)
}

/// Starts the real controller; in cluster mode (`--announcers=cluster`) it uses `tls` to
/// reach announcers.
pub fn start_with_tls(
    server: &TestApiServer,
    flags: &[&str],
    tls: Option<provider::announce::driver::ClientTls>,
) -> Running {
    start_full(server, flags, tls, |_| {})
}

fn start_full(
    server: &TestApiServer,
    flags: &[&str],
    tls: Option<provider::announce::driver::ClientTls>,
    adjust: impl FnOnce(&mut controller::Context),
) -> Running {
    let mut argv = vec!["ferrolb-provider"];
    for default in [
        "--leader-elect=false",
        "--initialize-nodes=false",
        "--announcers=none",
    ] {
        let name = default.split('=').next().unwrap_or_default();
        if !flags.iter().any(|f| f.starts_with(name)) {
            argv.push(default);
        }
    }
    argv.extend_from_slice(flags);
    let args = Args::try_parse_from(argv).expect("test flags parse");
    // Controller logs on demand: RUST_LOG=warn cargo test -p provider -- --nocapture
    if std::env::var_os("RUST_LOG").is_some() {
        provider::telemetry::init(args.log_format);
    }
    args.validate().expect("test flags are consistent");
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let mut ctx =
        controller::Context::from_args(server.client(), &args, metrics.clone(), health.clone());
    adjust(&mut ctx);
    let (tls_tx, tls_rx) = tokio::sync::watch::channel(tls.map(Arc::new));
    if let Some(cluster) = ctx.cluster.as_mut() {
        cluster.tls = tls_rx;
    }
    let task = tokio::spawn(async move {
        let _keep_tls = tls_tx;
        controller::run(ctx, &args).await
    });
    Running {
        task,
        metrics,
        health,
    }
}

/// Creates or replaces the pool ConfigMap kube-system/kubevip.
pub async fn set_pools(client: &Client, entries: &[(&str, &str)]) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let data: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubevip".into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    match api.get_opt("kubevip").await.expect("get ConfigMap") {
        Some(_) => {
            api.patch(
                "kubevip",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": null})),
            )
            .await
            .expect("clear ConfigMap");
            api.patch("kubevip", &PatchParams::default(), &Patch::Merge(&cm))
                .await
                .expect("patch ConfigMap");
        }
        None => {
            api.create(&PostParams::default(), &cm)
                .await
                .expect("create ConfigMap");
        }
    }
}

/// A LoadBalancer Service with TCP port 80.
pub fn lb(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![port("TCP", 80)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Service port.
pub fn port(protocol: &str, number: i32) -> ServicePort {
    ServicePort {
        port: number,
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

/// Changes the spec of a Service builder.
pub fn with_spec(mut svc: Service, change: impl FnOnce(&mut ServiceSpec)) -> Service {
    if let Some(spec) = svc.spec.as_mut() {
        change(spec);
    }
    svc
}

/// Adds an annotation to a Service builder.
pub fn with_annotation(mut svc: Service, key: &str, value: &str) -> Service {
    svc.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
    svc
}

/// Creates `svc` in `namespace`.
pub async fn create(client: &Client, namespace: &str, svc: &Service) -> Service {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), svc)
        .await
        .expect("create Service")
}

/// Merge-patches a Service (as `kubectl patch --type merge` would).
pub async fn merge(client: &Client, namespace: &str, name: &str, patch: serde_json::Value) {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch Service");
}

/// Deletes a Service (with finalizers this only marks it).
pub async fn delete(client: &Client, namespace: &str, name: &str) {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete Service");
}

/// Reads a Service.
pub async fn get(client: &Client, namespace: &str, name: &str) -> Option<Service> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.expect("get Service")
}

/// The `kube-vip.io/loadbalancerIPs` annotation of a Service.
pub fn ips(svc: &Service) -> Option<String> {
    svc.metadata
        .annotations
        .as_ref()?
        .get("kube-vip.io/loadbalancerIPs")
        .cloned()
}

/// A Service holding an address: (namespace/name, its (protocol, port) list).
type Holder = (String, Vec<(String, i32)>);

/// The `ferrolb.io/allocated` annotation (what the controller allocated).
pub fn allocated(svc: &Service) -> Option<String> {
    svc.metadata
        .annotations
        .as_ref()?
        .get("ferrolb.io/allocated")
        .cloned()
}

/// Creates a Namespace.
pub async fn create_namespace(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create Namespace");
}

/// Our condition as (status, reason, message).
pub fn condition(svc: &Service) -> Option<(String, String, String)> {
    let c = svc
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/AddressAllocated")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Polls `check` until it returns `Some`, failing the test with `what` after [`CONVERGE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until Service `namespace/name` satisfies `predicate` and returns it.
pub async fn wait_service(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    predicate: impl Fn(&Service) -> bool,
) -> Service {
    eventually(&format!("{namespace}/{name}: {what}"), || async {
        get(client, namespace, name).await.filter(|s| predicate(s))
    })
    .await
}

/// Waits until the Service carries an allocation and returns the annotation.
pub async fn wait_allocated(client: &Client, namespace: &str, name: &str) -> String {
    let svc = wait_service(
        client,
        namespace,
        name,
        "annotated and condition True",
        |s| ips(s).is_some() && condition(s).is_some_and(|c| c.0 == "True"),
    )
    .await;
    ips(&svc).unwrap_or_default()
}

/// Every address the controller allocated (`ferrolb.io/allocated`), with its holders; panics
/// on a duplicate that is not a permitted share (holders must have disjoint (protocol, port)
/// sets). A user's own unsatisfied request in `kube-vip.io/loadbalancerIPs` is not an
/// allocation and is not counted.
pub async fn assert_no_duplicates(client: &Client) {
    let api: Api<Service> = Api::all(client.clone());
    let services = api.list(&Default::default()).await.expect("list Services");
    let mut holders: BTreeMap<String, Vec<Holder>> = BTreeMap::new();
    for svc in &services.items {
        let Some(list) = allocated(svc) else { continue };
        let ports: Vec<(String, i32)> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|p| {
                p.iter()
                    .map(|p| (p.protocol.clone().unwrap_or_default(), p.port))
                    .collect()
            })
            .unwrap_or_default();
        let name = format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            svc.metadata.name.as_deref().unwrap_or_default()
        );
        for ip in list.split(',').filter(|s| !s.is_empty() && *s != "0.0.0.0") {
            holders
                .entry(ip.to_string())
                .or_default()
                .push((name.clone(), ports.clone()));
        }
    }
    for (ip, owners) in holders {
        for (i, (a, pa)) in owners.iter().enumerate() {
            for (b, pb) in owners.iter().skip(i + 1) {
                let overlap = pa.iter().any(|p| pb.contains(p)) || pa.is_empty() || pb.is_empty();
                assert!(
                    !overlap,
                    "{ip} is held by both {a} and {b} with overlapping ports"
                );
            }
        }
    }
}

/// The Events (events.k8s.io/v1) stored for Service `name`, as (reason, note).
pub fn events_for(server: &TestApiServer, name: &str) -> Vec<(String, String)> {
    server
        .objects("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name)
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
