//! VIP mode against real clients: the address goes on the node's interface (no DAD, finite
//! lifetime), the kernel answers, gratuitous announcements move clients, SIGTERM cleans up.

mod common;

use std::time::Duration;

use common::{Announcer, Lan, can_use_netns};

const V4: &str = "192.0.2.20";
const V6: &str = "2001:db8::20";

#[test]
fn vip_mode_adds_the_address_with_a_lifetime_and_moves_it_between_nodes() {
    if !can_use_netns("vip_mode_adds_the_address_with_a_lifetime_and_moves_it_between_nodes") {
        return;
    }
    let lan = Lan::new(3);
    let (a, b, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    client.accept_unsolicited();
    let on_a = Announcer::start(a, &["--vip-lifetime", "60s"]);
    let mut on_b = Announcer::start(b, &["--vip-lifetime", "60s"]);

    let status = on_a.ctl_ok(&["announce", V4, "--mode", "vip"]);
    assert_eq!(status["phase"], "active", "{status}");
    on_a.ctl_ok(&["announce", V6, "--mode", "vip"]);
    let addresses = a.addresses();
    assert!(addresses.contains(&format!("inet {V4}/32")), "{addresses}");
    assert!(
        addresses.contains(&format!("inet6 {V6}/128")),
        "{addresses}"
    );
    assert!(
        addresses.contains("valid_lft 60sec") || addresses.contains("valid_lft 59sec"),
        "{addresses}"
    );
    assert!(addresses.contains("nodad"), "{addresses}");

    let wait = Duration::from_secs(5);
    assert_eq!(client.arping(V4), Some(a.mac()));
    assert_eq!(client.ndisc6(V6), Some(a.mac()));
    assert!(
        client
            .exec(&["ping", "-c", "1", "-W", "2", V4])
            .status
            .success(),
        "kernel on A answers ping"
    );

    on_a.ctl_ok(&["withdraw", V4]);
    on_a.ctl_ok(&["withdraw", V6]);
    assert!(!a.addresses().contains(V4), "{}", a.addresses());
    on_b.ctl_ok(&["announce", V4, "--mode", "vip"]);
    on_b.ctl_ok(&["announce", V6, "--mode", "vip"]);
    assert!(
        client.wait_neighbour(V4, &b.mac(), wait).is_some(),
        "{V4}: {:?}",
        client.neighbour(V4)
    );
    assert!(
        client.wait_neighbour(V6, &b.mac(), wait).is_some(),
        "{V6}: {:?}",
        client.neighbour(V6)
    );

    // SIGTERM withdraws everything: the VIPs leave B's interface before the process exits.
    on_b.terminate();
    let addresses = b.addresses();
    assert!(
        !addresses.contains(V4) && !addresses.contains(V6),
        "{addresses}"
    );
    assert!(
        on_b.log_text().contains("withdrawing everything"),
        "{}",
        on_b.log_text()
    );
}

#[test]
fn layer2_and_vip_for_the_same_address_exclude_each_other() {
    if !can_use_netns("layer2_and_vip_for_the_same_address_exclude_each_other") {
        return;
    }
    let lan = Lan::new(1);
    let announcer = Announcer::start(&lan.hosts[0], &[]);
    announcer.ctl_ok(&["announce", V4, "--mode", "layer2"]);
    let out = announcer.ctl(&["announce", V4, "--mode", "vip"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("already announced in mode layer2"),
        "{}",
        common::stderr(&out)
    );
}
