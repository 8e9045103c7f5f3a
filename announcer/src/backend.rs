//! The seam between the gRPC server and the BGP speaker.
//!
//! The server owns the desired set; for mode BGP it hands the current BGP announcements to a
//! [`BgpBackend`] and forwards the peer RPCs to it. The speaker (`crate::bgp`) implements the
//! trait and reports session changes as [`Event`]s through the [`EventSender`] it is given.
//! Without a backend, BGP announcements are stored as PHASE_PENDING ("no BGP speaker
//! configured") and the peer RPCs fail with FAILED_PRECONDITION.

use std::net::IpAddr;

use proto::announcer::v1::{Event, Peer, PeerStatus};

use crate::bgp::attributes::RouteAttributes;

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

    /// Adds or replaces a peer (keyed by address). Invalid peers are refused with
    /// INVALID_ARGUMENT naming the field.
    async fn add_peer(&self, peer: Peer) -> Result<PeerStatus, tonic::Status>;

    /// Removes a peer (Cease NOTIFICATION); false when there was none.
    async fn delete_peer(&self, address: &str) -> bool;

    /// The configured peers and their sessions.
    fn peers(&self) -> Vec<PeerStatus>;

    /// Whether the given announcement is advertised on at least one Established session;
    /// used to report PHASE_ACTIVE vs PHASE_PENDING. `None`: unknown (treated as pending).
    fn is_advertised(&self, _address: IpAddr) -> Option<bool> {
        None
    }

    /// Withdraws everything and closes all sessions with Cease (SIGTERM).
    async fn shutdown(&self);
}
