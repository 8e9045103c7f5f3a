//! kube-vip-cloud-provider's README (seed 004), its ConfigMap examples with the addresses
//! moved (192.168.0.x → 198.51.100.x, 2001::x → 2001:db8::x), each created with the
//! README's own `kubectl create configmap` command, and the addresses Services get: the
//! lowest of the pool, the highest with `search-order=desc`, the namespace's own pool, both
//! families in the order of `ipFamilies`, and (FerroLB's `allow-share-*`, as in KVCP) one
//! address for two Services on different ports. The demo's own ConfigMap comes back at the
//! end.

use std::time::Duration;

use crate::kube::pool_configmap;
use crate::wait_for;

use super::{Demo, default_pools};

/// A Service of type LoadBalancer in `namespace` with `port` and an optional `spec`
/// fragment (already indented two spaces).
fn service(namespace: &str, name: &str, port: u16, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  type: LoadBalancer\n  selector:\n    app.kubernetes.io/name: MyApp\n  ports:\n\
         \x20   - protocol: TCP\n      port: {port}\n{extra}"
    )
}

const DUAL_V6_FIRST: &str =
    "  ipFamilyPolicy: PreferDualStack\n  ipFamilies:\n  - IPv6\n  - IPv4\n";
const DUAL_V4_FIRST: &str =
    "  ipFamilyPolicy: PreferDualStack\n  ipFamilies:\n  - IPv4\n  - IPv6\n";
const IPV6_ONLY: &str = "  ipFamilyPolicy: SingleStack\n  ipFamilies:\n  - IPv6\n";

/// The README's examples.
pub fn readme(demo: &mut Demo) {
    demo.report
        .section("kube-vip-cloud-provider's ConfigMap (seed 004)");
    for (literals, want_first) in [
        (vec!["cidr-global=198.51.100.220/29"], "198.51.100.216"),
        (
            vec!["cidr-global=198.51.100.220/29", "search-order=desc"],
            "198.51.100.223",
        ),
        (
            vec!["range-global=198.51.100.200-198.51.100.202"],
            "198.51.100.200",
        ),
        (
            vec![
                "range-global=198.51.100.200-198.51.100.202",
                "search-order=desc",
            ],
            "198.51.100.202",
        ),
    ] {
        create_configmap(demo, &literals);
        demo.apply("my-service.yaml", &service("default", "my-service", 80, ""));
        let ip = demo.external_ip("default", "my-service");
        assert_eq!(ip, want_first, "ConfigMap {literals:?}");
        show_annotation(demo, "default", "my-service");
        demo.delete_services("default", &["my-service"]);
    }

    // Namespace pools, as `kubectl get configmap -n kube-system kubevip -o yaml` shows them.
    create_configmap(
        demo,
        &[
            "cidr-default=198.51.100.200/29",
            "cidr-development=198.51.100.210/29",
            "cidr-finance=198.51.100.220/29",
            "cidr-testing=198.51.100.230/29",
            "cidr-ipv6=2001:db8::10/127",
        ],
    );
    for (namespace, extra, want) in [
        ("development", "", "198.51.100.208"),
        ("finance", "", "198.51.100.216"),
        ("testing", "", "198.51.100.224"),
        ("ipv6", IPV6_ONLY, "2001:db8::10"),
    ] {
        demo.kubectl(&["create", "namespace", namespace]);
        demo.apply(
            &format!("{namespace}-service.yaml"),
            &service(namespace, "my-service", 80, extra),
        );
        let ip = demo.external_ip(namespace, "my-service");
        assert_eq!(ip, want, "namespace {namespace}");
        demo.delete_services(namespace, &["my-service"]);
    }

    // Dual stack: the order of ipFamilies decides the order of the addresses.
    create_configmap(
        demo,
        &["range-default=198.51.100.10-198.51.100.11,2001:db8::10-2001:db8::11"],
    );
    demo.apply(
        "my-service.yaml",
        &service("default", "my-service", 80, DUAL_V6_FIRST),
    );
    let ips = show_annotation(demo, "default", "my-service");
    assert_eq!(ips, "2001:db8::10,198.51.100.10");
    demo.apply(
        "my-service-v4-first.yaml",
        &service("default", "my-service-v4-first", 80, DUAL_V4_FIRST),
    );
    let ips = show_annotation(demo, "default", "my-service-v4-first");
    assert_eq!(ips, "198.51.100.11,2001:db8::11");
    demo.delete_services("default", &["my-service", "my-service-v4-first"]);

    // Sharing: two Services on different ports, one address.
    create_configmap(
        demo,
        &[
            "range-global=198.51.100.200-198.51.100.202",
            "allow-share-global=true",
        ],
    );
    demo.apply("web.yaml", &service("default", "web", 80, ""));
    demo.apply("web-tls.yaml", &service("default", "web-tls", 443, ""));
    let web = demo.external_ip("default", "web");
    let tls = demo.external_ip("default", "web-tls");
    assert_eq!(
        web, tls,
        "allow-share-global: one address for ports 80 and 443"
    );
    demo.delete_services("default", &["web", "web-tls"]);

    // Back to the demo's own pools.
    let pools = default_pools();
    let pools: Vec<(&str, &str)> = pools
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    demo.cluster.kubectl.ok(
        &["delete", "configmap", "-n", "kube-system", "kubevip"],
        None,
    );
    demo.cluster.kubectl.apply(&pool_configmap(&pools));
    demo.report
        .say("The demo's own ConfigMap kube-system/kubevip is back.");
}

/// Replaces the ConfigMap with the README's command.
fn create_configmap(demo: &mut Demo, literals: &[&str]) {
    demo.cluster.kubectl.ok(
        &[
            "delete",
            "configmap",
            "-n",
            "kube-system",
            "kubevip",
            "--ignore-not-found",
        ],
        None,
    );
    let mut args = vec![
        "create",
        "configmap",
        "--namespace",
        "kube-system",
        "kubevip",
    ];
    for literal in literals {
        args.extend(["--from-literal", literal]);
    }
    demo.kubectl(&args);
}

/// Waits for and shows the `kube-vip.io/loadbalancerIPs` annotation; returns it.
fn show_annotation(demo: &mut Demo, namespace: &str, name: &str) -> String {
    let path = r#"jsonpath={.metadata.annotations.kube-vip\.io/loadbalancerIPs}"#;
    let kubectl = &demo.cluster.kubectl;
    wait_for(
        &format!("Service {namespace}/{name} annotated kube-vip.io/loadbalancerIPs"),
        Duration::from_secs(30),
        || {
            let text = kubectl.ok(&["get", "svc", "-n", namespace, name, "-o", path], None);
            (!text.is_empty()).then_some(()).ok_or(text)
        },
    );
    demo.kubectl(&["get", "svc", "-n", namespace, name, "-o", path])
}
