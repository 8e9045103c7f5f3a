//! The edge between gRPC messages and the domain: requests are validated into domain values
//! (through `model.rs`), and the engine's domain results are turned back into messages.
//!
//! ```text
//!   pb::SyncRequest ──sync_request──► (generation, Vec<Desired>) ──► Engine::sync
//!   pb::SyncResponse ◄─sync_response── SyncOutcome ◄────────────────────┘
//!   pb::State        ◄─state────────── Snapshot (+ the BGP backend's peers)
//!   pb::Event        ◄─announcement_changed── AnnouncementStatus (engine events)
//! ```

use std::net::IpAddr;

use proto::announcer::v1::{self as pb, event::Kind};

use crate::backend::BgpBackend;
use crate::bgp::backend::peer_status;
use crate::events;
use crate::l2::format_mac;
use crate::model::FailoverSync;
use crate::model::{self, Desired, InvalidField, Mode};
use crate::status::{AnnouncementStatus, Phase, Snapshot, SyncOutcome};

/// Validates a Sync: its generation, every announcement (named `announcements[i]`) and the
/// failover part (`failover_peers[i]`, `heartbeat_key`).
pub fn sync_request(
    request: pb::SyncRequest,
) -> Result<(u64, Vec<Desired>, Option<FailoverSync>), InvalidField> {
    let wanted = request
        .announcements
        .iter()
        .enumerate()
        .map(|(i, wire)| model::validate(&format!("announcements[{i}]"), wire))
        .collect::<Result<Vec<_>, _>>()?;
    let failover = failover_sync(&request)?;
    Ok((request.generation, wanted, failover))
}

fn failover_sync(request: &pb::SyncRequest) -> Result<Option<FailoverSync>, InvalidField> {
    let invalid = |field: String, message: String| InvalidField { field, message };
    let mut peers = std::collections::BTreeMap::new();
    for (i, peer) in request.failover_peers.iter().enumerate() {
        if peer.node.trim().is_empty() {
            return Err(invalid(
                format!("failover_peers[{i}].node"),
                "is required".into(),
            ));
        }
        let address = model::parse_address(&format!("failover_peers[{i}].address"), &peer.address)?;
        if peers.insert(peer.node.clone(), address).is_some() {
            return Err(invalid(
                format!("failover_peers[{i}].node"),
                format!("{:?} is listed twice", peer.node),
            ));
        }
    }
    match request.heartbeat_key.len() {
        0 => Ok(None),
        32 if request.node.trim().is_empty() => Err(invalid(
            "node".into(),
            "is required when heartbeat_key is set (the announcer must find itself in the candidates)".into(),
        )),
        32 => Ok(Some(FailoverSync {
            node: request.node.clone(),
            peers,
            key: request.heartbeat_key.clone(),
        })),
        n => Err(invalid(
            "heartbeat_key".into(),
            format!("must be 32 bytes (HMAC-SHA256 key), got {n}"),
        )),
    }
}

/// Validates an Announce.
pub fn announce_request(request: pb::AnnounceRequest) -> Result<Desired, InvalidField> {
    let wire = request.announcement.ok_or_else(|| InvalidField {
        field: "announcement".into(),
        message: "is required".into(),
    })?;
    model::validate("announcement", &wire)
}

/// Validates a Withdraw: the address and the mode (`None`: every mode).
pub fn withdraw_request(
    request: &pb::WithdrawRequest,
) -> Result<(IpAddr, Option<Mode>), InvalidField> {
    let address = model::parse_address("address", &request.address)?;
    let mode = Mode::from_proto(request.mode).map_err(|v| InvalidField {
        field: "mode".into(),
        message: format!("{v} is not a known mode"),
    })?;
    Ok((address, mode))
}

/// The address of a peer to delete (any IP address: peers may be link-local).
pub fn peer_address(text: &str) -> Result<IpAddr, InvalidField> {
    text.trim().parse().map_err(|_| InvalidField {
        field: "address".into(),
        message: format!("{text:?} is not an IP address"),
    })
}

pub fn phase(phase: Phase) -> pb::Phase {
    match phase {
        Phase::Active => pb::Phase::Active,
        Phase::Pending => pb::Phase::Pending,
        Phase::Failed => pb::Phase::Failed,
        Phase::Standby => pb::Phase::Standby,
    }
}

pub fn status(status: &AnnouncementStatus) -> pb::AnnouncementStatus {
    let observed = &status.observed;
    pb::AnnouncementStatus {
        announcement: Some(status.desired.to_wire()),
        phase: phase(observed.phase).into(),
        interface: observed
            .interface
            .as_ref()
            .map(|(name, _)| name.clone())
            .unwrap_or_default(),
        mac: observed.mac.as_ref().map(format_mac).unwrap_or_default(),
        message: observed.message.to_string(),
        since_unix_ms: observed.since_unix_ms,
        holder: observed.holder.clone().unwrap_or_default(),
    }
}

pub fn sync_response(outcome: SyncOutcome) -> pb::SyncResponse {
    pb::SyncResponse {
        generation: outcome.generation,
        added: outcome.added,
        removed: outcome.removed,
        unchanged: outcome.unchanged,
    }
}

/// An `announcement_changed` event.
pub fn announcement_changed(status_now: &AnnouncementStatus, removed: bool) -> pb::Event {
    events::event(Kind::AnnouncementChanged(pb::AnnouncementChanged {
        status: Some(status(status_now)),
        removed,
    }))
}

/// GetState: the announcements and the health of each mode (BGP's from the speaker's
/// sessions).
pub fn state(snapshot: &Snapshot, backend: Option<&dyn BgpBackend>) -> pb::State {
    let count = |mode: Mode| {
        snapshot
            .counts
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0, |(_, n)| *n)
    };
    let peers: Vec<pb::PeerStatus> = backend
        .map(|b| b.peers().iter().map(peer_status).collect())
        .unwrap_or_default();
    let bgp = match backend {
        Some(_) => {
            let up = peers
                .iter()
                .filter(|p| p.state == pb::SessionState::Established as i32)
                .count();
            pb::ModeHealth {
                mode: pb::Mode::Bgp.into(),
                healthy: up > 0,
                message: format!(
                    "{} announced, {up} of {} sessions established",
                    count(Mode::Bgp),
                    peers.len()
                ),
            }
        }
        None => pb::ModeHealth {
            mode: pb::Mode::Bgp.into(),
            healthy: false,
            message: "BGP mode is not enabled (no BGP speaker configured)".into(),
        },
    };
    let modes = vec![
        pb::ModeHealth {
            mode: pb::Mode::Layer2.into(),
            healthy: true,
            message: format!("{} announced", count(Mode::Layer2)),
        },
        pb::ModeHealth {
            mode: pb::Mode::Vip.into(),
            healthy: true,
            message: format!("{} announced", count(Mode::Vip)),
        },
        bgp,
    ];
    pb::State {
        generation: snapshot.generation,
        announcements: snapshot.announcements.iter().map(status).collect(),
        modes,
        peers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: usize, node: &str, peers: &[(&str, &str)]) -> pb::SyncRequest {
        pb::SyncRequest {
            generation: 1,
            node: node.into(),
            heartbeat_key: vec![7; key],
            failover_peers: peers
                .iter()
                .map(|(n, a)| pb::FailoverPeer {
                    node: n.to_string(),
                    address: a.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn refused(request: pb::SyncRequest) -> String {
        sync_request(request).expect_err("refused").to_string()
    }

    #[test]
    fn the_failover_part_of_a_sync_is_validated_naming_the_request_field() {
        let (_, _, failover) =
            sync_request(request(32, "node-a", &[("node-b", "192.0.2.2")])).unwrap();
        let failover = failover.expect("failover on");
        assert_eq!(failover.node, "node-a");
        assert_eq!(failover.peers["node-b"].to_string(), "192.0.2.2");
        let (_, _, none) = sync_request(request(0, "", &[])).unwrap();
        assert_eq!(none, None, "no key: no failover");
        assert_eq!(
            refused(request(16, "node-a", &[])),
            "heartbeat_key: must be 32 bytes (HMAC-SHA256 key), got 16"
        );
        assert!(refused(request(32, "", &[])).starts_with("node: is required"));
        assert!(
            refused(request(32, "node-a", &[("node-b", "nope")]))
                .starts_with("failover_peers[0].address")
        );
        assert_eq!(
            refused(request(
                32,
                "node-a",
                &[("node-b", "192.0.2.2"), ("node-b", "192.0.2.3")]
            )),
            "failover_peers[1].node: \"node-b\" is listed twice"
        );
    }
}
