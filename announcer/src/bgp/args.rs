//! BGP flags of the announcer and the peer description shared by `--bgp-config` files and
//! `ctl peers add`: every field of the gRPC `Peer` as a flag (kebab-case) or JSON key
//! (snake_case).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use proto::announcer::v1 as pb;
use serde::Deserialize;

use super::config::{ConfigError, PeerConfig};
use super::restart::RestartOptions;

/// Server flags for standalone BGP peers (without a gRPC client configuring them).
#[derive(Debug, Clone, Default, Args)]
pub struct BgpArgs {
    /// Enable BGP mode: run the BGP speaker so mode-bgp announcements and the peer RPCs
    /// work. Implied by --bgp-config and --bgp-peer.
    #[arg(long, env = "FERROLB_BGP")]
    pub bgp: bool,
    /// JSON file of BGP peers to configure at start, `{"peers": [{"address": "192.0.2.2",
    /// "peer_asn": 64512, "local_asn": 64513, ...}]}` with the fields of `ctl peers add`.
    #[arg(long, env = "FERROLB_BGP_CONFIG")]
    pub bgp_config: Option<PathBuf>,
    /// BGP peer as ADDRESS:ASN (repeatable, comma-separated), e.g. `192.0.2.2:64512`;
    /// needs --bgp-local-asn. Other settings take their defaults (port 179, hold 90 s).
    #[arg(long, env = "FERROLB_BGP_PEERS", value_delimiter = ',')]
    pub bgp_peer: Vec<String>,
    /// Our AS number for the --bgp-peer peers, and for managed peers (BGPPeer objects, SyncPeers)
    /// that give none.
    #[arg(long, env = "FERROLB_BGP_LOCAL_ASN")]
    pub bgp_local_asn: Option<u32>,
    /// Our BGP identifier for the --bgp-peer peers (default: the session's IPv4 address).
    #[arg(long, env = "FERROLB_BGP_ROUTER_ID")]
    pub bgp_router_id: Option<String>,
    /// File marking that routes were advertised with graceful restart; present at start (the
    /// previous run did not stop cleanly) it makes this run a graceful restart (RFC 4724):
    /// Restart State bit set, End-of-RIB held until the first Sync. Removed on a clean stop.
    /// Empty: never a restart.
    #[arg(
        long,
        env = "FERROLB_BGP_RESTART_MARKER",
        default_value = "/run/ferrolb/bgp-advertised"
    )]
    pub bgp_restart_marker: String,
    /// After a graceful restart, the longest End-of-RIB waits for the first Sync (e.g. 60s,
    /// 500ms); keep it below the peers' restart and stale-path times.
    #[arg(long, env = "FERROLB_BGP_EOR_DEFERRAL", default_value = "60s", value_parser = crate::args::parse_duration)]
    pub bgp_eor_deferral: Duration,
}

/// One peer, as flags of `ctl peers add` or an entry of a `--bgp-config` file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerSpec {
    /// The peer's IP address (its key).
    #[arg(long)]
    pub address: String,
    /// The peer's AS number.
    #[arg(long)]
    pub peer_asn: u32,
    /// Our AS number (equal to --peer-asn: iBGP).
    #[arg(long)]
    pub local_asn: u32,
    /// TCP port of the peer (default 179).
    #[arg(long)]
    pub port: Option<u32>,
    /// Our BGP identifier, an IPv4 address (default: the session's IPv4 source address).
    #[arg(long)]
    pub router_id: Option<String>,
    /// Source address of the TCP connection (default: chosen by the kernel).
    #[arg(long)]
    pub source_address: Option<String>,
    /// Hold time offered, seconds: 0 or >= 3 (default 90).
    #[arg(long)]
    pub hold_time_seconds: Option<u32>,
    /// Keepalive interval, seconds (default: a third of the hold time).
    #[arg(long)]
    pub keepalive_seconds: Option<u32>,
    /// ConnectRetry time, seconds (default 5).
    #[arg(long)]
    pub connect_retry_seconds: Option<u32>,
    /// Wait for the peer to connect instead of connecting.
    #[arg(long)]
    pub passive: bool,
    /// IP TTL for multihop eBGP; 0 = directly connected (TTL 1 for eBGP, 64 for iBGP).
    #[arg(long)]
    pub ebgp_multihop_ttl: Option<u32>,
    /// File holding the TCP MD5 password (RFC 2385).
    #[arg(long)]
    pub password_file: Option<String>,
    /// Next hop of IPv4 routes (default: the session's IPv4 source address).
    #[arg(long)]
    pub ipv4_next_hop: Option<String>,
    /// Global next hop of IPv6 routes (default: the global IPv6 address of the session's
    /// interface).
    #[arg(long)]
    pub ipv6_next_hop: Option<String>,
    /// Standard community ASN:VALUE sent with every route (repeatable).
    #[arg(long = "community")]
    pub communities: Vec<String>,
    /// Large community GLOBAL:LOCAL1:LOCAL2 sent with every route (repeatable).
    #[arg(long = "large-community")]
    pub large_communities: Vec<String>,
    /// LOCAL_PREF sent to an iBGP peer (default 100).
    #[arg(long)]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC sent with every route.
    #[arg(long)]
    pub med: Option<u32>,
    /// Advertise graceful restart (RFC 4724) so the peer keeps our routes while we restart.
    #[arg(long)]
    pub graceful_restart: bool,
    /// Restart time advertised with graceful restart, seconds (default 120, at most 4095).
    #[arg(long)]
    pub graceful_restart_seconds: Option<u32>,
    /// Address family offered: ipv4-unicast or ipv6-unicast (repeatable; default both).
    #[arg(long = "family")]
    pub families: Vec<String>,
    /// Run BFD (RFC 5880) with the peer: when BFD goes Down, so does the BGP session.
    #[arg(long)]
    pub bfd: bool,
    /// BFD Desired Min TX Interval, milliseconds (default 300).
    #[arg(long)]
    pub bfd_min_tx_ms: Option<u32>,
    /// BFD Required Min RX Interval, milliseconds (default 300).
    #[arg(long)]
    pub bfd_min_rx_ms: Option<u32>,
    /// BFD detect multiplier (default 3).
    #[arg(long)]
    pub bfd_multiplier: Option<u32>,
    /// Multihop BFD (RFC 5883, UDP 4784) instead of single hop (UDP 3784, TTL 255).
    #[arg(long)]
    pub bfd_multihop: bool,
    /// BFD authentication: none, simple, keyed-sha1 or meticulous-keyed-sha1 (default none).
    #[arg(long)]
    pub bfd_auth_type: Option<String>,
    /// BFD authentication key ID (default 0).
    #[arg(long)]
    pub bfd_key_id: Option<u32>,
    /// File holding the BFD authentication key.
    #[arg(long)]
    pub bfd_key_file: Option<String>,
}

impl PeerSpec {
    /// The gRPC `Peer`.
    pub fn to_proto(&self) -> pb::Peer {
        pb::Peer {
            address: self.address.clone(),
            port: self.port.unwrap_or(0),
            peer_asn: self.peer_asn,
            local_asn: self.local_asn,
            router_id: self.router_id.clone().unwrap_or_default(),
            source_address: self.source_address.clone().unwrap_or_default(),
            hold_time_seconds: self.hold_time_seconds,
            keepalive_seconds: self.keepalive_seconds,
            connect_retry_seconds: self.connect_retry_seconds,
            passive: self.passive,
            ebgp_multihop_ttl: self.ebgp_multihop_ttl.unwrap_or(0),
            password_file: self.password_file.clone().unwrap_or_default(),
            ipv4_next_hop: self.ipv4_next_hop.clone().unwrap_or_default(),
            ipv6_next_hop: self.ipv6_next_hop.clone().unwrap_or_default(),
            attributes: Some(pb::BgpAttributes {
                communities: self.communities.clone(),
                large_communities: self.large_communities.clone(),
                local_pref: self.local_pref,
                med: self.med,
            }),
            graceful_restart: self.graceful_restart,
            graceful_restart_seconds: self.graceful_restart_seconds,
            families: self.families.clone(),
            password: Vec::new(),
            password_set: false,
            bfd: Some(pb::Bfd {
                enabled: self.bfd,
                min_tx_ms: self.bfd_min_tx_ms,
                min_rx_ms: self.bfd_min_rx_ms,
                detect_multiplier: self.bfd_multiplier,
                multihop: self.bfd_multihop,
                auth_type: self.bfd_auth_type.clone().unwrap_or_default(),
                key_id: self.bfd_key_id.unwrap_or(0),
                key_file: self.bfd_key_file.clone().unwrap_or_default(),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    peers: Vec<PeerSpec>,
}

impl BgpArgs {
    /// Whether the speaker runs.
    pub fn enabled(&self) -> bool {
        self.bgp || self.bgp_config.is_some() || !self.bgp_peer.is_empty()
    }

    /// Graceful restart settings of the speaker.
    pub fn restart_options(&self) -> RestartOptions {
        RestartOptions {
            marker: (!self.bgp_restart_marker.is_empty())
                .then(|| PathBuf::from(&self.bgp_restart_marker)),
            eor_deferral: self.bgp_eor_deferral,
        }
    }
}

/// Validates the standalone peers of `--bgp-config` and `--bgp-peer`; errors name the file,
/// the entry and the field.
pub fn standalone_peers(args: &BgpArgs) -> Result<Vec<PeerConfig>, ConfigError> {
    let mut peers = Vec::new();
    if let Some(path) = &args.bgp_config {
        let shown = path.display();
        let text =
            std::fs::read(path).map_err(|e| ConfigError(format!("--bgp-config {shown}: {e}")))?;
        let file: ConfigFile = serde_json::from_slice(&text)
            .map_err(|e| ConfigError(format!("--bgp-config {shown}: {e}")))?;
        for (i, spec) in file.peers.iter().enumerate() {
            let peer = PeerConfig::from_proto(&spec.to_proto())
                .map_err(|e| ConfigError(format!("--bgp-config {shown} peers[{i}]: {e}")))?;
            peers.push(peer);
        }
    }
    for text in &args.bgp_peer {
        let (address, asn) = text
            .rsplit_once(':')
            .filter(|(address, _)| address.parse::<IpAddr>().is_ok())
            .ok_or_else(|| {
                ConfigError(format!(
                    "--bgp-peer {text:?}: expected ADDRESS:ASN, e.g. 192.0.2.2:64512"
                ))
            })?;
        let peer_asn: u32 = asn.parse().map_err(|_| {
            ConfigError(format!("--bgp-peer {text:?}: {asn:?} is not an AS number"))
        })?;
        let local_asn = args
            .bgp_local_asn
            .ok_or_else(|| ConfigError(format!("--bgp-peer {text:?} needs --bgp-local-asn")))?;
        let spec = PeerSpec {
            address: address.to_string(),
            peer_asn,
            local_asn,
            router_id: args.bgp_router_id.clone(),
            ..PeerSpec::default()
        };
        peers.push(
            PeerConfig::from_proto(&spec.to_proto())
                .map_err(|e| ConfigError(format!("--bgp-peer {text:?}: {e}")))?,
        );
    }
    Ok(peers)
}
