//! The planner with pools' `nodeSelector`s and BGP attributes: only selected nodes announce,
//! a selector that selects nobody says so, label changes move addresses, and the BGP
//! attributes reach the Sync.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use super::{
    model::{BgpAttributes, NodeSelection},
    *,
};
use crate::{ipam::ServiceKey, pools::objects::selector::Selector};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

fn rack(i: usize) -> &'static str {
    if i <= 2 { "r1" } else { "r2" }
}

fn node(rack: &str) -> NodeInfo {
    NodeInfo {
        ready: true,
        labels: Arc::new([("rack".to_string(), rack.to_string())].into()),
        ..Default::default()
    }
}

/// node-1, node-2 in rack r1; node-3, node-4 in rack r2; all ready with ready announcers.
fn racks() -> Planner {
    let mut planner = Planner::new(3);
    planner.set_failover(true);
    planner.reset_nodes(
        (1..=4)
            .map(|i| (NodeName::from(format!("node-{i}")), node(rack(i))))
            .collect(),
    );
    planner.set_announcers(
        (1..=4)
            .map(|i| {
                (
                    NodeName::from(format!("node-{i}")),
                    AnnouncerEndpoint {
                        address: ip(&format!("192.0.2.{i}")),
                        port: 9720,
                        ready: true,
                    },
                )
            })
            .collect(),
    );
    planner
}

fn selecting(rack: &str) -> NodeSelection {
    NodeSelection {
        pool: "lbpool/rack".into(),
        selector: Arc::new(Selector {
            labels: [("rack".to_string(), rack.to_string())].into(),
            requirements: Vec::new(),
        }),
    }
}

fn target(address: &str, mode: Mode, nodes: Option<NodeSelection>) -> Target {
    Target {
        addresses: vec![ip(address)],
        mode: Ok(mode),
        interface: InterfaceChoice::Automatic,
        local_traffic: false,
        age: (1, "uid-1".into()),
        nodes,
        bgp: None,
    }
}

fn holders(planner: &Planner, address: &str) -> Vec<String> {
    (1..=4)
        .map(|i| format!("node-{i}"))
        .filter(|n| planner.set_of(n).iter().any(|a| a.address == ip(address)))
        .collect()
}

#[test]
fn bgp_is_advertised_only_by_the_nodes_the_pool_selects() {
    let mut planner = racks();
    planner.set_target(
        &key("web"),
        Some(target("203.0.113.1", Mode::Bgp, Some(selecting("r2")))),
    );
    planner.set_target(&key("all"), Some(target("203.0.113.2", Mode::Bgp, None)));
    planner.flush();
    assert_eq!(holders(&planner, "203.0.113.1"), ["node-3", "node-4"]);
    assert_eq!(
        holders(&planner, "203.0.113.2"),
        ["node-1", "node-2", "node-3", "node-4"]
    );
}

#[test]
fn layer2_candidates_come_only_from_selected_nodes() {
    let mut planner = racks();
    for i in 0..20 {
        let address = format!("192.0.2.{}", 100 + i);
        planner.set_target(
            &key(&format!("svc-{i}")),
            Some(target(&address, Mode::Layer2, Some(selecting("r1")))),
        );
    }
    planner.flush();
    for i in 0..20 {
        let address = format!("192.0.2.{}", 100 + i);
        let sent = holders(&planner, &address);
        assert!(!sent.is_empty(), "{address} is sent somewhere");
        assert!(
            sent.iter().all(|n| n == "node-1" || n == "node-2"),
            "{address} sent to {sent:?}, outside rack r1"
        );
        let entry = planner
            .set_of(&sent[0])
            .iter()
            .find(|a| a.address == ip(&address))
            .cloned()
            .expect("entry");
        assert!(
            entry.candidates.iter().all(|n| rack_of(n) == "r1"),
            "{:?}",
            entry.candidates
        );
    }
}

fn rack_of(node: &str) -> &'static str {
    rack(node.trim_start_matches("node-").parse().expect("number"))
}

#[test]
fn a_selector_that_selects_no_node_says_so_with_the_pool_and_selector() {
    let mut planner = racks();
    planner.set_target(
        &key("web"),
        Some(target("203.0.113.1", Mode::Bgp, Some(selecting("r9")))),
    );
    let flush = planner.flush();
    assert!(holders(&planner, "203.0.113.1").is_empty());
    let status = flush
        .statuses
        .iter()
        .find(|(k, _)| *k == key("web"))
        .and_then(|(_, s)| s.clone())
        .expect("a status");
    let ServiceStatus::NotAnnounced {
        reason, message, ..
    } = status
    else {
        panic!("not announced expected, got {status:?}");
    };
    assert_eq!(reason, "NoEligibleNode");
    assert_eq!(
        &*message,
        "203.0.113.1: pool lbpool/rack has nodeSelector `rack=r9`, which selects none of the 4 \
         nodes with an announcer or Node object"
    );

    // Selected nodes exist but none may announce: the message names them and why.
    planner.set_target(
        &key("web"),
        Some(target("203.0.113.1", Mode::Bgp, Some(selecting("r1")))),
    );
    for n in ["node-1", "node-2"] {
        planner.set_node(
            n,
            Some(NodeInfo {
                ready: false,
                ..node("r1")
            }),
        );
    }
    let flush = planner.flush();
    let status = flush
        .statuses
        .iter()
        .find(|(k, _)| *k == key("web"))
        .and_then(|(_, s)| s.clone())
        .expect("a status");
    assert_eq!(
        status,
        ServiceStatus::NotAnnounced {
            active: Box::default(),
            reason: "NoEligibleNode",
            message: "203.0.113.1: none of the nodes pool lbpool/rack's nodeSelector `rack=r1` \
                      selects may announce it (node-1: it is not Ready; node-2: it is not Ready)"
                .into(),
        }
    );
}

#[test]
fn relabelling_a_node_moves_the_address_onto_or_off_it() {
    let mut planner = racks();
    planner.set_target(
        &key("web"),
        Some(target("203.0.113.1", Mode::Bgp, Some(selecting("r1")))),
    );
    planner.flush();
    assert_eq!(holders(&planner, "203.0.113.1"), ["node-1", "node-2"]);
    planner.set_node("node-3", Some(node("r1")));
    planner.set_node("node-1", Some(node("r2")));
    let flush = planner.flush();
    assert_eq!(holders(&planner, "203.0.113.1"), ["node-2", "node-3"]);
    let sent: BTreeMap<&str, usize> = flush
        .sets
        .iter()
        .map(|(n, set)| (n.as_ref(), set.len()))
        .collect();
    assert_eq!(
        sent.get("node-1"),
        Some(&0),
        "node-1 is told to withdraw it"
    );
    assert_eq!(
        sent.get("node-3"),
        Some(&1),
        "node-3 is told to advertise it"
    );
}

#[test]
fn bgp_attributes_of_the_pool_reach_every_advertising_node_and_the_sync() {
    let mut planner = racks();
    let attributes = BgpAttributes {
        communities: vec!["65000:100".into(), "no-export".into()],
        large_communities: vec!["65000:1:2".into()],
        local_pref: Some(200),
    };
    planner.set_target(
        &key("web"),
        Some(Target {
            bgp: Some(Arc::new(attributes.clone())),
            ..target("203.0.113.1", Mode::Bgp, None)
        }),
    );
    // A layer2 address from a pool with attributes: they mean nothing there, none are sent.
    planner.set_target(
        &key("l2"),
        Some(Target {
            bgp: Some(Arc::new(attributes.clone())),
            ..target("192.0.2.100", Mode::Layer2, None)
        }),
    );
    planner.flush();
    for i in 1..=4 {
        let set = planner.set_of(&format!("node-{i}"));
        let bgp = set
            .iter()
            .find(|a| a.address == ip("203.0.113.1"))
            .expect("advertised by every node");
        assert_eq!(bgp.bgp.as_deref(), Some(&attributes));
        let request = wire::sync_request(&format!("node-{i}"), 1, &set, &[], None);
        let sent = request
            .announcements
            .iter()
            .find(|a| a.address == "203.0.113.1")
            .and_then(|a| a.bgp.clone())
            .expect("attributes on the wire");
        assert_eq!(sent.communities, ["65000:100", "65535:65281"]);
        assert_eq!(sent.large_communities, ["65000:1:2"]);
        assert_eq!(sent.local_pref, Some(200));
        if let Some(l2) = request
            .announcements
            .iter()
            .find(|a| a.address == "192.0.2.100")
        {
            assert_eq!(l2.bgp, None);
        }
    }
}
