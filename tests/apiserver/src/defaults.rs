//! Defaulting and allocation a real apiserver does for Services, because the
//! provider reads these fields: `spec.type`, `ipFamilies`/`ipFamilyPolicy`
//! (which address families to allocate), `clusterIP(s)`, and `nodePort`s for
//! NodePort/LoadBalancer Services. Also the object-name rules (RFC 1123) and
//! the fields a real apiserver lets be set only once: a Service's `clusterIP`
//! and a Node's `spec.providerID` (a cloud provider that set the wrong one
//! would otherwise look harmless here and block the real one in a cluster).
//!
//! The cluster this server pretends to be is dual-stack with service CIDRs
//! 10.96.0.0/16 and fd00:10:96::/112 and node ports 30000-32767.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::resources::ResourceType;

/// Cluster IPs and node ports in use.
#[derive(Debug, Default, Clone)]
pub struct Allocations {
    used: HashSet<String>,
    next_v4: u32,
    next_v6: u32,
    next_node_port: u32,
}

impl Allocations {
    fn claim(&mut self, item: String) -> Result<(), String> {
        if self.used.insert(item.clone()) {
            Ok(())
        } else {
            Err(item)
        }
    }

    fn next_cluster_ip(&mut self, family: &str) -> Result<String, ApiError> {
        for _ in 0..65_000 {
            let ip = if family == "IPv6" {
                self.next_v6 = self.next_v6 % 65_000 + 1;
                format!("fd00:10:96::{:x}", self.next_v6 + 10)
            } else {
                self.next_v4 = self.next_v4 % 65_000 + 1;
                let n = self.next_v4 + 10;
                format!("10.96.{}.{}", n / 256, n % 256)
            };
            if self.claim(ip.clone()).is_ok() {
                return Ok(ip);
            }
        }
        Err(ApiError::Invalid(format!(
            "no free {family} cluster IP left"
        )))
    }

    fn next_node_port(&mut self) -> Result<i64, ApiError> {
        for _ in 0..2768 {
            self.next_node_port = (self.next_node_port + 1) % 2768;
            let port = 30_000 + i64::from(self.next_node_port);
            if self.claim(format!("nodeport/{port}")).is_ok() {
                return Ok(port);
            }
        }
        Err(ApiError::Invalid(
            "no free node port left in 30000-32767".to_owned(),
        ))
    }

    /// Frees what a deleted Service held.
    pub fn release(&mut self, service: &Value) {
        for ip in meta::str_list(service.pointer("/spec/clusterIPs")) {
            self.used.remove(&ip);
        }
        for port in ports(service) {
            if let Some(n) = port.get("nodePort").and_then(Value::as_i64) {
                self.used.remove(&format!("nodeport/{n}"));
            }
        }
    }
}

fn ports(service: &Value) -> Vec<Value> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Checks `metadata.name` against the rule for the kind: RFC 1123 labels for
/// namespaces and Services (they become DNS labels), RFC 1123 subdomains otherwise.
pub fn check_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let label_only = rt.group.is_empty() && matches!(rt.plural.as_str(), "namespaces" | "services");
    let max = if label_only { 63 } else { 253 };
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = name.len() <= max
        && if label_only {
            valid_label(name)
        } else {
            name.split('.').all(valid_label)
        };
    if ok {
        return Ok(());
    }
    let rule = if label_only {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
    };
    Err(ApiError::Invalid(format!(
        "{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": {rule}",
        rt.kind
    )))
}

/// Refuses a Node update that changes a set `spec.providerID`, with the sentence of
/// Kubernetes' `ValidateNodeUpdate` (pkg/apis/core/validation): the field may only go
/// from "" to a value.
pub fn check_node_update(new: &Value, old: &Value) -> Result<(), ApiError> {
    let provider_id = |node: &Value| {
        node.pointer("/spec/providerID")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let old_id = provider_id(old);
    if old_id.is_empty() || provider_id(new) == old_id {
        return Ok(());
    }
    Err(ApiError::Invalid(format!(
        "Node \"{}\" is invalid: spec.providerID: Forbidden: node updates may not change \
         providerID except from \"\" to valid",
        meta::name(old)
    )))
}

/// Fills in defaults and allocations of a Service being written. `old` is the
/// stored Service on update: allocated values the new spec omits are kept,
/// and changing `clusterIP` is refused as the real server does.
pub fn default_service(
    svc: &mut Value,
    old: Option<&Value>,
    alloc: &mut Allocations,
) -> Result<(), ApiError> {
    let name = crate::meta::name(svc).to_owned();
    let invalid =
        |what: String| ApiError::Invalid(format!("Service \"{name}\" is invalid: {what}"));
    let Some(obj) = svc.as_object_mut() else {
        return Ok(());
    };
    let spec = obj
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(spec) = spec.as_object_mut() else {
        return Err(invalid("spec: must be an object".to_owned()));
    };
    let old_spec = old.and_then(|o| o.get("spec")).and_then(Value::as_object);
    if let Some(old_spec) = old_spec {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if !spec.contains_key(field)
                && let Some(v) = old_spec.get(field)
            {
                spec.insert(field.to_owned(), v.clone());
            }
        }
        let old_ip = old_spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
        if !old_ip.is_empty() && new_ip != old_ip {
            return Err(invalid(format!(
                "spec.clusterIP: Invalid value: \"{new_ip}\": field is immutable"
            )));
        }
    }
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    spec.insert("type".to_owned(), json!(service_type));
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if service_type == "ExternalName" {
        return Ok(());
    }
    spec.entry("internalTrafficPolicy")
        .or_insert_with(|| json!("Cluster"));
    let policy = spec
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("SingleStack")
        .to_owned();
    if !matches!(
        policy.as_str(),
        "SingleStack" | "PreferDualStack" | "RequireDualStack"
    ) {
        return Err(invalid(format!(
            "spec.ipFamilyPolicy: Unsupported value: \"{policy}\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\""
        )));
    }
    let mut families = meta::str_list(spec.get("ipFamilies"));
    if let Some(bad) = families.iter().find(|f| *f != "IPv4" && *f != "IPv6") {
        return Err(invalid(format!(
            "spec.ipFamilies: Unsupported value: \"{bad}\": supported values: \"IPv4\", \"IPv6\""
        )));
    }
    if families.is_empty() {
        families.push("IPv4".to_owned());
    }
    if policy != "SingleStack" && families.len() == 1 {
        let other = if families[0] == "IPv4" {
            "IPv6"
        } else {
            "IPv4"
        };
        families.push(other.to_owned());
    }
    if policy == "SingleStack" && families.len() > 1 {
        return Err(invalid("spec.ipFamilies: Invalid value: two families need ipFamilyPolicy PreferDualStack or RequireDualStack".to_owned()));
    }
    spec.insert("ipFamilyPolicy".to_owned(), json!(policy));
    spec.insert("ipFamilies".to_owned(), json!(families));
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if headless {
        spec.insert("clusterIPs".to_owned(), json!(["None"]));
    } else if old_spec.is_none() || spec.get("clusterIPs").is_none() {
        let mut ips = Vec::new();
        let requested = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        for (i, family) in families.iter().enumerate() {
            let ip = match (&requested, i) {
                (Some(ip), 0) => {
                    alloc
                        .claim(ip.clone())
                        .map_err(|ip| invalid(format!("spec.clusterIPs: Invalid value: \"{ip}\": provided IP is already allocated")))?;
                    ip.clone()
                }
                _ => alloc.next_cluster_ip(family)?,
            };
            ips.push(ip);
        }
        spec.insert("clusterIP".to_owned(), json!(ips[0]));
        spec.insert("clusterIPs".to_owned(), json!(ips));
    }
    let wants_node_ports = matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        && spec
            .get("allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            != Some(false);
    if service_type == "LoadBalancer" {
        spec.entry("allocateLoadBalancerNodePorts")
            .or_insert_with(|| json!(true));
    }
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer") {
        spec.entry("externalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    let old_ports: Vec<Value> = old.map(ports).unwrap_or_default();
    if let Some(Value::Array(list)) = spec.get_mut("ports") {
        for port in list.iter_mut() {
            let Some(p) = port.as_object_mut() else {
                return Err(invalid(
                    "spec.ports: every port must be an object".to_owned(),
                ));
            };
            let number = p.get("port").cloned().unwrap_or(Value::Null);
            p.entry("protocol").or_insert_with(|| json!("TCP"));
            p.entry("targetPort").or_insert_with(|| number.clone());
            if wants_node_ports && p.get("nodePort").is_none() {
                let kept = old_ports
                    .iter()
                    .find(|o| {
                        o.get("port") == Some(&number) && o.get("protocol") == p.get("protocol")
                    })
                    .and_then(|o| o.get("nodePort"))
                    .cloned();
                let node_port = match kept {
                    Some(n) => n,
                    None => json!(alloc.next_node_port()?),
                };
                p.insert("nodePort".to_owned(), node_port);
            }
        }
    }
    // Node ports of ports the update removed go back to the pool.
    let kept: Vec<Value> = spec
        .get("ports")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|p| p.get("nodePort").cloned())
                .collect()
        })
        .unwrap_or_default();
    for old_port in &old_ports {
        if let Some(n) = old_port
            .get("nodePort")
            .filter(|n| !kept.contains(n))
            .and_then(Value::as_i64)
        {
            alloc.used.remove(&format!("nodeport/{n}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn cluster_ip_service_gets_single_stack_ipv4_defaults() {
        let mut alloc = Allocations::default();
        let mut s = svc(json!({"ports": [{"port": 80}]}));
        default_service(&mut s, None, &mut alloc).expect("defaults");
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(s["spec"]["clusterIPs"], json!([s["spec"]["clusterIP"]]));
        assert_eq!(
            s["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP", "targetPort": 80}])
        );
    }

    #[test]
    fn dual_stack_load_balancer_gets_two_cluster_ips_and_node_ports() {
        let mut alloc = Allocations::default();
        let mut s = svc(
            json!({"type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 443}]}),
        );
        default_service(&mut s, None, &mut alloc).expect("defaults");
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        let ips = meta::str_list(s.pointer("/spec/clusterIPs"));
        assert!(ips.len() == 2 && ips[1].contains(':'), "{ips:?}");
        let node_port = s["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
        assert!((30_000..=32_767).contains(&node_port), "{node_port}");
    }

    #[test]
    fn update_keeps_allocations_and_refuses_a_new_cluster_ip() {
        let mut alloc = Allocations::default();
        let mut old = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        default_service(&mut old, None, &mut alloc).expect("create");
        let mut new = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        default_service(&mut new, Some(&old), &mut alloc).expect("update");
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        assert_eq!(
            new["spec"]["ports"][0]["nodePort"],
            old["spec"]["ports"][0]["nodePort"]
        );
        let mut moved = svc(json!({"clusterIP": "10.96.200.200"}));
        let err = default_service(&mut moved, Some(&old), &mut alloc).expect_err("immutable");
        assert!(err.to_string().contains("field is immutable"), "{err}");
    }

    #[test]
    fn requested_cluster_ip_cannot_be_taken_twice() {
        let mut alloc = Allocations::default();
        let mut a = svc(json!({"clusterIP": "10.96.100.1"}));
        default_service(&mut a, None, &mut alloc).expect("first");
        let mut b = svc(json!({"clusterIP": "10.96.100.1"}));
        let err = default_service(&mut b, None, &mut alloc).expect_err("taken");
        assert!(err.to_string().contains("already allocated"), "{err}");
        alloc.release(&a);
        default_service(&mut b, None, &mut alloc).expect("free again after release");
    }

    #[test]
    fn names_follow_rfc1123() {
        let registry = Registry::builtin();
        let services = registry.get("", "v1", "services").expect("services");
        let configmaps = registry.get("", "v1", "configmaps").expect("configmaps");
        assert!(check_name(&services, "web-1").is_ok());
        assert!(
            check_name(&services, "web.1").is_err(),
            "service names are labels"
        );
        assert!(check_name(&configmaps, "kube-vip.config").is_ok());
        for bad in ["Web", "-web", "web-", "a..b", "web_1", ""] {
            assert!(check_name(&configmaps, bad).is_err(), "{bad}");
        }
    }
}
