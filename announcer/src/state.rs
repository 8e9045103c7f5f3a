//! The desired set of announcements and how requests change it (pure, no I/O).
//!
//! `Sync` replaces the whole set under a generation number: an older generation is refused
//! so a stale writer cannot undo a newer one, and an equal generation is accepted only for
//! the identical set (a retry). `Announce` and `Withdraw` change single entries and keep the
//! generation. Every change returns a [`Diff`] that the engine applies to the data plane.
//!
//! One address is announced in layer2 or in vip mode, never both (both would answer ARP/NDP
//! for it); BGP may be combined with either. That rule is checked here, for a whole Sync and
//! for a single Announce.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{Desired, InvalidField, Key, Mode};

/// What a request changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Diff {
    pub added: Vec<Desired>,
    pub removed: Vec<Desired>,
    /// (old, new) pairs with the same key but different selector, labels or attributes.
    pub changed: Vec<(Desired, Desired)>,
    pub unchanged: u32,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What a change of one entry (same address and mode) requires of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Labels or candidates only: report the new entry, touch nothing.
    Reported,
    /// BGP attributes (labels may have changed too): push the BGP routes again.
    BgpAttributes,
    /// The interface selector: activate again (which leaves an entry that stays on its
    /// interface in place).
    Selector,
}

/// What changing `old` into `new` (same key) requires. A BGP route is on no interface, so its
/// selector does not matter; layer2 and vip entries carry no BGP attributes.
pub fn change_of(old: &Desired, new: &Desired) -> Change {
    match new.key.mode {
        Mode::Bgp if old.bgp != new.bgp => Change::BgpAttributes,
        Mode::Bgp => Change::Reported,
        Mode::Layer2 | Mode::Vip if old.selector != new.selector => Change::Selector,
        Mode::Layer2 | Mode::Vip => Change::Reported,
    }
}

/// Why a Sync was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("generation: {requested} is older than the accepted generation {current}")]
    StaleGeneration { requested: u64, current: u64 },
    #[error(
        "generation: {0} was already accepted with a different set of announcements; use a higher generation"
    )]
    GenerationReused(u64),
    #[error(transparent)]
    Duplicate(InvalidField),
    /// layer2 and vip for the same address within one set.
    #[error(transparent)]
    ModeConflict(InvalidField),
}

/// Why an Announce was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("announcement.mode: {address} is already announced in mode {other}; withdraw it first")]
    ModeConflict { address: IpAddr, other: Mode },
}

/// The mode that excludes `mode` for the same address (layer2 ↔ vip), if any.
pub fn excluded_by(mode: Mode) -> Option<Mode> {
    match mode {
        Mode::Layer2 => Some(Mode::Vip),
        Mode::Vip => Some(Mode::Layer2),
        Mode::Bgp => None,
    }
}

/// The desired announcements.
#[derive(Debug, Default, Clone)]
pub struct DesiredState {
    generation: u64,
    entries: BTreeMap<Key, Desired>,
}

impl DesiredState {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn entries(&self) -> impl Iterator<Item = &Desired> {
        self.entries.values()
    }

    pub fn get(&self, key: &Key) -> Option<&Desired> {
        self.entries.get(key)
    }

    pub fn count(&self, mode: Mode) -> usize {
        self.entries.keys().filter(|k| k.mode == mode).count()
    }

    /// Replaces the whole set (see the module doc for the generation rules).
    pub fn sync(&mut self, generation: u64, wanted: Vec<Desired>) -> Result<Diff, SyncError> {
        let mut next: BTreeMap<Key, Desired> = BTreeMap::new();
        let mut first_index: BTreeMap<Key, usize> = BTreeMap::new();
        for (i, desired) in wanted.into_iter().enumerate() {
            if let Some(first) = first_index.get(&desired.key) {
                return Err(SyncError::Duplicate(InvalidField {
                    field: format!("announcements[{i}]"),
                    message: format!("duplicates announcements[{first}] ({})", desired.key),
                }));
            }
            if let Some(other) = excluded_by(desired.key.mode)
                && let Some(j) = first_index.get(&Key {
                    address: desired.key.address,
                    mode: other,
                })
            {
                return Err(SyncError::ModeConflict(InvalidField {
                    field: format!("announcements[{i}].mode"),
                    message: format!(
                        "{} is already announced in mode {other} by announcements[{j}]; layer2 and vip exclude each other",
                        desired.key.address
                    ),
                }));
            }
            first_index.insert(desired.key, i);
            next.insert(desired.key, desired);
        }
        if generation < self.generation {
            return Err(SyncError::StaleGeneration {
                requested: generation,
                current: self.generation,
            });
        }
        if generation == self.generation && generation != 0 && next != self.entries {
            return Err(SyncError::GenerationReused(generation));
        }
        let mut diff = Diff::default();
        for (key, old) in &self.entries {
            match next.get(key) {
                None => diff.removed.push(old.clone()),
                Some(new) if new != old => diff.changed.push((old.clone(), new.clone())),
                Some(_) => diff.unchanged += 1,
            }
        }
        diff.added = next
            .iter()
            .filter(|(k, _)| !self.entries.contains_key(k))
            .map(|(_, d)| d.clone())
            .collect();
        self.generation = generation;
        self.entries = next;
        Ok(diff)
    }

    /// Adds or replaces one announcement; refused when the address is held in the mode that
    /// excludes this one.
    pub fn announce(&mut self, desired: Desired) -> Result<Diff, AnnounceError> {
        if let Some(other) = excluded_by(desired.key.mode)
            && self.entries.contains_key(&Key {
                address: desired.key.address,
                mode: other,
            })
        {
            return Err(AnnounceError::ModeConflict {
                address: desired.key.address,
                other,
            });
        }
        let mut diff = Diff::default();
        match self.entries.insert(desired.key, desired.clone()) {
            None => diff.added.push(desired),
            Some(old) if old != desired => diff.changed.push((old, desired)),
            Some(_) => diff.unchanged = 1,
        }
        Ok(diff)
    }

    /// Removes `address` in `mode`, or in every mode when `mode` is `None`.
    pub fn withdraw(&mut self, address: IpAddr, mode: Option<Mode>) -> Diff {
        let keys: Vec<Key> = self
            .entries
            .keys()
            .filter(|k| k.address == address && mode.is_none_or(|m| m == k.mode))
            .copied()
            .collect();
        let removed = keys.iter().filter_map(|k| self.entries.remove(k)).collect();
        Diff {
            removed,
            ..Diff::default()
        }
    }

    /// Removes everything (shutdown); the generation stays.
    pub fn clear(&mut self) -> Diff {
        let removed = std::mem::take(&mut self.entries).into_values().collect();
        Diff {
            removed,
            ..Diff::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::announcer::v1 as pb;

    use super::*;
    use crate::model::validate;

    fn desired(address: &str, mode: pb::Mode, label: &str) -> Desired {
        let wire = pb::Announcement {
            address: address.into(),
            mode: mode.into(),
            labels: [("service".to_string(), label.to_string())].into(),
            ..Default::default()
        };
        validate("a", &wire).expect("valid")
    }

    #[test]
    fn sync_reports_added_removed_changed_and_unchanged() {
        let mut state = DesiredState::default();
        let first = vec![
            desired("192.0.2.10", pb::Mode::Layer2, "web"),
            desired("192.0.2.11", pb::Mode::Vip, "db"),
        ];
        let diff = state.sync(1, first).expect("accepted");
        assert_eq!(
            (diff.added.len(), diff.removed.len(), diff.unchanged),
            (2, 0, 0)
        );

        let second = vec![
            desired("192.0.2.10", pb::Mode::Layer2, "web2"),
            desired("192.0.2.12", pb::Mode::Bgp, "x"),
        ];
        let diff = state.sync(2, second).expect("accepted");
        assert_eq!(diff.added.len(), 1);
        assert_eq!(diff.removed[0].key.address.to_string(), "192.0.2.11");
        assert_eq!(diff.changed.len(), 1, "labels changed");
        assert_eq!(state.generation(), 2);
    }

    #[test]
    fn sync_with_an_older_generation_is_refused_and_changes_nothing() {
        let mut state = DesiredState::default();
        state
            .sync(5, vec![desired("192.0.2.10", pb::Mode::Layer2, "web")])
            .expect("accepted");
        let error = state.sync(4, vec![]).expect_err("stale");
        assert_eq!(
            error,
            SyncError::StaleGeneration {
                requested: 4,
                current: 5
            }
        );
        assert_eq!(state.entries().count(), 1);
    }

    #[test]
    fn same_generation_is_idempotent_for_the_same_set_only() {
        let mut state = DesiredState::default();
        let set = vec![desired("192.0.2.10", pb::Mode::Layer2, "web")];
        state.sync(3, set.clone()).expect("accepted");
        let diff = state.sync(3, set).expect("retry accepted");
        assert!(diff.is_empty());
        assert_eq!(diff.unchanged, 1);
        assert_eq!(state.sync(3, vec![]), Err(SyncError::GenerationReused(3)));
    }

    #[test]
    fn duplicates_in_one_sync_are_named_by_index() {
        let mut state = DesiredState::default();
        let set = vec![
            desired("192.0.2.10", pb::Mode::Layer2, "a"),
            desired("192.0.2.11", pb::Mode::Layer2, "b"),
            desired("192.0.2.10", pb::Mode::Layer2, "c"),
        ];
        let Err(SyncError::Duplicate(field)) = state.sync(1, set) else {
            panic!("duplicate accepted")
        };
        assert_eq!(
            field.to_string(),
            "announcements[2]: duplicates announcements[0] (192.0.2.10 (layer2))"
        );
    }

    #[test]
    fn withdraw_without_mode_removes_every_mode_of_the_address() {
        let mut state = DesiredState::default();
        for (address, mode, label) in [
            ("192.0.2.10", pb::Mode::Layer2, "a"),
            ("192.0.2.10", pb::Mode::Bgp, "a"),
            ("192.0.2.11", pb::Mode::Bgp, "b"),
        ] {
            state
                .announce(desired(address, mode, label))
                .expect("accepted");
        }
        let only_bgp = state.withdraw("192.0.2.11".parse().expect("ip"), Some(Mode::Layer2));
        assert!(only_bgp.removed.is_empty());
        let all = state.withdraw("192.0.2.10".parse().expect("ip"), None);
        assert_eq!(all.removed.len(), 2);
        assert_eq!(state.entries().count(), 1);
    }

    #[test]
    fn announcing_the_same_thing_twice_changes_nothing() {
        let mut state = DesiredState::default();
        assert_eq!(
            state
                .announce(desired("192.0.2.10", pb::Mode::Layer2, "a"))
                .expect("accepted")
                .added
                .len(),
            1
        );
        assert!(
            state
                .announce(desired("192.0.2.10", pb::Mode::Layer2, "a"))
                .expect("accepted")
                .is_empty()
        );
        assert_eq!(
            state
                .announce(desired("192.0.2.10", pb::Mode::Layer2, "b"))
                .expect("accepted")
                .changed
                .len(),
            1
        );
    }

    #[test]
    fn layer2_and_vip_for_one_address_exclude_each_other_bgp_combines_with_either() {
        let mut state = DesiredState::default();
        let conflicting = vec![
            desired("192.0.2.10", pb::Mode::Vip, "a"),
            desired("192.0.2.10", pb::Mode::Bgp, "a"),
            desired("192.0.2.10", pb::Mode::Layer2, "a"),
        ];
        let Err(SyncError::ModeConflict(field)) = state.sync(1, conflicting) else {
            panic!("layer2 + vip accepted")
        };
        assert_eq!(
            field.to_string(),
            "announcements[2].mode: 192.0.2.10 is already announced in mode vip by announcements[0]; layer2 and vip exclude each other"
        );
        assert_eq!(state.entries().count(), 0, "a refused Sync changes nothing");

        let combined = vec![
            desired("192.0.2.10", pb::Mode::Layer2, "a"),
            desired("192.0.2.10", pb::Mode::Bgp, "a"),
        ];
        state.sync(1, combined).expect("layer2 + bgp accepted");
        assert_eq!(
            state.announce(desired("192.0.2.10", pb::Mode::Vip, "a")),
            Err(AnnounceError::ModeConflict {
                address: "192.0.2.10".parse().expect("ip"),
                other: Mode::Layer2
            })
        );
        assert_eq!(
            state
                .announce(desired("192.0.2.11", pb::Mode::Vip, "b"))
                .map(|d| d.added.len()),
            Ok(1)
        );
    }

    #[test]
    fn a_change_touches_only_what_it_needs() {
        use crate::bgp::attributes::RouteAttributes;
        use crate::model::Selector;

        let bgp = desired("192.0.2.10", pb::Mode::Bgp, "a");
        let layer2 = desired("192.0.2.10", pb::Mode::Layer2, "a");
        let change = |base: &Desired, f: &dyn Fn(&mut Desired)| {
            let mut new = base.clone();
            f(&mut new);
            change_of(base, &new)
        };
        let cases = [
            (change(&layer2, &|d| d.labels.clear()), Change::Reported),
            (
                change(&layer2, &|d| {
                    d.candidates = vec!["node-b".into(), "node-a".into()]
                }),
                Change::Reported,
            ),
            (
                change(&layer2, &|d| d.selector = Selector::Name("eth1".into())),
                Change::Selector,
            ),
            (
                change(&layer2, &|d| {
                    d.labels.clear();
                    d.selector = Selector::Name("eth1".into());
                }),
                Change::Selector,
            ),
            (change(&bgp, &|d| d.labels.clear()), Change::Reported),
            (
                change(&bgp, &|d| {
                    d.bgp = Some(Box::new(RouteAttributes {
                        med: Some(5),
                        ..RouteAttributes::default()
                    }))
                }),
                Change::BgpAttributes,
            ),
            (
                change(&bgp, &|d| {
                    d.labels.clear();
                    d.bgp = Some(Box::default());
                }),
                Change::BgpAttributes,
            ),
            (
                change(&bgp, &|d| {
                    d.selector = Selector::Name("eth1".into());
                    d.bgp = Some(Box::default());
                }),
                Change::BgpAttributes,
            ),
            (
                change(&bgp, &|d| d.selector = Selector::Name("eth1".into())),
                Change::Reported,
            ),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, expected, "case {i}");
        }
    }
}
