//! The speaker against ExaBGP, which prints every UPDATE it receives as a JSON line: the exact
//! sequence of announcements (with next hops per family), End-of-RIB, withdrawals, and on
//! shutdown the withdrawal of everything followed by a Cease / Administrative Shutdown.

mod bgp_support;

use std::path::PathBuf;
use std::time::Duration;

use bgp_support::*;
use serde_json::Value;

struct ExaBgp {
    _daemon: Daemon,
    output: PathBuf,
}

impl ExaBgp {
    fn start(topology: &Topology) -> ExaBgp {
        let output = topology.path("exa.jsonl");
        let config = format!(
            r#"process dump {{
  run /bin/sh -c "cat >> {output}";
  encoder json;
}}
neighbor {SPEAKER_V4} {{
  router-id {ROUTER_V4};
  local-address {ROUTER_V4};
  local-as {ROUTER_AS};
  peer-as {SPEAKER_AS};
  hold-time 9;
  passive;
  family {{ ipv4 unicast; ipv6 unicast; }}
  api {{
    processes [dump];
    receive {{ parsed; update; notification; }}
    neighbor-changes;
  }}
}}
"#,
            output = output.display()
        );
        let path = topology.path("exabgp.conf");
        write(&path, &config);
        let port = ROUTER_PORT.to_string();
        let pid = topology.path("exabgp.pid").to_string_lossy().into_owned();
        let log = topology.path("exabgp.log").to_string_lossy().into_owned();
        let daemon = topology.spawn_router(
            &["exabgp", &path.to_string_lossy()],
            "exabgp.out",
            &[
                ("exabgp.tcp.bind", ROUTER_V4),
                ("exabgp.tcp.port", &port),
                ("exabgp.daemon.user", "root"),
                ("exabgp.daemon.daemonize", "false"),
                ("exabgp.daemon.pid", &pid),
                ("exabgp.log.destination", &log),
            ],
        );
        ExaBgp {
            _daemon: daemon,
            output,
        }
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Every UPDATE and NOTIFICATION as a short event string, in arrival order:
    /// `announce ipv4 unicast 198.51.100.10/32 via 192.0.2.1`, `withdraw …`, `eor …`,
    /// `notification 6/2`.
    fn events(&self) -> Vec<String> {
        let mut events = Vec::new();
        for line in self.lines() {
            let message = &line["neighbor"]["message"];
            if line["type"] == "notification" {
                let n = &line["neighbor"]["notification"];
                events.push(format!("notification {}/{}", n["code"], n["subcode"]));
                continue;
            }
            if let Some(eor) = message.get("eor") {
                events.push(format!(
                    "eor {} {}",
                    eor["afi"].as_str().unwrap_or(""),
                    eor["safi"].as_str().unwrap_or("")
                ));
                continue;
            }
            let update = &message["update"];
            if let Some(announce) = update["announce"].as_object() {
                for (family, by_hop) in announce {
                    for (hop, nlris) in by_hop.as_object().into_iter().flatten() {
                        for nlri in nlris.as_array().into_iter().flatten() {
                            events.push(format!(
                                "announce {family} {} via {hop}",
                                nlri["nlri"].as_str().unwrap_or("")
                            ));
                        }
                    }
                }
            }
            if let Some(withdraw) = update["withdraw"].as_object() {
                for (family, nlris) in withdraw {
                    for nlri in nlris.as_array().into_iter().flatten() {
                        events.push(format!(
                            "withdraw {family} {}",
                            nlri["nlri"].as_str().unwrap_or("")
                        ));
                    }
                }
            }
        }
        events
    }
}

#[test]
fn exabgp_sees_announce_end_of_rib_withdraw_and_a_clean_shutdown() {
    if !prerequisites(&["exabgp"]) {
        return;
    }
    let topology = Topology::new();
    let router = ExaBgp::start(&topology);
    let v4 = format!("announce ipv4 unicast {VIP_V4} via {SPEAKER_V4}");
    let v6 = format!("announce ipv6 unicast {VIP_V6} via {SPEAKER_V6}");
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        // Routes known before the session: sent in full on establishment, then End-of-RIB.
        announce_vips(&speaker);
        speaker.add_peer(router_peer()).await.expect("peer added");
        established(&speaker, ROUTER_V4.parse().expect("ip")).await;
        let events = eventually(
            "both routes and End-of-RIB at ExaBGP",
            Duration::from_secs(15),
            || {
                let events = router.events();
                (events.iter().filter(|e| e.starts_with("eor")).count() == 2).then_some(events)
            },
        )
        .await;
        let position = |wanted: &str| events.iter().position(|e| e == wanted);
        let eor4 = position("eor ipv4 unicast").expect("End-of-RIB ipv4");
        assert!(position(&v4).is_some_and(|p| p < eor4), "{events:?}");
        assert!(position(&v6).is_some(), "{events:?}");

        speaker.withdraw(&net(VIP_V4));
        eventually("the /32 withdrawn", Duration::from_secs(10), || {
            router
                .events()
                .contains(&format!("withdraw ipv4 unicast {VIP_V4}"))
                .then_some(())
        })
        .await;
        speaker.shutdown().await;
    });
    let events = eventually_blocking("shutdown seen by ExaBGP", Duration::from_secs(10), || {
        let events = router.events();
        events
            .iter()
            .any(|e| e.starts_with("notification"))
            .then_some(events)
    });
    let withdraw_v6 = events
        .iter()
        .position(|e| *e == format!("withdraw ipv6 unicast {VIP_V6}"));
    let cease = events.iter().position(|e| e == "notification 6/2");
    assert!(
        withdraw_v6.is_some() && cease.is_some() && withdraw_v6 < cease,
        "{events:?}"
    );
}
