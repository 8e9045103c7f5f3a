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
