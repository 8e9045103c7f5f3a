//! `ferrolb-announcer`: makes load-balancer addresses reachable from one node.
//!
//! It is driven over gRPC (`proto::announcer::v1`) and knows nothing of Kubernetes.
//! All `unsafe` code of this crate lives in [`sys`].
#![deny(unsafe_code)]

pub mod args;
pub mod bgp;
#[allow(unsafe_code)]
pub mod sys;
