//! Address families and the family policy of a Service.
//!
//! A Service's `ipFamilyPolicy` and `ipFamilies` decide which families get an address and in
//! which order they are written (primary first). [`family_order`] turns them, together with the
//! families a pool actually has, into the list of slots the allocator fills.

use std::fmt;
use std::net::IpAddr;

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// The family of `address`.
    pub fn of(address: &IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The other family.
    pub fn other(self) -> Self {
        match self {
            IpFamily::V4 => IpFamily::V6,
            IpFamily::V6 => IpFamily::V4,
        }
    }

    /// The longest prefix length of this family (32 or 128).
    pub fn max_prefix_len(self) -> u8 {
        match self {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The spelling Kubernetes uses in `spec.ipFamilies`.
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// `spec.ipFamilyPolicy` of a Service. An unset policy is `SingleStack`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FamilyPolicy {
    /// One address, of `ipFamilies[0]` (IPv4 if unset and the pool has IPv4).
    #[default]
    SingleStack,
    /// One address of each family the pool has, primary first; at least one must succeed.
    PreferDualStack,
    /// One address of each family; both or nothing.
    RequireDualStack,
}

/// The families to fill, in output order, for `policy` and `families` (`spec.ipFamilies`).
///
/// `pool_has` tells whether the pool holds any address of a family. For SingleStack without
/// `ipFamilies` this picks IPv4 when the pool has it, else IPv6 (as kube-vip-cloud-provider
/// does). For the dual-stack policies it returns both families, primary first; the caller
/// decides what a missing family means for the policy.
pub(crate) fn family_order(
    policy: FamilyPolicy,
    families: &[IpFamily],
    pool_has: impl Fn(IpFamily) -> bool,
) -> Vec<IpFamily> {
    let primary = families
        .first()
        .copied()
        .unwrap_or(if pool_has(IpFamily::V4) {
            IpFamily::V4
        } else {
            IpFamily::V6
        });
    match policy {
        FamilyPolicy::SingleStack => vec![primary],
        FamilyPolicy::PreferDualStack | FamilyPolicy::RequireDualStack => {
            vec![primary, primary.other()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stack_without_families_prefers_ipv4_when_the_pool_has_it() {
        assert_eq!(
            family_order(FamilyPolicy::SingleStack, &[], |_| true),
            vec![IpFamily::V4]
        );
        assert_eq!(
            family_order(FamilyPolicy::SingleStack, &[], |f| f == IpFamily::V6),
            vec![IpFamily::V6]
        );
    }

    #[test]
    fn dual_stack_order_follows_ip_families() {
        assert_eq!(
            family_order(
                FamilyPolicy::PreferDualStack,
                &[IpFamily::V6, IpFamily::V4],
                |_| true
            ),
            vec![IpFamily::V6, IpFamily::V4]
        );
        assert_eq!(
            family_order(FamilyPolicy::RequireDualStack, &[IpFamily::V4], |_| true),
            vec![IpFamily::V4, IpFamily::V6]
        );
    }
}
