//! Black-box test of the built `ferrolb-provider` binary against the test API server's HTTP
//! front door, driven with kubectl exactly as an operator would.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use test_apiserver::TestApiServer;

mod kubectl;

use kubectl::{ChildGuard, eventually, free_port, have_kubectl, kubectl, kubectl_ok};

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

const CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: kubevip
  namespace: kube-system
data:
  range-global: 192.0.2.50-192.0.2.60
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: LoadBalancer
  ports:
    - port: 80
      protocol: TCP
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_binary_allocates_follows_edits_and_releases_through_kubectl() {
    if !have_kubectl() {
        return;
    }
    let server = TestApiServer::new();
    let (address, _serving) = server.serve_http(0).await.expect("HTTP front door");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");

    let kc = kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        // `kubectl create configmap` sends protobuf, which the test API server does not
        // speak; `apply` sends JSON. --validate=false: the test API server's committed version
        // serves no OpenAPI document yet.
        kubectl_ok(
            &kc,
            &["apply", "--validate=false", "-f", "-"],
            Some(CONFIG_MAP),
        );
    })
    .await
    .expect("kubectl task");

    let mut provider = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_ferrolb-provider"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg(format!("--metrics-addr={metrics_addr}"))
            .args([
                "--lease-duration=3s",
                "--renew-deadline=2s",
                "--retry-period=500ms",
                "--log-format=json",
                "--announcers=none",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("provider binary starts"),
    );

    let kc = kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        kubectl_ok(
            &kc,
            &["apply", "--validate=false", "-f", "-"],
            Some(SERVICE),
        );
        let annotation = r"jsonpath={.metadata.annotations.kube-vip\.io/loadbalancerIPs}";
        let first = eventually("annotation written", || {
            let (ok, text) = kubectl(&kc, &["get", "svc", "web", "-o", annotation], None);
            (ok && !text.trim().is_empty()).then(|| text.trim().to_string())
        });
        assert_eq!(first, "192.0.2.50");
        let ingress = kubectl_ok(
            &kc,
            &[
                "get",
                "svc",
                "web",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ],
            None,
        );
        assert_eq!(ingress.trim(), "192.0.2.50");

        kubectl_ok(
            &kc,
            &[
                "annotate",
                "--overwrite",
                "svc",
                "web",
                "kube-vip.io/loadbalancerIPs=192.0.2.55",
            ],
            None,
        );
        eventually("requested address honoured", || {
            let (ok, text) = kubectl(
                &kc,
                &["get", "svc", "web", "-o", "jsonpath={.spec.loadBalancerIP}"],
                None,
            );
            (ok && text.trim() == "192.0.2.55").then_some(text)
        });
        let condition = kubectl_ok(
            &kc,
            &[
                "get",
                "svc",
                "web",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="ferrolb.io/AddressAllocated")].status}"#,
            ],
            None,
        );
        assert_eq!(condition.trim(), "True");

        // Delete waits for our finalizer, which is removed after the release.
        kubectl_ok(&kc, &["delete", "svc", "web", "--timeout=30s"], None);
        let (_, gone) = kubectl(&kc, &["get", "svc", "web"], None);
        assert!(
            gone.contains("NotFound") || gone.contains("not found"),
            "{gone}"
        );
    })
    .await
    .expect("kubectl steps");

    let ready = tokio::task::spawn_blocking(move || {
        let metrics = eventually("metrics served", || {
            http_get(metrics_addr, "/metrics").filter(|m| m.contains("ferrolb_releases_total 1"))
        });
        let ready = http_get(metrics_addr, "/readyz").unwrap_or_default();
        (metrics, ready)
    })
    .await
    .expect("metrics task");
    assert!(ready.0.contains("ferrolb_leader 1"), "{}", ready.0);
    assert!(
        ready
            .0
            .contains("ferrolb_allocations_total{pool=\"global\"} 2"),
        "{}",
        ready.0
    );
    assert!(
        ready.1.starts_with("HTTP/1.0 200") || ready.1.starts_with("HTTP/1.1 200"),
        "{}",
        ready.1
    );

    // SIGTERM (what the kubelet sends): the process exits and hands the Lease over.
    let pid = provider.0.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(code)) = provider.0.try_wait() {
                return Some(code);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
    .await
    .expect("wait task");
    assert!(
        exited.is_some_and(|code| code.success()),
        "clean exit on SIGTERM: {exited:?}"
    );
    let lease = server
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "ferrolb-provider",
        )
        .expect("the Lease exists");
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "Lease released: {lease}"
    );
}
