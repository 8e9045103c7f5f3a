//! BGP peers as Kubernetes objects (`BGPPeer`, `ferrolb.io/v1alpha1`, cluster-scoped): each
//! object names a router and the nodes that peer with it; the provider pushes every node's
//! whole peer set to its announcer with the generational `SyncPeers`, and writes each
//! object's status from the sessions the announcers report.
//!
//! ```text
//!  BGPPeer watch ──model::parse──┐                     per node: Vec<NodePeer>
//!  Secret watch (password) ──────┼─▶ PeerBook ──desired()──▶ announce::Job ──▶ driver ──SyncPeers──▶ announcer
//!  Node labels (planner) ────────┘      ▲                                        │
//!                                       └──────── PeerReport (ListPeers, refusals) ◀┘
//!  PeerBook::statuses() ──status::StatusBook::due──▶ PATCH bgppeers/<name>/status (leading only)
//! ```
//!
//! `model`, `book` and `status` are pure; `wire` converts to and from the gRPC messages;
//! `watch` does the Kubernetes I/O.

pub mod book;
pub mod model;
pub mod status;
pub mod watch;
pub mod wire;

pub use book::{NodePeer, PeerBook, PeerReport, SessionReport};
pub use model::{BgpPeer, PeerObject, PeerSpec};

#[cfg(test)]
mod tests;
