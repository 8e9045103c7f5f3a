//! The BGP speaker: the set of announced routes, the peers, one session task per peer, and the
//! listeners that accept connections for passive peers.
//!
//! ```text
//!  set_routes / announce / withdraw ──► watch<RouteSet> ──► every session (diff + UPDATEs)
//!  add_peer / delete_peer ──► SessionHandle (task) ── status ──► Reporter (events), metrics
//!  sync_peers (managed set) ──► peer_sync::plan ──► add / replace / remove, identical untouched
//!  listener (passive peers) ── accepted socket, by remote address ──► that peer's session
//! ```
//!
//! Peers are *local* (flags, `--bgp-config`, AddPeer: the operator's) or *managed* (SyncPeers:
//! the provider's BGPPeer objects). Each side changes only its own peers.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpSocket;
use tokio::sync::{oneshot, watch};

use super::codec::Notification;
use super::config::{PeerConfig, RouteAttributes};
use super::fsm::State;
use super::metrics::BgpMetrics;
use super::peer_sync::{self, DesiredPeer, GenerationError, PeerRefusal};
use super::restart::{RestartOptions, RestartState};
use super::session::{Command, PeerSnapshot, Reporter, RouteSet, SessionHandle};

/// How long a stopping session may take to send its withdrawals and Cease.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors of the speaker's API.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("peer {peer}: cannot listen on {local} for the passive session: {source}")]
    Listen {
        peer: IpAddr,
        local: SocketAddr,
        source: io::Error,
    },
    #[error("peer {peer}: cannot start BFD: {source}")]
    Bfd { peer: IpAddr, source: io::Error },
    #[error("peer {0} is managed by the provider (a BGPPeer object, SyncPeers); change it there")]
    Managed(IpAddr),
    #[error(transparent)]
    Generation(#[from] GenerationError),
}

/// What a SyncPeers call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PeerSyncOutcome {
    pub generation: u64,
    pub added: u32,
    pub replaced: u32,
    pub removed: u32,
    pub unchanged: u32,
    pub refused: Vec<PeerRefusal>,
}

/// The last accepted SyncPeers request.
#[derive(Default)]
struct ManagedPeers {
    last: Option<(u64, Vec<DesiredPeer>)>,
}

/// The announce-only BGP speaker. Cheap to clone; all clones drive the same speaker.
#[derive(Clone)]
pub struct Speaker {
    inner: Arc<Inner>,
}

struct Inner {
    routes: watch::Sender<Arc<RouteSet>>,
    peers: Mutex<BTreeMap<IpAddr, SessionHandle>>,
    listeners: Mutex<HashMap<SocketAddr, tokio::task::JoinHandle<()>>>,
    metrics: BgpMetrics,
    reporter: Reporter,
    restart: Arc<RestartState>,
    /// BFD sessions of the peers that enable it, and their shared listeners.
    bfd: crate::bfd::Manager,
    /// Changes of peers (SyncPeers, AddPeer, DeletePeer of a local peer) run one at a time
    /// (a call awaits sessions stopping); holds the last accepted SyncPeers request.
    managed: tokio::sync::Mutex<ManagedPeers>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Speaker {
    /// A speaker with no peers and no routes; `reporter` hears every peer status change.
    pub fn new(metrics: BgpMetrics, reporter: Reporter) -> Self {
        Speaker::with_restart(metrics, reporter, &RestartOptions::default())
    }

    /// A speaker that detects its own restart through `restart.marker` (RFC 4724 §4.1, see
    /// `restart.rs`). When it restarted, End-of-RIB is held until [`Speaker::desired_complete`]
    /// or `restart.eor_deferral`; must be called within a tokio runtime.
    pub fn with_restart(metrics: BgpMetrics, reporter: Reporter, restart: &RestartOptions) -> Self {
        let (routes, _) = watch::channel(Arc::new(RouteSet::new()));
        let state = Arc::new(RestartState::load(restart));
        if state.restarted {
            let deferred = Arc::clone(&state);
            let deferral = restart.eor_deferral;
            tokio::spawn(async move {
                tokio::time::sleep(deferral).await;
                if !deferred.is_complete() {
                    tracing::warn!(
                        ?deferral,
                        "BGP End-of-RIB deferral expired before the first Sync: sending End-of-RIB with the routes known now"
                    );
                }
                deferred.desired_complete();
            });
        }
        Speaker {
            inner: Arc::new(Inner {
                routes,
                peers: Mutex::new(BTreeMap::new()),
                listeners: Mutex::new(HashMap::new()),
                metrics,
                reporter,
                restart: state,
                bfd: crate::bfd::Manager::default(),
                managed: tokio::sync::Mutex::new(ManagedPeers::default()),
            }),
        }
    }

    /// Whether this speaker started as a graceful restart (Restart State bit set).
    pub fn restarted(&self) -> bool {
        self.inner.restart.restarted
    }

    /// The desired set is complete (the first Sync after a start): End-of-RIB held after a
    /// restart goes out, and routers drop the stale routes not announced again.
    pub fn desired_complete(&self) {
        self.inner.restart.desired_complete();
    }

    /// Replaces the whole set of announced routes; sessions send only the difference.
    pub fn set_routes(&self, routes: RouteSet) {
        self.inner.routes.send_if_modified(|current| {
            if **current == routes {
                return false;
            }
            *current = Arc::new(routes);
            true
        });
    }

    /// Announces (or changes the attributes of) one route.
    pub fn announce(&self, prefix: IpNet, attributes: RouteAttributes) {
        self.inner.routes.send_if_modified(|current| {
            if current.get(&prefix) == Some(&attributes) {
                return false;
            }
            Arc::make_mut(current).insert(prefix, attributes);
            true
        });
    }

    /// Withdraws one route; false when it was not announced.
    pub fn withdraw(&self, prefix: &IpNet) -> bool {
        self.inner.routes.send_if_modified(|current| {
            if !current.contains_key(prefix) {
                return false;
            }
            Arc::make_mut(current).remove(prefix);
            true
        })
    }

    /// The announced routes.
    pub fn routes(&self) -> Arc<RouteSet> {
        Arc::clone(&self.inner.routes.borrow())
    }

    /// Adds a local peer, or replaces the local one with the same address (its session
    /// restarts); a peer identical to the one configured is left as it is. A managed peer's
    /// address is refused.
    pub async fn add_peer(&self, config: PeerConfig) -> Result<PeerSnapshot, SpeakerError> {
        // One change of peers at a time: a SyncPeers in progress cannot slip a managed peer
        // in between this check and the start.
        let _one_at_a_time = self.inner.managed.lock().await;
        {
            let peers = locked(&self.inner.peers);
            if let Some(existing) = peers.get(&config.address) {
                if existing.snapshot().managed {
                    return Err(SpeakerError::Managed(config.address));
                }
                if existing.config == config {
                    return Ok(existing.snapshot());
                }
            }
        }
        self.start_peer(config, false).await
    }

    /// Removes a local peer (Cease, Peer De-configured); a managed one is refused.
    pub async fn delete_local_peer(&self, address: IpAddr) -> Result<bool, SpeakerError> {
        let _one_at_a_time = self.inner.managed.lock().await;
        if self.peer(address).is_some_and(|p| p.managed) {
            return Err(SpeakerError::Managed(address));
        }
        Ok(self.delete_peer(address).await)
    }

    /// Replaces the set of managed peers (SyncPeers; see `peer_sync.rs`): identical peers are
    /// untouched, changed ones replaced, missing ones removed; local peers are never touched.
    pub async fn sync_peers(
        &self,
        generation: u64,
        desired: Vec<DesiredPeer>,
    ) -> Result<PeerSyncOutcome, SpeakerError> {
        let mut managed = self.inner.managed.lock().await;
        let last = managed.last.as_ref().map(|(g, d)| (*g, d.as_slice()));
        peer_sync::check_generation(last, generation, &desired)?;
        let (in_force, local) = {
            let peers = locked(&self.inner.peers);
            let mut in_force = BTreeMap::new();
            let mut local = std::collections::BTreeSet::new();
            for (address, handle) in peers.iter() {
                if handle.snapshot().managed {
                    in_force.insert(*address, handle.config.clone());
                } else {
                    local.insert(*address);
                }
            }
            (in_force, local)
        };
        let plan = peer_sync::plan(&desired, &in_force, &local);
        let mut outcome = PeerSyncOutcome {
            generation,
            unchanged: plan.unchanged,
            refused: plan.refused,
            ..PeerSyncOutcome::default()
        };
        for address in plan.remove {
            if self.delete_peer(address).await {
                outcome.removed += 1;
            }
        }
        let starts = plan
            .replace
            .into_iter()
            .map(|c| (c, true))
            .chain(plan.add.into_iter().map(|c| (c, false)));
        for (config, replacing) in starts {
            let address = config.address;
            match self.start_peer(config, true).await {
                Ok(_) if replacing => outcome.replaced += 1,
                Ok(_) => outcome.added += 1,
                Err(error) => {
                    // A replaced peer whose new form cannot start is gone: say so.
                    self.inner.metrics.remove(&address.to_string());
                    outcome.refused.push(PeerRefusal {
                        address: address.to_string(),
                        message: error.to_string(),
                    });
                }
            }
        }
        managed.last = Some((generation, desired));
        Ok(outcome)
    }

    /// Starts a peer's session, replacing (Cease, Other Configuration Change) any session
    /// with its address.
    async fn start_peer(
        &self,
        config: PeerConfig,
        managed: bool,
    ) -> Result<PeerSnapshot, SpeakerError> {
        self.delete_peer_with(config.address, Notification::new(Notification::CEASE, 6))
            .await;
        if config.passive {
            self.ensure_listener(&config)?;
        }
        let bfd = match &config.bfd {
            Some(bfd) => Some(
                self.inner
                    .bfd
                    .start(config.address, config.source_address, bfd)
                    .map_err(|source| SpeakerError::Bfd {
                        peer: config.address,
                        source,
                    })?,
            ),
            None => None,
        };
        let handle = SessionHandle::spawn(
            config.clone(),
            self.inner.routes.subscribe(),
            self.inner.metrics.clone(),
            Arc::clone(&self.inner.reporter),
            Arc::clone(&self.inner.restart),
            bfd,
            managed,
        );
        let snapshot = handle.snapshot();
        locked(&self.inner.peers).insert(config.address, handle);
        Ok(snapshot)
    }

    /// Removes a peer: its routes are withdrawn and a Cease (Peer De-configured) is sent.
    pub async fn delete_peer(&self, address: IpAddr) -> bool {
        let deleted = self
            .delete_peer_with(address, Notification::peer_deconfigured())
            .await;
        if deleted {
            self.inner.metrics.remove(&address.to_string());
        }
        deleted
    }

    async fn delete_peer_with(&self, address: IpAddr, notification: Notification) -> bool {
        let handle = locked(&self.inner.peers).remove(&address);
        match handle {
            Some(handle) => {
                stop(handle, notification, true).await;
                true
            }
            None => false,
        }
    }

    /// Every peer's status, ordered by address.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        locked(&self.inner.peers)
            .values()
            .map(SessionHandle::snapshot)
            .collect()
    }

    /// One peer's status.
    pub fn peer(&self, address: IpAddr) -> Option<PeerSnapshot> {
        locked(&self.inner.peers)
            .get(&address)
            .map(SessionHandle::snapshot)
    }

    /// Whether `prefix` is announced and at least one session is Established.
    pub fn is_advertised(&self, prefix: &IpNet) -> bool {
        self.routes().contains_key(prefix)
            && locked(&self.inner.peers)
                .values()
                .any(|h| h.snapshot().state == State::Established)
    }

    /// Stops every session: routes withdrawn, then Cease / Administrative Shutdown.
    pub async fn shutdown(&self) {
        let handles: Vec<SessionHandle> = std::mem::take(&mut *locked(&self.inner.peers))
            .into_values()
            .collect();
        let stops = handles
            .into_iter()
            .map(|h| stop(h, Notification::admin_shutdown(), true));
        futures::future::join_all(stops).await;
        // Everything was withdrawn: the next start is not a restart.
        self.inner.restart.clear();
        for (_, listener) in locked(&self.inner.listeners).drain() {
            listener.abort();
        }
    }

    /// Makes sure a listener accepts connections for a passive peer on its port, with the
    /// peer's MD5 key installed on the listening socket.
    fn ensure_listener(&self, config: &PeerConfig) -> Result<(), SpeakerError> {
        let local_ip = config.source_address.unwrap_or(match config.address {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        let local = SocketAddr::new(local_ip, config.port);
        let listen_error = |source| SpeakerError::Listen {
            peer: config.address,
            local,
            source,
        };
        let mut listeners = locked(&self.inner.listeners);
        if let Some(existing) = listeners.get(&local)
            && !existing.is_finished()
        {
            // MD5 keys of later peers cannot be added without the socket; rebind instead.
            if config.password.is_none() {
                return Ok(());
            }
            existing.abort();
        }
        let socket = listening_socket(local).map_err(listen_error)?;
        socket.bind(local).map_err(listen_error)?;
        // Keys of every passive peer on this address, including the new one.
        let peers = locked(&self.inner.peers);
        let keyed = peers
            .values()
            .map(|h| &h.config)
            .filter(|c| c.passive && c.port == config.port)
            .chain(std::iter::once(config));
        for peer in keyed {
            if let Some(password) = &peer.password {
                crate::sys::tcp_md5::set_md5_key(&socket, peer.address, password)
                    .map_err(listen_error)?;
            }
        }
        drop(peers);
        let listener = socket.listen(64).map_err(listen_error)?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, remote)) = listener.accept().await else {
                    continue;
                };
                let Some(inner) = weak.upgrade() else { return };
                let peers = locked(&inner.peers);
                match peers.get(&remote.ip()).filter(|h| h.config.passive) {
                    Some(handle) => {
                        let _ = handle.commands.send(Command::Accepted(stream));
                    }
                    None => tracing::info!(%remote, "BGP connection from an unknown peer refused"),
                }
            }
        });
        listeners.insert(local, task);
        Ok(())
    }
}

/// A TCP socket for a passive listener on `local`, not yet bound. An IPv6 socket accepts
/// IPv6 only (IPV6_V6ONLY): Linux makes `[::]` dual-stack by default, which would take the
/// port from the IPv4 listener of passive IPv4 peers (`Address already in use`), so each
/// family gets its own listener on the same port.
fn listening_socket(local: SocketAddr) -> io::Result<TcpSocket> {
    let domain = socket2::Domain::for_address(local);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if local.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(TcpSocket::from_std_stream(socket.into()))
}

/// Asks a session to stop and waits a little for it; then it is aborted.
async fn stop(handle: SessionHandle, notification: Notification, withdraw: bool) {
    let (done, finished) = oneshot::channel();
    if handle
        .commands
        .send(Command::Stop {
            notification,
            withdraw,
            done,
        })
        .is_ok()
    {
        let _ = tokio::time::timeout(STOP_TIMEOUT, finished).await;
    }
    handle.task.abort();
}
