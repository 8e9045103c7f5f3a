//! The Kubernetes I/O of BGP peers: the `BGPPeer` watch (an uninstalled CRD is an empty list,
//! as for pools), the watch of password Secrets in the provider's namespace (only those
//! labelled `ferrolb.io/bgp-password`), and the status writes, only while leading.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::book::PASSWORD_SECRET_LABEL;
use super::model::{PeerObject, parse};
use crate::lease::Claim;
use crate::metrics::Metrics;
use crate::relist::{Change, relisted};

/// A Secret as the book keeps it: its name and data.
pub type SecretData = (String, BTreeMap<String, Vec<u8>>);

/// The `BGPPeer` resource.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ferrolb.io", "v1alpha1", "BGPPeer"),
        "bgppeers",
    )
}

fn read(object: &DynamicObject) -> Option<PeerObject> {
    let value = serde_json::to_value(object).ok()?;
    Some(PeerObject {
        peer: parse(&value),
        status: value.get("status").cloned().unwrap_or(Value::Null),
    })
}

/// The watch of `BGPPeer`s; 404 (CRD not installed) is one empty list, and the watcher keeps
/// retrying so installing the CRD later works without a restart.
pub fn watch_peers(
    client: Client,
) -> impl Stream<Item = Result<Change<PeerObject, PeerObject>, watcher::Error>> {
    let api: Api<DynamicObject> = Api::all_with(client, &api_resource());
    let mut said_absent = false;
    relisted(
        watcher(api, watcher::Config::default()).default_backoff(),
        |object: DynamicObject| read(&object),
    )
    .filter_map(move |event| {
        let change = match event {
            Err(error) if is_absent(&error) => {
                if std::mem::replace(&mut said_absent, true) {
                    None
                } else {
                    tracing::info!("the BGPPeer CRD is not installed: no managed BGP peers");
                    Some(Ok(Change::Listed(Vec::new())))
                }
            }
            Ok(Change::Listed(list)) => {
                said_absent = false;
                Some(Ok(Change::Listed(list)))
            }
            Ok(Change::Applied(object)) => read(&object).map(|o| Ok(Change::Applied(o))),
            Ok(Change::Deleted(object)) => read(&object).map(|o| Ok(Change::Deleted(o))),
            Err(error) => Some(Err(error)),
        };
        std::future::ready(change)
    })
}

fn is_absent(error: &watcher::Error) -> bool {
    has_code(error, 404)
}

fn has_code(error: &watcher::Error, code: u16) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == code
    )
}

/// A Secret's name and decoded data.
pub fn secret_data(secret: &Secret) -> Option<SecretData> {
    let name = secret.metadata.name.clone()?;
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(key, bytes)| (key.clone(), bytes.0.clone()))
        .collect();
    Some((name, data))
}

/// The watch of password Secrets in `namespace` (labelled [`PASSWORD_SECRET_LABEL`]). A
/// provider without the right to read them (403) sees none, once, and logs why: peers without
/// a password still work, the others report their Secret missing.
pub fn watch_secrets(
    client: Client,
    namespace: &str,
) -> impl Stream<Item = Result<Change<Secret, SecretData>, watcher::Error>> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let namespace = namespace.to_string();
    let mut said_forbidden = false;
    relisted(
        watcher(api, watcher::Config::default().labels(PASSWORD_SECRET_LABEL)).default_backoff(),
        |secret: Secret| secret_data(&secret),
    )
    .filter_map(move |event| {
        let change = match event {
            Err(error) if has_code(&error, 403) => {
                if std::mem::replace(&mut said_forbidden, true) {
                    None
                } else {
                    tracing::error!(%namespace, %error, "cannot read the BGP password Secrets (RBAC): peers with a passwordSecret go to no node");
                    Some(Ok(Change::Listed(Vec::new())))
                }
            }
            Ok(Change::Listed(list)) => {
                said_forbidden = false;
                Some(Ok(Change::Listed(list)))
            }
            other => Some(other),
        };
        std::future::ready(change)
    })
}

/// One status write.
#[derive(Debug)]
pub struct StatusWrite {
    pub name: String,
    pub status: Value,
}

/// Writes `BGPPeer` statuses (the whole `status`, replaced), one at a time, only while this
/// replica leads. A failed write is logged and counted; the next change writes again.
pub async fn write_statuses(
    client: Client,
    mut jobs: mpsc::UnboundedReceiver<StatusWrite>,
    claims: watch::Receiver<Claim>,
    metrics: Arc<Metrics>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &api_resource());
    while let Some(job) = jobs.recv().await {
        if !claims.borrow().is_current() {
            continue;
        }
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
            Ok(_) => tracing::debug!(name = job.name, "BGPPeer status written"),
            Err(error) => {
                metrics.reconcile_error("bgppeer_status");
                tracing::warn!(name = job.name, %error, "cannot write BGPPeer status");
            }
        }
    }
}
