//! The whole cluster wired together: topology, API server, Nodes and the announcer
//! EndpointSlice, BIRD, three announcers each with a stand-in Pod, and provider replicas.
//!
//! Each node behaves like a node with kube-proxy in IPVS mode: it accepts traffic for any
//! load-balancer address (`local` routes for the pools on `lo`) but does not answer ARP for
//! them (`arp_ignore=1`, `arp_announce=2`), so only the announcer decides which node a
//! client reaches. The client keeps the kernel's default sysctls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::bird::{Bird, NODE_ASN, ROUTER_ASN};
use super::certs::{
    AnnouncerTls, AnnouncerTlsMode, ProviderTls, write_announcer_tls_from_secret, write_pki,
};
use super::client::http_get;
use super::daemon::Daemon;
use super::kube::{self, Kubectl};
use super::topology::{Host, Topology};
use super::{Steps, wait_for, workspace_binary};

/// The announcers' gRPC port (TCP, mTLS) and metrics port, as in manifests/announcer, on
/// each node's own namespace.
pub const GRPC_PORT: u16 = 9720;
pub const METRICS_PORT: u16 = 9721;
/// Pools: the global one (layer2/vip, both families) and namespace `bgp`'s.
pub const POOL_GLOBAL: &str = "192.0.2.100-192.0.2.120,2001:db8::100-2001:db8::120";
pub const POOL_BGP: &str = "198.51.100.10-198.51.100.20";
/// What each node routes to itself (kube-proxy's part): covers both pools.
const LOCAL_ROUTES_V4: [&str; 2] = ["192.0.2.96/27", "198.51.100.0/24"];
const LOCAL_ROUTE_V6: &str = "2001:db8::100/120";
pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// One node's announcer.
pub struct NodeAnnouncer {
    pub daemon: Daemon,
    pub socket: PathBuf,
}

/// Where the announcers' TLS material comes from by default: the provider
/// (`--announcer-tls=managed`, the default install) or our own CA (`--announcer-tls=files`).
pub const ANNOUNCER_TLS: AnnouncerTlsMode = AnnouncerTlsMode::Managed;

/// How a provider replica runs.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// `--announcers=cluster` with files-mode TLS; false: `--announcers=none` behaviour
    /// (allocation only).
    pub cluster_mode: bool,
    /// `--leader-elect` with short lease timings; false: `--leader-elect=false`.
    pub leader_elect: bool,
    /// Lease holder identity, and the log file's name.
    pub identity: String,
    /// Port of its metrics server (127.0.0.1 in the control-plane namespace).
    pub metrics_port: u16,
}

pub struct Cluster {
    // Processes first: fields drop in declaration order, so everything is stopped before
    // the namespaces go.
    pub providers: Vec<Daemon>,
    pub announcers: Vec<Option<NodeAnnouncer>>,
    pub hellos: Vec<Daemon>,
    pub bird: Bird,
    pub apiserver: Daemon,
    pub kubectl: Kubectl,
    pub topology: Topology,
    pub announcer_tls: AnnouncerTls,
    pub provider_tls: ProviderTls,
    /// Whether each node's announcer endpoint is ready in the announcer EndpointSlice.
    announcer_ready: Vec<bool>,
    /// Where the announcers' TLS material comes from.
    tls_mode: AnnouncerTlsMode,
    /// Log files of every provider replica ever started.
    provider_logs: Vec<PathBuf>,
    pub steps: Steps,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Builds the topology and starts everything, the provider replicas `providers` included.
    /// With provider-managed TLS the providers start first and the harness hands their
    /// Secret to the announcers, as kubelet would mount it; with our own CA the announcers
    /// start first, so the providers' first dial succeeds.
    pub fn start(providers: &[ProviderOptions]) -> Cluster {
        Cluster::start_with_tls(ANNOUNCER_TLS, providers)
    }

    /// [`Cluster::start`] with the announcers' TLS from `tls` (both modes are tested).
    pub fn start_with_tls(tls: AnnouncerTlsMode, providers: &[ProviderOptions]) -> Cluster {
        let steps = Steps::new();
        let dir = tempfile::Builder::new()
            .prefix(&format!("ferrolb-e2e-{}-", std::process::id()))
            .tempdir()
            .expect("temp dir");
        let mut machines: Vec<(&str, u8)> = vec![("cp", 250)];
        machines.extend(NODES.iter().enumerate().map(|(i, n)| (*n, i as u8 + 1)));
        machines.extend([("client", 200), ("router", 254)]);
        let topology = Topology::new(&machines);
        for node in NODES {
            prepare_node(topology.host(node));
        }
        steps.log("topology up: cp, node-1..3, client, router on one bridge");

        let (announcer_tls, provider_tls) = write_pki(dir.path());
        let cp = topology.host("cp").clone();
        let kubeconfig = dir.path().join("kubeconfig");
        let apiserver_bin = workspace_binary("test-apiserver");
        let mut apiserver = Daemon::spawn(
            "test-apiserver",
            &cp.ns,
            &[
                &apiserver_bin.to_string_lossy(),
                "--port",
                "0",
                "--kubeconfig-out",
                &kubeconfig.to_string_lossy(),
            ],
            &[],
            dir.path(),
        );
        let kubectl = Kubectl {
            ns: cp.ns.clone(),
            kubeconfig,
            cache_dir: dir.path().join("kubectl-cache"),
        };
        wait_for(
            "the API server to answer kubectl",
            Duration::from_secs(20),
            || {
                apiserver.assert_running();
                if !kubectl.kubeconfig.exists() {
                    return Err("no kubeconfig written yet".into());
                }
                let out = kubectl.run(&["get", "namespaces", "-o", "name"], None);
                out.status
                    .success()
                    .then_some(())
                    .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
            },
        );
        steps.log("test-apiserver answers kubectl in cp");

        let bird = Bird::start(topology.host("router"), dir.path());
        let mut cluster = Cluster {
            providers: Vec::new(),
            announcers: Vec::new(),
            hellos: Vec::new(),
            bird,
            apiserver,
            kubectl,
            topology,
            announcer_tls,
            provider_tls,
            announcer_ready: vec![true; NODES.len()],
            provider_logs: Vec::new(),
            tls_mode: tls,
            steps,
            dir,
        };
        for node in NODES {
            cluster.kubectl.apply(&kube::node(node));
            cluster.set_node_ready(node, true);
            let stored = cluster.kubectl.get("node", None, node);
            let ready = stored.as_ref().and_then(|n| {
                n["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")
                    .map(|c| c["status"] == "True")
            });
            assert_eq!(
                ready,
                Some(true),
                "Node {node} should be Ready after the status patch: {stored:?}"
            );
        }
        cluster.kubectl.apply(&kube::announcer_service(GRPC_PORT));
        cluster.write_announcer_endpoints();
        cluster.kubectl.apply(&kube::namespace("bgp"));
        cluster.kubectl.apply(&kube::pool_configmap(&[
            ("range-global", POOL_GLOBAL),
            ("range-bgp", POOL_BGP),
        ]));
        cluster
            .steps
            .log("Nodes Ready, announcer Service + EndpointSlice, pool ConfigMap written");

        let managed = tls == AnnouncerTlsMode::Managed && providers.iter().any(|p| p.cluster_mode);
        if managed {
            for options in providers {
                cluster.start_provider(options);
            }
            wait_for(
                "the provider to create Secret kube-system/ferrolb-announcer-tls",
                Duration::from_secs(30),
                || write_announcer_tls_from_secret(&cluster.kubectl, &cluster.announcer_tls),
            );
            cluster.steps.log(
                "providers up; Secret kube-system/ferrolb-announcer-tls copied for the announcers",
            );
        }
        for (i, node) in NODES.iter().enumerate() {
            let announcer = cluster.spawn_announcer(i);
            cluster.announcers.push(Some(announcer));
            let host = cluster.topology.host(node).clone();
            let hello = workspace_binary("e2e-hello");
            cluster.hellos.push(Daemon::spawn(
                &format!("hello-{node}"),
                &host.ns,
                &[&hello.to_string_lossy(), node],
                &[],
                cluster.dir.path(),
            ));
        }
        for i in 0..NODES.len() {
            cluster.wait_announcer_ready(i);
        }
        cluster
            .steps
            .log("announcers answer on their sockets; e2e-hello runs on every node");
        let expected: Vec<String> = NODES
            .iter()
            .map(|n| cluster.topology.host(n).ipv4.clone())
            .collect();
        wait_for(
            "BGP sessions from node-1..3 Established at BIRD",
            Duration::from_secs(30),
            || {
                cluster.bird.daemon.assert_running();
                let up = cluster.bird.established_neighbours();
                (up == expected)
                    .then_some(())
                    .ok_or_else(|| format!("{up:?}"))
            },
        );
        cluster
            .steps
            .log("BIRD: BGP Established with node-1, node-2, node-3");
        if !managed {
            for options in providers {
                cluster.start_provider(options);
            }
        }
        if !providers.is_empty() {
            cluster.steps.log("provider replicas answer /healthz");
        }
        cluster
    }

    pub fn host(&self, name: &str) -> &Host {
        self.topology.host(name)
    }

    pub fn node_index(name: &str) -> usize {
        NODES
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name} is not a node"))
    }

    fn spawn_announcer(&self, index: usize) -> NodeAnnouncer {
        let node = NODES[index];
        let host = self.topology.host(node).clone();
        let bin = workspace_binary("ferrolb-announcer");
        let socket = self.dir.path().join(format!("{node}.sock"));
        let _ = std::fs::remove_file(&socket);
        let bgp_config = self.dir.path().join(format!("bgp-{node}.json"));
        let router = self.topology.host("router").ipv4.clone();
        std::fs::write(
            &bgp_config,
            json!({"peers": [{
                "address": router, "peer_asn": ROUTER_ASN, "local_asn": NODE_ASN,
                "hold_time_seconds": 9, "connect_retry_seconds": 1
            }]})
            .to_string(),
        )
        .expect("write BGP config");
        let listen = format!("{}:{GRPC_PORT},unix:{}", host.ipv4, socket.display());
        let metrics = format!("{}:{METRICS_PORT}", host.ipv4);
        let tls = &self.announcer_tls;
        let daemon = Daemon::spawn(
            &format!("announcer-{node}"),
            &host.ns,
            &[
                &bin.to_string_lossy(),
                "--listen",
                &listen,
                "--tls-cert",
                &tls.cert.to_string_lossy(),
                "--tls-key",
                &tls.key.to_string_lossy(),
                "--client-ca",
                &tls.client_ca.to_string_lossy(),
                "--metrics-listen",
                &metrics,
                "--garp-count",
                "3",
                "--garp-interval",
                "300ms",
                "--link-poll-interval",
                "500ms",
                "--bgp-config",
                &bgp_config.to_string_lossy(),
            ],
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
            self.dir.path(),
        );
        NodeAnnouncer { daemon, socket }
    }

    fn wait_announcer_ready(&mut self, index: usize) {
        let node = NODES[index];
        let announcer = self.announcers[index]
            .as_mut()
            .unwrap_or_else(|| panic!("announcer of {node} is not running"));
        let socket = announcer.socket.clone();
        wait_for(
            &format!("the announcer on {node} to answer `ctl state`"),
            Duration::from_secs(15),
            || {
                announcer.daemon.assert_running();
                ctl_state(&socket).map(|_| ())
            },
        );
    }

    /// SIGKILLs the announcer of `node` (a crash: it withdraws nothing itself).
    pub fn kill_announcer(&mut self, node: &str) {
        let index = Self::node_index(node);
        if let Some(mut announcer) = self.announcers[index].take() {
            announcer.daemon.kill();
        }
    }

    /// Starts the announcer of `node` again and waits until it answers.
    pub fn restart_announcer(&mut self, node: &str) {
        let index = Self::node_index(node);
        let announcer = self.spawn_announcer(index);
        self.announcers[index] = Some(announcer);
        self.wait_announcer_ready(index);
    }

    /// `ferrolb-announcer ctl state` of `node`: the JSON, or why it could not be read.
    pub fn ctl_state(&self, node: &str) -> Result<Value, String> {
        let index = Self::node_index(node);
        let announcer = self.announcers[index]
            .as_ref()
            .ok_or_else(|| format!("the announcer of {node} is not running"))?;
        ctl_state(&announcer.socket)
    }

    /// `ctl` with other arguments on `node`'s socket; panics on failure.
    pub fn ctl(&self, node: &str, args: &[&str]) -> Value {
        let index = Self::node_index(node);
        let announcer = self.announcers[index]
            .as_ref()
            .unwrap_or_else(|| panic!("the announcer of {node} is not running"));
        ctl(&announcer.socket, args).unwrap_or_else(|e| panic!("{node}: {e}"))
    }

    /// The announcements in `node`'s ctl state: `(address, mode, phase, since_unix_ms)`.
    pub fn announced(&self, node: &str) -> Result<Vec<Announced>, String> {
        let state = self.ctl_state(node)?;
        Ok(state["announcements"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| Announced {
                        address: a["address"].as_str().unwrap_or_default().to_string(),
                        mode: a["mode"].as_str().unwrap_or_default().to_string(),
                        phase: a["phase"].as_str().unwrap_or_default().to_string(),
                        since_unix_ms: a["since_unix_ms"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The nodes whose announcer lists `address` (any mode, any phase).
    pub fn nodes_announcing(&self, address: &str) -> Result<Vec<String>, String> {
        let mut nodes = Vec::new();
        for (index, node) in NODES.iter().enumerate() {
            if self.announcers[index].is_none() {
                continue;
            }
            if self.announced(node)?.iter().any(|a| a.address == address) {
                nodes.push(node.to_string());
            }
        }
        Ok(nodes)
    }

    /// Sets the kubelet's Ready condition of `node`.
    pub fn set_node_ready(&self, node: &str, ready: bool) {
        let host = self.topology.host(node);
        self.kubectl
            .patch_node_status(node, &kube::node_status(ready, &host.ipv4, &host.ipv6));
    }

    /// Marks `node`'s announcer endpoint ready or not, as the EndpointSlice controller
    /// does when the Pod's readiness changes.
    pub fn set_announcer_endpoint_ready(&mut self, node: &str, ready: bool) {
        self.announcer_ready[Self::node_index(node)] = ready;
        self.write_announcer_endpoints();
    }

    fn write_announcer_endpoints(&self) {
        let hosts: Vec<Host> = NODES
            .iter()
            .map(|n| self.topology.host(n).clone())
            .collect();
        let endpoints: Vec<kube::Endpoint<'_>> = NODES
            .iter()
            .zip(&hosts)
            .zip(&self.announcer_ready)
            .map(|((node, host), ready)| (*node, host.ipv4.as_str(), *ready))
            .collect();
        self.kubectl.apply(&kube::endpoint_slice(
            kube::ANNOUNCER_NAMESPACE,
            kube::ANNOUNCER_SERVICE,
            "IPv4",
            "grpc",
            GRPC_PORT,
            &endpoints,
        ));
    }

    /// Starts a provider replica in the control-plane namespace.
    pub fn start_provider(&mut self, options: &ProviderOptions) {
        let bin = workspace_binary("ferrolb-provider");
        let kubeconfig = self.kubectl.kubeconfig.to_string_lossy().into_owned();
        let metrics = format!("127.0.0.1:{}", options.metrics_port);
        let mut args: Vec<String> = vec![
            bin.to_string_lossy().into_owned(),
            "--kubeconfig".into(),
            kubeconfig,
            "--metrics-addr".into(),
            metrics,
            "--identity".into(),
            options.identity.clone(),
        ];
        if options.leader_elect {
            args.extend(
                [
                    "--leader-elect=true",
                    "--lease-duration=3s",
                    "--renew-deadline=2s",
                    "--retry-period=500ms",
                ]
                .map(String::from),
            );
        } else {
            args.push("--leader-elect=false".into());
        }
        args.extend(provider_announcer_args(
            options.cluster_mode,
            self.tls_mode,
            &self.provider_tls,
        ));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cp = self.topology.host("cp").clone();
        let mut daemon = Daemon::spawn(
            &format!("provider-{}", options.identity),
            &cp.ns,
            &args,
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
            self.dir.path(),
        );
        self.provider_logs.push(daemon.log.clone());
        wait_for(
            &format!("provider {} to answer /healthz", options.identity),
            Duration::from_secs(20),
            || {
                daemon.assert_running();
                let response = http_get(&cp, "127.0.0.1", options.metrics_port, "/healthz")?;
                response
                    .lines()
                    .next()
                    .is_some_and(|status| status.contains(" 200 "))
                    .then_some(())
                    .ok_or(response)
            },
        );
        self.providers.push(daemon);
    }

    /// Stops the provider replica called `identity` — SIGTERM, or SIGKILL when `crash` —
    /// and forgets it.
    pub fn stop_provider(&mut self, identity: &str, crash: bool) {
        let name = format!("provider-{identity}");
        let at = self
            .providers
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no provider replica {identity} is running"));
        let mut daemon = self.providers.remove(at);
        if crash {
            daemon.kill();
        } else {
            daemon.stop();
        }
    }

    /// The generation each running announcer reports in `ctl state` (the provider's Sync
    /// generation, which grows across leaders), for the log.
    pub fn generations(&self) -> Vec<(String, u64)> {
        NODES
            .iter()
            .filter_map(|node| {
                let state = self.ctl_state(node).ok()?;
                Some((node.to_string(), state["generation"].as_u64().unwrap_or(0)))
            })
            .collect()
    }

    /// The last `lines` lines of every provider's and announcer's log (stopped providers
    /// included), for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut text = String::new();
        for log in &self.provider_logs {
            text.push_str(&super::daemon::tail(log, lines));
            text.push('\n');
        }
        for announcer in self.announcers.iter().flatten() {
            text.push_str(&announcer.daemon.log_tail(lines));
            text.push('\n');
        }
        text.push_str(&self.bird.daemon.log_tail(lines));
        text
    }

    /// Fetches Service `namespace/name`, panicking when it is gone.
    pub fn service(&self, namespace: &str, name: &str) -> Value {
        self.kubectl
            .get("service", Some(namespace), name)
            .unwrap_or_else(|| panic!("Service {namespace}/{name} does not exist"))
    }
}

impl Drop for Cluster {
    /// A failed test shows what the processes said (their logs go with the temp dir).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== e2e failure: process logs ===\n{}", self.log_tails(40));
        }
    }
}

/// One line of an announcer's `ctl state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub address: String,
    pub mode: String,
    pub phase: String,
    pub since_unix_ms: u64,
}

/// The provider's flags for talking to announcers, with the TLS flags of `mode`.
fn provider_announcer_args(
    cluster_mode: bool,
    mode: AnnouncerTlsMode,
    tls: &ProviderTls,
) -> Vec<String> {
    if !cluster_mode {
        // Providers from before cluster mode have no such flag and never dial announcers.
        return if provider_knows_flag("--announcers") {
            vec!["--announcers=none".into()]
        } else {
            Vec::new()
        };
    }
    let mut args = vec![
        "--announcers=cluster".into(),
        format!(
            "--announcer-service={}/{}",
            kube::ANNOUNCER_NAMESPACE,
            kube::ANNOUNCER_SERVICE
        ),
    ];
    match mode {
        AnnouncerTlsMode::Files => args.extend([
            "--announcer-tls=files".into(),
            format!("--announcer-client-cert={}", tls.cert.display()),
            format!("--announcer-client-key={}", tls.key.display()),
            format!("--announcer-ca={}", tls.ca.display()),
        ]),
        AnnouncerTlsMode::Managed => args.push("--announcer-tls=managed".into()),
    }
    args
}

/// Whether `ferrolb-provider --help` lists `flag`.
fn provider_knows_flag(flag: &str) -> bool {
    let bin = workspace_binary("ferrolb-provider");
    std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
}

/// Sysctls and routes that make a node namespace behave like a node with kube-proxy
/// (IPVS mode): accept any pool address locally, answer ARP only for eth0's own address.
fn prepare_node(host: &Host) {
    host.sysctl(&[
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
    ]);
    for prefix in LOCAL_ROUTES_V4 {
        host.exec_ok(&[
            "ip", "route", "add", "local", prefix, "dev", "lo", "table", "local",
        ]);
    }
    host.exec_ok(&[
        "ip",
        "-6",
        "route",
        "add",
        "local",
        LOCAL_ROUTE_V6,
        "dev",
        "lo",
        "table",
        "local",
    ]);
}

/// `ferrolb-announcer ctl --server unix:<socket> <args>` → its JSON output.
pub fn ctl(socket: &Path, args: &[&str]) -> Result<Value, String> {
    let bin = workspace_binary("ferrolb-announcer");
    let server = format!("unix:{}", socket.display());
    let out = std::process::Command::new(&bin)
        .args(["ctl", "--server", &server])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "ctl {args:?} on {server} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ctl {args:?} printed no JSON: {e}"))
}

fn ctl_state(socket: &Path) -> Result<Value, String> {
    ctl(socket, &["state"])
}
