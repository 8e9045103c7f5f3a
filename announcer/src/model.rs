//! Domain types of the announcer and their validation from the gRPC messages.
//!
//! Everything that comes from a client is checked here once; the rest of the crate works on
//! these types. Errors name the field path and the value, e.g.
//! `announcements[2].address: "10.0.0.300" is not an IP address`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use proto::announcer::v1 as pb;

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

/// A validated announcement.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub key: Key,
    pub selector: Selector,
    pub labels: BTreeMap<String, String>,
    /// The announcement as received (normalised address), echoed in state and events and
    /// handed to the BGP backend with its attributes.
    pub wire: pb::Announcement,
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
    let mut wire = wire.clone();
    wire.address = address.to_string();
    Ok(Desired {
        key: Key { address, mode },
        selector,
        labels: wire
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        wire,
    })
}
