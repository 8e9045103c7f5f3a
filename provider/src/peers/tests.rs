//! The peer book as data: objects, Secrets and node labels in, per-node peer sets and
//! per-object reports out. No API server, no announcer.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::book::{PeerBook, PeerReport, SessionReport};
use super::model::parse;
use crate::announce::model::NodeName;

fn nodes(list: &[(&str, &str)]) -> BTreeMap<NodeName, Arc<BTreeMap<String, String>>> {
    list.iter()
        .map(|(node, rack)| {
            let labels: BTreeMap<String, String> = [("rack".to_string(), rack.to_string())].into();
            (NodeName::from(*node), Arc::new(labels))
        })
        .collect()
}

fn peer(name: &str, address: &str, spec: serde_json::Value) -> super::BgpPeer {
    let mut full = json!({"peerAddress": address, "peerASN": 64512});
    for (key, value) in spec.as_object().expect("object") {
        full[key] = value.clone();
    }
    parse(&json!({"metadata": {"name": name, "generation": 1}, "spec": full}))
}

fn book_with(peers: Vec<super::BgpPeer>) -> PeerBook {
    let mut book = PeerBook::new("kube-system");
    book.reset_objects(peers);
    book.reset_secrets(Vec::new());
    book
}

fn addresses(
    book: &PeerBook,
    cluster: &BTreeMap<NodeName, Arc<BTreeMap<String, String>>>,
) -> Vec<(String, Vec<String>)> {
    book.desired(cluster)
        .into_iter()
        .map(|(node, set)| {
            (
                node.to_string(),
                PeerBook::addresses(&set)
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn each_racks_nodes_get_their_own_routers_and_unselected_nodes_an_empty_set() {
    let cluster = nodes(&[("node-1", "r1"), ("node-2", "r1"), ("node-3", "r2")]);
    let book = book_with(vec![
        peer(
            "r1-tor",
            "192.0.2.1",
            json!({"nodeSelector": {"matchLabels": {"rack": "r1"}}}),
        ),
        peer(
            "r2-tor",
            "198.51.100.1",
            json!({"nodeSelector": {"matchExpressions": [
            {"key": "rack", "operator": "In", "values": ["r2"]}]}}),
        ),
        peer("route-reflector", "203.0.113.1", json!({})),
    ]);
    assert!(book.ready());
    assert_eq!(
        addresses(&book, &cluster),
        [
            (
                "node-1".to_string(),
                vec!["192.0.2.1".to_string(), "203.0.113.1".to_string()]
            ),
            (
                "node-2".to_string(),
                vec!["192.0.2.1".to_string(), "203.0.113.1".to_string()]
            ),
            (
                "node-3".to_string(),
                vec!["198.51.100.1".to_string(), "203.0.113.1".to_string()]
            ),
        ]
    );
}

#[test]
fn nothing_is_ready_before_both_lists() {
    let mut book = PeerBook::new("kube-system");
    book.reset_objects(Vec::new());
    assert!(!book.ready());
    book.reset_secrets(Vec::new());
    assert!(book.ready());
}

#[test]
fn a_password_comes_from_the_secret_and_a_missing_one_keeps_the_peer_off_every_node() {
    let cluster = nodes(&[("node-1", "r1")]);
    let mut book = book_with(vec![peer(
        "keyed",
        "192.0.2.1",
        json!({"passwordSecret": {"name": "tor-md5"}}),
    )]);
    assert!(book.desired(&cluster)["node-1"].is_empty());
    let report = &book.reports(&cluster)[0];
    let (reason, message) = report.problem.clone().expect("problem");
    assert_eq!(reason, "PasswordSecretNotFound");
    assert_eq!(
        message,
        "spec.passwordSecret: Secret kube-system/tor-md5 not found (only Secrets labelled ferrolb.io/bgp-password in kube-system are read)"
    );

    book.apply_secret(
        "tor-md5".into(),
        [("other".to_string(), b"x".to_vec())].into(),
    );
    let (_, message) = book.reports(&cluster)[0].problem.clone().expect("problem");
    assert_eq!(
        message,
        "spec.passwordSecret.key: Secret kube-system/tor-md5 has no key \"password\""
    );

    book.apply_secret(
        "tor-md5".into(),
        [("password".to_string(), b"s3cret\n".to_vec())].into(),
    );
    let set = &book.desired(&cluster)["node-1"];
    assert_eq!(set[0].password.as_deref(), Some(&b"s3cret"[..]));
    assert!(!format!("{set:?}").contains("s3cret"));
    assert_eq!(book.reports(&cluster)[0].problem, None);
}

#[test]
fn an_invalid_object_names_its_field_and_the_others_keep_working() {
    let cluster = nodes(&[("node-1", "r1")]);
    let book = book_with(vec![
        peer("bad", "192.0.2.1", json!({"holdTimeSeconds": 2})),
        peer("good", "192.0.2.2", json!({})),
    ]);
    assert_eq!(
        addresses(&book, &cluster),
        [("node-1".to_string(), vec!["192.0.2.2".to_string()])]
    );
    let reports = book.reports(&cluster);
    assert_eq!(
        reports[0].problem,
        Some((
            "InvalidSpec",
            "spec.holdTimeSeconds: 2 must be 0 or 3..=65535 (RFC 4271 §4.2)".to_string()
        ))
    );
    assert!(reports[0].sessions.is_empty());
    assert_eq!(reports[1].sessions[0].state, "Pending");
}

#[test]
fn two_objects_with_one_address_on_one_node_the_first_name_wins_the_other_is_a_conflict() {
    let cluster = nodes(&[("node-1", "r1")]);
    let book = book_with(vec![
        peer("a-tor", "192.0.2.1", json!({"holdTimeSeconds": 9})),
        peer("b-tor", "192.0.2.1", json!({"holdTimeSeconds": 30})),
    ]);
    let set = &book.desired(&cluster)["node-1"];
    assert_eq!(set.len(), 1);
    assert_eq!(&*set[0].object, "a-tor");
    let reports = book.reports(&cluster);
    assert_eq!(reports[1].sessions[0].state, "Conflict");
    assert_eq!(
        reports[1].sessions[0].message,
        "BGPPeer a-tor peers with 192.0.2.1 on this node"
    );
}

#[test]
fn reports_show_each_nodes_session_refusal_or_problem() {
    let cluster = nodes(&[("node-1", "r1"), ("node-2", "r1"), ("node-3", "r1")]);
    let mut book = book_with(vec![peer("tor", "192.0.2.1", json!({}))]);
    book.set_report(
        &NodeName::from("node-1"),
        Some(PeerReport {
            sessions: [(
                "192.0.2.1".parse().expect("ip"),
                SessionReport {
                    state: "Established".into(),
                    last_error: String::new(),
                },
            )]
            .into(),
            ..PeerReport::default()
        }),
    );
    book.set_report(
        &NodeName::from("node-2"),
        Some(PeerReport {
            refused: [(
                "192.0.2.1".to_string(),
                "peer 192.0.2.1: cannot listen".to_string(),
            )]
            .into(),
            ..PeerReport::default()
        }),
    );
    book.set_report(
        &NodeName::from("node-3"),
        Some(PeerReport {
            problem: Some("BGP mode is not enabled (no BGP speaker configured)".into()),
            ..PeerReport::default()
        }),
    );
    let states: Vec<(String, String)> = book.reports(&cluster)[0]
        .sessions
        .iter()
        .map(|s| (s.node.to_string(), s.state.clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("node-1".to_string(), "Established".to_string()),
            ("node-2".to_string(), "Refused".to_string()),
            ("node-3".to_string(), "Unavailable".to_string()),
        ]
    );
}
