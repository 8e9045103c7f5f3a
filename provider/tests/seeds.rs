//! The seeds' walkthroughs, applied with kubectl as their YAML is written (addresses moved into
//! documentation prefixes), against the built provider and the test API server: Cilium
//! LB-IPAM's pools, conflicts, counts, selectors, requested IPs and sharing keys, and OpenELB's
//! Eip in layer2 and vip mode with the Eip status OpenELB documents.

mod kubectl;

use kubectl::{Front, eventually, have_kubectl, kubectl, kubectl_ok, workspace};

/// `kubectl get <what>` rows as whitespace-split columns, header first.
fn table(kubeconfig: &std::path::Path, args: &[&str]) -> Vec<Vec<String>> {
    kubectl_ok(kubeconfig, args, None)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

fn apply(kubeconfig: &std::path::Path, yaml: &str) {
    kubectl_ok(kubeconfig, &["apply", "-f", "-"], Some(yaml));
}

fn install(kubeconfig: &std::path::Path, files: &[&str]) {
    for file in files {
        let path = workspace().join(file);
        kubectl_ok(
            kubeconfig,
            &["apply", "-f", path.to_str().expect("utf-8 path")],
            None,
        );
    }
}

/// The EXTERNAL-IP column of `kubectl get svc` once it is no longer `<pending>`.
fn external_ip(kubeconfig: &std::path::Path, namespace: &str, name: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, text) = kubectl(kubeconfig, &["-n", namespace, "get", "svc", name], None);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let ip = rows.first().and_then(|header| {
            let column = header.iter().position(|h| *h == "EXTERNAL-IP")?;
            Some(rows.get(1)?.get(column)?.to_string())
        });
        if let Some(ip) = ip.filter(|ip| ok && ip != "<pending>") {
            return ip;
        }
        if std::time::Instant::now() > deadline {
            let (_, service) = kubectl(
                kubeconfig,
                &["-n", namespace, "get", "svc", name, "-o", "yaml"],
                None,
            );
            panic!("{namespace}/{name} got no EXTERNAL-IP:\n{service}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const BLUE_POOL_ALL_FORMS: &str = r#"
apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "198.51.100.0/24"
  - cidr: "2001:db8:2004::0/64"
  - start: "192.0.2.100"
    stop: "192.0.2.200"
  - start: "192.0.2.4"
"#;

const BLUE_AND_RED: &str = r#"
apiVersion: "cilium.io/v2alpha1"
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

const BLUE_DISABLED: &str = r#"
apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
  disabled: true
"#;

const BLUE_FOR_ALL: &str = r#"
apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "blue-pool"
spec:
  blocks:
  - cidr: "203.0.113.0/24"
"#;

const SERVICE_RED: &str = r#"
apiVersion: v1
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

const SERVICE_BLUE_IPS: &str = r#"
apiVersion: v1
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

const SHARING: &str = r#"
apiVersion: v1
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cilium_lb_ipam_walkthrough() {
    if !have_kubectl() {
        return;
    }
    let front = Front::start().await;
    let kc = front.kubeconfig.clone();
    let _provider = front.provider(&["--announcers=none", "--pool-objects=lbpool,eip,cilium"]);
    tokio::task::spawn_blocking(move || {
        install(&kc, &["manifests/compat/cilium-lbippool-crd.yaml"]);

        // Pools: every block form, IPv4 and IPv6 in one pool; the count is exact (an IPv6
        // /64 alone holds 2^64 addresses; Cilium prints a capped figure there).
        apply(&kc, BLUE_POOL_ALL_FORMS);
        eventually("blue-pool counted", || {
            let rows = table(&kc, &["get", "ippools"]);
            (row(&rows, "blue-pool").len() == 5 && row(&rows, "blue-pool")[3] != "<none>")
                .then(|| format!("{rows:?}"))
        });
        let rows = table(&kc, &["get", "ippools"]);
        assert_eq!(rows[0], ["NAME", "DISABLED", "CONFLICTING", "IPS", "AVAILABLE", "AGE"], "{rows:?}");
        let blue = row(&rows, "blue-pool");
        assert_eq!(&blue[1..4], ["false", "False", "18446744073709551974"], "{rows:?}");
        kubectl_ok(&kc, &["delete", "ippool", "blue-pool"], None);

        // Conflicts: the pool added later conflicts, with Cilium's message.
        apply(&kc, BLUE_AND_RED);
        eventually("red-pool conflicting", || {
            let rows = table(&kc, &["get", "ippools"]);
            let red = row(&rows, "red-pool").to_vec();
            (red.get(2).map(String::as_str) == Some("True")).then(|| format!("{rows:?}"))
        });
        let rows = table(&kc, &["get", "ippools"]);
        assert_eq!(&row(&rows, "blue-pool")[1..4], ["false", "False", "256"], "{rows:?}");
        assert_eq!(&row(&rows, "red-pool")[1..4], ["false", "True", "256"], "{rows:?}");
        let message = kubectl_ok(
            &kc,
            &["get", "ippools/red-pool", "-o",
              r#"jsonpath={.status.conditions[?(@.type=="cilium.io/PoolConflict")].message}"#],
            None,
        );
        assert_eq!(
            message,
            "Pool conflicts since CIDR '203.0.113.0/24' overlaps CIDR '203.0.113.0/24' from IP Pool 'blue-pool'"
        );
        let reason = kubectl_ok(
            &kc,
            &["get", "ippools/red-pool", "-o",
              r#"jsonpath={.status.conditions[?(@.type=="cilium.io/PoolConflict")].reason}"#],
            None,
        );
        assert_eq!(reason, "cidr_overlap");
        let described = kubectl_ok(&kc, &["describe", "ippools/red-pool"], None);
        assert!(described.contains("cilium.io/PoolConflict"), "{described}");

        // Disabling: no new allocations; the column says so.
        apply(&kc, BLUE_DISABLED);
        eventually("blue-pool disabled", || {
            let rows = table(&kc, &["get", "ippools"]);
            (row(&rows, "blue-pool")[1] == "true").then(|| format!("{rows:?}"))
        });
        let counts = kubectl_ok(
            &kc,
            &["get", "ippools", "-o",
              r#"jsonpath={.items[*].status.conditions[?(@.type!="cilium.io/PoolConflict")].type}"#],
            None,
        );
        assert!(counts.contains("cilium.io/IPsTotal") && counts.contains("cilium.io/IPsUsed"), "{counts}");

        // Services: a Service no enabled pool may serve stays pending and says why.
        apply(&kc, BLUE_AND_RED);
        kubectl_ok(&kc, &["create", "namespace", "example"], None);
        apply(&kc, SERVICE_RED);
        let reason = eventually("service-red condition", || {
            let (ok, text) = kubectl(
                &kc,
                &["-n", "example", "get", "svc/service-red", "-o",
                  r#"jsonpath={.status.conditions[?(@.type=="ferrolb.io/AddressAllocated")].reason}"#],
                None,
            );
            (ok && !text.is_empty()).then_some(text)
        });
        // Only the conflicting red-pool selects it (Cilium says no_pool; FerroLB names why).
        assert_eq!(reason, "PoolConflict");
        let rows = table(&kc, &["-n", "example", "get", "svc"]);
        assert_eq!(row(&rows, "service-red")[3], "<pending>", "{rows:?}");
        kubectl_ok(&kc, &["-n", "example", "label", "--overwrite", "svc", "service-red", "color=blue"], None);
        let ip = external_ip(&kc, "example", "service-red");
        assert!(ip.starts_with("203.0.113."), "{ip}");

        // Requested IPs: both, as the annotation lists them.
        apply(&kc, SERVICE_BLUE_IPS);
        assert_eq!(external_ip(&kc, "example", "service-blue"), "203.0.113.100,203.0.113.200");

        // Sharing keys: different ports share one address (from a pool that serves both
        // colours, as the seed's cluster has).
        kubectl_ok(&kc, &["-n", "example", "delete", "svc", "service-blue", "service-red", "--timeout=30s"], None);
        kubectl_ok(&kc, &["delete", "ippool", "red-pool"], None);
        apply(&kc, BLUE_FOR_ALL);
        apply(&kc, SHARING);
        let blue = external_ip(&kc, "example", "service-blue");
        let red = external_ip(&kc, "example", "service-red");
        assert_eq!(blue, red, "one address for both");
        assert!(blue.starts_with("203.0.113."), "{blue}");
    })
    .await
    .expect("kubectl steps");
}

const LAYER2_EIP: &str = r#"
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: porter-layer2-eip
spec:
  address: 192.0.2.91-192.0.2.100
  interface: eth0
  protocol: layer2
"#;

const LAYER2_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: porter-layer2
spec:
  replicas: 2
  selector:
    matchLabels:
      app: porter-layer2
  template:
    metadata:
      labels:
        app: porter-layer2
    spec:
      containers:
        - image: luksa/kubia
          name: kubia
          ports:
            - containerPort: 8080
"#;

const LAYER2_SERVICE: &str = r#"
kind: Service
apiVersion: v1
metadata:
  name: porter-layer2-svc
  annotations:
    lb.kubesphere.io/v1alpha1: porter
    protocol.porter.kubesphere.io/v1alpha1: layer2
    eip.porter.kubesphere.io/v1alpha2: porter-layer2-eip
spec:
  selector:
    app: porter-layer2
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      targetPort: 8080
  externalTrafficPolicy: Cluster
"#;

const VIP_EIP: &str = r#"
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: vip-eip
spec:
  address: 198.51.100.91-198.51.100.100
  protocol: vip
"#;

const VIP_SERVICE: &str = r#"
kind: Service
apiVersion: v1
metadata:
  name: vip-svc
  annotations:
    lb.kubesphere.io/v1alpha1: openelb
    protocol.openelb.kubesphere.io/v1alpha1: vip
    eip.openelb.kubesphere.io/v1alpha2: vip-eip
spec:
  selector:
    app: vip-openelb
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      targetPort: 8080
  externalTrafficPolicy: Cluster
"#;

/// The vip walkthrough's Service with its Eip annotation replaced by `spec.loadBalancerIP`,
/// as the seed's note suggests.
const VIP_SERVICE_BY_IP: &str = r#"
kind: Service
apiVersion: v1
metadata:
  name: vip-svc-by-ip
  annotations:
    lb.kubesphere.io/v1alpha1: openelb
    protocol.openelb.kubesphere.io/v1alpha1: vip
spec:
  type: LoadBalancer
  loadBalancerIP: 198.51.100.95
  ports:
    - name: http
      port: 80
      targetPort: 8080
"#;

const OVERLAPPING_EIP: &str = r#"
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: overlapping-eip
spec:
  address: 192.0.2.96/30
  protocol: layer2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openelb_layer2_and_vip_walkthroughs() {
    if !have_kubectl() {
        return;
    }
    let front = Front::start().await;
    let kc = front.kubeconfig.clone();
    let _provider = front.provider(&["--announcers=none"]);
    tokio::task::spawn_blocking(move || {
        install(&kc, &["manifests/compat/eip-crd.yaml"]);
        apply(&kc, LAYER2_EIP);
        apply(&kc, LAYER2_DEPLOYMENT);
        apply(&kc, LAYER2_SERVICE);
        assert_eq!(
            external_ip(&kc, "default", "porter-layer2-svc"),
            "192.0.2.91"
        );
        let status = eventually("the Eip's status", || {
            let (ok, text) = kubectl(
                &kc,
                &[
                    "get",
                    "eip",
                    "porter-layer2-eip",
                    "-o",
                    "jsonpath={.status}",
                ],
                None,
            );
            (ok && text.contains("\"usage\":1")).then_some(text)
        });
        let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
        assert_eq!(
            status,
            serde_json::json!({
                "occupied": false, "usage": 1, "poolSize": 10,
                "used": {"192.0.2.91": "default/porter-layer2-svc"},
                "firstIP": "192.0.2.91", "lastIP": "192.0.2.100", "ready": true, "v4": true,
            })
        );

        apply(&kc, VIP_EIP);
        apply(&kc, VIP_SERVICE);
        assert_eq!(external_ip(&kc, "default", "vip-svc"), "198.51.100.91");
        apply(&kc, VIP_SERVICE_BY_IP);
        assert_eq!(
            external_ip(&kc, "default", "vip-svc-by-ip"),
            "198.51.100.95"
        );

        // OpenELB refuses an overlapping Eip at creation (its webhook); FerroLB reads it,
        // gives nothing from it and says so in the status it has: ready false.
        apply(&kc, OVERLAPPING_EIP);
        let ready = eventually("the overlapping Eip's status", || {
            let (ok, text) = kubectl(
                &kc,
                &[
                    "get",
                    "eip",
                    "overlapping-eip",
                    "-o",
                    "jsonpath={.status.ready}",
                ],
                None,
            );
            (ok && !text.is_empty()).then_some(text)
        });
        assert_eq!(ready, "false");
    })
    .await
    .expect("kubectl steps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pool_gets_the_422_a_real_api_server_gives() {
    if !have_kubectl() {
        return;
    }
    let front = Front::start().await;
    let kc = front.kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        install(&kc, &["manifests/provider/crd-loadbalancerpools.yaml"]);
        let bad = r#"
apiVersion: ferrolb.io/v1alpha1
kind: LoadBalancerPool
metadata:
  name: bad
spec:
  blocks:
  - cidr: 192.0.2.0/24
  mode: ospf
"#;
        let (ok, text) = kubectl(&kc, &["apply", "-f", "-"], Some(bad));
        assert!(!ok, "refused: {text}");
        assert!(text.contains("spec.mode"), "{text}");
        assert!(text.contains("Unsupported value: \"ospf\""), "{text}");
        let good = bad.replace("mode: ospf", "mode: bgp");
        kubectl_ok(&kc, &["apply", "-f", "-"], Some(&good));
        // Defaults are applied as the CRD says.
        let defaults = kubectl_ok(
            &kc,
            &[
                "get",
                "lbpool",
                "bad",
                "-o",
                "jsonpath={.spec.allowFirstLastIPs} {.spec.disabled} {.spec.priority}",
            ],
            None,
        );
        assert_eq!(defaults, "Yes false 0");
    })
    .await
    .expect("kubectl steps");
}
