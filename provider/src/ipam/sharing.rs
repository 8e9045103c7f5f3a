//! Address sharing: when may a Service join an address other Services already hold.
//!
//! Two ways to share, both only while no (protocol, port) pair appears in two of the Services
//! — TCP/53 and UDP/53 can share, two TCP/80 cannot:
//! - the ConfigMap's `allow-share-*`: Services of one pool may share any of its addresses;
//! - a sharing key (Cilium's `lbipam.cilium.io/sharing-key`, our `ferrolb.io/sharing-key`):
//!   Services with the same key share; across namespaces only when both list the other's
//!   namespace (or `*`) in their `sharing-cross-namespace` annotation.
//!
//! kube-vip-cloud-provider compares port numbers only and picks any matching address (map
//! order); we compare protocol too and pick the lowest matching address (highest with
//! `search-order: desc`) so the outcome is reproducible.

use std::collections::BTreeMap;

use super::request::ServiceKey;

/// The protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

/// A Service's sharing key and the other namespaces it may share with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingKey {
    /// The key, as written.
    pub key: String,
    /// Namespaces besides its own it may share with; `*` means every namespace.
    pub namespaces: Vec<String>,
}

impl SharingKey {
    fn admits(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
    }
}

/// Whether the holder `holder` (key `theirs`) and the joiner `joiner` (key `mine`) may share
/// by key: same key, and the same namespace or both admitting the other's.
fn same_key(
    joiner: &ServiceKey,
    mine: &SharingKey,
    holder: &ServiceKey,
    theirs: &SharingKey,
) -> bool {
    mine.key == theirs.key
        && (joiner.namespace == holder.namespace
            || (mine.admits(&holder.namespace) && theirs.admits(&joiner.namespace)))
}

/// The Service that wants to join an address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Joiner<'a> {
    /// The Service.
    pub(crate) key: &'a ServiceKey,
    /// The pool it allocates from.
    pub(crate) pool: &'a str,
    /// The pool's `allow-share` applies to it.
    pub(crate) shareable: bool,
    /// Its ports.
    pub(crate) ports: &'a [(Protocol, u16)],
    /// Its sharing key.
    pub(crate) sharing: Option<&'a SharingKey>,
}

impl Joiner<'_> {
    /// Whether it wants to share at all.
    pub(crate) fn wants_to_share(&self) -> bool {
        (self.shareable || self.sharing.is_some()) && !self.ports.is_empty()
    }
}

/// What sharing needs to know about a Service holding an address.
pub(crate) trait ShareInfo {
    /// The pool the Service allocated from.
    fn pool(&self) -> &str;
    /// Whether the Service allows others to join its addresses.
    fn shareable(&self) -> bool;
    /// Its (protocol, port) pairs.
    fn ports(&self) -> &[(Protocol, u16)];
    /// Its sharing key.
    fn sharing(&self) -> Option<&SharingKey>;
}

impl<T: ShareInfo> ShareInfo for Box<T> {
    fn pool(&self) -> &str {
        (**self).pool()
    }
    fn shareable(&self) -> bool {
        (**self).shareable()
    }
    fn ports(&self) -> &[(Protocol, u16)] {
        (**self).ports()
    }
    fn sharing(&self) -> Option<&SharingKey> {
        (**self).sharing()
    }
}

/// Whether two port lists use one (protocol, port) pair.
pub(crate) fn ports_overlap(a: &[(Protocol, u16)], b: &[(Protocol, u16)]) -> bool {
    a.iter().any(|pair| b.contains(pair))
}

/// Why a Service may not join an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinRefused {
    /// A holder in the way.
    pub(crate) holder: ServiceKey,
    /// Sharing was allowed on both sides; only the ports clash.
    pub(crate) ports_clash: bool,
}

/// Whether `joiner` may join an address held by `holders`. A Service without ports never
/// shares: nothing tells whether it would clash (kube-vip-cloud-provider and Cilium treat it
/// the same way).
pub(crate) fn can_join<I: ShareInfo>(
    holders: &[ServiceKey],
    held: &BTreeMap<ServiceKey, I>,
    joiner: &Joiner<'_>,
) -> Result<(), JoinRefused> {
    for holder in holders {
        let refused = |ports_clash| JoinRefused {
            holder: holder.clone(),
            ports_clash,
        };
        let Some(info) = held.get(holder) else {
            return Err(refused(false));
        };
        let by_key = match (joiner.sharing, info.sharing()) {
            (Some(mine), Some(theirs)) => same_key(joiner.key, mine, holder, theirs),
            _ => false,
        };
        let by_pool = joiner.shareable && info.shareable() && info.pool() == joiner.pool;
        if !(by_key || by_pool) || joiner.ports.is_empty() {
            return Err(refused(false));
        }
        if ports_overlap(info.ports(), joiner.ports) {
            return Err(refused(true));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_port_number_with_different_protocols_does_not_overlap() {
        assert!(!ports_overlap(
            &[(Protocol::Tcp, 53)],
            &[(Protocol::Udp, 53)]
        ));
        assert!(ports_overlap(
            &[(Protocol::Tcp, 53), (Protocol::Udp, 53)],
            &[(Protocol::Udp, 53)]
        ));
        assert!(!ports_overlap(&[], &[(Protocol::Sctp, 9)]));
    }
}
