//! User and ConfigMap changes, exhaustion and release.

use super::*;

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
