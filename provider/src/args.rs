//! Command-line arguments of `ferrolb-provider`.
//!
//! Every flag has an environment fallback so the Deployment can be configured either way.
//! The ConfigMap location also honours kube-vip-cloud-provider's own variables
//! (`KUBEVIP_NAMESPACE`, `KUBEVIP_CONFIG_MAP`) so an existing KVCP manifest keeps working.
//! Booleans, on the command line and in the environment, read like Go's `strconv.ParseBool`
//! ([`crate::strconv`]), as KVCP reads `KUBEVIP_ENABLE_LOADBALANCERCLASS`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// ferrolb-provider: allocates addresses to Services of type LoadBalancer from
/// kube-vip-cloud-provider compatible address pools.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferrolb-provider", version, about, long_about = None)]
pub struct Args {
    /// Namespace of the pool ConfigMap (and of the leader-election Lease).
    #[arg(long, env = "KUBEVIP_NAMESPACE", default_value = "kube-system")]
    pub config_namespace: String,

    /// Name of the pool ConfigMap.
    #[arg(long, env = "KUBEVIP_CONFIG_MAP", default_value = "kubevip")]
    pub config_name: String,

    /// Serve only Services with this spec.loadBalancerClass (default: only class-less Services).
    #[arg(long, env = "FERROLB_LOAD_BALANCER_CLASS")]
    pub load_balancer_class: Option<String>,

    /// kube-vip-cloud-provider's class mode: without --load-balancer-class, serve only
    /// Services of class --kube-vip-class-name (as KVCP does when this variable is true).
    #[arg(long, env = "KUBEVIP_ENABLE_LOADBALANCERCLASS", default_value_t = false, action = clap::ArgAction::Set, value_parser = crate::strconv::parse_flag)]
    pub kube_vip_class_mode: bool,

    /// The class served in kube-vip-cloud-provider's class mode.
    #[arg(
        long,
        env = "KUBEVIP_CUSTOM_LOADBALANCERCLASS_NAME",
        default_value = "kube-vip.io/kube-vip-class"
    )]
    pub kube_vip_class_name: String,

    /// With --load-balancer-class: also serve Services that have no class.
    #[arg(long, env = "FERROLB_ALSO_CLASSLESS", default_value_t = false, value_parser = crate::strconv::parse_flag)]
    pub also_classless: bool,

    /// Write the first address into spec.loadBalancerIP when the provider picks the
    /// addresses (of dual-stack Services too), as kube-vip-cloud-provider does; a value the
    /// user set is never overwritten.
    #[arg(long, env = "FERROLB_WRITE_LOAD_BALANCER_IP", default_value_t = true, action = clap::ArgAction::Set, value_parser = crate::strconv::parse_flag)]
    pub write_load_balancer_ip: bool,

    /// Who writes status.loadBalancer.ingress: `allocated` (this controller, as soon as an
    /// address is allocated) or `none` (left to an announcer such as kube-vip).
    #[arg(long, env = "FERROLB_STATUS", value_enum, default_value_t = StatusMode::Allocated)]
    pub status: StatusMode,

    /// How requested addresses (`kube-vip.io/loadbalancerIPs`, `spec.loadBalancerIP`) of new
    /// or changed Services are treated: `validate` (they must parse, lie in the namespace's
    /// pool, fit the Service's families and be free or shareable) or `unchecked` (taken as
    /// written, as kube-vip-cloud-provider does, also outside every pool and also when
    /// another Service holds them).
    #[arg(long, env = "FERROLB_REQUESTED_ADDRESSES", value_enum, default_value_t = RequestedAddresses::Validate)]
    pub requested_addresses: RequestedAddresses,

    /// Which pool objects to read, comma-separated: `lbpool` (FerroLB's `LoadBalancerPool`),
    /// `eip` (OpenELB's `Eip`), `cilium` (Cilium's `CiliumLoadBalancerIPPool`; never while
    /// Cilium's own LB-IPAM runs), or `none`. A kind whose CRD is not installed counts as no
    /// pools and is picked up once the CRD appears.
    #[arg(
        long,
        env = "FERROLB_POOL_OBJECTS",
        value_delimiter = ',',
        default_value = "lbpool,eip",
        value_parser = parse_pool_kind
    )]
    pub pool_objects: Vec<Option<crate::pools::objects::PoolKind>>,

    /// Move Services whose address no longer lies in any pool (after a ConfigMap change) to a
    /// new address instead of keeping it and reporting it.
    #[arg(
        long,
        env = "FERROLB_REALLOCATE_OUTSIDE_POOLS",
        default_value_t = false,
        value_parser = crate::strconv::parse_flag
    )]
    pub reallocate_outside_pools: bool,

    /// Elect a single writer with the coordination.k8s.io/v1 Lease `ferrolb-provider`.
    #[arg(long, env = "FERROLB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, value_parser = crate::strconv::parse_flag)]
    pub leader_elect: bool,

    /// Lease duration: how long a lease stays valid after its last renewal.
    #[arg(long, env = "FERROLB_LEASE_DURATION", value_parser = parse_duration, default_value = "15s")]
    pub lease_duration: Duration,

    /// Renew deadline: a holder that has not renewed for this long stops writing (must be
    /// shorter than the lease duration).
    #[arg(long, env = "FERROLB_RENEW_DEADLINE", value_parser = parse_duration, default_value = "10s")]
    pub renew_deadline: Duration,

    /// Retry period: how often the Lease is renewed, or tried while another replica holds it.
    #[arg(long, env = "FERROLB_RETRY_PERIOD", value_parser = parse_duration, default_value = "2s")]
    pub retry_period: Duration,

    /// Identity written into the Lease (default: $POD_NAME, else the host name plus process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Remove the `node.cloudprovider.kubernetes.io/uninitialized` taint from Nodes that carry
    /// it and set their empty spec.providerID to `ferrolb://<node-name>` (for kubelet
    /// --cloud-provider=external); Nodes without the taint are never touched.
    #[arg(long, env = "FERROLB_INITIALIZE_NODES", default_value_t = true, action = clap::ArgAction::Set, value_parser = crate::strconv::parse_flag)]
    pub initialize_nodes: bool,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "FERROLB_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log format: `text` or `json`. The level comes from RUST_LOG (default `info`).
    #[arg(long, env = "FERROLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Path of a kubeconfig file; without it the in-cluster configuration (or $KUBECONFIG) is used.
    #[arg(long, env = "FERROLB_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Number of Service writes in flight at once (Events: an eighth of it, at least 1).
    #[arg(long, env = "FERROLB_WRITE_CONCURRENCY", default_value_t = 64)]
    pub write_concurrency: usize,

    /// Runtime worker threads. The controller's work is one index task plus network I/O; a
    /// thread per node CPU would only add allocator arenas (resident memory) on large nodes.
    #[arg(long, env = "FERROLB_WORKER_THREADS", default_value_t = 2)]
    pub worker_threads: usize,

    /// Who makes addresses reachable: `cluster` (the leader drives ferrolb-announcer on every
    /// node; ingress is written once an address is really announced) or `none` (another
    /// announcer such as kube-vip reads `kube-vip.io/loadbalancerIPs`; ingress as soon as
    /// allocated).
    #[arg(long, env = "FERROLB_ANNOUNCERS", value_enum, default_value_t = AnnouncersMode::Cluster)]
    pub announcers: AnnouncersMode,

    /// The headless Service, `namespace/name`, whose EndpointSlices list the announcers
    /// (cluster mode): one endpoint per node, the node's address, the port named `grpc`.
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_SERVICE",
        default_value = "kube-system/ferrolb-announcer"
    )]
    pub announcer_service: String,

    /// The mode of Services that name none with `ferrolb.io/mode` or OpenELB's
    /// `protocol.openelb.kubesphere.io/v1alpha1`: `layer2`, `vip` or `bgp`.
    #[arg(long, env = "FERROLB_DEFAULT_MODE", default_value = "layer2", value_parser = parse_mode)]
    pub default_mode: crate::announce::Mode,

    /// How many nodes each layer2/vip announcement names as ordered failover candidates
    /// (the owner first).
    #[arg(long, env = "FERROLB_FAILOVER_CANDIDATES", default_value_t = 3)]
    pub failover_candidates: usize,

    /// The Secret in --config-namespace holding the heartbeat key (data key `key`, 32 random
    /// bytes) that layer2/vip failover candidates authenticate each other with; created when
    /// missing. While it cannot be read, addresses go to their first candidate only.
    #[arg(
        long,
        env = "FERROLB_HEARTBEAT_SECRET",
        default_value = "ferrolb-heartbeat"
    )]
    pub heartbeat_secret: String,

    /// TLS to the announcers (cluster mode).
    #[command(flatten)]
    pub tls: crate::certs::TlsArgs,
}

fn parse_pool_kind(text: &str) -> Result<Option<crate::pools::objects::PoolKind>, String> {
    use crate::pools::objects::PoolKind;
    match text.trim() {
        "none" => Ok(None),
        "lbpool" => Ok(Some(PoolKind::LoadBalancerPool)),
        "eip" => Ok(Some(PoolKind::Eip)),
        "cilium" => Ok(Some(PoolKind::Cilium)),
        other => Err(format!("`{other}` is not lbpool, eip, cilium or none")),
    }
}

impl Args {
    /// The pool object kinds to watch (`--pool-objects`).
    pub fn pool_kinds(&self) -> Vec<crate::pools::objects::PoolKind> {
        let mut kinds: Vec<_> = self.pool_objects.iter().flatten().copied().collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// Who makes allocated addresses reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnnouncersMode {
    /// FerroLB's own announcers, driven by the leader.
    Cluster,
    /// Somebody else (kube-vip); today's kube-vip-cloud-provider behaviour.
    None,
}

fn parse_mode(text: &str) -> Result<crate::announce::Mode, String> {
    crate::announce::Mode::parse(text).ok_or_else(|| format!("`{text}` is not layer2, vip or bgp"))
}

/// Who writes `status.loadBalancer.ingress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusMode {
    /// This controller writes the allocated addresses with `ipMode: VIP`.
    Allocated,
    /// Never written (kube-vip writes it once it announces the address).
    None,
}

/// How requested addresses are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RequestedAddresses {
    /// Checked against the pool, the family policy and other Services; refusals reported.
    Validate,
    /// Taken as written, like kube-vip-cloud-provider (for static addresses outside pools).
    Unchecked,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses `15s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 15s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Args {
    /// Checks relations between flags that clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "--renew-deadline ({:?}) must be shorter than --lease-duration ({:?}) so a holder \
                 stops writing before its lease can expire",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Err(format!(
                "--retry-period ({:?}) must be shorter than --renew-deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        if self.also_classless && self.effective_class().is_none() {
            return Err("--also-classless needs --load-balancer-class".to_string());
        }
        if self.worker_threads == 0 {
            return Err("--worker-threads must be at least 1".to_string());
        }
        if self.announcers == AnnouncersMode::Cluster {
            self.announcer_service_key()?;
        }
        if self.failover_candidates == 0 {
            return Err("--failover-candidates must be at least 1".to_string());
        }
        if self.write_concurrency == 0 {
            return Err("--write-concurrency must be at least 1".to_string());
        }
        Ok(())
    }

    /// The class to serve: `--load-balancer-class`, else KVCP's class-mode name when
    /// `KUBEVIP_ENABLE_LOADBALANCERCLASS` is true, else none (class-less Services).
    pub fn effective_class(&self) -> Option<String> {
        self.load_balancer_class.clone().or_else(|| {
            self.kube_vip_class_mode
                .then(|| self.kube_vip_class_name.clone())
        })
    }

    /// `--announcer-service` as a Service key.
    pub fn announcer_service_key(&self) -> Result<crate::ipam::ServiceKey, String> {
        match self.announcer_service.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                Ok(crate::ipam::ServiceKey::new(namespace, name))
            }
            _ => Err(format!(
                "--announcer-service `{}` is not namespace/name",
                self.announcer_service
            )),
        }
    }

    /// The Lease holder identity.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ferrolb-provider".to_string());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kube_vip_cloud_provider() {
        let args = Args::try_parse_from(["ferrolb-provider"]).expect("defaults parse");
        assert_eq!(args.config_namespace, "kube-system");
        assert_eq!(args.config_name, "kubevip");
        assert!(args.write_load_balancer_ip);
        assert_eq!(args.status, StatusMode::Allocated);
        assert!(args.leader_elect);
        assert!(args.initialize_nodes);
        assert!(args.validate().is_ok());
    }

    #[test]
    fn boolean_flags_can_be_turned_off() {
        let args = Args::try_parse_from([
            "ferrolb-provider",
            "--write-load-balancer-ip=false",
            "--leader-elect=false",
            "--initialize-nodes=false",
            "--status=none",
        ])
        .expect("flags parse");
        assert!(!args.write_load_balancer_ip);
        assert!(!args.leader_elect);
        assert!(!args.initialize_nodes);
        assert_eq!(args.status, StatusMode::None);
    }

    #[test]
    fn booleans_read_like_go_strconv_parse_bool() {
        // KVCP parses KUBEVIP_ENABLE_LOADBALANCERCLASS with strconv.ParseBool; the flag and
        // its variable share this value parser.
        for (text, expected) in [("True", true), ("1", true), ("t", true), ("FALSE", false)] {
            let args = Args::try_parse_from([
                "ferrolb-provider",
                &format!("--kube-vip-class-mode={text}"),
                &format!("--leader-elect={text}"),
            ])
            .expect("Go booleans parse");
            assert_eq!(args.kube_vip_class_mode, expected, "{text}");
            assert_eq!(args.leader_elect, expected, "{text}");
        }
        let refused = Args::try_parse_from(["ferrolb-provider", "--kube-vip-class-mode=yes"])
            .expect_err("not a Go boolean");
        assert!(refused.to_string().contains("not a boolean"), "{refused}");
    }

    #[test]
    fn pool_objects_default_to_ours_and_openelbs_and_cilium_is_opt_in() {
        use crate::pools::objects::PoolKind;
        let args = Args::try_parse_from(["ferrolb-provider"]).expect("defaults parse");
        assert_eq!(
            args.pool_kinds(),
            [PoolKind::LoadBalancerPool, PoolKind::Eip]
        );
        let cilium = Args::try_parse_from(["ferrolb-provider", "--pool-objects=cilium,lbpool"])
            .expect("flags parse");
        assert_eq!(
            cilium.pool_kinds(),
            [PoolKind::LoadBalancerPool, PoolKind::Cilium]
        );
        let none =
            Args::try_parse_from(["ferrolb-provider", "--pool-objects=none"]).expect("flags parse");
        assert!(none.pool_kinds().is_empty());
        let error = Args::try_parse_from(["ferrolb-provider", "--pool-objects=metallb"])
            .expect_err("unknown kind");
        assert!(
            error
                .to_string()
                .contains("`metallb` is not lbpool, eip, cilium or none")
        );
    }

    #[test]
    fn requested_addresses_are_validated_unless_unchecked_is_asked_for() {
        let args = Args::try_parse_from(["ferrolb-provider"]).expect("defaults parse");
        assert_eq!(args.requested_addresses, RequestedAddresses::Validate);
        let kvcp = Args::try_parse_from(["ferrolb-provider", "--requested-addresses=unchecked"])
            .expect("flags parse");
        assert_eq!(kvcp.requested_addresses, RequestedAddresses::Unchecked);
    }

    #[test]
    fn durations_accept_units_and_reject_garbage() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("10h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn renew_deadline_must_be_shorter_than_lease() {
        let args = Args::try_parse_from([
            "ferrolb-provider",
            "--lease-duration=5s",
            "--renew-deadline=5s",
        ])
        .expect("flags parse");
        assert!(args.validate().unwrap_err().contains("--renew-deadline"));
    }

    #[test]
    fn kube_vip_class_mode_serves_its_class_unless_a_class_is_given() {
        let kvcp = Args::try_parse_from(["ferrolb-provider", "--kube-vip-class-mode=true"])
            .expect("flags parse");
        assert_eq!(
            kvcp.effective_class().as_deref(),
            Some("kube-vip.io/kube-vip-class")
        );
        let explicit = Args::try_parse_from([
            "ferrolb-provider",
            "--kube-vip-class-mode=true",
            "--load-balancer-class=x.io/lb",
        ])
        .expect("flags parse");
        assert_eq!(explicit.effective_class().as_deref(), Some("x.io/lb"));
    }

    #[test]
    fn also_classless_needs_a_class() {
        let args =
            Args::try_parse_from(["ferrolb-provider", "--also-classless"]).expect("flags parse");
        assert!(
            args.validate()
                .unwrap_err()
                .contains("--load-balancer-class")
        );
    }

    #[test]
    fn worker_threads_default_to_two_and_zero_is_refused() {
        let args = Args::try_parse_from(["ferrolb-provider"]).expect("defaults parse");
        assert_eq!(args.worker_threads, 2);
        let zero =
            Args::try_parse_from(["ferrolb-provider", "--worker-threads=0"]).expect("flags parse");
        assert!(zero.validate().unwrap_err().contains("--worker-threads"));
    }
}
