//! Per-kind rules of kube-apiserver's registry strategies for kinds other than
//! Services (see [`crate::defaults`] for those): the defaults `SetDefaults_*`
//! fill in for apps/v1 workloads (Deployments, ReplicaSets, DaemonSets,
//! StatefulSets) and Secrets (`type`, and `stringData` merged into `data`), the `kubernetes.io/metadata.name` label of
//! Namespaces, and `PrepareForCreate` dropping `status` from workloads and
//! from custom resources with a status subresource, so `kubectl get -o yaml`
//! and `describe` read as on a real cluster. No controller runs: no Pods are
//! made and `status` stays what clients write to `/status`.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Inserts `value` at `key` when the key is missing.
fn or_insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_owned()).or_insert(value);
}

fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// A Secret's write-only `stringData`: merged into `data` (base64), overriding keys of the
/// same name, then dropped, as core/v1's conversion does; clients never read it back.
fn merge_string_data(map: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            data.insert(key, Value::String(encoded));
        }
    }
}

/// `PrepareForCreate`: a new workload or custom resource with a status
/// subresource starts without status (only `/status` writes set it).
pub fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    let clears_status =
        rt.status_subresource && (rt.group == "apps" || rt.defined_by_crd.is_some());
    if clears_status && let Some(map) = obj.as_object_mut() {
        map.remove("status");
    }
}

/// Applies the defaults of the object's kind (on create and on every update).
pub fn default_on_create(rt: &ResourceType, obj: &mut Value) {
    if rt.group.is_empty() {
        match rt.plural.as_str() {
            "secrets" => {
                if let Some(map) = obj.as_object_mut() {
                    merge_string_data(map);
                    let empty = map
                        .get("type")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty);
                    if empty {
                        map.insert("type".to_owned(), json!("Opaque"));
                    }
                }
            }
            "namespaces" => {
                let name = crate::meta::name(obj).to_owned();
                let meta = crate::meta::metadata_mut(obj);
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
                }
            }
            _ => {}
        }
        return;
    }
    if rt.group != "apps" || rt.version != "v1" {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match rt.plural.as_str() {
        "deployments" => {
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(spec, "progressDeadlineSeconds", json!(600));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(strategy) = strategy.as_object_mut() {
                or_insert(strategy, "type", json!("RollingUpdate"));
                if strategy.get("type") == Some(&json!("RollingUpdate")) {
                    let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(rolling) = rolling.as_object_mut() {
                        or_insert(rolling, "maxUnavailable", json!("25%"));
                        or_insert(rolling, "maxSurge", json!("25%"));
                    }
                }
            }
        }
        "replicasets" => or_insert(spec, "replicas", json!(1)),
        "daemonsets" => {
            or_insert(spec, "revisionHistoryLimit", json!(10));
            let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
            if let Some(strategy) = strategy.as_object_mut() {
                or_insert(strategy, "type", json!("RollingUpdate"));
                if strategy.get("type") == Some(&json!("RollingUpdate")) {
                    let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(rolling) = rolling.as_object_mut() {
                        or_insert(rolling, "maxUnavailable", json!(1));
                        or_insert(rolling, "maxSurge", json!(0));
                    }
                }
            }
        }
        "statefulsets" => {
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(spec, "podManagementPolicy", json!("OrderedReady"));
            or_insert(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            or_insert(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        _ => return,
    }
    if let Some(pod_spec) = object_at(spec, "template").and_then(|t| object_at(t, "spec")) {
        default_pod_spec(pod_spec);
    }
}

/// `SetDefaults_PodSpec` and `SetDefaults_Container` for the fields kubectl shows.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    or_insert(spec, "restartPolicy", json!("Always"));
    or_insert(spec, "terminationGracePeriodSeconds", json!(30));
    or_insert(spec, "dnsPolicy", json!("ClusterFirst"));
    or_insert(spec, "securityContext", json!({}));
    or_insert(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            or_insert(
                container,
                "terminationMessagePath",
                json!("/dev/termination-log"),
            );
            or_insert(container, "terminationMessagePolicy", json!("File"));
            or_insert(container, "resources", json!({}));
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            or_insert(container, "imagePullPolicy", json!(pull_policy(image)));
            for port in container
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object_mut)
            {
                or_insert(port, "protocol", json!("TCP"));
            }
        }
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn deployment_gets_the_real_servers_defaults() {
        let registry = Registry::builtin();
        let rt = registry
            .get("apps", "v1", "deployments")
            .expect("deployments");
        let mut d = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]},
                                    {"name": "side", "image": "registry.example:5000/side:1.2"}]}}}});
        default_on_create(&rt, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn a_secrets_string_data_is_merged_into_data_and_dropped() {
        let registry = Registry::builtin();
        let rt = registry.get("", "v1", "secrets").expect("secrets");
        let mut secret = json!({"data": {"a": "b2xk", "keep": "eA=="},
                                "stringData": {"a": "new", "password": "s3cret"}});
        default_on_create(&rt, &mut secret);
        assert_eq!(
            secret,
            json!({"type": "Opaque", "data": {"a": "bmV3", "keep": "eA==", "password": "czNjcmV0"}})
        );
    }

    #[test]
    fn explicit_values_are_kept() {
        let registry = Registry::builtin();
        let rt = registry
            .get("apps", "v1", "daemonsets")
            .expect("daemonsets");
        let mut ds =
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}, "template": {"spec": {}}}});
        default_on_create(&rt, &mut ds);
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    }
}
