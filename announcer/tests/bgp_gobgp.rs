//! The speaker against a real GoBGP router (`gobgpd`) in a network namespace: session up,
//! host routes in the router's RIB with our next hops and attributes, withdraw, loss of the
//! routes when the speaker dies, iBGP, TCP MD5, and the IP TTL on the wire (tcpdump).

mod bgp_support;

use std::time::Duration;

use announcer::bgp::config::RouteAttributes;
use bgp_support::*;
use serde_json::Value;

#[test]
fn gobgp_ebgp_routes_appear_with_our_next_hops_and_go_on_withdraw_and_on_kill() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, SPEAKER_AS, None);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        speaker.add_peer(router_peer()).await.expect("peer added");
        let status = established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        assert!(
            status.capabilities.contains(&"4-octet-as".to_string()),
            "{:?}",
            status.capabilities
        );
        assert!(status.capabilities.contains(&"mp-ipv6-unicast".to_string()));

        let attrs = RouteAttributes {
            communities: vec![64513 << 16 | 100],
            med: Some(20),
            ..RouteAttributes::default()
        };
        speaker.announce(net(VIP_V4), attrs);
        speaker.announce(net(VIP_V6), RouteAttributes::default());
        let v4 = eventually("the /32 in gobgp's RIB", Duration::from_secs(10), || {
            router.path_attrs(VIP_V4)
        })
        .await;
        assert_eq!(attr(&v4, 3).expect("NEXT_HOP")["nexthop"], SPEAKER_V4);
        assert_eq!(
            attr(&v4, 2).expect("AS_PATH")["as_paths"][0]["asns"][0],
            SPEAKER_AS
        );
        assert_eq!(attr(&v4, 4).expect("MED")["metric"], 20);
        assert_eq!(
            attr(&v4, 8).expect("COMMUNITIES")["communities"][0],
            64513u64 << 16 | 100
        );
        let v6 = eventually("the /128 in gobgp's RIB", Duration::from_secs(10), || {
            router.path_attrs(VIP_V6)
        })
        .await;
        assert_eq!(attr(&v6, 14).expect("MP_REACH_NLRI")["nexthop"], SPEAKER_V6);

        let snapshot = speaker.peer(ROUTER_V4.parse().expect("ip")).expect("peer");
        assert_eq!(snapshot.prefixes_sent, 2);
        assert!(snapshot.updates_sent >= 2);

        withdraw_vips(&speaker);
        eventually("both routes withdrawn", Duration::from_secs(10), || {
            (router.path_attrs(VIP_V4).is_none() && router.path_attrs(VIP_V6).is_none())
                .then_some(())
        })
        .await;

        announce_vips(&speaker);
        eventually("routes back", Duration::from_secs(10), || {
            (router.path_attrs(VIP_V4).is_some() && router.path_attrs(VIP_V6).is_some())
                .then_some(())
        })
        .await;
        // Returning drops the runtime: sockets close with no NOTIFICATION, as when killed.
    });
    let start = std::time::Instant::now();
    while router.path_attrs(VIP_V4).is_some() || router.path_attrs(VIP_V6).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "routes stayed after the speaker died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(router);
}

#[test]
fn gobgp_ibgp_routes_carry_local_pref_and_an_empty_as_path() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, ROUTER_AS, None);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut peer = router_peer();
        peer.local_asn = ROUTER_AS;
        speaker.add_peer(peer).await.expect("peer added");
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        let attrs = RouteAttributes {
            local_pref: Some(250),
            ..RouteAttributes::default()
        };
        speaker.announce(net(VIP_V4), attrs);
        let v4 = eventually("the /32 in gobgp's RIB", Duration::from_secs(10), || {
            router.path_attrs(VIP_V4)
        })
        .await;
        assert_eq!(attr(&v4, 5).expect("LOCAL_PREF")["value"], 250);
        let as_path = attr(&v4, 2)
            .map(|a| a["as_paths"].clone())
            .unwrap_or(Value::Null);
        assert!(
            as_path.is_null() || as_path.as_array().is_some_and(Vec::is_empty),
            "{as_path}"
        );
        assert_eq!(attr(&v4, 3).expect("NEXT_HOP")["nexthop"], SPEAKER_V4);
    });
    drop(router);
}

#[test]
fn gobgp_md5_session_comes_up_only_with_the_right_password() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, SPEAKER_AS, Some("s3cret-md5"));
    let right = topology.path("right.pw");
    let wrong = topology.path("wrong.pw");
    write(&right, "s3cret-md5\n");
    write(&wrong, "not-the-password\n");
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut wrong_peer = router_peer();
        wrong_peer.password = Some(b"not-the-password".to_vec());
        wrong_peer.password_file = Some(wrong.clone());
        let mut right_peer = router_peer();
        right_peer.password = Some(b"s3cret-md5".to_vec());
        right_peer.password_file = Some(right.clone());
        let refused = md5_wrong_then_right(&speaker, wrong_peer, right_peer).await;
        assert!(
            refused.last_error.contains("no answer"),
            "{}",
            refused.last_error
        );
    });
    drop(router);
}

/// Captures, in the router namespace, the IP TTL (or IPv6 hop limit) of every BGP message
/// the speaker sends (segments with PSH from its address), until dropped.
fn capture_ttls(topology: &Topology, name: &str) -> Daemon {
    let filter = format!(
        "src host {SPEAKER_V4} and tcp port {ROUTER_PORT} and (tcp[tcpflags] & tcp-push != 0)"
    );
    let capture = topology.spawn_router(
        &[
            "tcpdump",
            "-i",
            &topology.router_if,
            "-nn",
            "-v",
            "-l",
            "-U",
            &filter,
        ],
        name,
        &[],
    );
    eventually_blocking("tcpdump listening", Duration::from_secs(10), || {
        capture.log().contains("listening on").then_some(())
    });
    capture
}

/// The `ttl N` values in a `tcpdump -v` log.
fn ttls(log: &str) -> Vec<u32> {
    log.split("ttl ")
        .skip(1)
        .filter_map(|rest| rest.split([',', ' ']).next()?.parse().ok())
        .collect()
}

#[test]
fn gobgp_sessions_carry_ttl_1_when_direct_and_the_multihop_ttl_otherwise() {
    if !prerequisites(&["gobgpd", "gobgp", "tcpdump"]) {
        return;
    }
    let topology = Topology::new();
    let router = GoBgp::start(&topology, SPEAKER_AS, None);
    let router_ip = ROUTER_V4.parse().expect("ip");
    let direct = capture_ttls(&topology, "direct.pcap.txt");
    let multihop = topology.in_speaker_ns(|| async {
        let speaker = speaker();
        speaker.add_peer(router_peer()).await.expect("peer added");
        established(&speaker, router_ip).await;
        announce_vips(&speaker);
        eventually("the /32 in gobgp's RIB", Duration::from_secs(10), || {
            router.path_attrs(VIP_V4)
        })
        .await;
        let seen = ttls(&direct.log());
        assert!(
            seen.len() >= 3 && seen.iter().all(|&ttl| ttl == 1),
            "direct eBGP must send TTL 1, saw {seen:?}:\n{}",
            direct.log()
        );
        drop(direct);

        // The old session ends (with its Cease) before the new capture starts.
        assert!(speaker.delete_peer(router_ip).await, "peer deleted");
        let multihop = capture_ttls(&topology, "multihop.pcap.txt");
        let mut peer = router_peer();
        peer.ebgp_multihop_ttl = 3;
        speaker.add_peer(peer).await.expect("peer replaced");
        established(&speaker, router_ip).await;
        eventually(
            "messages of the multihop session",
            Duration::from_secs(10),
            || (ttls(&multihop.log()).len() >= 3).then_some(()),
        )
        .await;
        multihop
    });
    let seen = ttls(&multihop.log());
    assert!(
        seen.iter().all(|&ttl| ttl == 3),
        "ebgp_multihop_ttl 3 must send TTL 3, saw {seen:?}:\n{}",
        multihop.log()
    );
    drop(router);
}
