//! Pools from objects in the index: which pool a Service gets (precedence), disabled and
//! conflicting pools, sharing keys, OpenELB's Eip rules — as watch events in, writes out.

use serde_json::json;

use super::*;
use crate::pools::objects::{ObjectPool, parse};
use crate::service_view::LOADBALANCER_IPS;

fn lbpool(name: &str, created: i64, spec: Value) -> ObjectPool {
    parse::lbpool(&json!({
        "metadata": {"name": name, "generation": 1,
                     "creationTimestamp": Timestamp::from_second(created).expect("time").to_string()},
        "spec": spec,
    }))
}

fn eip(name: &str, created: i64, spec: Value) -> ObjectPool {
    parse::eip(&json!({
        "metadata": {"name": name,
                     "creationTimestamp": Timestamp::from_second(created).expect("time").to_string()},
        "spec": spec,
    }))
}

fn labelled(mut svc: Service, key: &str, value: &str) -> Service {
    svc.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
    svc
}

/// An index watching LoadBalancerPools and Eips, started with `entries` in the ConfigMap and
/// `objects` listed, and no Services yet.
fn with_objects(entries: &[(&str, &str)], objects: Vec<ObjectPool>) -> Index {
    let mut index = index_with(settings());
    index.expect_pool_kinds(&[PoolKind::LoadBalancerPool, PoolKind::Eip]);
    assert!(index.reset_services(&[]).is_empty());
    assert!(index.apply_config(Some(&config(entries))).is_empty());
    assert!(
        !index.is_serving(),
        "waits for every pool kind's first list"
    );
    let (lbpools, eips): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|o| o.kind == PoolKind::LoadBalancerPool);
    index.reset_pool_objects(PoolKind::LoadBalancerPool, lbpools);
    index.reset_pool_objects(PoolKind::Eip, eips);
    assert!(index.is_serving());
    index
}

/// Creates `svc`, feeds the written Service back as the watch would (which must cause no
/// further write) and returns it, with the pool it got.
fn create(index: &mut Index, svc: &Service) -> (Service, Option<String>) {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let written = commit(svc, &only(index.apply_service(svc), &name));
    let again = index.apply_service(&written);
    assert!(again.is_empty(), "settled after one write: {again:?}");
    let pool = index
        .allocation(&ServiceKey::new(
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            name.as_str(),
        ))
        .map(|a| a.pool.to_string());
    (written, pool)
}

use crate::pools::objects::PoolKind;

#[test]
fn precedence_named_pool_then_namespace_key_then_objects_by_priority_then_global() {
    let mut index = with_objects(
        &[
            ("range-global", "192.0.2.200-192.0.2.209"),
            ("range-team", "192.0.2.100-192.0.2.109"),
        ],
        vec![
            lbpool("low", 1, json!({"blocks": [{"cidr": "198.51.100.0/28"}]})),
            lbpool(
                "high",
                2,
                json!({"blocks": [{"cidr": "198.51.100.16/28"}], "priority": 5}),
            ),
            lbpool(
                "web-only",
                3,
                json!({"blocks": [{"cidr": "198.51.100.32/28"}], "priority": 9,
                                         "serviceSelector": {"matchLabels": {"tier": "web"}}}),
            ),
        ],
    );
    let table = [
        (
            service("default", "plain", 1),
            "lbpool/high",
            "198.51.100.16",
        ),
        (
            labelled(service("default", "web", 2), "tier", "web"),
            "lbpool/web-only",
            "198.51.100.32",
        ),
        (service("team", "own-key", 3), "team", "192.0.2.100"),
        (
            annotated(service("team", "named", 4), "ferrolb.io/pool", "low"),
            "lbpool/low",
            "198.51.100.0",
        ),
        (
            annotated(
                service("default", "qualified", 5),
                "ferrolb.io/pool",
                "lbpool/low",
            ),
            "lbpool/low",
            "198.51.100.1",
        ),
    ];
    for (svc, pool, address) in table {
        let (written, got) = create(&mut index, &svc);
        assert_eq!(got.as_deref(), Some(pool), "{:?}", svc.metadata.name);
        assert_eq!(
            annotation(&written, LOADBALANCER_IPS).as_deref(),
            Some(address)
        );
    }
    // The global pool is last: only when no object pool selects the Service.
    let mut index = with_objects(
        &[("range-global", "192.0.2.200-192.0.2.209")],
        vec![lbpool(
            "web-only",
            3,
            json!({"blocks": [{"cidr": "198.51.100.32/28"}],
                     "serviceSelector": {"matchLabels": {"tier": "web"}}}),
        )],
    );
    let (_, got) = create(&mut index, &service("default", "other", 1));
    assert_eq!(got.as_deref(), Some("global"));
}

#[test]
fn each_failure_has_its_own_reason() {
    let mut index = with_objects(
        &[],
        vec![
            lbpool(
                "off",
                1,
                json!({"blocks": [{"cidr": "198.51.100.0/30"}], "disabled": true}),
            ),
            lbpool(
                "web-only",
                2,
                json!({"blocks": [{"cidr": "198.51.100.16/30"}],
                     "serviceSelector": {"matchLabels": {"tier": "web"}}}),
            ),
            lbpool(
                "v4",
                3,
                json!({"blocks": [{"start": "203.0.113.1"}],
                     "serviceSelector": {"matchLabels": {"tier": "single"}}}),
            ),
        ],
    );
    let table = [
        (
            service("default", "a", 1),
            "PoolDisabled",
            "Service default/a: pool `lbpool/off` is disabled: it gives no new addresses",
        ),
        (
            annotated(service("default", "b", 2), "ferrolb.io/pool", "nope"),
            "NoSuchPool",
            "Service default/b: annotation ferrolb.io/pool names pool `nope`, which does not exist",
        ),
        (
            annotated(service("default", "c", 3), "ferrolb.io/pool", "web-only"),
            "PoolDoesNotSelect",
            "Service default/c: pool `lbpool/web-only` does not select this Service (its serviceSelector, mode or OpenELB annotation does not match)",
        ),
        (
            annotated(
                labelled(service("default", "d", 4), "tier", "web"),
                "lbipam.cilium.io/ips",
                "198.51.100.99",
            ),
            "NotInPool",
            "Service default/d: requested address 198.51.100.99 is in none of the pools \
             that may serve this Service (`lbpool/off`, `lbpool/web-only`)",
        ),
        (
            with_spec(
                labelled(service("default", "e", 5), "tier", "single"),
                |s| {
                    s.ip_families = Some(vec!["IPv6".into()]);
                },
            ),
            "FamilyUnavailable",
            "Service default/e: pool `lbpool/v4` has no IPv6 addresses but the Service requires one",
        ),
    ];
    for (svc, reason, message) in table {
        let (written, _) = create(&mut index, &svc);
        let (status, got_reason, got_message) = condition(&written);
        assert_eq!(
            (status.as_str(), got_reason.as_str()),
            ("False", reason),
            "{got_message}"
        );
        assert_eq!(got_message, message);
    }
    let (_, pool) = create(
        &mut index,
        &labelled(service("default", "f", 6), "tier", "single"),
    );
    assert_eq!(pool.as_deref(), Some("lbpool/v4"));
    let (written, _) = create(
        &mut index,
        &labelled(service("default", "g", 7), "tier", "single"),
    );
    assert_eq!(condition(&written).1, "OutOfAddresses");
}

#[test]
fn a_disabled_pool_keeps_what_it_gave_and_gives_nothing_new() {
    let mut index = with_objects(
        &[],
        vec![lbpool(
            "p",
            1,
            json!({"blocks": [{"cidr": "198.51.100.0/30"}]}),
        )],
    );
    let (first, _) = create(&mut index, &service("default", "first", 1));
    let disabled = lbpool(
        "p",
        1,
        json!({"blocks": [{"cidr": "198.51.100.0/30"}], "disabled": true}),
    );
    let writes = index.apply_pool_object(disabled);
    assert!(
        writes.is_empty(),
        "the holder keeps its address: {writes:?}"
    );
    assert_eq!(
        annotation(&first, LOADBALANCER_IPS).as_deref(),
        Some("198.51.100.0")
    );
    let (second, _) = create(&mut index, &service("default", "second", 2));
    assert_eq!(condition(&second).1, "PoolDisabled");
    // Enabling it again serves the waiting Service (it is reconciled, not the holder).
    let writes = index.apply_pool_object(lbpool(
        "p",
        1,
        json!({"blocks": [{"cidr": "198.51.100.0/30"}]}),
    ));
    let write = only(writes, "second");
    assert_eq!(
        annotation(&commit(&second, &write), LOADBALANCER_IPS).as_deref(),
        Some("198.51.100.1")
    );
}

#[test]
fn a_conflicting_pool_gives_nothing_and_never_moves_an_address() {
    let mut index = with_objects(
        &[],
        vec![lbpool(
            "blue",
            1,
            json!({"blocks": [{"cidr": "198.51.100.0/30"}]}),
        )],
    );
    let (held, _) = create(&mut index, &service("default", "held", 1));
    let red = lbpool(
        "red",
        2,
        json!({"blocks": [{"cidr": "198.51.100.0/29"}], "priority": 10}),
    );
    assert!(
        index.apply_pool_object(red).is_empty(),
        "adding a conflicting pool moves nothing"
    );
    let report = index
        .pool_reports()
        .into_iter()
        .find(|r| r.object.meta.name == "red")
        .expect("red's report");
    assert_eq!(
        report.conflict.as_deref(),
        Some(
            "Pool conflicts since CIDR '198.51.100.0/29' overlaps CIDR '198.51.100.0/30' from LoadBalancerPool 'blue'"
        )
    );
    // red has the higher priority but conflicts: the next Service comes from blue.
    let (next, pool) = create(&mut index, &service("default", "next", 2));
    assert_eq!(pool.as_deref(), Some("lbpool/blue"));
    assert_eq!(
        annotation(&next, LOADBALANCER_IPS).as_deref(),
        Some("198.51.100.1")
    );
    // Removing blue clears red's conflict; held keeps its address (which red now holds).
    let writes = index.delete_pool_object(PoolKind::LoadBalancerPool, "blue");
    assert!(
        writes.iter().all(|w| w.main.is_empty()),
        "no address moves: {writes:?}"
    );
    assert!(index.pool_reports().iter().all(|r| r.conflict.is_none()));
    assert_eq!(
        annotation(&held, LOADBALANCER_IPS).as_deref(),
        Some("198.51.100.0")
    );
}

#[test]
fn sharing_keys_share_across_ports_and_namespaces_only_when_both_allow() {
    let mut index = with_objects(
        &[],
        vec![lbpool(
            "p",
            1,
            json!({"blocks": [{"cidr": "198.51.100.0/29"}]}),
        )],
    );
    let keyed = |ns: &str, name: &str, created: i64, port: i32| {
        with_spec(
            annotated(
                service(ns, name, created),
                "lbipam.cilium.io/sharing-key",
                "1234",
            ),
            |s| {
                s.ports = Some(vec![ServicePort {
                    port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]);
            },
        )
    };
    let address =
        |index: &mut Index, svc: Service| annotation(&create(index, &svc).0, LOADBALANCER_IPS);
    assert_eq!(
        address(&mut index, keyed("example", "blue", 1, 1234)).as_deref(),
        Some("198.51.100.0")
    );
    assert_eq!(
        address(&mut index, keyed("example", "red", 2, 2345)).as_deref(),
        Some("198.51.100.0")
    );
    // Same port: another address, added to the key's set.
    assert_eq!(
        address(&mut index, keyed("example", "clash", 3, 1234)).as_deref(),
        Some("198.51.100.1")
    );
    // Another namespace: not without both annotations.
    assert_eq!(
        address(&mut index, keyed("other", "alone", 4, 9999)).as_deref(),
        Some("198.51.100.2")
    );
    let one_side = annotated(
        keyed("third", "one-side", 5, 8888),
        "lbipam.cilium.io/sharing-cross-namespace",
        "example",
    );
    assert_eq!(
        address(&mut index, one_side).as_deref(),
        Some("198.51.100.3")
    );
    // ferrolb.io names work the same; both sides allow.
    let mut index = with_objects(
        &[],
        vec![lbpool(
            "p",
            1,
            json!({"blocks": [{"cidr": "198.51.100.0/29"}]}),
        )],
    );
    let ours = |ns: &str, name: &str, created: i64, port: i32, allow: &str| {
        let svc = with_spec(
            annotated(service(ns, name, created), "ferrolb.io/sharing-key", "k"),
            |s| {
                s.ports = Some(vec![ServicePort {
                    port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]);
            },
        );
        annotated(svc, "ferrolb.io/sharing-cross-namespace", allow)
    };
    assert_eq!(
        address(&mut index, ours("a", "x", 1, 80, "b")).as_deref(),
        Some("198.51.100.0")
    );
    assert_eq!(
        address(&mut index, ours("b", "y", 2, 443, "*")).as_deref(),
        Some("198.51.100.0")
    );
}

#[test]
fn eips_serve_openelb_services_only_and_the_default_eip_first() {
    let mut index = with_objects(
        &[("range-global", "192.0.2.200-192.0.2.209")],
        vec![
            eip(
                "eip-a",
                1,
                json!({"address": "198.51.100.10-198.51.100.19", "protocol": "layer2"}),
            ),
            eip(
                "eip-b",
                2,
                json!({"address": "203.0.113.0/28", "protocol": "layer2"}),
            ),
        ],
    );
    let openelb = |name: &str, created| {
        annotated(
            service("default", name, created),
            "lb.kubesphere.io/v1alpha1",
            "openelb",
        )
    };
    let (_, pool) = create(&mut index, &service("default", "plain", 1));
    assert_eq!(
        pool.as_deref(),
        Some("global"),
        "Eips never serve other Services"
    );
    let (_, pool) = create(&mut index, &openelb("first", 2));
    assert_eq!(
        pool.as_deref(),
        Some("eip/eip-a"),
        "the oldest Eip when none is default"
    );
    let named = annotated(
        service("default", "named", 3),
        "eip.porter.kubesphere.io/v1alpha2",
        "eip-b",
    );
    let (written, pool) = create(&mut index, &named);
    assert_eq!(
        pool.as_deref(),
        Some("eip/eip-b"),
        "naming an Eip implies OpenELB"
    );
    assert_eq!(
        annotation(&written, LOADBALANCER_IPS).as_deref(),
        Some("203.0.113.0")
    );
    let vip = annotated(
        openelb("vip", 4),
        "protocol.openelb.kubesphere.io/v1alpha1",
        "vip",
    );
    let (_, pool) = create(&mut index, &vip);
    assert_eq!(
        pool.as_deref(),
        Some("global"),
        "no Eip of protocol vip; the global pool serves it"
    );
    let asked = annotated(
        openelb("asked", 5),
        "eip.openelb.kubesphere.io/v1alpha1",
        "203.0.113.7",
    );
    let (written, pool) = create(&mut index, &asked);
    assert_eq!(pool.as_deref(), Some("eip/eip-b"));
    assert_eq!(
        annotation(&written, LOADBALANCER_IPS).as_deref(),
        Some("203.0.113.7")
    );
    // The default Eip is tried first.
    let mut default = eip(
        "eip-b",
        2,
        json!({"address": "203.0.113.0/28", "protocol": "layer2"}),
    );
    default.priority = 1;
    index.apply_pool_object(default);
    let (_, pool) = create(&mut index, &openelb("after-default", 6));
    assert_eq!(pool.as_deref(), Some("eip/eip-b"));
}

#[test]
fn an_eip_report_lists_who_uses_each_address() {
    let mut index = with_objects(
        &[],
        vec![eip(
            "porter-layer2-eip",
            1,
            json!({"address": "192.0.2.91-192.0.2.100", "protocol": "layer2"}),
        )],
    );
    let svc = annotated(
        service("default", "test-svc", 1),
        "lb.kubesphere.io/v1alpha1",
        "porter",
    );
    create(&mut index, &svc);
    let report = index.pool_reports().remove(0);
    let status = crate::pools::objects::status::desired(&report, &Value::Null, fixed_clock());
    assert_eq!(
        status,
        json!({"occupied": false, "usage": 1, "poolSize": 10,
               "used": {"192.0.2.91": "default/test-svc"},
               "firstIP": "192.0.2.91", "lastIP": "192.0.2.100", "ready": true, "v4": true})
    );
}

mod properties {
    //! Invariants over random sequences of Service and pool changes, all sources mixed.

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Create a Service in namespace 0/1 with label choice 0..3.
        Create(u8, u8),
        Delete(u8),
        /// Put pool (0..4) with block (0..6), disabled, priority, selector on label (None = all).
        Pool(u8, u8, bool, i8, Option<u8>),
        Unpool(u8),
    }

    /// Small overlapping blocks, so conflicts are common.
    const BLOCKS: [&str; 6] = [
        "198.51.100.0/30",
        "198.51.100.0/29",
        "198.51.100.4/30",
        "198.51.100.8/30",
        "2001:db8::/126",
        "198.51.100.2/31",
    ];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..2, 0u8..3).prop_map(|(ns, label)| Op::Create(ns, label)),
            1 => (0u8..12).prop_map(Op::Delete),
            3 => (0u8..4, 0u8..6, any::<bool>(), -1i8..2, proptest::option::of(0u8..3))
                .prop_map(|(p, b, d, pr, sel)| Op::Pool(p, b, d, pr, sel)),
            1 => (0u8..4).prop_map(Op::Unpool),
        ]
    }

    fn pool_object(
        p: u8,
        block: u8,
        disabled: bool,
        priority: i8,
        label: Option<u8>,
    ) -> ObjectPool {
        let mut spec = json!({"blocks": [{"cidr": BLOCKS[usize::from(block)]}],
                              "disabled": disabled, "priority": priority});
        if let Some(label) = label {
            spec["serviceSelector"] = json!({"matchLabels": {"color": format!("c{label}")}});
        }
        // Pool p is always created at time p: a re-put keeps its age, as an edit does.
        lbpool(&format!("p{p}"), i64::from(p), spec)
    }

    fn held(
        index: &Index,
        keys: &BTreeSet<ServiceKey>,
    ) -> BTreeMap<ServiceKey, Vec<std::net::IpAddr>> {
        keys.iter()
            .filter_map(|k| {
                index
                    .allocation(k)
                    .map(|a| (k.clone(), a.addresses.clone()))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn no_address_twice_disabled_gives_nothing_and_pool_changes_move_nothing(
            ops in proptest::collection::vec(op(), 1..40)
        ) {
            let mut index = with_objects(&[], vec![]);
            let mut keys = BTreeSet::new();
            let mut next = 0i64;
            for op in ops {
                let before = held(&index, &keys);
                let is_pool_op = matches!(op, Op::Pool(..) | Op::Unpool(_));
                match op {
                    Op::Create(ns, label) => {
                        next += 1;
                        let svc = labelled(
                            service(&format!("ns{ns}"), &format!("s{next}"), 100 + next),
                            "color",
                            &format!("c{label}"),
                        );
                        keys.insert(ServiceKey::new(format!("ns{ns}"), format!("s{next}")));
                        index.apply_service(&svc);
                    }
                    Op::Delete(i) => {
                        if let Some(key) = keys.iter().nth(usize::from(i)).cloned() {
                            keys.remove(&key);
                            index.delete_service(&key.namespace, &key.name);
                        }
                    }
                    Op::Pool(p, b, d, pr, sel) => {
                        index.apply_pool_object(pool_object(p, b, d, pr, sel));
                    }
                    Op::Unpool(p) => {
                        index.delete_pool_object(PoolKind::LoadBalancerPool, &format!("p{p}"));
                    }
                }
                let after = held(&index, &keys);
                // No address is held twice (nothing here shares).
                let mut seen = BTreeSet::new();
                for address in after.values().flatten() {
                    prop_assert!(seen.insert(*address), "{address} held twice: {after:?}");
                }
                for (key, addresses) in &after {
                    if before.get(key) == Some(addresses) {
                        continue;
                    }
                    // A pool change never moves or takes an address someone held.
                    if let Some(old) = before.get(key) {
                        prop_assert!(!is_pool_op, "{key} moved from {old:?} to {addresses:?}");
                    }
                    // Every new address comes from an open pool.
                    let pool = index.allocation(key).map(|a| a.pool.clone()).unwrap_or_default();
                    let pool = index.allocator.pools().pool(&pool);
                    prop_assert!(pool.is_some_and(|p| p.closed().is_none()), "{key} got {addresses:?} from a closed pool");
                }
            }
        }
    }
}
