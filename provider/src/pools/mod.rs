//! Address pools from a kube-vip-cloud-provider compatible ConfigMap.
//!
//! ```text
//!  ConfigMap data ──► keys::classify ──► per scope: lists (cidr-/range-) + settings
//!                                              │ parse::parse_list per item
//!                                              ▼
//!                          PoolSet { global, namespaces }  + errors + warnings
//! ```
//! Parsing never fails as a whole: every malformed entry becomes a [`ConfigError`] naming the
//! key and the text, and every other entry still counts. A namespace's pool is the union of
//! its `cidr-<ns>` and `range-<ns>` entries; only a namespace with neither key uses the global
//! pool (`cidr-global` ∪ `range-global`). kube-vip-cloud-provider instead lets `cidr-global`
//! win over `range-<ns>`; we do not, because a namespace's own key should never be overridden
//! by a global one.

mod errors;
mod keys;
mod kvcp;
mod model;
pub mod objects;
mod parse;

use std::collections::BTreeMap;

pub use errors::{ConfigError, ConfigProblem, ConfigWarning, ConfigWarningKind};
pub use model::{
    AddrRange, Closed, GLOBAL_POOL, NamedPool, Pool, PoolOrigin, PoolQuery, PoolSet, SearchOrder,
    Unmatched,
};

use keys::{KeyKind, Setting};
use parse::ListKind;

/// The result of parsing a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedConfig {
    /// The usable pools.
    pub pools: PoolSet,
    /// Malformed entries and likely-misspelt keys.
    pub errors: Vec<ConfigError>,
    /// Allowed but probably unintended things, such as overlapping namespace pools.
    pub warnings: Vec<ConfigWarning>,
}

/// Per pool name: each list key with its merged ranges (for overlap warnings).
type KeyRanges = Vec<(String, Vec<(String, Vec<AddrRange>)>)>;

/// Settings of one scope, as read from the ConfigMap (None = not set there).
#[derive(Clone, Debug, Default)]
struct ScopeSettings {
    search_order: Option<SearchOrder>,
    skip_end: Option<bool>,
    avoid_buggy: Option<bool>,
    allow_share: Option<bool>,
    interface: Option<String>,
    /// Keys of settings that only steer a pool of this scope's own (for warnings).
    pool_setting_keys: Vec<String>,
}

/// Parse the `data` of the kube-vip-cloud-provider ConfigMap. `source` is "namespace/name",
/// used in messages. Never fails as a whole: bad entries become `errors`, the rest still parses.
pub fn parse_config(source: &str, data: &BTreeMap<String, String>) -> ParsedConfig {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // None = global; the lists keep (key, kind, value) in key order.
    let mut lists: BTreeMap<Option<&str>, Vec<(&str, ListKind, &str)>> = BTreeMap::new();
    let mut settings: BTreeMap<Option<&str>, ScopeSettings> = BTreeMap::new();

    for (key, value) in data {
        let (setting, scope) = match keys::classify(key) {
            KeyKind::Known(setting, scope) => (setting, scope),
            KeyKind::MissingNamespace(_) => {
                errors.push(ConfigError::new(
                    source,
                    key,
                    None,
                    ConfigProblem::EmptyNamespace,
                ));
                continue;
            }
            KeyKind::Legacy => continue,
            KeyKind::Unknown => {
                if let Some(suggestion) = keys::likely_meant(key) {
                    let namespace = match keys::classify(&suggestion) {
                        KeyKind::Known(_, scope) => scope.namespace().map(str::to_owned),
                        _ => None,
                    };
                    errors.push(ConfigError::new(
                        source,
                        key,
                        namespace.as_deref(),
                        ConfigProblem::LikelyTypo { suggestion },
                    ));
                }
                continue;
            }
        };
        let namespace = scope.namespace();
        let fail = |problem| ConfigError::new(source, key, namespace, problem);
        let scope_settings = settings.entry(namespace).or_default();
        match setting {
            Setting::Cidr | Setting::Range => {
                let kind = if setting == Setting::Cidr {
                    ListKind::Cidr
                } else {
                    ListKind::Range
                };
                lists.entry(namespace).or_default().push((key, kind, value));
            }
            Setting::SearchOrder => match parse::parse_search_order(value) {
                Ok(order) => scope_settings.search_order = Some(order),
                Err(problem) => errors.push(fail(problem)),
            },
            Setting::SkipEndIpsInCidr => match parse::parse_bool(value) {
                Ok(on) => scope_settings.skip_end = Some(on),
                Err(problem) => errors.push(fail(problem)),
            },
            Setting::AvoidBuggyIps => match parse::parse_bool(value) {
                Ok(on) => scope_settings.avoid_buggy = Some(on),
                Err(problem) => errors.push(fail(problem)),
            },
            Setting::AllowShare => match parse::parse_bool(value) {
                Ok(on) => scope_settings.allow_share = Some(on),
                Err(problem) => errors.push(fail(problem)),
            },
            Setting::Interface => match parse::parse_interface(value) {
                Ok(name) => scope_settings.interface = Some(name),
                Err(problem) => errors.push(fail(problem)),
            },
        }
        if !matches!(
            setting,
            Setting::Cidr | Setting::Range | Setting::Interface | Setting::AllowShare
        ) {
            scope_settings.pool_setting_keys.push(key.clone());
        }
    }

    let global = settings.get(&None).cloned().unwrap_or_default();
    let mut pools = PoolSet::default();
    let mut pool_keys: KeyRanges = Vec::new();
    for (namespace, key_lists) in &lists {
        let own = namespace.and_then(|ns| settings.get(&Some(ns)));
        let pick = |f: fn(&ScopeSettings) -> Option<bool>| own.and_then(f).or_else(|| f(&global));
        let mut pool = Pool::new(namespace.unwrap_or(GLOBAL_POOL));
        pool.skip_end_ips_in_cidr = pick(|s| s.skip_end).unwrap_or(false);
        pool.avoid_buggy_ips = pick(|s| s.avoid_buggy).unwrap_or(true);
        pool.allow_share = pick(|s| s.allow_share).unwrap_or(false);
        pool.search_order = own
            .and_then(|s| s.search_order)
            .or(global.search_order)
            .unwrap_or_default();
        pool.interface = own
            .and_then(|s| s.interface.clone())
            .or_else(|| global.interface.clone());

        let pool_name = pool.name.clone();
        let scope_key = namespace.unwrap_or(GLOBAL_POOL);
        let mut per_key = Vec::new();
        let mut all = Vec::new();
        let mut dhcp_key = None;
        let mut other_v4 = false;
        for (key, kind, value) in key_lists {
            let parsed = parse::parse_list(value, *kind);
            errors.extend(
                parsed
                    .problems
                    .into_iter()
                    .map(|p| ConfigError::new(source, key, *namespace, p)),
            );
            if !parsed.other_form.is_empty() {
                let (form, usual) = match kind {
                    ListKind::Cidr => ("range", "range"),
                    ListKind::Range => ("CIDR", "cidr"),
                };
                warnings.push(ConfigWarning {
                    key: (*key).to_owned(),
                    configmap: source.to_owned(),
                    kind: ConfigWarningKind::OtherForm {
                        items: parsed.other_form,
                        form,
                        usual_key: format!("{usual}-{scope_key}"),
                    },
                });
            }
            let mut ranges = Vec::new();
            for entry in &parsed.entries {
                if entry.is_dhcp() {
                    dhcp_key.get_or_insert(*key);
                    continue;
                }
                other_v4 |= entry.family == crate::ipam::IpFamily::V4;
                ranges.extend(entry.usable(pool.skip_end_ips_in_cidr));
            }
            all.extend(ranges.iter().copied());
            per_key.push(((*key).to_owned(), merge(ranges)));
        }
        // kube-vip-cloud-provider's DHCP check is per family: the IPv4 part of the pool must
        // be exactly `0.0.0.0/32`. Beside other IPv4 entries it is a `.0` address that is
        // never handed out, so those entries are used (and `0.0.0.0` is left out, even with
        // `avoid-buggy-ips: false`).
        if let Some(key) = dhcp_key {
            if other_v4 {
                warnings.push(ConfigWarning {
                    key: key.to_owned(),
                    configmap: source.to_owned(),
                    kind: ConfigWarningKind::DhcpWithOtherEntries,
                });
            } else {
                pool.dhcp = true;
            }
        }
        pool.ranges = merge(all);
        pools.insert(pool);
        pool_keys.push((pool_name, per_key));
    }

    // Per-namespace settings only steer a namespace's own pool; say so when there is none.
    for (namespace, scope_settings) in &settings {
        let Some(ns) = namespace else { continue };
        if let Some(interface) = &scope_settings.interface {
            pools.interfaces.insert((*ns).to_owned(), interface.clone());
        }
        if lists.contains_key(&Some(*ns)) {
            continue;
        }
        // Like KVCP, `allow-share-<ns>` counts for a namespace on the global pool.
        if let Some(share) = scope_settings.allow_share {
            pools.shares.insert((*ns).to_owned(), share);
        }
        warnings.extend(
            scope_settings
                .pool_setting_keys
                .iter()
                .map(|key| ConfigWarning {
                    key: key.clone(),
                    configmap: source.to_owned(),
                    kind: ConfigWarningKind::NoOwnPool {
                        namespace: (*ns).to_owned(),
                    },
                }),
        );
    }

    warnings.extend(overlap_warnings(source, &pool_keys));
    warnings.extend(kvcp::differences(source, data, &pools));
    ParsedConfig {
        pools,
        errors,
        warnings,
    }
}

/// Sorts and merges overlapping or touching ranges of the same family.
pub(crate) fn merge(mut ranges: Vec<AddrRange>) -> Vec<AddrRange> {
    ranges.sort();
    let mut merged: Vec<AddrRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        if let Some(last) = merged.last_mut()
            && last.family() == range.family()
        {
            let (last_start, last_end) = last.numbers();
            let (start, end) = range.numbers();
            if start <= last_end.saturating_add(1) {
                *last = AddrRange::from_numbers(range.family(), last_start, last_end.max(end));
                continue;
            }
        }
        merged.push(range);
    }
    merged
}

/// One warning per pair of keys of different pools that share addresses.
fn overlap_warnings(source: &str, pool_keys: &KeyRanges) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for (i, (_, keys_a)) in pool_keys.iter().enumerate() {
        for (_, keys_b) in &pool_keys[i + 1..] {
            for (key_a, ranges_a) in keys_a {
                for (key_b, ranges_b) in keys_b {
                    if let Some(shared) = first_shared(ranges_a, ranges_b) {
                        warnings.push(ConfigWarning {
                            key: key_a.clone(),
                            configmap: source.to_owned(),
                            kind: ConfigWarningKind::Overlap {
                                other_key: key_b.clone(),
                                shared: shared.to_string(),
                            },
                        });
                    }
                }
            }
        }
    }
    warnings
}

/// The first range both sorted lists cover.
pub(crate) fn first_shared(a: &[AddrRange], b: &[AddrRange]) -> Option<AddrRange> {
    for x in a {
        for y in b {
            let start = x.start().max(y.start());
            let end = x.end().min(y.end());
            if let Some(shared) = AddrRange::new(start, end) {
                return Some(shared);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
