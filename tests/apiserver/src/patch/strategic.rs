//! Strategic merge patch for the fields FerroLB and kubectl touch.
//!
//! A real apiserver reads `patchStrategy`/`patchMergeKey` from the Go types. We
//! have no Go types, so the strategy comes from the field name (the table in
//! `list_strategy`), which is right for every built-in kind this server
//! serves. Lists not in the table are replaced, like `atomic` lists.
//!
//! Directives understood (see the Kubernetes "strategic merge patch" design
//! doc): `$patch: replace|delete|merge`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>`, and `$setElementOrder/<field>` (used to
//! order the merged list).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Elements are objects identified by this key.
    MergeByKey(&'static str),
    /// Elements are scalars; the patch adds missing ones.
    MergePrimitives,
    Replace,
}

/// The merge strategy of a list field, by name (and by element shape where
/// one name has two meanings: Service `ports` merge on `port`, container
/// `ports` on `containerPort`).
fn list_strategy(field: &str, sample: Option<&Value>) -> ListStrategy {
    match field {
        "finalizers" => ListStrategy::MergePrimitives,
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                ListStrategy::MergeByKey("containerPort")
            } else {
                ListStrategy::MergeByKey("port")
            }
        }
        "conditions" | "addresses" if sample.is_none_or(Value::is_object) => {
            ListStrategy::MergeByKey("type")
        }
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => ListStrategy::MergeByKey("name"),
        "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
        "ownerReferences" => ListStrategy::MergeByKey("uid"),
        _ => ListStrategy::Replace,
    }
}

/// Applies a strategic merge patch to a copy of `current`.
pub fn apply(current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::BadRequest(
            "strategic merge patch must be a JSON object".to_owned(),
        ));
    };
    let mut doc = current.clone();
    if !doc.is_object() {
        doc = Value::Object(Map::new());
    }
    if let Value::Object(target) = &mut doc {
        merge_map(target, patch)?;
    }
    Ok(doc)
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), ApiError> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return Ok(());
    }
    let mut element_orders = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            element_orders.push((field, value));
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), value)
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(sub) => match sub.get("$patch").and_then(Value::as_str) {
                Some("delete") => {
                    target.remove(key);
                }
                _ => match target.get_mut(key) {
                    Some(Value::Object(existing)) => merge_map(existing, sub)?,
                    _ => {
                        target.insert(key.clone(), Value::Object(strip_directives(sub)));
                    }
                },
            },
            Value::Array(items) => {
                let merged = match target.remove(key) {
                    Some(Value::Array(existing)) => merge_list(key, existing, items)?,
                    _ => items
                        .iter()
                        .filter(|i| !is_directive_element(i))
                        .map(strip_value)
                        .collect(),
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                target.insert(key.clone(), scalar.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        target.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k.as_str())));
    }
    for (field, order) in element_orders {
        if let (Some(Value::Array(list)), Value::Array(order)) = (target.get_mut(field), order) {
            reorder(field, list, order);
        }
    }
    Ok(())
}

fn is_directive_element(v: &Value) -> bool {
    v.get("$patch").is_some()
}

fn merge_list(
    field: &str,
    mut existing: Vec<Value>,
    patch: &[Value],
) -> Result<Vec<Value>, ApiError> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| !is_directive_element(i))
            .map(strip_value)
            .collect());
    }
    let sample = patch.first().or(existing.first());
    match list_strategy(field, sample) {
        ListStrategy::Replace => Ok(patch.iter().map(strip_value).collect()),
        ListStrategy::MergePrimitives => {
            for item in patch {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
            Ok(existing)
        }
        ListStrategy::MergeByKey(merge_key) => {
            for item in patch {
                let Value::Object(item_map) = item else {
                    return Err(ApiError::BadRequest(format!(
                        "strategic merge patch: list `{field}` merges on `{merge_key}` but holds a non-object element {item}"
                    )));
                };
                let key_value = item_map.get(merge_key).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "strategic merge patch: element of `{field}` has no merge key `{merge_key}`: {item}"
                    ))
                })?;
                let position = existing
                    .iter()
                    .position(|e| e.get(merge_key) == Some(key_value));
                match (item_map.get("$patch").and_then(Value::as_str), position) {
                    (Some("delete"), Some(i)) => {
                        existing.remove(i);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(i)) => {
                        if let Value::Object(target) = &mut existing[i] {
                            merge_map(target, item_map)?;
                        }
                    }
                    (_, None) => existing.push(Value::Object(strip_directives(item_map))),
                }
            }
            Ok(existing)
        }
    }
}

/// Orders `list` as `$setElementOrder` says; elements it does not name keep their place at the end.
fn reorder(field: &str, list: &mut Vec<Value>, order: &[Value]) {
    let key_of = |v: &Value| -> Value {
        match list_strategy(field, Some(v)) {
            ListStrategy::MergeByKey(k) => v.get(k).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let mut remaining = std::mem::take(list);
    for wanted in order {
        let wanted_key = key_of(wanted);
        if let Some(i) = remaining.iter().position(|e| key_of(e) == wanted_key) {
            list.push(remaining.remove(i));
        }
    }
    list.extend(remaining);
}

fn strip_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives(m)),
        Value::Array(items) => Value::Array(items.iter().map(strip_value).collect()),
        other => other.clone(),
    }
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_value(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    #[test]
    fn strategic_merge_table() {
        let cases = [
            (
                "service ports merge by port",
                json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
                json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
                json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}),
            ),
            (
                "same port merges fields",
                json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
                json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
                json!({"spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}]}}),
            ),
            (
                "finalizers merge as a set",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": ["b", "a"]}}),
                json!({"metadata": {"finalizers": ["a", "b"]}}),
            ),
            (
                "delete from primitive list",
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": ["b"]}}),
            ),
            (
                "conditions merge by type",
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "True"}]}}),
            ),
            (
                "$patch delete removes an element",
                json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}}),
                json!({"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}),
                json!({"spec": {"ports": [{"port": 443}]}}),
            ),
            (
                "$patch replace on a list",
                json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}}),
                json!({"spec": {"ports": [{"port": 8443}, {"$patch": "replace"}]}}),
                json!({"spec": {"ports": [{"port": 8443}]}}),
            ),
            (
                "unknown lists replace, null deletes",
                json!({"spec": {"externalIPs": ["192.0.2.1"], "type": "LoadBalancer"}}),
                json!({"spec": {"externalIPs": ["192.0.2.2"], "type": null}}),
                json!({"spec": {"externalIPs": ["192.0.2.2"]}}),
            ),
            (
                "setElementOrder orders the merged list",
                json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}}),
                json!({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}], "ports": [{"port": 80, "name": "h"}]}}),
                json!({"spec": {"ports": [{"port": 443}, {"port": 80, "name": "h"}]}}),
            ),
        ];
        for (name, doc, patch, want) in cases {
            assert_eq!(apply(&doc, &patch), Ok(want), "{name}");
        }
    }

    #[test]
    fn keyed_list_element_without_key_is_rejected() {
        let err = apply(
            &json!({"spec": {"ports": [{"port": 80}]}}),
            &json!({"spec": {"ports": [{"name": "x"}]}}),
        )
        .expect_err("no merge key");
        assert!(err.to_string().contains("merge key `port`"), "{err}");
    }
}
