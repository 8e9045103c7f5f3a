//! Address allocation for LoadBalancer Services, over address *ranges*.
//!
//! ```text
//!  PoolSet (from pools::parse_config) ──► Allocator::new / set_pools
//!  existing Service addresses ──────────► Allocator::adopt  (once, after a restart)
//!  ServiceRequest ──────────────────────► Allocator::allocate ──► Allocation | AllocationError
//!  Service deleted ─────────────────────► Allocator::release
//! ```
//! One cluster-wide in-use set means an address is never given to two Services, even where
//! namespace pools overlap. Free space is kept as intervals per pool, so allocate, reserve and
//! release are O(log n) and memory grows with pools and allocations, never with pool size
//! (a /8 or an IPv6 /64 is one interval). Pure code: no Kubernetes I/O, no async, no clock.

// Errors name the Service, its pool and the contested holder so a user can act on them; they
// are returned once per failed sync, never on a hot path, so their size does not matter.
#![allow(clippy::result_large_err)]

mod adopt;
mod allocator;
mod errors;
mod family;
pub(crate) mod ranges;
mod request;
mod sharing;
mod space;

pub use adopt::{Adoption, AdoptionConflict};
pub use allocator::{Allocator, PoolStats};
pub use errors::AllocationError;
pub use family::{FamilyPolicy, IpFamily};
pub use request::{Allocation, Families, OneOrMore, Ports, ServiceKey, ServiceRequest};
pub use sharing::{Protocol, SharingKey};

#[cfg(test)]
mod tests;
