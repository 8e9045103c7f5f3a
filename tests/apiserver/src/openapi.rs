//! A minimal OpenAPI v3 document per group/version, enough for kubectl.
//!
//! `kubectl apply` (validation `Strict`, the default) first asks whether the
//! server validates fields itself: it looks, in `/openapi/v3/<gv>`, for the
//! PATCH operation tagged `x-kubernetes-group-version-kind` with the kind and
//! for a `fieldValidation` parameter on that path. Finding both, it skips its
//! own schema validation (which would need the protobuf OpenAPI v2 document)
//! and sends `fieldValidation=Strict`, which this server accepts.
//!
//! `/openapi/v2` is an empty but valid Swagger 2.0 document (protobuf when
//! asked for, as kubectl does, else JSON). kubectl skips schema validation of
//! kinds a document does not describe, so older kubectl versions that only
//! know v2 (Debian's kubernetes-client 1.20) can `apply` with validation on.
//!
//! The PATCH operations deliberately declare no request body, so kubectl's
//! client-side apply computes its strategic merge patch from its compiled-in
//! types (as it does for any server without full schemas) instead of from
//! schemas we would have to invent.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;

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

/// The media type of the protobuf `/openapi/v2` answer. kubectl asks for
/// `...spec.v2@v1.0+protobuf`, but Go's MIME parser rejects an `@` in a
/// response's Content-Type, so the real server answers with `.` as here.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`: `(content type, body)`, protobuf if `accept` asks for it.
pub fn v2_document(accept: &str) -> (&'static str, Bytes) {
    if accept.contains("protobuf") {
        return (V2_PROTOBUF, Bytes::from(v2_protobuf()));
    }
    let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}});
    ("application/json", Bytes::from(doc.to_string()))
}

/// The gnostic `openapi.v2.Document` message with `swagger` (field 1), `info`
/// (field 2: `title` 1, `version` 2) and an empty `paths` (field 8), encoded
/// by hand: every field is length-delimited (wire type 2).
fn v2_protobuf() -> Vec<u8> {
    fn field(number: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push((number << 3) | 2);
        let mut len = payload.len();
        // Varint length (RFC-free: protobuf encoding guide, "Base 128 Varints").
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(payload);
    }
    let mut info = Vec::new();
    field(1, b"Kubernetes", &mut info);
    field(2, b"v1.33.0", &mut info);
    let mut doc = Vec::new();
    field(1, b"2.0", &mut doc);
    field(2, &info, &mut doc);
    field(8, &[], &mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_protobuf_bytes_are_the_expected_message() {
        let (content_type, body) = v2_document(V2_PROTOBUF);
        assert_eq!(content_type, V2_PROTOBUF);
        let mut want = vec![0x0a, 3];
        want.extend_from_slice(b"2.0");
        want.extend_from_slice(&[0x12, 21, 0x0a, 10]);
        want.extend_from_slice(b"Kubernetes");
        want.extend_from_slice(&[0x12, 7]);
        want.extend_from_slice(b"v1.33.0");
        want.extend_from_slice(&[0x42, 0]);
        assert_eq!(body.as_ref(), want.as_slice());
        let (json_type, _) = v2_document("application/json");
        assert_eq!(json_type, "application/json");
    }
}
