//! Gratuitous announcement bursts of one interface.
//!
//! On announce, takeover and link up, an address is announced `count` times, `interval`
//! apart (gratuitous ARP in request and reply form for IPv4, an unsolicited NA with Override
//! for IPv6). The first round goes out at once, in the caller, so a takeover is not delayed by
//! a task switch. Later rounds are kept in one table per interface and sent by one task, so
//! 10,000 addresses cost 10,000 small table entries rather than 10,000 timers; withdrawing an
//! address removes its entry, which cancels the rest of its burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::responder::InterfaceIdentity;
use super::{arp, ndp};
use crate::metrics::Metrics;
use crate::sys::packet::PacketSocket;

/// How gratuitous announcements are repeated.
#[derive(Debug, Clone, Copy)]
pub struct GarpConfig {
    pub count: u32,
    pub interval: Duration,
}

/// Gratuitous ARP in request and reply form (IPv4, RFC 5227 §3) or an unsolicited NA with
/// Override to all nodes (IPv6, RFC 4861 §7.2.6).
pub fn gratuitous_frames(identity: &InterfaceIdentity, address: IpAddr) -> Vec<Vec<u8>> {
    match address {
        IpAddr::V4(v4) => vec![
            arp::build_gratuitous_request(identity.mac, v4),
            arp::build_gratuitous_reply(identity.mac, v4),
        ],
        IpAddr::V6(v6) => vec![ndp::build_unsolicited_advertisement(
            identity.mac,
            identity.ndp_source(v6),
            v6,
        )],
    }
}

/// The probe sent before the first gratuitous round (ARP probe, or a DAD Neighbor
/// Solicitation): an incumbent answers it, and its answer is a conflict this node reports.
/// Sent in the same round, not a probe-wait earlier, so a takeover is not delayed.
pub fn probe_frame(identity: &InterfaceIdentity, address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => arp::build_probe(identity.mac, v4),
        IpAddr::V6(v6) => ndp::build_dad_solicitation(identity.mac, v6),
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    next_due: Instant,
    rounds_left: u32,
}

/// What a round needs to send.
#[derive(Clone)]
struct Sender {
    interface: String,
    socket: Arc<PacketSocket>,
    identity: Arc<RwLock<InterfaceIdentity>>,
    metrics: Metrics,
}

impl Sender {
    /// One round of gratuitous frames; the first round of a burst starts with the probe.
    fn send_round(&self, address: IpAddr, with_probe: bool) {
        let Ok(identity) = self.identity.read().map(|i| i.clone()) else {
            return;
        };
        if with_probe && let Err(e) = self.socket.send(&probe_frame(&identity, address)) {
            self.metrics.send_errors.inc();
            tracing::debug!(interface = %self.interface, %address, "sending probe: {e}");
        }
        for frame in gratuitous_frames(&identity, address) {
            match self.socket.send(&frame) {
                Ok(_) => self.metrics.gratuitous_sent.of(address).inc(),
                Err(e) => {
                    self.metrics.send_errors.inc();
                    tracing::debug!(interface = %self.interface, %address, "sending gratuitous announcement: {e}");
                    0
                }
            };
        }
    }
}

/// The burst table and task of one interface.
pub struct BurstScheduler {
    garp: GarpConfig,
    sender: Sender,
    pending: Arc<Mutex<HashMap<IpAddr, Pending>>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for BurstScheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BurstScheduler {
    pub fn start(
        interface: String,
        socket: Arc<PacketSocket>,
        identity: Arc<RwLock<InterfaceIdentity>>,
        metrics: Metrics,
        garp: GarpConfig,
    ) -> Self {
        let sender = Sender {
            interface,
            socket,
            identity,
            metrics,
        };
        let pending = Arc::new(Mutex::new(HashMap::new()));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            sender.clone(),
            Arc::clone(&pending),
            Arc::clone(&wake),
            garp.interval,
        ));
        Self {
            garp,
            sender,
            pending,
            wake,
            task,
        }
    }

    /// Announces `address` now and schedules the remaining rounds (restarting a running burst).
    pub fn announce(&self, address: IpAddr) {
        if self.garp.count == 0 {
            return;
        }
        self.sender.send_round(address, true);
        if self.garp.count > 1
            && let Ok(mut pending) = self.pending.lock()
        {
            let next = Pending {
                next_due: Instant::now() + self.garp.interval,
                rounds_left: self.garp.count - 1,
            };
            pending.insert(address, next);
            self.wake.notify_one();
        }
    }

    /// Cancels the rest of `address`'s burst.
    pub fn cancel(&self, address: IpAddr) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&address);
        }
    }
}

/// Sends due rounds; sleeps until the earliest next round or until woken by a new burst.
async fn run(
    sender: Sender,
    pending: Arc<Mutex<HashMap<IpAddr, Pending>>>,
    wake: Arc<Notify>,
    interval: Duration,
) {
    // Rounds due within this slack are sent together, so addresses announced together stay
    // together instead of waking the task once each.
    const SLACK: Duration = Duration::from_millis(5);
    loop {
        let earliest = pending
            .lock()
            .ok()
            .and_then(|p| p.values().map(|b| b.next_due).min());
        match earliest {
            None => wake.notified().await,
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = wake.notified() => continue,
                }
            }
        }
        let now = Instant::now();
        let due: Vec<IpAddr> = match pending.lock() {
            Ok(mut pending) => {
                let mut due = Vec::new();
                for (address, burst) in pending.iter_mut() {
                    if burst.next_due <= now + SLACK {
                        due.push(*address);
                        burst.rounds_left -= 1;
                        burst.next_due += interval;
                    }
                }
                pending.retain(|_, b| b.rounds_left > 0);
                due
            }
            Err(_) => return,
        };
        for address in due {
            sender.send_round(address, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::l2::Mac;
    use crate::l2::arp::ArpOp;
    use crate::l2::frame::{Frame, parse};
    use crate::l2::ndp::NdpMessage;
    use crate::l2::responder::{Ownership, decide};

    const US: Mac = [0x02, 0, 0, 0, 0, 0x0a];
    const INCUMBENT: Mac = [0x02, 0, 0, 0, 0, 0x0b];

    fn identity(mac: Mac) -> InterfaceIdentity {
        InterfaceIdentity { mac }
    }

    #[test]
    fn an_arp_probe_asks_for_the_address_from_no_address_and_the_incumbent_answers_it() {
        let address = Ipv4Addr::new(192, 0, 2, 10);
        let probe = probe_frame(&identity(US), IpAddr::V4(address));
        let Ok(Some(Frame::Arp(message))) = parse(&probe) else {
            panic!("not ARP");
        };
        assert_eq!(message.op, ArpOp::Request);
        assert_eq!(message.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(message.target_ip, address);
        assert!(!message.is_gratuitous());
        // The incumbent (holding the address) answers, to our MAC ...
        let incumbent_owns = [(IpAddr::V4(address), Ownership::Answer)].into();
        let reply = decide(
            &identity(INCUMBENT),
            &incumbent_owns,
            &parse(&probe).unwrap().unwrap(),
        )
        .reply
        .expect("the incumbent defends its address");
        // ... and the newcomer, now owning it, sees the conflict.
        let newcomer_owns = [(IpAddr::V4(address), Ownership::Answer)].into();
        let seen = decide(
            &identity(US),
            &newcomer_owns,
            &parse(&reply).unwrap().unwrap(),
        );
        assert_eq!(seen.conflict.map(|c| c.other_mac), Some(INCUMBENT));
    }

    #[test]
    fn a_dad_probe_is_answered_to_all_nodes_and_the_newcomer_sees_the_incumbent() {
        let address: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let probe = probe_frame(&identity(US), IpAddr::V6(address));
        let Ok(Some(Frame::Ndp(NdpMessage::Solicitation(ns)))) = parse(&probe) else {
            panic!("not an NS");
        };
        assert!(ns.is_dad());
        assert_eq!(ns.target, address);
        let owns = [(IpAddr::V6(address), Ownership::Answer)].into();
        let reply = decide(
            &identity(INCUMBENT),
            &owns,
            &parse(&probe).unwrap().unwrap(),
        )
        .reply
        .expect("the incumbent answers DAD");
        let seen = decide(&identity(US), &owns, &parse(&reply).unwrap().unwrap());
        assert_eq!(seen.conflict.map(|c| c.other_mac), Some(INCUMBENT));
    }
}
