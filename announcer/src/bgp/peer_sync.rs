//! SyncPeers' rules, pure: which managed peers to add, replace, remove or leave alone, and
//! whether a request's generation may be applied. The speaker (`speaker.rs`) carries the plan
//! out; tests check the rules with no sockets.
//!
//! ```text
//!  desired (validated, or refused with a reason) ─┐
//!  managed peers in force (address → config) ─────┼─► plan() ─► add / replace / remove / unchanged / refused
//!  local peers' addresses (flags, AddPeer) ───────┘
//! ```
//!
//! A peer is identified by its address; it is *unchanged* when its whole configuration
//! (password bytes included) equals the one in force, and then its session is not touched.
//! Local peers belong to the operator: a managed peer with a local peer's address is refused,
//! and the local one kept.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::config::PeerConfig;

/// A managed peer that is not put in force, and why (a sentence naming the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRefusal {
    /// The address as the request gave it.
    pub address: String,
    pub message: String,
}

/// One entry of a SyncPeers request: validated, or refused before the speaker sees it.
pub type DesiredPeer = Result<PeerConfig, PeerRefusal>;

/// What applying a desired set does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeerPlan {
    pub add: Vec<PeerConfig>,
    pub replace: Vec<PeerConfig>,
    pub remove: Vec<IpAddr>,
    pub unchanged: u32,
    pub refused: Vec<PeerRefusal>,
}

/// The plan for `desired`, given the managed peers in force and the local peers' addresses.
pub fn plan(
    desired: &[DesiredPeer],
    managed: &BTreeMap<IpAddr, PeerConfig>,
    local: &BTreeSet<IpAddr>,
) -> PeerPlan {
    let mut plan = PeerPlan::default();
    let mut wanted = BTreeSet::new();
    for (i, entry) in desired.iter().enumerate() {
        let config = match entry {
            Ok(config) => config,
            Err(refusal) => {
                plan.refused.push(refusal.clone());
                continue;
            }
        };
        let address = config.address;
        if !wanted.insert(address) {
            plan.refused.push(PeerRefusal {
                address: address.to_string(),
                message: format!("peers[{i}].address: {address} is listed more than once"),
            });
            continue;
        }
        if local.contains(&address) {
            plan.refused.push(PeerRefusal {
                address: address.to_string(),
                message: format!(
                    "peers[{i}].address: {address} is a locally configured peer (announcer flags, --bgp-config or ctl); the local peer is kept"
                ),
            });
            continue;
        }
        match managed.get(&address) {
            Some(current) if current == config => plan.unchanged += 1,
            Some(_) => plan.replace.push(config.clone()),
            None => plan.add.push(config.clone()),
        }
    }
    // Kept: the addresses just unchanged, replaced or added (a refused duplicate keeps the
    // first entry's peer; a refused local address never was managed).
    plan.remove = managed
        .keys()
        .filter(|address| !wanted.contains(*address) || local.contains(*address))
        .copied()
        .collect();
    plan
}

/// Why a request's generation cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    #[error("SyncPeers generation {got} is older than the generation in force, {current}")]
    Stale { got: u64, current: u64 },
    #[error(
        "SyncPeers generation {got} is the generation in force but with another peer set; send a higher generation"
    )]
    Different { got: u64 },
}

/// Sync's generation rules: lower is refused, equal only with the identical set.
pub fn check_generation(
    current: Option<(u64, &[DesiredPeer])>,
    generation: u64,
    desired: &[DesiredPeer],
) -> Result<(), GenerationError> {
    match current {
        Some((current, _)) if generation < current => Err(GenerationError::Stale {
            got: generation,
            current,
        }),
        Some((current, last)) if generation == current && last != desired => {
            Err(GenerationError::Different { got: generation })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(address: &str, hold: u16) -> PeerConfig {
        let mut config = PeerConfig::new(address.parse().expect("ip"), 64513, 64512);
        config.hold_time = hold;
        config
    }

    fn managed(peers: &[PeerConfig]) -> BTreeMap<IpAddr, PeerConfig> {
        peers.iter().map(|p| (p.address, p.clone())).collect()
    }

    #[test]
    fn identical_peer_is_unchanged_changed_is_replaced_missing_is_removed() {
        let current = managed(&[
            peer("192.0.2.1", 90),
            peer("192.0.2.2", 90),
            peer("192.0.2.3", 90),
        ]);
        let desired = vec![
            Ok(peer("192.0.2.1", 90)),
            Ok(peer("192.0.2.2", 30)),
            Ok(peer("192.0.2.4", 90)),
        ];
        let plan = plan(&desired, &current, &BTreeSet::new());
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.replace, [peer("192.0.2.2", 30)]);
        assert_eq!(plan.add, [peer("192.0.2.4", 90)]);
        assert_eq!(plan.remove, ["192.0.2.3".parse::<IpAddr>().expect("ip")]);
        assert!(plan.refused.is_empty());
    }

    #[test]
    fn a_changed_password_replaces_the_peer() {
        let mut keyed = peer("192.0.2.1", 90);
        keyed.password = Some(b"one".to_vec());
        let current = managed(std::slice::from_ref(&keyed));
        keyed.password = Some(b"two".to_vec());
        let plan = plan(&[Ok(keyed.clone())], &current, &BTreeSet::new());
        assert_eq!(plan.replace, [keyed]);
        assert_eq!(plan.unchanged, 0);
    }

    #[test]
    fn a_local_peers_address_is_refused_and_the_local_peer_kept() {
        let local: BTreeSet<IpAddr> = ["192.0.2.9".parse().expect("ip")].into();
        let plan = plan(&[Ok(peer("192.0.2.9", 90))], &BTreeMap::new(), &local);
        assert!(plan.add.is_empty() && plan.remove.is_empty());
        assert_eq!(plan.refused.len(), 1);
        assert!(
            plan.refused[0]
                .message
                .contains("peers[0].address: 192.0.2.9 is a locally configured peer"),
            "{:?}",
            plan.refused
        );
    }

    #[test]
    fn a_duplicate_address_is_refused_once_and_the_first_entry_applies() {
        let current = managed(&[peer("192.0.2.1", 90)]);
        let desired = vec![Ok(peer("192.0.2.1", 90)), Ok(peer("192.0.2.1", 30))];
        let plan = plan(&desired, &current, &BTreeSet::new());
        assert_eq!(plan.unchanged, 1);
        assert!(plan.remove.is_empty() && plan.replace.is_empty());
        assert_eq!(
            plan.refused[0].message,
            "peers[1].address: 192.0.2.1 is listed more than once"
        );
    }

    #[test]
    fn an_invalid_entry_is_refused_and_the_others_apply() {
        let refusal = PeerRefusal {
            address: "nonsense".into(),
            message: "peers[0].address: \"nonsense\" is not an IP address".into(),
        };
        let desired = vec![Err(refusal.clone()), Ok(peer("192.0.2.1", 90))];
        let plan = plan(&desired, &BTreeMap::new(), &BTreeSet::new());
        assert_eq!(plan.refused, [refusal]);
        assert_eq!(plan.add, [peer("192.0.2.1", 90)]);
    }

    #[test]
    fn generations_follow_syncs_rules() {
        let one = vec![Ok(peer("192.0.2.1", 90))];
        let two = vec![Ok(peer("192.0.2.1", 30))];
        assert_eq!(check_generation(None, 0, &one), Ok(()));
        assert_eq!(check_generation(Some((5, &one)), 6, &two), Ok(()));
        assert_eq!(check_generation(Some((5, &one)), 5, &one), Ok(()));
        assert_eq!(
            check_generation(Some((5, &one)), 5, &two),
            Err(GenerationError::Different { got: 5 })
        );
        assert_eq!(
            check_generation(Some((5, &one)), 4, &one),
            Err(GenerationError::Stale { got: 4, current: 5 })
        );
    }
}
