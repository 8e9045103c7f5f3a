//! BGP announce benchmark: `cargo bench -p announcer --bench bgp` (root, gobgpd/gobgp).
//!
//! A gobgpd router in a namespace peers with (1) the FerroLB speaker and (2) a second gobgpd,
//! the "injector". For each size n, the speaker announces n host routes and we time until the
//! router's RIB holds all n (`ferrolb_ms`), then withdraw them all (`withdraw_ms`); then the
//! injector gets the same n routes through `gobgp mrt inject` (its batch path, one call) and we
//! time the same thing (`gobgp_ms`). gobgp 3.10's `mrt inject` drops the last few hundred
//! entries of a file, so the dump ends with 2,048 filler routes (100.64.0.0/16); we wait
//! until the router holds everything the injector kept and scale the time to n routes. RSS is this process's (the speaker's) resident memory
//! after the announce. Prints per size:
//! `bgp <n> ferrolb_ms=<x> gobgp_ms=<x> ratio=<gobgp/ferrolb> withdraw_ms=<x> rss_mb=<x>`.
//! Targets: 10,000 in under 1 s; not slower than gobgpd; RSS under 50 MiB at 100,000.
//!
//! Then the daemon itself: the real `ferrolb-announcer` process, peered with the gobgpd
//! router, gets n BGP announcements (198.18.0.0/15) in one `ctl sync`; once the router holds
//! all n, its resident memory is read from `/proc/<pid>/status` (VmRSS):
//! `bgp routes=<n> daemon_rss_mb=<x> sync_to_router_ms=<x>`.

#[path = "../tests/bgp_support/mod.rs"]
mod bgp_support;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use announcer::bgp::codec::{AsPath, CodecContext, Message, Origin, PathAttribute, Update};
use announcer::bgp::config::RouteAttributes;
use announcer::bgp::session::RouteSet;
use bgp_support::*;
use ipnet::{IpNet, Ipv4Net};

const INJECTOR_V4: &str = "192.0.2.3";
const INJECTOR_AS: u32 = 64514;

/// n host routes 10.0.0.0/32 upwards (no overlap with the test addresses).
fn prefixes(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).expect("/32")))
        .collect()
}

fn router_config() -> String {
    let neighbor = |address: &str, asn: u32| {
        format!(
            r#"[[neighbors]]
  [neighbors.config]
    neighbor-address = "{address}"
    peer-as = {asn}
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    hold-time = 30
    keepalive-interval = 10
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
        )
    };
    format!(
        "[global.config]\n  as = {ROUTER_AS}\n  router-id = \"{ROUTER_V4}\"\n  port = {ROUTER_PORT}\n  local-address-list = [\"{ROUTER_V4}\"]\n{}{}",
        neighbor(SPEAKER_V4, SPEAKER_AS),
        neighbor(INJECTOR_V4, INJECTOR_AS)
    )
}

fn injector_config() -> String {
    format!(
        r#"[global.config]
  as = {INJECTOR_AS}
  router-id = "{INJECTOR_V4}"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{ROUTER_V4}"
    peer-as = {ROUTER_AS}
  [neighbors.transport.config]
    remote-port = {ROUTER_PORT}
    local-address = "{INJECTOR_V4}"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 30
    keepalive-interval = 10
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}

/// An MRT TABLE_DUMP_V2 file (RFC 6396 §4.3) holding the routes, for `gobgp mrt inject`.
fn mrt_dump(routes: &[IpNet]) -> Vec<u8> {
    fn record(out: &mut Vec<u8>, subtype: u16, body: &[u8]) {
        out.extend_from_slice(&0u32.to_be_bytes()); // timestamp
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    // PEER_INDEX_TABLE: collector id, empty view name, one IPv4 peer with a 4-octet AS.
    let mut peers = Vec::new();
    peers.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 3).octets());
    peers.extend_from_slice(&0u16.to_be_bytes());
    peers.extend_from_slice(&1u16.to_be_bytes());
    peers.push(0b10);
    peers.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 3).octets());
    peers.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 3).octets());
    peers.extend_from_slice(&INJECTOR_AS.to_be_bytes());
    record(&mut out, 1, &peers);
    // The attributes as the codec writes them (4-octet AS_PATH, as RFC 6396 §4.3.4 wants).
    let update = Update {
        withdrawn: vec![],
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 3)),
        ],
        nlri: vec![],
    };
    let bytes = Message::Update(update)
        .to_bytes(CodecContext {
            four_octet_as: true,
        })
        .expect("small");
    let attrs = &bytes[19 + 4..];
    for (sequence, route) in routes.iter().enumerate() {
        let IpNet::V4(v4) = route else { continue };
        let mut body = Vec::new();
        body.extend_from_slice(&(sequence as u32).to_be_bytes());
        body.push(v4.prefix_len());
        body.extend_from_slice(&v4.network().octets()[..usize::from(v4.prefix_len()).div_ceil(8)]);
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated time
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        record(&mut out, 2, &body); // RIB_IPV4_UNICAST
    }
    out
}

/// Filler routes after the real ones in the MRT dump (see the module comment).
const FILLER: u32 = 2048;

fn filler() -> Vec<IpNet> {
    (0..FILLER)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x6440_0000 + i), 32).expect("/32")))
        .collect()
}

/// Routes in the router's IPv4 Loc-RIB (`gobgp global rib summary`).
fn rib_count(router_ns: &str) -> Option<u64> {
    count_in(router_ns, "50051")
}

/// Routes in the IPv4 Loc-RIB of the gobgpd whose API is on `port` in `ns`.
fn count_in(ns: &str, port: &str) -> Option<u64> {
    let text = try_run(&[
        "ip", "netns", "exec", ns, "gobgp", "-p", port, "global", "rib", "summary", "-a", "ipv4",
    ]);
    let after = text.split("Destination: ").nth(1)?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn wait_for_count(router_ns: &str, n: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if rib_count(router_ns) == Some(n) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "router never reached {n} routes");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_mb() -> f64 {
    rss_mb_of("self")
}

/// VmRSS of process `pid` ("self" for this one), MiB.
fn rss_mb_of(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");

/// The announcer daemon with n routes from one Sync: its own resident memory.
fn daemon_rss(n: u32) {
    let topology = Topology::new();
    let router_conf = topology.path("router.toml");
    write(&router_conf, &router_config());
    let _router = topology.spawn_router(
        &[
            "gobgpd",
            "-f",
            &router_conf.to_string_lossy(),
            "-p",
            "--api-hosts",
            "127.0.0.1:50051",
            "--pprof-disable",
        ],
        "router.log",
        &[],
    );
    let peers = topology.path("peers.json");
    write(
        &peers,
        &format!(
            r#"{{"peers": [{{"address": "{ROUTER_V4}", "peer_asn": {ROUTER_AS}, "local_asn": {SPEAKER_AS}, "port": {ROUTER_PORT}, "hold_time_seconds": 30, "connect_retry_seconds": 1}}]}}"#
        ),
    );
    let socket = topology
        .path("announcer.sock")
        .to_string_lossy()
        .into_owned();
    let server = format!("unix:{socket}");
    let daemon = topology.spawn_in(
        &topology.speaker_ns,
        &[
            BIN,
            "--bgp-config",
            &peers.to_string_lossy(),
            "--listen",
            &server,
            "--metrics-listen",
            "",
            "--bgp-restart-marker",
            "",
        ],
        "announcer.log",
        &[],
    );
    // `ip netns exec` execs the announcer: the child's pid is the daemon's.
    let pid = daemon.child.id().to_string();
    eventually_blocking("the announcer's session", Duration::from_secs(60), || {
        try_run(&[BIN, "ctl", "--server", &server, "peers", "list"])
            .contains("\"state\":\"established\"")
            .then_some(())
    });
    let entries: Vec<String> = (0..n)
        .map(|i| {
            let address = Ipv4Addr::from(0xc612_0000 + i); // 198.18.0.0/15
            format!(r#"{{"address":"{address}","mode":"bgp"}}"#)
        })
        .collect();
    let file = topology.path("set.json");
    write(&file, &format!("[{}]", entries.join(",")));
    let start = Instant::now();
    run(&[
        BIN,
        "ctl",
        "--server",
        &server,
        "sync",
        "--generation",
        "1",
        "--file",
        &file.to_string_lossy(),
    ]);
    wait_for_count(&topology.router_ns, u64::from(n), Duration::from_secs(300));
    let synced = start.elapsed();
    // Settled: what the daemon keeps while it holds the routes.
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "bgp routes={n} daemon_rss_mb={:.1} sync_to_router_ms={:.0}",
        rss_mb_of(&pid),
        synced.as_secs_f64() * 1000.0
    );
}

fn main() {
    if !prerequisites(&["gobgpd", "gobgp"]) {
        return;
    }
    for n in [10_000u32, 100_000] {
        daemon_rss(n);
    }
    for n in [10_000u32, 100_000] {
        let topology = Topology::new();
        run(&[
            "ip",
            "-n",
            &topology.speaker_ns,
            "addr",
            "add",
            &format!("{INJECTOR_V4}/24"),
            "dev",
            &topology.speaker_if,
        ]);
        let router_conf = topology.path("router.toml");
        write(&router_conf, &router_config());
        let _router = topology.spawn_router(
            &[
                "gobgpd",
                "-f",
                &router_conf.to_string_lossy(),
                "-p",
                "--api-hosts",
                "127.0.0.1:50051",
                "--pprof-disable",
            ],
            "router.log",
            &[],
        );
        let routes = prefixes(n);
        let dump = topology.path("routes.mrt");
        let mut injected = routes.clone();
        injected.extend(filler());
        std::fs::write(&dump, mrt_dump(&injected)).expect("write MRT");

        let (ferrolb, withdraw, rss) = topology.in_speaker_ns(|| async {
            let speaker = speaker();
            let mut peer = router_peer();
            peer.hold_time = 30;
            speaker.add_peer(peer).await.expect("peer");
            established(&speaker, ROUTER_V4.parse().expect("ip")).await;
            let set: RouteSet = routes
                .iter()
                .map(|p| (*p, RouteAttributes::default()))
                .collect();
            let start = Instant::now();
            speaker.set_routes(set);
            // Poll from a blocking thread so the speaker's runtime keeps sending.
            let ns = topology.router_ns.clone();
            let n64 = u64::from(n);
            tokio::task::spawn_blocking(move || wait_for_count(&ns, n64, Duration::from_secs(120)))
                .await
                .expect("poll");
            let ferrolb = start.elapsed();
            let rss = rss_mb();
            let start = Instant::now();
            speaker.set_routes(RouteSet::new());
            let ns = topology.router_ns.clone();
            tokio::task::spawn_blocking(move || wait_for_count(&ns, 0, Duration::from_secs(120)))
                .await
                .expect("poll");
            (ferrolb, start.elapsed(), rss)
        });

        let injector_conf = topology.path("injector.toml");
        write(&injector_conf, &injector_config());
        let _injector = topology.spawn_in(
            &topology.speaker_ns,
            &[
                "gobgpd",
                "-f",
                &injector_conf.to_string_lossy(),
                "-p",
                "--api-hosts",
                "127.0.0.1:50052",
                "--pprof-disable",
            ],
            "injector.log",
            &[],
        );
        let established_injector = || {
            let text = try_run(&[
                "ip",
                "netns",
                "exec",
                &topology.router_ns,
                "gobgp",
                "-p",
                "50051",
                "neighbor",
                INJECTOR_V4,
                "-j",
            ]);
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .filter(|v| v["state"]["session_state"] == 6)
                .map(|_| ())
        };
        eventually_blocking(
            "the injector session",
            Duration::from_secs(60),
            established_injector,
        );
        // The router's count is sampled from the start; once we know how many routes the
        // injector kept, the first sample holding them all gives the time.
        let samples = Arc::new(Mutex::new(Vec::<(Duration, u64)>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let sampler = {
            let (samples, stop, ns) = (samples.clone(), stop.clone(), topology.router_ns.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let count = rib_count(&ns).unwrap_or(0);
                    samples
                        .lock()
                        .expect("samples")
                        .push((start.elapsed(), count));
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let dump_path = dump.to_string_lossy().into_owned();
        run(&[
            "ip",
            "netns",
            "exec",
            &topology.speaker_ns,
            "gobgp",
            "-p",
            "50052",
            "mrt",
            "inject",
            "global",
            &dump_path,
        ]);
        // What the injector kept: the same count twice, 300 ms apart.
        let mut kept = 0;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = count_in(&topology.speaker_ns, "50052").unwrap_or(0);
            if now == kept && now > 0 {
                break;
            }
            kept = now;
        }
        assert!(
            kept >= u64::from(n),
            "the injector kept only {kept} of {n} routes"
        );
        wait_for_count(&topology.router_ns, kept, Duration::from_secs(300));
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        let complete = samples
            .lock()
            .expect("samples")
            .iter()
            .find(|(_, count)| *count >= kept)
            .map(|(at, _)| *at)
            .unwrap_or_else(|| start.elapsed());
        // Scaled from the `kept` routes (n plus the filler kept) to n.
        let gobgp = complete.mul_f64(f64::from(n) / kept as f64);

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "bgp {n} ferrolb_ms={:.0} gobgp_ms={:.0} ratio={:.2} withdraw_ms={:.0} rss_mb={:.1}",
            ms(ferrolb),
            ms(gobgp),
            ms(gobgp) / ms(ferrolb).max(0.001),
            ms(withdraw),
            rss
        );
    }
}
