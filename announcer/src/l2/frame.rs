//! Classifies a received Ethernet frame as ARP, NDP, or something else.

use etherparse::{EtherType, Ethernet2Header};

use super::arp::{self, ArpMessage};
use super::ndp::{self, NdpMessage};

/// A frame the responder acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Arp(ArpMessage),
    Ndp(NdpMessage),
}

/// Why a frame was not understood; counted as "malformed" and otherwise ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct Malformed(pub String);

/// Parses one Ethernet II frame. `Ok(None)`: well-formed but not ARP/NS/NA.
pub fn parse(bytes: &[u8]) -> Result<Option<Frame>, Malformed> {
    let (eth, payload) =
        Ethernet2Header::from_slice(bytes).map_err(|e| Malformed(format!("Ethernet: {e}")))?;
    match eth.ether_type {
        EtherType::ARP => arp::parse(&eth, payload)
            .map(|m| Some(Frame::Arp(m)))
            .map_err(Malformed),
        EtherType::IPV6 => ndp::parse(&eth, payload)
            .map(|m| m.map(Frame::Ndp))
            .map_err(Malformed),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::l2::{arp, ndp};

    fn valid_frames() -> Vec<Vec<u8>> {
        let mac = [2, 0, 0, 0, 0, 2];
        let v6: std::net::Ipv6Addr = "2001:db8::10".parse().expect("v6");
        vec![
            arp::build_gratuitous_request(mac, "192.0.2.10".parse().expect("v4")),
            arp::build_gratuitous_reply(mac, "192.0.2.10".parse().expect("v4")),
            ndp::build_unsolicited_advertisement(mac, v6, v6),
            ndp::tests::ns_frame(
                "2001:db8::1".parse().expect("v6"),
                ndp::solicited_node_group(v6),
                v6,
                255,
                true,
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn corrupted_valid_frames_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..120, any::<u8>()), 1..8),
            cut in 0usize..130,
        ) {
            let mut frame = valid_frames()[which].clone();
            for (at, value) in edits {
                if let Some(byte) = frame.get_mut(at) {
                    *byte = value;
                }
            }
            frame.truncate(cut.max(1));
            let _ = parse(&frame);
        }

        #[test]
        fn ethertypes_other_than_arp_and_ipv6_are_ignored(ethertype in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(ethertype != 0x0806 && ethertype != 0x86dd);
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&ethertype.to_be_bytes());
            frame.extend_from_slice(&body);
            prop_assert_eq!(parse(&frame), Ok(None));
        }
    }

    #[test]
    fn the_frames_we_build_parse_back() {
        for frame in valid_frames() {
            assert!(matches!(parse(&frame), Ok(Some(_))), "{frame:02x?}");
        }
    }
}
