//! Errors of the wire format: what went wrong while decoding, and what RFC 4271 §6 / RFC 7606
//! say to do about it.

use std::fmt;

/// A NOTIFICATION message (RFC 4271 §4.5): error code, subcode and diagnostic data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    /// RFC 4271 §4.5 error codes.
    pub const MESSAGE_HEADER_ERROR: u8 = 1;
    pub const OPEN_MESSAGE_ERROR: u8 = 2;
    pub const UPDATE_MESSAGE_ERROR: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM_ERROR: u8 = 5;
    pub const CEASE: u8 = 6;
    /// RFC 7313 §5: ROUTE-REFRESH message error.
    pub const ROUTE_REFRESH_ERROR: u8 = 7;

    /// A notification without diagnostic data.
    pub fn new(code: u8, subcode: u8) -> Self {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// A notification carrying diagnostic data.
    pub fn with_data(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// Cease / Administrative Shutdown (RFC 4486 §3, subcode 2): sent when we stop.
    pub fn admin_shutdown() -> Self {
        Notification::new(Self::CEASE, 2)
    }

    /// Cease / Peer De-configured (RFC 4486 §3, subcode 3): sent when a peer is deleted.
    pub fn peer_deconfigured() -> Self {
        Notification::new(Self::CEASE, 3)
    }

    /// The name of the error code, as RFC 4271 §4.5 spells it.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            Self::MESSAGE_HEADER_ERROR => "Message Header Error",
            Self::OPEN_MESSAGE_ERROR => "OPEN Message Error",
            Self::UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
            Self::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            Self::FSM_ERROR => "Finite State Machine Error",
            Self::CEASE => "Cease",
            Self::ROUTE_REFRESH_ERROR => "ROUTE-REFRESH Message Error",
            _ => "unknown error code",
        }
    }

    /// The name of the subcode (RFC 4271 §6, RFC 4486 for Cease, RFC 5492 for capabilities).
    pub fn subcode_name(&self) -> &'static str {
        match (self.code, self.subcode) {
            (Self::MESSAGE_HEADER_ERROR, 1) => "Connection Not Synchronized",
            (Self::MESSAGE_HEADER_ERROR, 2) => "Bad Message Length",
            (Self::MESSAGE_HEADER_ERROR, 3) => "Bad Message Type",
            (Self::OPEN_MESSAGE_ERROR, 1) => "Unsupported Version Number",
            (Self::OPEN_MESSAGE_ERROR, 2) => "Bad Peer AS",
            (Self::OPEN_MESSAGE_ERROR, 3) => "Bad BGP Identifier",
            (Self::OPEN_MESSAGE_ERROR, 4) => "Unsupported Optional Parameter",
            (Self::OPEN_MESSAGE_ERROR, 6) => "Unacceptable Hold Time",
            (Self::OPEN_MESSAGE_ERROR, 7) => "Unsupported Capability",
            (Self::UPDATE_MESSAGE_ERROR, 1) => "Malformed Attribute List",
            (Self::UPDATE_MESSAGE_ERROR, 2) => "Unrecognized Well-known Attribute",
            (Self::UPDATE_MESSAGE_ERROR, 3) => "Missing Well-known Attribute",
            (Self::UPDATE_MESSAGE_ERROR, 4) => "Attribute Flags Error",
            (Self::UPDATE_MESSAGE_ERROR, 5) => "Attribute Length Error",
            (Self::UPDATE_MESSAGE_ERROR, 6) => "Invalid ORIGIN Attribute",
            (Self::UPDATE_MESSAGE_ERROR, 8) => "Invalid NEXT_HOP Attribute",
            (Self::UPDATE_MESSAGE_ERROR, 9) => "Optional Attribute Error",
            (Self::UPDATE_MESSAGE_ERROR, 10) => "Invalid Network Field",
            (Self::UPDATE_MESSAGE_ERROR, 11) => "Malformed AS_PATH",
            (Self::CEASE, 1) => "Maximum Number of Prefixes Reached",
            (Self::CEASE, 2) => "Administrative Shutdown",
            (Self::CEASE, 3) => "Peer De-configured",
            (Self::CEASE, 4) => "Administrative Reset",
            (Self::CEASE, 5) => "Connection Rejected",
            (Self::CEASE, 6) => "Other Configuration Change",
            (Self::CEASE, 7) => "Connection Collision Resolution",
            (Self::CEASE, 8) => "Out of Resources",
            (Self::CEASE, 9) => "Hard Reset",
            (Self::CEASE, 10) => "BFD Down",
            (_, 0) => "Unspecific",
            _ => "unknown subcode",
        }
    }
}

impl fmt::Display for Notification {
    /// E.g. `Cease/Administrative Shutdown` or `OPEN Message Error/Bad Peer AS (data 00fd)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code_name(), self.subcode_name())?;
        if !self.data.is_empty() {
            write!(f, " (data ")?;
            for byte in &self.data {
                write!(f, "{byte:02x}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// What the receiver of a bad message must do (RFC 4271 §6, RFC 7606 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorAction {
    /// Send this NOTIFICATION and close the session.
    SendNotification(Notification),
    /// RFC 7606 "treat-as-withdraw": the routes of the UPDATE are to be considered withdrawn;
    /// the session stays up.
    TreatAsWithdraw,
}

/// A message that could not be decoded; `reason` says which field was wrong and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DecodeError {
    pub action: ErrorAction,
    pub reason: String,
}

impl DecodeError {
    /// An error that closes the session with the given NOTIFICATION.
    pub fn notify(code: u8, subcode: u8, data: impl Into<Vec<u8>>, reason: String) -> Self {
        DecodeError {
            action: ErrorAction::SendNotification(Notification::with_data(code, subcode, data)),
            reason,
        }
    }

    /// An UPDATE error handled by treat-as-withdraw (RFC 7606 §2).
    pub fn treat_as_withdraw(reason: String) -> Self {
        DecodeError {
            action: ErrorAction::TreatAsWithdraw,
            reason,
        }
    }
}

/// A message that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("BGP message of {len} bytes exceeds the 4096-byte maximum (RFC 4271 §4.1)")]
    MessageTooLong { len: usize },
    #[error("path attribute {type_code} of {len} bytes exceeds 65535 bytes")]
    AttributeTooLong { type_code: u8, len: usize },
    #[error("{what} holds {count} entries, more than its one-byte count allows")]
    TooManyEntries { what: &'static str, count: usize },
}
