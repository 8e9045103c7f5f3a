//! The gRPC edge of BGP peers: a node's [`NodePeer`]s as a `SyncPeersRequest`, and the
//! managed sessions of an announcer's `State` as a [`PeerReport`].

use std::net::IpAddr;

use proto::announcer::v1 as pb;

use super::book::{NodePeer, PeerReport, SessionReport};

/// The request that gives an announcer its whole managed peer set.
pub fn sync_peers_request(generation: u64, peers: &[NodePeer]) -> pb::SyncPeersRequest {
    pb::SyncPeersRequest {
        generation,
        peers: peers.iter().map(peer).collect(),
    }
}

fn peer(peer: &NodePeer) -> pb::Peer {
    let spec = &peer.spec;
    let text = |a: Option<IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    pb::Peer {
        address: spec.address.to_string(),
        port: u32::from(spec.port),
        peer_asn: spec.peer_asn,
        local_asn: spec.local_asn.unwrap_or(0),
        router_id: text(spec.router_id.map(IpAddr::V4)),
        source_address: text(spec.source_address),
        hold_time_seconds: spec.hold_time.map(u32::from),
        keepalive_seconds: spec.keepalive.map(u32::from),
        passive: spec.passive,
        ebgp_multihop_ttl: u32::from(spec.ebgp_multihop),
        graceful_restart: spec.graceful_restart.is_some(),
        graceful_restart_seconds: spec.graceful_restart.map(u32::from),
        families: spec
            .families
            .iter()
            .map(|f| f.as_str().to_string())
            .collect(),
        password: peer
            .password
            .as_ref()
            .map(|p| p.to_vec())
            .unwrap_or_default(),
        bfd: spec.bfd.as_ref().map(|bfd| pb::Bfd {
            enabled: true,
            min_tx_ms: bfd.min_tx_ms,
            min_rx_ms: bfd.min_rx_ms,
            detect_multiplier: bfd.multiplier,
            multihop: bfd.multihop,
            ..pb::Bfd::default()
        }),
        ..pb::Peer::default()
    }
}

/// The managed sessions in an announcer's state.
pub fn sessions(state: &pb::State) -> std::collections::BTreeMap<IpAddr, SessionReport> {
    state
        .peers
        .iter()
        .filter(|status| status.managed)
        .filter_map(|status| {
            let address: IpAddr = status.peer.as_ref()?.address.parse().ok()?;
            let state = match pb::SessionState::try_from(status.state).ok()? {
                pb::SessionState::Idle | pb::SessionState::Unspecified => "Idle",
                pb::SessionState::Connect => "Connect",
                pb::SessionState::Active => "Active",
                pb::SessionState::OpenSent => "OpenSent",
                pb::SessionState::OpenConfirm => "OpenConfirm",
                pb::SessionState::Established => "Established",
            };
            Some((
                address,
                SessionReport {
                    state: state.to_string(),
                    last_error: status.last_error.clone(),
                },
            ))
        })
        .collect()
}

/// A SyncPeers answer (refusals) with the sessions of the state read after it.
pub fn report(refused: &[pb::PeerRefusal], state: &pb::State) -> PeerReport {
    PeerReport {
        sessions: sessions(state),
        refused: refused
            .iter()
            .map(|r| (r.address.clone(), r.message.clone()))
            .collect(),
        problem: None,
    }
}
