//! Server-side printing: `meta.k8s.io/v1` `Table` responses, which kubectl
//! asks for (`Accept: application/json;as=Table;...`) when it prints
//! human-readable output, so `kubectl get svc` shows TYPE, CLUSTER-IP,
//! EXTERNAL-IP and PORT(S) as on a real cluster.
//!
//! Columns follow the real server for the kinds FerroLB looks at; other kinds
//! get NAME and AGE; CRD kinds get NAME plus their `additionalPrinterColumns`
//! (plain `.a.b` paths), or NAME and AGE when they declare none.

use serde_json::{Value, json};

use crate::jsonpath::{Path, Step};
use crate::resources::ResourceType;

struct Column {
    name: String,
    kind: String,
    cell: Cell,
    priority: i64,
}

enum Cell {
    Computed(fn(&Value) -> Value),
    /// A CRD printer column: the first value its jsonPath finds.
    Path(crate::jsonpath::Path),
}

impl Column {
    fn computed(name: &str, kind: &str, cell: fn(&Value) -> Value) -> Self {
        Column {
            name: name.to_owned(),
            kind: kind.to_owned(),
            cell: Cell::Computed(cell),
            priority: 0,
        }
    }

    /// Shown only with `-o wide` (kubectl prints priority 0 columns by default).
    fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    fn value(&self, obj: &Value) -> Value {
        match &self.cell {
            Cell::Computed(f) => f(obj),
            Cell::Path(p) => match p.find(obj).into_iter().next() {
                // Like the real server, `date` columns print as ages.
                Some(Value::String(t)) if self.kind == "date" => {
                    match crate::time::parse_rfc3339(t) {
                        Some(at) => json!(crate::time::human_age(
                            crate::time::now_unix_seconds().saturating_sub(at)
                        )),
                        None => json!(t),
                    }
                }
                Some(v) => v.clone(),
                None => json!("<none>"),
            },
        }
    }
}

fn name_cell(obj: &Value) -> Value {
    json!(crate::meta::name(obj))
}

fn age_cell(obj: &Value) -> Value {
    match crate::time::parse_rfc3339(crate::meta::str_field(obj, "creationTimestamp")) {
        Some(created) => json!(crate::time::human_age(
            crate::time::now_unix_seconds().saturating_sub(created)
        )),
        None => json!("<unknown>"),
    }
}

fn text_at(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn or_none(text: String) -> Value {
    json!(if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    })
}

fn service_external_ip(obj: &Value) -> Value {
    let ingress: Vec<String> = obj
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let external = crate::meta::str_list(obj.pointer("/spec/externalIPs"));
    let all: Vec<String> = ingress.into_iter().chain(external).collect();
    if all.is_empty() && text_at(obj, "/spec/type") == "LoadBalancer" {
        return json!("<pending>");
    }
    or_none(all.join(","))
}

fn service_ports(obj: &Value) -> Value {
    let ports: Vec<String> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| {
                    let port = text_at(p, "/port");
                    let protocol = Some(text_at(p, "/protocol"))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "TCP".to_owned());
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(node) => format!("{port}:{node}/{protocol}"),
                        None => format!("{port}/{protocol}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    or_none(ports.join(","))
}

/// `kind/name` of the object an Event is about.
fn event_object(event: &Value, reference: &str) -> Value {
    let kind = text_at(event, &format!("{reference}/kind")).to_ascii_lowercase();
    let name = text_at(event, &format!("{reference}/name"));
    json!(format!("{kind}/{name}"))
}

fn count_of(obj: &Value, field: &str) -> usize {
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `spec.replicas`, which defaults to 1.
fn desired(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// `a=b,c=d` by key, as kubectl's `-o wide` SELECTOR; `<none>` without one.
fn service_selector(obj: &Value) -> Value {
    let pairs: Vec<String> = obj
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    or_none(pairs.join(","))
}

/// The roles of `node-role.kubernetes.io/<role>` labels (and `kubernetes.io/role`), sorted.
fn node_roles(obj: &Value) -> Value {
    let mut roles: Vec<String> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role) if !role.is_empty() => Some(role.to_owned()),
                    _ if k == "kubernetes.io/role" => v.as_str().map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    or_none(roles.join(","))
}

/// The first `status.addresses` entry of `kind`.
fn node_address(obj: &Value, kind: &str) -> Value {
    let address = obj
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
        })
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .unwrap_or_default();
    or_none(address.to_owned())
}

/// `<unknown>` for an empty `status.nodeInfo` field, as the real server prints it.
fn or_unknown(text: String) -> Value {
    json!(if text.is_empty() {
        "<unknown>".to_owned()
    } else {
        text
    })
}

fn node_status(obj: &Value) -> Value {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str).map(str::to_owned));
    json!(match ready.as_deref() {
        Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    })
}

fn columns_for(rt: &ResourceType) -> Vec<Column> {
    let name = Column::computed("Name", "string", name_cell);
    let age = Column::computed("Age", "string", age_cell);
    let mut columns = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            columns.push(Column::computed("Type", "string", |o| {
                json!(text_at(o, "/spec/type"))
            }));
            columns.push(Column::computed("Cluster-IP", "string", |o| {
                or_none(text_at(o, "/spec/clusterIP"))
            }));
            columns.push(Column::computed(
                "External-IP",
                "string",
                service_external_ip,
            ));
            columns.push(Column::computed("Port(s)", "string", service_ports));
            columns.push(age);
            columns.push(Column::computed("Selector", "string", service_selector).wide());
            return columns;
        }
        ("", "configmaps") => {
            columns.push(Column::computed("Data", "integer", |o| {
                json!(count_of(o, "data") + count_of(o, "binaryData"))
            }));
        }
        ("", "secrets") => {
            columns.push(Column::computed("Type", "string", |o| {
                json!(text_at(o, "/type"))
            }));
            columns.push(Column::computed("Data", "integer", |o| {
                json!(count_of(o, "data"))
            }));
        }
        ("", "namespaces") => {
            columns.push(Column::computed("Status", "string", |o| {
                json!(text_at(o, "/status/phase"))
            }));
        }
        ("", "nodes") => {
            // As the real server: AGE before VERSION, then the `-o wide` columns.
            columns.push(Column::computed("Status", "string", node_status));
            columns.push(Column::computed("Roles", "string", node_roles));
            columns.push(age);
            columns.push(Column::computed("Version", "string", |o| {
                json!(text_at(o, "/status/nodeInfo/kubeletVersion"))
            }));
            columns.push(
                Column::computed("Internal-IP", "string", |o| node_address(o, "InternalIP")).wide(),
            );
            columns.push(
                Column::computed("External-IP", "string", |o| node_address(o, "ExternalIP")).wide(),
            );
            columns.push(
                Column::computed("OS-Image", "string", |o| {
                    or_unknown(text_at(o, "/status/nodeInfo/osImage"))
                })
                .wide(),
            );
            columns.push(
                Column::computed("Kernel-Version", "string", |o| {
                    or_unknown(text_at(o, "/status/nodeInfo/kernelVersion"))
                })
                .wide(),
            );
            columns.push(
                Column::computed("Container-Runtime", "string", |o| {
                    or_unknown(text_at(o, "/status/nodeInfo/containerRuntimeVersion"))
                })
                .wide(),
            );
            return columns;
        }
        ("", "serviceaccounts") => {
            columns.push(Column::computed("Secrets", "integer", |o| {
                json!(
                    o.get("secrets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                )
            }));
        }
        ("apps", "deployments") => {
            columns.push(Column::computed("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    desired(o)
                ))
            }));
            columns.push(Column::computed("Up-to-date", "integer", |o| {
                json!(int_at(o, "/status/updatedReplicas"))
            }));
            columns.push(Column::computed("Available", "integer", |o| {
                json!(int_at(o, "/status/availableReplicas"))
            }));
        }
        ("apps", "replicasets") => {
            columns.push(Column::computed("Desired", "integer", |o| {
                json!(desired(o))
            }));
            columns.push(Column::computed("Current", "integer", |o| {
                json!(int_at(o, "/status/replicas"))
            }));
            columns.push(Column::computed("Ready", "integer", |o| {
                json!(int_at(o, "/status/readyReplicas"))
            }));
        }
        ("apps", "statefulsets") => {
            columns.push(Column::computed("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    desired(o)
                ))
            }));
        }
        ("apps", "daemonsets") => {
            for (name, pointer) in [
                ("Desired", "/status/desiredNumberScheduled"),
                ("Current", "/status/currentNumberScheduled"),
                ("Ready", "/status/numberReady"),
                ("Up-to-date", "/status/updatedNumberScheduled"),
                ("Available", "/status/numberAvailable"),
            ] {
                columns.push(Column {
                    name: name.to_owned(),
                    kind: "integer".to_owned(),
                    cell: Cell::Path(Path(
                        pointer[1..]
                            .split('/')
                            .map(|k| Step::Key(k.to_owned()))
                            .collect(),
                    )),
                    priority: 0,
                });
            }
            columns.push(Column::computed("Node Selector", "string", |o| {
                let selector = o
                    .pointer("/spec/template/spec/nodeSelector")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                or_none(selector)
            }));
        }
        ("rbac.authorization.k8s.io", "roles" | "clusterroles")
        | ("apiextensions.k8s.io", "customresourcedefinitions") => {
            // CREATED AT (the timestamp itself) instead of AGE, as the real server prints these.
            columns.push(Column::computed("Created At", "date", |o| {
                json!(crate::meta::str_field(o, "creationTimestamp"))
            }));
            return columns;
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            columns.push(Column::computed("Role", "string", |o| {
                json!(format!(
                    "{}/{}",
                    text_at(o, "/roleRef/kind"),
                    text_at(o, "/roleRef/name")
                ))
            }));
        }
        ("coordination.k8s.io", "leases") => {
            columns.push(Column::computed("Holder", "string", |o| {
                json!(text_at(o, "/spec/holderIdentity"))
            }));
        }
        ("discovery.k8s.io", "endpointslices") => {
            columns.push(Column::computed("AddressType", "string", |o| {
                json!(text_at(o, "/addressType"))
            }));
        }
        ("", "events") => {
            columns.push(Column::computed("Type", "string", |o| {
                json!(text_at(o, "/type"))
            }));
            columns.push(Column::computed("Reason", "string", |o| {
                json!(text_at(o, "/reason"))
            }));
            columns.push(Column::computed("Object", "string", |o| {
                event_object(o, "/involvedObject")
            }));
            columns.push(Column::computed("Message", "string", |o| {
                json!(text_at(o, "/message"))
            }));
        }
        ("events.k8s.io", "events") => {
            columns.push(Column::computed("Type", "string", |o| {
                json!(text_at(o, "/type"))
            }));
            columns.push(Column::computed("Reason", "string", |o| {
                json!(text_at(o, "/reason"))
            }));
            columns.push(Column::computed("Object", "string", |o| {
                event_object(o, "/regarding")
            }));
            columns.push(Column::computed("Note", "string", |o| {
                json!(text_at(o, "/note"))
            }));
        }
        _ if !rt.printer_columns.is_empty() => {
            for c in &rt.printer_columns {
                let Some(path) = crate::jsonpath::parse(&c.json_path) else {
                    continue;
                };
                columns.push(Column {
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                    cell: Cell::Path(path),
                    priority: c.priority,
                });
            }
            return columns;
        }
        _ => {}
    }
    columns.push(age);
    columns
}

/// A Table of `objects`, with the list metadata of the response.
pub fn table(rt: &ResourceType, objects: &[&Value], list_metadata: Value) -> Value {
    let columns = columns_for(rt);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.kind, "format": format, "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| c.value(obj)).collect();
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn service_rows_show_type_ips_and_ports() {
        let registry = Registry::builtin();
        let services = registry.get("", "v1", "services").expect("services");
        let pending = json!({"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.11",
            "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"}]}});
        let assigned = json!({"metadata": {"name": "b"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12", "ports": []},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"ip": "2001:db8::10"}]}}});
        let t = table(
            &services,
            &[&pending, &assigned],
            json!({"resourceVersion": "5"}),
        );
        let header: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            header,
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            t["columnDefinitions"][6]["priority"], 1,
            "SELECTOR is -o wide"
        );
        assert_eq!(t["rows"][0]["cells"][3], "<pending>");
        assert_eq!(t["rows"][0]["cells"][4], "80:30001/TCP");
        assert_eq!(t["rows"][1]["cells"][3], "203.0.113.10,2001:db8::10");
        assert_eq!(t["rows"][1]["cells"][4], "<none>");
        assert_eq!(t["rows"][1]["cells"][5], "<unknown>");
        assert_eq!(t["rows"][1]["cells"][6], "<none>");
    }

    #[test]
    fn service_selector_and_node_columns_as_the_real_server() {
        let registry = Registry::builtin();
        let services = registry.get("", "v1", "services").expect("services");
        let web = json!({"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "selector": {"tier": "front", "app": "web"}}});
        let t = table(&services, &[&web], json!({}));
        assert_eq!(t["rows"][0]["cells"][6], "app=web,tier=front");

        let nodes = registry.get("", "v1", "nodes").expect("nodes");
        let node = json!({"metadata": {"name": "node-1", "labels": {
                "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "rack": "r1"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.0.2.1"}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "kernelVersion": "6.1.0"}}});
        let bare = json!({"metadata": {"name": "node-2"}, "status": {}});
        let t = table(&nodes, &[&node, &bare], json!({}));
        let columns: Vec<(&str, i64)> = t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or(""),
                    c["priority"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(
            columns,
            [
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1)
            ]
        );
        let cells = |row: usize| -> Vec<Value> {
            t["rows"][row]["cells"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            cells(0)[1..3],
            [json!("Ready"), json!("control-plane,worker")]
        );
        assert_eq!(
            cells(0)[4..],
            [
                json!("v1.31.0"),
                json!("192.0.2.1"),
                json!("<none>"),
                json!("<unknown>"),
                json!("6.1.0"),
                json!("<unknown>")
            ]
        );
        assert_eq!(cells(1)[1..3], [json!("Unknown"), json!("<none>")]);
        assert_eq!(cells(1)[5], json!("<none>"));
    }

    #[test]
    fn crd_printer_columns_replace_age() {
        let crd = json!({
            "metadata": {"name": "addresspools.ferrolb.io"},
            "spec": {
                "group": "ferrolb.io", "scope": "Cluster",
                "names": {"plural": "addresspools", "kind": "AddressPool"},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true, "additionalPrinterColumns": [
                    {"name": "CIDR", "type": "string", "jsonPath": ".spec.cidr"},
                    {"name": "Free", "type": "integer", "jsonPath": ".status.free"},
                    {"name": "Odd", "type": "string", "jsonPath": ".spec.items[?(@.a > 1)]"},
                    {"name": "First", "type": "string", "jsonPath": ".spec.blocks[0].cidr", "priority": 1},
                ]}],
            },
        });
        let types = crate::crd::resource_types(&crd).expect("valid CRD");
        let pool = json!({"metadata": {"name": "web"}, "spec": {"cidr": "203.0.113.0/28",
            "blocks": [{"cidr": "198.51.100.0/24"}]}});
        let t = table(&types[0], &[&pool], json!({}));
        let header: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            header,
            ["Name", "CIDR", "Free", "First"],
            "unsupported jsonPaths are left out"
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "203.0.113.0/28", "<none>", "198.51.100.0/24"])
        );
        assert_eq!(t["columnDefinitions"][3]["priority"], 1);
    }

    #[test]
    fn recorder_events_show_reason_object_and_note() {
        let registry = Registry::builtin();
        let events = registry
            .get("events.k8s.io", "v1", "events")
            .expect("events");
        let event = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Allocated",
            "regarding": {"kind": "Service", "name": "web"}, "note": "203.0.113.10"});
        let t = table(&events, &[&event], json!({}));
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "e",
                "Normal",
                "Allocated",
                "service/web",
                "203.0.113.10",
                "<unknown>"
            ])
        );
    }
}
