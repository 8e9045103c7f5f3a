//! The gRPC contract between `ferrolb-provider` (or any operator tool) and `ferrolb-announcer`.
//!
//! The `.proto` files under `proto/proto/` are the source of truth; this crate only compiles
//! them (see `build.rs`) and re-exports the generated types.
#![forbid(unsafe_code)]

/// `ferrolb.announcer.v1`: desired announcements, state, events and BGP peers.
pub mod announcer {
    /// Version 1 of the announcer API.
    #[allow(clippy::all, rust_2018_idioms, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("ferrolb.announcer.v1");
    }
}
