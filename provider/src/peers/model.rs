//! A `BGPPeer` object read into a typed [`PeerSpec`], once. Every field the CRD's schema
//! cannot check (the address, a hold time of 1 or 2, families, the selector's operators) is
//! checked here; the first bad field becomes the object's problem, naming the field and the
//! value (`spec.holdTimeSeconds: 2 must be 0 or 3..=65535`), and the peer is then pushed to
//! no node while every other object keeps working.

use std::net::IpAddr;

use serde_json::Value;

use crate::pools::objects::selector::Selector;

/// The data key of the password Secret when `passwordSecret.key` is not given.
pub const DEFAULT_PASSWORD_KEY: &str = "password";

/// An address family offered to the router (RFC 4760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    /// The name in the CRD and in the gRPC `Peer.families`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        }
    }
}

/// BFD for the peer's session (RFC 5880).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bfd {
    pub min_tx_ms: Option<u32>,
    pub min_rx_ms: Option<u32>,
    pub multiplier: Option<u32>,
    pub multihop: bool,
}

/// Where the MD5 password is: a Secret in the provider's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// A `BGPPeer`'s spec, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub address: IpAddr,
    pub peer_asn: u32,
    /// `None`: each announcer's `--bgp-local-asn`.
    pub local_asn: Option<u32>,
    pub port: u16,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    /// 0: directly connected.
    pub ebgp_multihop: u8,
    pub passive: bool,
    /// Restart time advertised with graceful restart, if enabled.
    pub graceful_restart: Option<u16>,
    pub password: Option<SecretRef>,
    /// Empty: both unicast families.
    pub families: Vec<Family>,
    pub node_selector: Selector,
    pub source_address: Option<IpAddr>,
    pub router_id: Option<std::net::Ipv4Addr>,
    pub bfd: Option<Bfd>,
}

/// A `BGPPeer` as read: its identity and its spec, or why the spec cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpPeer {
    pub name: String,
    pub generation: i64,
    pub uid: String,
    pub spec: Result<PeerSpec, String>,
}

/// A `BGPPeer` with its status as stored (for the status book).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerObject {
    pub peer: BgpPeer,
    pub status: Value,
}

/// Reads a `BGPPeer` object (JSON as the API serves it).
pub fn parse(object: &Value) -> BgpPeer {
    let meta = &object["metadata"];
    BgpPeer {
        name: meta["name"].as_str().unwrap_or_default().to_string(),
        generation: meta["generation"].as_i64().unwrap_or(0),
        uid: meta["uid"].as_str().unwrap_or_default().to_string(),
        spec: parse_spec(&object["spec"]),
    }
}

fn number(spec: &Value, field: &str, max: u64) -> Result<Option<u64>, String> {
    match &spec[field] {
        Value::Null => Ok(None),
        value => value
            .as_u64()
            .filter(|n| *n <= max)
            .map(Some)
            .ok_or_else(|| format!("spec.{field}: {value} is not an integer in 0..={max}")),
    }
}

fn optional_address(spec: &Value, field: &str) -> Result<Option<IpAddr>, String> {
    match &spec[field] {
        Value::Null => Ok(None),
        Value::String(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("spec.{field}: {text:?} is not an IP address")),
        other => Err(format!("spec.{field}: {other} is not an IP address")),
    }
}

fn parse_spec(spec: &Value) -> Result<PeerSpec, String> {
    if !spec.is_object() {
        return Err("spec: missing".into());
    }
    let address = optional_address(spec, "peerAddress")?.ok_or("spec.peerAddress: required")?;
    let asn = |field: &str| -> Result<Option<u32>, String> {
        match number(spec, field, u64::from(u32::MAX))? {
            Some(0) => Err(format!("spec.{field}: 0 is not an AS number")),
            other => Ok(other.and_then(|n| u32::try_from(n).ok())),
        }
    };
    let peer_asn = asn("peerASN")?.ok_or("spec.peerASN: required")?;
    let local_asn = asn("localASN")?;
    let port = match number(spec, "port", 65535)? {
        None => 179,
        Some(0) => return Err("spec.port: 0 is not a TCP port".into()),
        Some(port) => u16::try_from(port).unwrap_or(179),
    };
    let hold_time = match number(spec, "holdTimeSeconds", 65535)? {
        Some(hold @ (1 | 2)) => {
            return Err(format!(
                "spec.holdTimeSeconds: {hold} must be 0 or 3..=65535 (RFC 4271 §4.2)"
            ));
        }
        other => other.and_then(|n| u16::try_from(n).ok()),
    };
    let keepalive = match number(spec, "keepaliveTimeSeconds", 65535)? {
        Some(0) => return Err("spec.keepaliveTimeSeconds: 0 must be at least 1".into()),
        other => other.and_then(|n| u16::try_from(n).ok()),
    };
    if let (Some(hold), Some(keepalive)) = (hold_time, keepalive)
        && hold > 0
        && keepalive > hold / 3
    {
        return Err(format!(
            "spec.keepaliveTimeSeconds: {keepalive} exceeds a third of holdTimeSeconds {hold}"
        ));
    }
    let ebgp_multihop = number(spec, "ebgpMultihop", 255)?
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(0);
    let passive = match &spec["passive"] {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => return Err(format!("spec.passive: {other} is not true or false")),
    };
    let graceful_restart = match &spec["gracefulRestart"] {
        Value::Null => None,
        gr if gr["enabled"] == Value::Bool(true) => {
            match number(gr, "restartTimeSeconds", 4095)
                .map_err(|e| e.replace("spec.", "spec.gracefulRestart."))?
            {
                Some(0) => {
                    return Err(
                        "spec.gracefulRestart.restartTimeSeconds: 0 must be 1..=4095".into(),
                    );
                }
                Some(n) => u16::try_from(n).ok(),
                None => Some(120),
            }
        }
        _ => None,
    };
    let password = match &spec["passwordSecret"] {
        Value::Null => None,
        secret => {
            let name = secret["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or("spec.passwordSecret.name: required")?;
            let key = secret["key"].as_str().unwrap_or(DEFAULT_PASSWORD_KEY);
            Some(SecretRef {
                name: name.to_string(),
                key: key.to_string(),
            })
        }
    };
    let mut families = Vec::new();
    if let Some(list) = spec["families"].as_array() {
        for (i, family) in list.iter().enumerate() {
            let family = match family.as_str() {
                Some("ipv4-unicast") => Family::Ipv4Unicast,
                Some("ipv6-unicast") => Family::Ipv6Unicast,
                _ => {
                    return Err(format!(
                        "spec.families[{i}]: {family} is not \"ipv4-unicast\" or \"ipv6-unicast\""
                    ));
                }
            };
            if !families.contains(&family) {
                families.push(family);
            }
        }
    }
    let node_selector = match &spec["nodeSelector"] {
        Value::Null => Selector::default(),
        selector => Selector::parse(selector, "spec.nodeSelector")?,
    };
    let source_address = optional_address(spec, "sourceAddress")?;
    if let Some(source) = source_address
        && source.is_ipv4() != address.is_ipv4()
    {
        return Err(format!(
            "spec.sourceAddress: {source} is not of the family of peerAddress {address}"
        ));
    }
    let router_id = match optional_address(spec, "routerID")? {
        None => None,
        Some(IpAddr::V4(id)) if !id.is_unspecified() => Some(id),
        Some(other) => {
            return Err(format!(
                "spec.routerID: {other} is not a non-zero IPv4 address"
            ));
        }
    };
    let bfd = match &spec["bfd"] {
        bfd if bfd["enabled"] == Value::Bool(true) => {
            let ms = |field: &str| -> Result<Option<u32>, String> {
                match number(bfd, field, 60000).map_err(|e| e.replace("spec.", "spec.bfd."))? {
                    Some(n) if n < 10 => Err(format!("spec.bfd.{field}: {n} must be 10..=60000")),
                    other => Ok(other.and_then(|n| u32::try_from(n).ok())),
                }
            };
            let multiplier = match number(bfd, "multiplier", 255)
                .map_err(|e| e.replace("spec.", "spec.bfd."))?
            {
                Some(0) => return Err("spec.bfd.multiplier: 0 must be 1..=255".into()),
                other => other.and_then(|n| u32::try_from(n).ok()),
            };
            Some(Bfd {
                min_tx_ms: ms("minTxMs")?,
                min_rx_ms: ms("minRxMs")?,
                multiplier,
                multihop: bfd["multihop"] == Value::Bool(true),
            })
        }
        _ => None,
    };
    Ok(PeerSpec {
        address,
        peer_asn,
        local_asn,
        port,
        hold_time,
        keepalive,
        ebgp_multihop,
        passive,
        graceful_restart,
        password,
        families,
        node_selector,
        source_address,
        router_id,
        bfd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_of(spec: Value) -> Result<PeerSpec, String> {
        parse(&json!({"metadata": {"name": "rack-1", "generation": 2}, "spec": spec})).spec
    }

    #[test]
    fn a_full_peer_reads_every_field() {
        let spec = spec_of(json!({
            "peerAddress": "192.0.2.2", "peerASN": 64512, "localASN": 64513, "port": 1179,
            "holdTimeSeconds": 9, "keepaliveTimeSeconds": 3, "ebgpMultihop": 4,
            "passive": true, "gracefulRestart": {"enabled": true, "restartTimeSeconds": 60},
            "passwordSecret": {"name": "rack-1-bgp"},
            "families": ["ipv4-unicast", "ipv4-unicast"],
            "nodeSelector": {"matchLabels": {"rack": "r1"}},
            "sourceAddress": "192.0.2.1", "routerID": "192.0.2.1",
            "bfd": {"enabled": true, "minTxMs": 100, "multiplier": 5},
        }))
        .expect("valid");
        assert_eq!(spec.address, "192.0.2.2".parse::<IpAddr>().expect("ip"));
        assert_eq!(
            (spec.peer_asn, spec.local_asn, spec.port),
            (64512, Some(64513), 1179)
        );
        assert_eq!(
            (spec.hold_time, spec.keepalive, spec.ebgp_multihop),
            (Some(9), Some(3), 4)
        );
        assert!(spec.passive);
        assert_eq!(spec.graceful_restart, Some(60));
        assert_eq!(
            spec.password,
            Some(SecretRef {
                name: "rack-1-bgp".into(),
                key: "password".into()
            })
        );
        assert_eq!(spec.families, [Family::Ipv4Unicast]);
        assert_eq!(
            spec.node_selector.labels.get("rack").map(String::as_str),
            Some("r1")
        );
        let bfd = spec.bfd.expect("bfd");
        assert_eq!(
            (bfd.min_tx_ms, bfd.min_rx_ms, bfd.multiplier),
            (Some(100), None, Some(5))
        );
    }

    #[test]
    fn defaults_are_port_179_both_families_every_node_and_the_announcers_local_asn() {
        let spec = spec_of(json!({"peerAddress": "2001:db8::1", "peerASN": 65000})).expect("ok");
        assert_eq!(spec.port, 179);
        assert_eq!(spec.local_asn, None);
        assert!(spec.families.is_empty());
        assert_eq!(spec.node_selector, Selector::default());
        assert_eq!(
            (spec.graceful_restart, spec.password, spec.bfd),
            (None, None, None)
        );
    }

    #[test]
    fn each_bad_field_is_named_with_its_value() {
        let base = json!({"peerAddress": "192.0.2.2", "peerASN": 64512});
        let with = |key: &str, value: Value| {
            let mut spec = base.clone();
            spec[key] = value;
            spec_of(spec).expect_err("invalid")
        };
        let table = [
            (
                with("peerAddress", json!("192.0.2.300")),
                "spec.peerAddress: \"192.0.2.300\" is not an IP address",
            ),
            (
                with("peerASN", json!(0)),
                "spec.peerASN: 0 is not an AS number",
            ),
            (
                with("holdTimeSeconds", json!(2)),
                "spec.holdTimeSeconds: 2 must be 0 or 3..=65535 (RFC 4271 §4.2)",
            ),
            (
                with("port", json!(70000)),
                "spec.port: 70000 is not an integer in 0..=65535",
            ),
            (
                with("families", json!(["l2vpn-evpn"])),
                "spec.families[0]: \"l2vpn-evpn\" is not \"ipv4-unicast\" or \"ipv6-unicast\"",
            ),
            (
                with(
                    "nodeSelector",
                    json!({"matchExpressions": [{"key": "rack", "operator": "Near"}]}),
                ),
                "spec.nodeSelector.matchExpressions[0].operator",
            ),
            (
                with("passwordSecret", json!({"key": "x"})),
                "spec.passwordSecret.name: required",
            ),
            (
                with("sourceAddress", json!("2001:db8::1")),
                "spec.sourceAddress: 2001:db8::1 is not of the family of peerAddress 192.0.2.2",
            ),
            (
                with(
                    "gracefulRestart",
                    json!({"enabled": true, "restartTimeSeconds": 5000}),
                ),
                "spec.gracefulRestart.restartTimeSeconds: 5000 is not an integer in 0..=4095",
            ),
            (
                with("bfd", json!({"enabled": true, "minRxMs": 5})),
                "spec.bfd.minRxMs: 5 must be 10..=60000",
            ),
        ];
        for (got, want) in table {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
        assert_eq!(
            spec_of(json!({"peerASN": 1})).expect_err("no address"),
            "spec.peerAddress: required"
        );
    }
}
