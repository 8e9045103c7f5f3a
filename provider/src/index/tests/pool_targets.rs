//! Cluster mode: the announce target of a Service carries its pool's `nodeSelector` and BGP
//! attributes, and follows an edit of the pool.

use serde_json::json;

use super::*;
use crate::{
    announce::model::BgpAttributes,
    pools::objects::{ObjectPool, PoolKind, parse},
};

fn lbpool(name: &str, spec: Value) -> ObjectPool {
    parse::lbpool(&json!({
        "metadata": {"name": name, "generation": 1,
                     "creationTimestamp": Timestamp::from_second(1).expect("time").to_string()},
        "spec": spec,
    }))
}

fn cluster_index(pools: Vec<ObjectPool>) -> Index {
    let mut index = index_with(IndexSettings {
        cluster_default_mode: Some(Mode::Layer2),
        ..settings()
    });
    index.expect_pool_kinds(&[PoolKind::LoadBalancerPool]);
    assert!(index.reset_services(&[]).is_empty());
    assert!(index.apply_config(Some(&config(&[]))).is_empty());
    index.reset_pool_objects(PoolKind::LoadBalancerPool, pools);
    assert!(index.is_serving());
    index
}

fn target_of(index: &mut Index, name: &str) -> Target {
    let key = ServiceKey::new("default", name);
    index
        .take_targets()
        .into_iter()
        .rev()
        .find(|(k, _)| *k == key)
        .and_then(|(_, t)| t)
        .expect("a target for the Service")
}

#[test]
fn the_target_carries_the_pools_node_selector_and_bgp_attributes_and_follows_edits() {
    let spec = json!({
        "blocks": [{"cidr": "203.0.113.0/28"}], "mode": "bgp",
        "nodeSelector": {"matchLabels": {"rack": "r1"},
                         "matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]},
        "bgp": {"communities": ["65000:100"], "largeCommunities": ["65000:1:2"],
                "localPreference": 200},
    });
    let mut index = cluster_index(vec![lbpool("rack-1", spec)]);
    let svc = service("default", "web", 10);
    commit(&svc, &only(index.apply_service(&svc), "web"));
    let target = target_of(&mut index, "web");
    assert_eq!(target.mode, Ok(Mode::Bgp));
    let nodes = target.nodes.expect("the pool's nodeSelector");
    assert_eq!(&*nodes.pool, "lbpool/rack-1");
    assert_eq!(nodes.describe(), "rack=r1,!gpu");
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(nodes.selects(&labels(&[("rack", "r1")])));
    assert!(!nodes.selects(&labels(&[("rack", "r2")])));
    assert!(!nodes.selects(&labels(&[("rack", "r1"), ("gpu", "yes")])));
    assert_eq!(
        target.bgp.as_deref(),
        Some(&BgpAttributes {
            communities: vec!["65000:100".into()],
            large_communities: vec!["65000:1:2".into()],
            local_pref: Some(200),
        })
    );

    // Editing the pool (selector dropped, other attributes) re-targets its Services.
    index.apply_pool_object(lbpool(
        "rack-1",
        json!({"blocks": [{"cidr": "203.0.113.0/28"}], "mode": "bgp",
               "bgp": {"communities": ["65000:200"]}}),
    ));
    let target = target_of(&mut index, "web");
    assert_eq!(target.nodes, None);
    let bgp = target.bgp.expect("the pool's BGP attributes");
    assert_eq!(bgp.communities, ["65000:200"]);
    assert_eq!(bgp.local_pref, None);
}

#[test]
fn a_configmap_pool_has_no_node_selector_or_bgp_attributes() {
    let mut index = index_with(IndexSettings {
        cluster_default_mode: Some(Mode::Bgp),
        ..settings()
    });
    assert!(index.reset_services(&[]).is_empty());
    assert!(
        index
            .apply_config(Some(&config(&[("range-global", "192.0.2.10-192.0.2.19")])))
            .is_empty()
    );
    let svc = service("default", "web", 10);
    commit(&svc, &only(index.apply_service(&svc), "web"));
    let target = target_of(&mut index, "web");
    assert_eq!(target.nodes, None);
    assert_eq!(target.bgp, None);
}
