//! OPEN message (RFC 4271 §4.2) and its capabilities (RFC 5492): multiprotocol (RFC 4760 §8),
//! route refresh (RFC 2918 §2), graceful restart (RFC 4724 §3) and 4-octet AS (RFC 6793 §3).
//! Unknown capabilities are kept as raw bytes so a peer may send anything it likes.

use std::net::Ipv4Addr;

use super::error::{DecodeError, EncodeError, Notification};
use super::nlri::Family;

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet AS number in 2-octet fields.
pub const AS_TRANS: u16 = 23456;

const OPT_PARAM_CAPABILITIES: u8 = 2;
const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;

/// One family in the graceful-restart capability (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// "Forwarding State" bit: forwarding was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// A BGP capability (RFC 5492 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions for one family (RFC 4760 §8).
    Multiprotocol(Family),
    /// Route refresh (RFC 2918 §2).
    RouteRefresh,
    /// Graceful restart (RFC 4724 §3). `restart_time` is 12 bits, seconds.
    GracefulRestart {
        restarting: bool,
        restart_time: u16,
        families: Vec<GracefulRestartFamily>,
    },
    /// Support for 4-octet AS numbers, carrying our real AS (RFC 6793 §3).
    FourOctetAs(u32),
    /// Anything else, kept verbatim.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (code, value): (u8, Vec<u8>) = match self {
            Capability::Multiprotocol(family) => {
                let [hi, lo] = family.afi.to_be_bytes();
                (CAP_MULTIPROTOCOL, vec![hi, lo, 0, family.safi])
            }
            Capability::RouteRefresh => (CAP_ROUTE_REFRESH, Vec::new()),
            Capability::GracefulRestart {
                restarting,
                restart_time,
                families,
            } => {
                let flags_and_time = (restart_time & 0x0fff) | if *restarting { 0x8000 } else { 0 };
                let mut value = flags_and_time.to_be_bytes().to_vec();
                for entry in families {
                    value.extend_from_slice(&entry.family.afi.to_be_bytes());
                    value.push(entry.family.safi);
                    value.push(if entry.forwarding_preserved { 0x80 } else { 0 });
                }
                (CAP_GRACEFUL_RESTART, value)
            }
            Capability::FourOctetAs(asn) => (CAP_FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
            Capability::Unknown { code, value } => (*code, value.clone()),
        };
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::TooManyEntries {
            what: "capability",
            count: value.len(),
        })?;
        out.push(code);
        out.push(len);
        out.extend_from_slice(&value);
        Ok(())
    }

    fn decode(code: u8, value: &[u8]) -> Result<Capability, DecodeError> {
        let malformed = |what: &str| {
            DecodeError::notify(
                Notification::OPEN_MESSAGE_ERROR,
                0,
                Vec::new(),
                format!(
                    "OPEN capability {code} ({what}): malformed value of {} bytes",
                    value.len()
                ),
            )
        };
        Ok(match code {
            CAP_MULTIPROTOCOL => match value {
                [afi_hi, afi_lo, _reserved, safi] => Capability::Multiprotocol(Family {
                    afi: u16::from_be_bytes([*afi_hi, *afi_lo]),
                    safi: *safi,
                }),
                _ => return Err(malformed("multiprotocol")),
            },
            CAP_ROUTE_REFRESH => Capability::RouteRefresh,
            CAP_GRACEFUL_RESTART => {
                if value.len() < 2 || !(value.len() - 2).is_multiple_of(4) {
                    return Err(malformed("graceful restart"));
                }
                let flags_and_time = u16::from_be_bytes([value[0], value[1]]);
                let families = value[2..]
                    .chunks_exact(4)
                    .map(|entry| GracefulRestartFamily {
                        family: Family {
                            afi: u16::from_be_bytes([entry[0], entry[1]]),
                            safi: entry[2],
                        },
                        forwarding_preserved: entry[3] & 0x80 != 0,
                    })
                    .collect();
                Capability::GracefulRestart {
                    restarting: flags_and_time & 0x8000 != 0,
                    restart_time: flags_and_time & 0x0fff,
                    families,
                }
            }
            CAP_FOUR_OCTET_AS => match value {
                [a, b, c, d] => Capability::FourOctetAs(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => return Err(malformed("4-octet AS")),
            },
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message (RFC 4271 §4.2). `version` is always 4 when decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// "My Autonomous System": our AS, or AS_TRANS when it needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_identifier: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn`, putting AS_TRANS in the 2-octet field when needed (RFC 6793 §4.1).
    /// Callers include [`Capability::FourOctetAs`] themselves.
    pub fn new(asn: u32, hold_time: u16, bgp_identifier: Ipv4Addr, caps: Vec<Capability>) -> Self {
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_identifier,
            capabilities: caps,
        }
    }

    /// The sender's AS: from the 4-octet AS capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|cap| match cap {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// Whether the sender offers `family` (RFC 4760 §8). Without any multiprotocol capability
    /// a speaker does IPv4 unicast only (RFC 4760 §1).
    pub fn supports(&self, family: Family) -> bool {
        let mut any_mp = false;
        for cap in &self.capabilities {
            if let Capability::Multiprotocol(offered) = cap {
                any_mp = true;
                if *offered == family {
                    return true;
                }
            }
        }
        !any_mp && family == Family::IPV4_UNICAST
    }

    /// Whether the sender offers `capability` by code (e.g. route refresh, 4-octet AS).
    pub fn has(&self, pred: impl Fn(&Capability) -> bool) -> bool {
        self.capabilities.iter().any(pred)
    }

    pub(super) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(4);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_identifier.octets());
        let mut caps = Vec::new();
        for cap in &self.capabilities {
            cap.encode(&mut caps)?;
        }
        if caps.is_empty() {
            out.push(0);
            return Ok(());
        }
        // All capabilities in one optional parameter (RFC 5492 §4 allows either form).
        let param_len = u8::try_from(caps.len()).map_err(|_| EncodeError::TooManyEntries {
            what: "OPEN capabilities",
            count: caps.len(),
        })?;
        let opt_len = param_len
            .checked_add(2)
            .ok_or(EncodeError::TooManyEntries {
                what: "OPEN optional parameters",
                count: caps.len() + 2,
            })?;
        out.push(opt_len);
        out.push(OPT_PARAM_CAPABILITIES);
        out.push(param_len);
        out.extend_from_slice(&caps);
        Ok(())
    }

    /// Decodes an OPEN body (after the 19-byte header); RFC 4271 §6.2 errors.
    pub(super) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let open_error = |subcode: u8, data: Vec<u8>, reason: String| {
            DecodeError::notify(Notification::OPEN_MESSAGE_ERROR, subcode, data, reason)
        };
        // `Message::decode` already refused an OPEN shorter than 29 bytes (10 of body).
        if body[0] != 4 {
            return Err(open_error(
                1,
                vec![0, 4],
                format!("OPEN version {} is not 4", body[0]),
            ));
        }
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        if hold_time == 1 || hold_time == 2 {
            return Err(open_error(
                6,
                Vec::new(),
                format!("OPEN hold time {hold_time} is 1 or 2"),
            ));
        }
        let bgp_identifier = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        if bgp_identifier.is_unspecified() {
            return Err(open_error(
                3,
                Vec::new(),
                "OPEN BGP identifier is 0.0.0.0".into(),
            ));
        }
        let opt_len = usize::from(body[9]);
        let mut params = &body[10..];
        if params.len() != opt_len {
            return Err(open_error(
                0,
                Vec::new(),
                format!(
                    "OPEN optional parameters length {opt_len} but {} bytes follow",
                    params.len()
                ),
            ));
        }
        let mut capabilities = Vec::new();
        while !params.is_empty() {
            let [param_type, param_len, rest @ ..] = params else {
                return Err(open_error(
                    0,
                    Vec::new(),
                    "OPEN optional parameter truncated".into(),
                ));
            };
            let param_len = usize::from(*param_len);
            if rest.len() < param_len {
                return Err(open_error(
                    0,
                    Vec::new(),
                    format!(
                        "OPEN optional parameter {param_type} of {param_len} bytes is truncated"
                    ),
                ));
            }
            let (mut value, remaining) = rest.split_at(param_len);
            params = remaining;
            if *param_type != OPT_PARAM_CAPABILITIES {
                return Err(open_error(
                    4,
                    Vec::new(),
                    format!("OPEN optional parameter type {param_type} is not supported"),
                ));
            }
            while !value.is_empty() {
                let [code, cap_len, rest @ ..] = value else {
                    return Err(open_error(
                        0,
                        Vec::new(),
                        "OPEN capability truncated".into(),
                    ));
                };
                let cap_len = usize::from(*cap_len);
                if rest.len() < cap_len {
                    return Err(open_error(
                        0,
                        Vec::new(),
                        format!("OPEN capability {code} of {cap_len} bytes is truncated"),
                    ));
                }
                let (cap_value, remaining) = rest.split_at(cap_len);
                capabilities.push(Capability::decode(*code, cap_value)?);
                value = remaining;
            }
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_identifier,
            capabilities,
        })
    }
}
