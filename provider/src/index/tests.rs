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
use crate::{desired::Field, nodes::test_resource_version};

const SOURCE: &str = "kube-system/kubevip";

fn settings() -> IndexSettings {
    IndexSettings {
        classes: ClassFilter::default(),
        write_load_balancer_ip: true,
        status: StatusMode::Allocated,
        reallocate_outside_pools: false,
        config_source: SOURCE.to_string(),
    }
}

fn fixed_clock() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn index_with(settings: IndexSettings) -> Index {
    Index::with_clock(settings, Arc::new(Metrics::default()), fixed_clock)
}

fn config(entries: &[(&str, &str)]) -> ConfigMap {
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

fn service(namespace: &str, name: &str, created: i64) -> Service {
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

fn with_spec(mut svc: Service, change: impl FnOnce(&mut ServiceSpec)) -> Service {
    if let Some(spec) = svc.spec.as_mut() {
        change(spec);
    }
    svc
}

fn annotated(mut svc: Service, key: &str, value: &str) -> Service {
    svc.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
    svc
}

/// Applies `write` to `svc` like the API server: the `test` must pass, then the patch, then
/// a new resourceVersion.
fn commit(svc: &Service, write: &ServiceWrite) -> Service {
    let mut value = serde_json::to_value(svc).expect("service serializes");
    for part in [&write.main, &write.status] {
        if part.is_empty() {
            continue;
        }
        let mut ops = vec![test_resource_version(
            svc.metadata.resource_version.as_deref().unwrap_or_default(),
        )];
        ops.extend(part.iter().cloned());
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

fn only(writes: Vec<ServiceWrite>, name: &str) -> ServiceWrite {
    let mut mine: Vec<ServiceWrite> = writes.into_iter().filter(|w| w.key.name == name).collect();
    assert_eq!(mine.len(), 1, "expected one write for {name}: {mine:?}");
    mine.remove(0)
}

fn annotation(svc: &Service, key: &str) -> Option<String> {
    svc.metadata.annotations.as_ref()?.get(key).cloned()
}

fn condition(svc: &Service) -> (String, String, String) {
    let c = svc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION))
        .expect("our condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn ingress(svc: &Service) -> Vec<Value> {
    let value = serde_json::to_value(svc).expect("serializes");
    value["status"]["loadBalancer"]["ingress"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

const CONDITION: &str = "ferrolb.io/AddressAllocated";

/// An index that has listed `services` and read the pool config; returns it with the writes.
fn started(
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

#[test]
fn nothing_is_allocated_before_services_and_config_are_listed() {
    let mut index = index_with(settings());
    assert!(
        index
            .apply_config(Some(&config(&[("range-global", "192.0.2.10-192.0.2.20")])))
            .is_empty()
    );
    assert!(
        index
            .apply_service(&service("default", "web", 1))
            .is_empty()
    );
    assert!(!index.is_serving());
    let writes = index.reset_services(&[service("default", "web", 1)]);
    assert!(index.is_serving());
    assert_eq!(writes.len(), 1);
}

#[test]
fn new_service_gets_annotation_label_ip_status_condition_finalizer_and_event() {
    let svc = service("default", "web", 1);
    let (_, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let write = only(writes, "web");
    assert!(write.allocates);
    assert_eq!(write.resource_version, "1");
    let after = commit(&svc, &write);
    assert_eq!(
        annotation(&after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.10")
    );
    assert_eq!(
        annotation(&after, "ferrolb.io/allocated").as_deref(),
        Some("192.0.2.10")
    );
    assert_eq!(
        after
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("implementation"))
            .map(String::as_str),
        Some("kube-vip")
    );
    assert_eq!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref()),
        Some("192.0.2.10")
    );
    assert_eq!(
        after.metadata.finalizers,
        Some(vec![
            "service.kubernetes.io/load-balancer-cleanup".to_string()
        ])
    );
    assert_eq!(
        ingress(&after),
        vec![json!({"ip": "192.0.2.10", "ipMode": "VIP"})]
    );
    let (status, reason, message) = condition(&after);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Allocated"));
    assert!(
        message.contains("192.0.2.10") && message.contains("global"),
        "{message}"
    );
    assert_eq!(write.events.len(), 1);
    assert_eq!(write.events[0].reason, "AddressAllocated");
    assert!(
        write.events[0].note.contains("192.0.2.10") && write.events[0].note.contains("pool global")
    );
}

#[test]
fn service_already_in_desired_state_causes_no_write() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert!(
        index.apply_service(&after).is_empty(),
        "the watch echo of our own write must not cause a write"
    );
}

#[test]
fn restart_adopts_existing_addresses_before_allocating_new_ones() {
    let pool = [("range-global", "192.0.2.10-192.0.2.20")];
    let first = service("default", "old", 1);
    let (_, writes) = started(settings(), &pool, vec![first.clone()]);
    let old = commit(&first, &only(writes, "old"));
    // A new controller starts; a younger Service was created while none ran.
    let young = service("default", "young", 5);
    let (index, writes) = started(settings(), &pool, vec![young.clone(), old.clone()]);
    assert!(
        writes.iter().all(|w| w.key.name != "old"),
        "an adopted Service is not rewritten: {writes:?}"
    );
    let young = commit(&young, &only(writes, "young"));
    assert_eq!(
        annotation(&young, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.11")
    );
    let key = ServiceKey {
        namespace: "default".into(),
        name: "old".into(),
    };
    assert_eq!(
        index.allocation(&key).map(|a| a.addresses.clone()),
        Some(vec!["192.0.2.10".parse().expect("ip")])
    );
}

#[test]
fn kube_vip_cloud_provider_allocation_is_adopted_and_kept() {
    let mut legacy = annotated(
        service("default", "legacy", 1),
        "kube-vip.io/loadbalancerIPs",
        "192.0.2.15",
    );
    legacy.metadata.labels = Some(BTreeMap::from([(
        "implementation".to_string(),
        "kube-vip".to_string(),
    )]));
    let fresh = service("default", "fresh", 2);
    let (_, writes) = started(
        settings(),
        &[("range-global", "192.0.2.15-192.0.2.16")],
        vec![legacy.clone(), fresh.clone()],
    );
    let legacy_after = commit(&legacy, &only(writes.clone(), "legacy"));
    assert_eq!(
        annotation(&legacy_after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.15")
    );
    let fresh_after = commit(&fresh, &only(writes, "fresh"));
    assert_eq!(
        annotation(&fresh_after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.16")
    );
}

#[test]
fn edited_requested_annotation_moves_the_address() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let svc = commit(&svc, &only(writes, "web"));
    let edited = annotated(svc, "kube-vip.io/loadbalancerIPs", "192.0.2.17");
    let write = only(index.apply_service(&edited), "web");
    let after = commit(&edited, &write);
    assert_eq!(
        annotation(&after, "ferrolb.io/allocated").as_deref(),
        Some("192.0.2.17")
    );
    assert_eq!(
        annotation(&after, "ferrolb.io/requested").as_deref(),
        Some("192.0.2.17")
    );
    assert_eq!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref()),
        Some("192.0.2.17")
    );
    assert_eq!(write.events[0].reason, "AddressChanged");
    // The request sticks: the echo of our write is stable.
    assert!(index.apply_service(&after).is_empty());
}

#[test]
fn requested_load_balancer_ip_outside_pool_is_refused_with_reason() {
    let svc = with_spec(service("default", "web", 1), |s| {
        s.load_balancer_ip = Some("198.51.100.7".into())
    });
    let (_, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let write = only(writes, "web");
    let after = commit(&svc, &write);
    let (status, reason, message) = condition(&after);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NotInPool"));
    assert!(message.contains("198.51.100.7"), "{message}");
    assert!(annotation(&after, "kube-vip.io/loadbalancerIPs").is_none());
    assert_eq!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref()),
        Some("198.51.100.7"),
        "the user's field is kept"
    );
    assert!(
        write
            .events
            .iter()
            .any(|e| e.warning && e.reason == "AllocationFailed")
    );
}

#[test]
fn type_change_away_from_load_balancer_releases_and_removes_what_we_wrote() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.10")],
        vec![svc.clone()],
    );
    let svc = commit(&svc, &only(writes, "web"));
    let cluster_ip = with_spec(svc, |s| s.type_ = Some("ClusterIP".into()));
    let write = only(index.apply_service(&cluster_ip), "web");
    let after = commit(&cluster_ip, &write);
    assert!(annotation(&after, "kube-vip.io/loadbalancerIPs").is_none());
    assert!(annotation(&after, "ferrolb.io/allocated").is_none());
    assert!(
        after
            .metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("implementation"))
    );
    assert!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_ref())
            .is_none()
    );
    assert_eq!(after.metadata.finalizers, Some(vec![]));
    assert!(ingress(&after).is_empty());
    assert!(
        write
            .events
            .iter()
            .any(|e| e.reason == "AddressReleased" && e.note.contains("192.0.2.10"))
    );
    // The address is free again for another Service.
    let other = service("default", "other", 3);
    let other_after = commit(&other, &only(index.apply_service(&other), "other"));
    assert_eq!(
        annotation(&other_after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.10")
    );
}

#[test]
fn services_of_other_classes_are_never_touched() {
    let foreign = with_spec(service("default", "foreign", 1), |s| {
        s.load_balancer_class = Some("other.io/lb".into())
    });
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![foreign.clone()],
    );
    assert!(writes.is_empty());
    assert!(index.apply_service(&foreign).is_empty());
    let mut mine = settings();
    mine.classes = ClassFilter {
        class: Some("ferrolb.io/lb".into()),
        also_classless: false,
    };
    let classless = service("default", "plain", 2);
    let (_, writes) = started(
        mine,
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![foreign, classless],
    );
    assert!(
        writes.is_empty(),
        "neither another class nor class-less is ours: {writes:?}"
    );
}

#[test]
fn deletion_releases_before_the_finalizer_goes() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.10")],
        vec![svc.clone()],
    );
    let mut deleting = commit(&svc, &only(writes, "web"));
    deleting.metadata.deletion_timestamp = Some(Time(fixed_clock()));
    let write = only(index.apply_service(&deleting), "web");
    let key = ServiceKey {
        namespace: "default".into(),
        name: "web".into(),
    };
    assert!(
        index.allocation(&key).is_none(),
        "released when the finalizer removal is issued"
    );
    let after = commit(&deleting, &write);
    assert_eq!(after.metadata.finalizers, Some(vec![]));
    assert!(index.delete_service("default", "web").is_empty());
}

#[test]
fn exhausted_pool_fails_then_succeeds_after_a_release() {
    let a = service("default", "a", 1);
    let b = service("default", "b", 2);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.10")],
        vec![a.clone(), b.clone()],
    );
    let a = commit(&a, &only(writes.clone(), "a"));
    let b = commit(&b, &only(writes, "b"));
    assert_eq!(condition(&b).1, "OutOfAddresses");
    let mut deleting = a;
    deleting.metadata.deletion_timestamp = Some(Time(fixed_clock()));
    let writes = index.apply_service(&deleting);
    let b_after = commit(&b, &only(writes, "b"));
    assert_eq!(
        annotation(&b_after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.10")
    );
    assert_eq!(condition(&b_after).0, "True");
}

#[test]
fn address_outside_new_pools_is_kept_and_reported() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let svc = commit(&svc, &only(writes, "web"));
    index.apply_service(&svc);
    let write = only(
        index.apply_config(Some(&config(&[(
            "range-global",
            "203.0.113.1-203.0.113.9",
        )]))),
        "web",
    );
    let after = commit(&svc, &write);
    assert_eq!(
        annotation(&after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.10")
    );
    let (status, reason, _) = condition(&after);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "OutsidePool"));
    assert!(
        write
            .events
            .iter()
            .any(|e| e.warning && e.reason == "AddressOutsidePool")
    );
}

#[test]
fn reallocate_outside_pools_moves_the_address() {
    let mut moving = settings();
    moving.reallocate_outside_pools = true;
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        moving,
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let svc = commit(&svc, &only(writes, "web"));
    index.apply_service(&svc);
    let write = only(
        index.apply_config(Some(&config(&[(
            "range-global",
            "203.0.113.1-203.0.113.9",
        )]))),
        "web",
    );
    let after = commit(&svc, &write);
    assert_eq!(
        annotation(&after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("203.0.113.1")
    );
    assert!(write.events.iter().any(|e| e.reason == "AddressChanged"));
}

#[test]
fn missing_config_map_gives_a_false_condition_that_says_what_to_fix() {
    let svc = service("default", "web", 1);
    let mut index = index_with(settings());
    index.reset_services(std::slice::from_ref(&svc));
    let write = only(index.apply_config(None), "web");
    let after = commit(&svc, &write);
    let (status, reason, message) = condition(&after);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoPool"));
    assert!(
        message.contains("ConfigMap kube-system/kubevip does not exist"),
        "{message}"
    );
}

#[test]
fn malformed_entry_is_named_in_the_affected_services_condition_only() {
    let broken = service("web", "a", 1);
    let fine = service("default", "b", 2);
    let (_, writes) = started(
        settings(),
        &[
            ("range-web", "10.0.0.9-10.0.0.1"),
            ("range-default", "192.0.2.10-192.0.2.20"),
        ],
        vec![broken.clone(), fine.clone()],
    );
    let broken = commit(&broken, &only(writes.clone(), "a"));
    let (status, _, message) = condition(&broken);
    assert_eq!(status, "False");
    assert!(message.contains("range-web"), "{message}");
    let fine = commit(&fine, &only(writes, "b"));
    assert_eq!(condition(&fine).0, "True");
}

#[test]
fn unknown_ip_family_is_an_invalid_request() {
    let svc = with_spec(service("default", "web", 1), |s| {
        s.ip_families = Some(vec!["IPv5".into()])
    });
    let (_, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    let (status, reason, message) = condition(&after);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidRequest")
    );
    assert!(message.contains("IPv5"), "{message}");
}

#[test]
fn dual_stack_follows_ip_families_order_and_skips_load_balancer_ip() {
    let svc = with_spec(service("default", "web", 1), |s| {
        s.ip_family_policy = Some("PreferDualStack".into());
        s.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
    });
    let (_, writes) = started(
        settings(),
        &[(
            "range-default",
            "192.0.2.10-192.0.2.11,2001:db8::10-2001:db8::11",
        )],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert_eq!(
        annotation(&after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("2001:db8::10,192.0.2.10")
    );
    assert!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_ref())
            .is_none()
    );
    assert_eq!(ingress(&after).len(), 2);
}

#[test]
fn status_none_and_no_load_balancer_ip_leave_those_fields_alone() {
    let mut quiet = settings();
    quiet.status = StatusMode::None;
    quiet.write_load_balancer_ip = false;
    let svc = service("default", "web", 1);
    let (_, writes) = started(
        quiet,
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert!(ingress(&after).is_empty());
    assert!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_ref())
            .is_none()
    );
    assert_eq!(condition(&after).0, "True");
}

#[test]
fn interface_key_is_written_to_service_interface() {
    let svc = service("default", "web", 1);
    let (_, writes) = started(
        settings(),
        &[
            ("range-global", "192.0.2.10-192.0.2.20"),
            ("interface-global", "eth1"),
        ],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert_eq!(
        annotation(&after, "kube-vip.io/serviceInterface").as_deref(),
        Some("eth1")
    );
}

#[test]
fn sharing_by_ports_and_protocols() {
    let tcp = service("default", "tcp", 1);
    let udp = with_spec(service("default", "udp", 2), |s| {
        s.ports = Some(vec![ServicePort {
            port: 80,
            protocol: Some("UDP".into()),
            ..Default::default()
        }]);
    });
    let (_, writes) = started(
        settings(),
        &[
            ("range-global", "192.0.2.10-192.0.2.10"),
            ("allow-share-global", "true"),
        ],
        vec![tcp.clone(), udp.clone()],
    );
    let tcp = commit(&tcp, &only(writes.clone(), "tcp"));
    let udp = commit(&udp, &only(writes, "udp"));
    assert_eq!(
        annotation(&tcp, "kube-vip.io/loadbalancerIPs"),
        annotation(&udp, "kube-vip.io/loadbalancerIPs")
    );
}

#[test]
fn desired_fields_leave_unrelated_user_annotations_alone() {
    let svc = annotated(service("default", "web", 1), "team", "blue");
    let (_, writes) = started(
        settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert_eq!(annotation(&after, "team").as_deref(), Some("blue"));
    assert_eq!(Field::<String>::default(), Field::Keep);
}
