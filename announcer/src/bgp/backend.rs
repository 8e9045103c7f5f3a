//! The speaker behind the announcer's gRPC API: implements [`BgpBackend`] (announcements of
//! mode BGP, AddPeer/DeletePeer/ListPeers, shutdown) and turns peer status into
//! `PeerStatus` messages and `PeerChanged` events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use prometheus_client::registry::Registry;
use proto::announcer::v1::{self as pb, event::Kind};

use crate::backend::{BgpBackend, BgpRoute, EventSender};
use crate::events;

use super::config::PeerConfig;
use super::fsm::State;
use super::metrics::BgpMetrics;
use super::peer_sync::DesiredPeer;
use super::restart::RestartOptions;
use super::session::{PeerSnapshot, RouteSet};
use super::speaker::{PeerSyncOutcome, Speaker, SpeakerError};

/// The BGP speaker as the gRPC server's backend.
#[derive(Clone)]
pub struct BgpService {
    speaker: Speaker,
    /// `--bgp-local-asn`: our AS number for managed peers that give none.
    default_local_asn: Option<u32>,
}

fn session_state(state: State) -> pb::SessionState {
    match state {
        State::Idle => pb::SessionState::Idle,
        State::Connect => pb::SessionState::Connect,
        State::Active => pb::SessionState::Active,
        State::OpenSent => pb::SessionState::OpenSent,
        State::OpenConfirm => pb::SessionState::OpenConfirm,
        State::Established => pb::SessionState::Established,
    }
}

/// The gRPC form of a peer's status.
pub fn peer_status(snapshot: &PeerSnapshot) -> pb::PeerStatus {
    pb::PeerStatus {
        peer: Some(snapshot.config.to_proto()),
        state: session_state(snapshot.state).into(),
        uptime_seconds: snapshot.uptime_seconds,
        last_error: snapshot.last_error.clone(),
        prefixes_sent: snapshot.prefixes_sent,
        updates_sent: snapshot.updates_sent,
        capabilities: snapshot.capabilities.clone(),
        bfd: snapshot.bfd.as_ref().map(|bfd| pb::BfdStatus {
            state: bfd.state.name().into(),
            diagnostic: bfd.diagnostic.describe().into(),
            local_discriminator: bfd.local_discriminator,
            remote_discriminator: bfd.remote_discriminator,
            detection_time_ms: u64::try_from(bfd.detection_time.as_millis()).unwrap_or(u64::MAX),
            up_count: bfd.up_count,
        }),
        managed: snapshot.managed,
    }
}

/// A host route for an announced address.
fn host_route(address: IpAddr) -> IpNet {
    IpNet::from(address)
}

impl BgpService {
    /// A speaker whose metrics live in `registry` and whose session changes (state, last
    /// error or BFD state) are sent as `PeerChanged` events.
    pub fn new(
        events: Option<EventSender>,
        registry: &mut Registry,
        restart: &RestartOptions,
    ) -> Self {
        let metrics = BgpMetrics::new(registry);
        type Seen = (State, String, Option<&'static str>);
        let last_seen: Mutex<HashMap<IpAddr, Seen>> = Mutex::new(HashMap::new());
        let sender = events;
        let reporter = Arc::new(move |snapshot: &PeerSnapshot| {
            let Some(sender) = &sender else { return };
            let key = (
                snapshot.state,
                snapshot.last_error.clone(),
                snapshot.bfd.as_ref().map(|bfd| bfd.state.name()),
            );
            let mut seen = last_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.get(&snapshot.config.address) == Some(&key) {
                return; // counters alone do not make an event
            }
            seen.insert(snapshot.config.address, key);
            let event = events::event(Kind::PeerChanged(pb::PeerChanged {
                status: Some(peer_status(snapshot)),
            }));
            // No subscriber is not an error.
            let _ = sender.send(event);
        });
        BgpService {
            speaker: Speaker::with_restart(metrics, reporter, restart),
            default_local_asn: None,
        }
    }

    /// Managed peers without a local AS number use `asn` (`--bgp-local-asn`).
    pub fn with_default_local_asn(mut self, asn: Option<u32>) -> Self {
        self.default_local_asn = asn;
        self
    }

    /// The speaker itself (for standalone peers from flags and for tests).
    pub fn speaker(&self) -> &Speaker {
        &self.speaker
    }
}

#[tonic::async_trait]
impl BgpBackend for BgpService {
    async fn set_announcements(&self, routes: Vec<BgpRoute>) {
        let routes: RouteSet = routes
            .into_iter()
            .map(|route| (host_route(route.address), route.attributes))
            .collect();
        self.speaker.set_routes(routes);
    }

    async fn add_peer(&self, peer: PeerConfig) -> Result<PeerSnapshot, SpeakerError> {
        self.speaker.add_peer(peer).await
    }

    async fn delete_peer(&self, address: IpAddr) -> Result<bool, SpeakerError> {
        self.speaker.delete_local_peer(address).await
    }

    async fn sync_peers(
        &self,
        generation: u64,
        peers: Vec<DesiredPeer>,
    ) -> Result<PeerSyncOutcome, SpeakerError> {
        self.speaker.sync_peers(generation, peers).await
    }

    fn default_local_asn(&self) -> Option<u32> {
        self.default_local_asn
    }

    fn peers(&self) -> Vec<PeerSnapshot> {
        self.speaker.peers()
    }

    fn is_advertised(&self, address: IpAddr) -> Option<bool> {
        Some(self.speaker.is_advertised(&host_route(address)))
    }

    fn desired_complete(&self) {
        self.speaker.desired_complete();
    }

    async fn shutdown(&self) {
        self.speaker.shutdown().await;
    }
}
