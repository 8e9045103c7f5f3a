use super::*;

const A: &str = "192.0.2.10";

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A core for node `me` with peers node-a..node-c and one group `A` over `candidates`.
fn election(me: &str, candidates: &[&str], preempt: bool, t0: Instant) -> Election {
    let mut core = Election::new(Settings {
        interval: ms(100),
        multiplier: 3,
        preempt,
    });
    let peers = ["node-a", "node-b", "node-c"]
        .iter()
        .enumerate()
        .map(|(i, n)| (NodeId::from(*n), addr(&format!("198.51.100.{}", i + 1))))
        .collect();
    let groups = [(
        addr(A),
        (candidates.iter().map(|c| NodeId::from(*c)).collect(), false),
    )]
    .into();
    core.configure(t0, me, peers, groups);
    core
}

fn hear(core: &mut Election, at: Instant, from: &str, held: &[&str], ready: &[&str]) {
    let set = |list: &[&str]| list.iter().map(|a| addr(a)).collect();
    assert!(core.heard(at, from, Some((set(held), set(ready)))));
}

fn claimed(decisions: &[Decision]) -> Option<&str> {
    decisions.iter().find_map(|d| match d {
        Decision::Claim { message, .. } => Some(message.as_str()),
        _ => None,
    })
}

#[test]
fn the_first_candidate_claims_once_it_has_heard_every_peer() {
    let t0 = Instant::now();
    let mut a = election("node-a", &["node-a", "node-b", "node-c"], false, t0);
    let waiting = a.evaluate(t0);
    assert_eq!(
        waiting,
        vec![Decision::Standby {
            address: addr(A),
            holder: None,
            message: "standby: waiting for the first heartbeat from node-b".into()
        }]
    );
    assert!(a.evaluate(t0 + ms(10)).is_empty(), "no repeated report");
    hear(&mut a, t0 + ms(50), "node-b", &[], &[A]);
    hear(&mut a, t0 + ms(60), "node-c", &[], &[A]);
    let decisions = a.evaluate(t0 + ms(60));
    assert_eq!(
        claimed(&decisions),
        Some("claimed: no live candidate before this node holds it")
    );
    assert_eq!(a.held(), vec![addr(A)]);
}

#[test]
fn a_later_candidate_waits_for_the_earlier_one_and_takes_over_when_it_falls_silent() {
    let t0 = Instant::now();
    let mut b = election("node-b", &["node-a", "node-b", "node-c"], false, t0);
    hear(&mut b, t0, "node-a", &[], &[A]);
    hear(&mut b, t0, "node-c", &[], &[A]);
    let decisions = b.evaluate(t0);
    assert!(
        matches!(&decisions[..], [Decision::Standby { message, .. }] if message == "standby: node-a comes first and may claim it")
    );
    hear(&mut b, t0 + ms(100), "node-a", &[A], &[]);
    hear(&mut b, t0 + ms(100), "node-c", &[], &[A]);
    let decisions = b.evaluate(t0 + ms(100));
    assert!(
        matches!(&decisions[..], [Decision::Standby { holder: Some(h), .. }] if &**h == "node-a")
    );
    // node-a falls silent; node-c keeps talking.
    for t in [200, 300, 390] {
        hear(&mut b, t0 + ms(t), "node-c", &[], &[A]);
        assert!(
            claimed(&b.evaluate(t0 + ms(t))).is_none(),
            "at {t} ms node-a is not dead yet"
        );
    }
    hear(&mut b, t0 + ms(400), "node-c", &[], &[A]);
    assert_eq!(
        claimed(&b.evaluate(t0 + ms(400))),
        Some("took over from node-a: node-a stopped answering heartbeats")
    );
}

#[test]
fn only_the_first_live_candidate_takes_over() {
    let t0 = Instant::now();
    let mut c = election("node-c", &["node-a", "node-b", "node-c"], false, t0);
    hear(&mut c, t0, "node-a", &[A], &[]);
    hear(&mut c, t0, "node-b", &[], &[A]);
    c.evaluate(t0);
    hear(&mut c, t0 + ms(350), "node-b", &[], &[A]);
    let decisions = c.evaluate(t0 + ms(400));
    assert!(
        claimed(&decisions).is_none(),
        "node-b comes first: {decisions:?}"
    );
    // node-b claims; node-c sees it holding.
    hear(&mut c, t0 + ms(450), "node-b", &[A], &[]);
    let decisions = c.evaluate(t0 + ms(450));
    assert!(
        matches!(&decisions[..], [Decision::Standby { holder: Some(h), .. }] if &**h == "node-b")
    );
}

#[test]
fn a_returning_node_does_not_take_the_address_back_unless_preemption_is_on() {
    let t0 = Instant::now();
    for preempt in [false, true] {
        // node-a restarted: it hears node-b holding the address.
        let mut a = election("node-a", &["node-a", "node-b", "node-c"], preempt, t0);
        hear(&mut a, t0 + ms(50), "node-b", &[A], &[]);
        hear(&mut a, t0 + ms(50), "node-c", &[], &[A]);
        for t in [50, 500, 5_000] {
            hear(&mut a, t0 + ms(t), "node-b", &[A], &[]);
            hear(&mut a, t0 + ms(t), "node-c", &[], &[A]);
            assert!(claimed(&a.evaluate(t0 + ms(t))).is_none());
        }
        // node-b, the holder, hears node-a back.
        let mut b = election("node-b", &["node-a", "node-b", "node-c"], preempt, t0);
        hear(&mut b, t0, "node-a", &[], &[]);
        hear(&mut b, t0, "node-c", &[], &[A]);
        assert!(claimed(&b.evaluate(t0)).is_some(), "node-a is not ready");
        hear(&mut b, t0 + ms(100), "node-a", &[], &[A]);
        let decisions = b.evaluate(t0 + ms(100));
        if preempt {
            assert!(
                matches!(&decisions[..], [Decision::Release { message, .. }] if message.contains("preemption is on"))
            );
        } else {
            assert!(decisions.is_empty(), "{decisions:?}");
        }
    }
}

#[test]
fn after_a_partition_the_later_of_two_holders_releases() {
    let t0 = Instant::now();
    let mut b = election("node-b", &["node-a", "node-b", "node-c"], false, t0);
    hear(&mut b, t0, "node-a", &[], &[]);
    hear(&mut b, t0, "node-c", &[], &[A]);
    assert!(claimed(&b.evaluate(t0)).is_some());
    // node-c, later in the list, also holding: node-b keeps it.
    hear(&mut b, t0 + ms(100), "node-c", &[A], &[]);
    assert!(b.evaluate(t0 + ms(100)).is_empty());
    // node-a, earlier, holding too (it was cut off and claimed): node-b releases.
    hear(&mut b, t0 + ms(200), "node-a", &[A], &[]);
    let decisions = b.evaluate(t0 + ms(200));
    assert_eq!(
        decisions,
        vec![Decision::Release {
            address: addr(A),
            holder: Some("node-a".into()),
            message: "released: node-a holds it too and comes first in the candidate list".into()
        }]
    );
    assert!(b.held().is_empty());
}

#[test]
fn a_node_that_could_not_put_it_in_force_steps_aside_for_one_dead_interval() {
    let t0 = Instant::now();
    let mut a = election("node-a", &["node-a", "node-b"], false, t0);
    hear(&mut a, t0, "node-b", &[], &[A]);
    assert!(claimed(&a.evaluate(t0)).is_some());
    a.unable(t0, addr(A));
    let to_b = |a: &mut Election, t| {
        a.outgoing(t)
            .into_iter()
            .find(|o| &*o.peer == "node-b")
            .unwrap()
    };
    let beat = to_b(&mut a, t0);
    assert!(beat.held.is_empty() && beat.ready.is_empty());
    hear(&mut a, t0 + ms(100), "node-b", &[], &[A]);
    assert!(claimed(&a.evaluate(t0 + ms(100))).is_none());
    hear(&mut a, t0 + ms(300), "node-b", &[], &[A]);
    assert!(claimed(&a.evaluate(t0 + ms(300))).is_some(), "ready again");
}

#[test]
fn each_peer_hears_only_about_the_addresses_it_shares() {
    let t0 = Instant::now();
    let mut a = Election::new(Settings {
        interval: ms(100),
        multiplier: 3,
        preempt: false,
    });
    let peers = [("node-b", "198.51.100.2"), ("node-c", "198.51.100.3")]
        .into_iter()
        .map(|(n, a)| (NodeId::from(n), addr(a)))
        .collect();
    let groups = [
        (
            addr("192.0.2.1"),
            (vec!["node-a".into(), "node-b".into()], false),
        ),
        (
            addr("192.0.2.2"),
            (vec!["node-c".into(), "node-a".into()], false),
        ),
    ]
    .into();
    a.configure(t0, "node-a", peers, groups);
    let out = a.outgoing(t0);
    assert_eq!(out.len(), 2, "one heartbeat per peer");
    assert_eq!(out[0].ready, vec![addr("192.0.2.1")]);
    assert_eq!(out[0].address, addr("198.51.100.2"));
    assert_eq!(out[1].ready, vec![addr("192.0.2.2")]);
}

#[test]
fn a_heartbeat_from_a_node_that_is_not_a_peer_is_ignored() {
    let t0 = Instant::now();
    let mut a = election("node-a", &["node-a", "node-b"], false, t0);
    assert!(!a.heard(t0, "node-x", None));
}
