//! Safety rules: which addresses this node may announce at all.
//!
//! An announcer that answers for an address someone else uses breaks the network (kube-vip
//! #836, #1016: nodes announcing other nodes' IPs). So an announcement is refused when the
//! address belongs to an interface of this node, lies in `--deny-prefixes`, or lies outside
//! `--allow-prefixes` when that list is given.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::interfaces::Interface;

/// The configured prefix lists.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub deny: Vec<IpNet>,
    pub allow: Vec<IpNet>,
}

/// Why an address may not be announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{address} is an address of this node (interface {interface})")]
    OwnAddress { address: IpAddr, interface: String },
    #[error("{address} lies in --deny-prefixes entry {prefix}")]
    Denied { address: IpAddr, prefix: IpNet },
    #[error("{address} lies outside --allow-prefixes ({allowed})")]
    NotAllowed { address: IpAddr, allowed: String },
}

impl Policy {
    /// Checks the prefix lists only (static configuration).
    pub fn check_prefixes(&self, address: IpAddr) -> Result<(), Refusal> {
        if let Some(prefix) = self.deny.iter().find(|p| p.contains(&address)) {
            return Err(Refusal::Denied {
                address,
                prefix: *prefix,
            });
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.contains(&address)) {
            let allowed = self
                .allow
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Refusal::NotAllowed { address, allowed });
        }
        Ok(())
    }

    /// Checks the prefix lists and that no interface holds `address`, except as a VIP this
    /// announcer put there itself (`is_ours`).
    pub fn check(
        &self,
        address: IpAddr,
        interfaces: &[Interface],
        is_ours: impl Fn(IpAddr) -> bool,
    ) -> Result<(), Refusal> {
        self.check_prefixes(address)?;
        if is_ours(address) {
            return Ok(());
        }
        if let Some(owner) = crate::interfaces::owner_of(address, interfaces) {
            return Err(Refusal::OwnAddress {
                address,
                interface: owner.name.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Vec<Interface> {
        vec![Interface {
            name: "eth0".into(),
            index: 2,
            mac: Some([2, 0, 0, 0, 0, 1]),
            up: true,
            loopback: false,
            addresses: vec![
                "192.0.2.1/24".parse().expect("net"),
                "2001:db8::1/64".parse().expect("net"),
            ],
        }]
    }

    #[test]
    fn node_addresses_are_refused_unless_they_are_our_own_vips() {
        let policy = Policy::default();
        let own = "192.0.2.1".parse().expect("ip");
        assert_eq!(
            policy
                .check(own, &node(), |_| false)
                .expect_err("refused")
                .to_string(),
            "192.0.2.1 is an address of this node (interface eth0)"
        );
        assert!(
            policy.check(own, &node(), |a| a == own).is_ok(),
            "a VIP we added is ours to keep"
        );
        assert!(
            policy
                .check("192.0.2.10".parse().expect("ip"), &node(), |_| false)
                .is_ok()
        );
    }

    #[test]
    fn deny_wins_and_allow_limits() {
        let policy = Policy {
            deny: vec!["192.0.2.128/25".parse().expect("net")],
            allow: vec![
                "192.0.2.0/24".parse().expect("net"),
                "2001:db8:1::/48".parse().expect("net"),
            ],
        };
        assert_eq!(
            policy
                .check_prefixes("192.0.2.200".parse().expect("ip"))
                .expect_err("denied")
                .to_string(),
            "192.0.2.200 lies in --deny-prefixes entry 192.0.2.128/25"
        );
        assert_eq!(
            policy
                .check_prefixes("198.51.100.1".parse().expect("ip"))
                .expect_err("not allowed")
                .to_string(),
            "198.51.100.1 lies outside --allow-prefixes (192.0.2.0/24, 2001:db8:1::/48)"
        );
        assert!(
            policy
                .check_prefixes("192.0.2.10".parse().expect("ip"))
                .is_ok()
        );
        assert!(
            policy
                .check_prefixes("2001:db8:1::10".parse().expect("ip"))
                .is_ok()
        );
    }
}
