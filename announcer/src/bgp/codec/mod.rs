//! The BGP-4 wire format (RFC 4271 §4) with the extensions FerroLB speaks: multiprotocol
//! (RFC 4760), 4-octet AS numbers (RFC 6793), route refresh (RFC 2918), graceful restart
//! (RFC 4724), communities (RFC 1997) and large communities (RFC 8092).
//!
//! Pure: no sockets, no clocks. [`Message::encode`] writes one message; [`Message::decode`]
//! reads one complete message, and [`frame_length`] finds where a message ends in a TCP stream.
//! Decoding validates what it reads and returns a [`DecodeError`] saying which NOTIFICATION to
//! send, or — for UPDATE attribute errors that RFC 7606 allows — that the UPDATE is to be
//! treated as a withdrawal while the session stays up.

mod attributes;
mod error;
mod message;
mod nlri;
mod open;
mod update;

pub use attributes::{
    AsPath, AsSegment, AsSegmentKind, LargeCommunity, MpReach, MpUnreach, Origin, PathAttribute,
};
pub use error::{DecodeError, EncodeError, ErrorAction, Notification};
pub use message::{CodecContext, HEADER_LEN, MAX_MESSAGE_LEN, Message, RouteRefresh, frame_length};
pub use nlri::Family;
pub use open::{AS_TRANS, Capability, GracefulRestartFamily, Open};
pub use update::Update;
