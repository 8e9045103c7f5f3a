//! Server-side apply, approximated: the applied configuration is merged into
//! the live object with the strategic-merge list rules (keyed lists merge,
//! `finalizers` is a set), and the field manager is recorded in
//! `metadata.managedFields` with the fields it set.
//!
//! Not modelled (documented in docs/test-apiserver.md): conflicts between
//! managers (`force` is accepted and ignored) and removal of fields a manager
//! stops applying.

use serde_json::{Map, Value, json};

/// Merges an applied configuration into the live object.
pub fn merge_applied(current: &Value, applied: &Value) -> Value {
    // Apply configurations hold no directives and no nulls meant as deletes,
    // so the strategic merge (which only adds that on top) is the right merge.
    // A non-object body was already rejected by the caller; fall back to the
    // plain JSON merge for anything odd rather than fail.
    super::strategic::apply(current, applied)
        .unwrap_or_else(|_| super::merge::apply(current, applied))
}

/// Replaces `manager`'s entry in `metadata.managedFields` with one describing `applied`.
pub fn record_manager(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    applied: &Value,
    time: &str,
) {
    let mut fields = fields_v1(applied);
    if let Value::Object(f) = &mut fields {
        // apiVersion/kind are identity, not owned fields.
        f.remove("f:apiVersion");
        f.remove("f:kind");
        if let Some(Value::Object(meta)) = f.get_mut("f:metadata") {
            meta.remove("f:name");
            meta.remove("f:namespace");
            meta.remove("f:resourceVersion");
        }
    }
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let meta = crate::meta::metadata_mut(obj);
    let list = meta
        .entry("managedFields")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Value::Array(entries) = list {
        let same = |e: &Value| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some(operation)
        };
        // Re-applying the same fields keeps the entry (and its time), so a
        // no-op apply stays a no-op write, as on a real server.
        if entries
            .iter()
            .any(|e| same(e) && e.get("fieldsV1") == entry.get("fieldsV1"))
        {
            return;
        }
        entries.retain(|e| {
            !(e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some(operation))
        });
        entries.push(entry);
    }
}

/// The `FieldsV1` set of the leaves present in `v`: `{"f:spec": {"f:ports": {}}}`.
/// Lists are recorded as a whole (the real format names elements by key).
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                out.insert(format!("f:{k}"), fields_v1(child));
            }
            Value::Object(out)
        }
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn apply_merges_and_records_manager() {
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"a": "1"}});
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"b": "2"}});
        let mut merged = merge_applied(&live, &applied);
        record_manager(
            &mut merged,
            "ferrolb",
            "Apply",
            "v1",
            &applied,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(merged["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(merged["metadata"]["labels"], json!({"x": "1"}));
        let mf = &merged["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "ferrolb");
        assert_eq!(
            mf["fieldsV1"],
            json!({"f:data": {"f:b": {}}, "f:metadata": {}})
        );
    }

    #[test]
    fn reapplying_replaces_the_managers_entry() {
        let mut obj = json!({"metadata": {}});
        record_manager(
            &mut obj,
            "m",
            "Apply",
            "v1",
            &json!({"data": {"a": "1"}}),
            "t1",
        );
        record_manager(
            &mut obj,
            "m",
            "Apply",
            "v1",
            &json!({"data": {"b": "1"}}),
            "t2",
        );
        record_manager(
            &mut obj,
            "other",
            "Apply",
            "v1",
            &json!({"data": {"c": "1"}}),
            "t3",
        );
        let entries = obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["time"], "t2");
        record_manager(
            &mut obj,
            "other",
            "Apply",
            "v1",
            &json!({"data": {"c": "2"}}),
            "t4",
        );
        let entries = obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            entries[1]["time"], "t3",
            "same fields: entry and time unchanged"
        );
    }
}
