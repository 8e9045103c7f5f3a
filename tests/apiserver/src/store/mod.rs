//! The pure store core: objects of every resource type, one cluster-wide
//! `resourceVersion` counter, a bounded event log and the live event fan-out.
//!
//! ```text
//!  write (create/update/patch/delete) ──► State { objects, revision, log }
//!                                              │ every committed change becomes a StoreEvent
//!                                              ├──► log (bounded; watch resume replays it)
//!                                              └──► broadcast ──► each open watch filters it
//! ```
//!
//! Everything happens under one mutex so that "read the log, then subscribe"
//! cannot miss or duplicate an event. There is no HTTP in here: the router
//! turns requests into these calls, and tests may call them directly.

mod delete;
mod write;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::meta::IdSource;
use crate::resources::{Registry, ResourceKey, ResourceType};
use crate::selector::Selectors;

pub use write::{DeletePreconditions, PatchRequest, WriteMode};

/// Events kept for watch resumption unless configured otherwise.
pub const DEFAULT_EVENT_LOG_CAPACITY: usize = 10_000;
/// Events a slow watcher may fall behind, unless configured otherwise, before
/// it is closed with 410 Gone.
pub const DEFAULT_WATCH_LAG_LIMIT: usize = 65_536;

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct StoreEvent {
    pub revision: u64,
    pub resource: ResourceKey,
    pub namespace: String,
    pub event_type: EventType,
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can turn a change that
    /// leaves the selection into DELETED (and one that enters it into ADDED).
    pub previous: Option<Arc<Value>>,
    /// The watch line, serialized once on first use and shared by all watchers.
    line: OnceLock<Bytes>,
}

impl StoreEvent {
    fn new(
        revision: u64,
        resource: ResourceKey,
        event_type: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) -> Self {
        StoreEvent {
            revision,
            namespace: crate::meta::namespace(&object).to_owned(),
            resource,
            event_type,
            object,
            previous,
            line: OnceLock::new(),
        }
    }

    /// `{"type":"ADDED","object":{...}}\n`
    pub fn line(&self) -> Bytes {
        self.line
            .get_or_init(|| watch_line(self.event_type.as_str(), &self.object))
            .clone()
    }
}

/// Serializes one newline-terminated watch event.
pub fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(event_type.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buf, object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

/// One page of a LIST.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Paging and filtering of a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub selectors: Selectors,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// What a new watch starts with: events to send first, then the live feed.
#[derive(Debug)]
pub struct WatchStart {
    pub replay: Vec<Arc<StoreEvent>>,
    pub live: broadcast::Receiver<Arc<StoreEvent>>,
    pub revision: u64,
}

pub(crate) struct State {
    pub(crate) registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<(String, String), Arc<Value>>>,
    revision: u64,
    log: VecDeque<Arc<StoreEvent>>,
    log_capacity: usize,
    /// A watch may resume from revision N only if N >= this (all later events are in the log).
    oldest_resumable: u64,
    ids: IdSource,
    /// Service cluster IPs and node ports in use.
    allocations: crate::defaults::Allocations,
}

/// The shared object store. Cheap to share behind an `Arc`.
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<StoreEvent>>,
    /// Bumped by [`Store::drop_watches`]; every open watch ends when it changes.
    watch_epoch: watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.revision())
            .finish()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_LOG_CAPACITY)
    }
}

impl Store {
    /// An empty store with the standard namespaces (`default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`).
    pub fn new(log_capacity: usize) -> Self {
        Self::with_watch_lag_limit(log_capacity, DEFAULT_WATCH_LAG_LIMIT)
    }

    /// Like [`Store::new`], choosing how many events a watcher may fall behind.
    pub fn with_watch_lag_limit(log_capacity: usize, watch_lag_limit: usize) -> Self {
        let (events, _) = broadcast::channel(watch_lag_limit.max(1));
        let store = Store {
            state: Mutex::new(State {
                registry: Registry::builtin(),
                objects: HashMap::new(),
                revision: 0,
                log: VecDeque::new(),
                log_capacity: log_capacity.max(1),
                oldest_resumable: 0,
                ids: IdSource::default(),
                allocations: crate::defaults::Allocations::default(),
            }),
            events,
            watch_epoch: watch::channel(0).0,
        };
        if let Some(rt) = store.resource_type("", "v1", "namespaces") {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                // Creating a fresh, valid namespace in an empty store cannot fail.
                let _ = store.create(&rt, None, obj, false);
            }
        }
        store
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current cluster-wide resourceVersion.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// Looks up a served resource type.
    pub fn resource_type(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.lock().registry.get(group, version, plural)
    }

    /// Looks up the type of an object by `apiVersion` and `kind`.
    pub fn resource_type_of(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.lock().registry.by_kind(api_version, kind)
    }

    /// A copy of the registry (for discovery and OpenAPI).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.lock().get(rt, namespace.unwrap_or(""), name)
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        self.lock().list(rt, namespace, opts)
    }

    /// Starts a watch: with `from` = None or 0, replays the current objects as
    /// ADDED; with `from` = N, replays logged events after N, or fails with 410
    /// when the log no longer reaches back to N.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let state = self.lock();
        let live = self.events.subscribe();
        let key = rt.storage_key();
        let replay = match from {
            None | Some(0) => state
                .objects
                .get(&key)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|o| namespace.is_none_or(|ns| crate::meta::namespace(o) == ns))
                .map(|o| {
                    let revision = crate::meta::resource_version(o).parse().unwrap_or(0);
                    Arc::new(StoreEvent::new(
                        revision,
                        key.clone(),
                        EventType::Added,
                        o.clone(),
                        None,
                    ))
                })
                .collect(),
            Some(n) => {
                if n < state.oldest_resumable {
                    return Err(too_old(n, state.oldest_resumable));
                }
                state
                    .log
                    .iter()
                    .filter(|e| e.revision > n && e.resource == key)
                    .filter(|e| namespace.is_none_or(|ns| e.namespace == ns))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart {
            replay,
            live,
            revision: state.revision,
        })
    }

    /// A receiver that changes whenever [`Store::drop_watches`] is called.
    pub fn watch_epoch(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    /// Ends every open watch stream (clients see a clean end of stream and re-watch).
    pub fn drop_watches(&self) {
        self.watch_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Forgets the event log: any watch or continue token older than now gets
    /// 410 Gone. The revision moves on by one, like an etcd compaction, so a
    /// fresh LIST returns a version that can be watched again.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.revision += 1;
        state.log.clear();
        state.oldest_resumable = state.revision;
    }

    /// Changes how many events are kept for watch resumption.
    pub fn set_event_log_capacity(&self, capacity: usize) {
        let mut state = self.lock();
        state.log_capacity = capacity.max(1);
        state.trim_log();
    }

    /// Every stored object of one type, in (namespace, name) order.
    pub fn objects(&self, rt: &ResourceType) -> Vec<Arc<Value>> {
        self.lock()
            .objects
            .get(&rt.storage_key())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn too_old(requested: u64, oldest: u64) -> ApiError {
    ApiError::Expired(format!("too old resource version: {requested} ({oldest})"))
}

impl State {
    fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.objects
            .get(&rt.storage_key())
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| not_found(rt, name))
    }

    fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let (resource_version, after) = match &opts.continue_token {
            Some(token) => {
                let (rv, ns, name) = parse_continue(token)?;
                if rv < self.oldest_resumable {
                    return Err(ApiError::Expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         You can start a new list without the continue parameter."
                            .to_owned(),
                    ));
                }
                (rv, Some((ns, name)))
            }
            None => (self.revision, None),
        };
        let empty = BTreeMap::new();
        let objects = self.objects.get(&rt.storage_key()).unwrap_or(&empty);
        let range = match &after {
            Some(key) => objects.range::<(String, String), _>((
                std::ops::Bound::Excluded(key),
                std::ops::Bound::Unbounded,
            )),
            None => objects.range::<(String, String), _>(..),
        };
        let mut matching = range
            .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .filter(|(_, obj)| opts.selectors.matches(obj));
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last = None;
        for (key, obj) in matching.by_ref() {
            if items.len() == limit {
                // One more match exists: this page is full.
                let remaining = 1 + matching.count() as u64;
                let (ns, name): &(String, String) = last.unwrap_or(key);
                return Ok(ListPage {
                    items,
                    resource_version,
                    continue_token: Some(format!("{resource_version}:{ns}:{name}")),
                    remaining: Some(remaining),
                });
            }
            items.push(obj.clone());
            last = Some(key);
        }
        Ok(ListPage {
            items,
            resource_version,
            continue_token: None,
            remaining: None,
        })
    }

    /// Records a committed change: bumps nothing (the caller did), logs and fans out.
    fn record(&mut self, events: &broadcast::Sender<Arc<StoreEvent>>, event: StoreEvent) {
        let event = Arc::new(event);
        self.log.push_back(event.clone());
        self.trim_log();
        // No receivers is fine: nobody is watching.
        let _ = events.send(event.clone());
        if event.resource.group == "events.k8s.io" && event.resource.plural == "events" {
            self.mirror_event(events, &event);
        }
    }

    /// Copies an events.k8s.io/v1 Event change into core v1 (see [`crate::event_mirror`]).
    fn mirror_event(&mut self, events: &broadcast::Sender<Arc<StoreEvent>>, source: &StoreEvent) {
        let key = ResourceKey {
            group: String::new(),
            version: "v1".to_owned(),
            plural: "events".to_owned(),
        };
        let slot = (
            source.namespace.clone(),
            crate::meta::name(&source.object).to_owned(),
        );
        let previous = self.objects.get(&key).and_then(|m| m.get(&slot)).cloned();
        self.revision += 1;
        if source.event_type == EventType::Deleted {
            let Some(previous) = previous else {
                self.revision -= 1;
                return;
            };
            if let Some(m) = self.objects.get_mut(&key) {
                m.remove(&slot);
            }
            let mut gone = (*previous).clone();
            crate::meta::set(&mut gone, "resourceVersion", self.revision.to_string());
            let event = StoreEvent::new(
                self.revision,
                key,
                EventType::Deleted,
                Arc::new(gone),
                Some(previous),
            );
            self.record(events, event);
            return;
        }
        let mut core = crate::event_mirror::to_core(&source.object);
        crate::meta::set(&mut core, "resourceVersion", self.revision.to_string());
        let core = Arc::new(core);
        self.objects
            .entry(key.clone())
            .or_default()
            .insert(slot, core.clone());
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let event = StoreEvent::new(self.revision, key, event_type, core, previous);
        self.record(events, event);
    }

    fn trim_log(&mut self) {
        while self.log.len() > self.log_capacity {
            if let Some(old) = self.log.pop_front() {
                self.oldest_resumable = old.revision;
            }
        }
    }

    fn namespace_exists(&self, name: &str) -> bool {
        self.objects
            .get(&ResourceKey {
                group: String::new(),
                version: "v1".to_owned(),
                plural: "namespaces".to_owned(),
            })
            .is_some_and(|m| m.contains_key(&(String::new(), name.to_owned())))
    }
}

pub(crate) fn not_found(rt: &ResourceType, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: rt.qualified_plural(),
        name: name.to_owned(),
    }
}

fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "continue token `{token}` was not issued by this server"
        ))
    };
    let mut parts = token.splitn(3, ':');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_owned();
    let name = parts.next().ok_or_else(bad)?.to_owned();
    Ok((rv, ns, name))
}
