//! The responder's decision, with no I/O: given the addresses owned on one interface and a
//! parsed frame, what to send back and whether the frame reveals a conflict.
//!
//! Source address of Neighbor Advertisements: the target address itself. RFC 4861 §7.2.4 asks
//! for "an address assigned to the interface"; the announced address is logically this
//! node's, and it is what the Linux kernel uses for addresses it owns. The interface's
//! link-local address was tried first and measured: `ndisc6` (and hosts that check the same
//! way) discard an NA whose source is not the target, while the kernel accepts both (MetalLB
//! #2685 is this bug).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use super::arp::{self, ArpMessage, ArpOp};
use super::frame::Frame;
use super::ndp::{self, NdpMessage};
use super::{Mac, format_mac};

/// Who answers for an owned address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Layer-2 mode: the address is on no interface; the responder answers.
    Answer,
    /// VIP mode: the kernel answers (the address is on the interface); the responder only
    /// watches for conflicts.
    KernelAnswers,
}

/// What the responder needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceIdentity {
    pub mac: Mac,
}

impl InterfaceIdentity {
    /// The source address for NAs about `target` (see the module doc).
    pub fn ndp_source(&self, target: Ipv6Addr) -> Ipv6Addr {
        target
    }
}

/// Addresses owned on one interface.
pub type OwnedTable = HashMap<IpAddr, Ownership>;

/// Another host claims an address we own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictSeen {
    pub address: IpAddr,
    pub other_mac: Mac,
    /// "arp-reply", "gratuitous-arp", "arp-request" or "neighbor-advertisement".
    pub evidence: &'static str,
}

impl ConflictSeen {
    pub fn describe(&self) -> String {
        format!(
            "{} is also claimed by {} ({})",
            self.address,
            format_mac(&self.other_mac),
            self.evidence
        )
    }
}

/// The outcome of one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The frame was an ARP request or NS for this address (counted as a request).
    pub request_for: Option<IpAddr>,
    /// Frame to send back.
    pub reply: Option<Vec<u8>>,
    pub conflict: Option<ConflictSeen>,
}

/// Decides what to do with `frame` received on an interface with identity `me`.
pub fn decide(me: &InterfaceIdentity, owned: &OwnedTable, frame: &Frame) -> Decision {
    match frame {
        Frame::Arp(message) => decide_arp(me, owned, message),
        Frame::Ndp(NdpMessage::Solicitation(ns)) => {
            let mut decision = Decision {
                request_for: Some(IpAddr::V6(ns.target)),
                ..Decision::default()
            };
            if owned.get(&IpAddr::V6(ns.target)) == Some(&Ownership::Answer) {
                // Answers NS to the solicited-node group, unicast NUD probes and DAD probes
                // alike (RFC 4861 §7.2.3-7.2.4).
                decision.reply = Some(ndp::build_solicited_advertisement(
                    me.mac,
                    me.ndp_source(ns.target),
                    ns,
                ));
            }
            decision
        }
        Frame::Ndp(NdpMessage::Advertisement(na)) => {
            let address = IpAddr::V6(na.target);
            let other_mac = na.target_lla.unwrap_or(na.eth_source);
            let conflict =
                (owned.contains_key(&address) && other_mac != me.mac).then_some(ConflictSeen {
                    address,
                    other_mac,
                    evidence: "neighbor-advertisement",
                });
            Decision {
                conflict,
                ..Decision::default()
            }
        }
    }
}

fn decide_arp(me: &InterfaceIdentity, owned: &OwnedTable, message: &ArpMessage) -> Decision {
    let mut decision = Decision::default();
    let sender = IpAddr::V4(message.sender_ip);
    if owned.contains_key(&sender) && message.sender_mac != me.mac {
        let evidence = match (message.op, message.is_gratuitous()) {
            (ArpOp::Reply, false) => "arp-reply",
            (_, true) => "gratuitous-arp",
            (ArpOp::Request, false) => "arp-request",
        };
        decision.conflict = Some(ConflictSeen {
            address: sender,
            other_mac: message.sender_mac,
            evidence,
        });
    }
    if message.op == ArpOp::Request && !message.is_gratuitous() {
        let target = IpAddr::V4(message.target_ip);
        decision.request_for = Some(target);
        if owned.get(&target) == Some(&Ownership::Answer) {
            decision.reply = Some(arp::build_reply(me.mac, message));
        }
    }
    decision
}
