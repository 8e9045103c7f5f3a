//! BGP mode: an announce-only BGP speaker (RFC 4271) that advertises load-balancer addresses
//! as host routes (/32, /128) to the node's routers.
//!
//! Three layers, kept apart the way holo and rustybgp do it:
//!
//! ```text
//!   speaker.rs   peers + desired routes ──► one session task per peer
//!        │                                      │
//!   session.rs   TCP socket, timers  ◄── Output ─┤── Input ──►  fsm.rs (pure RFC 4271 §8 machine)
//!        │                                      │
//!   codec/       bytes  ◄──────────────►  Message (pure wire format)
//! ```
//!
//! `updates.rs` turns the set of announced routes into packed UPDATE messages; it is pure too.

pub mod args;
pub mod attributes;
pub mod backend;
pub mod codec;
pub mod config;
pub mod ctl;
pub mod fsm;
pub mod metrics;
pub mod next_hop;
pub mod peer_sync;
pub mod restart;
pub mod session;
pub mod speaker;
pub mod timers;
mod transport;
pub mod updates;
