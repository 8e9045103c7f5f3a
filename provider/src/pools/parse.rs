//! Parsing of ConfigMap values: address lists, booleans, search order, interface names.
//!
//! Each item of a comma list is parsed on its own, so one bad item yields one
//! [`ConfigProblem`] and the others still count. Addresses become `(family, number)` ranges;
//! nothing is ever expanded to single addresses.

use std::net::IpAddr;

use super::errors::ConfigProblem;
use super::model::{AddrRange, SearchOrder};
use crate::ipam::IpFamily;
use crate::ipam::ranges::to_number;

/// One parsed item of a `cidr-` or `range-` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) family: IpFamily,
    pub(crate) start: u128,
    pub(crate) end: u128,
    /// Prefix length for CIDR items, None for ranges.
    pub(crate) prefix_len: Option<u8>,
}

impl Entry {
    /// The entry is `0.0.0.0/32`, kube-vip-cloud-provider's DHCP marker.
    pub(crate) fn is_dhcp(&self) -> bool {
        self.family == IpFamily::V4 && self.start == 0 && self.prefix_len == Some(32)
    }

    /// The usable range: with `skip_end` the first and last address of an IPv4 CIDR shorter
    /// than /31 are dropped (they are the network and broadcast address; /31 and /32 have
    /// none, RFC 3021). None when nothing is left.
    pub(crate) fn usable(&self, skip_end: bool) -> Option<AddrRange> {
        let trim =
            skip_end && self.family == IpFamily::V4 && self.prefix_len.is_some_and(|len| len < 31);
        let (start, end) = if trim {
            (self.start + 1, self.end - 1)
        } else {
            (self.start, self.end)
        };
        (start <= end).then(|| AddrRange::from_numbers(self.family, start, end))
    }
}

/// Which key family (`cidr-` or `range-`) a list came from. It does not decide how items
/// are read: like kube-vip-cloud-provider, an item with a `/` is a CIDR and anything else a
/// range, whatever the key; a mismatch is only reported as a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    Cidr,
    Range,
}

/// A parsed list: the good entries, one problem per bad item, and the items whose form does
/// not match their key (a range under `cidr-`, a CIDR under `range-`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedList {
    pub(crate) entries: Vec<Entry>,
    pub(crate) problems: Vec<ConfigProblem>,
    pub(crate) other_form: Vec<String>,
}

/// Splits `value` on commas and parses every item. kube-vip-cloud-provider decides by the
/// value, not the key: with a `/` it reads CIDRs, otherwise ranges (its own tests put an
/// IPv6 range under a `cidr-` key). We decide per item, which accepts everything KVCP
/// accepts and also a value that mixes both forms.
pub(crate) fn parse_list(value: &str, kind: ListKind) -> ParsedList {
    let mut parsed = ParsedList::default();
    for (index, item) in value.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            parsed.problems.push(ConfigProblem::EmptyItem {
                position: index + 1,
                value: value.to_owned(),
            });
            continue;
        }
        let (result, form) = if item.contains('/') {
            (parse_cidr(item), ListKind::Cidr)
        } else if item.contains('-') {
            (parse_range(item), ListKind::Range)
        } else {
            (
                Err(ConfigProblem::NotCidrOrRange {
                    text: item.to_owned(),
                }),
                kind,
            )
        };
        match result {
            Ok(entry) => {
                if form != kind {
                    parsed.other_form.push(item.to_owned());
                }
                parsed.entries.push(entry);
            }
            Err(problem) => parsed.problems.push(problem),
        }
    }
    parsed
}

fn parse_address(text: &str) -> Result<IpAddr, ConfigProblem> {
    text.trim().parse().map_err(|_| ConfigProblem::BadAddress {
        text: text.trim().to_owned(),
    })
}

/// `addr/len`; host bits are masked off (`192.168.0.10/24` means `192.168.0.0/24`).
fn parse_cidr(item: &str) -> Result<Entry, ConfigProblem> {
    let Some((address, len)) = item.split_once('/') else {
        return Err(ConfigProblem::NotCidrOrRange {
            text: item.to_owned(),
        });
    };
    let (family, number) = to_number(parse_address(address)?);
    let max = family.max_prefix_len();
    let len: u8 = len
        .trim()
        .parse()
        .ok()
        .filter(|&len| len <= max)
        .ok_or_else(|| ConfigProblem::PrefixLength {
            text: item.to_owned(),
            max,
        })?;
    let host_bits = u32::from(max - len);
    // `checked_shl` covers /0 of IPv6, where the host part is all 128 bits.
    let host_mask = 1u128
        .checked_shl(host_bits)
        .map_or(u128::MAX, |bit| bit - 1);
    let start = number & !host_mask;
    Ok(Entry {
        family,
        start,
        end: start | host_mask,
        prefix_len: Some(len),
    })
}

/// `start-end`, both ends of one family, `start <= end`.
fn parse_range(item: &str) -> Result<Entry, ConfigProblem> {
    let Some((start, end)) = item.split_once('-') else {
        return Err(ConfigProblem::NotCidrOrRange {
            text: item.to_owned(),
        });
    };
    let (start_family, start) = to_number(parse_address(start)?);
    let (end_family, end) = to_number(parse_address(end)?);
    if start_family != end_family {
        return Err(ConfigProblem::FamilyMix {
            text: item.to_owned(),
        });
    }
    if end < start {
        return Err(ConfigProblem::EndBeforeStart {
            text: item.to_owned(),
        });
    }
    Ok(Entry {
        family: start_family,
        start,
        end,
        prefix_len: None,
    })
}

/// A boolean the way Go's `strconv.ParseBool` (used by kube-vip-cloud-provider) reads it.
pub(crate) fn parse_bool(value: &str) -> Result<bool, ConfigProblem> {
    crate::strconv::parse_bool(value).ok_or_else(|| ConfigProblem::BadValue {
        text: value.trim().to_owned(),
        expected: "`true` or `false`",
    })
}

/// `desc` or `asc`; empty means ascending.
pub(crate) fn parse_search_order(value: &str) -> Result<SearchOrder, ConfigProblem> {
    match value.trim() {
        "desc" => Ok(SearchOrder::Descending),
        "asc" | "" => Ok(SearchOrder::Ascending),
        other => Err(ConfigProblem::BadValue {
            text: other.to_owned(),
            expected: "`asc` or `desc`",
        }),
    }
}

/// A Linux interface name: 1 to 15 bytes, no `/`, no whitespace (IFNAMSIZ is 16 with the NUL).
pub(crate) fn parse_interface(value: &str) -> Result<String, ConfigProblem> {
    let name = value.trim();
    let valid = !name.is_empty()
        && name.len() <= 15
        && !name.contains('/')
        && !name.chars().any(char::is_whitespace)
        && name != "."
        && name != "..";
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ConfigProblem::BadValue {
            text: name.to_owned(),
            expected: "an interface name of 1 to 15 characters without `/` or spaces",
        })
    }
}
