//! Peer configuration and its validation from the gRPC `Peer` message (route attributes,
//! shared with announcements, are parsed in `attributes.rs`). Every error names the field and the value, e.g.
//! `peer.hold_time_seconds: 2 must be 0 or 3..=65535`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use proto::announcer::v1 as pb;

use super::codec::Family;

pub use super::attributes::{RouteAttributes, parse_community, parse_large_community};

/// A configuration error, naming the field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// One BGP peer, validated. Its `Debug` form never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    pub peer_asn: u32,
    pub local_asn: u32,
    /// Our BGP identifier; `None` = the session's IPv4 source address.
    pub router_id: Option<Ipv4Addr>,
    pub source_address: Option<IpAddr>,
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: Duration,
    pub passive: bool,
    /// 0: directly connected (TTL 1 for eBGP, 64 for iBGP); else the IP TTL to use.
    pub ebgp_multihop_ttl: u8,
    pub password_file: Option<PathBuf>,
    /// The password: read from `password_file` when the peer was added, or given in the
    /// request (`Peer.password`, SyncPeers with the provider's Secret).
    pub password: Option<Vec<u8>>,
    /// Address families offered in OPEN (RFC 4760); both unicast families by default.
    pub families: Vec<Family>,
    pub ipv4_next_hop: Option<Ipv4Addr>,
    pub ipv6_next_hop: Option<Ipv6Addr>,
    pub attributes: RouteAttributes,
    /// Restart time advertised with graceful restart (RFC 4724), if enabled.
    pub graceful_restart: Option<u16>,
    /// BFD for this peer (RFC 5880): its Down brings the BGP session down.
    pub bfd: Option<crate::bfd::BfdConfig>,
}

impl PeerConfig {
    /// A peer with defaults: port 179, hold 90 s, connect-retry 5 s, active, no MD5.
    pub fn new(address: IpAddr, local_asn: u32, peer_asn: u32) -> Self {
        PeerConfig {
            address,
            port: 179,
            peer_asn,
            local_asn,
            router_id: None,
            source_address: None,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            passive: false,
            ebgp_multihop_ttl: 0,
            password_file: None,
            password: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            ipv4_next_hop: None,
            ipv6_next_hop: None,
            attributes: RouteAttributes::default(),
            graceful_restart: None,
            bfd: None,
        }
    }

    pub fn is_ebgp(&self) -> bool {
        self.local_asn != self.peer_asn
    }

    /// The IP TTL of the session (RFC 4271 leaves it to the implementation; directly
    /// connected eBGP uses 1 as every router does).
    pub fn ttl(&self) -> u32 {
        match (self.ebgp_multihop_ttl, self.is_ebgp()) {
            (0, true) => 1,
            (0, false) => 64,
            (ttl, _) => u32::from(ttl),
        }
    }

    /// Validates a gRPC `Peer`; reads the password file.
    pub fn from_proto(peer: &pb::Peer) -> Result<Self, ConfigError> {
        let err = |field: &str, why: String| ConfigError(format!("peer.{field}: {why}"));
        let address: IpAddr = peer.address.parse().map_err(|_| {
            err(
                "address",
                format!("{:?} is not an IP address", peer.address),
            )
        })?;
        if peer.peer_asn == 0 {
            return Err(err("peer_asn", "0 is not a valid AS number".into()));
        }
        if peer.local_asn == 0 {
            return Err(err("local_asn", "0 is not a valid AS number".into()));
        }
        let mut config = PeerConfig::new(address, peer.local_asn, peer.peer_asn);
        if peer.port != 0 {
            config.port = u16::try_from(peer.port)
                .map_err(|_| err("port", format!("{} is not a TCP port", peer.port)))?;
        }
        let optional_addr = |field: &str, text: &str| -> Result<Option<IpAddr>, ConfigError> {
            if text.is_empty() {
                return Ok(None);
            }
            text.parse()
                .map(Some)
                .map_err(|_| err(field, format!("{text:?} is not an IP address")))
        };
        config.router_id = match optional_addr("router_id", &peer.router_id)? {
            None => None,
            Some(IpAddr::V4(id)) if !id.is_unspecified() => Some(id),
            Some(other) => {
                return Err(err(
                    "router_id",
                    format!("{other} is not a non-zero IPv4 address"),
                ));
            }
        };
        config.source_address = optional_addr("source_address", &peer.source_address)?;
        if let Some(source) = config.source_address
            && source.is_ipv4() != address.is_ipv4()
        {
            return Err(err(
                "source_address",
                format!("{source} is not of the family of {address}"),
            ));
        }
        if let Some(hold) = peer.hold_time_seconds {
            if hold == 1 || hold == 2 || hold > u32::from(u16::MAX) {
                return Err(err(
                    "hold_time_seconds",
                    format!("{hold} must be 0 or 3..=65535"),
                ));
            }
            config.hold_time = u16::try_from(hold).unwrap_or(u16::MAX);
        }
        if let Some(keepalive) = peer.keepalive_seconds {
            let value = u16::try_from(keepalive)
                .ok()
                .filter(|k| *k > 0)
                .ok_or_else(|| {
                    err(
                        "keepalive_seconds",
                        format!("{keepalive} must be 1..=65535"),
                    )
                })?;
            config.keepalive = Some(value);
        }
        if let Some(retry) = peer.connect_retry_seconds {
            if retry == 0 {
                return Err(err("connect_retry_seconds", "0 must be at least 1".into()));
            }
            config.connect_retry = Duration::from_secs(u64::from(retry));
        }
        config.passive = peer.passive;
        config.ebgp_multihop_ttl = u8::try_from(peer.ebgp_multihop_ttl).map_err(|_| {
            err(
                "ebgp_multihop_ttl",
                format!("{} exceeds 255", peer.ebgp_multihop_ttl),
            )
        })?;
        if !peer.password.is_empty() {
            if !peer.password_file.is_empty() {
                return Err(err(
                    "password",
                    "is given together with password_file; give one".into(),
                ));
            }
            if peer.password.len() > crate::sys::tcp_md5::MAX_KEY_LEN {
                return Err(err(
                    "password",
                    format!("holds {} bytes, need 1..=80", peer.password.len()),
                ));
            }
            config.password = Some(peer.password.clone());
        }
        if !peer.families.is_empty() {
            let mut families = Vec::new();
            for (i, name) in peer.families.iter().enumerate() {
                let family = match name.as_str() {
                    "ipv4-unicast" => Family::IPV4_UNICAST,
                    "ipv6-unicast" => Family::IPV6_UNICAST,
                    other => {
                        return Err(err(
                            &format!("families[{i}]"),
                            format!("{other:?} is not \"ipv4-unicast\" or \"ipv6-unicast\""),
                        ));
                    }
                };
                if !families.contains(&family) {
                    families.push(family);
                }
            }
            config.families = families;
        }
        if !peer.password_file.is_empty() {
            let path = PathBuf::from(&peer.password_file);
            let text = std::fs::read(&path)
                .map_err(|e| err("password_file", format!("{:?}: {e}", peer.password_file)))?;
            // A trailing newline is not part of the password (files written with echo).
            let password = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
            if password.is_empty() || password.len() > crate::sys::tcp_md5::MAX_KEY_LEN {
                return Err(err(
                    "password_file",
                    format!(
                        "{:?} holds {} bytes, need 1..=80",
                        peer.password_file,
                        password.len()
                    ),
                ));
            }
            config.password_file = Some(path);
            config.password = Some(password);
        }
        config.ipv4_next_hop = match optional_addr("ipv4_next_hop", &peer.ipv4_next_hop)? {
            None => None,
            Some(IpAddr::V4(v4)) => Some(v4),
            Some(other) => {
                return Err(err(
                    "ipv4_next_hop",
                    format!("{other} is not an IPv4 address"),
                ));
            }
        };
        config.ipv6_next_hop = match optional_addr("ipv6_next_hop", &peer.ipv6_next_hop)? {
            None => None,
            Some(IpAddr::V6(v6)) if !v6.is_unspecified() && !v6.is_loopback() => Some(v6),
            Some(other) => {
                return Err(err(
                    "ipv6_next_hop",
                    format!("{other} is not a usable global IPv6 address"),
                ));
            }
        };
        if let Some(attrs) = &peer.attributes {
            config.attributes = RouteAttributes::from_proto(attrs, "peer.attributes")
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        if peer.graceful_restart {
            let seconds = peer.graceful_restart_seconds.unwrap_or(120);
            if seconds > 4095 {
                return Err(err(
                    "graceful_restart_seconds",
                    format!("{seconds} exceeds 4095 (12 bits, RFC 4724)"),
                ));
            }
            config.graceful_restart = Some(u16::try_from(seconds).unwrap_or(4095));
        }
        if let Some(bfd) = &peer.bfd {
            config.bfd = crate::bfd::BfdConfig::from_proto(bfd, "peer.bfd").map_err(ConfigError)?;
        }
        Ok(config)
    }

    /// The gRPC form (the password itself is never reported).
    pub fn to_proto(&self) -> pb::Peer {
        let text = |addr: Option<IpAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
        pb::Peer {
            address: self.address.to_string(),
            port: u32::from(self.port),
            peer_asn: self.peer_asn,
            local_asn: self.local_asn,
            router_id: text(self.router_id.map(IpAddr::V4)),
            source_address: text(self.source_address),
            hold_time_seconds: Some(u32::from(self.hold_time)),
            keepalive_seconds: self.keepalive.map(u32::from),
            connect_retry_seconds: Some(
                u32::try_from(self.connect_retry.as_secs()).unwrap_or(u32::MAX),
            ),
            passive: self.passive,
            ebgp_multihop_ttl: u32::from(self.ebgp_multihop_ttl),
            password_file: self
                .password_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            ipv4_next_hop: text(self.ipv4_next_hop.map(IpAddr::V4)),
            ipv6_next_hop: text(self.ipv6_next_hop.map(IpAddr::V6)),
            attributes: Some(self.attributes.to_proto()),
            graceful_restart: self.graceful_restart.is_some(),
            graceful_restart_seconds: self.graceful_restart.map(u32::from),
            families: self.families.iter().map(ToString::to_string).collect(),
            password: Vec::new(),
            password_set: self.password.is_some(),
            bfd: self.bfd.as_ref().map(crate::bfd::BfdConfig::to_proto),
        }
    }
}

impl std::fmt::Debug for PeerConfig {
    /// Every field but the password's bytes (logs and panics must not carry it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("peer_asn", &self.peer_asn)
            .field("local_asn", &self.local_asn)
            .field("router_id", &self.router_id)
            .field("source_address", &self.source_address)
            .field("hold_time", &self.hold_time)
            .field("keepalive", &self.keepalive)
            .field("connect_retry", &self.connect_retry)
            .field("passive", &self.passive)
            .field("ebgp_multihop_ttl", &self.ebgp_multihop_ttl)
            .field("password_file", &self.password_file)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("families", &self.families)
            .field("ipv4_next_hop", &self.ipv4_next_hop)
            .field("ipv6_next_hop", &self.ipv6_next_hop)
            .field("attributes", &self.attributes)
            .field("graceful_restart", &self.graceful_restart)
            .field("bfd", &self.bfd)
            .finish()
    }
}

/// The entries of a SyncPeers request, each validated or refused with the reason
/// (`peers[i].field: …`). `local_asn` 0 takes `default_local_asn` (`--bgp-local-asn`).
pub fn desired_peers(
    peers: &[pb::Peer],
    default_local_asn: Option<u32>,
) -> Vec<super::peer_sync::DesiredPeer> {
    peers
        .iter()
        .enumerate()
        .map(|(i, peer)| {
            let refuse = |message: String| super::peer_sync::PeerRefusal {
                address: peer.address.clone(),
                message: message.replacen("peer.", &format!("peers[{i}]."), 1),
            };
            let mut peer = peer.clone();
            if peer.local_asn == 0 {
                peer.local_asn = default_local_asn.ok_or_else(|| {
                    refuse(format!(
                        "peers[{i}].local_asn: not given, and the announcer has no --bgp-local-asn"
                    ))
                })?;
            }
            if !peer.password_file.is_empty() {
                return Err(refuse(format!(
                    "peers[{i}].password_file: managed peers give the password itself (password)"
                )));
            }
            PeerConfig::from_proto(&peer).map_err(|e| refuse(e.0))
        })
        .collect()
}
