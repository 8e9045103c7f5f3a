//! The `/scale` subresource of Deployments, ReplicaSets and StatefulSets, so
//! `kubectl scale` works: reads answer an `autoscaling/v1` `Scale` made from
//! the object; writes (PUT, or any non-apply patch of the Scale) change only
//! the object's `spec.replicas`. `status.replicas` is the object's
//! `status.replicas` (0 until a client writes status: no controller runs).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::PatchKind;
use crate::resources::ResourceType;
use crate::route::ResourcePath;
use crate::router::{Query, ResponseBody, json_response};
use crate::store::{PatchRequest, Store, WriteMode};

/// Whether `rt` has a `/scale` subresource.
pub fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps"
        && matches!(
            rt.plural.as_str(),
            "deployments" | "replicasets" | "statefulsets"
        )
}

/// The `Scale` view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let keep = [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ];
    let metadata: serde_json::Map<String, Value> = meta
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Handles GET, PUT and PATCH on `.../{name}/scale`.
pub fn request(
    store: &Store,
    method: &Method,
    rt: &Arc<ResourceType>,
    path: &ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let namespace = path.namespace.as_deref();
    let name = path.name.as_deref().unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let current = store.get(rt, namespace, name)?;
    let wanted = match *method {
        Method::GET => return Ok(json_response(StatusCode::OK, &scale_of(&current))),
        Method::PUT => {
            let scale: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "update Scale: the request body is not valid JSON: {e}"
                ))
            })?;
            let stale = crate::meta::resource_version(&scale);
            if !stale.is_empty() && stale != crate::meta::resource_version(&current) {
                return Err(ApiError::stale(&rt.qualified_plural(), name));
            }
            scale
        }
        Method::PATCH => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchKind::from_content_type(content_type)?;
            if kind == PatchKind::Apply {
                return Err(ApiError::UnsupportedMediaType(
                    "server-side apply of a Scale is not supported by this test API server"
                        .to_owned(),
                ));
            }
            let patch = crate::patch::parse_body(kind, body)?;
            crate::patch::apply_patch(kind, &scale_of(&current), &patch)?
        }
        ref other => {
            return Err(ApiError::MethodNotAllowed(format!(
                "{other} is not allowed on the scale subresource"
            )));
        }
    };
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::InvalidFields {
            group: "autoscaling".to_owned(),
            kind: "Scale".to_owned(),
            name: name.to_owned(),
            causes: vec![crate::schema::FieldError {
                reason: "FieldValueInvalid",
                field: "spec.replicas".to_owned(),
                body: format!(
                    "Invalid value: {}: must be greater than or equal to 0",
                    wanted
                        .pointer("/spec/replicas")
                        .cloned()
                        .unwrap_or(Value::Null)
                ),
            }],
        })?;
    let change = json!({"spec": {"replicas": replicas}});
    let updated = store.patch(
        rt,
        namespace,
        name,
        &PatchRequest {
            kind: PatchKind::Merge,
            body: &change,
            mode: WriteMode::Main,
            field_manager: None,
            force: false,
            dry_run,
        },
    )?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated)))
}
