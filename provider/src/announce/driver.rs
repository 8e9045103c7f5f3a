//! One task per announcer: connects over mTLS gRPC and keeps the announcer at its desired set.
//!
//! ```text
//!   watch<NodeDesired> ──▶ driver ──Sync(generation, set)──▶ announcer
//!                            │  ◀──GetState── after each Sync and each event (once a
//!                            │                burst of Syncs is through)
//!                            ▼
//!                      mpsc<DriverReport> (controller: planner + metrics)
//! ```
//!
//! The driver always sends the *whole* set with the generation the controller gave it, so a
//! reconnect (announcer restarted, network blip) re-sends it at once, and an announcer that
//! already holds it sees an identical Sync that changes nothing. A connection that cannot be
//! made, or breaks, is reported as unreachable once the reconnect right after it fails too
//! (so an announcer restart or a blip of a few hundred milliseconds moves nothing); the
//! planner then moves the node's addresses away. Reconnects back off exponentially from
//! 200 ms to 5 s.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use proto::announcer::v1::{self as pb, announcer_client::AnnouncerClient};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tonic::Code;

use super::{
    connection::{self, Connection},
    model::{
        AnnouncerEndpoint, FailoverPeer, HeartbeatKey, Mode, NodeAnnouncement, NodeName, Phase,
    },
    wire,
};

pub use crate::certs::{ANNOUNCER_SERVER_NAME, ClientTls};
use crate::peers::{NodePeer, PeerReport};

/// What one announcer should hold.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDesired {
    /// Where it listens.
    pub endpoint: AnnouncerEndpoint,
    /// Generation of `set` (grows across leaders, see `lease::Claim::epoch`).
    pub generation: u64,
    /// The whole set.
    pub set: Arc<Vec<NodeAnnouncement>>,
    /// The failover peers named in the set's candidate lists (empty without failover).
    pub peers: Arc<Vec<FailoverPeer>>,
    /// The heartbeat key (`None`: no failover among announcers).
    pub key: Option<HeartbeatKey>,
    /// The node's whole managed BGP peer set (`None` until the BGPPeers and their Secrets
    /// are read: nothing is sent before, so a new leader never removes peers it has not read).
    pub bgp_peers: Option<Arc<Vec<NodePeer>>>,
    /// Generation of `bgp_peers` (SyncPeers' own sequence; grows across leaders like
    /// `generation`).
    pub peers_generation: u64,
}

/// What a driver tells the controller.
#[derive(Clone, Debug, PartialEq)]
pub enum DriverReport {
    /// Connected (again).
    Connected(NodeName),
    /// Cannot connect, or the connection broke.
    Unreachable(NodeName, String),
    /// A Sync was accepted after `latency`.
    Synced(NodeName, Duration),
    /// A Sync was refused; the message is the announcer's.
    Refused(NodeName, String),
    /// The announcer's state: the phase of each announcement.
    State(NodeName, HashMap<(IpAddr, Mode), Phase>),
    /// The announcer saw another MAC answer for an address it answers for (a sentence).
    Conflict(NodeName, IpAddr, String),
    /// The announcer's managed BGP peers: refusals and session states.
    Peers(NodeName, PeerReport),
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Least time between two Syncs to one announcer. Each Sync carries the whole set, so during
/// a burst (thousands of Services created at once) Syncs back to back cost the provider
/// more CPU than the writes that report the addresses announced; spaced, one Sync carries
/// what changed meanwhile. A change after a quiet spell is sent at once.
const SYNC_SPACING: Duration = Duration::from_millis(200);

/// Runs until dropped (the controller aborts it when the announcer disappears or the term
/// ends).
pub async fn run(
    node: NodeName,
    mut desired: watch::Receiver<NodeDesired>,
    mut tls: watch::Receiver<Option<Arc<ClientTls>>>,
    reports: mpsc::UnboundedSender<DriverReport>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0_u32;
    loop {
        let Some(material) = tls.borrow_and_update().clone() else {
            if tls.changed().await.is_err() {
                return;
            }
            continue;
        };
        let endpoint = desired.borrow().endpoint;
        let address = SocketAddr::new(endpoint.address, endpoint.port);
        let connected = connection::connect(address, &material, CONNECT_TIMEOUT, CALL_TIMEOUT);
        let problem = match connected.await {
            Ok(channel) => {
                backoff = FIRST_BACKOFF;
                failures = 0;
                let _ = reports.send(DriverReport::Connected(node.clone()));
                let problem = drive(&node, channel, &mut desired, &mut tls, &reports).await;
                match problem {
                    Some(problem) => problem,
                    // A new endpoint (or the controller is gone): reconnect at once.
                    None => continue,
                }
            }
            Err(problem) => problem,
        };
        failures += 1;
        tracing::warn!(%node, %problem, "announcer unreachable; retrying in {backoff:?}");
        if failures >= 2 {
            let _ = reports.send(DriverReport::Unreachable(node.clone(), problem));
        }
        let wake = Instant::now() + backoff;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            // A new address for the announcer (it restarted elsewhere): try it now.
            changed = endpoint_changed(&mut desired, endpoint) => if !changed { return },
        }
    }
}

/// Resolves when the desired endpoint differs from `known` (true) or the sender is gone.
async fn endpoint_changed(
    desired: &mut watch::Receiver<NodeDesired>,
    known: AnnouncerEndpoint,
) -> bool {
    loop {
        if desired.changed().await.is_err() {
            return false;
        }
        if desired.borrow().endpoint != known {
            return true;
        }
    }
}

/// Keeps one connection in sync. Returns `Some(problem)` when the connection failed, `None`
/// when the endpoint changed (reconnect). New TLS material is used by the next connection.
async fn drive(
    node: &NodeName,
    channel: Connection,
    desired: &mut watch::Receiver<NodeDesired>,
    tls: &mut watch::Receiver<Option<Arc<ClientTls>>>,
    reports: &mpsc::UnboundedSender<DriverReport>,
) -> Option<String> {
    let mut client = AnnouncerClient::new(channel);
    // Events tell us when a phase changes (link down, BGP session up) without polling, and
    // the stream's end tells us the connection broke.
    let mut events = match client.watch_events(pb::WatchEventsRequest {}).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => return Some(describe(&status)),
    };
    let endpoint = desired.borrow().endpoint;
    let mut send = true;
    // What this connection has sent: a reconnect sends everything again.
    let mut synced: Option<u64> = None;
    let mut peers = PeerSync::default();
    let mut last_sync: Option<Instant> = None;
    loop {
        if send {
            if let Some(last) = last_sync {
                tokio::time::sleep_until(last + SYNC_SPACING).await;
            }
            let want = desired.borrow_and_update().clone();
            if want.endpoint != endpoint {
                return None;
            }
            if let Some(problem) = peers.send(node, &mut client, &want).await {
                return Some(problem);
            }
            if synced == Some(want.generation) {
                if let Some(problem) = refresh_state(node, &mut client, reports, &peers).await {
                    return Some(problem);
                }
                send = false;
                continue;
            }
            synced = Some(want.generation);
            let request = wire::sync_request(
                node,
                want.generation,
                &want.set,
                &want.peers,
                want.key.as_ref(),
            );
            let started = Instant::now();
            last_sync = Some(started);
            match client.sync(request).await {
                Ok(_) => {
                    let _ = reports.send(DriverReport::Synced(node.clone(), started.elapsed()));
                }
                Err(status) if is_refusal(&status) => {
                    tracing::error!(%node, generation = want.generation, "announcer refused Sync: {}", status.message());
                    let _ = reports.send(DriverReport::Refused(
                        node.clone(),
                        status.message().to_string(),
                    ));
                }
                Err(status) => return Some(describe(&status)),
            }
            // A newer set is already waiting (a burst of changes): send it first, and read
            // the state once, after the last. Each read returns the whole state, so reading
            // after every Sync of a burst cost more than the Syncs themselves.
            if desired.has_changed().unwrap_or(false) {
                continue;
            }
            if let Some(problem) = refresh_state(node, &mut client, reports, &peers).await {
                return Some(problem);
            }
            send = false;
        }
        tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() {
                    return None;
                }
                send = true;
            }
            changed = tls.changed() => {
                if changed.is_err() {
                    return None;
                }
                // Rotated material: new connections use it; this one stays until it breaks.
            }
            event = events.next() => match event {
                Some(Ok(event)) => {
                    if let Some((address, sentence)) = wire::conflict(node, &event) {
                        let _ = reports.send(DriverReport::Conflict(node.clone(), address, sentence));
                    }
                    // Coalesce a burst of events into one state read, which a waiting
                    // Sync makes anyway.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while let Some(Some(Ok(_))) = events.next().now_or_never() {}
                    if desired.has_changed().unwrap_or(false) {
                        send = true;
                        continue;
                    }
                    if let Some(problem) = refresh_state(node, &mut client, reports, &peers).await {
                        return Some(problem);
                    }
                }
                Some(Err(status)) => return Some(describe(&status)),
                None => return Some("the announcer closed the event stream".to_string()),
            },
        }
    }
}

/// What this connection did with the managed BGP peers.
#[derive(Default)]
struct PeerSync {
    /// The generation last sent (accepted or refused as a whole).
    sent: Option<u64>,
    /// The announcer's answer: its refusals, or why it took none.
    refused: Vec<pb::PeerRefusal>,
    problem: Option<String>,
}

impl PeerSync {
    /// Sends the node's peer set when it is known and not sent yet on this connection.
    /// Returns a connection problem; refusals are remembered for the next report.
    async fn send(
        &mut self,
        node: &NodeName,
        client: &mut AnnouncerClient<Connection>,
        want: &NodeDesired,
    ) -> Option<String> {
        let peers = want.bgp_peers.as_ref()?;
        if self.sent == Some(want.peers_generation) {
            return None;
        }
        let request = crate::peers::wire::sync_peers_request(want.peers_generation, peers);
        match client.sync_peers(request).await {
            Ok(response) => {
                self.refused = response.into_inner().refused;
                self.problem = None;
            }
            // An announcer without --bgp (or too old for SyncPeers) takes no peers; that only
            // matters when it is given some.
            Err(status) if is_refusal(&status) || status.code() == Code::Unimplemented => {
                if !peers.is_empty() {
                    tracing::warn!(%node, "announcer refused its BGP peers: {}", status.message());
                }
                self.refused.clear();
                self.problem = Some(status.message().to_string());
            }
            Err(status) => return Some(describe(&status)),
        }
        self.sent = Some(want.peers_generation);
        None
    }
}

async fn refresh_state(
    node: &NodeName,
    client: &mut AnnouncerClient<Connection>,
    reports: &mpsc::UnboundedSender<DriverReport>,
    peers: &PeerSync,
) -> Option<String> {
    match client.get_state(pb::GetStateRequest {}).await {
        Ok(state) => {
            let state = state.into_inner();
            let _ = reports.send(DriverReport::State(node.clone(), wire::report(&state)));
            if peers.sent.is_some() {
                let mut report = crate::peers::wire::report(&peers.refused, &state);
                report.problem = peers.problem.clone();
                let _ = reports.send(DriverReport::Peers(node.clone(), report));
            }
            None
        }
        Err(status) => Some(describe(&status)),
    }
}

/// Refusals are answers about the request, not about the connection.
fn is_refusal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange
    )
}

fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        text.push_str(&format!(" ({})", error_chain(source)));
    }
    text
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
