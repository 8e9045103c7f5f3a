//! The whole cluster wired together: topology, API server, Nodes and the announcer
//! EndpointSlice, BIRD, three announcers each with a stand-in Pod, and provider replicas.
//!
//! Each node behaves like a node with kube-proxy in IPVS mode: it accepts traffic for any
//! load-balancer address (`local` routes for the pools on `lo`) but does not answer ARP for
//! them (`arp_ignore=1`, `arp_announce=2`), so only the announcer decides which node a
//! client reaches. The client keeps the kernel's default sysctls.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::announcers::NodeAnnouncer;
use super::bird::Bird;
use super::certs::{
    AnnouncerTls, AnnouncerTlsMode, ProviderTls, write_announcer_tls_from_secret, write_pki,
};
use super::daemon::Daemon;
use super::kube::{self, Kubectl};
use super::provider::{ProviderOptions, ProviderReplica};
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

/// Where the announcers' TLS material comes from by default: the provider
/// (`--announcer-tls=managed`, the default install) or our own CA (`--announcer-tls=files`).
pub const ANNOUNCER_TLS: AnnouncerTlsMode = AnnouncerTlsMode::Managed;

/// What to build: the TLS mode, the provider replicas, and where things are named and kept.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where the announcers' TLS material comes from.
    pub tls: AnnouncerTlsMode,
    /// The provider replicas, started in this order.
    pub providers: Vec<ProviderOptions>,
    /// Namespace names `<prefix>br`, `<prefix>node1`, ...; None: unique per test process.
    pub namespace_prefix: Option<String>,
    /// A file each namespace name is appended to before it is created ([`Topology::named`]).
    pub namespace_record: Option<PathBuf>,
    /// Where the run's directory (logs, kubeconfig, sockets) is made; None: the system's
    /// temporary directory.
    pub dir_in: Option<PathBuf>,
    /// The keys of the pool ConfigMap `kube-system/kubevip`.
    pub pools: Vec<(String, String)>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            tls: ANNOUNCER_TLS,
            providers: Vec::new(),
            namespace_prefix: None,
            namespace_record: None,
            dir_in: None,
            pools: vec![
                ("range-global".into(), POOL_GLOBAL.into()),
                ("range-bgp".into(), POOL_BGP.into()),
            ],
        }
    }
}

pub struct Cluster {
    // Processes first: fields drop in declaration order, so everything is stopped before
    // the namespaces go.
    pub providers: Vec<ProviderReplica>,
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
    pub(super) tls_mode: AnnouncerTlsMode,
    /// Log files of every provider replica ever started.
    pub(super) provider_logs: Vec<PathBuf>,
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
        Cluster::start_with(&Setup {
            tls,
            providers: providers.to_vec(),
            ..Setup::default()
        })
    }

    /// Builds the cluster `setup` describes.
    pub fn start_with(setup: &Setup) -> Cluster {
        let (tls, providers) = (setup.tls, setup.providers.as_slice());
        // Every binary first, so a missing one fails before anything is set up.
        for binary in [
            "test-apiserver",
            "ferrolb-provider",
            "ferrolb-announcer",
            "e2e-hello",
        ] {
            workspace_binary(binary);
        }
        let steps = Steps::new();
        let mut builder = tempfile::Builder::new();
        let prefix = format!("ferrolb-e2e-{}-", std::process::id());
        builder.prefix(&prefix);
        let dir = match &setup.dir_in {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .expect("temp dir");
        let mut machines: Vec<(&str, u8)> = vec![("cp", 250)];
        machines.extend(NODES.iter().enumerate().map(|(i, n)| (*n, i as u8 + 1)));
        machines.extend([("client", 200), ("router", 254)]);
        let topology = match &setup.namespace_prefix {
            Some(prefix) => Topology::named(prefix, setup.namespace_record.as_deref(), &machines),
            None => Topology::new(&machines),
        };
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
        let pools: Vec<(&str, &str)> = setup
            .pools
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        cluster.kubectl.apply(&kube::pool_configmap(&pools));
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
        if providers.iter().any(|p| p.cluster_mode) {
            cluster.wait_announcers_connected();
            cluster
                .steps
                .log("provider replicas answer /healthz; the leader is connected to node-1..3");
        } else if !providers.is_empty() {
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

/// Sysctls and routes that make a node namespace behave like a node with kube-proxy
/// (IPVS mode): accept any pool address locally, answer ARP only for eth0's own address, and
/// forward (kube-proxy's DNAT to a Pod on another node needs it, as on every Kubernetes
/// node). A new namespace otherwise takes the host's `ip_forward`
/// (`net.core.devconf_inherit_init_net=0`), which differs between machines: Docker sets it.
fn prepare_node(host: &Host) {
    host.sysctl(&[
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
        "net.ipv4.ip_forward=1",
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
