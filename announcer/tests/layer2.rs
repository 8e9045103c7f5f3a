//! Layer-2 mode against real clients: a client namespace and two node namespaces on a bridge,
//! a real `ferrolb-announcer` in each node, driven with `ferrolb-announcer ctl`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Announcer, Lan, can_use_netns, stderr};

const V4: &str = "192.0.2.10";
const V6: &str = "2001:db8::10";

#[test]
fn arping_and_ndisc6_resolve_announced_addresses_to_node_a_and_nothing_else() {
    if !can_use_netns("arping_and_ndisc6_resolve_announced_addresses_to_node_a_and_nothing_else") {
        return;
    }
    let lan = Lan::new(2);
    let (node, client) = (&lan.hosts[0], &lan.hosts[1]);
    let announcer = Announcer::start(node, &[]);
    let mac = node.mac();

    let status = announcer.ctl_ok(&[
        "announce",
        V4,
        "--mode",
        "layer2",
        "--label",
        "service=default/web",
    ]);
    assert_eq!(status["phase"], "active", "{status}");
    assert_eq!(status["interface"], "eth0");
    assert_eq!(status["mac"], mac.as_str());
    announcer.ctl_ok(&["announce", V6, "--mode", "layer2", "--interface", "eth0"]);

    assert_eq!(client.arping(V4), Some(mac.clone()), "arping {V4}");
    assert_eq!(client.ndisc6(V6), Some(mac.clone()), "ndisc6 {V6}");
    // Unicast NUD probe: the kernel of the client sends NS straight to the address.
    client.exec(&["ping", "-6", "-c", "1", "-W", "1", V6]);
    assert_eq!(
        client.neighbour(V6),
        Some(mac.clone()),
        "kernel resolution of {V6}"
    );

    assert_eq!(
        client.arping("192.0.2.99"),
        None,
        "nobody may answer for an address not announced"
    );
    assert_eq!(
        client.ndisc6("2001:db8::99"),
        None,
        "nobody may answer for an address not announced"
    );

    let withdrawn = announcer.ctl_ok(&["withdraw", V4]);
    assert_eq!(withdrawn["withdrawn"], true);
    announcer.ctl_ok(&["withdraw", V6, "--mode", "layer2"]);
    assert_eq!(client.arping(V4), None, "answered after withdraw");
    assert_eq!(client.ndisc6(V6), None, "answered after withdraw");

    let metrics = node.http_get("/metrics");
    assert!(
        metrics.contains("ferrolb_announcer_replies_sent_total{family=\"ipv4\"}"),
        "{metrics}"
    );
    let replies_v4 = common::metric(
        &metrics,
        "ferrolb_announcer_replies_sent_total{family=\"ipv4\"}",
    );
    assert!(replies_v4 >= 1.0, "{metrics}");
    assert!(
        common::metric(
            &metrics,
            "ferrolb_announcer_gratuitous_sent_total{family=\"ipv6\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(node.http_get("/healthz").contains("ok"));
}

#[test]
fn moving_an_address_from_a_to_b_changes_the_client_neighbour_entry() {
    if !can_use_netns("moving_an_address_from_a_to_b_changes_the_client_neighbour_entry") {
        return;
    }
    let lan = Lan::new(3);
    let (a, b, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    client.accept_unsolicited();
    let on_a = Announcer::start(a, &[]);
    let on_b = Announcer::start(b, &[]);

    on_a.ctl_ok(&["announce", V4]);
    on_a.ctl_ok(&["announce", V6]);
    let wait = Duration::from_secs(5);
    assert!(
        client.wait_neighbour(V4, &a.mac(), wait).is_some(),
        "client did not learn {V4} at A"
    );
    assert!(
        client.wait_neighbour(V6, &a.mac(), wait).is_some(),
        "client did not learn {V6} at A"
    );

    on_a.ctl_ok(&["withdraw", V4]);
    on_a.ctl_ok(&["withdraw", V6]);
    on_b.ctl_ok(&["announce", V4]);
    on_b.ctl_ok(&["announce", V6]);
    assert!(
        client.wait_neighbour(V4, &b.mac(), wait).is_some(),
        "client still has {:?} for {V4}, expected B {}",
        client.neighbour(V4),
        b.mac()
    );
    assert!(
        client.wait_neighbour(V6, &b.mac(), wait).is_some(),
        "client still has {:?} for {V6}, expected B {}",
        client.neighbour(V6),
        b.mac()
    );
    assert_eq!(client.arping(V4), Some(b.mac()));
}

#[test]
fn a_second_announcer_answering_for_the_same_address_raises_a_conflict_event() {
    if !can_use_netns("a_second_announcer_answering_for_the_same_address_raises_a_conflict_event") {
        return;
    }
    let lan = Lan::new(2);
    let (a, b) = (&lan.hosts[0], &lan.hosts[1]);
    let on_a = Announcer::start(a, &[]);
    let on_b = Announcer::start(b, &[]);
    on_a.ctl_ok(&["announce", V4]);

    let mut watch = Command::new(common::BIN)
        .args(["ctl", "--server", &on_a.server(), "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctl watch");
    // Wait until the subscription is in place ("watching" on stderr).
    let mut ready = String::new();
    BufReader::new(watch.stderr.take().expect("stderr"))
        .read_line(&mut ready)
        .expect("read");
    assert!(ready.contains("watching"), "{ready}");
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    on_b.ctl_ok(&["announce", V4]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut conflict = None;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
        if event["type"] == "conflict" {
            conflict = Some(event);
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let conflict = conflict.expect("no conflict event within 5 s");
    assert_eq!(conflict["address"], V4);
    assert_eq!(conflict["interface"], "eth0");
    assert_eq!(conflict["our_mac"], a.mac().as_str());
    assert_eq!(conflict["other_mac"], b.mac().as_str());
    assert_eq!(conflict["evidence"], "gratuitous-arp");
    let metrics = a.http_get("/metrics");
    assert!(
        common::metric(&metrics, "ferrolb_announcer_conflicts_total") >= 1.0,
        "{metrics}"
    );
}

#[test]
fn the_node_own_address_and_denied_prefixes_are_refused() {
    if !can_use_netns("the_node_own_address_and_denied_prefixes_are_refused") {
        return;
    }
    let lan = Lan::new(1);
    let node = &lan.hosts[0];
    let announcer = Announcer::start(
        node,
        &["--deny-prefixes", "192.0.2.128/25,2001:db8::ff00/120"],
    );

    let own = announcer.ctl(&["announce", &node.ipv4]);
    assert!(!own.status.success());
    assert!(
        stderr(&own).contains("FailedPrecondition"),
        "{}",
        stderr(&own)
    );
    assert!(
        stderr(&own).contains("192.0.2.1 is an address of this node (interface eth0)"),
        "{}",
        stderr(&own)
    );

    let denied = announcer.ctl(&["announce", "192.0.2.200", "--mode", "vip"]);
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("InvalidArgument"),
        "{}",
        stderr(&denied)
    );
    assert!(
        stderr(&denied).contains("192.0.2.200 lies in --deny-prefixes entry 192.0.2.128/25"),
        "{}",
        stderr(&denied)
    );

    let bad = announcer.ctl(&["announce", "192.0.2.300"]);
    assert!(
        stderr(&bad).contains("announcement.address: \"192.0.2.300\" is not an IP address"),
        "{}",
        stderr(&bad)
    );

    let state = announcer.ctl_ok(&["state"]);
    assert_eq!(
        state["announcements"].as_array().map(Vec::len),
        Some(0),
        "refused entries must not be stored: {state}"
    );
    assert!(node.addresses().contains("192.0.2.1/24"));
    assert!(!node.addresses().contains("192.0.2.200"));

    // In a Sync, a refused entry is reported as failed and does not stop the others.
    let file = announcer.write_file(
        "set.json",
        br#"[{"address": "192.0.2.1", "mode": "layer2"}, {"address": "192.0.2.10", "mode": "layer2"}]"#,
    );
    announcer.ctl_ok(&["sync", "--generation", "1", "--file", common::path(&file)]);
    let state = announcer.ctl_ok(&["state"]);
    let phases: Vec<(&str, &str, &str)> = state["announcements"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap_or(""),
                a["phase"].as_str().unwrap_or(""),
                a["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            (
                "192.0.2.1",
                "failed",
                "refused: 192.0.2.1 is an address of this node (interface eth0)"
            ),
            ("192.0.2.10", "active", "announced"),
        ]
    );
}

#[test]
fn an_announcement_on_a_down_link_is_pending_and_announced_when_the_link_comes_up() {
    if !can_use_netns(
        "an_announcement_on_a_down_link_is_pending_and_announced_when_the_link_comes_up",
    ) {
        return;
    }
    let lan = Lan::new(2);
    let (node, client) = (&lan.hosts[0], &lan.hosts[1]);
    client.accept_unsolicited();
    // A poll far longer than the test: only the kernel's link notification can bring the
    // announcement up within the 5 s waited for below.
    let announcer = Announcer::start(node, &["--link-poll-interval", "10m"]);
    common::run(&["ip", "-n", &node.ns, "link", "set", "eth0", "down"]);

    let status = announcer.ctl_ok(&["announce", V4, "--interface", "eth0"]);
    assert_eq!(status["phase"], "pending", "{status}");
    assert_eq!(status["message"], "interface eth0 is down");
    // Let the burst sent into the down link finish first.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(client.neighbour(V4), None);

    common::run(&["ip", "-n", &node.ns, "link", "set", "eth0", "up"]);
    // Nobody asks: the client learns the address only from the gratuitous announcements.
    assert!(
        client
            .wait_neighbour(V4, &node.mac(), Duration::from_secs(5))
            .is_some(),
        "no gratuitous ARP after link up; client has {:?}",
        client.neighbour(V4)
    );
    let state = announcer.ctl_ok(&["state"]);
    assert_eq!(state["announcements"][0]["phase"], "active", "{state}");
}

/// Polls `ctl state` until the first announcement has `phase`, for at most `timeout`; returns
/// the last state seen.
fn wait_phase(announcer: &Announcer, phase: &str, timeout: Duration) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let state = announcer.ctl_ok(&["state"]);
        if state["announcements"][0]["phase"] == phase || start.elapsed() > timeout {
            return state;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_active_announcement_turns_pending_when_its_link_goes_down_and_active_when_it_comes_back() {
    if !can_use_netns(
        "an_active_announcement_turns_pending_when_its_link_goes_down_and_active_when_it_comes_back",
    ) {
        return;
    }
    let lan = Lan::new(1);
    let node = &lan.hosts[0];
    // Only the kernel's link notification can change the phase within the waits below.
    let announcer = Announcer::start(node, &["--link-poll-interval", "10m"]);
    for mode in ["layer2", "vip"] {
        let address = if mode == "layer2" { V4 } else { "192.0.2.30" };
        let status = announcer.ctl_ok(&["announce", address, "--mode", mode]);
        assert_eq!(status["phase"], "active", "{status}");

        common::run(&["ip", "-n", &node.ns, "link", "set", "eth0", "down"]);
        let state = wait_phase(&announcer, "pending", Duration::from_secs(5));
        let entry = &state["announcements"][0];
        assert_eq!(entry["phase"], "pending", "{mode}: {state}");
        assert_eq!(
            entry["message"], "interface eth0 is down",
            "{mode}: {state}"
        );
        assert_eq!(entry["interface"], "eth0", "{mode}: {state}");

        common::run(&["ip", "-n", &node.ns, "link", "set", "eth0", "up"]);
        let state = wait_phase(&announcer, "active", Duration::from_secs(5));
        assert_eq!(
            state["announcements"][0]["phase"], "active",
            "{mode}: {state}"
        );
        announcer.ctl_ok(&["withdraw", address]);
    }
}
