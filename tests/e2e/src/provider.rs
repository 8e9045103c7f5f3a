//! Provider replicas in the control-plane namespace: started with the flags of a test
//! (cluster mode or allocation only, leader election with short leases, TLS files or
//! managed), awaited until they answer `/healthz`, stopped by PID (SIGTERM, or SIGKILL for a
//! crash).

use std::time::Duration;

use super::certs::{AnnouncerTlsMode, ProviderTls};
use super::client::http_get;
use super::cluster::{Cluster, NODES};
use super::daemon::Daemon;
use super::kube;
use super::{wait_for, workspace_binary};

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
    /// More flags, e.g. `--pool-objects=lbpool,eip,cilium` for the demo's walkthroughs.
    pub extra_args: Vec<String>,
}
/// A running provider replica.
pub struct ProviderReplica {
    pub daemon: Daemon,
    pub identity: String,
    pub metrics_port: u16,
}

impl Cluster {
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
        args.extend(options.extra_args.iter().cloned());
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
        self.providers.push(ProviderReplica {
            daemon,
            identity: options.identity.clone(),
            metrics_port: options.metrics_port,
        });
    }

    /// Waits until a provider replica (the leader) holds a working connection to every
    /// announcer (`ferrolb_announcers_connected` = 3), so scenarios start from a settled
    /// placement rather than one made while some announcers were still starting.
    pub fn wait_announcers_connected(&self) {
        let cp = self.topology.host("cp").clone();
        let want = format!("ferrolb_announcers_connected {}", NODES.len());
        wait_for(
            &format!("a provider replica reporting `{want}`"),
            Duration::from_secs(30),
            || {
                let mut seen = Vec::new();
                for replica in &self.providers {
                    let metrics = http_get(&cp, "127.0.0.1", replica.metrics_port, "/metrics")?;
                    if metrics.lines().any(|l| l.trim() == want) {
                        return Ok(());
                    }
                    let line = metrics
                        .lines()
                        .find(|l| l.starts_with("ferrolb_announcers_connected"))
                        .unwrap_or("no ferrolb_announcers_connected series");
                    seen.push(format!("{}: {line}", replica.identity));
                }
                Err(seen.join("; "))
            },
        );
    }

    /// Stops the provider replica called `identity` — SIGTERM, or SIGKILL when `crash` —
    /// and forgets it.
    pub fn stop_provider(&mut self, identity: &str, crash: bool) {
        let name = format!("provider-{identity}");
        let at = self
            .providers
            .iter()
            .position(|p| p.daemon.name == name)
            .unwrap_or_else(|| panic!("no provider replica {identity} is running"));
        let mut replica = self.providers.remove(at);
        if crash {
            replica.daemon.kill();
        } else {
            replica.daemon.stop();
        }
    }
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
