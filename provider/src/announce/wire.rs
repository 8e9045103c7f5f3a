//! Conversion between the planner's domain types and the announcer's protobuf messages, in
//! one place: a node's desired set out, an announcer's state in.

use std::{collections::HashMap, net::IpAddr};

use proto::announcer::v1 as pb;

use super::model::{FailoverPeer, HeartbeatKey, InterfaceChoice, Mode, NodeAnnouncement, Phase};

/// The label an announcement carries naming the Services it serves.
pub const SERVICE_LABEL: &str = "service";

fn mode_to_wire(mode: Mode) -> pb::Mode {
    match mode {
        Mode::Layer2 => pb::Mode::Layer2,
        Mode::Vip => pb::Mode::Vip,
        Mode::Bgp => pb::Mode::Bgp,
    }
}

fn mode_from_wire(value: i32) -> Option<Mode> {
    match pb::Mode::try_from(value).ok()? {
        pb::Mode::Layer2 => Some(Mode::Layer2),
        pb::Mode::Vip => Some(Mode::Vip),
        pb::Mode::Bgp => Some(Mode::Bgp),
        pb::Mode::Unspecified => None,
    }
}

/// The Sync request that makes a node's announcer hold exactly `set`, with the failover
/// peers named in its candidate lists and the heartbeat key (`None`: no failover among
/// announcers, every entry is put in force where it is sent).
pub fn sync_request(
    node: &str,
    generation: u64,
    set: &[NodeAnnouncement],
    peers: &[FailoverPeer],
    key: Option<&HeartbeatKey>,
) -> pb::SyncRequest {
    use pb::interface_selector::Selector;
    let announcements = set
        .iter()
        .map(|a| {
            let interface = match (&a.interface, a.mode) {
                (_, Mode::Bgp) | (InterfaceChoice::Automatic, _) => None,
                (InterfaceChoice::Name(name), _) => Some(Selector::Name(name.to_string())),
                (InterfaceChoice::CanReach(peer), _) => Some(Selector::CanReach(peer.to_string())),
            };
            pb::Announcement {
                address: a.address.to_string(),
                mode: mode_to_wire(a.mode).into(),
                interface: interface.map(|selector| pb::InterfaceSelector {
                    selector: Some(selector),
                }),
                labels: [(SERVICE_LABEL.to_string(), a.services.to_string())].into(),
                bgp: a
                    .bgp
                    .as_deref()
                    .filter(|_| a.mode == Mode::Bgp)
                    .map(|b| pb::BgpAttributes {
                        communities: b.communities.iter().map(|c| community(c)).collect(),
                        large_communities: b.large_communities.clone(),
                        local_pref: b.local_pref,
                        med: None,
                    }),
                candidates: a.candidates.iter().map(|n| n.to_string()).collect(),
            }
        })
        .collect();
    pb::SyncRequest {
        generation,
        announcements,
        node: node.to_string(),
        failover_peers: peers
            .iter()
            .map(|p| pb::FailoverPeer {
                node: p.node.to_string(),
                address: p.address.to_string(),
            })
            .collect(),
        heartbeat_key: key.map(|k| k.0.to_vec()).unwrap_or_default(),
    }
}

/// A pool's community as the announcer takes it: `ASN:VALUE`. Pools may also name the
/// well-known communities, which become their values (RFC 1997, RFC 3765, RFC 7999,
/// RFC 8326, RFC 7611); anything else is passed as it is (pools are validated when read).
pub fn community(text: &str) -> String {
    let value: u32 = match text {
        "no-export" => 0xFFFF_FF01,
        "no-advertise" => 0xFFFF_FF02,
        "no-export-subconfed" => 0xFFFF_FF03,
        "no-peer" => 0xFFFF_FF04,
        "blackhole" => 0xFFFF_029A,
        "graceful-shutdown" => 0xFFFF_0000,
        "accept-own" => 0xFFFF_0001,
        other => return other.to_string(),
    };
    format!("{}:{}", value >> 16, value & 0xFFFF)
}

/// The phase of every announcement an announcer reports.
pub fn report(state: &pb::State) -> HashMap<(IpAddr, Mode), Phase> {
    state
        .announcements
        .iter()
        .filter_map(|status| {
            let announcement = status.announcement.as_ref()?;
            let address: IpAddr = announcement.address.parse().ok()?;
            let mode = mode_from_wire(announcement.mode)?;
            let phase = match pb::Phase::try_from(status.phase).ok()? {
                pb::Phase::Active => Phase::Active(status.message.clone()),
                pb::Phase::Failed => Phase::Failed(status.message.clone()),
                pb::Phase::Standby => Phase::Standby {
                    holder: (!status.holder.is_empty()).then(|| status.holder.as_str().into()),
                },
                pb::Phase::Pending | pb::Phase::Unspecified => {
                    Phase::Pending(status.message.clone())
                }
            };
            Some(((address, mode), phase))
        })
        .collect()
}

/// A conflict an announcer reports, as (address, sentence naming both MACs).
pub fn conflict(node: &str, event: &pb::Event) -> Option<(IpAddr, String)> {
    let Some(pb::event::Kind::Conflict(conflict)) = &event.kind else {
        return None;
    };
    let address: IpAddr = conflict.address.parse().ok()?;
    Some((
        address,
        format!(
            "{node} saw another host ({}) answer for {address} on {}, which {node} answers for \
             with {} ({}); two nodes or a static host hold the address",
            conflict.other_mac, conflict.interface, conflict.our_mac, conflict.evidence
        ),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn well_known_communities_become_asn_value() {
        assert_eq!(super::community("no-export"), "65535:65281");
        assert_eq!(super::community("blackhole"), "65535:666");
        assert_eq!(super::community("graceful-shutdown"), "65535:0");
        assert_eq!(super::community("65000:100"), "65000:100");
    }

    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_node_set_becomes_a_sync_and_a_state_becomes_a_report() {
        let set = vec![NodeAnnouncement {
            address: "192.0.2.10".parse().expect("ip"),
            mode: Mode::Vip,
            interface: InterfaceChoice::Name("eth1".into()),
            services: "default/web".into(),
            candidates: Arc::from(vec!["node-2".into(), "node-1".into()]),
            bgp: None,
        }];
        let peers = [
            FailoverPeer {
                node: "node-1".into(),
                address: "198.51.100.1".parse().expect("ip"),
            },
            FailoverPeer {
                node: "node-2".into(),
                address: "198.51.100.2".parse().expect("ip"),
            },
        ];
        let request = sync_request("node-2", 7, &set, &peers, Some(&HeartbeatKey([9; 32])));
        assert_eq!(request.generation, 7);
        assert_eq!(request.node, "node-2");
        assert_eq!(request.heartbeat_key, [9; 32]);
        assert_eq!(
            request.failover_peers,
            [
                pb::FailoverPeer {
                    node: "node-1".into(),
                    address: "198.51.100.1".into()
                },
                pb::FailoverPeer {
                    node: "node-2".into(),
                    address: "198.51.100.2".into()
                },
            ]
        );
        assert!(
            sync_request("node-2", 7, &set, &[], None)
                .heartbeat_key
                .is_empty()
        );
        let wire = &request.announcements[0];
        assert_eq!(wire.address, "192.0.2.10");
        assert_eq!(wire.mode, pb::Mode::Vip as i32);
        assert_eq!(wire.candidates, ["node-2", "node-1"]);
        assert_eq!(wire.labels[SERVICE_LABEL], "default/web");

        let mut standby = wire.clone();
        standby.address = "192.0.2.11".into();
        let state = pb::State {
            announcements: vec![
                pb::AnnouncementStatus {
                    announcement: Some(wire.clone()),
                    phase: pb::Phase::Failed as i32,
                    message: "refused: 192.0.2.10 lies in --deny-prefixes entry 192.0.2.0/24"
                        .into(),
                    ..Default::default()
                },
                pb::AnnouncementStatus {
                    announcement: Some(standby),
                    phase: pb::Phase::Standby as i32,
                    holder: "node-1".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let report = report(&state);
        assert_eq!(
            report[&("192.0.2.10".parse().expect("ip"), Mode::Vip)],
            Phase::Failed("refused: 192.0.2.10 lies in --deny-prefixes entry 192.0.2.0/24".into())
        );
        assert_eq!(
            report[&("192.0.2.11".parse().expect("ip"), Mode::Vip)],
            Phase::Standby {
                holder: Some("node-1".into())
            }
        );
    }
}
