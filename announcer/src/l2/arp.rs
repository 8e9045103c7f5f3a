//! ARP for IPv4 over Ethernet (RFC 826): parse requests and replies, build replies and the
//! two gratuitous forms (RFC 5227 §3 "ARP Announcement": a request whose sender and target
//! are the announced address; and the reply form some switches and routers prefer).

use std::net::Ipv4Addr;

use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacket, EtherType, Ethernet2Header};

use super::{BROADCAST_MAC, Mac, pad_frame};

/// Whether an ARP packet asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An ARP packet for IPv4 over Ethernet, with the Ethernet source it arrived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpMessage {
    pub op: ArpOp,
    pub eth_source: Mac,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl ArpMessage {
    /// A request whose sender and target address are the same announces a binding
    /// (gratuitous ARP) rather than asking for one.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// Parses the ARP payload of an Ethernet frame (after the 14-byte header).
/// Returns a description of what is wrong when the packet is not IPv4-over-Ethernet ARP.
pub fn parse(eth: &Ethernet2Header, payload: &[u8]) -> Result<ArpMessage, String> {
    let packet = ArpPacket::from_slice(payload).map_err(|e| format!("ARP: {e}"))?;
    let packet = packet.try_eth_ipv4().map_err(|e| format!("ARP: {e}"))?;
    let op = match packet.operation {
        ArpOperation::REQUEST => ArpOp::Request,
        ArpOperation::REPLY => ArpOp::Reply,
        other => return Err(format!("ARP: unknown operation {}", other.0)),
    };
    Ok(ArpMessage {
        op,
        eth_source: eth.source,
        sender_mac: packet.sender_mac,
        sender_ip: packet.sender_ipv4_addr(),
        target_mac: packet.target_mac,
        target_ip: packet.target_ipv4_addr(),
    })
}

fn frame(eth_dst: Mac, eth_src: Mac, packet: &ArpEthIpv4Packet) -> Vec<u8> {
    let eth = Ethernet2Header {
        source: eth_src,
        destination: eth_dst,
        ether_type: EtherType::ARP,
    };
    let mut out = Vec::with_capacity(60);
    out.extend_from_slice(&eth.to_bytes());
    out.extend_from_slice(&packet.to_bytes());
    pad_frame(out)
}

/// The reply to `request`: `address is-at our_mac`, sent unicast to the asker (RFC 826).
pub fn build_reply(our_mac: Mac, request: &ArpMessage) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: our_mac,
        sender_ipv4: request.target_ip.octets(),
        target_mac: request.sender_mac,
        target_ipv4: request.sender_ip.octets(),
    };
    frame(request.sender_mac, our_mac, &packet)
}

/// Gratuitous ARP, request form (RFC 5227 §3): broadcast "who-has A tell A" from `mac`.
pub fn build_gratuitous_request(mac: Mac, address: Ipv4Addr) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: mac,
        sender_ipv4: address.octets(),
        target_mac: [0; 6],
        target_ipv4: address.octets(),
    };
    frame(BROADCAST_MAC, mac, &packet)
}

/// ARP probe (RFC 5227 §2.1.1): broadcast "who-has A tell 0.0.0.0" from `mac`. Whoever holds
/// A answers it, so a node taking A over hears an incumbent it did not know about.
pub fn build_probe(mac: Mac, address: Ipv4Addr) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: mac,
        sender_ipv4: [0; 4],
        target_mac: [0; 6],
        target_ipv4: address.octets(),
    };
    frame(BROADCAST_MAC, mac, &packet)
}

/// Gratuitous ARP, reply form: broadcast "A is-at mac".
pub fn build_gratuitous_reply(mac: Mac, address: Ipv4Addr) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: mac,
        sender_ipv4: address.octets(),
        target_mac: BROADCAST_MAC,
        target_ipv4: address.octets(),
    };
    frame(BROADCAST_MAC, mac, &packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::frame::{Frame, parse as parse_frame};

    const ASKER: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const US: Mac = [0x02, 0, 0, 0, 0, 0x02];

    /// `who-has 192.0.2.10 tell 192.0.2.1` from ASKER, as on the wire (RFC 826 layout).
    fn request_bytes() -> Vec<u8> {
        let mut frame = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
        ];
        frame.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1]);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 10]);
        frame
    }

    fn parsed_request() -> ArpMessage {
        match parse_frame(&request_bytes()) {
            Ok(Some(Frame::Arp(m))) => m,
            other => panic!("not an ARP request: {other:?}"),
        }
    }

    #[test]
    fn request_bytes_parse_to_who_has() {
        let m = parsed_request();
        assert_eq!(m.op, ArpOp::Request);
        assert_eq!(m.sender_mac, ASKER);
        assert_eq!(m.sender_ip, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(m.target_ip, Ipv4Addr::new(192, 0, 2, 10));
        assert!(!m.is_gratuitous());
    }

    #[test]
    fn reply_is_unicast_to_the_asker_with_our_mac_and_the_exact_bytes() {
        let reply = build_reply(US, &parsed_request());
        let mut expected = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06];
        expected.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
        expected.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 10]);
        expected.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 1]);
        expected.resize(60, 0);
        assert_eq!(reply, expected);
    }

    #[test]
    fn gratuitous_forms_announce_the_address_from_and_to_itself() {
        let address = Ipv4Addr::new(192, 0, 2, 10);
        for (frame, op) in [
            (build_gratuitous_request(US, address), ArpOp::Request),
            (build_gratuitous_reply(US, address), ArpOp::Reply),
        ] {
            assert_eq!(&frame[..6], &BROADCAST_MAC, "broadcast");
            let Ok(Some(Frame::Arp(m))) = parse_frame(&frame) else {
                panic!("unparsable")
            };
            assert_eq!(m.op, op);
            assert_eq!(
                (m.sender_ip, m.target_ip, m.sender_mac),
                (address, address, US)
            );
            assert!(m.is_gratuitous());
        }
    }

    #[test]
    fn truncated_arp_is_malformed_not_a_panic() {
        let bytes = request_bytes();
        for len in 14..bytes.len() {
            assert!(parse_frame(&bytes[..len]).is_err(), "length {len}");
        }
    }
}
