//! Cluster mode end to end, part 3 (issue #11): the candidates of a layer-2 address fail over
//! among themselves. With the provider stopped and the API server frozen, the holder's
//! announcer is killed and the next candidate takes the address over
//! with heartbeats alone; the provider that comes back adopts what the announcers decided
//! (condition, Moved Event with the announcer's reason) and moves nothing again, and the old
//! holder that returns stands by instead of taking the address back.

use e2e as support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::checks::{CHANGE, wait_announced, wait_moved, wait_reachable_at, wait_single_owner};
use support::cluster::{Cluster, NODES};
use support::scenario::{cluster_with_provider, create_announced, provider};
use support::wait_for;

/// The phase and holder `node`'s announcer reports for `ip` (layer2).
fn phase_on(cluster: &Cluster, node: &str, ip: &str) -> Result<(String, String, String), String> {
    let state = cluster.ctl_state(node)?;
    state["announcements"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["address"] == ip && a["mode"] == "layer2")
        .map(|a| {
            let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (text("phase"), text("holder"), text("message"))
        })
        .ok_or_else(|| format!("{node} does not list {ip}: {state}"))
}

/// Sends `signal` (`-STOP`, `-CONT`) to the test-apiserver process.
fn signal_apiserver(cluster: &Cluster, signal: &str) {
    let pid = cluster.apiserver.pid().to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

#[test]
fn announcers_fail_over_without_the_provider_and_the_provider_adopts_it() {
    let Some(mut cluster) =
        cluster_with_provider("the cluster-mode e2e test (failover among announcers)")
    else {
        return;
    };
    let (ip, _) = create_announced(&cluster, "default", "web", json!({}), json!({}), "layer2");
    let owner = wait_single_owner(&cluster, &ip, "layer2", None);
    wait_reachable_at(&cluster, &ip, &owner);
    // Every candidate got the address; the others stand by, naming the holder.
    let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != owner).collect();
    for node in &others {
        wait_for(
            &format!("{node} standing by for {ip}, holder {owner}"),
            CHANGE,
            || match phase_on(&cluster, node, &ip)? {
                (phase, holder, _) if phase == "standby" && holder == owner => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
    cluster.steps.log(&format!(
        "(k) {ip} held by {owner}; {others:?} stand by naming {owner}"
    ));

    // No provider and no API server from here on (the API server frozen with SIGSTOP: every
    // request to it hangs): only the announcers can move the address.
    cluster.stop_provider("p1", true);
    signal_apiserver(&cluster, "-STOP");
    let killed = Instant::now();
    cluster.kill_announcer(&owner);
    let heir = wait_single_owner(&cluster, &ip, "layer2", Some(&owner));
    let took = killed.elapsed();
    let (greeting, mac) = wait_reachable_at(&cluster, &ip, &heir);
    let (_, holder, message) = phase_on(&cluster, &heir, &ip).expect("heir's state");
    assert_eq!(holder, heir, "(k) the heir reports itself as holder");
    assert!(
        message.contains(&format!(
            "took over from {owner}: {owner} stopped answering heartbeats"
        )),
        "(k) the heir's status should say why it took over: {message:?}"
    );
    signal_apiserver(&cluster, "-CONT");
    cluster.steps.log(&format!(
        "(k) provider stopped (SIGKILL), API server frozen (SIGSTOP), announcer on {owner} killed → {heir} took {ip} over \
         after {took:?} (ctl state polled); {message:?}; client got {greeting:?}, neighbour {mac}"
    ));

    // The old holder returns, then the provider: nobody takes the address back.
    cluster.restart_announcer(&owner);
    cluster.start_provider(&provider("p1-again", false, 18080));
    let seen = wait_announced(&cluster, "default", "web", &format!("naming {heir}"), |s| {
        s.status == "True" && s.message.contains(&heir)
    });
    let moved = wait_moved(&cluster, "default", "web", &ip, &owner, &heir);
    assert!(
        moved.contains("stopped answering heartbeats"),
        "(k) the Moved Event should carry the announcer's reason: {moved:?}"
    );
    wait_for(
        &format!("{owner} back, standing by for {ip} behind {heir}"),
        CHANGE,
        || match phase_on(&cluster, &owner, &ip)? {
            (phase, holder, _) if phase == "standby" && holder == heir => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // Several dead intervals later the address is still where the announcers put it.
    std::thread::sleep(Duration::from_secs(2));
    let still = wait_single_owner(&cluster, &ip, "layer2", None);
    assert_eq!(still, heir, "(k) {ip} moved again, to {still}");
    wait_reachable_at(&cluster, &ip, &heir);
    let moves = cluster
        .kubectl
        .events_for("Service", "default", "web")
        .into_iter()
        .filter(|(reason, _)| reason == "Moved")
        .count();
    assert_eq!(moves, 1, "(k) exactly one Moved Event, the adopted one");
    cluster.steps.log(&format!(
        "(k) {owner} restarted and the provider back → condition {:?}; Event Moved {moved:?}; \
         {owner} stands by behind {heir}; 2 s later {ip} still on {heir}, one Moved Event",
        seen.message
    ));
}
