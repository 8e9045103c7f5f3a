//! A minimal OpenAPI v3 document per group/version, enough for kubectl.
//!
//! `kubectl apply` (validation `Strict`, the default) first asks whether the
//! server validates fields itself: it looks, in `/openapi/v3/<gv>`, for the
//! PATCH operation tagged `x-kubernetes-group-version-kind` with the kind and
//! for a `fieldValidation` parameter on that path. Finding both, it skips its
//! own schema validation (which would need the protobuf OpenAPI v2 document)
//! and sends `fieldValidation=Strict`, which this server accepts.
//!
//! The PATCH operations deliberately declare no request body, so kubectl's
//! client-side apply computes its strategic merge patch from its compiled-in
//! types (as it does for any server without full schemas) instead of from
//! schemas we would have to invent.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per served group/version.
pub fn v3_root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for rt in registry.all() {
        let path = gv_path(&rt.group, &rt.version);
        if paths.contains_key(&path) {
            continue;
        }
        // The hash lets kubectl cache a document until the group's types change.
        let mut hasher = DefaultHasher::new();
        for other in registry
            .all()
            .filter(|o| o.group == rt.group && o.version == rt.version)
        {
            other.plural.hash(&mut hasher);
            other.kind.hash(&mut hasher);
            other.namespaced.hash(&mut hasher);
        }
        let url = format!("/openapi/v3/{path}?hash={:016X}", hasher.finish());
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn parameter(name: &str, location: &str) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "schema": {"type": "string", "uniqueItems": true}})
}

fn object_path(rt: &ResourceType) -> Value {
    let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    // kubectl looks for `fieldValidation` among the PATCH operation's own
    // parameters (not the path item's), where the real document lists it.
    let query_parameters: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .iter()
        .map(|q| parameter(q, "query"))
        .collect();
    let operation = |verb: &str| {
        json!({
            "operationId": format!("{verb}{}", rt.kind),
            "parameters": query_parameters,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk,
        })
    };
    let mut parameters = vec![parameter("name", "path"), parameter("pretty", "query")];
    if rt.namespaced {
        parameters.push(parameter("namespace", "path"));
    }
    json!({
        "get": operation("get"),
        "put": operation("put"),
        "patch": operation("patch"),
        "delete": operation("delete"),
        "parameters": parameters,
    })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn v3_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.serves_group_version(group, version) {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    for rt in registry
        .all()
        .filter(|rt| rt.group == group && rt.version == version)
    {
        let path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        paths.insert(path, object_path(rt));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
