//! Structural-schema checks on a CRD version's `openAPIV3Schema`, made when
//! the CRD is written, with the messages kube-apiserver gives.

use serde_json::Value;

use super::{FieldError, additional, flag, properties, push};

/// The structural-schema rules kube-apiserver enforces on a CRD version's
/// schema before accepting the CRD (`field` is where the schema sits, e.g.
/// `spec.versions[0].schema.openAPIV3Schema`): an object at the root, and a
/// `type` on every property and `items` schema unless it is
/// `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`.
pub fn structural_errors(schema: &Value, field: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        None => push(
            &mut errors,
            "FieldValueRequired",
            &format!("{field}.type"),
            "Required value: must not be empty at the root".to_owned(),
        ),
        Some(other) => push(
            &mut errors,
            "FieldValueInvalid",
            &format!("{field}.type"),
            format!("Invalid value: {other:?}: must be object at the root"),
        ),
    }
    structural_children(schema, field, &mut errors);
    errors
}

fn structural_children(schema: &Value, field: &str, errors: &mut Vec<FieldError>) {
    let untyped = |s: &Value| {
        s.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && !flag(s, "x-kubernetes-int-or-string")
            && !flag(s, "x-kubernetes-preserve-unknown-fields")
    };
    if let Some(props) = properties(schema) {
        for (key, sub) in props {
            let at = format!("{field}.properties[{key}]");
            if untyped(sub) {
                push(
                    errors,
                    "FieldValueRequired",
                    &format!("{at}.type"),
                    "Required value: must not be empty for specified object fields".to_owned(),
                );
            }
            structural_children(sub, &at, errors);
        }
    }
    if let Some(items) = schema.get("items").filter(|s| s.is_object()) {
        let at = format!("{field}.items");
        if untyped(items) {
            push(
                errors,
                "FieldValueRequired",
                &format!("{at}.type"),
                "Required value: must not be empty for specified array items".to_owned(),
            );
        }
        structural_children(items, &at, errors);
    }
    if let Some(extra) = additional(schema) {
        structural_children(extra, &format!("{field}.additionalProperties"), errors);
    }
}
