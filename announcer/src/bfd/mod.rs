//! BFD (RFC 5880, asynchronous mode; single hop RFC 5881, multihop RFC 5883): sub-second
//! detection that a peer's forwarding path is gone, so the BGP session tied to it goes down
//! long before its hold timer would expire.
//!
//! Three layers, like the BGP speaker:
//!
//! ```text
//!   task.rs     UDP sockets (TTL 255, source port 49152–65535), timers ── watch<BfdStatus> ──► bgp/session.rs
//!      │                        │
//!   session.rs  pure RFC 5880 §6.8 state machine: process(Input) -> Vec<Output>
//!      │
//!   packet.rs   Control packet + authentication section, encode/decode (pure)
//! ```
//!
//! `config.rs` validates the gRPC `Bfd` block of a peer. No crate on crates.io offered a
//! maintained sans-IO BFD core with authentication (the one BFD daemon crate found,
//! `rust-bfd`, is three commits old, owns its sockets and event loop and has no
//! authentication), so it is written here.

pub mod config;
pub mod packet;
pub mod session;
pub mod task;

pub use config::BfdConfig;
pub use packet::State;
pub use task::{BfdHandle, BfdStatus, Manager};
