//! Address sharing: when may a Service join an address other Services already hold.
//!
//! With `allow-share-*` on, Services of one pool may use the same address as long as no
//! (protocol, port) pair appears in two of them — TCP/53 and UDP/53 can share, two TCP/80 cannot.
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

/// What sharing needs to know about a Service holding an address.
pub(crate) trait ShareInfo {
    /// The pool the Service allocated from.
    fn pool(&self) -> &str;
    /// Whether the Service allows others to join its addresses.
    fn shareable(&self) -> bool;
    /// Its (protocol, port) pairs.
    fn ports(&self) -> &[(Protocol, u16)];
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

/// Whether a Service of `pool` with `ports` (and the wish to share, `shareable`) may join an
/// address held by `holders`. A Service without ports never shares: nothing tells whether it
/// would clash (kube-vip-cloud-provider treats it the same way).
pub(crate) fn can_join<I: ShareInfo>(
    holders: &[ServiceKey],
    held: &BTreeMap<ServiceKey, I>,
    pool: &str,
    shareable: bool,
    ports: &[(Protocol, u16)],
) -> Result<(), JoinRefused> {
    for holder in holders {
        let refused = |ports_clash| JoinRefused {
            holder: holder.clone(),
            ports_clash,
        };
        let Some(info) = held.get(holder) else {
            return Err(refused(false));
        };
        if !shareable || !info.shareable() || info.pool() != pool {
            return Err(refused(false));
        }
        if ports_overlap(info.ports(), ports) {
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
