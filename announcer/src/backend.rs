//! The seam between the gRPC server and the BGP speaker.
//!
//! The server owns the desired set; for mode BGP it hands the current BGP announcements to a
//! [`BgpBackend`] and forwards the peer RPCs to it. The speaker (`crate::bgp`) implements the
//! trait and reports session changes as [`Event`]s through the [`EventSender`] it is given.
//! Everything crossing the seam is a domain value (validated addresses, parsed attributes,
//! peer configurations and snapshots); `grpc.rs` and `wire.rs` convert the messages.
//! Without a backend, BGP announcements are stored as PHASE_PENDING ("no BGP speaker
//! configured") and the peer RPCs fail with FAILED_PRECONDITION.

use std::net::IpAddr;

use proto::announcer::v1::Event;

use crate::bgp::attributes::RouteAttributes;
use crate::bgp::config::PeerConfig;
use crate::bgp::peer_sync::DesiredPeer;
use crate::bgp::session::PeerSnapshot;
use crate::bgp::speaker::{PeerSyncOutcome, SpeakerError};

/// Where events go; every WatchEvents stream subscribes to it.
pub type EventSender = tokio::sync::broadcast::Sender<Event>;

/// One address to advertise over BGP (as a host route), validated, with its own attributes
/// (fields left empty take the peer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRoute {
    pub address: IpAddr,
    pub attributes: RouteAttributes,
}

/// A BGP speaker, as seen by the server.
#[tonic::async_trait]
pub trait BgpBackend: Send + Sync + 'static {
    /// Replaces the set of addresses advertised over BGP.
    async fn set_announcements(&self, routes: Vec<BgpRoute>);

    /// Adds or replaces a local peer (keyed by address), validated by the caller.
    async fn add_peer(&self, peer: PeerConfig) -> Result<PeerSnapshot, SpeakerError>;

    /// Removes a local peer (Cease NOTIFICATION); false when there was none.
    async fn delete_peer(&self, address: IpAddr) -> Result<bool, SpeakerError>;

    /// Replaces the managed peer set (SyncPeers), entries validated (or refused) by the caller.
    async fn sync_peers(
        &self,
        generation: u64,
        peers: Vec<DesiredPeer>,
    ) -> Result<PeerSyncOutcome, SpeakerError>;

    /// Our AS number for managed peers that give none (`--bgp-local-asn`).
    fn default_local_asn(&self) -> Option<u32> {
        None
    }

    /// The configured peers and their sessions.
    fn peers(&self) -> Vec<PeerSnapshot>;

    /// Whether the given announcement is advertised on at least one Established session;
    /// used to report PHASE_ACTIVE vs PHASE_PENDING. `None`: unknown (treated as pending).
    fn is_advertised(&self, _address: IpAddr) -> Option<bool> {
        None
    }

    /// The desired set is complete: a Sync was applied. After a restart the speaker holds
    /// End-of-RIB until this (RFC 4724 graceful restart, `bgp/restart.rs`).
    fn desired_complete(&self) {}

    /// Withdraws everything and closes all sessions with Cease (SIGTERM).
    async fn shutdown(&self);
}
