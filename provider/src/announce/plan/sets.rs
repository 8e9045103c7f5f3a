//! The planner's compact per-node records: each announcer's report as a sorted slice, and the
//! edits one flush makes to a node's desired set (applied in one merge per node, so a set is
//! rebuilt once per flush however many of its addresses changed).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use crate::announce::model::{Mode, NodeAnnouncement, Phase};

/// What one announcer reports: the phase of each of its announcements, sorted by (address,
/// mode). A sorted slice takes about half the memory of a `HashMap` of the same entries, and
/// the planner keeps one per node.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Report(Box<[((IpAddr, Mode), Phase)]>);

impl Report {
    pub(super) fn new(report: HashMap<(IpAddr, Mode), Phase>) -> Self {
        let mut entries: Vec<((IpAddr, Mode), Phase)> = report.into_iter().collect();
        entries.sort_unstable_by_key(|entry| entry.0);
        Report(entries.into_boxed_slice())
    }

    /// The phase reported for (address, mode).
    pub(super) fn get(&self, key: &(IpAddr, Mode)) -> Option<&Phase> {
        let at = self.0.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&(IpAddr, Mode), &Phase)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// The changes one flush makes to a node's set.
#[derive(Debug, Default)]
pub(super) struct SetEdits {
    /// Entries that leave the node (unless put again).
    removed: BTreeSet<(IpAddr, Mode)>,
    /// Entries that the node holds after the flush, replacing any with the same key.
    put: BTreeMap<(IpAddr, Mode), NodeAnnouncement>,
}

impl SetEdits {
    pub(super) fn remove(&mut self, key: (IpAddr, Mode)) {
        self.put.remove(&key);
        self.removed.insert(key);
    }

    pub(super) fn put(&mut self, entry: NodeAnnouncement) {
        self.put.insert((entry.address, entry.mode), entry);
    }

    /// `old` (sorted by address and mode) with the edits applied, still sorted.
    pub(super) fn apply(self, old: &[NodeAnnouncement]) -> Vec<NodeAnnouncement> {
        let mut out = Vec::with_capacity(old.len() + self.put.len());
        let mut put = self.put.into_iter().peekable();
        for entry in old {
            let key = (entry.address, entry.mode);
            while let Some((_, new)) = put.next_if(|(k, _)| *k < key) {
                out.push(new);
            }
            if put.peek().is_some_and(|(k, _)| *k == key) || self.removed.contains(&key) {
                continue;
            }
            out.push(entry.clone());
        }
        out.extend(put.map(|(_, new)| new));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::announce::model::InterfaceChoice;

    fn entry(address: &str, mode: Mode, services: &str) -> NodeAnnouncement {
        NodeAnnouncement {
            address: address.parse().expect("ip"),
            mode,
            interface: InterfaceChoice::Automatic,
            services: services.into(),
            candidates: Arc::from(Vec::new()),
            bgp: None,
        }
    }

    #[test]
    fn edits_remove_replace_and_insert_in_order() {
        let old = vec![
            entry("192.0.2.1", Mode::Layer2, "a"),
            entry("192.0.2.3", Mode::Layer2, "c"),
            entry("192.0.2.3", Mode::Bgp, "c"),
            entry("192.0.2.5", Mode::Vip, "e"),
        ];
        let mut edits = SetEdits::default();
        edits.remove((old[0].address, Mode::Layer2));
        // Removed, then put again within the same flush: the new entry stays.
        edits.remove((old[1].address, Mode::Layer2));
        edits.put(entry("192.0.2.3", Mode::Layer2, "c2"));
        edits.put(entry("192.0.2.0", Mode::Vip, "z"));
        edits.put(entry("192.0.2.4", Mode::Bgp, "d"));
        edits.put(entry("192.0.2.9", Mode::Layer2, "i"));
        // Put, then removed: gone.
        edits.put(entry("192.0.2.7", Mode::Layer2, "g"));
        edits.remove(("192.0.2.7".parse().expect("ip"), Mode::Layer2));
        let new = edits.apply(&old);
        let got: Vec<(String, Mode, &str)> = new
            .iter()
            .map(|e| (e.address.to_string(), e.mode, e.services.as_ref()))
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.0".to_string(), Mode::Vip, "z"),
                ("192.0.2.3".to_string(), Mode::Layer2, "c2"),
                ("192.0.2.3".to_string(), Mode::Bgp, "c"),
                ("192.0.2.4".to_string(), Mode::Bgp, "d"),
                ("192.0.2.5".to_string(), Mode::Vip, "e"),
                ("192.0.2.9".to_string(), Mode::Layer2, "i"),
            ]
        );
    }

    #[test]
    fn a_report_finds_each_entry_and_compares_by_content() {
        let key = |a: &str, m| (a.parse::<IpAddr>().expect("ip"), m);
        let map: HashMap<(IpAddr, Mode), Phase> = [
            (
                key("192.0.2.2", Mode::Bgp),
                Phase::Pending("no session".into()),
            ),
            (key("192.0.2.1", Mode::Layer2), Phase::Active(String::new())),
            (
                key("2001:db8::1", Mode::Vip),
                Phase::Failed("denied".into()),
            ),
        ]
        .into();
        let report = Report::new(map.clone());
        for (k, v) in &map {
            assert_eq!(report.get(k), Some(v));
        }
        assert_eq!(report.get(&key("192.0.2.1", Mode::Vip)), None);
        assert_eq!(report.iter().count(), 3);
        assert_eq!(report, Report::new(map));
        assert_ne!(report, Report::default());
    }
}
