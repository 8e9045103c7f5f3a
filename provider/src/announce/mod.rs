//! The provider's second job (cluster mode): make every allocated address reachable by
//! driving the announcer on each node.
//!
//! ```text
//!                 ┌──────────────── same watches ────────────────┐
//!   Services, ConfigMap ─▶ Index (allocate) ──Target per Service──▶ Planner (announce)
//!                            ▲                                      │ per-node sets
//!                            └──── ServiceStatus, moves ────────────┤
//!   Nodes, EndpointSlices ─▶ topology ─────────────────────────────▶│
//!                                                                   ▼
//!                                       driver per node ──mTLS gRPC Sync──▶ ferrolb-announcer
//!                                              └── state reports ──▶ Planner
//! ```
//!
//! `model`, `topology`, `plan` and `wire` are pure and tested without an API server or
//! sockets; `driver` does the gRPC I/O and `job` ties them together for the controller task.

pub mod connection;
pub mod driver;
pub mod heartbeat_key;
pub mod job;
pub mod model;
pub mod plan;
pub mod topology;
pub mod wire;

pub use model::{
    AnnouncerEndpoint, FailoverPeer, HeartbeatKey, Ineligible, InterfaceChoice, Mode,
    NodeAnnouncement, NodeInfo, NodeName, Phase, Target,
};
pub use plan::{Flush, Move, Planner, ServiceStatus, rendezvous_score};

#[cfg(test)]
mod node_selection_tests;
#[cfg(test)]
mod tests;
