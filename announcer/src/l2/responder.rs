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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::l2::frame::parse;
    use crate::l2::ndp::tests::{ASKER, US, ns_frame};

    const OTHER: Mac = [0x02, 0, 0, 0, 0, 0x03];

    fn me() -> InterfaceIdentity {
        InterfaceIdentity { mac: US }
    }

    fn owned(entries: &[(&str, Ownership)]) -> OwnedTable {
        entries
            .iter()
            .map(|(a, o)| (a.parse().expect("address"), *o))
            .collect()
    }

    fn arp_request(target: &str) -> Frame {
        Frame::Arp(ArpMessage {
            op: ArpOp::Request,
            eth_source: ASKER,
            sender_mac: ASKER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: [0; 6],
            target_ip: target.parse().expect("v4"),
        })
    }

    fn ns(target: &str) -> Frame {
        let target: Ipv6Addr = target.parse().expect("v6");
        let bytes = ns_frame(
            "2001:db8::1".parse().expect("v6"),
            ndp::solicited_node_group(target),
            target,
            255,
            true,
        );
        parse(&bytes).expect("valid").expect("NDP")
    }

    #[test]
    fn arp_requests_are_answered_only_for_layer2_addresses() {
        let table = owned(&[
            ("192.0.2.10", Ownership::Answer),
            ("192.0.2.11", Ownership::KernelAnswers),
        ]);
        let answered = decide(&me(), &table, &arp_request("192.0.2.10"));
        assert!(answered.reply.is_some());
        assert_eq!(
            answered.request_for,
            Some("192.0.2.10".parse().expect("ip"))
        );
        // VIP mode: the kernel answers; answering too would send two replies.
        assert_eq!(
            decide(&me(), &table, &arp_request("192.0.2.11")).reply,
            None
        );
        let unknown = decide(&me(), &table, &arp_request("192.0.2.99"));
        assert_eq!((unknown.reply, unknown.conflict), (None, None));
    }

    #[test]
    fn solicitations_are_answered_only_for_owned_layer2_addresses() {
        let table = owned(&[("2001:db8::10", Ownership::Answer)]);
        assert!(decide(&me(), &table, &ns("2001:db8::10")).reply.is_some());
        assert!(decide(&me(), &table, &ns("2001:db8::99")).reply.is_none());
        assert!(
            decide(&me(), &OwnedTable::new(), &ns("2001:db8::10"))
                .reply
                .is_none(),
            "withdrawn: silent"
        );
    }

    #[test]
    fn another_mac_announcing_an_owned_address_is_a_conflict_with_its_evidence() {
        let table = owned(&[
            ("192.0.2.10", Ownership::Answer),
            ("2001:db8::10", Ownership::KernelAnswers),
        ]);
        let garp = Frame::Arp(ArpMessage {
            op: ArpOp::Request,
            eth_source: OTHER,
            sender_mac: OTHER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 10),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(192, 0, 2, 10),
        });
        let conflict = decide(&me(), &table, &garp).conflict.expect("conflict");
        assert_eq!(
            (conflict.other_mac, conflict.evidence),
            (OTHER, "gratuitous-arp")
        );

        let reply = Frame::Arp(ArpMessage {
            op: ArpOp::Reply,
            eth_source: OTHER,
            sender_mac: OTHER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 10),
            target_mac: ASKER,
            target_ip: Ipv4Addr::new(192, 0, 2, 1),
        });
        assert_eq!(
            decide(&me(), &table, &reply).conflict.map(|c| c.evidence),
            Some("arp-reply")
        );

        let na = Frame::Ndp(NdpMessage::Advertisement(ndp::Advertisement {
            eth_source: OTHER,
            source: "2001:db8::10".parse().expect("v6"),
            target: "2001:db8::10".parse().expect("v6"),
            solicited: false,
            override_flag: true,
            target_lla: Some(OTHER),
        }));
        assert_eq!(
            decide(&me(), &table, &na).conflict.map(|c| c.evidence),
            Some("neighbor-advertisement")
        );
    }

    #[test]
    fn our_own_mac_or_addresses_we_do_not_own_are_no_conflict() {
        let table = owned(&[("192.0.2.10", Ownership::Answer)]);
        let ours = Frame::Arp(ArpMessage {
            op: ArpOp::Reply,
            eth_source: US,
            sender_mac: US,
            sender_ip: Ipv4Addr::new(192, 0, 2, 10),
            target_mac: ASKER,
            target_ip: Ipv4Addr::new(192, 0, 2, 1),
        });
        assert_eq!(decide(&me(), &table, &ours).conflict, None);
        let not_ours = Frame::Arp(ArpMessage {
            sender_ip: Ipv4Addr::new(192, 0, 2, 50),
            sender_mac: OTHER,
            ..match ours {
                Frame::Arp(m) => m,
                Frame::Ndp(_) => unreachable!(),
            }
        });
        assert_eq!(decide(&me(), &table, &not_ours).conflict, None);
    }
}
