//! UPDATE path attributes (RFC 4271 §4.3, §5) and their error handling (RFC 7606 §7).
//!
//! Each attribute knows its flags, how to write its value and how to read it back. A value that
//! does not parse gives a [`DecodeError`] with the action RFC 7606 prescribes for that
//! attribute; `Ok(None)` from [`PathAttribute::decode`] means "attribute discard".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::error::{DecodeError, EncodeError, Notification};
use super::nlri::{self, Family};
use super::open::AS_TRANS;

pub(super) const FLAG_OPTIONAL: u8 = 0x80;
pub(super) const FLAG_TRANSITIVE: u8 = 0x40;
pub(super) const FLAG_EXTENDED_LENGTH: u8 = 0x10;

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const MULTI_EXIT_DISC: u8 = 4;
const LOCAL_PREF: u8 = 5;
const ATOMIC_AGGREGATE: u8 = 6;
const COMMUNITIES: u8 = 8;
pub(super) const MP_REACH_NLRI: u8 = 14;
pub(super) const MP_UNREACH_NLRI: u8 = 15;
const AS4_PATH: u8 = 17;
const LARGE_COMMUNITIES: u8 = 32;

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3 for the confederation ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsSegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsSegment {
    pub kind: AsSegmentKind,
    pub asns: Vec<u32>,
}

/// An AS_PATH or AS4_PATH: a list of segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path holding one AS_SEQUENCE, or an empty path when `asns` is empty.
    pub fn sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: AsSegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Whether `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments
            .iter()
            .any(|segment| segment.asns.contains(&asn))
    }

    /// Whether some AS number needs 4 octets.
    pub fn needs_four_octets(&self) -> bool {
        self.segments
            .iter()
            .flat_map(|s| &s.asns)
            .any(|asn| *asn > u32::from(u16::MAX))
    }

    fn encode(&self, four_octet: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for segment in &self.segments {
            let count =
                u8::try_from(segment.asns.len()).map_err(|_| EncodeError::TooManyEntries {
                    what: "AS_PATH segment",
                    count: segment.asns.len(),
                })?;
            out.push(segment.kind as u8);
            out.push(count);
            for asn in &segment.asns {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    // RFC 6793 §4.2.2: a 4-octet AS becomes AS_TRANS towards an old speaker.
                    let short = u16::try_from(*asn).unwrap_or(AS_TRANS);
                    out.extend_from_slice(&short.to_be_bytes());
                }
            }
        }
        Ok(())
    }

    /// RFC 4271 §4.3 / RFC 7606 §7.2: the error string says what is malformed.
    fn decode(mut value: &[u8], four_octet: bool) -> Result<AsPath, String> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !value.is_empty() {
            let [kind, count, rest @ ..] = value else {
                return Err("segment header truncated".into());
            };
            let kind = match kind {
                1 => AsSegmentKind::Set,
                2 => AsSegmentKind::Sequence,
                3 => AsSegmentKind::ConfedSequence,
                4 => AsSegmentKind::ConfedSet,
                other => return Err(format!("segment type {other} is unknown")),
            };
            if *count == 0 {
                return Err("segment with 0 AS numbers".into());
            }
            let needed = usize::from(*count) * width;
            if rest.len() < needed {
                return Err(format!(
                    "segment of {count} AS numbers needs {needed} bytes, {} remain",
                    rest.len()
                ));
            }
            let (asn_bytes, remaining) = rest.split_at(needed);
            let asns = asn_bytes
                .chunks_exact(width)
                .map(|chunk| match *chunk {
                    [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
                    [a, b] => u32::from(u16::from_be_bytes([a, b])),
                    _ => 0,
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            value = remaining;
        }
        Ok(AsPath { segments })
    }
}

/// A large community (RFC 8092 §3): three 32-bit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data_1: u32,
    pub local_data_2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3): routes of a family other than plain IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    /// For IPv6: the global next hop, optionally followed by a link-local one (RFC 2545 §3).
    pub next_hops: Vec<IpAddr>,
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4): withdrawn routes of a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNet>,
}

/// A path attribute of an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAttribute {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    /// RFC 1997 communities, each `asn << 16 | value`.
    Communities(Vec<u32>),
    MpReachNlri(MpReach),
    MpUnreachNlri(MpUnreach),
    /// RFC 6793 §3: the real path when the session uses 2-octet AS numbers.
    As4Path(AsPath),
    LargeCommunities(Vec<LargeCommunity>),
    /// An optional attribute we do not interpret; `flags` without the extended-length bit.
    Unknown {
        flags: u8,
        type_code: u8,
        value: Vec<u8>,
    },
}

impl PathAttribute {
    /// The attribute type code (RFC 4271 §5, IANA "BGP Path Attributes").
    pub fn type_code(&self) -> u8 {
        match self {
            PathAttribute::Origin(_) => ORIGIN,
            PathAttribute::AsPath(_) => AS_PATH,
            PathAttribute::NextHop(_) => NEXT_HOP,
            PathAttribute::MultiExitDisc(_) => MULTI_EXIT_DISC,
            PathAttribute::LocalPref(_) => LOCAL_PREF,
            PathAttribute::AtomicAggregate => ATOMIC_AGGREGATE,
            PathAttribute::Communities(_) => COMMUNITIES,
            PathAttribute::MpReachNlri(_) => MP_REACH_NLRI,
            PathAttribute::MpUnreachNlri(_) => MP_UNREACH_NLRI,
            PathAttribute::As4Path(_) => AS4_PATH,
            PathAttribute::LargeCommunities(_) => LARGE_COMMUNITIES,
            PathAttribute::Unknown { type_code, .. } => *type_code,
        }
    }

    /// The Optional and Transitive flags the attribute must carry (RFC 4271 §5).
    fn expected_flags(type_code: u8) -> Option<u8> {
        match type_code {
            ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(FLAG_TRANSITIVE),
            MULTI_EXIT_DISC | MP_REACH_NLRI | MP_UNREACH_NLRI => Some(FLAG_OPTIONAL),
            COMMUNITIES | AS4_PATH | LARGE_COMMUNITIES => Some(FLAG_OPTIONAL | FLAG_TRANSITIVE),
            _ => None,
        }
    }

    /// Appends the attribute (flags, type, length, value) to `out`.
    pub(super) fn encode(&self, four_octet: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut value = Vec::new();
        match self {
            PathAttribute::Origin(origin) => value.push(*origin as u8),
            PathAttribute::AsPath(path) => path.encode(four_octet, &mut value)?,
            PathAttribute::NextHop(addr) => value.extend_from_slice(&addr.octets()),
            PathAttribute::MultiExitDisc(v) | PathAttribute::LocalPref(v) => {
                value.extend_from_slice(&v.to_be_bytes())
            }
            PathAttribute::AtomicAggregate => {}
            PathAttribute::Communities(communities) => {
                for community in communities {
                    value.extend_from_slice(&community.to_be_bytes());
                }
            }
            PathAttribute::MpReachNlri(reach) => {
                value.extend_from_slice(&reach.family.afi.to_be_bytes());
                value.push(reach.family.safi);
                let mut hops = Vec::new();
                for hop in &reach.next_hops {
                    match hop {
                        IpAddr::V4(v4) => hops.extend_from_slice(&v4.octets()),
                        IpAddr::V6(v6) => hops.extend_from_slice(&v6.octets()),
                    }
                }
                let hops_len =
                    u8::try_from(hops.len()).map_err(|_| EncodeError::TooManyEntries {
                        what: "MP_REACH next hops",
                        count: hops.len(),
                    })?;
                value.push(hops_len);
                value.extend_from_slice(&hops);
                value.push(0); // Reserved (RFC 4760 §3).
                for prefix in &reach.nlri {
                    nlri::encode_prefix(prefix, &mut value);
                }
            }
            PathAttribute::MpUnreachNlri(unreach) => {
                value.extend_from_slice(&unreach.family.afi.to_be_bytes());
                value.push(unreach.family.safi);
                for prefix in &unreach.withdrawn {
                    nlri::encode_prefix(prefix, &mut value);
                }
            }
            PathAttribute::As4Path(path) => path.encode(true, &mut value)?,
            PathAttribute::LargeCommunities(communities) => {
                for c in communities {
                    value.extend_from_slice(&c.global_admin.to_be_bytes());
                    value.extend_from_slice(&c.local_data_1.to_be_bytes());
                    value.extend_from_slice(&c.local_data_2.to_be_bytes());
                }
            }
            PathAttribute::Unknown { value: raw, .. } => value.extend_from_slice(raw),
        }
        let type_code = self.type_code();
        let base_flags = match self {
            PathAttribute::Unknown { flags, .. } => flags & !FLAG_EXTENDED_LENGTH,
            _ => Self::expected_flags(type_code).unwrap_or(FLAG_OPTIONAL),
        };
        if let Ok(short) = u8::try_from(value.len()) {
            out.extend_from_slice(&[base_flags, type_code, short]);
        } else {
            let long = u16::try_from(value.len()).map_err(|_| EncodeError::AttributeTooLong {
                type_code,
                len: value.len(),
            })?;
            out.extend_from_slice(&[base_flags | FLAG_EXTENDED_LENGTH, type_code]);
            out.extend_from_slice(&long.to_be_bytes());
        }
        out.extend_from_slice(&value);
        Ok(())
    }

    /// Reads one attribute value. `raw` is the whole attribute (flags, type, length, value),
    /// used as NOTIFICATION data where RFC 4271 §6.3 asks for it.
    pub(super) fn decode(
        flags: u8,
        type_code: u8,
        value: &[u8],
        raw: &[u8],
        four_octet: bool,
    ) -> Result<Option<PathAttribute>, DecodeError> {
        let update_error = |subcode: u8, reason: String| {
            DecodeError::notify(
                Notification::UPDATE_MESSAGE_ERROR,
                subcode,
                raw.to_vec(),
                reason,
            )
        };
        let withdraw = |what: &str, detail: String| {
            DecodeError::treat_as_withdraw(format!("UPDATE attribute {what}: {detail}"))
        };
        let Some(expected) = Self::expected_flags(type_code) else {
            // RFC 4271 §6.3: an unrecognized well-known attribute is an error; unrecognized
            // optional ones are accepted (and, as we re-advertise nothing, ignored).
            if flags & FLAG_OPTIONAL == 0 {
                return Err(update_error(
                    2,
                    format!("UPDATE attribute type {type_code} is well-known but unrecognized"),
                ));
            }
            return Ok(Some(PathAttribute::Unknown {
                flags: flags & !FLAG_EXTENDED_LENGTH,
                type_code,
                value: value.to_vec(),
            }));
        };
        if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
            let detail =
                format!("flags {flags:#04x} conflict with the type (expected {expected:#04x})");
            return Err(match type_code {
                // RFC 7606 §7.11: MP_REACH/MP_UNREACH errors reset the session.
                MP_REACH_NLRI | MP_UNREACH_NLRI => {
                    update_error(4, format!("UPDATE attribute {type_code}: {detail}"))
                }
                _ => withdraw(&type_code.to_string(), detail),
            });
        }
        let four_bytes = |what: &str| -> Result<u32, DecodeError> {
            match *value {
                [a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
                _ => Err(withdraw(what, format!("length {} is not 4", value.len()))),
            }
        };
        Ok(Some(match type_code {
            ORIGIN => match value {
                [0] => PathAttribute::Origin(Origin::Igp),
                [1] => PathAttribute::Origin(Origin::Egp),
                [2] => PathAttribute::Origin(Origin::Incomplete),
                _ => return Err(withdraw("ORIGIN", format!("invalid value {value:02x?}"))),
            },
            AS_PATH => PathAttribute::AsPath(
                AsPath::decode(value, four_octet).map_err(|detail| withdraw("AS_PATH", detail))?,
            ),
            NEXT_HOP => PathAttribute::NextHop(Ipv4Addr::from(four_bytes("NEXT_HOP")?)),
            MULTI_EXIT_DISC => PathAttribute::MultiExitDisc(four_bytes("MULTI_EXIT_DISC")?),
            LOCAL_PREF => PathAttribute::LocalPref(four_bytes("LOCAL_PREF")?),
            // RFC 7606 §7.6: a malformed ATOMIC_AGGREGATE is discarded.
            ATOMIC_AGGREGATE if !value.is_empty() => return Ok(None),
            ATOMIC_AGGREGATE => PathAttribute::AtomicAggregate,
            COMMUNITIES => {
                if !value.len().is_multiple_of(4) || value.is_empty() {
                    return Err(withdraw(
                        "COMMUNITIES",
                        format!("length {} is not a positive multiple of 4", value.len()),
                    ));
                }
                PathAttribute::Communities(
                    value
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            LARGE_COMMUNITIES => {
                if !value.len().is_multiple_of(12) || value.is_empty() {
                    return Err(withdraw(
                        "LARGE_COMMUNITY",
                        format!("length {} is not a positive multiple of 12", value.len()),
                    ));
                }
                PathAttribute::LargeCommunities(
                    value
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            local_data_1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                            local_data_2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                        })
                        .collect(),
                )
            }
            // RFC 6793 §6: a malformed AS4_PATH is discarded.
            AS4_PATH => match AsPath::decode(value, true) {
                Ok(path) => PathAttribute::As4Path(path),
                Err(_) => return Ok(None),
            },
            MP_REACH_NLRI => match decode_mp_reach(value) {
                Ok(Some(reach)) => PathAttribute::MpReachNlri(reach),
                Ok(None) => PathAttribute::Unknown {
                    flags: expected,
                    type_code,
                    value: value.to_vec(),
                },
                Err(detail) => {
                    return Err(update_error(
                        9,
                        format!("UPDATE attribute MP_REACH_NLRI: {detail}"),
                    ));
                }
            },
            MP_UNREACH_NLRI => match decode_mp_unreach(value) {
                Ok(Some(unreach)) => PathAttribute::MpUnreachNlri(unreach),
                Ok(None) => PathAttribute::Unknown {
                    flags: expected,
                    type_code,
                    value: value.to_vec(),
                },
                Err(detail) => {
                    return Err(update_error(
                        9,
                        format!("UPDATE attribute MP_UNREACH_NLRI: {detail}"),
                    ));
                }
            },
            _ => PathAttribute::Unknown {
                flags,
                type_code,
                value: value.to_vec(),
            },
        }))
    }
}

fn is_known_family(family: Family) -> bool {
    family == Family::IPV4_UNICAST || family == Family::IPV6_UNICAST
}

/// RFC 4760 §3. `Ok(None)` for a family we do not speak (kept raw, not interpreted).
fn decode_mp_reach(value: &[u8]) -> Result<Option<MpReach>, String> {
    let [afi_hi, afi_lo, safi, hops_len, rest @ ..] = value else {
        return Err(format!("{} bytes are too short", value.len()));
    };
    let family = Family {
        afi: u16::from_be_bytes([*afi_hi, *afi_lo]),
        safi: *safi,
    };
    if !is_known_family(family) {
        return Ok(None);
    }
    let hops_len = usize::from(*hops_len);
    if rest.len() < hops_len + 1 {
        return Err(format!("next hop length {hops_len} overruns the attribute"));
    }
    let (hop_bytes, rest) = rest.split_at(hops_len);
    let next_hops = match (family.afi, hop_bytes.len()) {
        (Family::AFI_IPV4, 4) => {
            vec![IpAddr::V4(Ipv4Addr::new(
                hop_bytes[0],
                hop_bytes[1],
                hop_bytes[2],
                hop_bytes[3],
            ))]
        }
        (Family::AFI_IPV6, 16 | 32) => hop_bytes
            .chunks_exact(16)
            .map(|chunk| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(chunk);
                IpAddr::V6(Ipv6Addr::from(octets))
            })
            .collect(),
        (_, len) => return Err(format!("next hop length {len} is invalid for {family}")),
    };
    // rest[0] is the reserved byte (RFC 4760 §3: ignored on receipt).
    let nlri = nlri::decode_prefixes(&rest[1..], family.afi)?;
    Ok(Some(MpReach {
        family,
        next_hops,
        nlri,
    }))
}

/// RFC 4760 §4. `Ok(None)` for a family we do not speak.
fn decode_mp_unreach(value: &[u8]) -> Result<Option<MpUnreach>, String> {
    let [afi_hi, afi_lo, safi, rest @ ..] = value else {
        return Err(format!("{} bytes are too short", value.len()));
    };
    let family = Family {
        afi: u16::from_be_bytes([*afi_hi, *afi_lo]),
        safi: *safi,
    };
    if !is_known_family(family) {
        return Ok(None);
    }
    let withdrawn = nlri::decode_prefixes(rest, family.afi)?;
    Ok(Some(MpUnreach { family, withdrawn }))
}
