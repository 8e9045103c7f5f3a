//! Node initialization for clusters whose kubelets run with `--cloud-provider=external`.
//!
//! Such kubelets register Nodes with the taint `node.cloudprovider.kubernetes.io/uninitialized`
//! and wait for a cloud provider to remove it; kube-vip-cloud-provider never does, so Pods stay
//! Pending. We remove the taint and, when `spec.providerID` is empty, set it to
//! `ferrolb://<node-name>` in the same patch.
//!
//! Only Nodes that carry the taint are touched. The API server lets `spec.providerID` change
//! only from "" to a value, so setting ours on any other Node would permanently lock out the
//! cloud provider that does own it (one added later, or one that initializes Nodes by other
//! means).
//!
//! `node_patch` is the pure decision (a JSON Patch that starts with a `test` of the
//! resourceVersion, so a Node changed meanwhile is never overwritten); `run` watches Nodes and
//! applies the patches while this replica holds the Lease.

use std::sync::Arc;

use futures::StreamExt;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client,
    api::PatchParams,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::Value;
use tokio::sync::watch;

use crate::{
    error::Error,
    lease::Claim,
    metrics::Metrics,
    patch::{pointer, test_resource_version},
};

/// The taint kubelet sets with `--cloud-provider=external`.
pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";

/// Prefix of the provider IDs we set.
pub const PROVIDER_ID_SCHEME: &str = "ferrolb://";

/// The patch that initializes `node`, or `None` when nothing is to be done.
pub fn node_patch(node: &Node) -> Option<Patch> {
    let name = node.metadata.name.as_deref()?;
    let resource_version = node.metadata.resource_version.as_deref()?;
    let spec = node.spec.as_ref();
    let mut ops = Vec::new();
    // Remove from the highest index down so earlier indices stay valid.
    let taints = spec.and_then(|s| s.taints.as_deref()).unwrap_or_default();
    for (at, taint) in taints.iter().enumerate().rev() {
        if taint.key == UNINITIALIZED_TAINT {
            ops.push(PatchOperation::Remove(RemoveOperation {
                path: pointer(&["spec", "taints", &at.to_string()]),
            }));
        }
    }
    if ops.is_empty() {
        // Not waiting for us: its providerID, even an empty one, is not ours to set.
        return None;
    }
    let provider_id_empty = spec
        .and_then(|s| s.provider_id.as_deref())
        .is_none_or(str::is_empty);
    if provider_id_empty {
        ops.push(PatchOperation::Add(AddOperation {
            path: pointer(&["spec", "providerID"]),
            value: Value::String(format!("{PROVIDER_ID_SCHEME}{name}")),
        }));
    }
    ops.insert(0, test_resource_version(resource_version));
    Some(Patch(ops))
}

/// Initializes Nodes while `claims` is current. Each leadership term starts a fresh watch,
/// whose initial list brings every Node again, so Nodes that joined while this replica stood
/// by are not missed. Conflicts are left to the next watch event of the same Node, which
/// carries the newer version.
pub async fn run(client: Client, mut claims: watch::Receiver<Claim>, metrics: Arc<Metrics>) {
    loop {
        crate::lease::wait_for_claim(&mut claims).await;
        let mut lost = claims.clone();
        tokio::select! {
            () = initialize_while_leading(client.clone(), claims.clone(), metrics.clone()) => {}
            () = crate::lease::claim_lost(&mut lost) => {}
        }
    }
}

async fn initialize_while_leading(
    client: Client,
    claims: watch::Receiver<Claim>,
    metrics: Arc<Metrics>,
) {
    let api: Api<Node> = Api::all(client);
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let node = match event {
            Ok(node) => node,
            Err(error) => {
                tracing::warn!(%error, "Node watch failed; retrying");
                metrics.reconcile_error("watch");
                continue;
            }
        };
        let Some(patch) = node_patch(&node) else {
            continue;
        };
        if !claims.borrow().is_current() {
            continue;
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        let action = format!("initialize Node {name}");
        match api
            .patch(
                &name,
                &PatchParams::default(),
                &kube::api::Patch::<()>::Json(patch),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, "initialized Node (taint removed / providerID set)")
            }
            Err(source) => {
                let error = Error::from_kube(action, source);
                tracing::warn!(%error, "Node initialization failed; retried on the next change");
                metrics.reconcile_error(error.metric_label());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{NodeSpec, Taint},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;

    fn node(taints: &[&str], provider_id: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("worker-1".into()),
                resource_version: Some("42".into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                provider_id: provider_id.map(str::to_string),
                taints: Some(
                    taints
                        .iter()
                        .map(|key| Taint {
                            key: key.to_string(),
                            effect: "NoSchedule".into(),
                            ..Taint::default()
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn tainted_node_without_provider_id_gets_both_fixed_under_a_version_test() {
        let patch = node_patch(&node(&["other", UNINITIALIZED_TAINT], None)).expect("a patch");
        let json = serde_json::to_value(&patch).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "remove", "path": "/spec/taints/1"},
                {"op": "add", "path": "/spec/providerID", "value": "ferrolb://worker-1"},
            ])
        );
    }

    #[test]
    fn initialized_node_needs_no_write() {
        assert!(node_patch(&node(&["other"], Some("aws:///i-1"))).is_none());
    }

    #[test]
    fn untainted_node_without_provider_id_is_left_to_its_cloud_provider() {
        // providerID can be set only once: setting ours on a Node we were not asked to
        // initialize would lock out the cloud provider that is.
        assert!(node_patch(&node(&["other"], None)).is_none());
        assert!(node_patch(&node(&[], Some(""))).is_none());
    }

    #[test]
    fn existing_provider_id_is_kept() {
        let patch =
            node_patch(&node(&[UNINITIALIZED_TAINT], Some("ferrolb://x"))).expect("a patch");
        let json = serde_json::to_string(&patch).expect("serializable");
        assert!(!json.contains("providerID"), "{json}");
    }
}
