//! IPv6 Neighbor Discovery (RFC 4861): parse Neighbor Solicitations and Advertisements, build
//! solicited and unsolicited Advertisements, and compute solicited-node groups.
//!
//! Validation follows RFC 4861 §7.1.1 (NS) and §7.1.2 (NA): hop limit 255, ICMP code 0, a
//! valid checksum, at least 24 octets, a non-multicast target, no zero-length option; an NS
//! from the unspecified address must go to a solicited-node group and carry no source
//! link-layer address option.

use std::net::Ipv6Addr;

use etherparse::{
    EtherType, Ethernet2Header, Icmpv6Slice, Icmpv6Type, IpNumber, Ipv6Header, PacketBuilder,
    icmpv6::NeighborAdvertisementHeader,
};

use super::{Mac, pad_frame};

/// ICMPv6 types (RFC 4861 §4.3, §4.4).
const TYPE_NS: u8 = 135;
const TYPE_NA: u8 = 136;
/// NDP option types (RFC 4861 §4.6.1).
const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;

/// All-nodes multicast address, `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A Neighbor Solicitation (RFC 4861 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solicitation {
    pub eth_source: Mac,
    pub source: Ipv6Addr,
    pub destination: Ipv6Addr,
    pub target: Ipv6Addr,
    pub source_lla: Option<Mac>,
}

impl Solicitation {
    /// Sent from `::` by a host checking that an address is free (RFC 4862 §5.4.2).
    pub fn is_dad(&self) -> bool {
        self.source.is_unspecified()
    }
}

/// A Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub eth_source: Mac,
    pub source: Ipv6Addr,
    pub target: Ipv6Addr,
    pub solicited: bool,
    pub override_flag: bool,
    pub target_lla: Option<Mac>,
}

/// An NDP message we care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdpMessage {
    Solicitation(Solicitation),
    Advertisement(Advertisement),
}

/// Parses the IPv6 payload of an Ethernet frame. `Ok(None)` means a valid IPv6 packet that is
/// not NS/NA (not ours to judge); `Err` describes a malformed NS/NA or IPv6 header.
pub fn parse(eth: &Ethernet2Header, payload: &[u8]) -> Result<Option<NdpMessage>, String> {
    let (ip, rest) = Ipv6Header::from_slice(payload).map_err(|e| format!("IPv6: {e}"))?;
    if ip.next_header != IpNumber::IPV6_ICMP {
        return Ok(None);
    }
    let len = usize::from(ip.payload_length);
    let icmp_bytes = rest
        .get(..len)
        .ok_or_else(|| format!("IPv6: payload length {len} exceeds the frame"))?;
    let icmp = Icmpv6Slice::from_slice(icmp_bytes).map_err(|e| format!("ICMPv6: {e}"))?;
    let kind = icmp.type_u8();
    if kind != TYPE_NS && kind != TYPE_NA {
        return Ok(None);
    }
    let name = if kind == TYPE_NS { "NS" } else { "NA" };
    if ip.hop_limit != 255 {
        return Err(format!("{name}: hop limit {} is not 255", ip.hop_limit));
    }
    if icmp.code_u8() != 0 {
        return Err(format!("{name}: ICMP code {} is not 0", icmp.code_u8()));
    }
    if icmp_bytes.len() < 24 {
        return Err(format!(
            "{name}: {} octets, fewer than 24",
            icmp_bytes.len()
        ));
    }
    if !icmp.is_checksum_valid(ip.source, ip.destination) {
        return Err(format!("{name}: bad ICMPv6 checksum"));
    }
    let body = icmp.payload();
    let target_bytes: [u8; 16] = body
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{name}: no target"))?;
    let target = Ipv6Addr::from(target_bytes);
    if target.is_multicast() {
        return Err(format!("{name}: target {target} is multicast"));
    }
    let options = parse_options(&body[16..]).map_err(|e| format!("{name}: {e}"))?;
    let source = ip.source_addr();
    if kind == TYPE_NS {
        let destination = ip.destination_addr();
        let source_lla = options.source_lla;
        if source.is_unspecified()
            && (source_lla.is_some() || destination != solicited_node_group(target))
        {
            return Err(
                "NS: from :: with a source link-layer option or not to the solicited-node group"
                    .into(),
            );
        }
        Ok(Some(NdpMessage::Solicitation(Solicitation {
            eth_source: eth.source,
            source,
            destination,
            target,
            source_lla,
        })))
    } else {
        let flags = NeighborAdvertisementHeader::from_bytes(icmp.bytes5to8());
        Ok(Some(NdpMessage::Advertisement(Advertisement {
            eth_source: eth.source,
            source,
            target,
            solicited: flags.solicited,
            override_flag: flags.r#override,
            target_lla: options.target_lla,
        })))
    }
}

#[derive(Default)]
struct LinkLayerOptions {
    source_lla: Option<Mac>,
    target_lla: Option<Mac>,
}

/// Walks the TLV options (RFC 4861 §4.6): each is type, length in units of 8 octets, value.
fn parse_options(mut bytes: &[u8]) -> Result<LinkLayerOptions, String> {
    let mut found = LinkLayerOptions::default();
    while !bytes.is_empty() {
        let (kind, units) = match bytes {
            [kind, units, ..] => (*kind, usize::from(*units)),
            _ => return Err("truncated option".into()),
        };
        if units == 0 {
            return Err(format!("option {kind} has length 0"));
        }
        let option = bytes
            .get(..units * 8)
            .ok_or_else(|| format!("option {kind} is truncated"))?;
        if kind == OPT_SOURCE_LLA || kind == OPT_TARGET_LLA {
            let mac: Mac = option[2..8]
                .try_into()
                .map_err(|_| "short link-layer option")?;
            if kind == OPT_SOURCE_LLA {
                found.source_lla = Some(mac);
            } else {
                found.target_lla = Some(mac);
            }
        }
        bytes = &bytes[units * 8..];
    }
    Ok(found)
}

/// The solicited-node multicast group of `address`: `ff02::1:ff` + its low 24 bits
/// (RFC 4291 §2.7.1).
pub fn solicited_node_group(address: Ipv6Addr) -> Ipv6Addr {
    let o = address.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast MAC of an IPv6 multicast group: `33:33` + its low 32 bits
/// (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Builds an NA for `target` with the Override flag and a target link-layer address option
/// (RFC 4861 §7.2.4), hop limit 255 so receivers accept it (§7.1.2).
fn build_advertisement(
    our_mac: Mac,
    source: Ipv6Addr,
    target: Ipv6Addr,
    destination: Ipv6Addr,
    eth_destination: Mac,
    solicited: bool,
) -> Vec<u8> {
    let flags = NeighborAdvertisementHeader {
        router: false,
        solicited,
        r#override: true,
    };
    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(&target.octets());
    payload.extend_from_slice(&[OPT_TARGET_LLA, 1]);
    payload.extend_from_slice(&our_mac);
    let builder = PacketBuilder::ethernet2(our_mac, eth_destination)
        .ipv6(source.octets(), destination.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(flags));
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // Writing into a Vec cannot fail and the payload is 24 bytes, far below any limit.
    if builder.write(&mut out, &payload).is_err() {
        out.clear();
    }
    debug_assert_eq!(
        Ethernet2Header::from_slice(&out)
            .map(|h| h.0.ether_type)
            .ok(),
        Some(EtherType::IPV6)
    );
    pad_frame(out)
}

/// The answer to `ns`: a solicited NA (S=1, O=1) sent to the asker, or to all nodes when the
/// asker has no address yet (RFC 4861 §7.2.4). `source` must be an address of the interface.
pub fn build_solicited_advertisement(our_mac: Mac, source: Ipv6Addr, ns: &Solicitation) -> Vec<u8> {
    if ns.is_dad() {
        build_unsolicited_advertisement(our_mac, source, ns.target)
    } else {
        let eth_destination = ns.source_lla.unwrap_or(ns.eth_source);
        build_advertisement(our_mac, source, ns.target, ns.source, eth_destination, true)
    }
}

/// An unsolicited NA with the Override flag to all nodes (RFC 4861 §7.2.6), sent on announce
/// and takeover so neighbours replace a stale link-layer address.
pub fn build_unsolicited_advertisement(
    our_mac: Mac,
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> Vec<u8> {
    build_advertisement(
        our_mac,
        source,
        target,
        ALL_NODES,
        multicast_mac(ALL_NODES),
        false,
    )
}

/// A Duplicate Address Detection probe (RFC 4862 §5.4.2): an NS for `target` from the
/// unspecified address to its solicited-node group. A node holding `target` answers with an
/// NA to all nodes, so a node taking it over hears an incumbent it did not know about.
pub fn build_dad_solicitation(our_mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node_group(target);
    let builder = PacketBuilder::ethernet2(our_mac, multicast_mac(group))
        .ipv6(Ipv6Addr::UNSPECIFIED.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation);
    let payload = target.octets();
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    if builder.write(&mut out, &payload).is_err() {
        out.clear();
    }
    pad_frame(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::l2::frame::{Frame, parse as parse_frame};

    pub const ASKER: Mac = [0x02, 0, 0, 0, 0, 0x01];
    pub const US: Mac = [0x02, 0, 0, 0, 0, 0x02];

    /// A Neighbor Solicitation built independently of the code under test.
    pub fn ns_frame(
        source: Ipv6Addr,
        destination: Ipv6Addr,
        target: Ipv6Addr,
        hop_limit: u8,
        slla: bool,
    ) -> Vec<u8> {
        let mut payload = target.octets().to_vec();
        if slla {
            payload.extend_from_slice(&[1, 1]);
            payload.extend_from_slice(&ASKER);
        }
        let builder = PacketBuilder::ethernet2(ASKER, multicast_mac(destination))
            .ipv6(source.octets(), destination.octets(), hop_limit)
            .icmpv6(Icmpv6Type::NeighborSolicitation);
        let mut out = Vec::new();
        builder.write(&mut out, &payload).expect("write");
        out
    }

    fn addr(text: &str) -> Ipv6Addr {
        text.parse().expect("address")
    }

    #[test]
    fn solicited_node_group_and_its_mac_follow_rfc_4291_and_2464() {
        let group = solicited_node_group(addr("2001:db8::12:3456"));
        assert_eq!(group, addr("ff02::1:ff12:3456"));
        assert_eq!(multicast_mac(group), [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn solicitation_to_the_group_parses_with_its_source_link_layer_address() {
        let target = addr("2001:db8::10");
        let frame = ns_frame(
            addr("2001:db8::1"),
            solicited_node_group(target),
            target,
            255,
            true,
        );
        let Ok(Some(Frame::Ndp(NdpMessage::Solicitation(ns)))) = parse_frame(&frame) else {
            panic!("not an NS")
        };
        assert_eq!(
            (ns.target, ns.source_lla, ns.is_dad()),
            (target, Some(ASKER), false)
        );
    }

    #[test]
    fn solicitation_with_a_hop_limit_below_255_is_refused() {
        let target = addr("2001:db8::10");
        let frame = ns_frame(
            addr("2001:db8::1"),
            solicited_node_group(target),
            target,
            64,
            true,
        );
        let error = parse_frame(&frame).expect_err("must be refused");
        assert!(error.0.contains("hop limit 64"), "{error}");
    }

    #[test]
    fn solicitation_with_a_bad_checksum_is_refused() {
        let target = addr("2001:db8::10");
        let mut frame = ns_frame(
            addr("2001:db8::1"),
            solicited_node_group(target),
            target,
            255,
            true,
        );
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        assert!(
            parse_frame(&frame)
                .expect_err("refused")
                .0
                .contains("checksum")
        );
    }

    #[test]
    fn dad_probe_must_go_to_the_solicited_node_group_without_link_layer_option() {
        let target = addr("2001:db8::10");
        let ok = ns_frame(
            Ipv6Addr::UNSPECIFIED,
            solicited_node_group(target),
            target,
            255,
            false,
        );
        assert!(
            matches!(parse_frame(&ok), Ok(Some(Frame::Ndp(NdpMessage::Solicitation(ns)))) if ns.is_dad())
        );
        let with_option = ns_frame(
            Ipv6Addr::UNSPECIFIED,
            solicited_node_group(target),
            target,
            255,
            true,
        );
        assert!(parse_frame(&with_option).is_err());
        let wrong_destination = ns_frame(Ipv6Addr::UNSPECIFIED, ALL_NODES, target, 255, false);
        assert!(parse_frame(&wrong_destination).is_err());
    }

    #[test]
    fn solicited_advertisement_goes_back_to_the_asker_with_s_and_o_flags() {
        let target = addr("2001:db8::10");
        let frame = ns_frame(
            addr("2001:db8::1"),
            solicited_node_group(target),
            target,
            255,
            true,
        );
        let Ok(Some(Frame::Ndp(NdpMessage::Solicitation(ns)))) = parse_frame(&frame) else {
            panic!("not an NS")
        };
        let reply = build_solicited_advertisement(US, target, &ns);
        assert_eq!(&reply[..6], &ASKER, "unicast to the asker's MAC");
        let (ip, _) = Ipv6Header::from_slice(&reply[14..]).expect("IPv6");
        assert_eq!(
            (ip.hop_limit, ip.destination_addr(), ip.source_addr()),
            (255, addr("2001:db8::1"), target)
        );
        let Ok(Some(Frame::Ndp(NdpMessage::Advertisement(na)))) = parse_frame(&reply) else {
            panic!("not an NA")
        };
        assert!(na.solicited && na.override_flag);
        assert_eq!((na.target, na.target_lla), (target, Some(US)));
    }

    #[test]
    fn dad_probe_is_answered_to_all_nodes_without_the_solicited_flag() {
        let target = addr("2001:db8::10");
        let frame = ns_frame(
            Ipv6Addr::UNSPECIFIED,
            solicited_node_group(target),
            target,
            255,
            false,
        );
        let Ok(Some(Frame::Ndp(NdpMessage::Solicitation(ns)))) = parse_frame(&frame) else {
            panic!("not an NS")
        };
        let reply = build_solicited_advertisement(US, target, &ns);
        assert_eq!(&reply[..6], &multicast_mac(ALL_NODES));
        let Ok(Some(Frame::Ndp(NdpMessage::Advertisement(na)))) = parse_frame(&reply) else {
            panic!("not an NA")
        };
        assert!(!na.solicited && na.override_flag);
    }

    #[test]
    fn unsolicited_advertisement_is_an_override_to_all_nodes_with_hop_limit_255() {
        let target = addr("2001:db8::10");
        let frame = build_unsolicited_advertisement(US, target, target);
        let (ip, _) = Ipv6Header::from_slice(&frame[14..]).expect("IPv6");
        assert_eq!((ip.hop_limit, ip.destination_addr()), (255, ALL_NODES));
        let Ok(Some(Frame::Ndp(NdpMessage::Advertisement(na)))) = parse_frame(&frame) else {
            panic!("not an NA")
        };
        assert!(na.override_flag && !na.solicited);
        assert_eq!(na.target_lla, Some(US));
    }

    #[test]
    fn options_with_zero_length_are_refused() {
        assert!(parse_options(&[1, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(
            parse_options(&[1, 2, 0, 0, 0, 0, 0, 0]).is_err(),
            "claims 16 octets, has 8"
        );
        assert!(parse_options(&[]).is_ok());
    }
}
