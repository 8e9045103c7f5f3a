//! Packet I/O of the layer-2 responder: one packet socket per interface in use, a reader thread
//! that feeds frames to [`responder::decide`], and a [`BurstScheduler`] for gratuitous
//! announcements.
//!
//! The owned-address table of an interface sits behind a `RwLock` read by the reader thread and
//! written by the engine; a withdrawal takes effect for the very next frame.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proto::announcer::v1::{self as pb, event::Kind};
use std::sync::atomic::{AtomicBool, Ordering};

use super::burst::{BurstScheduler, GarpConfig};
use super::responder::{self, InterfaceIdentity, OwnedTable, Ownership};
use super::{Mac, format_mac, frame, ndp};
use crate::backend::EventSender;
use crate::events;
use crate::metrics::Metrics;
use crate::sys::packet::{PacketSocket, PacketType};

/// How long the reader thread blocks before checking whether it should stop.
const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// Conflict events for one address are reported at most this often (the metric counts all).
const CONFLICT_EVENT_INTERVAL: Duration = Duration::from_secs(5);

/// All packet sockets of this announcer.
pub struct L2Runtime {
    metrics: Metrics,
    events: EventSender,
    garp: GarpConfig,
    responders: Mutex<HashMap<u32, Arc<InterfaceResponder>>>,
}

struct InterfaceResponder {
    name: String,
    socket: Arc<PacketSocket>,
    identity: Arc<RwLock<InterfaceIdentity>>,
    owned: Arc<RwLock<OwnedTable>>,
    bursts: BurstScheduler,
    /// Tells the reader thread to exit (it checks every [`READ_TIMEOUT`]).
    stop: Arc<AtomicBool>,
}

impl Drop for InterfaceResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An interface as the runtime needs it.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub identity: InterfaceIdentity,
}

impl L2Runtime {
    pub fn new(metrics: Metrics, events: EventSender, garp: GarpConfig) -> Self {
        Self {
            metrics,
            events,
            garp,
            responders: Mutex::new(HashMap::new()),
        }
    }

    fn responder(&self, link: &Link) -> io::Result<Arc<InterfaceResponder>> {
        let mut responders = self
            .responders
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if let Some(existing) = responders.get(&link.index) {
            if let Ok(mut identity) = existing.identity.write() {
                *identity = link.identity.clone();
            }
            return Ok(Arc::clone(existing));
        }
        let socket = Arc::new(PacketSocket::open_blocking(link.index, READ_TIMEOUT)?);
        let stop = Arc::new(AtomicBool::new(false));
        let identity = Arc::new(RwLock::new(link.identity.clone()));
        let owned = Arc::new(RwLock::new(OwnedTable::new()));
        let context = ReadContext {
            interface: link.name.clone(),
            socket: Arc::clone(&socket),
            identity: Arc::clone(&identity),
            owned: Arc::clone(&owned),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            stop: Arc::clone(&stop),
        };
        // A thread of its own, blocked in recv: a request is answered without going through
        // the async runtime, and a large Sync on the runtime cannot delay it.
        std::thread::Builder::new()
            .name(format!("l2-{}", link.name))
            .spawn(move || read_loop(context))?;
        let bursts = BurstScheduler::start(
            link.name.clone(),
            Arc::clone(&socket),
            Arc::clone(&identity),
            self.metrics.clone(),
            self.garp,
        );
        let responder = Arc::new(InterfaceResponder {
            name: link.name.clone(),
            socket,
            identity,
            owned,
            bursts,
            stop,
        });
        responders.insert(link.index, Arc::clone(&responder));
        tracing::info!(interface = %link.name, "packet socket opened");
        Ok(responder)
    }

    /// Starts answering for (or watching) `address` on `link`, joins its solicited-node group
    /// (IPv6, answered addresses) and sends a gratuitous burst.
    pub fn own(&self, link: &Link, address: IpAddr, ownership: Ownership) -> io::Result<()> {
        let responder = self.responder(link)?;
        let previous = responder
            .owned
            .write()
            .map_err(|_| io::Error::other("poisoned"))?
            .insert(address, ownership);
        if let IpAddr::V6(v6) = address
            && ownership == Ownership::Answer
            && previous != Some(Ownership::Answer)
        {
            let group = ndp::multicast_mac(ndp::solicited_node_group(v6));
            responder.socket.set_multicast_membership(group, true)?;
        }
        self.gratuitous(&responder, address);
        Ok(())
    }

    /// Stops answering for `address` on interface `index` at once; closes the socket when the
    /// interface owns nothing any more.
    pub fn release(&self, index: u32, address: IpAddr) {
        let Ok(mut responders) = self.responders.lock() else {
            return;
        };
        let Some(responder) = responders.get(&index).cloned() else {
            return;
        };
        let removed = responder
            .owned
            .write()
            .ok()
            .and_then(|mut t| t.remove(&address));
        responder.bursts.cancel(address);
        if let (IpAddr::V6(v6), Some(Ownership::Answer)) = (address, removed) {
            let group = ndp::multicast_mac(ndp::solicited_node_group(v6));
            if let Err(e) = responder.socket.set_multicast_membership(group, false) {
                tracing::warn!(interface = %responder.name, %address, "leaving multicast group: {e}");
            }
        }
        if responder.owned.read().map(|t| t.is_empty()).unwrap_or(true) {
            responders.remove(&index);
            tracing::info!(interface = %responder.name, "packet socket closed");
        }
    }

    /// Re-sends gratuitous bursts for everything owned on interface `index` (link came up).
    pub fn reannounce(&self, index: u32) {
        let Some(responder) = self
            .responders
            .lock()
            .ok()
            .and_then(|r| r.get(&index).cloned())
        else {
            return;
        };
        let addresses: Vec<IpAddr> = responder
            .owned
            .read()
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default();
        for address in addresses {
            self.gratuitous(&responder, address);
        }
    }

    fn gratuitous(&self, responder: &Arc<InterfaceResponder>, address: IpAddr) {
        responder.bursts.announce(address);
    }

    /// Releases everything (shutdown).
    pub fn clear(&self) {
        if let Ok(mut responders) = self.responders.lock() {
            responders.clear();
        }
    }
}

struct ReadContext {
    stop: Arc<AtomicBool>,
    interface: String,
    socket: Arc<PacketSocket>,
    identity: Arc<RwLock<InterfaceIdentity>>,
    owned: Arc<RwLock<OwnedTable>>,
    metrics: Metrics,
    events: EventSender,
}

fn read_loop(ctx: ReadContext) {
    let mut buf = vec![0u8; 2048];
    let mut last_conflict: HashMap<IpAddr, Instant> = HashMap::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        match ctx.socket.recv_wait(&mut buf) {
            Ok((_, PacketType::Outgoing)) => {}
            Ok((len, _)) => handle_frame(&ctx, &buf[..len], &mut last_conflict),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::warn!(interface = %ctx.interface, "receiving: {e}");
                let _ = ctx
                    .events
                    .send(events::error(&ctx.interface, format!("packet socket: {e}")));
                std::thread::sleep(READ_TIMEOUT);
            }
        }
    }
    tracing::debug!(interface = %ctx.interface, "reader stopped");
}

fn handle_frame(ctx: &ReadContext, bytes: &[u8], last_conflict: &mut HashMap<IpAddr, Instant>) {
    let parsed = match frame::parse(bytes) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(e) => {
            ctx.metrics.malformed_frames.inc();
            tracing::debug!(interface = %ctx.interface, "{e}");
            return;
        }
    };
    let Ok(identity) = ctx.identity.read().map(|i| i.clone()) else {
        return;
    };
    let decision = match ctx.owned.read() {
        Ok(owned) => responder::decide(&identity, &owned, &parsed),
        Err(_) => return,
    };
    if let Some(address) = decision.request_for {
        ctx.metrics.requests_received.of(address).inc();
    }
    if let (Some(reply), Some(address)) = (decision.reply, decision.request_for) {
        match ctx.socket.send(&reply) {
            Ok(_) => {
                ctx.metrics.replies_sent.of(address).inc();
            }
            Err(e) => {
                ctx.metrics.send_errors.inc();
                tracing::warn!(interface = %ctx.interface, %address, "sending reply: {e}");
            }
        }
    }
    if let Some(conflict) = decision.conflict {
        ctx.metrics.conflicts.inc();
        let now = Instant::now();
        let due = last_conflict
            .get(&conflict.address)
            .is_none_or(|t| now.duration_since(*t) >= CONFLICT_EVENT_INTERVAL);
        if due {
            last_conflict.insert(conflict.address, now);
            tracing::warn!(interface = %ctx.interface, "conflict: {}", conflict.describe());
            let _ = ctx.events.send(events::event(Kind::Conflict(pb::Conflict {
                address: conflict.address.to_string(),
                interface: ctx.interface.clone(),
                our_mac: format_mac(&identity.mac),
                other_mac: format_mac(&conflict.other_mac),
                evidence: conflict.evidence.to_string(),
            })));
        }
    }
}

/// Identity of an interface for the responder.
pub fn identity_of(mac: Mac) -> InterfaceIdentity {
    InterfaceIdentity { mac }
}
