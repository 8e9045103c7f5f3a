//! Choosing the next hops we advertise on a session (RFC 4271 §5.1.3, RFC 2545 §3).
//!
//! IPv4: the configured override, else the session's local address when it is IPv4, else an
//! IPv4 address of the interface the session uses. IPv6: the configured override, else the
//! session's local address when it is a global IPv6 address, else a global IPv6 address of that
//! interface — never an IPv4-mapped address, which BIRD refuses. A link-local next hop is added
//! when the peer is directly connected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::interfaces::{self, Interface};

use super::config::PeerConfig;

/// The next hops for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHops {
    pub ipv4: Option<Ipv4Addr>,
    /// Global first, then link-local if any.
    pub ipv6: Vec<Ipv6Addr>,
}

fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Next hops for `config` on a session whose local address is `local`, picking from the node's
/// interfaces where needed.
pub fn choose(config: &PeerConfig, local: IpAddr) -> NextHops {
    let interfaces = interfaces::list().unwrap_or_default();
    choose_from(config, local, &interfaces)
}

/// As [`choose`], with the interfaces given (pure, for tests).
pub fn choose_from(config: &PeerConfig, local: IpAddr, interfaces: &[Interface]) -> NextHops {
    let session_interface = interfaces
        .iter()
        .find(|i| i.addresses.iter().any(|net| net.addr() == local));
    let on_interface_v4 = session_interface.and_then(|i| {
        i.addresses.iter().find_map(|net| match net.addr() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    });
    let on_interface_v6 = session_interface.and_then(|i| {
        i.addresses.iter().find_map(|net| match net.addr() {
            IpAddr::V6(v6) if !is_link_local(&v6) && !v6.is_loopback() => Some(v6),
            _ => None,
        })
    });
    let ipv4 = config.ipv4_next_hop.or(match local {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => on_interface_v4,
    });
    let global = config.ipv6_next_hop.or(match local {
        IpAddr::V6(v6) if !is_link_local(&v6) && v6.to_ipv4_mapped().is_none() => Some(v6),
        _ => on_interface_v6,
    });
    let mut ipv6: Vec<Ipv6Addr> = global.into_iter().collect();
    let directly_connected = config.ebgp_multihop_ttl == 0;
    if directly_connected
        && !ipv6.is_empty()
        && let Some(link_local) = session_interface.and_then(|i| {
            i.addresses.iter().find_map(|net| match net.addr() {
                IpAddr::V6(v6) if is_link_local(&v6) => Some(v6),
                _ => None,
            })
        })
    {
        ipv6.push(link_local);
    }
    NextHops { ipv4, ipv6 }
}
