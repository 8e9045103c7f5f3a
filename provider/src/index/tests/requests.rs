//! What a Service asks for: requested addresses, families, sharing, interfaces, flags.

use super::*;

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

/// KVCP writes spec.loadBalancerIP for dual-stack Services too.
#[test]
fn dual_stack_follows_ip_families_order_and_writes_its_first_address_to_load_balancer_ip() {
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
    // As KVCP's Test_syncLoadBalancer/"dualstack loadbalancer": the first address.
    assert_eq!(
        after
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref()),
        Some("2001:db8::10")
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
fn namespace_interface_key_applies_to_a_namespace_on_the_global_pool() {
    let svc = service("default", "web", 1);
    let (_, writes) = started(
        settings(),
        &[
            ("range-global", "192.0.2.10-192.0.2.20"),
            ("interface-global", "eth1"),
            ("interface-default", "eth2"),
        ],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert_eq!(
        annotation(&after, "kube-vip.io/serviceInterface").as_deref(),
        Some("eth2")
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
fn dhcp_pool_writes_the_placeholder_but_no_ingress() {
    let svc = service("default", "web", 1);
    let (_, writes) = started(
        settings(),
        &[("cidr-global", "0.0.0.0/32")],
        vec![svc.clone()],
    );
    let after = commit(&svc, &only(writes, "web"));
    assert_eq!(
        annotation(&after, "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("0.0.0.0")
    );
    assert!(
        ingress(&after).is_empty(),
        "kube-vip reports the leased address itself"
    );
    assert_eq!(condition(&after).0, "True");
}
