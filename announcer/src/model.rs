//! Domain types of the announcer and their validation from the gRPC messages.
//!
//! Everything that comes from a client is checked here once; the rest of the crate works on
//! these types. Errors name the field path and the value, e.g.
//! `announcements[2].address: "10.0.0.300" is not an IP address`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use proto::announcer::v1 as pb;

use crate::bgp::attributes::RouteAttributes;

/// How an address is made reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Layer2,
    Vip,
    Bgp,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Layer2, Mode::Vip, Mode::Bgp];

    pub fn to_proto(self) -> pb::Mode {
        match self {
            Mode::Layer2 => pb::Mode::Layer2,
            Mode::Vip => pb::Mode::Vip,
            Mode::Bgp => pb::Mode::Bgp,
        }
    }

    /// Name used in metrics, logs and `ctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Layer2 => "layer2",
            Mode::Vip => "vip",
            Mode::Bgp => "bgp",
        }
    }

    /// Parses `layer2`, `vip` or `bgp` (as `ctl` takes them).
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "layer2" | "l2" => Some(Mode::Layer2),
            "vip" => Some(Mode::Vip),
            "bgp" => Some(Mode::Bgp),
            _ => None,
        }
    }

    /// Maps the wire enum; `None` for MODE_UNSPECIFIED.
    pub fn from_proto(value: i32) -> Result<Option<Mode>, i32> {
        match pb::Mode::try_from(value) {
            Ok(pb::Mode::Unspecified) => Ok(None),
            Ok(pb::Mode::Layer2) => Ok(Some(Mode::Layer2)),
            Ok(pb::Mode::Vip) => Ok(Some(Mode::Vip)),
            Ok(pb::Mode::Bgp) => Ok(Some(Mode::Bgp)),
            Err(_) => Err(value),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key of an announcement: at most one per address and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub address: IpAddr,
    pub mode: Mode,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address, self.mode)
    }
}

/// Which interface to announce on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Name(String),
    CanReach(IpAddr),
    Automatic,
}

impl Selector {
    /// Parses the `ctl` form: a name, `can_reach:<address>` or `auto`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        if text.is_empty() || text == "auto" {
            Ok(Selector::Automatic)
        } else if let Some(peer) = text.strip_prefix("can_reach:") {
            peer.parse()
                .map(Selector::CanReach)
                .map_err(|_| format!("{text:?}: {peer:?} is not an IP address"))
        } else {
            Ok(Selector::Name(text.to_string()))
        }
    }

    pub fn to_proto(&self) -> pb::InterfaceSelector {
        use pb::interface_selector::Selector as S;
        let selector = match self {
            Selector::Name(n) => S::Name(n.clone()),
            Selector::CanReach(a) => S::CanReach(a.to_string()),
            Selector::Automatic => S::Automatic(pb::Automatic {}),
        };
        pb::InterfaceSelector {
            selector: Some(selector),
        }
    }
}

/// A validated announcement. Only the domain form is kept (not the request message): with
/// 10,000 announcements every byte per entry counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub key: Key,
    pub selector: Selector,
    pub labels: BTreeMap<String, String>,
    /// BGP attributes of this address (mode BGP only), parsed.
    pub bgp: Option<Box<RouteAttributes>>,
    /// Ordered failover candidates (node names, preferred owner first; LAYER2 and VIP). With
    /// a [`FailoverSync`] naming this node among them, the candidates elect who answers.
    pub candidates: Vec<String>,
}

/// The failover part of a Sync: this node's name, its peers' heartbeat addresses and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverSync {
    pub node: String,
    pub peers: BTreeMap<String, std::net::IpAddr>,
    pub key: Vec<u8>,
}

impl Desired {
    /// The announcement as reported in state and events and handed to the BGP backend, with
    /// the address normalised and the selector explicit.
    pub fn to_wire(&self) -> pb::Announcement {
        pb::Announcement {
            address: self.key.address.to_string(),
            mode: self.key.mode.to_proto().into(),
            interface: Some(self.selector.to_proto()),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            bgp: self.bgp.as_deref().map(RouteAttributes::to_proto),
            candidates: self.candidates.clone(),
        }
    }
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidField {
    InvalidField {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Parses an address field: an IP unicast address usable for a load balancer.
pub fn parse_address(field: &str, text: &str) -> Result<IpAddr, InvalidField> {
    let address: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| invalid(field, format!("{text:?} is not an IP address")))?;
    let reason = if address.is_unspecified() {
        Some("is the unspecified address")
    } else if address.is_loopback() {
        Some("is a loopback address")
    } else if address.is_multicast() {
        Some("is a multicast address")
    } else if matches!(address, IpAddr::V4(a) if a.is_broadcast()) {
        Some("is the broadcast address")
    } else if matches!(address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
        || matches!(address, IpAddr::V4(a) if a.is_link_local())
    {
        Some("is a link-local address")
    } else {
        None
    };
    match reason {
        Some(r) => Err(invalid(field, format!("{text:?} {r}"))),
        None => Ok(address),
    }
}

/// Validates one announcement; `field` is its path in the request, e.g. `announcements[2]`.
pub fn validate(field: &str, wire: &pb::Announcement) -> Result<Desired, InvalidField> {
    let address = parse_address(&format!("{field}.address"), &wire.address)?;
    let mode = match Mode::from_proto(wire.mode) {
        Ok(Some(mode)) => mode,
        Ok(None) => {
            return Err(invalid(
                &format!("{field}.mode"),
                "is required (layer2, vip or bgp)",
            ));
        }
        Err(v) => {
            return Err(invalid(
                &format!("{field}.mode"),
                format!("{v} is not a known mode"),
            ));
        }
    };
    use pb::interface_selector::Selector as S;
    let selector = match wire.interface.as_ref().and_then(|i| i.selector.as_ref()) {
        None | Some(S::Automatic(_)) => Selector::Automatic,
        Some(S::Name(name)) if name.is_empty() || name.len() > 15 || name.contains('/') => {
            return Err(invalid(
                &format!("{field}.interface.name"),
                format!("{name:?} is not a valid interface name (1-15 characters, no '/')"),
            ));
        }
        Some(S::Name(name)) => Selector::Name(name.clone()),
        Some(S::CanReach(peer)) => Selector::CanReach(peer.trim().parse().map_err(|_| {
            invalid(
                &format!("{field}.interface.can_reach"),
                format!("{peer:?} is not an IP address"),
            )
        })?),
    };
    if mode != Mode::Bgp && wire.bgp.is_some() {
        return Err(invalid(
            &format!("{field}.bgp"),
            format!("is only allowed with mode bgp, not {mode}"),
        ));
    }
    let bgp = match &wire.bgp {
        None => None,
        Some(attrs) => Some(Box::new(
            RouteAttributes::from_proto(attrs, &format!("{field}.bgp")).map_err(|e| {
                InvalidField {
                    field: e.field,
                    message: e.message,
                }
            })?,
        )),
    };
    Ok(Desired {
        key: Key { address, mode },
        selector,
        labels: wire
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        bgp,
        candidates: wire.candidates.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(address: &str, mode: pb::Mode) -> pb::Announcement {
        pb::Announcement {
            address: address.into(),
            mode: mode.into(),
            ..Default::default()
        }
    }

    fn bgp(communities: &[&str], large: &[&str]) -> pb::Announcement {
        pb::Announcement {
            bgp: Some(pb::BgpAttributes {
                communities: communities.iter().map(|c| c.to_string()).collect(),
                large_communities: large.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            }),
            ..wire("192.0.2.1", pb::Mode::Bgp)
        }
    }

    #[test]
    fn bgp_attributes_are_parsed_once_into_typed_values() {
        let desired =
            validate("a", &bgp(&["65000:100", " 1:2 "], &["4200000000:1:2"])).expect("valid");
        let attributes = desired.bgp.as_deref().expect("attributes");
        assert_eq!(attributes.communities, vec![65000 << 16 | 100, 1 << 16 | 2]);
        assert_eq!(attributes.large_communities[0].global_admin, 4_200_000_000);
        // Reported back in the canonical form.
        assert_eq!(
            desired.to_wire().bgp.expect("bgp").communities,
            vec!["65000:100".to_string(), "1:2".to_string()]
        );
    }

    #[test]
    fn invalid_announcements_name_the_field_and_value() {
        let cases: Vec<(pb::Announcement, &str)> = vec![
            (
                wire("10.0.0.300", pb::Mode::Layer2),
                r#"announcements[2].address: "10.0.0.300" is not an IP address"#,
            ),
            (
                wire("192.0.2.0/24", pb::Mode::Layer2),
                r#"announcements[2].address: "192.0.2.0/24" is not an IP address"#,
            ),
            (
                wire("0.0.0.0", pb::Mode::Layer2),
                r#"announcements[2].address: "0.0.0.0" is the unspecified address"#,
            ),
            (
                wire("127.0.0.5", pb::Mode::Vip),
                r#"announcements[2].address: "127.0.0.5" is a loopback address"#,
            ),
            (
                wire("ff02::1", pb::Mode::Layer2),
                r#"announcements[2].address: "ff02::1" is a multicast address"#,
            ),
            (
                wire("fe80::1", pb::Mode::Layer2),
                r#"announcements[2].address: "fe80::1" is a link-local address"#,
            ),
            (
                wire("192.0.2.1", pb::Mode::Unspecified),
                "announcements[2].mode: is required (layer2, vip or bgp)",
            ),
            (
                pb::Announcement {
                    mode: 9,
                    ..wire("192.0.2.1", pb::Mode::Layer2)
                },
                "announcements[2].mode: 9 is not a known mode",
            ),
            (
                pb::Announcement {
                    interface: Some(
                        Selector::CanReach("192.0.2.1".parse().expect("ip")).to_proto(),
                    )
                    .map(|mut s| {
                        s.selector =
                            Some(pb::interface_selector::Selector::CanReach("router".into()));
                        s
                    }),
                    ..wire("192.0.2.1", pb::Mode::Layer2)
                },
                r#"announcements[2].interface.can_reach: "router" is not an IP address"#,
            ),
            (
                pb::Announcement {
                    interface: Some(Selector::Name("a-very-long-interface-name".into()).to_proto()),
                    ..wire("192.0.2.1", pb::Mode::Layer2)
                },
                r#"announcements[2].interface.name: "a-very-long-interface-name" is not a valid interface name (1-15 characters, no '/')"#,
            ),
            (
                pb::Announcement {
                    bgp: Some(pb::BgpAttributes::default()),
                    ..wire("192.0.2.1", pb::Mode::Layer2)
                },
                "announcements[2].bgp: is only allowed with mode bgp, not layer2",
            ),
            (
                bgp(&["65000"], &[]),
                r#"announcements[2].bgp.communities[0]: "65000" is not ASN:VALUE"#,
            ),
            (
                bgp(&["65000:1", "70000:1"], &[]),
                r#"announcements[2].bgp.communities[1]: "70000:1" has an ASN that is not a 16-bit number"#,
            ),
            (
                bgp(&["65000:x"], &[]),
                r#"announcements[2].bgp.communities[0]: "65000:x" has a VALUE that is not a 16-bit number"#,
            ),
            (
                bgp(&[], &["1:2"]),
                r#"announcements[2].bgp.large_communities[0]: "1:2" is not GLOBAL:LOCAL1:LOCAL2"#,
            ),
            (
                bgp(&[], &["1:2:3", "1:2:99999999999"]),
                r#"announcements[2].bgp.large_communities[1]: "1:2:99999999999" has a part that is not a 32-bit number"#,
            ),
        ];
        for (announcement, expected) in cases {
            let error = validate("announcements[2]", &announcement).expect_err(expected);
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn addresses_are_normalised_and_selectors_default_to_automatic() {
        let desired = validate("a", &wire(" 2001:DB8:0::10 ", pb::Mode::Layer2)).expect("valid");
        assert_eq!(desired.to_wire().address, "2001:db8::10");
        assert_eq!(desired.selector, Selector::Automatic);
        assert_eq!(
            Selector::parse("can_reach:192.0.2.254"),
            Ok(Selector::CanReach("192.0.2.254".parse().expect("ip")))
        );
        assert_eq!(Selector::parse("eth1"), Ok(Selector::Name("eth1".into())));
        assert!(Selector::parse("can_reach:gateway").is_err());
    }
}
