//! ConfigMap keys: which setting a key is, for which scope, and whether an unknown key looks
//! like a misspelling of a known one.
//!
//! Keys are `<stem>-<namespace>` or `<stem>-global` (plus the bare global forms of
//! `search-order`, `skip-end-ips-in-cidr` and `avoid-buggy-ips`). Unknown keys are ignored
//! unless they are within a small edit distance of a known stem, which is reported so that
//! `cdir-default` does not silently leave a namespace without its pool.

/// Whom a setting applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    Global,
    Namespace(&'a str),
}

impl<'a> Scope<'a> {
    /// The namespace, None for global.
    pub(crate) fn namespace(self) -> Option<&'a str> {
        match self {
            Scope::Global => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }
}

/// The settings a key can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Setting {
    Cidr,
    Range,
    AllowShare,
    Interface,
    SearchOrder,
    SkipEndIpsInCidr,
    AvoidBuggyIps,
}

/// What a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind<'a> {
    /// A setting for a scope.
    Known(Setting, Scope<'a>),
    /// A known prefix with nothing after it (`cidr-`).
    MissingNamespace(Setting),
    /// `kubevip-services`: an old cache kube-vip-cloud-provider no longer uses; ignored.
    Legacy,
    /// Not ours.
    Unknown,
}

/// Stems in the order they must be tried: longer prefixes first, so that
/// `skip-end-ips-in-cidr-x` is not read as something else.
const STEMS: [(&str, Setting); 7] = [
    ("skip-end-ips-in-cidr", Setting::SkipEndIpsInCidr),
    ("avoid-buggy-ips", Setting::AvoidBuggyIps),
    ("search-order", Setting::SearchOrder),
    ("allow-share", Setting::AllowShare),
    ("interface", Setting::Interface),
    ("range", Setting::Range),
    ("cidr", Setting::Cidr),
];

/// Settings whose global form is the bare stem (`search-order`) rather than `<stem>-global`.
fn has_bare_global(setting: Setting) -> bool {
    matches!(
        setting,
        Setting::SearchOrder | Setting::SkipEndIpsInCidr | Setting::AvoidBuggyIps
    )
}

/// Classifies `key`.
pub(crate) fn classify(key: &str) -> KeyKind<'_> {
    if key == "kubevip-services" {
        return KeyKind::Legacy;
    }
    for (stem, setting) in STEMS {
        let Some(rest) = key.strip_prefix(stem) else {
            continue;
        };
        if rest.is_empty() && has_bare_global(setting) {
            return KeyKind::Known(setting, Scope::Global);
        }
        let Some(namespace) = rest.strip_prefix('-') else {
            continue;
        };
        return match namespace {
            "" => KeyKind::MissingNamespace(setting),
            "global" => KeyKind::Known(setting, Scope::Global),
            namespace => KeyKind::Known(setting, Scope::Namespace(namespace)),
        };
    }
    KeyKind::Unknown
}

/// For an unknown key, the known key the user most likely meant, if any.
pub(crate) fn likely_meant(key: &str) -> Option<String> {
    let normalised = key.to_ascii_lowercase().replace('_', "-");
    if normalised != key && matches!(classify(&normalised), KeyKind::Known(..)) {
        return Some(normalised);
    }
    // Try every split of the key at a separator: the head may be a misspelt stem.
    let split_points = normalised
        .char_indices()
        .filter(|&(_, c)| c == '-')
        .map(|(i, _)| i)
        .chain([normalised.len()]);
    for split in split_points {
        let (head, tail) = normalised.split_at(split);
        for (stem, setting) in STEMS {
            // Up to two edits; heads shorter than three letters (`id`, `ra`) are too short to
            // tell a typo from an unrelated word.
            let distance = edit_distance(head, stem);
            if distance == 0 || distance > 2 || head.len() < 3 {
                continue;
            }
            if tail.is_empty() && !has_bare_global(setting) {
                continue;
            }
            return Some(format!("{stem}{tail}"));
        }
    }
    None
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost 1 (so `cdir` is one step from `cidr`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_stem_and_scope() {
        let table = [
            (
                "cidr-default",
                KeyKind::Known(Setting::Cidr, Scope::Namespace("default")),
            ),
            ("cidr-global", KeyKind::Known(Setting::Cidr, Scope::Global)),
            (
                "range-my-team",
                KeyKind::Known(Setting::Range, Scope::Namespace("my-team")),
            ),
            (
                "search-order",
                KeyKind::Known(Setting::SearchOrder, Scope::Global),
            ),
            (
                "search-order-web",
                KeyKind::Known(Setting::SearchOrder, Scope::Namespace("web")),
            ),
            (
                "skip-end-ips-in-cidr",
                KeyKind::Known(Setting::SkipEndIpsInCidr, Scope::Global),
            ),
            (
                "avoid-buggy-ips-x",
                KeyKind::Known(Setting::AvoidBuggyIps, Scope::Namespace("x")),
            ),
            (
                "allow-share-global",
                KeyKind::Known(Setting::AllowShare, Scope::Global),
            ),
            (
                "interface-web",
                KeyKind::Known(Setting::Interface, Scope::Namespace("web")),
            ),
            ("cidr-", KeyKind::MissingNamespace(Setting::Cidr)),
            ("kubevip-services", KeyKind::Legacy),
            ("cidr", KeyKind::Unknown),
            ("something-else", KeyKind::Unknown),
        ];
        for (key, expected) in table {
            assert_eq!(classify(key), expected, "{key}");
        }
    }

    #[test]
    fn misspelt_keys_get_a_suggestion_and_unrelated_keys_do_not() {
        let table = [
            ("cdir-default", Some("cidr-default")),
            ("range_global", Some("range-global")),
            ("Range-global", Some("range-global")),
            ("serch-order", Some("search-order")),
            ("allow-shares-web", Some("allow-share-web")),
            ("skip-end-ip-in-cidr", Some("skip-end-ips-in-cidr")),
            ("rnage-web", Some("range-web")),
            ("cdi-default", Some("cidr-default")),
            ("rang_web", Some("range-web")),
            ("kubevip-services", None),
            ("description", None),
            ("owner-team", None),
            ("mode", None),
        ];
        for (key, expected) in table {
            assert_eq!(likely_meant(key).as_deref(), expected, "{key}");
        }
    }
}
