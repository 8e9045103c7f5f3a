//! WATCH responses: a task per watch that sends the replayed events, then
//! live events from the store's broadcast, as newline-delimited JSON with
//! `Content-Type: application/json` (what kube-rs and `kubectl get -w` expect).
//!
//! ```text
//! Store::watch(from) ─► replay ─┐
//! broadcast ────────────────────┴─► filter (resource, namespace, selectors) ─► mpsc ─► response body
//!         bookmarks (allowWatchBookmarks), timeoutSeconds, drop_watches and lag end the task
//! ```
//!
//! A watcher that falls more than the broadcast capacity behind gets an ERROR
//! event with 410 Gone, like a real apiserver whose watch cache moved on.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;
use crate::representation::Representation;
use crate::resources::{ResourceKey, ResourceType};
use crate::router::{Backend, Query, ResponseBody, parse_number};
use crate::selector::Selectors;
use crate::store::{EventType, StoreEvent, watch_line};

/// Which events one watch wants, and how to print them.
struct WatchFilter {
    resource: ResourceKey,
    namespace: Option<String>,
    selectors: Selectors,
    /// The shape the client asked for (Table for kubectl get -w, metadata only, ...).
    representation: Representation,
    resource_type: ResourceType,
}

impl WatchFilter {
    /// The line to send for `event`, if any. With selectors, a change that
    /// moves an object into the selection is ADDED and out of it DELETED.
    fn render(&self, event: &StoreEvent) -> Option<Bytes> {
        if event.resource != self.resource {
            return None;
        }
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != event.namespace)
        {
            return None;
        }
        let event_type = if self.selectors == Selectors::default() {
            event.event_type.as_str()
        } else {
            let now = self.selectors.matches(&event.object);
            let before = event
                .previous
                .as_deref()
                .is_some_and(|p| self.selectors.matches(p));
            match (event.event_type, before, now) {
                (EventType::Added, _, true) => "ADDED",
                (EventType::Deleted, b, n) if b || n => "DELETED",
                (EventType::Modified, true, true) => "MODIFIED",
                (EventType::Modified, false, true) => "ADDED",
                (EventType::Modified, true, false) => "DELETED",
                _ => return None,
            }
        };
        let rt = &self.resource_type;
        if rt.version != rt.storage_version {
            let presented = rt.present(event.object.clone());
            let shaped = self.representation.object(rt, &presented);
            return Some(watch_line(
                event_type,
                shaped.as_ref().unwrap_or(&presented),
            ));
        }
        if let Some(shaped) = self.representation.object(rt, &event.object) {
            return Some(watch_line(event_type, &shaped));
        }
        if event_type == event.event_type.as_str() {
            Some(event.line())
        } else {
            Some(watch_line(event_type, &event.object))
        }
    }
}

/// Starts a watch and returns the streaming response.
pub fn start(
    backend: &Arc<Backend>,
    rt: &ResourceType,
    namespace: Option<&str>,
    selectors: Selectors,
    query: &Query,
    representation: Representation,
) -> Result<Response<ResponseBody>, ApiError> {
    let from = parse_number(query, "resourceVersion")?;
    let timeout = parse_number(query, "timeoutSeconds")?.map(Duration::from_secs);
    let bookmarks = matches!(
        query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let initial_events = matches!(
        query.get("sendInitialEvents").map(String::as_str),
        Some("true" | "1")
    );
    let filter = WatchFilter {
        resource: rt.storage_key(),
        namespace: namespace.map(str::to_owned),
        selectors,
        representation,
        resource_type: rt.clone(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let bookmark_object = |revision: u64, initial_end: bool| {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata})
    };
    let start = match backend
        .store
        .watch(rt, namespace, if initial_events { None } else { from })
    {
        Ok(start) => start,
        Err(e @ ApiError::Expired(_)) => {
            // A real apiserver answers an expired resourceVersion with 200 and one ERROR event.
            let line = watch_line("ERROR", &e.to_status());
            let _ = tx.try_send(line);
            drop(tx);
            return Ok(stream_response(rx));
        }
        Err(e) => return Err(e),
    };
    let initial_end_bookmark =
        (initial_events && bookmarks).then(|| bookmark_object(start.revision, true));
    let periodic_bookmark = bookmarks.then(|| bookmark_object(0, false));
    // Subscribed before the task starts: any drop_watches() from now on ends this watch.
    let epoch = backend.store.watch_epoch();
    let interval = backend.bookmark_interval;
    tokio::spawn(async move {
        let session = WatchSession {
            tx,
            filter,
            last_revision: start.revision,
            periodic_bookmark,
            interval,
        };
        session
            .run(
                start.replay,
                initial_end_bookmark,
                start.live,
                epoch,
                timeout,
            )
            .await;
    });
    Ok(stream_response(rx))
}

struct WatchSession {
    tx: mpsc::Sender<Bytes>,
    filter: WatchFilter,
    /// Every event up to this revision has been seen by this watch: safe to bookmark.
    last_revision: u64,
    /// Template of the BOOKMARK object (its resourceVersion is filled in when sent).
    periodic_bookmark: Option<Value>,
    interval: Duration,
}

impl WatchSession {
    async fn run(
        mut self,
        replay: Vec<Arc<StoreEvent>>,
        initial_end_bookmark: Option<Value>,
        mut live: broadcast::Receiver<Arc<StoreEvent>>,
        mut epoch: tokio::sync::watch::Receiver<u64>,
        timeout: Option<Duration>,
    ) {
        for event in replay {
            if let Some(line) = self.filter.render(&event)
                && self.tx.send(line).await.is_err()
            {
                return;
            }
        }
        if let Some(bookmark) = initial_end_bookmark
            && self
                .tx
                .send(watch_line("BOOKMARK", &bookmark))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(3600 * 24 * 365)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(self.interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = epoch.changed() => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.periodic_bookmark.is_some() => {
                    if let Some(mut bookmark) = self.periodic_bookmark.clone() {
                        bookmark["metadata"]["resourceVersion"] = json!(self.last_revision.to_string());
                        if self.tx.send(watch_line("BOOKMARK", &bookmark)).await.is_err() {
                            return;
                        }
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        self.last_revision = self.last_revision.max(event.revision);
                        if let Some(line) = self.filter.render(&event)
                            && self.tx.send(line).await.is_err() {
                                return;
                            }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let gone = ApiError::Expired(format!(
                            "watch fell {missed} events behind the server; too old resource version: {}",
                            self.last_revision
                        ));
                        let _ = self.tx.send(watch_line("ERROR", &gone.to_status())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<ResponseBody> {
    let frames =
        ReceiverStream::new(rx).map(|line| Ok::<_, std::convert::Infallible>(Frame::data(line)));
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
