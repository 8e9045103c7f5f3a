//! The speaker against a real BIRD 2 router in a network namespace: session up, the /32 and
//! the /128 (IPv6 routes over the IPv4 session, with a real IPv6 next hop) installed with our
//! next hops, withdraw, routes dropped when the speaker dies — or kept when graceful restart
//! (RFC 4724) was negotiated.

mod bgp_support;

use std::path::PathBuf;
use std::time::Duration;

use bgp_support::*;

struct Bird {
    _daemon: Daemon,
    socket: PathBuf,
}

impl Bird {
    fn start(topology: &Topology, graceful_restart: bool) -> Bird {
        Bird::start_with(topology, graceful_restart, false)
    }

    /// `dial`: BIRD connects to the speaker's port 10179 instead of waiting (passive speaker).
    fn start_with(topology: &Topology, graceful_restart: bool, dial: bool) -> Bird {
        Bird::start_full(topology, graceful_restart, dial, SPEAKER_AS, "")
    }

    /// Every option: `peer_as` (ROUTER_AS for iBGP) and extra protocol lines (e.g. a password).
    fn start_full(
        topology: &Topology,
        graceful_restart: bool,
        dial: bool,
        peer_as: u32,
        extra: &str,
    ) -> Bird {
        let gr = if graceful_restart { "on" } else { "off" };
        let (mode, neighbor_port) = if dial {
            (
                "connect delay time 1; connect retry time 1;",
                format!(" port {ROUTER_PORT}"),
            )
        } else {
            ("passive on;", String::new())
        };
        let config = format!(
            r#"router id {ROUTER_V4};
log stderr all;
protocol device {{ scan time 1; }}
protocol bgp lb {{
  local {ROUTER_V4} port {ROUTER_PORT} as {ROUTER_AS};
  neighbor {SPEAKER_V4}{neighbor_port} as {peer_as};
  {mode}
  {extra}
  hold time 9; keepalive time 3;
  graceful restart {gr};
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
        );
        let path = topology.path("bird.conf");
        write(&path, &config);
        let socket = topology.path("bird.ctl");
        let daemon = topology.spawn_router(
            &[
                "bird",
                "-f",
                "-c",
                &path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
                "-P",
                &topology.path("bird.pid").to_string_lossy(),
            ],
            "bird.log",
            &[],
        );
        Bird {
            _daemon: daemon,
            socket,
        }
    }

    fn birdc(&self, command: &str) -> String {
        let mut args = vec!["birdc", "-s"];
        let socket = self.socket.to_string_lossy().into_owned();
        args.push(&socket);
        args.extend(command.split(' '));
        try_run(&args)
    }

    /// `show route all` for one prefix: the lines after the prefix, or None when absent.
    fn route(&self, prefix: &str) -> Option<String> {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        let text = self.birdc(&format!("show route all table {table} for {prefix}"));
        let base = prefix.split('/').next().unwrap_or(prefix);
        text.lines()
            .any(|l| l.starts_with(base) && l.contains("[lb "))
            .then_some(text)
    }
}

#[test]
fn bird_installs_our_host_routes_with_real_next_hops_including_ipv6_over_ipv4() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start(&topology, false);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        speaker.add_peer(router_peer()).await.expect("peer added");
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        announce_vips(&speaker);
        let v4 = eventually("the /32 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V4)
        })
        .await;
        assert!(
            v4.contains("unicast") && v4.contains(&format!("via {SPEAKER_V4}")),
            "{v4}"
        );
        assert!(v4.contains(&format!("BGP.as_path: {SPEAKER_AS}")), "{v4}");
        let v6 = eventually("the /128 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V6)
        })
        .await;
        // Accepted over the IPv4 session: a real IPv6 next hop, not an IPv4-mapped one.
        assert!(
            v6.contains("unicast") && v6.contains(&format!("via {SPEAKER_V6}")),
            "{v6}"
        );
        assert!(
            v6.contains(&format!("BGP.next_hop: {SPEAKER_V6} fe80:")),
            "{v6}"
        );

        // `birdc reload in` sends ROUTE-REFRESH; it is answered by sending the routes again.
        let router_ip = ROUTER_V4.parse().expect("ip");
        let before = speaker.peer(router_ip).expect("peer").updates_sent;
        router.birdc("reload in lb");
        eventually(
            "UPDATEs resent after ROUTE-REFRESH",
            Duration::from_secs(10),
            || speaker.peer(router_ip).filter(|p| p.updates_sent > before),
        )
        .await;

        withdraw_vips(&speaker);
        eventually(
            "routes withdrawn from BIRD",
            Duration::from_secs(10),
            || (router.route(VIP_V4).is_none() && router.route(VIP_V6).is_none()).then_some(()),
        )
        .await;
        announce_vips(&speaker);
        eventually("routes back in BIRD", Duration::from_secs(10), || {
            (router.route(VIP_V4).is_some() && router.route(VIP_V6).is_some()).then_some(())
        })
        .await;
    });
    // The speaker died without graceful restart: BIRD drops the routes at once.
    let start = std::time::Instant::now();
    while router.route(VIP_V4).is_some() || router.route(VIP_V6).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "routes stayed after the speaker died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bird_keeps_our_routes_across_a_speaker_crash_when_graceful_restart_is_negotiated() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start(&topology, true);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut peer = router_peer();
        peer.graceful_restart = Some(60);
        speaker.add_peer(peer).await.expect("peer added");
        let status = established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        assert!(
            status
                .capabilities
                .contains(&"graceful-restart".to_string()),
            "{:?}",
            status.capabilities
        );
        announce_vips(&speaker);
        eventually("routes in BIRD", Duration::from_secs(10), || {
            (router.route(VIP_V4).is_some() && router.route(VIP_V6).is_some()).then_some(())
        })
        .await;
    });
    // Killed without NOTIFICATION: BIRD, as graceful-restart helper, keeps the routes (stale)
    // for the restart time.
    std::thread::sleep(Duration::from_secs(3));
    let v4 = router
        .route(VIP_V4)
        .expect("the /32 kept during graceful restart");
    assert!(
        router.route(VIP_V6).is_some(),
        "the /128 kept during graceful restart"
    );
    assert!(v4.contains(&format!("via {SPEAKER_V4}")), "{v4}");
    let protocols = router.birdc("show protocols all lb");
    assert!(protocols.to_lowercase().contains("restart"), "{protocols}");
}

#[test]
fn passive_speaker_accepts_bird_dialling_in_and_announces() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start_with(&topology, false, true);
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut peer = router_peer();
        peer.passive = true;
        peer.source_address = Some(SPEAKER_V4.parse().expect("ip"));
        speaker.add_peer(peer).await.expect("peer added");
        announce_vips(&speaker);
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        let v4 = eventually("the /32 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V4)
        })
        .await;
        assert!(v4.contains(&format!("via {SPEAKER_V4}")), "{v4}");
        eventually("the /128 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V6)
        })
        .await;
    });
}

#[test]
fn bird_ibgp_with_md5_comes_up_only_with_the_right_password() {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let router = Bird::start_full(&topology, false, false, ROUTER_AS, "password \"bird-md5\";");
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut wrong = router_peer();
        wrong.local_asn = ROUTER_AS;
        wrong.password = Some(b"wrong".to_vec());
        let mut right = router_peer();
        right.local_asn = ROUTER_AS;
        right.password = Some(b"bird-md5".to_vec());
        md5_wrong_then_right(&speaker, wrong, right).await;
        announce_vips(&speaker);
        let v4 = eventually("the /32 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V4)
        })
        .await;
        // iBGP: empty AS path, LOCAL_PREF 100.
        assert!(
            v4.contains("[i]") || v4.contains("BGP.as_path: \n") || v4.contains("BGP.as_path:\n"),
            "{v4}"
        );
        assert!(v4.contains("BGP.local_pref: 100"), "{v4}");
        eventually("the /128 in BIRD", Duration::from_secs(10), || {
            router.route(VIP_V6)
        })
        .await;
    });
}

/// A passive IPv4 peer and a passive IPv6 peer on one port (IPv4 listener on 0.0.0.0, IPv6
/// listener IPv6-only on [::]), added in either order; BIRD dials both.
fn passive_ipv4_and_ipv6_peers_share_the_port(ipv6_first: bool) {
    if !prerequisites(&["bird", "birdc"]) {
        return;
    }
    let topology = Topology::new();
    let protocol = |name: &str, local: &str, neighbor: &str| {
        format!(
            r#"protocol bgp {name} {{
  local {local} port {ROUTER_PORT} as {ROUTER_AS};
  neighbor {neighbor} port {ROUTER_PORT} as {SPEAKER_AS};
  connect delay time 1; connect retry time 1;
  hold time 9; keepalive time 3;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
        )
    };
    let config = format!(
        "router id {ROUTER_V4};\nlog stderr all;\nprotocol device {{ scan time 1; }}\n{}{}",
        protocol("lb4", ROUTER_V4, SPEAKER_V4),
        protocol("lb6", ROUTER_V6, SPEAKER_V6)
    );
    let path = topology.path("bird.conf");
    write(&path, &config);
    let socket = topology.path("bird.ctl");
    let _bird = topology.spawn_router(
        &[
            "bird",
            "-f",
            "-c",
            &path.to_string_lossy(),
            "-s",
            &socket.to_string_lossy(),
            "-P",
            &topology.path("bird.pid").to_string_lossy(),
        ],
        "bird.log",
        &[],
    );
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut v4 = router_peer();
        v4.passive = true;
        let mut v6 = router_peer();
        v6.address = ROUTER_V6.parse().expect("ip");
        v6.passive = true;
        v6.router_id = Some(SPEAKER_V4.parse().expect("ip"));
        let order = if ipv6_first { [v6, v4] } else { [v4, v6] };
        for peer in order {
            let address = peer.address;
            speaker
                .add_peer(peer)
                .await
                .unwrap_or_else(|e| panic!("passive peer {address}: {e}"));
        }
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        established(&speaker, ROUTER_V6.parse().expect("ip")).await;
    });
}

#[test]
fn passive_ipv4_then_ipv6_peer_on_one_port_both_come_up() {
    passive_ipv4_and_ipv6_peers_share_the_port(false);
}

#[test]
fn passive_ipv6_then_ipv4_peer_on_one_port_both_come_up() {
    passive_ipv4_and_ipv6_peers_share_the_port(true);
}
