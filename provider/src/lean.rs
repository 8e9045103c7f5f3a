//! Writes whose answers the provider barely reads.
//!
//! `Api::patch` and `Api::create` decode the object the API server sends back into its full
//! type: for a Service with its managed fields, a few hundred allocations that the writer
//! drops at once, as it needs only the new `resourceVersion` (and an Event's answer, nothing).
//! At 10,000 Services that decoding cost more CPU than computing the writes. These requests
//! are the same ones, built by kube's request builder and sent by the same client (errors,
//! retries and authentication alike), with the answer decoded into only what is read: serde
//! skips every other field without allocating.

use json_patch::{Patch, PatchOperation};
use k8s_openapi::api::{core::v1::Service, events::v1::Event};
use kube::{
    Client, Resource,
    api::{Patch as KubePatch, PatchParams, PostParams},
    core::Request,
};
use serde::Deserialize;

/// The part of an answer the writer reads.
#[derive(Deserialize)]
struct Written {
    #[serde(default)]
    metadata: WrittenMeta,
}

#[derive(Default, Deserialize)]
struct WrittenMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
}

/// Nothing of the answer.
#[derive(Deserialize)]
struct Ignored {}

/// JSON-patches a Service (its status subresource when `status`); returns the
/// resourceVersion it has now (empty if the answer carries none).
pub async fn patch_service(
    client: &Client,
    namespace: &str,
    name: &str,
    status: bool,
    ops: Vec<PatchOperation>,
) -> kube::Result<String> {
    let request = Request::new(Service::url_path(&(), Some(namespace)));
    let patch = KubePatch::<()>::Json(Patch(ops));
    let params = PatchParams::default();
    let mut http = if status {
        request.patch_subresource("status", name, &params, &patch)
    } else {
        request.patch(name, &params, &patch)
    }
    .map_err(kube::Error::BuildRequest)?;
    http.extensions_mut().insert("patch");
    let written: Written = client.request(http).await?;
    Ok(written.metadata.resource_version.unwrap_or_default())
}

/// Creates an Event.
pub async fn create_event(client: &Client, namespace: &str, event: &Event) -> kube::Result<()> {
    let body = serde_json::to_vec(event).map_err(kube::Error::SerdeError)?;
    let mut http = Request::new(Event::url_path(&(), Some(namespace)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    http.extensions_mut().insert("create");
    let _: Ignored = client.request(http).await?;
    Ok(())
}
