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
    /// A failover candidate that does not hold the address (another one answers, or the
    /// candidates are electing one); ready to take over.
    Standby,
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
    /// Failover: the candidate that answers for the address as this node sees it.
    pub holder: Option<String>,
}

impl Observed {
    pub fn new(phase: Phase, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            phase,
            interface: None,
            mac: None,
            message: message.into(),
            since_unix_ms: events::now_ms(),
            holder: None,
        }
    }

    /// A failover standby: `holder` answers (if known), `message` says why not this node.
    pub fn standby(holder: Option<String>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            holder,
            ..Self::new(Phase::Standby, message)
        }
    }

    /// What an Active entry in force on a link becomes when that link is down: Pending
    /// "interface X is down", still on its interface (it becomes Active again when the link
    /// comes up, without being removed). `None` when nothing changes.
    pub fn on_link_down(&self) -> Option<Observed> {
        let (name, _) = self.interface.as_ref()?;
        (self.phase == Phase::Active).then(|| Observed {
            phase: Phase::Pending,
            message: format!("interface {name} is down").into(),
            since_unix_ms: events::now_ms(),
            ..self.clone()
        })
    }

    /// Same phase, place and message: a report of it would say nothing new.
    pub fn same_as(&self, other: &Observed) -> bool {
        self.phase == other.phase
            && self.message == other.message
            && self.interface == other.interface
            && self.holder == other.holder
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

#[cfg(test)]
mod tests {
    use super::*;

    fn on(phase: Phase, interface: Option<(&str, u32)>) -> Observed {
        Observed {
            interface: interface.map(|(n, i)| (n.to_string(), i)),
            mac: Some([2, 0, 0, 0, 0, 1]),
            ..Observed::new(phase, "announced")
        }
    }

    #[test]
    fn only_an_active_entry_on_an_interface_turns_pending_when_its_link_goes_down() {
        let down = on(Phase::Active, Some(("eth0", 2)))
            .on_link_down()
            .expect("turns pending");
        assert_eq!(down.phase, Phase::Pending);
        assert_eq!(down.message, "interface eth0 is down");
        assert_eq!(down.interface, Some(("eth0".to_string(), 2)));
        assert_eq!(down.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(on(Phase::Pending, Some(("eth0", 2))).on_link_down(), None);
        assert_eq!(on(Phase::Failed, Some(("eth0", 2))).on_link_down(), None);
        assert_eq!(
            on(Phase::Active, None).on_link_down(),
            None,
            "BGP has no link"
        );
    }
}
