//! Property tests: random pools and random allocate/release sequences.

use std::net::IpAddr;

use proptest::prelude::*;

use super::super::*;
use super::{ip, pools};
use crate::ipam::sharing::ports_overlap;

/// A random namespace pool near an IPv4 /24 boundary (so `.255`/`.0` avoidance is exercised),
/// optionally with IPv6, with random settings.
#[derive(Clone, Debug)]
struct PoolSpec {
    v4_start: u8,
    v4_len: u8,
    v6_len: Option<u8>,
    allow_share: bool,
    descending: bool,
    avoid_buggy: bool,
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (
        0u8..20,
        0u8..12,
        proptest::option::of(0u8..6),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(v4_start, v4_len, v6_len, allow_share, descending, avoid_buggy)| PoolSpec {
                v4_start,
                v4_len,
                v6_len,
                allow_share,
                descending,
                avoid_buggy,
            },
        )
}

/// 192.0.2.245 + offset, crossing into 192.0.3.x.
fn v4(offset: u8) -> IpAddr {
    let n = u32::from(std::net::Ipv4Addr::new(192, 0, 2, 245)) + u32::from(offset);
    IpAddr::V4(n.into())
}

fn v6(offset: u8) -> IpAddr {
    ip(&format!("2001:db8::{:x}", 0x10 + u32::from(offset)))
}

const NAMESPACES: [&str; 2] = ["a", "b"];

fn build_pools(specs: &[PoolSpec]) -> crate::pools::PoolSet {
    let mut data: Vec<(String, String)> = Vec::new();
    for (spec, ns) in specs.iter().zip(NAMESPACES) {
        let mut ranges = format!("{}-{}", v4(spec.v4_start), v4(spec.v4_start + spec.v4_len));
        if let Some(len) = spec.v6_len {
            ranges.push_str(&format!(",{}-{}", v6(0), v6(len)));
        }
        data.push((format!("range-{ns}"), ranges));
        data.push((format!("allow-share-{ns}"), spec.allow_share.to_string()));
        data.push((
            format!("search-order-{ns}"),
            if spec.descending { "desc" } else { "asc" }.into(),
        ));
        data.push((
            format!("avoid-buggy-ips-{ns}"),
            spec.avoid_buggy.to_string(),
        ));
    }
    let entries: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pools(&entries)
}

#[derive(Clone, Debug)]
enum Op {
    Allocate(ServiceRequest),
    Release(ServiceKey),
}

const PORTS: [(Protocol, u16); 4] = [
    (Protocol::Tcp, 53),
    (Protocol::Udp, 53),
    (Protocol::Tcp, 80),
    (Protocol::Sctp, 80),
];

fn request() -> impl Strategy<Value = ServiceRequest> {
    (
        0usize..2,
        0u8..6,
        0u8..3,
        0u8..5,
        proptest::collection::vec(0usize..4, 0..3),
        proptest::option::of(0u8..24),
    )
        .prop_map(|(ns, name, policy, families, ports, requested)| {
            let families = match families {
                0 => vec![],
                1 => vec![IpFamily::V4],
                2 => vec![IpFamily::V6],
                3 => vec![IpFamily::V4, IpFamily::V6],
                _ => vec![IpFamily::V6, IpFamily::V4],
            };
            let mut ports: Vec<(Protocol, u16)> = ports.into_iter().map(|i| PORTS[i]).collect();
            ports.dedup();
            ServiceRequest {
                key: ServiceKey::new(NAMESPACES[ns], format!("s{name}")),
                family_policy: [
                    FamilyPolicy::SingleStack,
                    FamilyPolicy::PreferDualStack,
                    FamilyPolicy::RequireDualStack,
                ][usize::from(policy)],
                families: families.into(),
                requested: requested.map(|o| v4(o).to_string()).into_iter().collect(),
                ports: ports.into(),
                ..ServiceRequest::new(ServiceKey::new(NAMESPACES[ns], format!("s{name}")))
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => request().prop_map(Op::Allocate),
        1 => (0usize..2, 0u8..6).prop_map(|(ns, n)| Op::Release(ServiceKey::new(NAMESPACES[ns], format!("s{n}")))),
    ]
}

fn apply(allocator: &mut Allocator, op: &Op) {
    match op {
        // Failures are fine here; the invariants must hold either way.
        Op::Allocate(request) => drop(allocator.allocate(request)),
        Op::Release(key) => drop(allocator.release(key)),
    }
}

/// No address held twice (unless all holders may share it and their ports are disjoint);
/// every address in its Service's pool; the in-use set and the allocations agree.
fn check_invariants(allocator: &Allocator) -> Result<(), TestCaseError> {
    check_no_double_hold(allocator)?;
    check_in_pool(allocator)
}

/// No address held twice unless all holders may share it and their ports are disjoint; every
/// holder's allocation lists the address.
fn check_no_double_hold(allocator: &Allocator) -> Result<(), TestCaseError> {
    for (address, holders) in allocator.space.iter() {
        prop_assert!(!holders.is_empty());
        for (i, a) in holders.iter().enumerate() {
            let held_a = allocator
                .held
                .get(a)
                .ok_or_else(|| TestCaseError::fail("holder without allocation"))?;
            prop_assert!(held_a.allocation.addresses.contains(address));
            for b in &holders[i + 1..] {
                let held_b = allocator
                    .held
                    .get(b)
                    .ok_or_else(|| TestCaseError::fail("holder without allocation"))?;
                prop_assert!(
                    held_a.shareable && held_b.shareable,
                    "{address} held twice without sharing"
                );
                prop_assert_eq!(&held_a.allocation.pool, &held_b.allocation.pool);
                prop_assert!(!ports_overlap(&held_a.request.ports, &held_b.request.ports));
            }
        }
    }
    Ok(())
}

/// Every allocated address lies in its Service's pool and is in the in-use set.
fn check_in_pool(allocator: &Allocator) -> Result<(), TestCaseError> {
    for (key, held) in &allocator.held {
        let pool = allocator
            .pools
            .pool_for_namespace(&key.namespace)
            .ok_or_else(|| TestCaseError::fail("no pool"))?;
        prop_assert!(!held.allocation.addresses.is_empty());
        for &address in &held.allocation.addresses {
            prop_assert!(
                pool.contains(address),
                "{address} of {key} outside pool {}",
                pool.name
            );
            prop_assert!(allocator.space.holders(address).contains(key));
        }
        if let [first, second] = held.allocation.addresses.as_slice() {
            prop_assert_ne!(IpFamily::of(first), IpFamily::of(second));
        }
        prop_assert!(held.allocation.addresses.len() <= 2);
    }
    Ok(())
}

type Snapshot = (
    Vec<Allocation>,
    Vec<PoolStats>,
    Vec<(IpAddr, Vec<ServiceKey>)>,
);

fn snapshot(allocator: &Allocator) -> Snapshot {
    (
        allocator.allocations().cloned().collect(),
        allocator.pool_stats(),
        allocator
            .space
            .iter()
            .map(|(a, h)| (*a, h.to_vec()))
            .collect(),
    )
}

fn adoption() -> impl Strategy<Value = Adoption> {
    (request(), proptest::collection::vec(0u8..30, 1..3), 0i64..4).prop_map(
        |(request, offsets, created)| {
            let addresses: Vec<IpAddr> = offsets.into_iter().map(v4).collect();
            let order = (created, request.key.name.to_string());
            Adoption {
                request,
                addresses,
                order,
                as_requested: false,
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_address_is_held_twice_and_every_address_lies_in_its_pool(
        specs in proptest::collection::vec(pool_spec(), 2),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut allocator = Allocator::new(build_pools(&specs));
        for op in &ops {
            apply(&mut allocator, op);
            check_invariants(&allocator)?;
        }
    }

    #[test]
    fn release_after_allocate_restores_the_state_and_allocating_again_gives_the_same(
        specs in proptest::collection::vec(pool_spec(), 2),
        ops in proptest::collection::vec(op(), 0..40),
        probe in request(),
    ) {
        let mut allocator = Allocator::new(build_pools(&specs));
        for op in &ops {
            apply(&mut allocator, op);
        }
        let probe = ServiceRequest { key: ServiceKey::new(probe.key.namespace.clone(), "probe"), ..probe };
        let before = snapshot(&allocator);
        let first = allocator.allocate(&probe);
        check_invariants(&allocator)?;
        allocator.release(&probe.key);
        prop_assert_eq!(snapshot(&allocator), before);
        prop_assert_eq!(allocator.allocate(&probe), first);
    }

    #[test]
    fn descending_order_mirrors_ascending_order(
        ranges in proptest::collection::vec((0u8..40, 0u8..10), 1..4),
        avoid_buggy in any::<bool>(),
    ) {
        let list: Vec<String> = ranges.iter().map(|&(s, l)| format!("{}-{}", v4(s), v4(s + l))).collect();
        let list = list.join(",");
        let avoid = avoid_buggy.to_string();
        let exhaust = |order: &str| {
            let mut allocator = Allocator::new(pools(&[
                ("range-a", list.as_str()),
                ("search-order", order),
                ("avoid-buggy-ips", avoid.as_str()),
            ]));
            let size = allocator.pools().pool("a").map(|p| p.size(IpFamily::V4)).unwrap_or(0);
            let mut got = Vec::new();
            while let Ok(allocation) = allocator.allocate(&ServiceRequest::new(ServiceKey::new("a", got.len().to_string()))) {
                got.extend(allocation.addresses);
            }
            (got, size)
        };
        let (ascending, size) = exhaust("asc");
        let (mut descending, _) = exhaust("desc");
        prop_assert_eq!(ascending.len() as u128, size);
        prop_assert!(ascending.windows(2).all(|w| w[0] < w[1]));
        descending.reverse();
        prop_assert_eq!(descending, ascending);
    }

    #[test]
    fn adoption_never_doubles_an_address_and_the_older_service_keeps_it(
        specs in proptest::collection::vec(pool_spec(), 2),
        adoptions in proptest::collection::vec(adoption(), 1..12),
    ) {
        let mut allocator = Allocator::new(build_pools(&specs));
        // The last adoption of a Service is the one that counts.
        let mut latest: std::collections::BTreeMap<ServiceKey, Adoption> = Default::default();
        for a in &adoptions {
            latest.insert(a.request.key.clone(), a.clone());
        }
        let conflicts = allocator.adopt(latest.values().cloned().collect());
        check_no_double_hold(&allocator)?;
        for conflict in &conflicts {
            let loser = &latest[&conflict.key];
            let winner = &latest[&conflict.held_by];
            prop_assert!(
                (&winner.order, &winner.request.key) < (&loser.order, &loser.request.key),
                "{} lost {} to younger {}", conflict.key, conflict.address, conflict.held_by
            );
            prop_assert!(allocator.space.holders(conflict.address).contains(&conflict.held_by));
        }
        // Every adopted address is either kept by its Service or reported.
        for (key, adoption) in &latest {
            for address in &adoption.addresses {
                let kept = allocator.allocation(key).is_some_and(|a| a.addresses.contains(address));
                let lost = conflicts.iter().any(|c| &c.key == key && c.address == *address);
                prop_assert!(kept != lost, "{key} {address}: kept={kept} lost={lost}");
            }
        }
        // New allocations after adoption keep the invariants too.
        for probe in ["p0", "p1", "p2"] {
            let _ = allocator.allocate(&ServiceRequest::new(ServiceKey::new("a", probe)));
            check_no_double_hold(&allocator)?;
        }
    }
}
