//! Coming from kube-vip-cloud-provider (issue #12): Services in the state KVCP leaves them,
//! and the KVCP-compatible settings. KVCP's own test tables are in `kvcp_tables.rs`.

use prometheus_client::encoding::text::encode;

use super::*;

/// A Service as kube-vip-cloud-provider leaves it: its label, and its addresses in the
/// annotation (`None`: a legacy Service with `spec.loadBalancerIP` only).
pub(super) fn left_by_kvcp(
    namespace: &str,
    name: &str,
    created: i64,
    annotation: Option<&str>,
    load_balancer_ip: Option<&str>,
) -> Service {
    let mut svc = service(namespace, name, created);
    svc.metadata.labels = Some(BTreeMap::from([(
        "implementation".to_string(),
        "kube-vip".to_string(),
    )]));
    if let Some(list) = annotation {
        svc = annotated(svc, "kube-vip.io/loadbalancerIPs", list);
    }
    with_spec(svc, |s| {
        s.load_balancer_ip = load_balancer_ip.map(str::to_string)
    })
}

pub(super) fn labels(svc: &Service) -> BTreeMap<String, String> {
    svc.metadata.labels.clone().unwrap_or_default()
}

pub(super) fn load_balancer_ip(svc: &Service) -> Option<String> {
    svc.spec.as_ref()?.load_balancer_ip.clone()
}

pub(super) fn policy(svc: Service, policy: Option<&str>, families: &[&str]) -> Service {
    with_spec(svc, |s| {
        s.ip_family_policy = policy.map(str::to_string);
        s.ip_families =
            (!families.is_empty()).then(|| families.iter().map(|f| f.to_string()).collect());
    })
}

/// Starts an index over `services`, commits every write, and returns the index with the
/// Services as they are afterwards and the writes.
pub(super) fn run(
    settings: IndexSettings,
    entries: Option<&[(&str, &str)]>,
    services: Vec<Service>,
) -> (Index, BTreeMap<String, Service>, Vec<ServiceWrite>) {
    let mut index = index_with(settings);
    assert!(index.reset_services(&services).is_empty());
    let writes = index.apply_config(entries.map(config).as_ref());
    let mut after: BTreeMap<String, Service> = services
        .into_iter()
        .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
        .collect();
    for write in &writes {
        let name = write.key.name.to_string();
        if let Some(svc) = after.get(&name) {
            let committed = commit(svc, write);
            after.insert(name, committed);
        }
    }
    (index, after, writes)
}

/// Point 5: Services KVCP left behind keep address, label and a True condition after the
/// switch, even where a new Service would be refused; each such case is a Warning Event
/// and a metric.
#[test]
fn services_left_by_kvcp_are_adopted_as_they_are() {
    let outside = left_by_kvcp("web", "outside", 1, Some("198.51.100.7"), None);
    let no_pool = left_by_kvcp("lab", "no-pool", 2, Some("203.0.113.9"), None);
    let dns_tcp = with_spec(
        left_by_kvcp("web", "dns-tcp", 3, Some("192.0.2.53"), None),
        |s| {
            s.ports = Some(vec![ServicePort {
                port: 53,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]);
        },
    );
    let dns_udp = with_spec(
        left_by_kvcp("web", "dns-udp", 4, Some("192.0.2.53"), None),
        |s| {
            s.ports = Some(vec![ServicePort {
                port: 53,
                protocol: Some("UDP".into()),
                ..Default::default()
            }]);
        },
    );
    let legacy = left_by_kvcp("web", "legacy", 5, None, Some("192.0.2.60"));
    let services = vec![outside, no_pool, dns_tcp, dns_udp, legacy];
    let pools: &[(&str, &str)] = &[("cidr-web", "192.0.2.0/24")];
    let (index, after, writes) = run(settings(), Some(pools), services.clone());
    let expected = [
        ("outside", "198.51.100.7", true),
        ("no-pool", "203.0.113.9", true),
        ("dns-tcp", "192.0.2.53", false),
        ("dns-udp", "192.0.2.53", true),
        ("legacy", "192.0.2.60", false),
    ];
    for (name, address, warned) in expected {
        let svc = &after[name];
        assert_eq!(
            annotation(svc, "kube-vip.io/loadbalancerIPs").as_deref(),
            Some(address),
            "{name}"
        );
        assert_eq!(
            labels(svc).get("implementation").map(String::as_str),
            Some("kube-vip"),
            "{name}"
        );
        assert_eq!(condition(svc).0, "True", "{name}: {:?}", condition(svc));
        let write = writes
            .iter()
            .find(|w| &*w.key.name == name)
            .expect("a write");
        let adopted_as_is: Vec<&EventNote> = write
            .events
            .iter()
            .filter(|e| e.reason == "AdoptedAsIs")
            .collect();
        assert_eq!(
            adopted_as_is.len(),
            usize::from(warned),
            "{name}: {:?}",
            write.events
        );
        assert!(
            adopted_as_is
                .iter()
                .all(|e| e.warning && e.note.contains(address))
        );
        assert!(
            !write.events.iter().any(|e| e.reason == "AddressChanged"),
            "{name}: {:?}",
            write.events
        );
    }
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    index.metrics.register(&mut registry);
    encode(&mut text, &registry).expect("metrics encode");
    for reason in ["address_conflict", "outside_pool", "no_pool"] {
        assert!(
            text.contains(&format!(
                "ferrolb_adopted_as_is_total{{reason=\"{reason}\"}} 1"
            )),
            "{reason}: {text}"
        );
    }

    // A restart over what the first run wrote changes nothing: same addresses, no write.
    let restarted: Vec<Service> = after.values().cloned().collect();
    let (_, again, writes) = run(settings(), Some(pools), restarted);
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(again, after);

    // A change that does not touch the request (ports) keeps the address adopted as is.
    let mut index = index;
    let moved_port = with_spec(after["dns-udp"].clone(), |s| {
        s.ports = Some(vec![ServicePort {
            port: 5353,
            protocol: Some("UDP".into()),
            ..Default::default()
        }]);
    });
    let writes = index.apply_service(&moved_port);
    assert!(writes.is_empty(), "{writes:?}");
}

/// Point 4: `0.0.0.0/32` beside an IPv6 CIDR is DHCP for IPv4 only, as in KVCP's
/// `discoverVIPs` (it splits the pool by family first); a Service annotated `0.0.0.0` is
/// always accepted.
#[test]
fn dhcp_is_per_family_and_a_dhcp_request_is_always_accepted() {
    let pools: &[(&str, &str)] = &[
        ("cidr-global", "0.0.0.0/32,2001:db8::/126"),
        ("cidr-web", "192.0.2.0/24,2001:db8:1::/126"),
    ];
    let services = vec![
        policy(service("default", "v4", 1), Some("SingleStack"), &["IPv4"]),
        policy(service("default", "v6", 2), Some("SingleStack"), &["IPv6"]),
        policy(
            service("default", "dual", 3),
            Some("PreferDualStack"),
            &["IPv4", "IPv6"],
        ),
        // Per-Service DHCP requests: in a namespace whose pool has addresses, in a
        // namespace with no pool of its own, from a single-stack IPv6 Service.
        annotated(
            service("web", "asks-dhcp", 4),
            "kube-vip.io/loadbalancerIPs",
            "0.0.0.0",
        ),
        annotated(
            policy(
                service("web", "v6-asks-dhcp", 5),
                Some("SingleStack"),
                &["IPv6"],
            ),
            "kube-vip.io/loadbalancerIPs",
            "0.0.0.0",
        ),
    ];
    let (_, after, _) = run(settings(), Some(pools), services);
    for (name, want) in [
        ("v4", "0.0.0.0"),
        ("v6", "2001:db8::"),
        ("dual", "0.0.0.0,2001:db8::1"),
        ("asks-dhcp", "0.0.0.0"),
        ("v6-asks-dhcp", "0.0.0.0"),
    ] {
        let svc = &after[name];
        assert_eq!(
            annotation(svc, "kube-vip.io/loadbalancerIPs").as_deref(),
            Some(want),
            "{name}"
        );
        assert_eq!(condition(svc).0, "True", "{name}: {:?}", condition(svc));
    }
    let no_pool = annotated(
        service("lab", "asks-dhcp", 1),
        "kube-vip.io/loadbalancerIPs",
        "0.0.0.0",
    );
    let (_, after, _) = run(settings(), None, vec![no_pool]);
    assert_eq!(condition(&after["asks-dhcp"]).0, "True");
}

/// Point 6: `--requested-addresses=unchecked` takes requested addresses as KVCP does; the
/// default still validates them.
#[test]
fn unchecked_requests_are_taken_as_written_and_validation_stays_the_default() {
    let pools: &[(&str, &str)] = &[("range-global", "192.0.2.10-192.0.2.20")];
    let services = vec![
        annotated(
            service("default", "static", 1),
            "kube-vip.io/loadbalancerIPs",
            "198.51.100.5",
        ),
        annotated(
            service("default", "twin", 2),
            "kube-vip.io/loadbalancerIPs",
            "198.51.100.5",
        ),
        service("default", "auto", 3),
    ];
    let unchecked = IndexSettings {
        requests_unchecked: true,
        ..settings()
    };
    let (_, after, _) = run(unchecked, Some(pools), services.clone());
    for name in ["static", "twin"] {
        assert_eq!(
            annotation(&after[name], "kube-vip.io/loadbalancerIPs").as_deref(),
            Some("198.51.100.5"),
            "{name}"
        );
        assert_eq!(condition(&after[name]).0, "True", "{name}");
    }
    assert_eq!(
        annotation(&after["auto"], "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.10")
    );
    let (_, after, _) = run(settings(), Some(pools), services);
    assert_eq!(
        (
            condition(&after["static"]).0.as_str(),
            condition(&after["static"]).1.as_str()
        ),
        ("False", "NotInPool")
    );
}

/// Point 3: `allow-share-<ns>` works for a namespace on the global pool.
#[test]
fn allow_share_of_a_namespace_on_the_global_pool_lets_its_services_share() {
    let pools: &[(&str, &str)] = &[
        ("range-global", "192.0.2.10-192.0.2.20"),
        ("allow-share-web", "true"),
    ];
    let https = with_spec(service("web", "https", 2), |s| {
        s.ports = Some(vec![ServicePort {
            port: 443,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
    });
    let other = with_spec(service("other", "other-https", 3), |s| {
        s.ports = Some(vec![ServicePort {
            port: 8443,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
    });
    let services = vec![service("web", "http", 1), https, other];
    let (_, after, _) = run(settings(), Some(pools), services);
    let ips = |name: &str| annotation(&after[name], "kube-vip.io/loadbalancerIPs");
    assert_eq!(ips("http").as_deref(), Some("192.0.2.10"));
    assert_eq!(ips("https").as_deref(), Some("192.0.2.10"));
    // `other` does not allow sharing: its Service gets an address of its own.
    assert_eq!(ips("other-https").as_deref(), Some("192.0.2.11"));
}

/// Point 7: a spec.loadBalancerIP the user set is never overwritten, and the interface
/// annotation of an existing Service is left as it is.
#[test]
fn user_load_balancer_ip_and_existing_interface_are_never_overwritten() {
    let pools: &[(&str, &str)] = &[
        (
            "range-global",
            "192.0.2.10-192.0.2.20,2001:db8::10-2001:db8::20",
        ),
        ("interface-global", "eth1"),
    ];
    let pinned = with_spec(
        annotated(
            policy(
                service("default", "pinned", 1),
                Some("RequireDualStack"),
                &["IPv4", "IPv6"],
            ),
            "kube-vip.io/loadbalancerIPs",
            "192.0.2.15,2001:db8::15",
        ),
        |s| s.load_balancer_ip = Some("192.0.2.15".into()),
    );
    let kvcp = annotated(
        left_by_kvcp("default", "kvcp", 2, Some("192.0.2.12"), Some("192.0.2.12")),
        "kube-vip.io/serviceInterface",
        "eth0",
    );
    let (_, after, _) = run(settings(), Some(pools), vec![pinned, kvcp]);
    assert_eq!(
        load_balancer_ip(&after["pinned"]).as_deref(),
        Some("192.0.2.15")
    );
    assert_eq!(
        annotation(&after["pinned"], "kube-vip.io/loadbalancerIPs").as_deref(),
        Some("192.0.2.15,2001:db8::15")
    );
    assert_eq!(
        annotation(&after["kvcp"], "kube-vip.io/serviceInterface").as_deref(),
        Some("eth0")
    );
    assert_eq!(
        load_balancer_ip(&after["kvcp"]).as_deref(),
        Some("192.0.2.12")
    );
}

/// Point 8: each place the ConfigMap is read differently from KVCP becomes a Warning Event
/// on the ConfigMap (at start, and again only when its data changes) and a gauge.
#[test]
fn differences_from_kvcp_become_configmap_events_and_a_gauge() {
    let mut index = index_with(settings());
    let drifting = config(&[
        ("cidr-global", "192.0.2.0/24"),
        ("range-web", "198.51.100.1-198.51.100.9"),
    ]);
    index.apply_config(Some(&drifting));
    let events = index.take_config_events().expect("events at start");
    assert_eq!(
        (&*events.key.namespace, &*events.key.name),
        ("kube-system", "kubevip")
    );
    assert_eq!(events.notes.len(), 1);
    assert_eq!(events.notes[0].reason, "KvcpDifference");
    assert!(events.notes[0].warning && events.notes[0].note.contains("`range-web`"));
    assert_eq!(index.metrics.config_kvcp_differences.get(), 1);
    // The same data again (a relist): nothing new.
    index.apply_config(Some(&drifting));
    assert_eq!(index.take_config_events(), None);
    // Fixed: no Event, the gauge drops to 0.
    index.apply_config(Some(&config(&[("cidr-global", "192.0.2.0/24")])));
    assert_eq!(index.take_config_events(), None);
    assert_eq!(index.metrics.config_kvcp_differences.get(), 0);
}
