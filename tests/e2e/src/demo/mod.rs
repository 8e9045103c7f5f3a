//! The demo: the seeds' walkthroughs played on the harness's cluster with the real binaries,
//! printing what the walkthroughs print. `ferrolb-demo` runs it for a person;
//! `tests/demo.rs` runs the same code and compares the normalised output with
//! `tests/demo.expected`.
//!
//! ```text
//!   Demo::start ── Cluster (test-apiserver, provider, 3 nodes × announcer, client, BIRD)
//!      │            + CRDs (Eip, CiliumLoadBalancerIPPool, LoadBalancerPool)
//!      ├─ openelb::layer2 / openelb::vip   (seeds 001, 002)  ─┐
//!      ├─ bgp::routes                      (BGP at BIRD)      │  each step: what a user types,
//!      ├─ failover::node_dies              (point 3)          ├─ what it printed → Report
//!      ├─ cilium::walkthrough              (seed 003)         │  (+ checks that panic with
//!      └─ kube_vip::readme                 (seed 004)        ─┘   what was seen instead)
//! ```
//! Pods and kube-proxy are stand-ins ([`pods`]); everything else is the product.

pub mod bgp;
pub mod cilium;
pub mod failover;
pub mod forward;
pub mod kube_vip;
pub mod openelb;
pub mod pods;
pub mod report;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{Cluster, POOL_BGP, Setup};
use crate::scenario::provider;
use crate::wait_for;

use pods::KubeProxy;
use report::Report;

/// The global pool of the demo's ConfigMap: the walkthroughs' Eips use 192.0.2.91-100, so
/// the ConfigMap starts above them (a pool object overlapping a ConfigMap pool conflicts).
pub const DEMO_POOL_GLOBAL: &str = "192.0.2.101-192.0.2.120,2001:db8::100-2001:db8::120";

/// The CRDs of the pool objects the walkthroughs use, as they ship.
const CRDS: [(&str, &str); 3] = [
    (
        "manifests/compat/eip-crd.yaml",
        include_str!("../../../../manifests/compat/eip-crd.yaml"),
    ),
    (
        "manifests/compat/cilium-lbippool-crd.yaml",
        include_str!("../../../../manifests/compat/cilium-lbippool-crd.yaml"),
    ),
    (
        "manifests/provider/crd-loadbalancerpools.yaml",
        include_str!("../../../../manifests/provider/crd-loadbalancerpools.yaml"),
    ),
];

/// What the demo runs besides `ip` and the workspace binaries (scripts/install-test-deps.sh
/// demo installs them).
pub const TOOLS: &[&str] = &["bird", "birdc", "kubectl", "ping", "arping", "curl", "nft"];

/// The tools of [`TOOLS`] not found on `PATH`.
pub fn missing_tools() -> Vec<&'static str> {
    TOOLS
        .iter()
        .chain(&["ip"])
        .copied()
        .filter(|tool| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

/// The address the OpenELB walkthroughs' Services get (the first of their Eip), as the
/// README's verify step writes it.
pub const WALKTHROUGH_IP: &str = "192.0.2.91";

/// Commands README.md shows that the demo runs as written (the test checks README.md still
/// shows each). `{ip}` is [`WALKTHROUGH_IP`].
pub const README_COMMANDS: &[&str] = &[
    STRICT_ARP,
    ROLLOUT_KUBE_PROXY,
    "kubectl get svc porter-layer2-svc",
    "curl http://{ip}/",
    "arping -c 3 -I eth0 {ip}",
    "ip neigh show {ip}",
    "kubectl get svc -A -o wide",
];

/// kube-proxy in IPVS mode: strictARP, as the OpenELB walkthrough asks (non-interactive).
pub const STRICT_ARP: &str = "kubectl get configmap kube-proxy -n kube-system -o yaml | sed -e 's/strictARP: false/strictARP: true/' | kubectl apply -f - -n kube-system";
/// Restarting kube-proxy so it reads its configuration again.
pub const ROLLOUT_KUBE_PROXY: &str = "kubectl rollout restart daemonset kube-proxy -n kube-system";

/// The Service left running at the end.
const PLAYGROUND: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
    - name: http
      port: 80
"#;

/// What a kubeadm cluster has: kube-proxy's ConfigMap (IPVS mode, strictARP off) and its
/// DaemonSet, so the walkthrough's strictARP step has something to change.
const KUBE_PROXY: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-proxy
  namespace: kube-system
data:
  config.conf: |
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    mode: ipvs
    ipvs:
      strictARP: false
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-proxy
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: kube-proxy
  template:
    metadata:
      labels:
        k8s-app: kube-proxy
    spec:
      containers:
      - name: kube-proxy
        image: registry.k8s.io/kube-proxy:v1.33.0
"#;

/// Where and how the demo's cluster is built.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespace names `<prefix>node1`, ...; None: unique per process (tests).
    pub namespace_prefix: Option<String>,
    /// File that records each namespace before it is created (for `--down`).
    pub namespace_record: Option<PathBuf>,
    /// Where the run's directory goes; None: the temporary directory.
    pub dir_in: Option<PathBuf>,
    /// Print each line of the report as it comes.
    pub echo: bool,
}

/// The running demo.
pub struct Demo {
    pub report: Report,
    pub kube_proxy: KubeProxy,
    pub cluster: Cluster,
}

impl Demo {
    /// Builds the cluster (provider in cluster mode reading every pool kind) and installs
    /// the CRDs of the pool objects.
    pub fn start(options: &Options) -> Demo {
        let mut provider = provider("demo", false, 18090);
        provider
            .extra_args
            .push("--pool-objects=lbpool,eip,cilium".into());
        let cluster = Cluster::start_with(&Setup {
            providers: vec![provider],
            namespace_prefix: options.namespace_prefix.clone(),
            namespace_record: options.namespace_record.clone(),
            dir_in: options.dir_in.clone(),
            pools: default_pools(),
            ..Setup::default()
        });
        let mut demo = Demo {
            report: Report::new(&cluster, options.echo),
            kube_proxy: KubeProxy::default(),
            cluster,
        };
        // The walkthroughs' pools outside the LAN (Cilium's, kube-vip's) are announced in
        // layer2 mode on the interface whose subnet holds them: each node gets an address
        // in those subnets too, as a node on a multi-subnet LAN would.
        for (i, node) in crate::cluster::NODES.iter().enumerate() {
            let host = demo.cluster.host(node).clone();
            for subnet in ["203.0.113", "198.51.100"] {
                let address = format!("{subnet}.{}/24", 251 + i);
                host.exec_ok(&["ip", "addr", "add", &address, "dev", "eth0"]);
            }
        }
        demo.report.section("The cluster");
        demo.report.say(
            "test-apiserver, ferrolb-provider (cluster mode), node-1..3 each with \
             ferrolb-announcer, a client and a BIRD router, on one LAN 192.0.2.0/24.",
        );
        for (file, yaml) in CRDS {
            demo.cluster.kubectl.ok(&["apply", "-f", "-"], Some(yaml));
            demo.report.say(&format!("installed {file}"));
        }
        demo.cluster
            .kubectl
            .ok(&["apply", "-f", "-"], Some(KUBE_PROXY));
        demo.kubectl(&["get", "nodes", "-o", "wide"]);
        demo
    }

    /// Every scenario in order.
    pub fn run_all(&mut self) {
        openelb::strict_arp(self);
        openelb::layer2(self);
        openelb::vip(self);
        bgp::routes(self);
        failover::node_dies(self);
        cilium::walkthrough(self);
        kube_vip::readme(self);
        self.playground();
    }

    /// Leaves a Service up for the user: layer2 from the demo's global pool, answered by
    /// every node's own `You've hit <node>` server.
    fn playground(&mut self) {
        self.report.section("Left running for you");
        self.apply("web.yaml", PLAYGROUND);
        let ip = self.external_ip("default", "web");
        let client = self.cluster.host("client").clone();
        let url = format!("http://{ip}/");
        wait_for(
            &format!("the client's curl {url} to be answered"),
            Duration::from_secs(30),
            || {
                let out = client.exec(&["curl", "-s", "--max-time", "5", &url]);
                out.status
                    .success()
                    .then_some(())
                    .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
            },
        );
        self.client(&["curl", &url]);
        self.kubectl(&[
            "get",
            "svc",
            "web",
            "-o",
            r#"custom-columns=NAME:.metadata.name,EXTERNAL-IP:.status.loadBalancer.ingress[*].ip,ANNOUNCED:.status.conditions[?(@.type=="ferrolb.io/Announced")].message"#,
        ]);
    }

    /// Runs kubectl as a user types it and reports the command and its output; panics when
    /// it fails.
    pub fn kubectl(&mut self, args: &[&str]) -> String {
        let out = self.cluster.kubectl.ok(args, None);
        self.report
            .command("cp", &format!("kubectl {}", quote(args)), &out);
        out
    }

    /// Runs a shell command line in the control-plane namespace with `KUBECONFIG` set (so
    /// kubectl pipelines run as a user types them) and reports it; panics when it fails.
    pub fn shell(&mut self, command: &str) -> String {
        let cp = self.cluster.host("cp").clone();
        let kubeconfig = format!("KUBECONFIG={}", self.cluster.kubectl.kubeconfig.display());
        let out = cp.exec(&["env", &kubeconfig, "sh", "-c", command]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`{command}` failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.report.command("cp", command, &text);
        text
    }

    /// `kubectl apply -f <file>` of `yaml`, reported with the YAML.
    pub fn apply(&mut self, file: &str, yaml: &str) -> String {
        let out = self.cluster.kubectl.ok(&["apply", "-f", "-"], Some(yaml));
        self.report.say(&format!("{file}:"));
        for line in yaml.trim().lines() {
            self.report.say(&format!("    {line}"));
        }
        self.report
            .command("cp", &format!("kubectl apply -f {file}"), &out);
        out
    }

    /// Runs `args` on the client machine and reports it; its stdout (with stderr when it
    /// failed; curl's progress meter on stderr is not shown).
    pub fn client(&mut self, args: &[&str]) -> String {
        let client = self.cluster.host("client").clone();
        let out = client.exec(args);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        self.report.command("client", &quote(args), &text);
        text
    }

    /// Waits until `kubectl get svc -n namespace name` shows an EXTERNAL-IP, then reports
    /// that command; the address(es).
    pub fn external_ip(&mut self, namespace: &str, name: &str) -> String {
        let kubectl = &self.cluster.kubectl;
        let ip = wait_for(
            &format!("Service {namespace}/{name} to show an EXTERNAL-IP"),
            Duration::from_secs(30),
            || {
                let text = kubectl.ok(&["get", "svc", "-n", namespace, name], None);
                external_ip_column(&text)
                    .filter(|ip| ip != "<pending>")
                    .ok_or(text)
            },
        );
        if namespace == "default" {
            self.kubectl(&["get", "svc", name]);
        } else {
            self.kubectl(&["get", "svc", "-n", namespace, name]);
        }
        ip
    }

    /// Deletes Services and waits until they are gone (the provider removes its finalizer).
    pub fn delete_services(&mut self, namespace: &str, names: &[&str]) {
        let mut args = vec!["delete", "svc", "-n", namespace];
        args.extend_from_slice(names);
        args.push("--timeout=60s");
        self.kubectl(&args);
    }
}

/// The ConfigMap keys the demo starts with.
pub fn default_pools() -> Vec<(String, String)> {
    vec![
        ("range-global".into(), DEMO_POOL_GLOBAL.into()),
        ("range-bgp".into(), POOL_BGP.into()),
    ]
}

/// The EXTERNAL-IP cell of a one-Service `kubectl get svc` table.
fn external_ip_column(table: &str) -> Option<String> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let column = header.iter().position(|h| *h == "EXTERNAL-IP")?;
    Some(lines.next()?.split_whitespace().nth(column)?.to_string())
}

/// Arguments as a shell would show them (quoted when they hold spaces or quotes).
pub fn quote(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '{', '*', '$', '(']) {
                format!("'{a}'")
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
