//! Server-side apply, approximated: the applied configuration is merged into
//! the live object with the strategic-merge list rules (keyed lists merge,
//! `finalizers` is a set), and the field manager is recorded in
//! `metadata.managedFields` with the fields it set.
//!
//! A field a manager applied before but leaves out of its next apply is
//! removed, unless another apply manager also set it. Applying a value other
//! than the live one to a field another apply manager owns is a 409 conflict,
//! unless `force=true`, which moves the field to the applying manager. Lists are
//! owned as a whole and never conflict. Not modelled (documented in
//! docs/test-apiserver.md): ownership by non-apply writers (PUT, other patches).

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
    let fields = owned_fields(applied);
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

/// The fields an apply configuration claims, as a `FieldsV1` set.
fn owned_fields(applied: &Value) -> Value {
    let mut fields = fields_v1(applied);
    if let Value::Object(f) = &mut fields {
        // apiVersion/kind and the object's identity are not owned fields.
        f.remove("f:apiVersion");
        f.remove("f:kind");
        if let Some(Value::Object(meta)) = f.get_mut("f:metadata") {
            meta.remove("f:name");
            meta.remove("f:namespace");
            meta.remove("f:resourceVersion");
        }
        // A metadata block that held only identity owns nothing (and must never
        // look like a claim on all of metadata).
        if f.get("f:metadata")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            f.remove("f:metadata");
        }
    }
    fields
}

/// Every leaf path of a `FieldsV1` set, as key lists without the `f:` prefix.
fn leaf_paths(fields: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match fields.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, child) in map {
                prefix.push(k.strip_prefix("f:").unwrap_or(k).to_owned());
                leaf_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.push(prefix.clone());
            }
        }
    }
}

fn paths_of(fields: Option<&Value>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(f) = fields {
        leaf_paths(f, &mut Vec::new(), &mut out);
    }
    out
}

/// Removes from `obj` the fields `manager` applied last time but not in
/// `applied`, keeping any another apply manager also claims. Call before
/// [`record_manager`] replaces the manager's entry.
pub fn prune_unapplied(obj: &mut Value, manager: &str, applied: &Value) {
    let entries: Vec<Value> = crate::meta::metadata(obj)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_apply = |e: &Value| e.get("operation").and_then(Value::as_str) == Some("Apply");
    let is_mine = |e: &Value| e.get("manager").and_then(Value::as_str) == Some(manager);
    let before = paths_of(
        entries
            .iter()
            .find(|e| is_apply(e) && is_mine(e))
            .and_then(|e| e.get("fieldsV1")),
    );
    let now = paths_of(Some(&owned_fields(applied)));
    let others: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| is_apply(e) && !is_mine(e))
        .flat_map(|e| paths_of(e.get("fieldsV1")))
        .collect();
    // Two paths overlap when one is a prefix of the other.
    let overlaps = |a: &[String], b: &[String]| a.iter().zip(b).all(|(x, y)| x == y);
    for path in before {
        // Whole top-level sections are never pruned, only fields inside them.
        if path.len() < 2 {
            continue;
        }
        if now.iter().chain(&others).any(|p| overlaps(p, &path)) {
            continue;
        }
        remove_path(obj, &path);
    }
}

fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// Checks `applied` against fields other apply managers own in `live`. A field
/// conflicts when another manager owns it, it is live, and the applied value
/// differs. Without `force` that is an error naming each conflict; with it the
/// fields are taken from their owners' entries in `patched`.
pub fn resolve_conflicts(
    live: &Value,
    patched: &mut Value,
    manager: &str,
    applied: &Value,
    force: bool,
) -> Result<(), String> {
    let entries: Vec<Value> = crate::meta::metadata(live)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut conflicts: Vec<(String, Vec<String>)> = Vec::new();
    for entry in &entries {
        let owner = entry.get("manager").and_then(Value::as_str).unwrap_or("");
        if owner == manager || entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        let owned = paths_of(entry.get("fieldsV1"));
        for path in paths_of(Some(&owned_fields(applied))) {
            let (Some(live_value), Some(new_value)) =
                (value_at(live, &path), value_at(applied, &path))
            else {
                continue;
            };
            if owned.contains(&path) && !live_value.is_array() && live_value != new_value {
                conflicts.push((owner.to_owned(), path));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    if !force {
        let list: Vec<String> = conflicts
            .iter()
            .map(|(owner, path)| format!("conflict with \"{owner}\": .{}", path.join(".")))
            .collect();
        let plural = if conflicts.len() == 1 { "" } else { "s" };
        return Err(format!(
            "Apply failed with {} conflict{plural}: {}",
            conflicts.len(),
            list.join("; ")
        ));
    }
    // Forced: the fields leave their previous owners' sets.
    if let Some(Value::Array(entries)) = crate::meta::metadata_mut(patched).get_mut("managedFields")
    {
        for (owner, path) in &conflicts {
            for entry in entries
                .iter_mut()
                .filter(|e| e.get("manager").and_then(Value::as_str) == Some(owner.as_str()))
            {
                let fields_path: Vec<String> = path.iter().map(|k| format!("f:{k}")).collect();
                if let Some(fields) = entry.get_mut("fieldsV1") {
                    remove_path(fields, &fields_path);
                }
            }
        }
    }
    Ok(())
}

fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for key in parents {
        match cur.get_mut(key) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
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
            json!({"f:data": {"f:b": {}}}),
            "metadata with only the name owns nothing"
        );
    }

    #[test]
    fn fields_a_manager_stops_applying_are_removed_unless_shared() {
        let mut obj = json!({"metadata": {"labels": {"x": "1", "y": "1"}}, "data": {"a": "1", "b": "2", "c": "3"}});
        let first =
            json!({"metadata": {"labels": {"x": "1", "y": "1"}}, "data": {"a": "1", "b": "2"}});
        record_manager(&mut obj, "m1", "Apply", "v1", &first, "t1");
        record_manager(
            &mut obj,
            "m2",
            "Apply",
            "v1",
            &json!({"metadata": {"labels": {"y": "1"}}}),
            "t1",
        );
        let second = json!({"metadata": {"labels": {"x": "1"}}, "data": {"a": "1"}});
        prune_unapplied(&mut obj, "m1", &second);
        assert_eq!(
            obj["data"],
            json!({"a": "1", "c": "3"}),
            "b dropped; c was never m1's"
        );
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"x": "1", "y": "1"}),
            "y is still m2's"
        );
    }

    #[test]
    fn applying_another_managers_field_conflicts_unless_forced() {
        let mut live = json!({"data": {"x": "1", "y": "1"}});
        record_manager(
            &mut live,
            "a",
            "Apply",
            "v1",
            &json!({"data": {"x": "1", "y": "1"}}),
            "t",
        );
        let same = json!({"data": {"x": "1"}});
        let mut patched = live.clone();
        assert_eq!(
            resolve_conflicts(&live, &mut patched, "b", &same, false),
            Ok(()),
            "same value: shared"
        );
        let other = json!({"data": {"x": "2", "y": "2"}});
        let err = resolve_conflicts(&live, &mut patched, "b", &other, false).expect_err("conflict");
        assert_eq!(
            err,
            "Apply failed with 2 conflicts: conflict with \"a\": .data.x; conflict with \"a\": .data.y"
        );
        resolve_conflicts(&live, &mut patched, "b", &json!({"data": {"x": "2"}}), true)
            .expect("forced");
        assert_eq!(
            patched["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:y": {}}}),
            "x moved away from a"
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
