//! Turns routes into UPDATE messages for one session, packed with as many prefixes as fit in
//! 4096 bytes (RFC 4271 §4.3), grouped by identical attributes. Pure.
//!
//! Attributes follow RFC 4271 §5.1: ORIGIN IGP; AS_PATH empty towards iBGP and our AS towards
//! eBGP — as AS_TRANS plus an AS4_PATH when the session lacks 4-octet AS support and our AS
//! needs it (RFC 6793 §4.2.2); NEXT_HOP for IPv4, MP_REACH_NLRI with a global (+ link-local)
//! IPv6 next hop for IPv6 (RFC 4760, RFC 2545); LOCAL_PREF to iBGP peers only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::codec::{
    AS_TRANS, AsPath, Family, HEADER_LEN, MAX_MESSAGE_LEN, MpReach, MpUnreach, Origin,
    PathAttribute, Update,
};
use super::config::RouteAttributes;

/// LOCAL_PREF sent to iBGP peers when none is configured (the common default).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// How routes are sent on one Established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub local_asn: u32,
    pub ebgp: bool,
    pub four_octet_as: bool,
    /// `None`: IPv4 routes cannot be sent (no IPv4 next hop known).
    pub ipv4_next_hop: Option<Ipv4Addr>,
    /// Global, then optionally link-local. Empty: IPv6 routes cannot be sent.
    pub ipv6_next_hops: Vec<Ipv6Addr>,
    /// Families negotiated with the peer.
    pub families: Vec<Family>,
    /// Peer-wide attributes, overridden per route.
    pub defaults: RouteAttributes,
}

impl SessionPolicy {
    /// Whether a route for `prefix` can be sent on this session.
    pub fn can_send(&self, prefix: &IpNet) -> bool {
        let family = Family::of(prefix);
        self.families.contains(&family)
            && match prefix {
                IpNet::V4(_) => self.ipv4_next_hop.is_some(),
                IpNet::V6(_) => !self.ipv6_next_hops.is_empty(),
            }
    }

    fn path_attributes(&self, attrs: &RouteAttributes) -> Vec<PathAttribute> {
        let mut out = vec![PathAttribute::Origin(Origin::Igp)];
        if !self.ebgp {
            out.push(PathAttribute::AsPath(AsPath::default()));
        } else if self.four_octet_as || self.local_asn <= u32::from(u16::MAX) {
            out.push(PathAttribute::AsPath(AsPath::sequence(vec![
                self.local_asn,
            ])));
        } else {
            out.push(PathAttribute::AsPath(AsPath::sequence(vec![u32::from(
                AS_TRANS,
            )])));
            out.push(PathAttribute::As4Path(AsPath::sequence(vec![
                self.local_asn,
            ])));
        }
        let merged = self.defaults.overridden_by(attrs);
        if let Some(med) = merged.med {
            out.push(PathAttribute::MultiExitDisc(med));
        }
        if !self.ebgp {
            out.push(PathAttribute::LocalPref(
                merged.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            ));
        }
        if !merged.communities.is_empty() {
            out.push(PathAttribute::Communities(merged.communities));
        }
        if !merged.large_communities.is_empty() {
            out.push(PathAttribute::LargeCommunities(merged.large_communities));
        }
        out
    }

    /// UPDATEs announcing `routes` (those this session can carry), packed.
    pub fn announce<'a>(
        &self,
        routes: impl IntoIterator<Item = (&'a IpNet, &'a RouteAttributes)>,
    ) -> Vec<Update> {
        // Group by (family, attributes) so each group shares one attribute set.
        let mut groups: BTreeMap<(bool, &RouteAttributes), Vec<IpNet>> = BTreeMap::new();
        for (prefix, attrs) in routes {
            if self.can_send(prefix) {
                groups
                    .entry((prefix.addr().is_ipv6(), attrs))
                    .or_default()
                    .push(*prefix);
            }
        }
        let mut updates = Vec::new();
        for ((is_v6, attrs), prefixes) in groups {
            let mut base = self.path_attributes(attrs);
            if is_v6 {
                let next_hops: Vec<IpAddr> =
                    self.ipv6_next_hops.iter().map(|a| IpAddr::V6(*a)).collect();
                // MP_REACH overhead: 4-byte extended header, AFI/SAFI 3, length 1, next hops,
                // reserved 1.
                let fixed =
                    HEADER_LEN + 4 + encoded_len(&base) + 4 + 3 + 1 + 16 * next_hops.len() + 1;
                for chunk in pack(&prefixes, MAX_MESSAGE_LEN - fixed) {
                    let mut attributes = base.clone();
                    attributes.push(PathAttribute::MpReachNlri(MpReach {
                        family: Family::IPV6_UNICAST,
                        next_hops: next_hops.clone(),
                        nlri: chunk,
                    }));
                    updates.push(Update {
                        withdrawn: vec![],
                        attributes,
                        nlri: vec![],
                    });
                }
            } else {
                if let Some(next_hop) = self.ipv4_next_hop {
                    base.insert(2.min(base.len()), PathAttribute::NextHop(next_hop));
                }
                let fixed = HEADER_LEN + 4 + encoded_len(&base);
                for chunk in pack(&prefixes, MAX_MESSAGE_LEN - fixed) {
                    updates.push(Update {
                        withdrawn: vec![],
                        attributes: base.clone(),
                        nlri: chunk,
                    });
                }
            }
        }
        updates
    }

    /// UPDATEs withdrawing `prefixes` (those this session can carry), packed.
    pub fn withdraw<'a>(&self, prefixes: impl IntoIterator<Item = &'a IpNet>) -> Vec<Update> {
        let (v6, v4): (Vec<IpNet>, Vec<IpNet>) = prefixes
            .into_iter()
            .filter(|p| self.can_send(p))
            .partition(|p| p.addr().is_ipv6());
        let mut updates = Vec::new();
        for chunk in pack(&v4, MAX_MESSAGE_LEN - HEADER_LEN - 4) {
            updates.push(Update {
                withdrawn: chunk,
                attributes: vec![],
                nlri: vec![],
            });
        }
        for chunk in pack(&v6, MAX_MESSAGE_LEN - HEADER_LEN - 4 - 4 - 3) {
            updates.push(Update {
                withdrawn: vec![],
                attributes: vec![PathAttribute::MpUnreachNlri(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: chunk,
                })],
                nlri: vec![],
            });
        }
        updates
    }
}

/// Bytes the attributes take on the wire, with the widest AS encoding (an upper bound).
fn encoded_len(attributes: &[PathAttribute]) -> usize {
    let mut out = Vec::new();
    for attribute in attributes {
        let update = Update {
            withdrawn: vec![],
            attributes: vec![attribute.clone()],
            nlri: vec![],
        };
        // Only lengths matter here; an attribute that cannot be encoded adds nothing.
        if let Ok(bytes) =
            super::codec::Message::Update(update).to_bytes(super::codec::CodecContext {
                four_octet_as: true,
            })
        {
            out.push(bytes.len() - HEADER_LEN - 4);
        }
    }
    out.iter().sum::<usize>() + attributes.len() // +1 per attribute for a possible extended length
}

/// Splits prefixes into chunks whose NLRI encoding fits in `budget` bytes.
fn pack(prefixes: &[IpNet], budget: usize) -> Vec<Vec<IpNet>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for prefix in prefixes {
        let len = Update::prefix_wire_len(prefix);
        if used + len > budget && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(*prefix);
        used += len;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
