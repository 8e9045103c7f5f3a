//! The writer: applies the index's [`ServiceWrite`]s to the API server.
//!
//! ```text
//!   index task ──Job──▶ pending (latest per Service, events merged) ──▶ ≤ N patches in flight
//!                                         ▲                                  │ 409/422/5xx
//!                                         └──── index ◀── Reread(GET) ◀──────┘
//! ```
//!
//! Every patch starts with a JSON Patch `test` of the resourceVersion the index computed it
//! from, so a Service changed meanwhile is never overwritten: the API server refuses, we GET
//! the current object and hand it back to the index, which recomputes. Writes happen only
//! while the Lease claim is current (checked right before each request); when it lapses the
//! pending writes are dropped — the next term re-reads everything anyway.
//! A re-read reaches the index after watch events it may be older than; the index takes it
//! only while it still holds the version the failed write was computed from (older ones
//! would undo the watch, see [`crate::index::Index::apply_reread`]).
//! One Service is never written by two requests at once, so its patches apply in order.
//! A write that waited while another write of the same Service succeeded, and was computed
//! from the same resourceVersion, is bound to be refused: its patches are dropped (its Events
//! are kept), since the index recomputes the Service from the watch event of the successful
//! write anyway. This saves a 409, a GET and a second patch per such write (cluster mode
//! asks for the Announced condition while the allocation write is in flight).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        core::v1::{ObjectReference, Service},
        events::v1::Event as K8sEvent,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{Api, Client};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::Instant,
};

use crate::{
    error::{Error, Result},
    index::ServiceWrite,
    ipam::ServiceKey,
    lean,
    lease::Claim,
    metrics::Metrics,
    patch::test_resource_version,
};

/// Longest time one Service write (metadata + status patch) may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A write plus the moment the index asked for it.
#[derive(Debug)]
pub struct Job {
    /// What to write.
    pub write: ServiceWrite,
    /// When the triggering watch event was processed (allocation latency starts here).
    pub observed: Instant,
}

/// A Service read back after a failed write, for the index to recompute.
///
/// Each names the resourceVersion the failed write was computed from: the re-read and the
/// Service watch reach the index as separate streams, so the index takes a re-read only
/// while it still holds that version (see [`crate::index::Index::apply_reread`]).
#[derive(Debug)]
pub enum Reread {
    /// The current object.
    Found {
        /// The resourceVersion the failed write was computed from.
        failed: String,
        /// The object read.
        service: Box<Service>,
    },
    /// The Service no longer exists.
    Gone {
        /// The resourceVersion the failed write was computed from.
        failed: String,
        /// The Service.
        key: ServiceKey,
    },
}

/// Everything the writer needs.
#[derive(Clone)]
pub struct Writer {
    /// API client.
    pub client: Client,
    /// Where Events go (published by [`publish_events`], so slow Event writes never hold up
    /// the address writes).
    pub events: mpsc::UnboundedSender<EventBatch>,
    /// Our right to write.
    pub claims: watch::Receiver<Claim>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where re-read Services go (back to the index task).
    pub rereads: mpsc::UnboundedSender<Reread>,
    /// Writes in flight at once.
    pub concurrency: usize,
}

/// Capacity an idle writer keeps in each of its tables.
const IDLE_CAPACITY: usize = 64;

/// Shrinks the writer's (empty) tables back to [`IDLE_CAPACITY`].
fn release_idle_capacity(
    pending: &mut HashMap<ServiceKey, Job>,
    queue: &mut VecDeque<ServiceKey>,
    queued: &mut HashSet<ServiceKey>,
    in_flight: &mut HashSet<ServiceKey>,
) {
    if pending.capacity() > IDLE_CAPACITY {
        pending.shrink_to(IDLE_CAPACITY);
    }
    if queue.capacity() > IDLE_CAPACITY {
        queue.shrink_to(IDLE_CAPACITY);
    }
    if queued.capacity() > IDLE_CAPACITY {
        queued.shrink_to(IDLE_CAPACITY);
    }
    if in_flight.capacity() > IDLE_CAPACITY {
        in_flight.shrink_to(IDLE_CAPACITY);
    }
}

fn merge(older: Job, newer: Job) -> Job {
    Job {
        write: older.write.absorb(newer.write),
        observed: older.observed.min(newer.observed),
    }
}

impl Writer {
    /// Runs until the job channel closes.
    pub async fn run(self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        let mut pending: HashMap<ServiceKey, Job> = HashMap::new();
        let mut queue: VecDeque<ServiceKey> = VecDeque::new();
        let mut queued: HashSet<ServiceKey> = HashSet::new();
        let mut in_flight: HashSet<ServiceKey> = HashSet::new();
        // Each task returns the Service and, when its write succeeded, the resourceVersion the
        // write was computed from.
        let mut tasks: JoinSet<(ServiceKey, Option<String>)> = JoinSet::new();
        let mut open = true;
        loop {
            while tasks.len() < self.concurrency {
                let Some(key) = queue.pop_front() else { break };
                queued.remove(&key);
                let Some(job) = pending.remove(&key) else {
                    continue;
                };
                in_flight.insert(key.clone());
                let writer = self.clone();
                tasks.spawn(async move {
                    let written = writer.apply(job).await;
                    (key, written)
                });
            }
            if !open && tasks.is_empty() && queue.is_empty() {
                return;
            }
            if tasks.is_empty() && pending.is_empty() {
                // A burst of thousands of writes grew these tables; an idle writer should
                // not keep them (the pending table alone held 3 MiB after 10,000 creates).
                release_idle_capacity(&mut pending, &mut queue, &mut queued, &mut in_flight);
            }
            tokio::select! {
                job = jobs.recv(), if open => {
                    let Some(job) = job else { open = false; continue };
                    let key = job.write.key.clone();
                    let job = match pending.remove(&key) {
                        Some(older) => merge(older, job),
                        None => job,
                    };
                    pending.insert(key.clone(), job);
                    if !in_flight.contains(&key) && queued.insert(key.clone()) {
                        queue.push_back(key);
                    }
                }
                Some(done) = tasks.join_next() => {
                    if let Ok((key, written)) = done {
                        in_flight.remove(&key);
                        let stale = written.is_some_and(|rv| {
                            pending.get(&key).is_some_and(|p| p.write.resource_version == rv)
                        });
                        if stale && let Some(job) = pending.remove(&key) {
                            self.publish(job.write);
                        }
                        if pending.contains_key(&key) && queued.insert(key.clone()) {
                            queue.push_back(key);
                        }
                    }
                }
            }
        }
    }

    /// Applies one job; failures end in a re-read handed back to the index. Returns the
    /// resourceVersion the write was computed from when it succeeded.
    async fn apply(&self, job: Job) -> Option<String> {
        let key = job.write.key.clone();
        let action = format!("patch Service {}/{}", key.namespace, key.name);
        // A hung request must not hold a write slot forever; the re-read below recovers.
        let attempt = tokio::time::timeout(WRITE_TIMEOUT, self.patch(&job.write, &action));
        let result = attempt.await.unwrap_or_else(|_| {
            Err(Error::Timeout {
                action: action.clone(),
            })
        });
        let written = match result {
            Ok(()) => {
                if job.write.allocates {
                    self.metrics
                        .allocation_latency
                        .observe(job.observed.elapsed().as_secs_f64());
                }
                // Only a write that changed the object makes a queued one stale.
                let changed = !job.write.main.is_empty() || !job.write.status.is_empty();
                changed.then(|| job.write.resource_version.clone())
            }
            Err(Error::NotLeader { .. }) => return None,
            Err(error) => {
                self.metrics.reconcile_error(error.metric_label());
                if !matches!(error, Error::Conflict { .. }) {
                    tracing::warn!(%error, "write failed; re-reading the Service");
                    // Server trouble: do not hammer it.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                self.reread(&key, &job.write.resource_version).await;
                None
            }
        };
        self.publish(job.write);
        written
    }

    /// Hands a write's Events to the publisher.
    fn publish(&self, write: ServiceWrite) {
        if !write.events.is_empty() && self.claims.borrow().is_current() {
            // The publisher may be gone (term ended); then the Events are moot.
            let _ = self.events.send(EventBatch {
                kind: "Service",
                key: write.key,
                uid: write.uid,
                notes: write.events,
            });
        }
    }

    fn ensure_leading(&self, action: &str) -> Result<()> {
        if self.claims.borrow().is_current() {
            Ok(())
        } else {
            Err(Error::NotLeader {
                action: action.to_string(),
            })
        }
    }

    async fn patch(&self, write: &ServiceWrite, action: &str) -> Result<()> {
        let (namespace, name) = (&write.key.namespace, &write.key.name);
        let mut resource_version = write.resource_version.clone();
        if !write.main.is_empty() {
            self.ensure_leading(action)?;
            let mut ops = vec![test_resource_version(&resource_version)];
            ops.extend(write.main.operations());
            resource_version = lean::patch_service(&self.client, namespace, name, false, ops)
                .await
                .map_err(|source| Error::from_kube(action, source))?;
        }
        if !write.status.is_empty() {
            self.ensure_leading(action)?;
            let mut ops = vec![test_resource_version(&resource_version)];
            ops.extend(write.status.operations());
            lean::patch_service(&self.client, namespace, name, true, ops)
                .await
                .map_err(|source| Error::from_kube(format!("{action} status"), source))?;
        }
        Ok(())
    }

    async fn reread(&self, key: &ServiceKey, failed: &str) {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        // Two tries; after that the watch (which relists on errors) brings the Service.
        for attempt in 0..2 {
            let reread = match api.get_opt(&key.name).await {
                Ok(Some(service)) => Reread::Found {
                    failed: failed.to_string(),
                    service: Box::new(service),
                },
                Ok(None) => Reread::Gone {
                    failed: failed.to_string(),
                    key: key.clone(),
                },
                Err(source) => {
                    if attempt == 0 {
                        let error = Error::from_kube(
                            format!("get Service {}/{}", key.namespace, key.name),
                            source,
                        );
                        self.metrics.reconcile_error(error.metric_label());
                        tracing::warn!(%error, "re-read failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    continue;
                }
            };
            // The index task may be gone (term ended); then nobody needs the answer.
            let _ = self.rereads.send(reread);
            return;
        }
    }
}

/// Events for one object: a Service, or the pool ConfigMap.
#[derive(Debug)]
pub struct EventBatch {
    /// `Service` or `ConfigMap` (the kind of `regarding`).
    pub kind: &'static str,
    /// The object's namespace and name.
    pub key: ServiceKey,
    /// Its uid.
    pub uid: Option<String>,
    /// What to publish.
    pub notes: Vec<crate::outcome::EventNote>,
}

/// Who publishes the Events.
#[derive(Clone, Debug)]
pub struct EventSource {
    /// reportingController.
    pub controller: String,
    /// reportingInstance (the Lease identity).
    pub instance: String,
}

/// Builds one `events.k8s.io/v1` Event about a Service (or the pool ConfigMap).
///
/// Why not kube-runtime's `Recorder`: it caches every Event it sent for six minutes to turn
/// repeats into series, which at 10,000 Services costs tens of MiB. The index already emits
/// an Event only when a Service's outcome changes, so there are no repeats to fold.
pub fn build_event(
    source: &EventSource,
    batch: &EventBatch,
    note: &crate::outcome::EventNote,
) -> K8sEvent {
    let now = Timestamp::now();
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", batch.key.name, now.as_nanosecond())),
            namespace: Some(batch.key.namespace.to_string()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.to_string()),
        reason: Some(note.reason.to_string()),
        note: Some(note.note.clone()),
        action: Some("Allocate".to_string()),
        reporting_controller: Some(source.controller.clone()),
        reporting_instance: Some(source.instance.clone()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some(batch.kind.into()),
            namespace: Some(batch.key.namespace.to_string()),
            name: Some(batch.key.name.to_string()),
            uid: batch.uid.clone(),
            ..ObjectReference::default()
        }),
        ..K8sEvent::default()
    }
}

/// Publishes Event batches with up to `concurrency` in flight, while the claim is current.
pub async fn publish_events(
    client: Client,
    source: EventSource,
    batches: mpsc::UnboundedReceiver<EventBatch>,
    claims: watch::Receiver<Claim>,
    metrics: Arc<Metrics>,
    concurrency: usize,
) {
    crate::stream::stream_of(batches)
        .for_each_concurrent(concurrency, |batch| {
            let client = client.clone();
            let claims = claims.clone();
            let metrics = metrics.clone();
            let source = source.clone();
            async move {
                for note in &batch.notes {
                    if !claims.borrow().is_current() {
                        return;
                    }
                    let event = build_event(&source, &batch, note);
                    if let Err(source) =
                        lean::create_event(&client, &batch.key.namespace, &event).await
                    {
                        let error = Error::from_kube("publish Event", source);
                        metrics.reconcile_error(error.metric_label());
                        tracing::debug!(%error, "could not publish Event");
                    }
                }
            }
        })
        .await;
}
