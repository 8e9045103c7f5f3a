//! Where new Services get addresses differently than with kube-vip-cloud-provider.
//!
//! ```text
//!   ConfigMap data ──► keys::classify ──► one KvcpDifference warning per key that KVCP reads
//!   + parsed PoolSet                      differently (or not at all)
//! ```
//! FerroLB's own rules are deliberate (a namespace's own keys win, settings may be set per
//! namespace, sharing is protocol-aware), so they stay. But an operator who switches from
//! KVCP must learn *before* a new Service lands in another subnet that the same ConfigMap is
//! read differently, so each such place is reported, naming the key. Existing Services are
//! not affected: they keep their addresses (see `ipam::adopt`).

use std::collections::{BTreeMap, BTreeSet};

use super::errors::{ConfigWarning, ConfigWarningKind};
use super::keys::{KeyKind, Scope, Setting, classify};
use super::model::PoolSet;

/// One warning per place the ConfigMap is read differently from kube-vip-cloud-provider.
pub(crate) fn differences(
    source: &str,
    data: &BTreeMap<String, String>,
    pools: &PoolSet,
) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    let mut warn = |key: &str, what: String| {
        warnings.push(ConfigWarning {
            key: key.to_owned(),
            configmap: source.to_owned(),
            kind: ConfigWarningKind::KvcpDifference { what },
        });
    };
    // (setting, namespace) of every list key present.
    let lists: BTreeSet<(Setting, Option<&str>)> = data
        .keys()
        .filter_map(|key| match classify(key) {
            KeyKind::Known(setting @ (Setting::Cidr | Setting::Range), scope) => {
                Some((setting, scope.namespace()))
            }
            _ => None,
        })
        .collect();
    let has = |setting, namespace| lists.contains(&(setting, namespace));

    for (key, value) in data {
        let KeyKind::Known(setting, scope) = classify(key) else {
            continue;
        };
        match (setting, scope) {
            (Setting::Range, Scope::Namespace(ns)) if has(Setting::Cidr, Some(ns)) => warn(
                key,
                format!(
                    "kube-vip-cloud-provider uses only `cidr-{ns}` for namespace `{ns}` and \
                     ignores this key; FerroLB allocates from both"
                ),
            ),
            (Setting::Range, Scope::Namespace(ns)) if has(Setting::Cidr, None) => warn(
                key,
                format!(
                    "kube-vip-cloud-provider gives Services of namespace `{ns}` addresses from \
                     `cidr-global` (it looks up `cidr-{ns}`, `cidr-global`, `range-{ns}`, \
                     `range-global` in this order); FerroLB allocates from this key, the \
                     namespace's own"
                ),
            ),
            (Setting::Range, Scope::Global) if has(Setting::Cidr, None) => warn(
                key,
                "kube-vip-cloud-provider uses only `cidr-global` for the global pool and \
                 ignores this key; FerroLB allocates from both"
                    .to_owned(),
            ),
            (Setting::SearchOrder | Setting::SkipEndIpsInCidr, Scope::Global)
                if key.ends_with("-global") =>
            {
                warn(
                    key,
                    format!(
                        "kube-vip-cloud-provider reads only `{}`; FerroLB reads this key too",
                        key.trim_end_matches("-global")
                    ),
                )
            }
            (Setting::SearchOrder | Setting::SkipEndIpsInCidr, Scope::Namespace(ns))
                if pools.namespaces.contains_key(ns) =>
            {
                let bare = key.trim_end_matches(&format!("-{ns}")[..]);
                warn(
                    key,
                    format!(
                        "kube-vip-cloud-provider reads only the global `{bare}`; FerroLB \
                         applies this key to the pool of namespace `{ns}`"
                    ),
                )
            }
            (Setting::AvoidBuggyIps, _) if crate::strconv::parse_bool(value) == Some(false) => {
                warn(
                    key,
                    "kube-vip-cloud-provider always skips IPv4 addresses ending in .0 or .255; \
                     with this key FerroLB hands them out"
                        .to_owned(),
                )
            }
            (Setting::SkipEndIpsInCidr, Scope::Global)
                if crate::strconv::parse_bool(value) == Some(true) && value != "true" =>
            {
                warn(
                    key,
                    format!(
                        "kube-vip-cloud-provider skips CIDR ends only for the exact value \
                         `true`, so it ignores `{value}`; FerroLB skips them"
                    ),
                )
            }
            (Setting::AllowShare, scope) if crate::strconv::parse_bool(value) == Some(true) => {
                let on_global = scope
                    .namespace()
                    .is_some_and(|ns| !pools.namespaces.contains_key(ns));
                let joins = if on_global {
                    "; and where kube-vip-cloud-provider lets these Services join any address \
                     of the global pool, FerroLB lets them join only addresses of Services \
                     whose namespace allows sharing too"
                } else {
                    ""
                };
                warn(
                    key,
                    format!(
                        "FerroLB also shares IPv6 addresses and lets TCP and UDP use the same \
                         port number (kube-vip-cloud-provider: IPv4 only, port numbers only)\
                         {joins}"
                    ),
                )
            }
            _ => {}
        }
    }
    warnings
}
