//! The failover task: one UDP socket, the heartbeat timer, and the election's decisions handed
//! to the engine.
//!
//! ```text
//!   Engine::sync ──configure(node, peers, groups, key)──▶ Failover ──wake──┐
//!   UDP :9722 ──datagram──▶ open + replay check ──▶ Election::heard ───────┤
//!   timer (interval/4) ────────────────────────────────────────────────────┴─▶ evaluate
//!        decisions ──▶ Engine::failover_decision (claim: in force + gratuitous burst)
//!   timer (interval) and after every decision ──▶ one heartbeat per peer
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::election::{Decision, Election, NodeId, Settings};
use super::packet::{self, Heartbeat, Keys, Reassembly, Rejected, ReplayGuard};
use crate::engine::Engine;

/// The failover metrics.
#[derive(Clone, Default)]
pub struct FailoverMetrics {
    pub takeovers: Counter,
    pub releases: Counter,
    pub sent: Counter,
    pub send_errors: Counter,
    pub received: Counter,
    pub rejected: Family<[(&'static str, &'static str); 1], Counter>,
}

impl FailoverMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "ferrolb_failover_takeovers",
            "Addresses this node took over from another candidate (or claimed with no holder)",
            metrics.takeovers.clone(),
        );
        registry.register(
            "ferrolb_failover_releases",
            "Addresses this node released to an earlier candidate",
            metrics.releases.clone(),
        );
        registry.register(
            "ferrolb_heartbeats_sent",
            "Failover heartbeats sent (one per peer per interval)",
            metrics.sent.clone(),
        );
        registry.register(
            "ferrolb_heartbeat_send_errors",
            "Heartbeat datagrams the kernel refused to send (e.g. no route to the peer)",
            metrics.send_errors.clone(),
        );
        registry.register(
            "ferrolb_heartbeats_received",
            "Failover heartbeats accepted",
            metrics.received.clone(),
        );
        registry.register(
            "ferrolb_heartbeats_rejected",
            "Failover datagrams refused, by reason (auth, replay, stale, unknown_peer, malformed)",
            metrics.rejected.clone(),
        );
        metrics
    }
}

struct State {
    election: Election,
    keys: Keys,
    guard: ReplayGuard,
    parts: Reassembly,
    seq: u64,
}

/// See the module documentation.
pub struct Failover {
    port: u16,
    state: Mutex<State>,
    wake: Notify,
    /// Send heartbeats on the next wake-up, not at the next interval.
    send_now: std::sync::atomic::AtomicBool,
    metrics: FailoverMetrics,
}

impl Failover {
    pub fn new(settings: Settings, port: u16, metrics: FailoverMetrics) -> Self {
        Failover {
            port,
            state: Mutex::new(State {
                election: Election::new(settings),
                keys: Keys::default(),
                guard: ReplayGuard::default(),
                parts: Reassembly::default(),
                seq: 0,
            }),
            wake: Notify::new(),
            send_now: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    pub fn metrics(&self) -> &FailoverMetrics {
        &self.metrics
    }

    /// The configuration of the last Sync: this node, its peers, the groups and the key.
    pub fn configure(
        &self,
        me: &str,
        peers: BTreeMap<NodeId, IpAddr>,
        groups: BTreeMap<IpAddr, (Vec<NodeId>, bool)>,
        key: &[u8],
    ) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !key.is_empty() {
            state.keys.set(key);
        }
        state.election.configure(Instant::now(), me, peers, groups);
        drop(state);
        self.wake.notify_one();
    }

    /// This node cannot keep `address` in force (its link went down): not ready for one dead
    /// interval, and the peers hear at once that it no longer holds it.
    pub fn unable(&self, address: IpAddr) {
        if let Ok(mut state) = self.state.lock() {
            state.election.unable(Instant::now(), address);
        }
        self.send_now
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Runs until the process ends. Binds `[::]:port` (IPv4 and IPv6), or `0.0.0.0:port`
    /// where IPv6 is disabled.
    pub async fn run(self: Arc<Self>, engine: Arc<Engine>) -> std::io::Result<()> {
        let socket = bind(self.port)?;
        let dual_stack = socket.local_addr()?.is_ipv6();
        tracing::info!(port = self.port, "failover heartbeats listening");
        let settings = self.state.lock().map(|s| s.election.settings()).ok();
        let interval = settings.map_or(std::time::Duration::from_millis(200), |s| s.interval);
        let mut send_tick = tokio::time::interval(interval);
        let mut eval_tick = tokio::time::interval(interval / 4);
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut send = false;
            tokio::select! {
                _ = send_tick.tick() => send = true,
                _ = eval_tick.tick() => {}
                () = self.wake.notified() => {}
                received = socket.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received {
                        self.receive(&buf[..len], from);
                    }
                    // Everything already queued, before deciding: a heartbeat in parts is
                    // decided on whole, and a busy loop must not let the queue overflow.
                    while let Ok((len, from)) = socket.try_recv_from(&mut buf) {
                        self.receive(&buf[..len], from);
                    }
                }
            }
            let decisions = match self.state.lock() {
                Ok(mut state) => state.election.evaluate(Instant::now()),
                Err(_) => return Ok(()),
            };
            // Tell the peers at once: a claim or a release ends their wait a whole interval
            // sooner.
            send |= !decisions.is_empty();
            send |= self
                .send_now
                .swap(false, std::sync::atomic::Ordering::Relaxed);
            let releases = decisions
                .iter()
                .filter(|d| matches!(d, Decision::Release { .. }))
                .count();
            self.metrics.releases.inc_by(releases as u64);
            // One engine call for all of them: one lock, one interface listing.
            for (address, in_force) in engine.failover_decisions(decisions).await {
                if in_force {
                    self.metrics.takeovers.inc();
                } else {
                    self.unable(address);
                }
            }
            if send {
                self.send_heartbeats(&socket, dual_stack).await;
            }
        }
    }

    fn receive(&self, datagram: &[u8], from: SocketAddr) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let inner = &mut *state;
        let result = inner.keys.open(datagram).and_then(|heartbeat| {
            inner.guard.check(&heartbeat, crate::events::now_ms())?;
            let sets = inner.parts.add(&heartbeat);
            if inner.election.heard(Instant::now(), &heartbeat.node, sets) {
                Ok(())
            } else {
                Err(Rejected::UnknownPeer)
            }
        });
        drop(state);
        match result {
            Ok(()) => {
                self.metrics.received.inc();
                self.wake.notify_one();
            }
            Err(reason) => {
                tracing::debug!(%from, reason = reason.label(), "heartbeat refused");
                self.metrics
                    .rejected
                    .get_or_create(&[("reason", reason.label())])
                    .inc();
            }
        }
    }

    async fn send_heartbeats(&self, socket: &UdpSocket, dual_stack: bool) {
        let datagrams: Vec<(SocketAddr, Vec<u8>)> = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if !state.keys.is_set() || state.election.me().is_empty() {
                return;
            }
            let outgoing = state.election.outgoing(Instant::now());
            let mut datagrams = Vec::with_capacity(outgoing.len());
            for beat in outgoing {
                let parts = packet::split(&beat.held, &beat.ready);
                let count = parts.len() as u32;
                let batch = state.seq + 1;
                for (part, (held, ready)) in parts.into_iter().enumerate() {
                    state.seq += 1;
                    let heartbeat = Heartbeat {
                        node: state.election.me().to_string(),
                        sent_unix_ms: crate::events::now_ms(),
                        seq: state.seq,
                        held: packet::to_bytes(&held),
                        ready: packet::to_bytes(&ready),
                        batch,
                        part: part as u32,
                        parts: count,
                    };
                    if let Some(datagram) = state.keys.seal(&heartbeat) {
                        datagrams.push((target(beat.address, self.port, dual_stack), datagram));
                    }
                }
            }
            datagrams
        };
        for (to, datagram) in datagrams {
            match socket.send_to(&datagram, to).await {
                Ok(_) => {
                    self.metrics.sent.inc();
                }
                Err(e) => {
                    self.metrics.send_errors.inc();
                    tracing::warn!(%to, "heartbeat not sent: {e}");
                }
            }
        }
    }
}

fn bind(port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let dual = || -> std::io::Result<Socket> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_only_v6(false)?;
        socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
        Ok(socket)
    };
    let socket = match dual() {
        Ok(socket) => socket,
        Err(_) => {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            socket.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            socket
        }
    };
    // Room for a burst of heartbeat parts from many peers while a decision runs.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// Where to send to `address`: an IPv4 peer as `::ffff:a.b.c.d` from a dual-stack socket.
fn target(address: IpAddr, port: u16, dual_stack: bool) -> SocketAddr {
    match address {
        IpAddr::V4(v4) if dual_stack => SocketAddr::from((v4.to_ipv6_mapped(), port)),
        other => SocketAddr::from((other, port)),
    }
}
