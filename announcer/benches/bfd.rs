//! Node-death benchmark: `cargo bench -p announcer --bench bfd` (root, bird/birdc, nft).
//!
//! The speaker peers with BIRD 2 in a namespace and announces one /32. A "node death" is the
//! speaker's link cut both ways with nftables (no FIN, no Cease, no BFD AdminDown: exactly
//! what a dead node sends); we time from the cut until BIRD no longer holds the route
//! (`birdc` polled every 10 ms), then heal the link and wait for the route to come back.
//! 20 runs per case, in one run of the benchmark:
//! - `bfd_300ms_x3`: BFD at 300 ms × 3 on both sides (`bfd on` in BIRD), hold time 9 s;
//! - `hold_9s` and `hold_3s`: no BFD, the hold timer alone (keepalive a third of it).
//!
//! Prints per case `bfd <case> runs=20 p50_ms=<x> p99_ms=<x>` and then
//! `bfd ratio hold_9s/bfd p50=<x>` and `bfd ratio hold_3s/bfd p50=<x>`.
//! Goal: p99 under 1,000 ms with BFD.

#[path = "../tests/bfd_support/mod.rs"]
mod bfd_support;
#[path = "../tests/bgp_support/mod.rs"]
mod bgp_support;

use std::time::{Duration, Instant};

use bfd_support::*;
use bgp_support::*;

const RUNS: usize = 20;

struct Case {
    name: &'static str,
    bfd: bool,
    hold_seconds: u16,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn measure(case: &Case) -> Vec<f64> {
    let topology = Topology::new();
    let bird = Bird::start(
        &topology,
        BirdSetup {
            bfd: case.bfd,
            bfd_auth: "",
            hold_seconds: case.hold_seconds,
            multihop: false,
        },
    );
    topology.in_speaker_ns(|| async {
        let speaker = speaker();
        let mut peer = router_peer();
        peer.hold_time = case.hold_seconds;
        if case.bfd {
            peer.bfd = Some(bfd(None));
        }
        speaker.add_peer(peer).await.expect("peer added");
        speaker.announce(
            net(VIP_V4),
            announcer::bgp::config::RouteAttributes::default(),
        );
        let mut samples = Vec::with_capacity(RUNS);
        for run in 0..RUNS {
            eventually("the route at BIRD", Duration::from_secs(60), || {
                bird.has_route(VIP_V4).then_some(())
            })
            .await;
            if case.bfd {
                eventually("BFD Up at BIRD", Duration::from_secs(30), || {
                    (bird.bfd_state(SPEAKER_V4).as_deref() == Some("Up")).then_some(())
                })
                .await;
            }
            // Let a keepalive or two pass so runs do not all start in step with them.
            tokio::time::sleep(Duration::from_millis(700 + 97 * run as u64)).await;
            cut(&topology.speaker_ns);
            let start = Instant::now();
            loop {
                if bird.lacks_route(VIP_V4) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "route never left"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
            heal(&topology.speaker_ns);
        }
        samples
    })
}

fn main() {
    if !prerequisites(&["bird", "birdc", "nft"]) {
        return;
    }
    let cases = [
        Case {
            name: "bfd_300ms_x3",
            bfd: true,
            hold_seconds: 9,
        },
        Case {
            name: "hold_9s",
            bfd: false,
            hold_seconds: 9,
        },
        Case {
            name: "hold_3s",
            bfd: false,
            hold_seconds: 3,
        },
    ];
    let mut p50s = Vec::new();
    for case in &cases {
        let mut samples = measure(case);
        samples.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
        println!(
            "bfd {} runs={} p50_ms={p50:.0} p99_ms={p99:.0} min_ms={:.0} max_ms={:.0}",
            case.name,
            samples.len(),
            samples[0],
            samples[samples.len() - 1]
        );
        p50s.push(p50);
    }
    println!("bfd ratio hold_9s/bfd p50={:.1}", p50s[1] / p50s[0]);
    println!("bfd ratio hold_3s/bfd p50={:.1}", p50s[2] / p50s[0]);
}
