//! The real controller against the in-process test API server: allocation, dual-stack,
//! requested addresses, sharing, exhaustion, every user change, deletion, classes, nodes.

mod support;

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use kube::{Api, api::PostParams};
use serde_json::json;
use support::*;
use test_apiserver::TestApiServer;

#[tokio::test]
async fn service_gets_address_label_status_condition_finalizer_and_event() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("web")).await;
    assert_eq!(
        wait_allocated(&client, "default", "web").await,
        "192.0.2.10"
    );
    let svc = get(&client, "default", "web").await.expect("exists");
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("implementation").map(String::as_str),
        Some("kube-vip")
    );
    assert_eq!(
        svc.spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref()),
        Some("192.0.2.10")
    );
    assert!(
        svc.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"service.kubernetes.io/load-balancer-cleanup".into())
    );
    let ingress = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .unwrap_or_default();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].ip.as_deref(), Some("192.0.2.10"));
    // Next to kube-vip (--announcers=none) only the IP is ours: kube-vip completes the entry.
    assert_eq!(ingress[0].ip_mode.as_deref(), None);
    let events = eventually("AddressAllocated event", || async {
        let events = events_for(&server, "web");
        events
            .iter()
            .any(|(reason, _)| reason == "AddressAllocated")
            .then_some(events)
    })
    .await;
    assert!(
        events
            .iter()
            .any(|(_, note)| note.contains("192.0.2.10") && note.contains("pool global"))
    );
}

#[tokio::test]
async fn dual_stack_policies_follow_ip_families_order() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(
        &client,
        &[(
            "range-default",
            "192.0.2.10-192.0.2.11,2001:db8::10-2001:db8::11",
        )],
    )
    .await;
    let _controller = start(&server, &[]);
    let prefer = with_spec(lb("prefer"), |s| {
        s.ip_family_policy = Some("PreferDualStack".into());
        s.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
    });
    create(&client, "default", &prefer).await;
    assert_eq!(
        wait_allocated(&client, "default", "prefer").await,
        "2001:db8::10,192.0.2.10"
    );
    let require = with_spec(lb("require"), |s| {
        s.ip_family_policy = Some("RequireDualStack".into());
        s.ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    });
    create(&client, "default", &require).await;
    assert_eq!(
        wait_allocated(&client, "default", "require").await,
        "192.0.2.11,2001:db8::11"
    );
    let single6 = with_spec(lb("single6"), |s| s.ip_families = Some(vec!["IPv6".into()]));
    create(&client, "default", &single6).await;
    let svc = wait_service(&client, "default", "single6", "out of IPv6", |s| {
        condition(s).is_some()
    })
    .await;
    assert_eq!(condition(&svc).map(|c| c.1), Some("OutOfAddresses".into()));
}

#[tokio::test]
async fn requested_addresses_valid_outside_taken_and_wrong_family() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &[]);
    create(
        &client,
        "default",
        &with_annotation(lb("valid"), "kube-vip.io/loadbalancerIPs", "192.0.2.15"),
    )
    .await;
    assert_eq!(
        wait_allocated(&client, "default", "valid").await,
        "192.0.2.15"
    );

    let outside = with_spec(lb("outside"), |s| {
        s.load_balancer_ip = Some("198.51.100.1".into())
    });
    create(&client, "default", &outside).await;
    let svc = wait_service(&client, "default", "outside", "condition", |s| {
        condition(s).is_some()
    })
    .await;
    let (status, reason, message) = condition(&svc).expect("condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NotInPool"));
    assert!(message.contains("198.51.100.1"), "{message}");

    create(
        &client,
        "default",
        &with_annotation(lb("taken"), "kube-vip.io/loadbalancerIPs", "192.0.2.15"),
    )
    .await;
    let svc = wait_service(&client, "default", "taken", "condition", |s| {
        condition(s).is_some()
    })
    .await;
    assert_eq!(
        condition(&svc).map(|c| c.1),
        Some("AlreadyAllocated".into())
    );

    let wrong = with_spec(
        with_annotation(
            lb("wrongfamily"),
            "kube-vip.io/loadbalancerIPs",
            "2001:db8::1",
        ),
        |s| {
            s.ip_families = Some(vec!["IPv4".into()]);
        },
    );
    create(&client, "default", &wrong).await;
    let svc = wait_service(&client, "default", "wrongfamily", "condition", |s| {
        condition(s).is_some()
    })
    .await;
    let (status, _, message) = condition(&svc).expect("condition");
    assert_eq!(status, "False");
    assert!(message.contains("2001:db8::1"), "{message}");
    let warnings = eventually("AllocationFailed events", || async {
        let events = events_for(&server, "taken");
        events
            .iter()
            .any(|(r, _)| r == "AllocationFailed")
            .then_some(events)
    })
    .await;
    assert!(!warnings.is_empty());
    assert_no_duplicates(&client).await;
}

#[tokio::test]
async fn sharing_by_ports_and_protocols() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(
        &client,
        &[
            ("range-global", "192.0.2.10-192.0.2.11"),
            ("allow-share-global", "true"),
        ],
    )
    .await;
    let _controller = start(&server, &[]);
    let dns_tcp = with_spec(lb("dns-tcp"), |s| s.ports = Some(vec![port("TCP", 53)]));
    let dns_udp = with_spec(lb("dns-udp"), |s| s.ports = Some(vec![port("UDP", 53)]));
    let other_tcp = with_spec(lb("other-tcp"), |s| s.ports = Some(vec![port("TCP", 53)]));
    create(&client, "default", &dns_tcp).await;
    let first = wait_allocated(&client, "default", "dns-tcp").await;
    create(&client, "default", &dns_udp).await;
    assert_eq!(
        wait_allocated(&client, "default", "dns-udp").await,
        first,
        "TCP/53 and UDP/53 share"
    );
    create(&client, "default", &other_tcp).await;
    assert_ne!(
        wait_allocated(&client, "default", "other-tcp").await,
        first,
        "TCP/53 twice cannot share"
    );
    assert_no_duplicates(&client).await;
}

#[tokio::test]
async fn exhaustion_then_release_gives_the_waiting_service_the_address() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.10")]).await;
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("first")).await;
    wait_allocated(&client, "default", "first").await;
    create(&client, "default", &lb("second")).await;
    let svc = wait_service(&client, "default", "second", "OutOfAddresses", |s| {
        condition(s).is_some()
    })
    .await;
    assert_eq!(condition(&svc).map(|c| c.1), Some("OutOfAddresses".into()));
    delete(&client, "default", "first").await;
    eventually("first is gone", || async {
        get(&client, "default", "first")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        wait_allocated(&client, "default", "second").await,
        "192.0.2.10"
    );
}

#[tokio::test]
async fn every_user_change_is_followed() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(
        &client,
        &[(
            "range-global",
            "192.0.2.10-192.0.2.20,2001:db8::10-2001:db8::20",
        )],
    )
    .await;
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("web")).await;
    assert_eq!(
        wait_allocated(&client, "default", "web").await,
        "192.0.2.10"
    );

    // Requested address edited (kube-vip-cloud-provider ignores this, its #32).
    merge(
        &client,
        "default",
        "web",
        json!({"metadata": {"annotations": {"kube-vip.io/loadbalancerIPs": "192.0.2.18"}}}),
    )
    .await;
    wait_service(&client, "default", "web", "moved to .18", |s| {
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("ferrolb.io/allocated"))
            .map(String::as_str)
            == Some("192.0.2.18")
    })
    .await;

    // spec.loadBalancerIP edited.
    merge(
        &client,
        "default",
        "web",
        json!({"spec": {"loadBalancerIP": "192.0.2.19"}}),
    )
    .await;
    wait_service(&client, "default", "web", "moved to .19", |s| {
        ips(s).as_deref() == Some("192.0.2.19")
    })
    .await;

    // Family policy changed: now dual-stack.
    merge(
        &client,
        "default",
        "web",
        json!({"metadata": {"annotations": {"kube-vip.io/loadbalancerIPs": null, "ferrolb.io/requested": null}},
               "spec": {"loadBalancerIP": null, "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}}),
    )
    .await;
    wait_service(&client, "default", "web", "dual-stack", |s| {
        ips(s).is_some_and(|v| v.contains(',') && v.contains("2001:db8::"))
    })
    .await;

    // Type changed away from LoadBalancer: released, our fields removed.
    merge(
        &client,
        "default",
        "web",
        json!({"spec": {"type": "ClusterIP"}}),
    )
    .await;
    let svc = wait_service(&client, "default", "web", "cleaned up", |s| {
        ips(s).is_none() && condition(s).is_none()
    })
    .await;
    assert!(svc.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(
        !svc.metadata
            .labels
            .unwrap_or_default()
            .contains_key("implementation")
    );

    // Back to LoadBalancer, then class changed to a foreign class: released again.
    merge(
        &client,
        "default",
        "web",
        json!({"spec": {"type": "LoadBalancer"}}),
    )
    .await;
    wait_allocated(&client, "default", "web").await;
    merge(
        &client,
        "default",
        "web",
        json!({"spec": {"loadBalancerClass": "other.io/lb"}}),
    )
    .await;
    wait_service(&client, "default", "web", "released on class change", |s| {
        ips(s).is_none() && condition(s).is_none()
    })
    .await;
    let events = events_for(&server, "web");
    assert!(
        events.iter().any(|(r, _)| r == "AddressChanged"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, _)| r == "AddressReleased"),
        "{events:?}"
    );
}

#[tokio::test]
async fn config_map_change_keeps_outside_addresses_and_serves_new_services_from_new_pools() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("old")).await;
    assert_eq!(
        wait_allocated(&client, "default", "old").await,
        "192.0.2.10"
    );
    set_pools(&client, &[("range-global", "203.0.113.10-203.0.113.20")]).await;
    let svc = wait_service(&client, "default", "old", "reported outside", |s| {
        condition(s).is_some_and(|c| c.1 == "OutsidePool")
    })
    .await;
    assert_eq!(ips(&svc).as_deref(), Some("192.0.2.10"));
    create(&client, "default", &lb("new")).await;
    assert_eq!(
        wait_allocated(&client, "default", "new").await,
        "203.0.113.10"
    );
}

#[tokio::test]
async fn reallocate_outside_pools_moves_old_addresses() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &["--reallocate-outside-pools"]);
    create(&client, "default", &lb("old")).await;
    assert_eq!(
        wait_allocated(&client, "default", "old").await,
        "192.0.2.10"
    );
    set_pools(&client, &[("range-global", "203.0.113.10-203.0.113.20")]).await;
    wait_service(&client, "default", "old", "moved", |s| {
        ips(s).as_deref() == Some("203.0.113.10")
    })
    .await;
}

#[tokio::test]
async fn bad_config_entry_fails_only_the_affected_namespace() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(
        &client,
        &[
            ("range-web", "10.0.0.9-10.0.0.1"),
            ("range-default", "192.0.2.10-192.0.2.20"),
        ],
    )
    .await;
    let _controller = start(&server, &[]);
    create_namespace(&client, "web").await;
    create(&client, "web", &lb("a")).await;
    create(&client, "default", &lb("b")).await;
    wait_allocated(&client, "default", "b").await;
    let svc = wait_service(&client, "web", "a", "condition", |s| condition(s).is_some()).await;
    let (status, _, message) = condition(&svc).expect("condition");
    assert_eq!(status, "False");
    assert!(
        message.contains("range-web") && message.contains("ends before it starts"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_config_map_is_reported_and_later_creation_allocates() {
    let server = TestApiServer::new();
    let client = server.client();
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("web")).await;
    let svc = wait_service(&client, "default", "web", "condition", |s| {
        condition(s).is_some()
    })
    .await;
    let (status, reason, message) = condition(&svc).expect("condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoPool"));
    assert!(message.contains("kube-system/kubevip"), "{message}");
    set_pools(&client, &[("cidr-global", "192.0.2.0/28")]).await;
    assert_eq!(wait_allocated(&client, "default", "web").await, "192.0.2.1");
}

#[tokio::test]
async fn deletion_goes_through_the_finalizer_after_release() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.10")]).await;
    let controller = start(&server, &[]);
    create(&client, "default", &lb("web")).await;
    wait_allocated(&client, "default", "web").await;
    delete(&client, "default", "web").await;
    eventually("Service removed", || async {
        get(&client, "default", "web").await.is_none().then_some(())
    })
    .await;
    let released = eventually("AddressReleased event", || async {
        events_for(&server, "web")
            .into_iter()
            .find(|(r, _)| r == "AddressReleased")
    })
    .await;
    assert!(released.1.contains("192.0.2.10"), "{released:?}");
    let text = eventually("release counted", || async {
        (controller.metrics.releases.get() >= 1).then_some(())
    })
    .await;
    let _: () = text;
}

#[tokio::test]
async fn class_filter_serves_only_its_class_and_never_touches_others() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &["--load-balancer-class=ferrolb.io/lb"]);
    let mine = with_spec(lb("mine"), |s| {
        s.load_balancer_class = Some("ferrolb.io/lb".into())
    });
    let foreign = with_spec(lb("foreign"), |s| {
        s.load_balancer_class = Some("other.io/lb".into())
    });
    create(&client, "default", &foreign).await;
    let classless = create(&client, "default", &lb("classless")).await;
    create(&client, "default", &mine).await;
    wait_allocated(&client, "default", "mine").await;
    // Give the controller time to (wrongly) act on the others, then check nothing changed.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let foreign_now = get(&client, "default", "foreign").await.expect("exists");
    let classless_now = get(&client, "default", "classless").await.expect("exists");
    assert_eq!(
        classless_now.metadata.resource_version,
        classless.metadata.resource_version
    );
    assert!(ips(&foreign_now).is_none() && foreign_now.metadata.finalizers.is_none());
}

#[tokio::test]
async fn also_classless_adds_class_less_services() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(
        &server,
        &["--load-balancer-class=ferrolb.io/lb", "--also-classless"],
    );
    create(&client, "default", &lb("classless")).await;
    wait_allocated(&client, "default", "classless").await;
}

#[tokio::test]
async fn new_node_loses_the_uninitialized_taint_and_gets_a_provider_id() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start(&server, &["--initialize-nodes=true"]);
    let nodes: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: kube::api::ObjectMeta {
            name: Some("worker-1".into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(vec![
                Taint {
                    key: "node.cloudprovider.kubernetes.io/uninitialized".into(),
                    value: Some("true".into()),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
                Taint {
                    key: "dedicated".into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        status: None,
    };
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create Node");
    let node = eventually("node initialized", || async {
        let node = nodes.get("worker-1").await.ok()?;
        let spec = node.spec.clone()?;
        (spec.provider_id.as_deref() == Some("ferrolb://worker-1")).then_some(node)
    })
    .await;
    let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
    assert_eq!(
        taints.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        vec!["dedicated"]
    );
}

/// A Node named `name` with the given taint keys and no providerID.
fn node(name: &str, taints: &[&str]) -> Node {
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|key| Taint {
                        key: key.to_string(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn only_nodes_with_the_uninitialized_taint_get_a_provider_id() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let nodes: Api<Node> = Api::all(client.clone());
    // Created first, so the controller sees it before the tainted one.
    let untainted = nodes
        .create(&PostParams::default(), &node("plain", &["dedicated"]))
        .await
        .expect("create Node");
    nodes
        .create(
            &PostParams::default(),
            &node(
                "external",
                &["node.cloudprovider.kubernetes.io/uninitialized"],
            ),
        )
        .await
        .expect("create Node");
    let _controller = start(&server, &["--initialize-nodes=true"]);
    eventually("tainted node initialized", || async {
        let node = nodes.get("external").await.ok()?;
        let spec = node.spec?;
        (spec.provider_id.as_deref() == Some("ferrolb://external")
            && spec.taints.unwrap_or_default().is_empty())
        .then_some(())
    })
    .await;
    let plain = nodes.get("plain").await.expect("get Node");
    assert_eq!(
        plain.spec.as_ref().and_then(|s| s.provider_id.as_deref()),
        None,
        "a Node without the taint keeps an empty providerID for its own cloud provider"
    );
    assert_eq!(
        plain.metadata.resource_version, untainted.metadata.resource_version,
        "a Node without the taint is never written"
    );
}

#[tokio::test]
async fn unreadable_config_map_is_reported_and_recovers() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    server.faults().inject(
        test_apiserver::FaultRule::status(403)
            .times(100_000)
            .resource("configmaps"),
    );
    let _controller = start(&server, &[]);
    create(&client, "default", &lb("web")).await;
    let svc = wait_service(&client, "default", "web", "condition", |s| {
        condition(s).is_some()
    })
    .await;
    let (status, _, message) = condition(&svc).expect("condition");
    assert_eq!(status, "False");
    assert!(
        message.contains("cannot read ConfigMap kube-system/kubevip"),
        "{message}"
    );
    server.faults().clear();
    assert_eq!(
        wait_allocated(&client, "default", "web").await,
        "192.0.2.10"
    );
}
