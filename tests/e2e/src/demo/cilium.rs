//! Cilium LB-IPAM's walkthrough (seed 003), objects verbatim apart from the addresses
//! (20.0.10.0/24 → 203.0.113.0/24, 10.0.10.0/24 → 198.18.10.0/24, 2004::/64 →
//! 2001:db8:2004::/64, 20.0.20.100-200 → 198.18.20.100-200, 1.2.3.4 → 198.18.3.4): the
//! pools and their counts, the conflict and its message, a disabled pool, a Service no pool
//! serves and then one it does, requested IPs, sharing keys. The provider reads
//! `CiliumLoadBalancerIPPool` as it is (`--pool-objects=…,cilium`). The demo's ConfigMap
//! pools are removed first (the seed's cluster has none); [`super::kube_vip`] writes the
//! ConfigMap again.

use std::time::Duration;

use crate::wait_for;

use super::Demo;

const BLUE_POOL_ALL_FORMS: &str = r#"apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "198.18.10.0/24"
  - cidr: "2001:db8:2004::0/64"
  - start: "198.18.20.100"
    stop: "198.18.20.200"
  - start: "198.18.3.4"
"#;

const BLUE_AND_RED: &str = r#"apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
  serviceSelector:
    matchExpressions:
      - {key: color, operator: In, values: [blue, cyan]}
---
apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "red-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
  serviceSelector:
    matchLabels:
      color: red
"#;

const BLUE_DISABLED: &str = r#"apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
  disabled: true
"#;

const BLUE_FOR_ALL: &str = r#"apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
"#;

const SERVICE_RED: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: service-red
  namespace: example
  labels:
    color: red
spec:
  type: LoadBalancer
  ports:
  - port: 1234
"#;

const SERVICE_BLUE_IPS: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: service-blue
  namespace: example
  labels:
    color: blue
  annotations:
    "lbipam.cilium.io/ips": "203.0.113.100,203.0.113.200"
spec:
  type: LoadBalancer
  ports:
  - port: 1234
"#;

const SHARING: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: service-blue
  namespace: example
  labels:
    color: blue
  annotations:
    "lbipam.cilium.io/sharing-key": "1234"
spec:
  type: LoadBalancer
  ports:
  - port: 1234
---
apiVersion: v1
kind: Service
metadata:
  name: service-red
  namespace: example
  labels:
    color: red
  annotations:
    "lbipam.cilium.io/sharing-key": "1234"
spec:
  type: LoadBalancer
  ports:
  - port: 2345
"#;

const CONFLICT_MESSAGE: &str =
    r#"jsonpath={.status.conditions[?(@.type=="cilium.io/PoolConflict")].message}"#;

/// The walkthrough.
pub fn walkthrough(demo: &mut Demo) {
    demo.report.section("Cilium LB-IPAM (seed 003)");
    // The seed's cluster has Cilium's pools only; with the demo's ConfigMap pools a Service
    // no Cilium pool serves would get an address from them instead of staying pending.
    demo.kubectl(&["delete", "configmap", "-n", "kube-system", "kubevip"]);
    demo.apply("blue-pool.yaml", BLUE_POOL_ALL_FORMS);
    // An IPv6 /64 alone holds 2^64 addresses; FerroLB counts exactly.
    pools_until(demo, "blue-pool counted", |t| {
        row(t, "blue-pool").get(3).is_some_and(|n| n != "<none>")
    });
    demo.kubectl(&["delete", "ippool", "blue-pool"]);

    // Conflicts: the pool added later conflicts, with Cilium's message and reason.
    demo.apply("blue-red-pools.yaml", BLUE_AND_RED);
    pools_until(demo, "red-pool conflicting", |t| {
        row(t, "red-pool").get(2).map(String::as_str) == Some("True")
    });
    let message = demo.kubectl(&["get", "ippools/red-pool", "-o", CONFLICT_MESSAGE]);
    assert_eq!(
        message,
        "Pool conflicts since CIDR '203.0.113.0/24' overlaps CIDR '203.0.113.0/24' from IP Pool 'blue-pool'"
    );
    let reason = demo.kubectl(&[
        "get",
        "ippools/red-pool",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="cilium.io/PoolConflict")].reason}"#,
    ]);
    assert_eq!(reason, "cidr_overlap");

    // Disabling: the column says so; the counts are conditions, as Cilium writes them.
    demo.apply("blue-pool-disabled.yaml", BLUE_DISABLED);
    pools_until(demo, "blue-pool disabled", |t| {
        row(t, "blue-pool").get(1).map(String::as_str) == Some("true")
    });
    let counts = demo.kubectl(&[
        "get",
        "ippools/blue-pool",
        "-o",
        r#"jsonpath={range .status.conditions[?(@.type!="cilium.io/PoolConflict")]}{.type}={.message}{"\n"}{end}"#,
    ]);
    assert!(counts.contains("cilium.io/IPsTotal=256"), "{counts}");

    // Services: one no enabled pool may serve stays pending and says why, then gets an
    // address once its labels match blue-pool.
    demo.apply("blue-red-pools.yaml", BLUE_AND_RED);
    demo.kubectl(&["create", "namespace", "example"]);
    demo.apply("service-red.yaml", SERVICE_RED);
    let kubectl = &demo.cluster.kubectl;
    let reason = wait_for(
        "service-red's AddressAllocated condition",
        Duration::from_secs(30),
        || {
            let text = kubectl.ok(
                &[
                    "-n",
                    "example",
                    "get",
                    "svc/service-red",
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="ferrolb.io/AddressAllocated")].reason}"#,
                ],
                None,
            );
            (!text.is_empty())
                .then_some(text)
                .ok_or_else(|| "no condition yet".to_string())
        },
    );
    // Only the conflicting red-pool selects it (Cilium says no_pool; FerroLB names why).
    assert_eq!(reason, "PoolConflict");
    demo.kubectl(&[
        "-n",
        "example",
        "get",
        "svc/service-red",
        "-o",
        r#"jsonpath={range .status.conditions[*]}{.type} {.status} {.reason}: {.message}{"\n"}{end}"#,
    ]);
    demo.kubectl(&[
        "-n",
        "example",
        "label",
        "--overwrite",
        "svc",
        "service-red",
        "color=blue",
    ]);
    let ip = demo.external_ip("example", "service-red");
    assert!(ip.starts_with("203.0.113."), "{ip}");

    // Requested IPs: both, as the annotation lists them.
    demo.apply("service-blue.yaml", SERVICE_BLUE_IPS);
    let ips = demo.external_ip("example", "service-blue");
    assert_eq!(ips, "203.0.113.100,203.0.113.200");

    // Sharing keys: different ports share one address.
    demo.delete_services("example", &["service-blue", "service-red"]);
    demo.kubectl(&["delete", "ippool", "red-pool"]);
    demo.apply("blue-pool.yaml", BLUE_FOR_ALL);
    demo.apply("sharing.yaml", SHARING);
    let blue = demo.external_ip("example", "service-blue");
    let red = demo.external_ip("example", "service-red");
    assert_eq!(blue, red, "one address for both");
    demo.kubectl(&["-n", "example", "get", "svc"]);
    demo.delete_services("example", &["service-blue", "service-red"]);
    demo.kubectl(&["delete", "ippool", "blue-pool"]);
}

/// `kubectl get ippools` rows, split on whitespace.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn row(table: &[Vec<String>], name: &str) -> Vec<String> {
    table
        .iter()
        .find(|r| r.first().map(String::as_str) == Some(name))
        .cloned()
        .unwrap_or_default()
}

/// Waits until `kubectl get ippools` passes `ready`, then reports it.
fn pools_until(demo: &mut Demo, what: &str, ready: impl Fn(&[Vec<String>]) -> bool) {
    let kubectl = &demo.cluster.kubectl;
    wait_for(what, Duration::from_secs(30), || {
        let text = kubectl.ok(&["get", "ippools"], None);
        ready(&rows(&text)).then_some(()).ok_or(text)
    });
    demo.kubectl(&["get", "ippools"]);
}
