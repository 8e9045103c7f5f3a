//! An in-memory Kubernetes API server for tests, faithful enough for kube-rs
//! and kubectl: one store, two front doors.
//!
//! ```text
//!  kube::Client ──► ApiService (tower::Service, in-process) ─┐
//!  kubectl / provider binary ──► hyper on 127.0.0.1:PORT ────┴─► router ─► Store
//!                                                                  ▲   (objects, resourceVersion,
//!  test code ──► TestApiServer::{seed, object, faults, ...} ───────┘    event log, watch fan-out)
//! ```
//!
//! ```no_run
//! # async fn demo() {
//! use k8s_openapi::api::core::v1::ConfigMap;
//! let server = test_apiserver::TestApiServer::new();
//! let client = server.client(); // needs a tokio runtime
//! let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
//! # let _ = api;
//! # }
//! ```
//!
//! See `docs/test-apiserver.md` for what is implemented and the limits.
#![forbid(unsafe_code)]

pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod event_mirror;
pub mod hooks;
pub mod http;
pub mod jsonpath;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod representation;
pub mod resources;
pub mod route;
pub mod router;
pub mod scale;
pub mod schema;
pub mod selector;
pub mod service;
pub mod store;
pub mod table;
pub mod time;
pub mod watch;
pub mod workloads;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use hooks::{FaultRule, Faults, RequestLog, RequestRecord};
pub use router::Backend;
pub use service::ApiService;
pub use store::Store;

/// Tunables of a [`TestApiServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Events kept for watch resumption; older resourceVersions get 410 Gone.
    pub event_log_capacity: usize,
    /// How often idle watches that allow bookmarks receive one.
    pub bookmark_interval: Duration,
    /// How many events a watcher may fall behind before it gets 410 Gone.
    pub watch_lag_limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            event_log_capacity: store::DEFAULT_EVENT_LOG_CAPACITY,
            bookmark_interval: Duration::from_secs(1),
            watch_lag_limit: store::DEFAULT_WATCH_LAG_LIMIT,
        }
    }
}

/// A test API server: create one per test, get clients from it, inspect and
/// poke its state through the hooks.
#[derive(Debug, Clone)]
pub struct TestApiServer {
    backend: Arc<Backend>,
}

impl Default for TestApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApiServer {
    /// A server with the built-in kinds and the standard namespaces.
    pub fn new() -> Self {
        Self::with_options(ServerOptions::default())
    }

    pub fn with_options(options: ServerOptions) -> Self {
        let mut backend = Backend::new(Arc::new(Store::with_watch_lag_limit(
            options.event_log_capacity,
            options.watch_lag_limit,
        )));
        backend.bookmark_interval = options.bookmark_interval;
        TestApiServer {
            backend: Arc::new(backend),
        }
    }

    /// An in-process `kube::Client` (default namespace `default`). Must be
    /// called inside a tokio runtime (kube spawns its request buffer).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// The tower service behind [`TestApiServer::client`].
    pub fn service(&self) -> ApiService {
        ApiService::new(self.backend.clone())
    }

    /// Serves HTTP on `127.0.0.1:port` (0 = pick a free port). Abort the
    /// handle to stop accepting connections.
    pub async fn serve_http(&self, port: u16) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        http::serve(self.backend.clone(), port).await
    }

    /// Writes a kubeconfig pointing at a server address from [`TestApiServer::serve_http`].
    pub fn write_kubeconfig(path: &Path, address: SocketAddr) -> std::io::Result<()> {
        http::write_kubeconfig(path, address)
    }

    /// Direct access to the store.
    pub fn store(&self) -> &Store {
        &self.backend.store
    }

    /// Fault injection switches.
    pub fn faults(&self) -> &Faults {
        &self.backend.faults
    }

    /// The ordered log of handled requests.
    pub fn request_log(&self) -> &RequestLog {
        &self.backend.requests
    }

    /// Ends every open watch stream; clients see a clean end and re-watch.
    pub fn drop_watches(&self) {
        self.backend.store.drop_watches();
    }

    /// Forgets the event log, so the next watch from an older resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.backend.store.compact();
    }

    /// Creates an object (anything serializable with `apiVersion`, `kind` and
    /// `metadata`) as a POST would, and returns the stored form.
    pub fn seed(&self, object: impl serde::Serialize) -> Result<Value, ApiError> {
        let obj = serde_json::to_value(object)
            .map_err(|e| ApiError::BadRequest(format!("seed: cannot serialize: {e}")))?;
        let rt = self.type_of(&obj)?;
        let namespace = Some(meta::namespace(&obj).to_owned()).filter(|n| !n.is_empty());
        let namespace = if rt.namespaced {
            Some(namespace.unwrap_or_else(|| "default".to_owned()))
        } else {
            None
        };
        let created = self
            .backend
            .store
            .create(&rt, namespace.as_deref(), obj, false)?;
        Ok((*rt.present(created)).clone())
    }

    /// One stored object, if it exists.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let rt = self.backend.store.resource_type_of(api_version, kind)?;
        self.backend
            .store
            .get(&rt, namespace, name)
            .ok()
            .map(|o| (*rt.present(o)).clone())
    }

    /// All stored objects of one kind, ordered by namespace and name.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        match self.backend.store.resource_type_of(api_version, kind) {
            Some(rt) => self
                .backend
                .store
                .objects(&rt)
                .into_iter()
                .map(|o| (*rt.present(o)).clone())
                .collect(),
            None => Vec::new(),
        }
    }

    fn type_of(&self, obj: &Value) -> Result<Arc<resources::ResourceType>, ApiError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        self.backend
            .store
            .resource_type_of(api_version, kind)
            .ok_or_else(|| {
                ApiError::UnknownResource(format!(
                    "no served type has apiVersion `{api_version}` and kind `{kind}`"
                ))
            })
    }
}
