//! The demo's stand-ins for a Deployment's Pods and for kube-proxy.
//!
//! ```text
//!   client ──► LB address (ARP/NDP, vip or BGP: the announcers)
//!                │  on the node that receives it:
//!                ▼  nft DNAT (kube-proxy's part) ──► Pod = e2e-hello <pod-name> :8080
//!                     Cluster: any Pod, on any node (masqueraded when it leaves the node)
//!                     Local:   this node's Pods only; a node with none resets the connection
//! ```
//! A Pod is an `e2e-hello` process in its node's namespace, listening on the node address at
//! the container port, and an entry in the application's EndpointSlice with its `nodeName`
//! (the provider reads that for `externalTrafficPolicy: Local`). [`KubeProxy`] keeps one nft
//! table per node, rewritten whole from the Services it was told about.

use std::path::Path;

use serde_json::Value;

use crate::cluster::{Cluster, NODES};
use crate::daemon::Daemon;
use crate::kube::{self, endpoint_slice};
use crate::workspace_binary;

/// The port the Pods listen on (`containerPort: 8080` in the walkthroughs).
pub const POD_PORT: u16 = 8080;

/// One running Pod stand-in.
pub struct Pod {
    /// The name it answers with (`You've hit <name>`).
    pub name: String,
    pub node: String,
    /// The node's address: the demo's Pods use the node network.
    pub ip: String,
    pub daemon: Daemon,
}

/// A Deployment's Pods, one per node listed.
pub struct Deployment {
    pub app: String,
    pub namespace: String,
    pub pods: Vec<Pod>,
}

impl Deployment {
    /// Starts one Pod of `app` on each of `nodes` and writes the Service's EndpointSlice
    /// (as the EndpointSlice controller would for Service `namespace/app_service`).
    pub fn start(cluster: &Cluster, namespace: &str, app: &str, nodes: &[&str]) -> Deployment {
        let hello = workspace_binary("e2e-hello");
        let pods = nodes
            .iter()
            .map(|node| {
                let host = cluster.host(node).clone();
                let name = format!("{app}-{node}");
                let daemon = Daemon::spawn(
                    &format!("pod-{name}"),
                    &host.ns,
                    &[&hello.to_string_lossy(), &name, &POD_PORT.to_string()],
                    &[],
                    cluster.dir.path(),
                );
                Pod {
                    name,
                    node: node.to_string(),
                    ip: host.ipv4.clone(),
                    daemon,
                }
            })
            .collect();
        Deployment {
            app: app.to_string(),
            namespace: namespace.to_string(),
            pods,
        }
    }

    /// The EndpointSlice of Service `namespace/service` selecting these Pods.
    pub fn publish_endpoints(&self, cluster: &Cluster, service: &str) {
        let endpoints: Vec<kube::Endpoint<'_>> = self
            .pods
            .iter()
            .map(|p| (p.node.as_str(), p.ip.as_str(), true))
            .collect();
        cluster.kubectl.apply(&endpoint_slice(
            &self.namespace,
            service,
            "IPv4",
            "http",
            POD_PORT,
            &endpoints,
        ));
    }

    /// Where each Pod runs: a small table (NAME NODE IP), indented.
    pub fn placement(&self) -> String {
        let mut text = format!("  {:<28} {:<8} {}\n", "NAME", "NODE", "IP");
        for pod in &self.pods {
            text.push_str(&format!("  {:<28} {:<8} {}\n", pod.name, pod.node, pod.ip));
        }
        text
    }
}

/// A Service as kube-proxy programs it.
#[derive(Debug, Clone)]
pub struct ProxiedService {
    /// The load-balancer address.
    pub ip: String,
    pub port: u16,
    /// `(node, pod address)` of every ready endpoint; all listen on [`POD_PORT`].
    pub endpoints: Vec<(String, String)>,
    /// `externalTrafficPolicy: Local`.
    pub local_only: bool,
}

impl ProxiedService {
    /// Reads what kube-proxy reads: the Service's ingress address, port and traffic policy.
    pub fn from_service(
        service: &Value,
        deployment: &Deployment,
    ) -> Result<ProxiedService, String> {
        let ip = kube::ingress_ips(service)
            .into_iter()
            .next()
            .ok_or_else(|| format!("Service has no ingress yet: {}", service["status"]))?;
        let port = service["spec"]["ports"][0]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("Service has no port: {}", service["spec"]))?;
        Ok(ProxiedService {
            ip,
            port,
            endpoints: deployment
                .pods
                .iter()
                .map(|p| (p.node.clone(), p.ip.clone()))
                .collect(),
            local_only: service["spec"]["externalTrafficPolicy"] == "Local",
        })
    }
}

/// kube-proxy on every node: nft DNAT from load-balancer addresses to Pods.
#[derive(Default)]
pub struct KubeProxy {
    services: Vec<ProxiedService>,
}

/// The nft table the stand-in owns in each node namespace.
const TABLE: &str = "ferrolb_demo_kube_proxy";

impl KubeProxy {
    /// Adds or replaces the Service at `service.ip:service.port` and reprograms every node.
    /// Like kube-proxy in IPVS mode (which puts load-balancer addresses on its dummy
    /// `kube-ipvs0`), each node also takes the address as local, so it answers ping.
    pub fn set(&mut self, cluster: &Cluster, service: ProxiedService) {
        let local = format!("{}/32", service.ip);
        for node in NODES {
            cluster.host(node).exec_ok(&[
                "ip", "route", "replace", "local", &local, "dev", "lo", "table", "local",
            ]);
        }
        self.services
            .retain(|s| (s.ip.as_str(), s.port) != (service.ip.as_str(), service.port));
        self.services.push(service);
        self.sync(cluster);
    }

    /// Forgets the Service at `ip` and reprograms every node.
    pub fn remove(&mut self, cluster: &Cluster, ip: &str) {
        self.services.retain(|s| s.ip != ip);
        let local = format!("{ip}/32");
        for node in NODES {
            let _ = cluster.host(node).exec(&[
                "ip", "route", "del", "local", &local, "dev", "lo", "table", "local",
            ]);
        }
        self.sync(cluster);
    }

    fn sync(&self, cluster: &Cluster) {
        for node in NODES {
            let rules = self.ruleset(node);
            let host = cluster.host(node);
            let script = cluster.dir.path().join(format!("kube-proxy-{node}.nft"));
            write_file(&script, &rules);
            host.exec_ok(&["nft", "-f", &script.to_string_lossy()]);
        }
    }

    /// The whole table for `node` (deleted and made again in one transaction).
    pub fn ruleset(&self, node: &str) -> String {
        let mut dnat = String::new();
        let mut reject = String::new();
        for service in &self.services {
            let targets: Vec<&str> = service
                .endpoints
                .iter()
                .filter(|(on, _)| !service.local_only || on == node)
                .map(|(_, ip)| ip.as_str())
                .collect();
            let matcher = format!("ip daddr {} tcp dport {}", service.ip, service.port);
            if targets.is_empty() {
                reject.push_str(&format!("    {matcher} reject with tcp reset\n"));
                continue;
            }
            let map: Vec<String> = targets
                .iter()
                .enumerate()
                .map(|(i, ip)| format!("{i} : {ip}"))
                .collect();
            dnat.push_str(&format!(
                "    {matcher} dnat to numgen inc mod {} map {{ {} }} : {POD_PORT}\n",
                targets.len(),
                map.join(", ")
            ));
        }
        format!(
            "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n\
             \x20 chain services {{ type nat hook prerouting priority dstnat; policy accept;\n{dnat}  }}\n\
             \x20 chain no_endpoints {{ type filter hook prerouting priority -200; policy accept;\n{reject}  }}\n\
             \x20 chain source_nat {{ type nat hook postrouting priority srcnat; policy accept;\n\
             \x20   ct status dnat oifname \"eth0\" masquerade\n  }}\n}}\n"
        )
    }
}

fn write_file(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}
