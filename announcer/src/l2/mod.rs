//! Layer-2 announcements: answering ARP (IPv4) and Neighbor Solicitations (IPv6) for owned
//! addresses, and sending gratuitous ARP / unsolicited Neighbor Advertisements.
//!
//! ```text
//!   packet socket (socket.rs, one per interface)
//!        │ raw frame
//!        ▼
//!   frame::parse ──► arp.rs / ndp.rs (pure wire format)
//!        │ Frame
//!        ▼
//!   responder::decide(owned table, interface) ──► Reply frame | Conflict | nothing
//! ```
//! The wire format and the decision are pure and tested without sockets; `socket.rs` only
//! moves bytes and counts.

pub mod arp;
pub mod burst;
pub mod frame;
pub mod ndp;
pub mod responder;
pub mod socket;

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: Mac = [0xff; 6];

/// Ethernet frames shorter than 60 bytes (without FCS) are padded with zeros (IEEE 802.3).
pub(crate) fn pad_frame(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}
