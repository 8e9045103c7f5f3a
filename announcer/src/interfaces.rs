//! The node's interfaces: names, indexes, MACs, addresses and link state, and how an
//! announcement's interface selector resolves to one of them.
//!
//! Enumeration uses `getifaddrs(3)` (via nix), which is cheap enough to call on every
//! reconcile and on the link-state poll; no state is cached here.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use ipnet::IpNet;
use nix::net::if_::InterfaceFlags;

use crate::l2::Mac;
use crate::model::Selector;

/// One network interface of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: Option<Mac>,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
    pub loopback: bool,
    /// Addresses with their prefix length.
    pub addresses: Vec<IpNet>,
}

/// Lists all interfaces of the node (of the current network namespace).
pub fn list() -> io::Result<Vec<Interface>> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for entry in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let iface = by_name
            .entry(entry.interface_name.clone())
            .or_insert_with(|| Interface {
                // Filled from the link-layer entry below; looked up only if there is none.
                index: 0,
                name: entry.interface_name.clone(),
                mac: None,
                up: false,
                loopback: false,
                addresses: Vec::new(),
            });
        iface.up = entry
            .flags
            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING);
        iface.loopback = entry.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        let Some(address) = entry.address else {
            continue;
        };
        if let Some(link) = address.as_link_addr() {
            iface.index = u32::try_from(link.ifindex()).unwrap_or(0);
            iface.mac = link.addr().filter(|mac| mac.iter().any(|b| *b != 0));
        } else if let Some(v4) = address.as_sockaddr_in() {
            let prefix = entry
                .netmask
                .and_then(|m| m.as_sockaddr_in().map(|m| u32::from(m.ip()).count_ones()))
                .unwrap_or(32);
            if let Ok(net) = IpNet::new(IpAddr::V4(v4.ip()), prefix as u8) {
                iface.addresses.push(net);
            }
        } else if let Some(v6) = address.as_sockaddr_in6() {
            let prefix = entry
                .netmask
                .and_then(|m| m.as_sockaddr_in6().map(|m| u128::from(m.ip()).count_ones()))
                .unwrap_or(128);
            if let Ok(net) = IpNet::new(IpAddr::V6(v6.ip()), prefix as u8) {
                iface.addresses.push(net);
            }
        }
    }
    for iface in by_name.values_mut().filter(|i| i.index == 0) {
        iface.index = nix::net::if_::if_nametoindex(iface.name.as_str()).unwrap_or(0);
    }
    Ok(by_name.into_values().filter(|i| i.index != 0).collect())
}

/// Why a selector did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    #[error("no route to {0} (can_reach): {1}")]
    NoRoute(IpAddr, String),
    #[error("the route to {0} uses source {1}, which is on no interface")]
    SourceOnNoInterface(IpAddr, IpAddr),
    #[error("no interface has a subnet holding {0}; give an interface name or can_reach:<address>")]
    NoSubnet(IpAddr),
    #[error("interface {0} has no MAC address (layer-2 announcements need Ethernet)")]
    NoMac(String),
}

/// Resolves `selector` for `address` among `interfaces`.
///
/// - a name: that interface;
/// - `can_reach:<ip>`: the interface holding the source address the kernel picks for a route
///   to `<ip>` (found by connecting a UDP socket, which sends nothing);
/// - automatic: the non-loopback interface whose subnet holds `address`, longest prefix first,
///   ignoring host routes (/32, /128) such as VIPs.
pub fn resolve<'a>(
    selector: &Selector,
    address: IpAddr,
    interfaces: &'a [Interface],
) -> Result<&'a Interface, ResolveError> {
    let found = match selector {
        Selector::Name(name) => interfaces
            .iter()
            .find(|i| &i.name == name)
            .ok_or_else(|| ResolveError::NoSuchInterface(name.clone()))?,
        Selector::CanReach(peer) => {
            let source =
                route_source(*peer).map_err(|e| ResolveError::NoRoute(*peer, e.to_string()))?;
            interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|n| n.addr() == source))
                .ok_or(ResolveError::SourceOnNoInterface(*peer, source))?
        }
        Selector::Automatic => interfaces
            .iter()
            .filter(|i| !i.loopback)
            .flat_map(|i| i.addresses.iter().map(move |n| (i, n)))
            .filter(|(_, n)| n.prefix_len() < n.max_prefix_len() && n.contains(&address))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(i, _)| i)
            .ok_or(ResolveError::NoSubnet(address))?,
    };
    if found.mac.is_none() {
        return Err(ResolveError::NoMac(found.name.clone()));
    }
    Ok(found)
}

/// The source address the kernel would use to reach `peer`.
fn route_source(peer: IpAddr) -> io::Result<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(io::Error::other)?;
    let socket = UdpSocket::bind(bind)?;
    socket.connect(SocketAddr::new(peer, 9))?;
    Ok(socket.local_addr()?.ip())
}

/// Which interface holds `address` as one of its own addresses, if any.
pub fn owner_of(address: IpAddr, interfaces: &[Interface]) -> Option<&Interface> {
    interfaces
        .iter()
        .find(|i| i.addresses.iter().any(|n| n.addr() == address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, index: u32, nets: &[&str], loopback: bool) -> Interface {
        Interface {
            name: name.into(),
            index,
            mac: (!loopback).then_some([2, 0, 0, 0, 0, index as u8]),
            up: true,
            loopback,
            addresses: nets.iter().map(|n| n.parse().expect("net")).collect(),
        }
    }

    fn node() -> Vec<Interface> {
        vec![
            iface("lo", 1, &["127.0.0.1/8", "192.0.2.77/32"], true),
            iface(
                "eth0",
                2,
                &["192.0.2.1/24", "2001:db8::1/64", "192.0.2.20/32"],
                false,
            ),
            iface("eth1", 3, &["198.51.100.1/24", "192.0.2.129/25"], false),
        ]
    }

    #[test]
    fn automatic_picks_the_longest_subnet_holding_the_address_ignoring_host_routes() {
        let node = node();
        let pick = |a: &str| {
            resolve(&Selector::Automatic, a.parse().expect("ip"), &node).map(|i| i.name.clone())
        };
        assert_eq!(pick("192.0.2.10"), Ok("eth0".into()));
        assert_eq!(pick("192.0.2.200"), Ok("eth1".into()), "/25 beats /24");
        assert_eq!(pick("2001:db8::10"), Ok("eth0".into()));
        assert_eq!(
            pick("203.0.113.5"),
            Err(ResolveError::NoSubnet("203.0.113.5".parse().expect("ip")))
        );
    }

    #[test]
    fn names_must_exist_and_have_a_mac() {
        let node = node();
        let address = "192.0.2.10".parse().expect("ip");
        assert_eq!(
            resolve(&Selector::Name("eth1".into()), address, &node).map(|i| i.index),
            Ok(3)
        );
        assert_eq!(
            resolve(&Selector::Name("eth9".into()), address, &node)
                .expect_err("missing")
                .to_string(),
            "no interface named \"eth9\""
        );
        assert_eq!(
            resolve(&Selector::Name("lo".into()), address, &node).expect_err("no mac"),
            ResolveError::NoMac("lo".into())
        );
    }
}
