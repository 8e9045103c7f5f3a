//! Start-up (adopt before allocate), the first allocation, no-op echoes, classes, deletion.

use super::*;
use crate::desired::Field;

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
        writes.iter().all(|w| &*w.key.name != "old"),
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

#[test]
fn a_relist_that_frees_an_address_writes_the_waiting_service_once() {
    let pool = [("range-global", "192.0.2.10-192.0.2.10")];
    let web = service("default", "web", 1);
    let api = service("default", "api", 2);
    let (mut index, writes) = started(settings(), &pool, vec![web, api.clone()]);
    assert!(only(writes, "web").allocates);
    // web is gone from the new list: its release lets api allocate, and the relist reconciles
    // api as well; both must end up in a single write.
    let writes = index.reset_services(&[api]);
    let write = only(writes, "api");
    assert!(write.allocates);
    assert!(
        write.events.iter().any(|e| e.reason == "AddressAllocated"),
        "{:?}",
        write.events
    );
}

#[test]
fn three_failed_config_reads_in_a_row_make_the_index_start_and_say_why() {
    let mut index = index_with(settings());
    assert!(
        index
            .reset_services(&[service("default", "web", 1)])
            .is_empty()
    );
    assert!(index.config_read_failed("403 Forbidden").is_empty());
    assert!(index.config_read_failed("403 Forbidden").is_empty());
    // Data in between resets the count.
    index.config_readable();
    assert!(index.config_read_failed("403 Forbidden").is_empty());
    assert!(index.config_read_failed("403 Forbidden").is_empty());
    assert!(!index.is_serving());
    let writes = index.config_read_failed("403 Forbidden");
    assert!(index.is_serving());
    assert_eq!(writes.len(), 1);
    let status = writes[0].status.operations();
    let text = serde_json::to_string(&status).expect("json");
    assert!(
        text.contains("cannot read ConfigMap kube-system/kubevip: 403 Forbidden"),
        "{text}"
    );
}
