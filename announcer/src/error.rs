//! The one error type of the announcer's core: every refusal the engine can give, each with
//! the field and value it is about. `grpc.rs` maps it to a gRPC status code in one place
//! ([`EngineError::code`] says which kind it is).

use crate::bgp::config::ConfigError;
use crate::bgp::speaker::SpeakerError;
use crate::model::InvalidField;
use crate::safety::Refusal;
use crate::state::{AnnounceError, SyncError};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A field failed validation (model.rs).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The safety policy refused the address.
    #[error("{field}: {refusal}")]
    Refused { field: String, refusal: Refusal },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    #[error("listing interfaces: {0}")]
    Interfaces(std::io::Error),
    #[error("BGP mode is not enabled (no BGP speaker configured)")]
    BgpDisabled,
    /// A peer failed validation (`peer.<field>: …`).
    #[error(transparent)]
    InvalidPeer(ConfigError),
    /// The speaker could not take the peer (e.g. its passive listener).
    #[error(transparent)]
    PeerRefused(SpeakerError),
}

/// The kind of a refusal, as a client should act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (INVALID_ARGUMENT).
    InvalidArgument,
    /// The request is fine but the current state forbids it (FAILED_PRECONDITION).
    FailedPrecondition,
    /// Something on this node failed (INTERNAL).
    Internal,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Invalid(_)
            | EngineError::InvalidPeer(_)
            | EngineError::Sync(SyncError::Duplicate(_) | SyncError::ModeConflict(_)) => {
                ErrorKind::InvalidArgument
            }
            EngineError::Refused { refusal, .. } => match refusal {
                Refusal::OwnAddress { .. } => ErrorKind::FailedPrecondition,
                Refusal::Denied { .. } | Refusal::NotAllowed { .. } => ErrorKind::InvalidArgument,
            },
            EngineError::Sync(_)
            | EngineError::Announce(_)
            | EngineError::BgpDisabled
            | EngineError::PeerRefused(_) => ErrorKind::FailedPrecondition,
            EngineError::Interfaces(_) => ErrorKind::Internal,
        }
    }
}
