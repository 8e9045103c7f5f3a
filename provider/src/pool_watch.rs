//! Watches of pool objects, and the writes of their status: the I/O around
//! `pools::objects` and `index::pool_sources`.
//!
//! ```text
//!  watcher(kind) ──relisted──► PoolChange::{Listed, Applied, Deleted} ──► Index
//!      │ 404 (CRD not installed): one empty Listed, then the watcher keeps retrying with
//!      │ backoff, so installing the CRD later starts the pools without a restart
//!  Index::pool_reports ──StatusBook::due──► PATCH …/status (merge) ── only while leading
//! ```

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::lease::Claim;
use crate::metrics::Metrics;
use crate::pools::objects::{ObjectPool, PoolKind, parse};
use crate::relist::{Change, relisted};

/// One pool object as the index takes it, with its status as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolObject {
    /// The object, read.
    pub pool: ObjectPool,
    /// `status` as stored (for [`crate::pools::objects::status::StatusBook`]).
    pub status: Value,
}

/// A change of one kind's objects.
#[derive(Debug)]
pub struct PoolChange {
    /// The kind.
    pub kind: PoolKind,
    /// What changed (an uninstalled CRD is an empty list).
    pub change: Result<Change<PoolObject, PoolObject>, watcher::Error>,
}

/// The API resource of each kind.
pub fn api_resource(kind: PoolKind) -> ApiResource {
    let (group, version, plural) = match kind {
        PoolKind::LoadBalancerPool => ("ferrolb.io", "v1alpha1", "loadbalancerpools"),
        PoolKind::Eip => ("network.kubesphere.io", "v1alpha2", "eips"),
        PoolKind::Cilium => ("cilium.io", "v2alpha1", "ciliumloadbalancerippools"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind.kind()), plural)
}

/// Reads an object of `kind`.
pub fn read(kind: PoolKind, object: &DynamicObject) -> Option<PoolObject> {
    let value = serde_json::to_value(object).ok()?;
    let pool = match kind {
        PoolKind::LoadBalancerPool => parse::lbpool(&value),
        PoolKind::Eip => parse::eip(&value),
        PoolKind::Cilium => parse::cilium(&value),
    };
    Some(PoolObject {
        pool,
        status: value.get("status").cloned().unwrap_or(Value::Null),
    })
}

/// The watch of one kind. See the module doc.
pub fn watch_kind(client: Client, kind: PoolKind) -> impl Stream<Item = PoolChange> {
    let api: Api<DynamicObject> = Api::all_with(client, &api_resource(kind));
    let mut said_absent = false;
    relisted(
        watcher(api, watcher::Config::default()).default_backoff(),
        move |object: DynamicObject| read(kind, &object),
    )
    .filter_map(move |event| {
        let change = match event {
            Err(error) if is_absent(&error) => {
                if std::mem::replace(&mut said_absent, true) {
                    None
                } else {
                    tracing::info!(%kind, "the CRD is not installed: no pools of this kind");
                    Some(Ok(Change::Listed(Vec::new())))
                }
            }
            Ok(Change::Listed(list)) => {
                said_absent = false;
                Some(Ok(Change::Listed(list)))
            }
            Ok(Change::Applied(object)) => read(kind, &object).map(|o| Ok(Change::Applied(o))),
            Ok(Change::Deleted(object)) => read(kind, &object).map(|o| Ok(Change::Deleted(o))),
            Err(error) => Some(Err(error)),
        };
        std::future::ready(change.map(|change| PoolChange { kind, change }))
    })
}

fn is_absent(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 404
    )
}

/// One status write.
#[derive(Debug)]
pub struct StatusWrite {
    /// The kind.
    pub kind: PoolKind,
    /// The object's name.
    pub name: String,
    /// The whole new status.
    pub status: Value,
}

/// Writes pool statuses (a JSON patch replacing the whole `status` on the status subresource:
/// a merge patch would keep an Eip's released addresses in `used`), one at a time, only
/// while this replica leads. A failed write is logged and counted; the next change writes again.
pub async fn write_statuses(
    client: Client,
    mut jobs: mpsc::UnboundedReceiver<StatusWrite>,
    claims: watch::Receiver<Claim>,
    metrics: Arc<Metrics>,
) {
    while let Some(job) = jobs.recv().await {
        if !claims.borrow().is_current() {
            continue;
        }
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(job.kind));
        let operation =
            serde_json::json!([{ "op": "add", "path": "/status", "value": job.status }]);
        let Ok(operations) = serde_json::from_value::<json_patch::Patch>(operation) else {
            continue;
        };
        let patch: Patch<()> = Patch::Json(operations);
        match api
            .patch_status(&job.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => tracing::debug!(kind = %job.kind, name = job.name, "pool status written"),
            Err(error) => {
                metrics.reconcile_error("pool_status");
                tracing::warn!(kind = %job.kind, name = job.name, %error, "cannot write pool status");
            }
        }
    }
}
