//! Failover among announcers (layer2 and vip): the candidates of each address elect the node
//! that answers for it with authenticated UDP heartbeats on the nodes' own network, without
//! the provider or the API server.
//!
//! - [`election`]: who holds what (pure).
//! - [`packet`]: the heartbeat datagram, HMAC-SHA256 and replay protection.
//! - [`runner`]: the socket, the timers, and the decisions handed to the engine.
//!
//! Written here: no maintained crate does VRRP-style election for many addresses per packet
//! with our candidate lists (VRRP itself carries one router per virtual router id and 255
//! groups at most), and the election is small enough to test as a pure state machine.

pub mod election;
pub mod packet;
pub mod runner;

pub use election::{Decision, NodeId, Settings};
pub use runner::{Failover, FailoverMetrics};
