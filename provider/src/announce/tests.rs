//! The planner as data: inputs in, per-node sets, statuses and moves out.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use super::*;
use crate::ipam::ServiceKey;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

fn target(addresses: &[&str], mode: Mode, age: i64) -> Target {
    Target {
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        mode: Ok(mode),
        interface: InterfaceChoice::Automatic,
        local_traffic: false,
        age: (age, format!("uid-{age}").into()),
        nodes: None,
        bgp: None,
    }
}

/// A planner with `n` ready nodes, each with a ready announcer.
fn cluster(n: usize) -> Planner {
    let mut planner = Planner::new(3);
    let nodes: BTreeMap<NodeName, NodeInfo> = (1..=n)
        .map(|i| {
            (
                format!("node-{i}").into(),
                NodeInfo {
                    ready: true,
                    excluded: false,
                    layer2_address: None,
                    ..Default::default()
                },
            )
        })
        .collect();
    planner.reset_nodes(nodes);
    planner.set_announcers(
        (1..=n)
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

fn owner(planner: &Planner, address: &str) -> Vec<String> {
    (1..=10)
        .map(|i| format!("node-{i}"))
        .filter(|n| planner.set_of(n).iter().any(|a| a.address == ip(address)))
        .collect()
}

fn all_active(planner: &mut Planner, n: usize) {
    for i in 1..=n {
        let node = format!("node-{i}");
        let report: HashMap<(IpAddr, Mode), Phase> = planner
            .set_of(&node)
            .iter()
            .map(|a| ((a.address, a.mode), Phase::Active(String::new())))
            .collect();
        planner.set_report(&node, report);
    }
}

#[test]
fn layer2_address_has_exactly_one_owner_and_ordered_candidates() {
    let mut planner = cluster(3);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    let flush = planner.flush();
    // Every announcer gets a set, also the empty ones.
    assert_eq!(flush.sets.len(), 3);
    let owners = owner(&planner, "192.0.2.100");
    assert_eq!(owners.len(), 1, "one owner: {owners:?}");
    let entry = planner.set_of(&owners[0])[0].clone();
    assert_eq!(entry.candidates.len(), 3);
    assert_eq!(entry.candidates[0].as_ref(), owners[0]);
    assert_eq!(entry.services.as_ref(), "default/web");
}

#[test]
fn status_is_pending_until_the_owner_reports_active() {
    let mut planner = cluster(3);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    let flush = planner.flush();
    assert!(matches!(
        flush.statuses[0].1,
        Some(ServiceStatus::Pending { .. })
    ));
    all_active(&mut planner, 3);
    let flush = planner.flush();
    let Some(ServiceStatus::Announced { mode, by }) = &flush.statuses[0].1 else {
        panic!("not announced: {:?}", flush.statuses)
    };
    assert_eq!(*mode, Mode::Layer2);
    assert_eq!(by[0].1.len(), 1);
}

#[test]
fn a_report_recomputes_only_the_services_whose_phase_changed() {
    let mut planner = cluster(1);
    for (i, address) in ["192.0.2.100", "192.0.2.101", "192.0.2.102"]
        .iter()
        .enumerate()
    {
        let age = i64::try_from(i).expect("small");
        let name = format!("web-{i}");
        planner.set_target(&key(&name), Some(target(&[address], Mode::Layer2, age)));
    }
    planner.flush();
    all_active(&mut planner, 1);
    assert_eq!(planner.flush().statuses.len(), 3, "all three announced");

    // The next report repeats the whole list; only web-0's address changed phase.
    let mut report: HashMap<(IpAddr, Mode), Phase> = planner
        .set_of("node-1")
        .iter()
        .map(|a| ((a.address, a.mode), Phase::Active(String::new())))
        .collect();
    report.insert(
        (ip("192.0.2.100"), Mode::Layer2),
        Phase::Pending("link down".into()),
    );
    planner.set_report("node-1", report.clone());
    let statuses: Vec<ServiceKey> = planner.flush().statuses.into_iter().map(|s| s.0).collect();
    assert_eq!(statuses, [key("web-0")]);

    // An identical report recomputes nothing; an entry that goes recomputes its Service.
    planner.set_report("node-1", report.clone());
    assert!(planner.flush().statuses.is_empty());
    report.remove(&(ip("192.0.2.102"), Mode::Layer2));
    planner.set_report("node-1", report);
    let statuses: Vec<ServiceKey> = planner.flush().statuses.into_iter().map(|s| s.0).collect();
    assert_eq!(statuses, [key("web-2")]);
}

#[test]
fn an_owner_that_refuses_gives_refused_with_its_message() {
    let mut planner = cluster(2);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Vip, 1)));
    planner.flush();
    let node = owner(&planner, "192.0.2.100").remove(0);
    planner.set_report(
        &node,
        [(
            (ip("192.0.2.100"), Mode::Vip),
            Phase::Failed("refused: 192.0.2.100 lies in --deny-prefixes entry 192.0.2.0/24".into()),
        )]
        .into(),
    );
    let flush = planner.flush();
    let Some(ServiceStatus::NotAnnounced {
        reason, message, ..
    }) = &flush.statuses[0].1
    else {
        panic!("{:?}", flush.statuses)
    };
    assert_eq!(*reason, "Refused");
    assert!(message.contains("--deny-prefixes"), "{message}");
    assert!(message.starts_with(&node), "{message}");
}

#[test]
fn losing_a_node_moves_only_its_addresses_and_says_why() {
    let mut planner = cluster(4);
    for i in 0..40 {
        planner.set_target(
            &key(&format!("s{i}")),
            Some(target(
                &[&format!("198.51.100.{}", 10 + i)],
                Mode::Layer2,
                i,
            )),
        );
    }
    planner.flush();
    all_active(&mut planner, 4);
    planner.flush();
    let before: BTreeMap<String, Vec<String>> = (0..40)
        .map(|i| {
            let a = format!("198.51.100.{}", 10 + i);
            (a.clone(), owner(&planner, &a))
        })
        .collect();
    // Spread: every node owns some.
    for n in 1..=4 {
        let count = before
            .values()
            .filter(|o| o[0] == format!("node-{n}"))
            .count();
        assert!(count >= 3, "node-{n} owns {count} of 40");
    }
    planner.set_node(
        "node-2",
        Some(NodeInfo {
            ready: false,
            excluded: false,
            layer2_address: None,
            ..Default::default()
        }),
    );
    // Moves follow the reports: the new owners answer.
    planner.flush();
    all_active(&mut planner, 4);
    let flush = planner.flush();
    for (address, owners) in &before {
        let now = owner(&planner, address);
        if owners[0] == "node-2" {
            assert_ne!(now[0], "node-2");
        } else {
            assert_eq!(
                &now, owners,
                "{address} moved although node-2 did not hold it"
            );
        }
    }
    let moved = before.values().filter(|o| o[0] == "node-2").count();
    assert_eq!(flush.moves.len(), moved);
    assert!(
        flush
            .moves
            .iter()
            .all(|m| m.why == "node-2: it is not Ready" && m.reason == "node_not_ready")
    );
}

#[test]
fn bgp_is_advertised_by_every_eligible_node_but_not_excluded_ones() {
    let mut planner = cluster(3);
    planner.set_node(
        "node-3",
        Some(NodeInfo {
            ready: true,
            excluded: true,
            layer2_address: None,
            ..Default::default()
        }),
    );
    planner.set_target(&key("web"), Some(target(&["198.51.100.10"], Mode::Bgp, 1)));
    planner.flush();
    assert_eq!(owner(&planner, "198.51.100.10"), ["node-1", "node-2"]);
    assert!(planner.set_of("node-1")[0].candidates.is_empty());
}

#[test]
fn local_traffic_follows_ready_endpoints() {
    let mut planner = cluster(3);
    let mut local = target(&["192.0.2.100"], Mode::Layer2, 1);
    local.local_traffic = true;
    planner.set_target(&key("web"), Some(local));
    let flush = planner.flush();
    let Some(ServiceStatus::NotAnnounced { reason, .. }) = &flush.statuses[0].1 else {
        panic!("{:?}", flush.statuses)
    };
    assert_eq!(*reason, "NoReadyEndpoints");
    assert!(owner(&planner, "192.0.2.100").is_empty());

    planner.set_endpoints(&key("web"), BTreeSet::from(["node-3".into()]));
    planner.flush();
    assert_eq!(owner(&planner, "192.0.2.100"), ["node-3"]);
    all_active(&mut planner, 3);
    planner.flush();
    planner.set_endpoints(&key("web"), BTreeSet::from(["node-1".into()]));
    planner.flush();
    all_active(&mut planner, 3);
    let flush = planner.flush();
    assert_eq!(owner(&planner, "192.0.2.100"), ["node-1"]);
    assert_eq!(flush.moves[0].from.as_ref(), "node-3");
    assert_eq!(
        flush.moves[0].why,
        "node-3: it holds no ready endpoint of the Service (externalTrafficPolicy: Local)"
    );
    assert_eq!(flush.moves[0].reason, "no_ready_endpoints");
}

#[test]
fn a_shared_address_is_answered_by_one_node_for_both_services() {
    let mut planner = cluster(3);
    planner.set_target(&key("a"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    planner.set_target(&key("b"), Some(target(&["192.0.2.100"], Mode::Layer2, 2)));
    planner.flush();
    let owners = owner(&planner, "192.0.2.100");
    assert_eq!(owners.len(), 1);
    assert_eq!(
        planner.set_of(&owners[0])[0].services.as_ref(),
        "default/a,default/b"
    );
    all_active(&mut planner, 3);
    let flush = planner.flush();
    assert_eq!(flush.statuses.len(), 2);
    assert!(
        flush
            .statuses
            .iter()
            .all(|(_, s)| matches!(s, Some(ServiceStatus::Announced { .. })))
    );
}

#[test]
fn a_shared_address_in_another_mode_is_a_conflict_for_the_younger_service() {
    let mut planner = cluster(2);
    planner.set_target(&key("old"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    planner.set_target(&key("new"), Some(target(&["192.0.2.100"], Mode::Bgp, 2)));
    let flush = planner.flush();
    let status: HashMap<_, _> = flush.statuses.into_iter().collect();
    let Some(ServiceStatus::NotAnnounced { reason, .. }) = &status[&key("new")] else {
        panic!("{status:?}")
    };
    assert_eq!(*reason, "Conflict");
}

#[test]
fn no_eligible_node_names_each_node_and_why() {
    let mut planner = cluster(2);
    planner.set_unreachable("node-1", Some("connect refused".into()));
    planner.set_unreachable("node-2", Some("connect refused".into()));
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    let flush = planner.flush();
    let Some(ServiceStatus::NotAnnounced {
        reason, message, ..
    }) = &flush.statuses[0].1
    else {
        panic!("{:?}", flush.statuses)
    };
    assert_eq!(*reason, "AnnouncerUnreachable");
    assert!(message.contains("node-1: its announcer is unreachable (connect refused)"));
}

#[test]
fn two_planners_with_the_same_inputs_send_the_same_sets() {
    let build = || {
        let mut planner = cluster(5);
        for i in 0..30 {
            planner.set_target(
                &key(&format!("s{i}")),
                Some(target(&[&format!("192.0.2.{}", 100 + i)], Mode::Vip, i)),
            );
        }
        planner.flush();
        planner
    };
    let (a, b) = (build(), build());
    for n in 1..=5 {
        let node = format!("node-{n}");
        assert_eq!(a.set_of(&node), b.set_of(&node));
    }
}

#[test]
fn a_deleted_service_is_withdrawn_from_every_node() {
    let mut planner = cluster(3);
    planner.set_target(&key("web"), Some(target(&["198.51.100.10"], Mode::Bgp, 1)));
    planner.flush();
    planner.set_target(&key("web"), None);
    let flush = planner.flush();
    assert_eq!(flush.sets.len(), 3);
    assert!(flush.sets.iter().all(|(_, set)| set.is_empty()));
    assert_eq!(flush.statuses, vec![(key("web"), None)]);
}

#[test]
fn rendezvous_scores_are_stable_across_builds() {
    // Pinned values: a change here moves addresses on upgrade.
    assert_eq!(
        rendezvous_score(ip("192.0.2.100"), "node-1"),
        rendezvous_score(ip("192.0.2.100"), "node-1")
    );
    assert_ne!(
        rendezvous_score(ip("192.0.2.100"), "node-1"),
        rendezvous_score(ip("192.0.2.100"), "node-2")
    );
}

#[test]
fn openelb_node_annotation_picks_the_interface_on_that_node() {
    let mut planner = cluster(1);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    planner.flush();
    assert_eq!(
        planner.set_of("node-1")[0].interface,
        InterfaceChoice::Automatic
    );
    planner.set_node(
        "node-1",
        Some(NodeInfo {
            ready: true,
            excluded: false,
            layer2_address: Some(ip("198.51.100.7")),
            ..Default::default()
        }),
    );
    let flush = planner.flush();
    assert_eq!(flush.sets.len(), 1, "the node's set is sent again");
    assert_eq!(
        flush.sets[0].1[0].interface,
        InterfaceChoice::CanReach(ip("198.51.100.7"))
    );
}

/// A planner with `n` nodes, failover on (the heartbeat key is known), and one layer2
/// Service on 192.0.2.100; returns it with the address's candidates.
fn failover_cluster(n: usize) -> (Planner, Vec<String>) {
    let mut planner = cluster(n);
    planner.set_failover(true);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Layer2, 1)));
    planner.flush();
    let candidates = candidates_of(&planner, "192.0.2.100");
    (planner, candidates)
}

/// The candidate list of `address` as its first holder of an entry was sent it.
fn candidates_of(planner: &Planner, address: &str) -> Vec<String> {
    (1..=10)
        .flat_map(|i| planner.set_of(&format!("node-{i}")).to_vec())
        .find(|a| a.address == ip(address))
        .map(|a| a.candidates.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// `node` reports `phase` for 192.0.2.100 in layer2 (its only entry).
fn report(planner: &mut Planner, node: &str, phase: Phase) {
    planner.set_report(node, [((ip("192.0.2.100"), Mode::Layer2), phase)].into());
}

fn active_phase(message: &str) -> Phase {
    Phase::Active(message.into())
}

fn standby(holder: Option<&str>) -> Phase {
    Phase::Standby {
        holder: holder.map(NodeName::from),
    }
}

#[test]
fn with_failover_every_candidate_gets_the_entry_and_its_peers() {
    let (planner, candidates) = failover_cluster(5);
    assert_eq!(candidates.len(), 3);
    assert_eq!(owner(&planner, "192.0.2.100"), {
        let mut sorted = candidates.clone();
        sorted.sort();
        sorted
    });
    for node in &candidates {
        let entry = planner.set_of(node)[0].clone();
        let list: Vec<&str> = entry.candidates.iter().map(|c| c.as_ref()).collect();
        assert_eq!(list, candidates, "{node} has the same list");
        let peers: Vec<(String, IpAddr)> = planner
            .failover_peers(node)
            .into_iter()
            .map(|p| (p.node.to_string(), p.address))
            .collect();
        let mut expected: Vec<(String, IpAddr)> = candidates
            .iter()
            .map(|c| (c.clone(), ip(&format!("192.0.2.{}", &c[5..]))))
            .collect();
        expected.sort();
        assert_eq!(
            peers, expected,
            "{node}'s peers: every candidate, itself included"
        );
    }
    let outsider = (1..=5)
        .map(|i| format!("node-{i}"))
        .find(|n| !candidates.contains(n))
        .expect("a non-candidate");
    assert!(planner.failover_peers(&outsider).is_empty());
}

#[test]
fn without_the_key_only_the_first_candidate_gets_it_and_the_key_adds_the_others() {
    let mut planner = cluster(5);
    planner.set_target(&key("web"), Some(target(&["192.0.2.100"], Mode::Vip, 1)));
    planner.flush();
    let owners = owner(&planner, "192.0.2.100");
    assert_eq!(owners.len(), 1);
    let first = planner.set_of(&owners[0]).clone();
    assert!(planner.failover_peers(&owners[0]).is_empty());

    planner.set_failover(true);
    let flush = planner.flush();
    assert!(flush.moves.is_empty());
    assert_eq!(owner(&planner, "192.0.2.100").len(), 3);
    assert_eq!(
        planner.set_of(&owners[0]),
        first,
        "the first candidate's entry does not change"
    );
    // The two new candidates get the entry; the first one's set is listed again with the
    // same content (the job re-sends it only because its peers and key change).
    let changed: Vec<&str> = flush.sets.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(changed.len(), 3, "{changed:?}");
}

#[test]
fn bgp_is_unchanged_by_failover() {
    let mut planner = cluster(3);
    planner.set_failover(true);
    planner.set_target(&key("web"), Some(target(&["198.51.100.10"], Mode::Bgp, 1)));
    planner.flush();
    assert_eq!(
        owner(&planner, "198.51.100.10"),
        ["node-1", "node-2", "node-3"]
    );
    assert!(planner.set_of("node-1")[0].candidates.is_empty());
    assert!(planner.failover_peers("node-1").is_empty());
}

#[test]
fn standing_by_candidates_are_pending_and_named_until_one_answers() {
    let (mut planner, candidates) = failover_cluster(3);
    let (first, second, third) = (&candidates[0], &candidates[1], &candidates[2]);
    report(&mut planner, second, standby(None));
    report(&mut planner, third, standby(None));
    let flush = planner.flush();
    let Some(ServiceStatus::Pending { active, message }) = &flush.statuses[0].1 else {
        panic!("{:?}", flush.statuses)
    };
    assert!(active.is_empty());
    assert_eq!(
        &**message,
        format!(
            "192.0.2.100: {second}, {third} stand by; waiting for one to take over; waiting for {first} to announce 192.0.2.100"
        )
    );

    report(&mut planner, first, active_phase(""));
    report(&mut planner, second, standby(Some(first)));
    report(&mut planner, third, standby(Some(first)));
    let flush = planner.flush();
    assert!(flush.moves.is_empty(), "a first holder is no move");
    let Some(ServiceStatus::Announced { by, .. }) = &flush.statuses[0].1 else {
        panic!("{:?}", flush.statuses)
    };
    let by: Vec<&str> = by[0].1.iter().map(|n| n.as_ref()).collect();
    assert_eq!(by, [first.as_str()], "only the Active node is named");
}

#[test]
fn an_announcer_side_takeover_is_a_move_with_the_announcers_sentence() {
    let (mut planner, candidates) = failover_cluster(3);
    let (first, second, third) = (&candidates[0], &candidates[1], &candidates[2]);
    report(&mut planner, first, active_phase(""));
    report(&mut planner, second, standby(Some(first)));
    report(&mut planner, third, standby(Some(first)));
    planner.flush();

    let sentence = format!("took over from {first}: {first} stopped answering heartbeats");
    report(&mut planner, second, active_phase(&sentence));
    report(&mut planner, first, standby(Some(second)));
    report(&mut planner, third, standby(Some(second)));
    let flush = planner.flush();
    assert_eq!(flush.moves.len(), 1, "{:?}", flush.moves);
    let moved = &flush.moves[0];
    assert_eq!(moved.from.as_ref(), first);
    assert_eq!(moved.to.as_deref(), Some(second.as_str()));
    assert_eq!(moved.why, sentence);
    assert_eq!(moved.reason, "heartbeat");
    assert!(
        flush.sets.is_empty(),
        "the provider changes no set after a takeover"
    );
    let Some(ServiceStatus::Announced { by, .. }) = &flush.statuses[0].1 else {
        panic!("{:?}", flush.statuses)
    };
    assert_eq!(*by[0].1, [NodeName::from(second.as_str())]);

    // Both Active for a moment (the old holder has not stepped down yet): no second move.
    report(&mut planner, first, active_phase(""));
    let flush = planner.flush();
    assert!(flush.moves.is_empty(), "{:?}", flush.moves);
}

#[test]
fn a_fresh_planner_adopts_a_takeover_that_happened_while_no_provider_ran() {
    let (mut planner, candidates) = failover_cluster(3);
    let (first, second, third) = (&candidates[0], &candidates[1], &candidates[2]);
    planner.flush();
    // The first reports this planner sees: node two took over from node one earlier.
    let sentence = format!("took over from {first}: {first} stopped answering heartbeats");
    report(&mut planner, second, active_phase(&sentence));
    report(&mut planner, first, standby(Some(second)));
    report(&mut planner, third, standby(Some(second)));
    let flush = planner.flush();
    assert_eq!(flush.moves.len(), 1, "{:?}", flush.moves);
    let moved = &flush.moves[0];
    assert!(moved.adopted, "learnt from the report alone");
    assert_eq!(moved.from.as_ref(), first);
    assert_eq!(moved.to.as_deref(), Some(second.as_str()));
    assert_eq!(moved.why, sentence);
    assert!(flush.sets.is_empty(), "adopted: nothing is sent");

    // A holder that simply claimed the address is no move.
    let (mut planner, candidates) = failover_cluster(3);
    planner.flush();
    report(
        &mut planner,
        &candidates[0],
        active_phase("claimed: no live candidate before this node holds it"),
    );
    assert!(planner.flush().moves.is_empty());
}

#[test]
fn a_takeover_after_the_holder_turns_not_ready_says_it_is_not_ready() {
    let (mut planner, candidates) = failover_cluster(4);
    let (first, second) = (&candidates[0], &candidates[1]);
    report(&mut planner, first, active_phase(""));
    planner.flush();
    planner.set_node(
        first,
        Some(NodeInfo {
            ready: false,
            excluded: false,
            layer2_address: None,
            ..Default::default()
        }),
    );
    let flush = planner.flush();
    assert!(
        flush.moves.is_empty(),
        "no move before a new holder answers"
    );
    assert!(
        planner.set_of(first).is_empty(),
        "the NotReady node is withdrawn"
    );
    let now = candidates_of(&planner, "192.0.2.100");
    assert!(!now.contains(first) && now.len() == 3, "{now:?}");

    planner.set_report(first, HashMap::new());
    report(
        &mut planner,
        second,
        active_phase(&format!("took over from {first}: {first} withdrew")),
    );
    let flush = planner.flush();
    assert_eq!(flush.moves.len(), 1, "{:?}", flush.moves);
    assert_eq!(flush.moves[0].why, format!("{first}: it is not Ready"));
    assert_eq!(flush.moves[0].reason, "node_not_ready");
}

#[test]
fn losing_a_candidate_that_does_not_hold_the_address_moves_nothing() {
    let (mut planner, candidates) = failover_cluster(5);
    let (first, third) = (&candidates[0], &candidates[2]);
    report(&mut planner, first, active_phase(""));
    planner.flush();
    planner.set_node(
        third,
        Some(NodeInfo {
            ready: true,
            excluded: true,
            layer2_address: None,
            ..Default::default()
        }),
    );
    let flush = planner.flush();
    assert!(flush.moves.is_empty(), "{:?}", flush.moves);
    let now = candidates_of(&planner, "192.0.2.100");
    assert_eq!(now[0], *first, "the holder stays first: {now:?}");
    assert!(!now.contains(third));
    assert_eq!(planner.set_of(first).len(), 1, "the holder keeps its entry");
    // The holder's next report (same phase) moves nothing either.
    report(&mut planner, first, active_phase(""));
    assert!(planner.flush().moves.is_empty());
}

#[test]
fn a_new_planner_with_failover_sends_the_same_sets_and_peers() {
    let build = || {
        let mut planner = cluster(6);
        planner.set_failover(true);
        for i in 0..30 {
            planner.set_target(
                &key(&format!("s{i}")),
                Some(target(&[&format!("192.0.2.{}", 100 + i)], Mode::Layer2, i)),
            );
        }
        planner.flush();
        planner
    };
    let (a, b) = (build(), build());
    for n in 1..=6 {
        let node = format!("node-{n}");
        assert_eq!(a.set_of(&node), b.set_of(&node));
        assert_eq!(a.failover_peers(&node), b.failover_peers(&node));
    }
}

#[test]
fn a_holder_with_no_eligible_node_left_moves_to_no_node() {
    let (mut planner, candidates) = failover_cluster(2);
    let first = &candidates[0];
    report(&mut planner, first, active_phase(""));
    planner.flush();
    for node in ["node-1", "node-2"] {
        planner.set_unreachable(node, Some("connect refused".into()));
    }
    let flush = planner.flush();
    assert_eq!(flush.moves.len(), 1, "{:?}", flush.moves);
    assert_eq!(flush.moves[0].from.as_ref(), first);
    assert_eq!(flush.moves[0].to, None);
    assert_eq!(
        flush.moves[0].why,
        format!("{first}: its announcer is unreachable (connect refused)")
    );
    assert_eq!(flush.moves[0].reason, "announcer_unreachable");
}
