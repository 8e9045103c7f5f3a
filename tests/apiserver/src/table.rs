//! Server-side printing: `meta.k8s.io/v1` `Table` responses, which kubectl
//! asks for (`Accept: application/json;as=Table;...`) when it prints
//! human-readable output, so `kubectl get svc` shows TYPE, CLUSTER-IP,
//! EXTERNAL-IP and PORT(S) as on a real cluster.
//!
//! Columns follow the real server for the kinds FerroLB looks at; other kinds
//! (and CRDs, plus their simple `additionalPrinterColumns`) get NAME and AGE.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Whether the request's `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

struct Column {
    name: &'static str,
    kind: &'static str,
    cell: fn(&Value) -> Value,
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
    let external: Vec<String> = obj
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
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

fn count_of(obj: &Value, field: &str) -> usize {
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
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
    let name = Column {
        name: "Name",
        kind: "string",
        cell: name_cell,
    };
    let age = Column {
        name: "Age",
        kind: "string",
        cell: age_cell,
    };
    let mut columns = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            columns.push(Column {
                name: "Type",
                kind: "string",
                cell: |o| json!(text_at(o, "/spec/type")),
            });
            columns.push(Column {
                name: "Cluster-IP",
                kind: "string",
                cell: |o| or_none(text_at(o, "/spec/clusterIP")),
            });
            columns.push(Column {
                name: "External-IP",
                kind: "string",
                cell: service_external_ip,
            });
            columns.push(Column {
                name: "Port(s)",
                kind: "string",
                cell: service_ports,
            });
        }
        ("", "configmaps") => {
            columns.push(Column {
                name: "Data",
                kind: "integer",
                cell: |o| json!(count_of(o, "data") + count_of(o, "binaryData")),
            });
        }
        ("", "secrets") => {
            columns.push(Column {
                name: "Type",
                kind: "string",
                cell: |o| json!(text_at(o, "/type")),
            });
            columns.push(Column {
                name: "Data",
                kind: "integer",
                cell: |o| json!(count_of(o, "data")),
            });
        }
        ("", "namespaces") => {
            columns.push(Column {
                name: "Status",
                kind: "string",
                cell: |o| json!(text_at(o, "/status/phase")),
            });
        }
        ("", "nodes") => columns.push(Column {
            name: "Status",
            kind: "string",
            cell: node_status,
        }),
        ("coordination.k8s.io", "leases") => {
            columns.push(Column {
                name: "Holder",
                kind: "string",
                cell: |o| json!(text_at(o, "/spec/holderIdentity")),
            });
        }
        ("discovery.k8s.io", "endpointslices") => {
            columns.push(Column {
                name: "AddressType",
                kind: "string",
                cell: |o| json!(text_at(o, "/addressType")),
            });
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
            json!({"name": c.name, "type": c.kind, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(obj)).collect();
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
                "Age"
            ]
        );
        assert_eq!(t["rows"][0]["cells"][3], "<pending>");
        assert_eq!(t["rows"][0]["cells"][4], "80:30001/TCP");
        assert_eq!(t["rows"][1]["cells"][3], "203.0.113.10,2001:db8::10");
        assert_eq!(t["rows"][1]["cells"][4], "<none>");
        assert_eq!(t["rows"][1]["cells"][5], "<unknown>");
    }

    #[test]
    fn only_a_table_first_preference_counts() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
