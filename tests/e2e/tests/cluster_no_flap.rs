//! Cluster mode end to end, part 3: no flap (j). The provider restarted, and the leader
//! killed with a standby taking over: a client pinging the address every 50 ms loses nothing,
//! and no announcer withdraws or re-adds anything (`ctl state` unchanged, `since` included).

use e2e as support;

use std::time::Duration;

use serde_json::json;
use support::announcers::Announced;
use support::checks::{CHANGE, snapshot, wait_bgp, wait_reachable_at, wait_single_owner};
use support::client::{Ping, PingResult};
use support::cluster::{Cluster, NODES};
use support::scenario::{TOOLS, cluster_with_provider, create_announced, mode, provider};
use support::wait_for;

/// (j) The addresses of `before`'s Services, in every node's ctl state, unchanged: same
/// nodes, same phase, same `since`.
fn assert_no_withdraw(cluster: &Cluster, before: &[(String, Vec<Announced>)], what: &str) {
    let after = snapshot(cluster);
    for ((node, old), (_, new)) in before.iter().zip(&after) {
        let new: Vec<_> = new
            .iter()
            .filter(|a| old.iter().any(|o| o.address == a.address))
            .cloned()
            .collect();
        assert_eq!(
            old, &new,
            "{what}: {node}'s ctl state changed (a withdraw or re-announce): before {old:?}, after {new:?}"
        );
    }
}

/// Pings `ip` from the client 400 times at 50 ms while `disturb` runs, with `ctl watch` on
/// every announcer; returns the ping result, how many announcer events were seen, and those
/// that withdrew one of `watched` or took it out of force.
fn ping_through(
    cluster: &mut Cluster,
    ip: &str,
    watched: &[String],
    disturb: impl FnOnce(&mut Cluster),
) -> (PingResult, usize, Vec<String>) {
    let watches: Vec<_> = NODES.iter().map(|n| cluster.watch_announcer(n)).collect();
    let client = cluster.host("client").clone();
    let ping = Ping::start(&client, ip, "0.05", 400, cluster.dir.path());
    let log = cluster
        .dir
        .path()
        .join(format!("ping-{}.log", ip.replace([':', '.'], "_")));
    wait_for(
        &format!("the client's ping of {ip} to get 20 replies before the disturbance"),
        Duration::from_secs(15),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let replies = text.lines().filter(|l| l.contains("bytes from")).count();
            (replies >= 20)
                .then_some(())
                .ok_or(format!("{replies} replies"))
        },
    );
    disturb(cluster);
    let result = ping.finish(Duration::from_secs(60));
    let mut seen = 0;
    let mut withdrawals = Vec::new();
    for watch in watches {
        let node = watch.node.clone();
        let (count, found) = watch.withdrawals(watched);
        seen += count;
        withdrawals.extend(found.into_iter().map(|event| format!("{node}: {event}")));
    }
    (result, seen, withdrawals)
}

#[test]
fn provider_restart_does_not_flap() {
    let Some(mut cluster) = cluster_with_provider("the cluster-mode e2e test (provider restart)")
    else {
        return;
    };
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    wait_bgp(&cluster, &bgp, &NODES);
    let before = snapshot(&cluster);
    let generations_before = cluster.generations();

    let watched = [ip.clone(), bgp.clone()];
    let (result, watch_events, withdrawals) =
        ping_through(&mut cluster, &ip, &watched, |cluster| {
            cluster.stop_provider("p1", false);
            cluster.steps.log("(j) provider p1 stopped (SIGTERM)");
            cluster.start_provider(&provider("p1-again", false, 18080));
            // The new process drives the announcers: a Service created now gets announced.
            let (after_ip, _) =
                create_announced(cluster, "default", "after", json!({}), json!({}), "layer2");
            wait_single_owner(cluster, &after_ip, "layer2", None);
            cluster.steps.log(&format!(
                "(j) provider restarted; new Service default/after {after_ip} announced"
            ));
        });
    wait_bgp(&cluster, &bgp, &NODES);
    assert_no_withdraw(&cluster, &before, "(j) provider restart");
    assert!(
        withdrawals.is_empty(),
        "(j) provider restart: announcers reported withdrawals: {withdrawals:?}"
    );
    let events = cluster.kubectl.events_for("Service", "default", "web");
    assert!(
        !events.iter().any(|(reason, _)| reason == "Moved"),
        "(j) provider restart moved {ip}: {events:?}"
    );
    assert_eq!(
        result.lost(),
        0,
        "(j) provider restart: ping {ip} lost {}/{}",
        result.lost(),
        result.transmitted
    );
    cluster.steps.log(&format!(
        "(j) provider restart: ping {ip} lost {}/{}; every ctl state unchanged (same since); \
         `ctl watch` on node-1..3: {watch_events} events, no withdrawal; BGP {bgp} via node-1..3 throughout; Sync generations {generations_before:?} → {:?}",
        result.lost(),
        result.transmitted,
        cluster.generations()
    ));
}

#[test]
fn leader_handover_does_not_flap() {
    if !support::netns::prerequisites("the cluster-mode e2e test (leader hand-over)", TOOLS) {
        return;
    }
    let mut cluster = Cluster::start(&[provider("a", true, 18081), provider("b", true, 18082)]);
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let (bgp, _) = create_announced(&cluster, "bgp", "route", mode("bgp"), json!({}), "bgp");
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    wait_bgp(&cluster, &bgp, &NODES);
    let holder = |cluster: &Cluster| -> Result<String, String> {
        let lease = cluster
            .kubectl
            .get("lease", Some("kube-system"), "ferrolb-provider")
            .ok_or("no Lease kube-system/ferrolb-provider")?;
        lease["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no holder: {}", lease["spec"]))
    };
    let leader = wait_for("a Lease holder", CHANGE, || holder(&cluster));
    let standby = if leader == "a" { "b" } else { "a" };
    let before = snapshot(&cluster);
    let generations_before = cluster.generations();

    let watched = [ip.clone(), bgp.clone()];
    let (result, watch_events, withdrawals) =
        ping_through(&mut cluster, &ip, &watched, |cluster| {
            // A crash: the Lease is not released; the standby waits for it to expire.
            cluster.stop_provider(&leader, true);
            cluster.steps.log(&format!(
                "(j) leader {leader} killed (SIGKILL); standby {standby}"
            ));
            wait_for(
                &format!("Lease kube-system/ferrolb-provider held by {standby}"),
                CHANGE,
                || {
                    let now = holder(cluster)?;
                    (now == standby).then_some(()).ok_or(now)
                },
            );
            let (after_ip, _) =
                create_announced(cluster, "default", "after", json!({}), json!({}), "layer2");
            wait_single_owner(cluster, &after_ip, "layer2", None);
            cluster.steps.log(&format!(
                "(j) {standby} leads; new Service default/after {after_ip} announced"
            ));
        });
    wait_bgp(&cluster, &bgp, &NODES);
    assert_no_withdraw(&cluster, &before, "(j) leader hand-over");
    assert!(
        withdrawals.is_empty(),
        "(j) leader hand-over: announcers reported withdrawals: {withdrawals:?}"
    );
    assert_eq!(
        result.lost(),
        0,
        "(j) leader hand-over: ping {ip} lost {}/{}",
        result.lost(),
        result.transmitted
    );
    cluster.steps.log(&format!(
        "(j) leader hand-over {leader} → {standby}: ping {ip} lost {}/{}; every ctl state \
         unchanged (same since); `ctl watch` on node-1..3: {watch_events} events, no withdrawal; BGP {bgp} via node-1..3 throughout; Sync generations \
         {generations_before:?} → {:?}",
        result.lost(),
        result.transmitted,
        cluster.generations()
    ));
}
