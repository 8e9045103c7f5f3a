//! The observed side of an announcement, in domain terms: its [`Phase`] and where it is in
//! force. The engine keeps one [`Observed`] per desired entry; `wire.rs` turns them into the
//! gRPC `AnnouncementStatus`.

use std::borrow::Cow;

use crate::events;
use crate::l2::Mac;
use crate::model::{Desired, Mode};

/// How an announcement is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In force: answered on a link that is up, or advertised on an Established session.
    Active,
    /// Stored and set up as far as possible, waiting for something outside (a link to come
    /// up, a BGP session); becomes Active by itself.
    Pending,
    /// Cannot be put in force as asked (refused, no such interface, netlink error); retried.
    Failed,
}

/// Observed state of one announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub phase: Phase,
    /// Name and index of the interface it is in force on (layer2 and vip).
    pub interface: Option<(String, u32)>,
    pub mac: Option<Mac>,
    pub message: Cow<'static, str>,
    pub since_unix_ms: u64,
}

impl Observed {
    pub fn new(phase: Phase, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            phase,
            interface: None,
            mac: None,
            message: message.into(),
            since_unix_ms: events::now_ms(),
        }
    }

    /// Same phase, place and message: a report of it would say nothing new.
    pub fn same_as(&self, other: &Observed) -> bool {
        self.phase == other.phase
            && self.message == other.message
            && self.interface == other.interface
    }
}

/// One announcement as reported: what was asked and how it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncementStatus {
    pub desired: Desired,
    pub observed: Observed,
}

/// What a Sync changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The generation now in force.
    pub generation: u64,
    /// New entries, and changed ones (same address and mode, anything else different).
    pub added: u32,
    pub removed: u32,
    pub unchanged: u32,
}

/// Everything announced, for GetState.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub generation: u64,
    pub announcements: Vec<AnnouncementStatus>,
    /// Number of announcements per mode.
    pub counts: Vec<(Mode, usize)>,
}
