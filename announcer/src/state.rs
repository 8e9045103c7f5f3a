//! The desired set of announcements and how requests change it (pure, no I/O).
//!
//! `Sync` replaces the whole set under a generation number: an older generation is refused
//! so a stale writer cannot undo a newer one, and an equal generation is accepted only for
//! the identical set (a retry). `Announce` and `Withdraw` change single entries and keep the
//! generation. Every change returns a [`Diff`] that the engine applies to the data plane.

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

    /// Adds or replaces one announcement.
    pub fn announce(&mut self, desired: Desired) -> Diff {
        let mut diff = Diff::default();
        match self.entries.insert(desired.key, desired.clone()) {
            None => diff.added.push(desired),
            Some(old) if old != desired => diff.changed.push((old, desired)),
            Some(_) => diff.unchanged = 1,
        }
        diff
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
