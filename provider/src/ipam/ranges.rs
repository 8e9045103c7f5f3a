//! Address arithmetic and a set of disjoint address intervals.
//!
//! Every address is handled as `(family, u128)` so IPv4 and IPv6 share one code path.
//! [`RangeSet`] keeps *intervals* in a `BTreeMap<start, end>`, so a /8 or an IPv6 /64 costs
//! one entry, not millions: inserting or removing one address and finding the lowest or highest
//! member are O(log n) in the number of intervals, which grows only with allocations.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::family::IpFamily;

/// `address` as its family and its number.
pub(crate) fn to_number(address: IpAddr) -> (IpFamily, u128) {
    match address {
        IpAddr::V4(a) => (IpFamily::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (IpFamily::V6, u128::from(a)),
    }
}

/// The address numbered `number` in `family`. IPv4 numbers above `u32::MAX` saturate; callers
/// only pass numbers taken from IPv4 addresses.
pub(crate) fn from_number(family: IpFamily, number: u128) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(number).unwrap_or(u32::MAX))),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(number)),
    }
}

/// True for IPv4 addresses ending in `.0` or `.255`. kube-vip-cloud-provider never hands these
/// out (some clients and routers mistake them for network/broadcast addresses), and we skip
/// them by default so a migrated cluster gets the same addresses.
pub(crate) fn is_buggy(family: IpFamily, number: u128) -> bool {
    family == IpFamily::V4 && matches!(number & 0xff, 0 | 0xff)
}

/// How many IPv4 addresses in `0..=n` end in `.0` or `.255`.
fn buggy_up_to(n: u128) -> u128 {
    2 * (n >> 8) + 1 + u128::from(n & 0xff == 0xff)
}

/// How many addresses in `start..=end` end in `.0` or `.255` (IPv4 numbers).
pub(crate) fn buggy_between(start: u128, end: u128) -> u128 {
    let below = if start == 0 {
        0
    } else {
        buggy_up_to(start - 1)
    };
    buggy_up_to(end) - below
}

/// A set of numbers stored as disjoint, non-adjacent inclusive intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (inclusive); intervals never overlap or touch.
    intervals: BTreeMap<u128, u128>,
}

impl RangeSet {
    /// Adds every number in `start..=end`, merging with touching or overlapping intervals.
    pub(crate) fn insert_range(&mut self, start: u128, end: u128) {
        let (mut start, mut end) = (start, end);
        // An interval that starts at or before `start` may overlap or touch it.
        if let Some((&s, &e)) = self.intervals.range(..=start).next_back()
            && e.saturating_add(1) >= start
        {
            start = s;
            end = end.max(e);
            self.intervals.remove(&s);
        }
        // Intervals starting inside or right after the new one are absorbed.
        loop {
            let next = self
                .intervals
                .range(start..)
                .next()
                .map(|(&s, &e)| (s, e))
                .filter(|&(s, _)| s <= end.saturating_add(1));
            let Some((s, e)) = next else { break };
            end = end.max(e);
            self.intervals.remove(&s);
        }
        self.intervals.insert(start, end);
    }

    /// Adds one number.
    pub(crate) fn insert(&mut self, number: u128) {
        self.insert_range(number, number);
    }

    /// Removes one number; returns whether it was present.
    pub(crate) fn remove(&mut self, number: u128) -> bool {
        let Some((&s, &e)) = self.intervals.range(..=number).next_back() else {
            return false;
        };
        if e < number {
            return false;
        }
        self.intervals.remove(&s);
        if s < number {
            self.intervals.insert(s, number - 1);
        }
        if number < e {
            self.intervals.insert(number + 1, e);
        }
        true
    }

    /// Whether `number` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, number: u128) -> bool {
        self.intervals
            .range(..=number)
            .next_back()
            .is_some_and(|(_, &e)| e >= number)
    }

    /// The lowest number in the set.
    pub(crate) fn first(&self) -> Option<u128> {
        self.intervals.first_key_value().map(|(&s, _)| s)
    }

    /// The highest number in the set.
    pub(crate) fn last(&self) -> Option<u128> {
        self.intervals.last_key_value().map(|(_, &e)| e)
    }

    /// Number of stored intervals (what the memory use grows with).
    #[cfg(test)]
    pub(crate) fn interval_count(&self) -> usize {
        self.intervals.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_touching_and_overlapping_intervals() {
        let mut set = RangeSet::default();
        set.insert_range(10, 20);
        set.insert_range(30, 40);
        set.insert_range(21, 29);
        assert_eq!(set.interval_count(), 1);
        assert_eq!((set.first(), set.last()), (Some(10), Some(40)));
        set.insert_range(5, 50);
        assert_eq!(set.interval_count(), 1);
        assert_eq!((set.first(), set.last()), (Some(5), Some(50)));
    }

    #[test]
    fn remove_splits_an_interval_and_insert_joins_it_again() {
        let mut set = RangeSet::default();
        set.insert_range(0, u128::MAX);
        assert!(set.remove(7));
        assert!(!set.remove(7));
        assert!(!set.contains(7));
        assert!(set.contains(6) && set.contains(8) && set.contains(u128::MAX));
        assert_eq!(set.interval_count(), 2);
        set.insert(7);
        assert_eq!(set.interval_count(), 1);
    }

    #[test]
    fn buggy_count_matches_a_direct_count() {
        for (start, end) in [
            (0u128, 0u128),
            (0, 255),
            (1, 254),
            (200, 1000),
            (255, 256),
            (3, 70000),
        ] {
            let direct = (start..=end).filter(|&n| is_buggy(IpFamily::V4, n)).count() as u128;
            assert_eq!(buggy_between(start, end), direct, "{start}..={end}");
        }
    }
}
