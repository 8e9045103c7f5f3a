//! What can be wrong in a ConfigMap, as sentences a user can act on.
//!
//! A [`ConfigError`] is one malformed entry or likely-misspelt key; a [`ConfigWarning`] is
//! something allowed but probably unintended. Both name the ConfigMap and the key, and their
//! `Display` is the whole message the controller puts into events and logs.

use std::fmt;

/// What is wrong with one entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// An item is not an IP address.
    #[error("`{text}` is not an IP address")]
    BadAddress {
        /// The offending text.
        text: String,
    },
    /// A range whose end is below its start.
    #[error("`{text}` ends before it starts")]
    EndBeforeStart {
        /// The offending range.
        text: String,
    },
    /// A range whose ends are of different families.
    #[error("`{text}` mixes IPv4 and IPv6")]
    FamilyMix {
        /// The offending range.
        text: String,
    },
    /// A CIDR with a prefix length that is not a number or too long for its family.
    #[error("`{text}` has a prefix length that is not a number from 0 to {max}")]
    PrefixLength {
        /// The offending CIDR.
        text: String,
        /// 32 or 128.
        max: u8,
    },
    /// An empty item in a comma list (`a,,b`, a trailing comma, or an empty value).
    #[error("item {position} of `{value}` is empty")]
    EmptyItem {
        /// 1-based position of the empty item.
        position: usize,
        /// The whole value.
        value: String,
    },
    /// An item that is neither `addr/len` nor `start-end` (a bare address, for example).
    #[error(
        "`{text}` is neither a CIDR nor a `start-end` range; write `{text}-{text}` for one address"
    )]
    NotCidrOrRange {
        /// The offending item.
        text: String,
    },
    /// A setting with a value it cannot take.
    #[error("`{text}` is not valid here; expected {expected}")]
    BadValue {
        /// The offending value.
        text: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// A key with nothing after its prefix, such as `cidr-`.
    #[error("the key names no namespace")]
    EmptyNamespace,
    /// An unknown key that looks like a misspelling of a known one.
    #[error("unknown key; did you mean `{suggestion}`?")]
    LikelyTypo {
        /// The key the user probably meant.
        suggestion: String,
    },
}

/// One malformed entry of the ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ConfigMap {configmap} key `{key}`: {problem}")]
pub struct ConfigError {
    /// The ConfigMap key holding the entry.
    pub key: String,
    /// "namespace/name" of the ConfigMap.
    pub configmap: String,
    /// What is wrong.
    pub problem: ConfigProblem,
    pub(crate) namespace: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(
        configmap: &str,
        key: &str,
        namespace: Option<&str>,
        problem: ConfigProblem,
    ) -> Self {
        ConfigError {
            key: key.to_owned(),
            configmap: configmap.to_owned(),
            problem,
            namespace: namespace.map(str::to_owned),
        }
    }

    /// The namespace whose pool the entry belongs to; None = the global pool or settings.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// Something allowed but probably unintended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The ConfigMap key the warning is about.
    pub key: String,
    /// "namespace/name" of the ConfigMap.
    pub configmap: String,
    /// What is unusual.
    pub kind: ConfigWarningKind,
}

/// The kinds of warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWarningKind {
    /// Two pools share addresses. Allowed: the allocator never gives one address twice.
    Overlap {
        /// The other pool's key.
        other_key: String,
        /// The first shared range.
        shared: String,
    },
    /// A per-namespace setting for a namespace that has no pool of its own.
    NoOwnPool {
        /// The namespace.
        namespace: String,
    },
    /// `0.0.0.0/32` (DHCP) together with other IPv4 entries of the same pool: like
    /// kube-vip-cloud-provider, IPv4 addresses come from those entries and DHCP is not used.
    DhcpWithOtherEntries,
    /// Items whose form does not match the key (a range under `cidr-`, a CIDR under
    /// `range-`): used as written, like kube-vip-cloud-provider does.
    OtherForm {
        /// The items, as written.
        items: Vec<String>,
        /// `range` or `CIDR`: what the items are.
        form: &'static str,
        /// The key such items usually go under.
        usual_key: String,
    },
    /// New Services get addresses differently than with kube-vip-cloud-provider. Allowed
    /// (FerroLB's rule is deliberate), but a migrating operator must know before a Service
    /// lands in another subnet.
    KvcpDifference {
        /// The difference, as a sentence.
        what: String,
    },
}

impl ConfigWarningKind {
    /// True for a difference from kube-vip-cloud-provider in how new Services are served.
    pub fn is_kvcp_difference(&self) -> bool {
        matches!(self, ConfigWarningKind::KvcpDifference { .. })
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigMap {} key `{}`: ", self.configmap, self.key)?;
        match &self.kind {
            ConfigWarningKind::Overlap { other_key, shared } => write!(
                f,
                "overlaps `{other_key}` at {shared}; each address still goes to one Service only"
            ),
            ConfigWarningKind::NoOwnPool { namespace } => write!(
                f,
                "has no effect: namespace `{namespace}` has no `cidr-{namespace}` or \
                 `range-{namespace}` and uses the global pool and its settings"
            ),
            ConfigWarningKind::DhcpWithOtherEntries => write!(
                f,
                "`0.0.0.0/32` (DHCP) is combined with other IPv4 entries of the same pool; as \
                 with kube-vip-cloud-provider, IPv4 addresses come from those entries and DHCP \
                 is not used"
            ),
            ConfigWarningKind::OtherForm {
                items,
                form,
                usual_key,
            } => write!(
                f,
                "`{}` {} a {form}; used as written, as kube-vip-cloud-provider does (such \
                 entries usually go under `{usual_key}`)",
                items.join(","),
                if items.len() == 1 { "is" } else { "are each" }
            ),
            ConfigWarningKind::KvcpDifference { what } => {
                write!(f, "differs from kube-vip-cloud-provider: {what}")
            }
        }
    }
}
