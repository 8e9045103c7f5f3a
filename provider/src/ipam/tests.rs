//! Behaviour tests of the allocator: one test per rule of the issue, plus every failure reason.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::pools::{PoolSet, parse_config};

mod lifecycle;
mod order;
mod properties;
mod requests;

pub(super) fn pools(entries: &[(&str, &str)]) -> PoolSet {
    let data: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let parsed = parse_config("kube-system/kubevip", &data);
    assert_eq!(parsed.errors, vec![], "test ConfigMap must be valid");
    parsed.pools
}

pub(super) fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

pub(super) fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|t| ip(t)).collect()
}

pub(super) fn key(namespace: &str, name: &str) -> ServiceKey {
    ServiceKey::new(namespace, name)
}

pub(super) fn req(namespace: &str, name: &str) -> ServiceRequest {
    ServiceRequest::new(key(namespace, name))
}

pub(super) fn dual(
    namespace: &str,
    name: &str,
    policy: FamilyPolicy,
    families: &[IpFamily],
) -> ServiceRequest {
    ServiceRequest {
        family_policy: policy,
        families: families.iter().copied().collect(),
        ..req(namespace, name)
    }
}

pub(super) fn asking(namespace: &str, name: &str, requested: &[&str]) -> ServiceRequest {
    ServiceRequest {
        requested: requested.iter().map(|s| (*s).to_owned()).collect(),
        ..req(namespace, name)
    }
}

pub(super) fn with_ports(namespace: &str, name: &str, ports: &[(Protocol, u16)]) -> ServiceRequest {
    ServiceRequest {
        ports: ports.iter().copied().collect(),
        ..req(namespace, name)
    }
}

pub(super) fn addresses(allocator: &mut Allocator, request: &ServiceRequest) -> Vec<IpAddr> {
    match allocator.allocate(request) {
        Ok(allocation) => allocation.addresses,
        Err(error) => panic!("allocation of {} failed: {error}", request.key),
    }
}

pub(super) fn failure(allocator: &mut Allocator, request: &ServiceRequest) -> AllocationError {
    match allocator.allocate(request) {
        Ok(allocation) => panic!(
            "{} unexpectedly got {:?}",
            request.key, allocation.addresses
        ),
        Err(error) => error,
    }
}
