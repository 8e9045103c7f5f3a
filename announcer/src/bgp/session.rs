//! One peer's session task: the I/O around the pure [`Fsm`].
//!
//! ```text
//!  commands (stop, accepted socket) ─┐
//!  timers (Timers::expired)  ────────┤            ┌─► socket writes (OPEN, KEEPALIVE, UPDATE…)
//!  connect result / socket reads ────┼─► Fsm ─────┼─► timers, connect, close
//!  desired routes (watch) ───────────┘  outputs   └─► status, metrics, events (Reporter)
//! ```
//!
//! On Established the whole route set is sent, then End-of-RIB per family (RFC 4724 §2) —
//! held, after a restart on a graceful-restart session, until the desired set is complete
//! (`restart.rs`), so the router keeps our stale routes until then; each later change of the desired set is diffed against what this peer was sent (its Adj-RIB-Out)
//! and only the difference goes out. Received UPDATEs are validated by the codec and dropped.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant as StdInstant;

use futures::StreamExt;
use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::FramedRead;

use crate::bfd::{BfdHandle, BfdStatus, State as BfdState};

use super::codec::{CodecContext, DecodeError, Family, Message, Notification, Update};
use super::config::{PeerConfig, RouteAttributes};
use super::fsm::{Fsm, FsmConfig, Input, Negotiated, Output, STOPPED, State, Timer};
use super::metrics::{BgpMetrics, PeerLabel};
use super::next_hop;
use super::restart::{RestartState, end_of_rib_due};
use super::timers::Timers;
use super::transport::{Framer, connect, connect_error, set_ttl};
use super::updates::SessionPolicy;

/// The desired routes, shared by all sessions.
pub type RouteSet = BTreeMap<IpNet, RouteAttributes>;

/// Called with a peer's status whenever it changes (state, error, counters).
pub type Reporter = Arc<dyn Fn(&PeerSnapshot) + Send + Sync>;

/// What a peer's session looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub config: PeerConfig,
    pub state: State,
    /// Seconds since Established (0 otherwise).
    pub uptime_seconds: u64,
    pub last_error: String,
    pub prefixes_sent: u64,
    pub updates_sent: u64,
    pub capabilities: Vec<String>,
    /// The BFD session's status, when BFD is enabled for the peer.
    pub bfd: Option<BfdStatus>,
    /// Configured by SyncPeers (the provider), not locally.
    pub managed: bool,
}

#[derive(Debug, Clone)]
struct Status {
    managed: bool,
    state: State,
    established_at: Option<StdInstant>,
    last_error: String,
    prefixes_sent: u64,
    updates_sent: u64,
    capabilities: Vec<String>,
    bfd: Option<BfdStatus>,
}

/// Messages from the speaker to a session task.
#[derive(Debug)]
pub enum Command {
    /// A connection from the peer, accepted by the speaker's listener (passive peers).
    Accepted(TcpStream),
    /// Close the session: withdraw first if asked, then send this Cease NOTIFICATION.
    Stop {
        notification: Notification,
        withdraw: bool,
        done: oneshot::Sender<()>,
    },
}

/// The speaker's handle on a running session.
pub struct SessionHandle {
    pub config: PeerConfig,
    pub commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Status>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl SessionHandle {
    /// Starts the session task.
    pub fn spawn(
        config: PeerConfig,
        routes: watch::Receiver<Arc<RouteSet>>,
        metrics: BgpMetrics,
        reporter: Reporter,
        restart: Arc<RestartState>,
        bfd: Option<BfdHandle>,
        managed: bool,
    ) -> Self {
        let status = Arc::new(Mutex::new(Status {
            managed,
            state: State::Idle,
            established_at: None,
            last_error: String::new(),
            prefixes_sent: 0,
            updates_sent: 0,
            capabilities: Vec::new(),
            bfd: bfd.as_ref().map(|handle| handle.status.borrow().clone()),
        }));
        let (commands, receiver) = mpsc::unbounded_channel();
        let fsm = Fsm::new(FsmConfig {
            local_asn: config.local_asn,
            peer_asn: config.peer_asn,
            router_id: config.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
            hold_time: config.hold_time,
            keepalive: config.keepalive,
            connect_retry: config.connect_retry,
            passive: config.passive,
            families: config.families.clone(),
            graceful_restart: config.graceful_restart,
            restarting: restart.restarted,
        });
        let label = PeerLabel {
            peer: config.address.to_string(),
        };
        let session = Session {
            config: config.clone(),
            fsm,
            timers: Timers::default(),
            routes,
            status: Arc::clone(&status),
            metrics,
            label,
            reporter,
            connection: None,
            connecting: None,
            ctx: CodecContext::default(),
            policy: None,
            adj_rib_out: BTreeMap::new(),
            complete: restart.subscribe(),
            restart,
            end_of_rib_held: Vec::new(),
            bfd,
        };
        let task = tokio::spawn(session.run(receiver));
        SessionHandle {
            config,
            commands,
            status,
            task,
        }
    }

    /// The session's current status.
    pub fn snapshot(&self) -> PeerSnapshot {
        let status = lock(&self.status).clone();
        snapshot(&self.config, &status)
    }
}

fn lock(status: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn snapshot(config: &PeerConfig, status: &Status) -> PeerSnapshot {
    PeerSnapshot {
        config: config.clone(),
        state: status.state,
        uptime_seconds: status
            .established_at
            .map(|at| at.elapsed().as_secs())
            .unwrap_or(0),
        last_error: status.last_error.clone(),
        prefixes_sent: status.prefixes_sent,
        updates_sent: status.updates_sent,
        capabilities: status.capabilities.clone(),
        bfd: status.bfd.clone(),
        managed: status.managed,
    }
}

struct Connection {
    reader: FramedRead<OwnedReadHalf, Framer>,
    writer: OwnedWriteHalf,
    local: SocketAddr,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// What woke the session up.
enum Wake {
    Command(Option<Command>),
    Timer(Timer),
    Connected(io::Result<TcpStream>),
    Received(Option<Result<Result<Message, DecodeError>, io::Error>>),
    RoutesChanged,
    DesiredComplete,
    Bfd(Option<BfdStatus>),
}

struct Session {
    config: PeerConfig,
    fsm: Fsm,
    timers: Timers,
    routes: watch::Receiver<Arc<RouteSet>>,
    status: Arc<Mutex<Status>>,
    metrics: BgpMetrics,
    label: PeerLabel,
    reporter: Reporter,
    connection: Option<Connection>,
    connecting: Option<Connecting>,
    ctx: CodecContext,
    /// Set while Established.
    policy: Option<SessionPolicy>,
    /// What this peer was sent and not withdrawn.
    adj_rib_out: BTreeMap<IpNet, RouteAttributes>,
    restart: Arc<RestartState>,
    /// Changes when the desired set becomes complete (after a restart).
    complete: watch::Receiver<bool>,
    /// Families whose End-of-RIB waits for the complete desired set.
    end_of_rib_held: Vec<Family>,
    /// The peer's BFD session, when enabled (dropping it sends AdminDown).
    bfd: Option<BfdHandle>,
}

async fn bfd_changed(bfd: &mut Option<BfdHandle>) -> Option<BfdStatus> {
    match bfd {
        Some(handle) => match handle.status.changed().await {
            Ok(()) => Some(handle.status.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn next_frame(
    connection: &mut Option<Connection>,
) -> Option<Result<Result<Message, DecodeError>, io::Error>> {
    match connection {
        Some(connection) => connection.reader.next().await,
        None => std::future::pending().await,
    }
}

async fn connected(connecting: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

impl Session {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.handle(Input::ManualStart).await;
        loop {
            let established = self.policy.is_some();
            let held = !self.end_of_rib_held.is_empty();
            let wake = tokio::select! {
                command = commands.recv() => Wake::Command(command),
                timer = self.timers.expired() => Wake::Timer(timer),
                result = connected(&mut self.connecting) => Wake::Connected(result),
                frame = next_frame(&mut self.connection) => Wake::Received(frame),
                Ok(()) = self.routes.changed(), if established => Wake::RoutesChanged,
                Ok(()) = self.complete.changed(), if held => Wake::DesiredComplete,
                status = bfd_changed(&mut self.bfd) => Wake::Bfd(status),
            };
            match wake {
                Wake::Command(None) => {
                    self.handle(Input::ManualStop(Notification::peer_deconfigured()))
                        .await;
                    return;
                }
                Wake::Command(Some(Command::Stop {
                    notification,
                    withdraw,
                    done,
                })) => {
                    if withdraw && self.policy.is_some() {
                        self.withdraw_all().await;
                    }
                    self.handle(Input::ManualStop(notification)).await;
                    let _ = done.send(());
                    return;
                }
                Wake::Command(Some(Command::Accepted(stream))) => {
                    let waiting = matches!(self.fsm.state(), State::Active | State::Connect);
                    if waiting && self.connection.is_none() {
                        self.connecting = None;
                        // An accepted socket got the listener's TTL; ours was set before SYN.
                        if let Err(error) = set_ttl(&stream, self.config.ttl(), self.config.address)
                        {
                            tracing::warn!(peer = %self.config.address, "setting TTL: {error}");
                        }
                        self.attach(stream).await;
                    }
                    // Otherwise the stream is dropped: one connection per peer.
                }
                Wake::Timer(timer) => {
                    let input = Input::from(timer);
                    self.handle(input).await;
                }
                Wake::Connected(result) => {
                    self.connecting = None;
                    match result {
                        Ok(stream) => self.attach(stream).await,
                        Err(error) => {
                            let reason = connect_error(&self.config, &error);
                            self.handle(Input::TcpConnectionFails(reason)).await;
                        }
                    }
                }
                Wake::Received(Some(Ok(Ok(message)))) => self.handle(Input::Message(message)).await,
                Wake::Received(Some(Ok(Err(error)))) => {
                    self.handle(Input::MessageError(error)).await
                }
                Wake::Received(Some(Err(error))) => {
                    self.handle(Input::TcpConnectionFails(format!("read: {error}")))
                        .await
                }
                Wake::Received(None) => {
                    self.handle(Input::TcpConnectionFails(
                        "connection closed by the peer".into(),
                    ))
                    .await
                }
                Wake::DesiredComplete => {
                    if let Err(error) = self.release_end_of_rib().await {
                        self.handle(Input::TcpConnectionFails(format!("write: {error}")))
                            .await;
                    }
                }
                Wake::Bfd(None) => {}
                Wake::Bfd(Some(status)) => self.bfd_changed(status).await,
                Wake::RoutesChanged => {
                    if let Err(error) = self.sync_routes().await {
                        self.handle(Input::TcpConnectionFails(format!("write: {error}")))
                            .await;
                    }
                }
            }
        }
    }

    /// RFC 5882 §4.3 / §10.2: BFD leaving Up means the path is gone, so the BGP session goes
    /// down now instead of at hold-timer expiry. Connections in progress are dropped too.
    /// The session restarts by itself after the ConnectRetry time, as after any failure.
    async fn bfd_changed(&mut self, status: BfdStatus) {
        // The watch keeps only the latest value: a count of Up transitions that moved on means
        // it went down and up again in between.
        let down = lock(&self.status).bfd.as_ref().is_some_and(|old| {
            old.state == BfdState::Up
                && (status.state != BfdState::Up || status.up_count != old.up_count)
        });
        let reason = format!(
            "BFD session {}: {}",
            status.state.name(),
            status.diagnostic.describe()
        );
        lock(&self.status).bfd = Some(status);
        self.report();
        if down && self.connection.is_some() {
            tracing::info!(peer = %self.config.address, "{reason}: closing the BGP session");
            self.handle(Input::TcpConnectionFails(reason)).await;
        }
    }

    /// A connection is up: pick the router ID if not configured, then tell the FSM.
    async fn attach(&mut self, stream: TcpStream) {
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(error) => {
                return self
                    .handle(Input::TcpConnectionFails(format!("local address: {error}")))
                    .await;
            }
        };
        if self.config.router_id.is_none() {
            let id = match local.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => next_hop::choose(&self.config, local.ip()).ipv4,
            };
            let Some(id) = id else {
                return self
                    .handle(Input::TcpConnectionFails(
                        "no IPv4 address to use as BGP identifier: set router_id".into(),
                    ))
                    .await;
            };
            self.fsm.set_router_id(id);
        }
        let _ = stream.set_nodelay(true);
        let (read, writer) = stream.into_split();
        self.ctx = CodecContext::default();
        let reader = FramedRead::new(read, Framer { ctx: self.ctx });
        self.connection = Some(Connection {
            reader,
            writer,
            local,
        });
        self.handle(Input::TcpConnectionConfirmed).await;
    }

    /// Feeds one input to the FSM and carries out the outputs (which may produce more inputs,
    /// e.g. a failed write).
    async fn handle(&mut self, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for output in self.fsm.process(input) {
                self.timers.apply(&output);
                match output {
                    Output::StartTimer(..) | Output::StopTimer(_) => {}
                    Output::Connect => {
                        // ConnectRetry expired with the previous attempt still pending (RFC 4271
                        // §8.2.2 drops it): that attempt went unanswered, so say so.
                        if self.connecting.is_some() {
                            let timed_out = io::Error::new(io::ErrorKind::TimedOut, "timed out");
                            lock(&self.status).last_error = connect_error(&self.config, &timed_out);
                            self.report();
                        }
                        self.connecting = Some(Box::pin(connect(self.config.clone())))
                    }
                    Output::Send(message) => {
                        if let Err(error) = self.send(&[message]).await {
                            inputs.push_back(Input::TcpConnectionFails(format!("write: {error}")));
                        }
                    }
                    Output::CloseConnection => {
                        if let Some(mut connection) = self.connection.take() {
                            let _ = connection.writer.shutdown().await;
                        }
                        self.connecting = None;
                        self.policy = None;
                        self.adj_rib_out.clear();
                        self.end_of_rib_held.clear();
                    }
                    Output::StateChanged { from, to } => {
                        tracing::info!(peer = %self.config.address, ?from, ?to, "BGP state");
                        lock(&self.status).state = to;
                        self.report();
                    }
                    Output::Established(negotiated) => {
                        if let Err(error) = self.established(negotiated).await {
                            inputs.push_back(Input::TcpConnectionFails(format!("write: {error}")));
                        }
                    }
                    Output::Down {
                        reason,
                        was_established,
                    } => {
                        tracing::warn!(peer = %self.config.address, was_established, "BGP session down: {reason}");
                        self.metrics.session_up.get_or_create(&self.label).set(0);
                        self.metrics
                            .announced_prefixes
                            .get_or_create(&self.label)
                            .set(0);
                        let mut status = lock(&self.status);
                        if reason != STOPPED {
                            status.last_error = reason;
                        }
                        status.established_at = None;
                        status.prefixes_sent = 0;
                        status.capabilities.clear();
                        drop(status);
                        self.report();
                    }
                    Output::RouteRefreshRequested(family) => {
                        if let Err(error) = self.refresh(family).await {
                            inputs.push_back(Input::TcpConnectionFails(format!("write: {error}")));
                        }
                    }
                    Output::UpdateError(reason) => {
                        tracing::warn!(peer = %self.config.address, "malformed UPDATE treated as withdraw: {reason}");
                        lock(&self.status).last_error =
                            format!("malformed UPDATE treated as withdraw: {reason}");
                        self.report();
                    }
                }
            }
        }
    }

    fn report(&self) {
        let status = lock(&self.status).clone();
        (self.reporter)(&snapshot(&self.config, &status));
    }

    /// Writes messages in one go (many UPDATEs are one write).
    async fn send(&mut self, messages: &[Message]) -> io::Result<()> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no connection"));
        };
        let mut bytes = Vec::new();
        for message in messages {
            message
                .encode(self.ctx, &mut bytes)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        }
        connection.writer.write_all(&bytes).await
    }

    async fn send_updates(&mut self, updates: Vec<Update>) -> io::Result<()> {
        let count = updates.len() as u64;
        if count == 0 {
            return Ok(());
        }
        let messages: Vec<Message> = updates.into_iter().map(Message::Update).collect();
        self.send(&messages).await?;
        self.metrics
            .updates_sent
            .get_or_create(&self.label)
            .inc_by(count);
        lock(&self.status).updates_sent += count;
        Ok(())
    }

    /// Established: learn what was negotiated, send everything, then End-of-RIB.
    async fn established(&mut self, negotiated: Negotiated) -> io::Result<()> {
        self.ctx = CodecContext {
            four_octet_as: negotiated.four_octet_as,
        };
        let Some(connection) = self.connection.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no connection"));
        };
        connection.reader.decoder_mut().ctx = self.ctx;
        let hops = next_hop::choose(&self.config, connection.local.ip());
        let mut missing = Vec::new();
        if hops.ipv4.is_none() && negotiated.families.contains(&Family::IPV4_UNICAST) {
            missing.push("no IPv4 next hop for IPv4 routes: set ipv4_next_hop");
        }
        if hops.ipv6.is_empty() && negotiated.families.contains(&Family::IPV6_UNICAST) {
            missing.push("no global IPv6 next hop for IPv6 routes: set ipv6_next_hop");
        }
        {
            let mut status = lock(&self.status);
            status.established_at = Some(StdInstant::now());
            status.capabilities = negotiated.capabilities.clone();
            status.last_error = missing.join("; ");
        }
        self.metrics.session_up.get_or_create(&self.label).set(1);
        self.policy = Some(SessionPolicy {
            local_asn: self.config.local_asn,
            ebgp: self.config.is_ebgp(),
            four_octet_as: negotiated.four_octet_as,
            ipv4_next_hop: hops.ipv4,
            ipv6_next_hops: hops.ipv6,
            families: negotiated.families.clone(),
            defaults: self.config.attributes.clone(),
        });
        self.adj_rib_out.clear();
        if negotiated.graceful_restart {
            self.restart.mark_advertised();
        }
        self.sync_routes().await?;
        self.end_of_rib_held = negotiated.families.clone();
        if end_of_rib_due(negotiated.graceful_restart, self.restart.is_complete()) {
            self.release_end_of_rib().await?;
        } else {
            tracing::info!(peer = %self.config.address, "restarted: End-of-RIB held until the desired set is known (first Sync or --bgp-eor-deferral)");
        }
        self.report();
        Ok(())
    }

    /// Sends the routes not yet sent, then End-of-RIB for every held family: the router
    /// then drops whatever stale routes of ours were not announced again (RFC 4724 §4.2).
    async fn release_end_of_rib(&mut self) -> io::Result<()> {
        self.sync_routes().await?;
        let end_of_rib: Vec<Message> = std::mem::take(&mut self.end_of_rib_held)
            .into_iter()
            .map(|family| Message::Update(Update::end_of_rib(family)))
            .collect();
        self.send(&end_of_rib).await
    }

    /// Sends the difference between the desired routes and what the peer has.
    async fn sync_routes(&mut self) -> io::Result<()> {
        let desired = Arc::clone(&self.routes.borrow_and_update());
        let Some(policy) = self.policy.clone() else {
            return Ok(());
        };
        let announce: Vec<(&IpNet, &RouteAttributes)> = desired
            .iter()
            .filter(|(prefix, attrs)| {
                policy.can_send(prefix) && self.adj_rib_out.get(prefix) != Some(attrs)
            })
            .collect();
        let withdraw: Vec<IpNet> = self
            .adj_rib_out
            .keys()
            .filter(|prefix| !desired.contains_key(prefix))
            .copied()
            .collect();
        let mut updates = policy.withdraw(&withdraw);
        updates.extend(policy.announce(announce.iter().copied()));
        for prefix in &withdraw {
            self.adj_rib_out.remove(prefix);
        }
        for (prefix, attrs) in announce {
            self.adj_rib_out.insert(*prefix, attrs.clone());
        }
        let sent = self.adj_rib_out.len() as u64;
        let result = self.send_updates(updates).await;
        lock(&self.status).prefixes_sent = sent;
        self.metrics
            .announced_prefixes
            .get_or_create(&self.label)
            .set(sent as i64);
        self.report();
        result
    }

    /// Route refresh (RFC 2918 §4): resend everything of the family.
    async fn refresh(&mut self, family: Family) -> io::Result<()> {
        let Some(policy) = self.policy.clone() else {
            return Ok(());
        };
        let updates = policy.announce(
            self.adj_rib_out
                .iter()
                .filter(|(p, _)| Family::of(p) == family),
        );
        self.send_updates(updates).await
    }

    async fn withdraw_all(&mut self) {
        let Some(policy) = self.policy.clone() else {
            return;
        };
        let updates = policy.withdraw(self.adj_rib_out.keys());
        if self.send_updates(updates).await.is_ok() {
            self.adj_rib_out.clear();
        }
    }
}
