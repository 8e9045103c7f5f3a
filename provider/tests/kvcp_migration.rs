//! Switching from kube-vip-cloud-provider (issue #12): the built `ferrolb-provider` binary,
//! next to kube-vip (`--announcers=none`), started against the test API server's HTTP front
//! door over Services in the state KVCP and kube-vip leave them. Nothing KVCP or kube-vip
//! wrote may change: addresses, labels, `kube-vip.io/*` annotations, `spec.loadBalancerIP`,
//! kube-vip's ingress. Each Service gets a True condition; the ones FerroLB would refuse
//! today get a Warning Event, never a failure.

mod support;

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::Duration,
};

use k8s_openapi::{api::core::v1::Service, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};
use support::*;
use test_apiserver::TestApiServer;

/// Kills the child process when the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// The pool ConfigMap as a KVCP user has it: a range under a `range-` key written as a CIDR
/// (point 1), an interface, booleans in Go's forms (point 2); no global pool, so namespace
/// `lab` has none.
const POOLS: &[(&str, &str)] = &[
    ("cidr-default", "192.0.2.0/24,2001:db8::/64"),
    ("range-web", "198.51.100.48/28"),
    ("interface-global", "eth0"),
    ("skip-end-ips-in-cidr", "False"),
];

/// A Service as KVCP and kube-vip leave it: label, annotation, `spec.loadBalancerIP` (the
/// first address, as KVCP writes it), and kube-vip's ingress with the ports.
struct Left {
    namespace: &'static str,
    name: &'static str,
    addresses: &'static str,
    /// spec.ipFamilyPolicy and spec.ipFamilies.
    families: Option<(&'static str, &'static [&'static str])>,
    /// (protocol, port).
    port: (&'static str, i32),
    /// FerroLB would refuse this request for a new Service (an `AdoptedAsIs` Event). Of the
    /// two Services on one address, the younger one is told (both were created in the
    /// same second here, so the uid decides which).
    refused_today: bool,
}

const LEFT: &[Left] = &[
    Left {
        namespace: "default",
        name: "web",
        addresses: "192.0.2.10",
        families: None,
        port: ("TCP", 80),
        refused_today: false,
    },
    Left {
        namespace: "default",
        name: "dual",
        addresses: "2001:db8::10,192.0.2.11",
        families: Some(("RequireDualStack", &["IPv6", "IPv4"])),
        port: ("TCP", 443),
        refused_today: false,
    },
    Left {
        namespace: "default",
        name: "dhcp",
        addresses: "0.0.0.0",
        families: None,
        port: ("TCP", 8080),
        refused_today: false,
    },
    Left {
        namespace: "web",
        name: "outside",
        addresses: "203.0.113.77",
        families: None,
        port: ("TCP", 80),
        refused_today: true,
    },
    Left {
        namespace: "lab",
        name: "no-pool",
        addresses: "203.0.113.9",
        families: None,
        port: ("TCP", 80),
        refused_today: true,
    },
    // KVCP compares port numbers only, but its static addresses are never checked, so two
    // Services pinned to one address with different protocols run fine there.
    Left {
        namespace: "web",
        name: "dns-tcp",
        addresses: "198.51.100.53",
        families: None,
        port: ("TCP", 53),
        refused_today: true,
    },
    Left {
        namespace: "web",
        name: "dns-udp",
        addresses: "198.51.100.53",
        families: None,
        port: ("UDP", 53),
        refused_today: true,
    },
];

async fn create_left(client: &Client, left: &Left) {
    let first = left.addresses.split(',').next().unwrap_or_default();
    let mut svc = with_spec(lb(left.name), |s| {
        s.ports = Some(vec![port(left.port.0, left.port.1)]);
        s.load_balancer_ip = Some(first.to_string());
        if let Some((policy, families)) = left.families {
            s.ip_family_policy = Some(policy.to_string());
            s.ip_families = Some(families.iter().map(|f| f.to_string()).collect());
        }
    });
    svc.metadata = ObjectMeta {
        name: Some(left.name.into()),
        labels: Some(BTreeMap::from([(
            "implementation".to_string(),
            "kube-vip".to_string(),
        )])),
        annotations: Some(BTreeMap::from([
            (
                "kube-vip.io/loadbalancerIPs".to_string(),
                left.addresses.to_string(),
            ),
            (
                "kube-vip.io/serviceInterface".to_string(),
                "eth0".to_string(),
            ),
        ])),
        ..Default::default()
    };
    create(client, left.namespace, &svc).await;
    // kube-vip's status: the addresses it announces, with the Service's ports (a DHCP
    // Service shows the lease kube-vip got).
    let ingress: Vec<Value> = left
        .addresses
        .split(',')
        .map(|ip| if ip == "0.0.0.0" { "192.0.2.200" } else { ip })
        .map(|ip| json!({"ip": ip, "ports": [{"port": left.port.1, "protocol": left.port.0}]}))
        .collect();
    let api: Api<Service> = Api::namespaced(client.clone(), left.namespace);
    api.patch_status(
        left.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": ingress}}})),
    )
    .await
    .expect("kube-vip-like status");
}

/// What KVCP and kube-vip wrote and FerroLB must leave alone.
fn kvcp_fields(svc: &Service) -> Value {
    let value = serde_json::to_value(svc).expect("serializes");
    let kube_vip_annotations: BTreeMap<String, Value> = value["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with("kube-vip.io/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "labels": value["metadata"]["labels"],
        "annotations": kube_vip_annotations,
        "spec": value["spec"],
        "ingress": value["status"]["loadBalancer"]["ingress"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_started_over_services_left_by_kvcp_changes_nothing_they_show() {
    let server = TestApiServer::new();
    let client = server.client();
    let (address, _serving) = server.serve_http(0).await.expect("HTTP front door");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
    set_pools(&client, POOLS).await;
    for namespace in ["web", "lab"] {
        create_namespace(&client, namespace).await;
    }
    for left in LEFT {
        create_left(&client, left).await;
    }
    let mut before = BTreeMap::new();
    for left in LEFT {
        let svc = get(&client, left.namespace, left.name)
            .await
            .expect("the Service");
        before.insert(left.name, kvcp_fields(&svc));
    }

    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let _provider = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_ferrolb-provider"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg(format!("--metrics-addr={metrics_addr}"))
            .args(["--leader-elect=false", "--initialize-nodes=false"])
            .args(["--announcers=none", "--log-format=json"])
            // KVCP's Deployment sets this with Go's spelling; it must not crash-loop us.
            .env("KUBEVIP_ENABLE_LOADBALANCERCLASS", "False")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("provider binary starts"),
    );

    for left in LEFT {
        let svc = wait_service(
            &client,
            left.namespace,
            left.name,
            "our condition True",
            |s| condition(s).is_some_and(|c| c.0 == "True"),
        )
        .await;
        let (_, reason, message) = condition(&svc).unwrap_or_default();
        eprintln!("{}/{}: {reason}: {message}", left.namespace, left.name);
    }
    // Let the provider settle (it wrote its own record, condition and finalizer), then
    // check that it stays quiet: nothing is written again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut versions = BTreeMap::new();
    for left in LEFT {
        let svc = get(&client, left.namespace, left.name)
            .await
            .expect("the Service");
        versions.insert(left.name, svc.metadata.resource_version.clone());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut told_dns = 0;
    for left in LEFT {
        let svc = get(&client, left.namespace, left.name)
            .await
            .expect("the Service");
        assert_eq!(
            kvcp_fields(&svc),
            before[left.name],
            "{}/{}: what KVCP and kube-vip wrote is unchanged",
            left.namespace,
            left.name
        );
        assert_eq!(
            svc.metadata.resource_version, versions[left.name],
            "{}/{}: not written again",
            left.namespace, left.name
        );
        assert_eq!(
            condition(&svc).map(|c| c.0),
            Some("True".to_string()),
            "{}/{}",
            left.namespace,
            left.name
        );
        let events = events_for(&server, left.name);
        assert!(
            !events.iter().any(|(reason, _)| {
                ["AddressAllocated", "AddressChanged", "AllocationFailed"]
                    .contains(&reason.as_str())
            }),
            "{}: {events:?}",
            left.name
        );
        let told = events.iter().any(|(reason, _)| reason == "AdoptedAsIs");
        if left.name.starts_with("dns-") {
            told_dns += usize::from(told);
        } else {
            assert_eq!(told, left.refused_today, "{}: {events:?}", left.name);
        }
    }
    assert_eq!(
        told_dns, 1,
        "one of the two Services on 198.51.100.53 is told"
    );

    // A new Service next to them gets a free address, not one KVCP's Services hold.
    create(&client, "web", &lb("new")).await;
    let new = wait_allocated(&client, "web", "new").await;
    assert_eq!(new, "198.51.100.48");
    println!(
        "kvcp_migration services={} unchanged={} adopted_as_is_events={}",
        LEFT.len(),
        LEFT.len(),
        LEFT.iter().filter(|l| l.refused_today).count() - 1
    );
}

/// KVCP reads `KUBEVIP_ENABLE_LOADBALANCERCLASS` with Go's `strconv.ParseBool`; so does the
/// binary. It is stopped right after parsing by an invalid `--worker-threads=0`, so the
/// message shows whether the variable was read.
#[test]
fn kube_vip_class_variable_takes_go_booleans() {
    for (value, accepted) in [
        ("True", true),
        ("1", true),
        ("t", true),
        ("FALSE", true),
        ("yes", false),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrolb-provider"))
            .arg("--worker-threads=0")
            .env("KUBEVIP_ENABLE_LOADBALANCERCLASS", value)
            .output()
            .expect("binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{value}: {stderr}");
        assert_eq!(
            stderr.contains("--worker-threads must be at least 1"),
            accepted,
            "{value}: {stderr}"
        );
    }
}

/// The ConfigMap gets a Warning Event for each place FerroLB allocates differently from
/// KVCP (point 8).
#[tokio::test]
async fn differences_from_kvcp_are_events_on_the_config_map() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(
        &client,
        &[
            ("cidr-global", "192.0.2.0/24"),
            ("range-web", "198.51.100.1-198.51.100.9"),
        ],
    )
    .await;
    let running = start(&server, &[]);
    let note = eventually("a KvcpDifference Event on the ConfigMap", || async {
        server
            .objects("events.k8s.io/v1", "Event")
            .into_iter()
            .find(|e| e["regarding"]["kind"] == "ConfigMap" && e["reason"] == "KvcpDifference")
            .map(|e| e["note"].as_str().unwrap_or_default().to_string())
    })
    .await;
    assert!(note.contains("`range-web`"), "{note}");
    assert_eq!(running.metrics.config_kvcp_differences.get(), 1);
}
