//! Command-line arguments of `ferrolb-announcer` (server) and `ferrolb-announcer ctl`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use ipnet::IpNet;

use crate::ctl::CtlArgs;

/// ferrolb-announcer: makes load-balancer addresses reachable (ARP, NDP, BGP), driven over gRPC.
#[derive(Debug, Parser)]
#[command(name = "ferrolb-announcer", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Operator client of a running announcer (state, announce, withdraw, sync, watch).
    Ctl(CtlArgs),
}

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket path (`unix:/run/ferrolb/announcer.sock`).
    Unix(PathBuf),
    /// A TCP address (`0.0.0.0:7473`, `[::1]:7473`).
    Tcp(SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{text:?}: the unix socket path is empty"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        text.parse().map(Listen::Tcp).map_err(|_| {
            format!("{text:?} is neither unix:<path> nor <ip>:<port> (IPv6 as [addr]:port)")
        })
    }
}

/// Parses `5`, `5s`, `500ms` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 1s, 500ms or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
}

/// Flags of the server (the default command).
#[derive(Debug, Clone, ClapArgs)]
pub struct ServerArgs {
    /// Where the gRPC API listens: `unix:<path>` or `<ip>:<port>`; repeat or comma-separate
    /// for several. Plain TCP is allowed only on loopback unless --insecure; with --tls-cert
    /// every TCP listener uses TLS with client-certificate authentication. In a cluster:
    /// `<node ip>:9720` (the recommended TCP port) with TLS.
    #[arg(
        long,
        env = "FERROLB_LISTEN",
        value_delimiter = ',',
        default_value = "unix:/run/ferrolb/announcer.sock"
    )]
    pub listen: Vec<Listen>,
    /// PEM certificate (chain) of the gRPC server; enables TLS on TCP listeners.
    #[arg(long, env = "FERROLB_TLS_CERT", requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the gRPC server certificate.
    #[arg(long, env = "FERROLB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to; clients without one are refused.
    #[arg(long, env = "FERROLB_CLIENT_CA", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// How often --tls-cert, --tls-key and --client-ca are re-read; changed files apply to
    /// new connections without a restart (a rotated Secret mount), established ones stay.
    #[arg(long, env = "FERROLB_TLS_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// Allow plaintext gRPC on non-loopback TCP addresses (anyone who can reach the port
    /// controls what this node announces; use only on trusted networks).
    #[arg(long, env = "FERROLB_INSECURE")]
    pub insecure: bool,
    /// Address of the HTTP server for /metrics and /healthz; empty disables it. 9721 (next to
    /// 9720, the recommended gRPC TCP port) stays clear of MetalLB's 7472/7473. A port that
    /// cannot be bound stops the process.
    #[arg(long, env = "FERROLB_METRICS_LISTEN", default_value = "0.0.0.0:9721")]
    pub metrics_listen: String,
    /// Prefixes never announced, comma-separated (e.g. the node and pod networks).
    #[arg(long, env = "FERROLB_DENY_PREFIXES", value_delimiter = ',')]
    pub deny_prefixes: Vec<IpNet>,
    /// When given, only addresses inside these prefixes are announced (comma-separated).
    #[arg(long, env = "FERROLB_ALLOW_PREFIXES", value_delimiter = ',')]
    pub allow_prefixes: Vec<IpNet>,
    /// How many times gratuitous ARP / unsolicited NA are sent on announce, link up and takeover.
    #[arg(long, env = "FERROLB_GARP_COUNT", default_value_t = 5)]
    pub garp_count: u32,
    /// Interval between gratuitous announcements (e.g. 1s, 500ms).
    #[arg(long, env = "FERROLB_GARP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub garp_interval: Duration,
    /// Valid and preferred lifetime of VIP-mode addresses; renewed every third of it.
    #[arg(long, env = "FERROLB_VIP_LIFETIME", default_value = "300s", value_parser = parse_duration)]
    pub vip_lifetime: Duration,
    /// How often interfaces are re-read to retry failed announcements. Links coming up are
    /// also noticed at once through kernel link notifications; this poll is the fallback.
    #[arg(long, env = "FERROLB_LINK_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub link_poll_interval: Duration,
    /// UDP port of failover heartbeats between the candidates of layer2/vip addresses (the
    /// same on every node); 0 turns failover among announcers off (each announcement is then
    /// put in force where it is sent).
    #[arg(long, env = "FERROLB_HEARTBEAT_PORT", default_value_t = 9722)]
    pub heartbeat_port: u16,
    /// Interval of failover heartbeats. A holder is replaced after interval × multiplier
    /// without one: shorter detects faster and costs more packets (one per peer per interval).
    #[arg(long, env = "FERROLB_HEARTBEAT_INTERVAL", default_value = "200ms", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// Heartbeats a holder may miss before the next candidate takes over.
    #[arg(long, env = "FERROLB_HEARTBEAT_MULTIPLIER", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=255))]
    pub heartbeat_multiplier: u32,
    /// A candidate earlier in the list takes the address back when it returns (off: the
    /// holder keeps it, since moving it breaks every open connection).
    #[arg(long, env = "FERROLB_FAILOVER_PREEMPT")]
    pub failover_preempt: bool,
    /// BGP speaker: standalone peers.
    #[command(flatten)]
    pub bgp: crate::bgp::args::BgpArgs,
    /// Log format: `text` or `json` (filter with RUST_LOG, default info).
    #[arg(long, env = "FERROLB_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}
