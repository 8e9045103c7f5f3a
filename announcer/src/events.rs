//! Building [`Event`]s for the WatchEvents stream.

use std::time::{SystemTime, UNIX_EPOCH};

use proto::announcer::v1::{self as pb, event::Kind};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn event(kind: Kind) -> pb::Event {
    pb::Event {
        unix_ms: now_ms(),
        kind: Some(kind),
    }
}

pub fn error(subject: impl Into<String>, message: impl Into<String>) -> pb::Event {
    event(Kind::Error(pb::Error {
        subject: subject.into(),
        message: message.into(),
    }))
}
