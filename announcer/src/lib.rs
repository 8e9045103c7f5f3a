//! `ferrolb-announcer`: makes load-balancer addresses reachable from one node.
//!
//! It is driven over gRPC (`proto::announcer::v1`) and knows nothing of Kubernetes.
//!
//! ```text
//!  main.rs ─► server.rs ─► grpc.rs (tonic; wire.rs converts, error.rs → status codes)
//!                              │ domain values: Desired in, AnnouncementStatus/Snapshot out
//!                              ▼
//!                          engine.rs ─┬─► l2/ (ARP/NDP responder, GARP)
//!                                                       ├─► vip.rs (netlink addresses)
//!                                                       └─► backend.rs (BGP speaker seam)
//!  ctl.rs: the operator client of the same API
//! ```
//! All `unsafe` code of this crate lives in [`sys`].
#![deny(unsafe_code)]

pub mod args;
pub mod backend;
pub mod bfd;
pub mod bgp;
pub mod ctl;
pub mod engine;
pub mod error;
pub mod events;
pub mod failover;
pub mod grpc;
pub mod interfaces;
pub mod l2;
pub mod link_events;
pub mod metrics;
pub mod model;
pub mod safety;
pub mod server;
pub mod state;
pub mod status;
#[allow(unsafe_code)]
pub mod sys;
pub mod tls;
pub mod vip;
pub mod wire;
