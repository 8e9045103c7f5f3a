//! What a Service asks for and what it gets, and the validation of requested addresses.
//!
//! Requested addresses come raw from `spec.loadBalancerIP` and the `kube-vip.io/loadbalancerIPs`
//! annotation. kube-vip-cloud-provider accepts anything there; we check that each one parses,
//! lies in the namespace's pool, and fits the Service's family policy, and say why not —
//! unless the allocator is told to take them unchecked, as KVCP does. `0.0.0.0` (kube-vip's
//! DHCP) needs no pool.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::errors::AllocationError;
use super::family::{FamilyPolicy, IpFamily, family_order};
use super::sharing::{Protocol, SharingKey};
use crate::pools::{Pool, PoolQuery};

/// A Service's identity.
///
/// The index, the allocator and the writer each keep the key of every Service, several times
/// over; shared strings make those copies cost a pointer instead of two allocations each.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// metadata.namespace
    pub namespace: Arc<str>,
    /// metadata.name
    pub name: Arc<str>,
}

impl ServiceKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A list of nearly always one element, kept inline (the holders of an address, a Service's
/// ingress entries and finalizers): the provider keeps such lists per Service and per
/// address, and a heap list of one costs a 32- to 64-byte allocation of its own.
pub type OneOrMore<T> = smallvec::SmallVec<[T; 1]>;

/// spec.ipFamilies in order (at most two, kept inline: the allocator keeps a request per
/// Service).
pub type Families = smallvec::SmallVec<[IpFamily; 2]>;

/// (protocol, port) of every spec.ports entry (up to four inline, for the same reason).
pub type Ports = smallvec::SmallVec<[(Protocol, u16); 4]>;

/// What a Service asks for (built by the controller from the Service object).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest {
    /// The Service.
    pub key: ServiceKey,
    /// spec.ipFamilyPolicy; None in the Service = SingleStack.
    pub family_policy: FamilyPolicy,
    /// spec.ipFamilies in order; may be empty.
    pub families: Families,
    /// Raw requested addresses from spec.loadBalancerIP and the comma list in the
    /// `kube-vip.io/loadbalancerIPs` annotation, unparsed (the allocator validates them).
    pub requested: Vec<String>,
    /// (protocol, port) of every spec.ports entry.
    pub ports: Ports,
    /// What pool selection needs: labels, a named pool, OpenELB, the stated mode.
    pub query: Arc<PoolQuery>,
    /// The sharing key (`ferrolb.io/sharing-key`, `lbipam.cilium.io/sharing-key`). Boxed:
    /// rare.
    pub sharing: Option<Box<SharingKey>>,
    /// The request came from `ferrolb.io/ips` / `lbipam.cilium.io/ips`, which may name
    /// several addresses of one family (Cilium's semantics).
    pub several_per_family: bool,
}

impl ServiceRequest {
    /// A SingleStack request with no requested address and no ports.
    pub fn new(key: ServiceKey) -> Self {
        ServiceRequest {
            key,
            family_policy: FamilyPolicy::SingleStack,
            families: Families::new(),
            requested: Vec::new(),
            ports: Ports::new(),
            query: Arc::default(),
            sharing: None,
            several_per_family: false,
        }
    }
}

/// The addresses a Service holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The Service.
    pub key: ServiceKey,
    /// In ipFamilies order, primary first.
    pub addresses: Vec<IpAddr>,
    /// Pool name; empty when an adopted Service's namespace has no pool. Shared by every
    /// allocation from the pool (see `Allocator::pool_name`).
    pub pool: Arc<str>,
    /// At least one address is shared with another Service.
    pub shared: bool,
}

/// The requested addresses of `req` as written (parsed, duplicates collapsed), without any
/// check against a pool. Empty when nothing is requested.
pub(crate) fn parse_requested(
    req: &ServiceRequest,
    pool: &str,
) -> Result<Vec<IpAddr>, AllocationError> {
    let invalid = |problem: String| AllocationError::InvalidRequest {
        service: req.key.clone(),
        pool: pool.to_owned(),
        requested: req.requested.join(","),
        problem,
    };
    // `spec.loadBalancerIP` usually repeats the annotation's first address, so duplicates
    // collapse; a wholly empty field means "nothing requested".
    let mut addresses: Vec<IpAddr> = Vec::new();
    for raw in req.requested.iter().filter(|raw| !raw.trim().is_empty()) {
        for (index, item) in raw.split(',').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                return Err(invalid(format!("item {} of `{raw}` is empty", index + 1)));
            }
            let address: IpAddr = item
                .parse()
                .map_err(|_| invalid(format!("`{item}` is not an IP address")))?;
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    Ok(addresses)
}

/// The requested addresses of `req`, validated against `pool` and ordered by family policy.
/// Empty when nothing is requested. `0.0.0.0` (a DHCP request) needs no pool.
pub(crate) fn requested_addresses(
    req: &ServiceRequest,
    pool: &Pool,
) -> Result<Vec<IpAddr>, AllocationError> {
    let invalid = |problem: String| AllocationError::InvalidRequest {
        service: req.key.clone(),
        pool: pool.name.clone(),
        requested: req.requested.join(","),
        problem,
    };
    let mut addresses = parse_requested(req, &pool.name)?;
    if addresses.is_empty() {
        return Ok(addresses);
    }
    let mut seen = BTreeSet::new();
    for address in &addresses {
        let family = IpFamily::of(address);
        if !seen.insert(family) && !req.several_per_family {
            return Err(invalid(format!("more than one {family} address requested")));
        }
    }
    let wanted = family_order(req.family_policy, &req.families, |f| seen.contains(&f));
    match req.family_policy {
        FamilyPolicy::SingleStack if seen.len() > 1 && req.several_per_family => {
            return Err(invalid(
                "a SingleStack Service takes addresses of one family".to_owned(),
            ));
        }
        FamilyPolicy::SingleStack if addresses.len() > 1 && !req.several_per_family => {
            return Err(invalid(
                "a SingleStack Service takes one address".to_owned(),
            ));
        }
        FamilyPolicy::RequireDualStack if seen.len() < 2 => {
            return Err(invalid(
                "a RequireDualStack Service needs one IPv4 and one IPv6 address".to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(address) = addresses
        .iter()
        .find(|a| !wanted.contains(&IpFamily::of(a)))
    {
        return Err(invalid(format!(
            "{address} is {} but the Service asks for {} only",
            IpFamily::of(address),
            wanted[0]
        )));
    }
    if let Some(&address) = addresses
        .iter()
        .find(|&&a| !a.is_unspecified() && !pool.contains(a))
    {
        return Err(AllocationError::NotInPool {
            service: req.key.clone(),
            pool: pool.name.clone(),
            address,
        });
    }
    addresses.sort_by_key(|a| wanted.iter().position(|&f| f == IpFamily::of(a)));
    Ok(addresses)
}
