//! Mirrors `events.k8s.io/v1` Events into core `v1` Events.
//!
//! A real apiserver stores both as one resource, so events written by
//! kube-rs' `Recorder` (events.k8s.io) show up in `kubectl get events` and
//! `kubectl describe`. This server stores per group/version, so the store
//! copies each events.k8s.io write into core v1 using the field mapping of
//! the Kubernetes event API conversion (`regarding` → `involvedObject`,
//! `note` → `message`, `series.count` → `count`, ...). Only that direction is
//! mirrored.

use serde_json::{Map, Value, json};

/// The core v1 form of an events.k8s.io/v1 Event.
pub fn to_core(event: &Value) -> Value {
    let get = |field: &str| event.get(field).cloned();
    let mut core = Map::new();
    core.insert("apiVersion".to_owned(), json!("v1"));
    core.insert("kind".to_owned(), json!("Event"));
    let mut metadata = event
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata.remove("resourceVersion");
    metadata.remove("managedFields");
    core.insert("metadata".to_owned(), Value::Object(metadata));
    let renames = [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedSource", "source"),
    ];
    for (from, to) in renames {
        if let Some(v) = get(from) {
            core.insert(to.to_owned(), v);
        }
    }
    for same in ["reason", "type", "action", "related", "eventTime", "series"] {
        if let Some(v) = get(same) {
            core.insert(same.to_owned(), v);
        }
    }
    let count = event
        .pointer("/series/count")
        .or_else(|| event.get("deprecatedCount"))
        .cloned()
        .unwrap_or(json!(1));
    core.insert("count".to_owned(), count);
    if !core.contains_key("lastTimestamp")
        && let Some(last) = event
            .pointer("/series/lastObservedTime")
            .or_else(|| event.get("eventTime"))
    {
        core.insert("lastTimestamp".to_owned(), last.clone());
    }
    if !core.contains_key("source")
        && let Some(controller) = get("reportingController")
    {
        core.insert("source".to_owned(), json!({"component": controller}));
    }
    Value::Object(core)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::to_core;

    #[test]
    fn recorder_event_maps_to_core_fields() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default", "resourceVersion": "9", "uid": "u"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Allocated", "type": "Normal",
            "action": "Allocate", "note": "203.0.113.10", "reportingController": "ferrolb",
            "reportingInstance": "p-1", "regarding": {"kind": "Service", "name": "web", "namespace": "default"},
            "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
        });
        let core = to_core(&event);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "203.0.113.10");
        assert_eq!(core["count"], 3);
        assert_eq!(core["lastTimestamp"], "2026-01-01T00:01:00.000000Z");
        assert_eq!(core["source"], json!({"component": "ferrolb"}));
        assert_eq!(core["reportingComponent"], "ferrolb");
        assert!(core["metadata"].get("resourceVersion").is_none());
        assert_eq!(core["metadata"]["uid"], "u");
    }
}
