//! The I/O around the pure [`Session`]: UDP sockets, timers and the status watch.
//!
//! ```text
//!  listener 0.0.0.0:3784 / [::]:3784 (4784 multihop) ── TTL check, demux by peer address ─┐
//!                                                                                         ▼
//!  BfdHandle (held by the BGP session) ◄── watch<BfdStatus> ── session task ◄── timers
//!                                                                 │
//!                       socket bound to (local, 49152..=65535), TTL 255, connected ──► peer
//! ```
//!
//! RFC 5881 §5/§4: single-hop packets are sent with TTL / hop limit 255 and received ones
//! with anything else are dropped (read from `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` control
//! messages, through nix's safe `recvmsg`); the source port is picked in 49152–65535 and kept
//! for the session's life. RFC 5883 multihop uses port 4784 and skips the TTL check.
//! One listener per family and port serves every session of the process; sessions are found
//! by the peer's address (one BFD session per BGP peer).

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::config::BfdConfig;
use super::packet::{Diagnostic, State};
use super::session::{Input, Output, Session, Timer};

/// RFC 5881 §4: destination port of single-hop Control packets.
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883 §5: destination port of multihop Control packets.
pub const MULTIHOP_PORT: u16 = 4784;
/// RFC 5881 §4: source ports.
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// A BFD session's status, as the BGP session and the API see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdStatus {
    pub state: State,
    pub diagnostic: Diagnostic,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    pub detection_time: Duration,
    /// Transitions to Up so far.
    pub up_count: u64,
}

type PacketSender = mpsc::UnboundedSender<Vec<u8>>;

/// Starts BFD sessions and owns the shared listeners. Cheap to clone.
#[derive(Clone, Default)]
pub struct Manager {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    /// (peer address, multihop) → the session task's packet channel.
    sessions: Mutex<HashMap<(IpAddr, bool), PacketSender>>,
    /// (IPv4?, port) → listener task.
    listeners: Mutex<HashMap<(bool, u16), tokio::task::JoinHandle<()>>>,
    next_discriminator: AtomicU32,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running BFD session; dropping it sends AdminDown to the peer and ends the task.
pub struct BfdHandle {
    pub status: watch::Receiver<BfdStatus>,
    _stop: oneshot::Sender<()>,
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SystemRandom only fails when the OS has no randomness at all; a fixed seed then still
    // gives a working (if predictable) jitter.
    let _ = SystemRandom::new().fill(&mut bytes);
    u64::from_le_bytes(bytes) | 1
}

impl Drop for Registry {
    fn drop(&mut self) {
        for (_, listener) in locked(&self.listeners).drain() {
            listener.abort();
        }
    }
}

impl Manager {
    /// Starts the BFD session to `remote`, from `local` (default: the address the kernel
    /// routes from). Fails when the shared listener cannot be bound.
    pub fn start(
        &self,
        remote: IpAddr,
        local: Option<IpAddr>,
        config: &BfdConfig,
    ) -> io::Result<BfdHandle> {
        let port = if config.multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        self.ensure_listener(remote.is_ipv4(), port, !config.multihop)?;
        let seed = random_u64();
        let discriminator = self.next_discriminator(seed);
        let session = Session::new(
            discriminator,
            config.params.clone(),
            config.auth.clone(),
            seed,
        );
        let (status_tx, status) = watch::channel(status_of(&session, 0));
        let (packets_tx, packets) = mpsc::unbounded_channel();
        locked(&self.inner.sessions).insert((remote, config.multihop), packets_tx.clone());
        let (stop_tx, stop) = oneshot::channel();
        let task = SessionTask {
            session,
            remote: SocketAddr::new(remote, port),
            local,
            socket: None,
            deadlines: HashMap::new(),
            status: status_tx,
            up_count: 0,
            seed,
        };
        let registry = Arc::downgrade(&self.inner);
        let key = (remote, config.multihop);
        tokio::spawn(async move {
            task.run(packets, stop).await;
            if let Some(registry) = registry.upgrade() {
                let mut sessions = locked(&registry.sessions);
                if sessions
                    .get(&key)
                    .is_some_and(|s| s.same_channel(&packets_tx))
                {
                    sessions.remove(&key);
                }
            }
        });
        Ok(BfdHandle {
            status,
            _stop: stop_tx,
        })
    }

    fn next_discriminator(&self, seed: u64) -> u32 {
        // Start at a random value so a restarted announcer does not reuse the last one.
        let _ = self.inner.next_discriminator.compare_exchange(
            0,
            (seed as u32) | 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        loop {
            let value = self
                .inner
                .next_discriminator
                .fetch_add(1, Ordering::Relaxed);
            if value != 0 {
                return value;
            }
        }
    }

    fn ensure_listener(&self, ipv4: bool, port: u16, check_ttl: bool) -> io::Result<()> {
        let mut listeners = locked(&self.inner.listeners);
        if listeners
            .get(&(ipv4, port))
            .is_some_and(|task| !task.is_finished())
        {
            return Ok(());
        }
        let socket = listen(ipv4, port).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "BFD: cannot listen on UDP port {port} ({}): {error}",
                    if ipv4 { "IPv4" } else { "IPv6" }
                ),
            )
        })?;
        let registry = Arc::downgrade(&self.inner);
        listeners.insert(
            (ipv4, port),
            tokio::spawn(receive(socket, registry, !check_ttl)),
        );
        Ok(())
    }
}

fn listen(ipv4: bool, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, address) = if ipv4 {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    } else {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if !ipv4 {
        // IPv4 has its own listener; a dual-stack one would take its port.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(address, port).into())?;
    if ipv4 {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
    }
    UdpSocket::from_std(socket.into())
}

/// Reads Control packets and hands each to its session; single-hop packets whose TTL or hop
/// limit is not 255 are dropped here (RFC 5881 §5).
async fn receive(socket: UdpSocket, registry: Weak<Registry>, multihop: bool) {
    let mut buffer = vec![0u8; 512];
    loop {
        let received = socket
            .async_io(Interest::READABLE, || recv_with_ttl(&socket, &mut buffer))
            .await;
        let (len, from, ttl) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!("BFD receive: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(from) = from else { continue };
        if !multihop && ttl != Some(255) {
            tracing::debug!(%from, ?ttl, "BFD packet dropped: single hop needs TTL 255");
            continue;
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let sender = locked(&registry.sessions)
            .get(&(from.ip(), multihop))
            .cloned();
        match sender {
            Some(sender) => {
                let _ = sender.send(buffer[..len].to_vec());
            }
            None => tracing::debug!(%from, "BFD packet from an address with no session"),
        }
    }
}

/// One `recvmsg` with the TTL / hop-limit control message.
fn recv_with_ttl(
    socket: &UdpSocket,
    buffer: &mut [u8],
) -> io::Result<(usize, Option<SocketAddr>, Option<i32>)> {
    let mut iov = [IoSliceMut::new(buffer)];
    let mut control = nix::cmsg_space!(libc::c_int);
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let mut ttl = None;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::Ipv4Ttl(value) | ControlMessageOwned::Ipv6HopLimit(value) => {
                ttl = Some(value)
            }
            _ => {}
        }
    }
    let from = message
        .address
        .and_then(|address: SockaddrStorage| match address.family() {
            Some(nix::sys::socket::AddressFamily::Inet) => address
                .as_sockaddr_in()
                .map(|a| SocketAddr::from((a.ip(), a.port()))),
            Some(nix::sys::socket::AddressFamily::Inet6) => address
                .as_sockaddr_in6()
                .map(|a| SocketAddr::from((a.ip(), a.port()))),
            _ => None,
        });
    Ok((message.bytes, from, ttl))
}

struct SessionTask {
    session: Session,
    remote: SocketAddr,
    local: Option<IpAddr>,
    /// Created on first use (and again after an error), so a missing route only delays.
    socket: Option<UdpSocket>,
    deadlines: HashMap<Timer, Instant>,
    status: watch::Sender<BfdStatus>,
    up_count: u64,
    seed: u64,
}

fn status_of(session: &Session, up_count: u64) -> BfdStatus {
    BfdStatus {
        state: session.state(),
        diagnostic: session.local_diagnostic(),
        local_discriminator: session.local_discriminator(),
        remote_discriminator: session.remote_discriminator(),
        detection_time: session.detection_time(),
        up_count,
    }
}

impl SessionTask {
    async fn run(
        mut self,
        mut packets: mpsc::UnboundedReceiver<Vec<u8>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        self.handle(Input::AdminUp).await;
        loop {
            let next = self
                .deadlines
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(timer, at)| (*timer, *at));
            let input = tokio::select! {
                _ = &mut stop => {
                    self.handle(Input::AdminDown).await;
                    return;
                }
                Some(bytes) = packets.recv() => Input::ControlPacketReceived(bytes),
                timer = expire(next) => {
                    self.deadlines.remove(&timer);
                    match timer {
                        Timer::Transmit => Input::TransmitTimerExpires,
                        Timer::Detection => Input::DetectionTimerExpires,
                    }
                }
            };
            self.handle(input).await;
        }
    }

    async fn handle(&mut self, input: Input) {
        let mut changed = false;
        for output in self.session.process(input) {
            match output {
                Output::Send(bytes) => self.send(&bytes).await,
                Output::StartTimer(timer, after) => {
                    self.deadlines.insert(timer, Instant::now() + after);
                }
                Output::StopTimer(timer) => {
                    self.deadlines.remove(&timer);
                }
                Output::StateChanged {
                    from,
                    to,
                    diagnostic,
                } => {
                    tracing::info!(peer = %self.remote.ip(), from = from.name(), to = to.name(),
                        diagnostic = diagnostic.describe(), "BFD state");
                    if to == State::Up {
                        self.up_count += 1;
                    }
                    changed = true;
                }
                Output::Discarded(reason) => {
                    tracing::debug!(peer = %self.remote.ip(), "BFD packet discarded: {reason}")
                }
            }
        }
        let status = status_of(&self.session, self.up_count);
        self.status.send_if_modified(|current| {
            // Detection-time and discriminator updates are published with state changes or
            // when they differ, so a watcher sees every transition.
            if changed || *current != status {
                *current = status;
                true
            } else {
                false
            }
        });
    }

    async fn send(&mut self, bytes: &[u8]) {
        if self.socket.is_none() {
            match open_sender(self.local, self.remote, &mut self.seed) {
                Ok(socket) => self.socket = Some(socket),
                Err(error) => {
                    tracing::warn!(peer = %self.remote.ip(), "BFD socket: {error}");
                    return;
                }
            }
        }
        if let Some(socket) = &self.socket
            && let Err(error) = socket.send(bytes).await
        {
            tracing::debug!(peer = %self.remote.ip(), "BFD send: {error}");
            if error.kind() != io::ErrorKind::ConnectionRefused {
                self.socket = None;
            }
        }
    }
}

async fn expire(next: Option<(Timer, Instant)>) -> Timer {
    match next {
        Some((timer, at)) => {
            tokio::time::sleep_until(at).await;
            timer
        }
        None => std::future::pending().await,
    }
}

/// The session's sending socket: bound to a source port in 49152–65535 (RFC 5881 §4),
/// TTL / hop limit 255 (RFC 5881 §5; RFC 5883 leaves it to us, 255 too), connected.
fn open_sender(local: Option<IpAddr>, remote: SocketAddr, seed: &mut u64) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let local = match local {
        Some(local) => local,
        None => {
            // Ask the kernel which address it would send from.
            let probe = std::net::UdpSocket::bind(SocketAddr::new(unspecified(remote.ip()), 0))?;
            probe.connect(remote)?;
            probe.local_addr()?.ip()
        }
    };
    let domain = if remote.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let span = u64::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for _ in 0..64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let port = SOURCE_PORTS.start() + (*seed % span) as u16;
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        if let Err(error) = socket.bind(&SocketAddr::new(local, port).into()) {
            last_error = error;
            continue;
        }
        if remote.is_ipv4() {
            socket.set_ttl_v4(255)?;
        } else {
            socket.set_unicast_hops_v6(255)?;
        }
        socket.connect(&remote.into())?;
        return UdpSocket::from_std(socket.into());
    }
    Err(last_error)
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
