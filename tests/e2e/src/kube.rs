//! The Kubernetes side: `kubectl` run in the control-plane namespace against the
//! test-apiserver, and the objects the harness writes because it plays the parts of a cluster
//! that do not exist here (kubelet: Nodes and their Ready condition; the EndpointSlice
//! controller: the announcer's and the applications' EndpointSlices).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// Namespace and name of the announcer Service the provider discovers announcers from.
pub const ANNOUNCER_NAMESPACE: &str = "kube-system";
pub const ANNOUNCER_SERVICE: &str = "ferrolb-announcer";

/// kubectl against one API server, from inside namespace `ns`.
pub struct Kubectl {
    pub ns: String,
    pub kubeconfig: PathBuf,
    /// kubectl caches discovery per host:port; every run gets its own directory.
    pub cache_dir: PathBuf,
}

impl Kubectl {
    /// Runs kubectl with `args`, feeding `stdin`; the output whatever the exit status.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        let cache = self.cache_dir.to_string_lossy().into_owned();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "kubectl"])
            .args(["--kubeconfig", &kubeconfig, "--cache-dir", &cache])
            .arg("--request-timeout=10s")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kubectl {args:?}: {e}"));
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout; panics with stderr when it fails.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of one object.
    pub fn apply(&self, object: &Value) {
        self.ok(&["apply", "-f", "-"], Some(&object.to_string()));
    }

    /// The object as JSON, or None when it does not exist (other errors panic).
    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", resource, name, "-o", "json"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let out = self.run(&args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("NotFound") {
            return None;
        }
        assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
        Some(serde_json::from_slice(&out.stdout).expect("kubectl prints JSON"))
    }

    /// The items of `kubectl get <resource> -n <namespace> -o json`.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        let text = self.ok(&["get", resource, "-n", namespace, "-o", "json"], None);
        let list: Value = serde_json::from_str(&text).expect("kubectl prints JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// A merge patch, of the status subresource when `status` is true.
    pub fn merge_patch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
    ) {
        let body = patch.to_string();
        let mut args = vec!["patch", resource, name, "--type=merge", "-p", &body];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        if status {
            args.push("--subresource=status");
        }
        self.ok(&args, None);
    }

    /// A merge patch of `/api/v1/nodes/<name>/status`, sent over HTTP by the harness
    /// itself: `kubectl patch --subresource` needs kubectl 1.24+, and Debian's
    /// kubernetes-client is 1.20.
    pub fn patch_node_status(&self, name: &str, patch: &Value) {
        let port = self.server_port();
        let host = super::topology::Host {
            name: "cp".into(),
            ns: self.ns.clone(),
            ipv4: "127.0.0.1".into(),
            ipv6: "::1".into(),
        };
        let path = format!("/api/v1/nodes/{name}/status");
        let (status, body) = super::client::http_request(
            &host,
            "127.0.0.1",
            port,
            ("PATCH", &path, "application/merge-patch+json"),
            &patch.to_string(),
        )
        .unwrap_or_else(|e| panic!("PATCH {path}: {e}"));
        assert_eq!(status, 200, "PATCH {path}: HTTP {status}: {body}");
    }

    /// The API server's port, from the kubeconfig it wrote (`server: http://127.0.0.1:N`).
    pub fn server_port(&self) -> u16 {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read kubeconfig");
        text.lines()
            .find_map(|line| line.trim().strip_prefix("server:"))
            .and_then(|url| {
                url.trim()
                    .trim_matches('"')
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no server port in {}", self.kubeconfig.display()))
    }

    /// `kubectl delete --wait=false`.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.ok(
            &["delete", resource, name, "-n", namespace, "--wait=false"],
            None,
        );
    }

    /// Events whose involvedObject is `<kind> namespace/name`, oldest first, as
    /// `(reason, message)`.
    pub fn events_for(&self, kind: &str, namespace: &str, name: &str) -> Vec<(String, String)> {
        let mut events: Vec<Value> = self
            .list("events", namespace)
            .into_iter()
            .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
            .collect();
        events.sort_by_key(|e| {
            e["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse::<u64>().ok())
                .unwrap_or(0)
        });
        events
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// A Node as the kubelet registers it (Ready, InternalIP addresses); the status is written
/// separately through the status subresource ([`node_status`]).
pub fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {}
    })
}

/// The status the kubelet reports: `Ready` True or False, and the node's addresses.
pub fn node_status(ready: bool, ipv4: &str, ipv6: &str) -> Value {
    let (status, reason) = if ready {
        ("True", "KubeletReady")
    } else {
        ("False", "KubeletNotReady")
    };
    json!({"status": {
        "conditions": [{"type": "Ready", "status": status, "reason": reason,
                        "message": format!("kubelet says Ready={status} (played by the e2e harness)")}],
        "addresses": [{"type": "InternalIP", "address": ipv4},
                      {"type": "InternalIP", "address": ipv6},
                      {"type": "Hostname", "address": "unused"}]
    }})
}

/// The headless Service in front of the announcer DaemonSet.
pub fn announcer_service(port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": ANNOUNCER_SERVICE, "namespace": ANNOUNCER_NAMESPACE},
        "spec": {"clusterIP": "None", "selector": {"app": ANNOUNCER_SERVICE},
                 "ports": [{"name": "grpc", "port": port, "protocol": "TCP"}]}
    })
}

/// One endpoint of an EndpointSlice: `(node name, address, ready)`.
pub type Endpoint<'a> = (&'a str, &'a str, bool);

/// An EndpointSlice as the EndpointSlice controller writes it for Service
/// `namespace/service`, with one port named `port_name`.
pub fn endpoint_slice(
    namespace: &str,
    service: &str,
    family: &str,
    port_name: &str,
    port: u16,
    endpoints: &[Endpoint<'_>],
) -> Value {
    let suffix = family.to_lowercase();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-{suffix}"), "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "e2e-harness"}},
        "addressType": family,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": endpoints.iter().map(|(node, address, ready)| json!({
            "addresses": [address],
            "nodeName": node,
            "conditions": {"ready": ready, "serving": ready, "terminating": false},
        })).collect::<Vec<_>>()
    })
}

/// The pool ConfigMap in kube-vip-cloud-provider's format.
pub fn pool_configmap(data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubevip", "namespace": "kube-system"},
        "data": data
    })
}

/// A namespace.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A Service of type LoadBalancer on TCP port 80 (`spec` fields are merged in from `extra`).
pub fn lb_service(namespace: &str, name: &str, annotations: Value, extra_spec: Value) -> Value {
    let mut spec = json!({
        "type": "LoadBalancer",
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": spec
    })
}

/// The Service's `status.loadBalancer.ingress[].ip`.
pub fn ingress_ips(service: &Value) -> Vec<String> {
    service["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|i| i["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The Service's condition of `type`, if any.
pub fn condition<'a>(service: &'a Value, kind: &str) -> Option<&'a Value> {
    service["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}
