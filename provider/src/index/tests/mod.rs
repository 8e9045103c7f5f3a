//! Index tests: build an index, apply objects, assert on the writes that come out.
//! No API server: `commit` applies a write's JSON Patches to the object the way the API
//! server would (including the resourceVersion `test`), so sequences can be replayed.

use std::{collections::BTreeMap, sync::Arc};

use json_patch::Patch;
use k8s_openapi::{
    api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use serde_json::{Value, json};

use super::*;
use crate::patch::test_resource_version;

pub(super) const SOURCE: &str = "kube-system/kubevip";

pub(super) fn settings() -> IndexSettings {
    IndexSettings {
        classes: ClassFilter::default(),
        write_load_balancer_ip: true,
        status: StatusMode::Allocated,
        reallocate_outside_pools: false,
        config_source: SOURCE.to_string(),
        cluster_default_mode: None,
        ingress_ip_only: false,
        requests_unchecked: false,
    }
}

pub(super) fn fixed_clock() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(super) fn index_with(settings: IndexSettings) -> Index {
    Index::with_clock(settings, Arc::new(Metrics::default()), fixed_clock)
}

pub(super) fn config(entries: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubevip".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

pub(super) fn service(namespace: &str, name: &str, created: i64) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            creation_timestamp: Some(Time(
                Timestamp::from_second(created).unwrap_or(Timestamp::UNIX_EPOCH),
            )),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: Some(Default::default()),
    }
}

pub(super) fn with_spec(mut svc: Service, change: impl FnOnce(&mut ServiceSpec)) -> Service {
    if let Some(spec) = svc.spec.as_mut() {
        change(spec);
    }
    svc
}

pub(super) fn annotated(mut svc: Service, key: &str, value: &str) -> Service {
    svc.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
    svc
}

/// Applies `write` to `svc` like the API server: the `test` must pass, then the patch, then
/// a new resourceVersion.
pub(super) fn commit(svc: &Service, write: &ServiceWrite) -> Service {
    let mut value = serde_json::to_value(svc).expect("service serializes");
    for part in [&write.main, &write.status] {
        if part.is_empty() {
            continue;
        }
        let mut ops = vec![test_resource_version(
            svc.metadata.resource_version.as_deref().unwrap_or_default(),
        )];
        ops.extend(part.operations());
        json_patch::patch(&mut value, &Patch(ops)).expect("patch applies");
    }
    let mut next: Service = serde_json::from_value(value).expect("still a service");
    let rv: u64 = svc
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    next.metadata.resource_version = Some((rv + 1).to_string());
    next
}

pub(super) fn only(writes: Vec<ServiceWrite>, name: &str) -> ServiceWrite {
    let mut mine: Vec<ServiceWrite> = writes
        .into_iter()
        .filter(|w| &*w.key.name == name)
        .collect();
    assert_eq!(mine.len(), 1, "expected one write for {name}: {mine:?}");
    mine.remove(0)
}

pub(super) fn annotation(svc: &Service, key: &str) -> Option<String> {
    svc.metadata.annotations.as_ref()?.get(key).cloned()
}

pub(super) fn condition(svc: &Service) -> (String, String, String) {
    let c = svc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION))
        .expect("our condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

pub(super) fn ingress(svc: &Service) -> Vec<Value> {
    let value = serde_json::to_value(svc).expect("serializes");
    value["status"]["loadBalancer"]["ingress"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(super) const CONDITION: &str = "ferrolb.io/AddressAllocated";

/// An index that has listed `services` and read the pool config; returns it with the writes.
pub(super) fn started(
    settings: IndexSettings,
    entries: &[(&str, &str)],
    services: Vec<Service>,
) -> (Index, Vec<ServiceWrite>) {
    let mut index = index_with(settings);
    let mut writes = index.reset_services(&services);
    assert!(writes.is_empty(), "nothing before the ConfigMap is read");
    writes.extend(index.apply_config(Some(&config(entries))));
    (index, writes)
}

mod changes;
mod kube_vip;
mod kvcp;
mod kvcp_tables;
mod lifecycle;
mod pool_objects;
mod pool_targets;
mod requests;
mod rereads;
