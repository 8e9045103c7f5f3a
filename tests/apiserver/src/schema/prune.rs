//! Structural pruning: what a real server drops from a custom resource before
//! storing it, and the list of those fields that `fieldValidation=Strict`
//! refuses and `Warn` reports.

use serde_json::Value;

use super::{additional, flag, properties};

/// Drops fields the schema does not declare (unless it preserves unknown
/// fields there) and `null`s of non-nullable fields that have no default.
/// At the root, `apiVersion`, `kind` and `metadata` always stay.
pub fn prune(schema: &Value, object: &mut Value) {
    prune_at(schema, object, true);
}

fn prune_at(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = properties(schema);
            let extra = additional(schema);
            map.retain(|key, v| {
                let meta = (root || embedded)
                    && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                if meta {
                    return true;
                }
                let sub = props.and_then(|p| p.get(key)).or(extra);
                match sub {
                    Some(sub) => {
                        !(v.is_null() && !flag(sub, "nullable") && sub.get("default").is_none())
                    }
                    None => {
                        preserve || schema.get("additionalProperties") == Some(&Value::Bool(true))
                    }
                }
            });
            for (key, v) in map.iter_mut() {
                if (root || embedded) && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    continue;
                }
                if let Some(sub) = props.and_then(|p| p.get(key)).or(extra) {
                    prune_at(sub, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    prune_at(sub, item, false);
                }
            }
        }
        _ => {}
    }
}

/// The `x-kubernetes-preserve-unknown-fields`-aware list of fields in `object`
/// that the schema does not know, as `.spec.foo` paths (for `fieldValidation=Strict`).
pub fn unknown_fields(schema: &Value, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    unknown_at(schema, object, "", true, &mut out);
    out
}

fn unknown_at(schema: &Value, value: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
                || schema.get("additionalProperties") == Some(&Value::Bool(true));
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = properties(schema);
            let extra = additional(schema);
            for (key, v) in map {
                if (root || embedded) && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    continue;
                }
                match props.and_then(|p| p.get(key)).or(extra) {
                    Some(sub) => unknown_at(sub, v, &format!("{path}.{key}"), false, out),
                    None if !preserve => out.push(format!("{path}.{key}")),
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    unknown_at(sub, item, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}
