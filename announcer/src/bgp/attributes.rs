//! BGP path attributes of a route (RFC 1997 communities, RFC 8092 large communities,
//! LOCAL_PREF, MED) and their one parser, shared by announcements (`model.rs`) and peers
//! (`config.rs`). Pure: the rest of the crate only sees the typed [`RouteAttributes`].

use proto::announcer::v1 as pb;

use super::codec::LargeCommunity;

/// An attribute that failed to parse: its path in the request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidAttribute {
    pub field: String,
    pub message: String,
}

/// Attributes sent with a route (per peer, overridden per announcement).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteAttributes {
    /// RFC 1997 communities, `asn << 16 | value`.
    pub communities: Vec<u32>,
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF, iBGP only (default 100 there).
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
}

impl RouteAttributes {
    /// `self` with every field set in `over` replacing ours (announcement over peer).
    pub fn overridden_by(&self, over: &RouteAttributes) -> RouteAttributes {
        RouteAttributes {
            communities: if over.communities.is_empty() {
                self.communities.clone()
            } else {
                over.communities.clone()
            },
            large_communities: if over.large_communities.is_empty() {
                self.large_communities.clone()
            } else {
                over.large_communities.clone()
            },
            local_pref: over.local_pref.or(self.local_pref),
            med: over.med.or(self.med),
        }
    }

    /// Parses the gRPC form; `field` is its path in the request (e.g. `announcements[0].bgp`
    /// or `peer.attributes`) and prefixes the field of an error.
    pub fn from_proto(attrs: &pb::BgpAttributes, field: &str) -> Result<Self, InvalidAttribute> {
        let mut communities = Vec::new();
        for (i, text) in attrs.communities.iter().enumerate() {
            communities.push(parse_community(text).map_err(|why| InvalidAttribute {
                field: format!("{field}.communities[{i}]"),
                message: format!("{text:?} {why}"),
            })?);
        }
        let mut large_communities = Vec::new();
        for (i, text) in attrs.large_communities.iter().enumerate() {
            large_communities.push(parse_large_community(text).map_err(|why| {
                InvalidAttribute {
                    field: format!("{field}.large_communities[{i}]"),
                    message: format!("{text:?} {why}"),
                }
            })?);
        }
        Ok(RouteAttributes {
            communities,
            large_communities,
            local_pref: attrs.local_pref,
            med: attrs.med,
        })
    }

    /// The gRPC form.
    pub fn to_proto(&self) -> pb::BgpAttributes {
        pb::BgpAttributes {
            communities: self
                .communities
                .iter()
                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                .collect(),
            large_communities: self
                .large_communities
                .iter()
                .map(|c| format!("{}:{}:{}", c.global_admin, c.local_data_1, c.local_data_2))
                .collect(),
            local_pref: self.local_pref,
            med: self.med,
        }
    }
}

/// `ASN:VALUE`, both 16 bit (RFC 1997).
pub fn parse_community(text: &str) -> Result<u32, &'static str> {
    let (asn, value) = text.split_once(':').ok_or("is not ASN:VALUE")?;
    let asn: u16 = asn
        .trim()
        .parse()
        .map_err(|_| "has an ASN that is not a 16-bit number")?;
    let value: u16 = value
        .trim()
        .parse()
        .map_err(|_| "has a VALUE that is not a 16-bit number")?;
    Ok(u32::from(asn) << 16 | u32::from(value))
}

/// `GLOBAL:LOCAL1:LOCAL2`, 32 bit each (RFC 8092).
pub fn parse_large_community(text: &str) -> Result<LargeCommunity, &'static str> {
    let parts: Vec<&str> = text.split(':').collect();
    let [global, local1, local2] = parts.as_slice() else {
        return Err("is not GLOBAL:LOCAL1:LOCAL2");
    };
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| "has a part that is not a 32-bit number")
    };
    Ok(LargeCommunity {
        global_admin: number(global)?,
        local_data_1: number(local1)?,
        local_data_2: number(local2)?,
    })
}
