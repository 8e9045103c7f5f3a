//! Layer-2 benchmark (`cargo bench -p announcer --bench l2`, as root): reply latency under
//! load, takeover time and memory.
//!
//! - A client namespace and two node namespaces on a bridge (the test support of
//!   `tests/common`); the real `ferrolb-announcer` (bench profile) runs in the nodes.
//! - Latency: 1,000 announced addresses (half IPv4, half IPv6); this same executable,
//!   re-run inside the client namespace (`--generator`), sends ARP requests and Neighbor
//!   Solicitations for them from a packet socket at a fixed rate (default 12,000/s, 24,000
//!   requests, at most 15 s) and times each reply. For comparison under the same machine load,
//!   the same addresses are then put in vip mode and the kernel's own replies are timed
//!   (`kernel_vip_*` in the details line).
//! - Takeover: withdraw on A, announce on B; the time from the Announce call returning to the
//!   client's kernel neighbour entry showing B's MAC (median of 6 moves, alternating).
//! - RSS: VmRSS of the announcer after a Sync of 10,000 addresses has settled.
//!
//! Prints `l2 reply_p50_us=<x> reply_p99_us=<x> takeover_ms=<x> rss_mb=<x>` and a line of
//! details. Targets: p99 < 1 ms, takeover < 100 ms, RSS < 20 MiB.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use announcer::l2::frame::{Frame, parse};
use announcer::l2::ndp::{NdpMessage, multicast_mac, solicited_node_group};
use announcer::l2::{Mac, arp};
use announcer::sys::packet::PacketSocket;
use common::{Announcer, Lan, run};
use etherparse::{Icmpv6Type, PacketBuilder};

const REQUESTS: usize = 24_000;
const RATE_PER_SECOND: u64 = 12_000;

fn addresses(count: usize) -> Vec<IpAddr> {
    let v4 = (count / 2).min(500);
    let mut out: Vec<IpAddr> = Vec::with_capacity(count);
    for i in 0..v4 {
        let (net, host) = if i < 250 {
            ([198, 51, 100], i + 1)
        } else {
            ([203, 0, 113], i - 249)
        };
        out.push(IpAddr::V4(Ipv4Addr::new(
            net[0], net[1], net[2], host as u8,
        )));
    }
    for i in 0..count - v4 {
        out.push(IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            (i >> 16) as u16,
            i as u16 + 1,
        )));
    }
    out
}

fn sync_file(addresses: &[IpAddr], mode: &str) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = addresses
        .iter()
        .map(|a| serde_json::json!({"address": a.to_string(), "mode": mode, "interface": "eth0"}))
        .collect();
    serde_json::to_vec(&entries).unwrap_or_default()
}

fn parse_mac(text: &str) -> Mac {
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(text.split(':')) {
        *slot = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    mac
}

fn request_frame(
    client_mac: Mac,
    client_v4: Ipv4Addr,
    client_v6: Ipv6Addr,
    target: IpAddr,
) -> Vec<u8> {
    match target {
        IpAddr::V4(v4) => {
            let request = arp::ArpMessage {
                op: arp::ArpOp::Request,
                eth_source: client_mac,
                sender_mac: client_mac,
                sender_ip: client_v4,
                target_mac: [0; 6],
                target_ip: v4,
            };
            // A request is a reply with the roles swapped; build it by hand instead.
            let mut frame = vec![0xff; 6];
            frame.extend_from_slice(&client_mac);
            frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
            frame.extend_from_slice(&request.sender_mac);
            frame.extend_from_slice(&request.sender_ip.octets());
            frame.extend_from_slice(&[0; 6]);
            frame.extend_from_slice(&request.target_ip.octets());
            frame.resize(60, 0);
            frame
        }
        IpAddr::V6(v6) => {
            let group = solicited_node_group(v6);
            let mut payload = v6.octets().to_vec();
            payload.extend_from_slice(&[1, 1]);
            payload.extend_from_slice(&client_mac);
            let builder = PacketBuilder::ethernet2(client_mac, multicast_mac(group))
                .ipv6(client_v6.octets(), group.octets(), 255)
                .icmpv6(Icmpv6Type::NeighborSolicitation);
            let mut frame = Vec::new();
            let _ = builder.write(&mut frame, &payload);
            frame
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs inside the client namespace: `--generator <client_mac> <v4> <v6> <file of addresses>`.
fn generator(args: &[String]) {
    let [client_mac, client_v4, client_v6, file] = args else {
        eprintln!("generator: expected <client_mac> <v4> <v6> <file>");
        std::process::exit(2);
    };
    let client_mac = parse_mac(client_mac);
    let client_v4: Ipv4Addr = client_v4.parse().expect("client IPv4");
    let client_v6: Ipv6Addr = client_v6.parse().expect("client IPv6");
    let targets: Vec<IpAddr> = std::fs::read_to_string(file)
        .expect("targets")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let frames: Vec<Vec<u8>> = targets
        .iter()
        .map(|t| request_frame(client_mac, client_v4, client_v6, *t))
        .collect();
    let ifindex = nix::net::if_::if_nametoindex("eth0").expect("eth0");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let socket = Arc::new(PacketSocket::open_async(ifindex).expect("packet socket (root?)"));
    let in_flight: Arc<Mutex<HashMap<IpAddr, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The sender paces requests on its own thread; the receiver runs on this one.
    let sender = {
        let (socket, in_flight, done) = (
            Arc::clone(&socket),
            Arc::clone(&in_flight),
            Arc::clone(&done),
        );
        std::thread::spawn(move || {
            let interval = Duration::from_nanos(1_000_000_000 / RATE_PER_SECOND);
            let start = Instant::now();
            let mut sent = 0usize;
            while sent < REQUESTS && start.elapsed() < Duration::from_secs(15) {
                let due = start + interval * sent as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let index = sent % frames.len();
                if let Ok(mut m) = in_flight.lock() {
                    m.insert(targets[index], Instant::now());
                }
                let _ = socket.get_ref().send(&frames[index]);
                sent += 1;
            }
            let elapsed = start.elapsed();
            std::thread::sleep(Duration::from_millis(200));
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            (sent, elapsed)
        })
    };

    let mut latencies: Vec<u64> = Vec::with_capacity(REQUESTS);
    runtime.block_on(async {
        let mut buf = [0u8; 2048];
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(Ok(mut guard)) =
                tokio::time::timeout(Duration::from_millis(50), socket.readable()).await
            else {
                continue;
            };
            loop {
                match guard.get_inner().recv(&mut buf) {
                    Ok((len, _)) => {
                        let now = Instant::now();
                        let answered = match parse(&buf[..len]) {
                            Ok(Some(Frame::Arp(m)))
                                if m.op == arp::ArpOp::Reply && m.target_ip == client_v4 =>
                            {
                                Some(IpAddr::V4(m.sender_ip))
                            }
                            Ok(Some(Frame::Ndp(NdpMessage::Advertisement(na)))) if na.solicited => {
                                Some(IpAddr::V6(na.target))
                            }
                            _ => None,
                        };
                        if let Some(address) = answered
                            && let Some(sent) =
                                in_flight.lock().ok().and_then(|mut m| m.remove(&address))
                        {
                            latencies.push(now.duration_since(sent).as_micros() as u64);
                        }
                    }
                    Err(_) => {
                        guard.clear_ready();
                        break;
                    }
                }
            }
        }
    });
    let (sent, elapsed) = sender.join().expect("sender");
    latencies.sort_unstable();
    println!(
        "{} {} {} {} {:.0} {}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        sent,
        latencies.len(),
        sent as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.9),
    );
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--generator") {
        generator(&args[2..]);
        return;
    }
    if !common::can_use_netns("bench l2") {
        return;
    }
    let lan = Lan::new(3);
    let (a, b, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    client.accept_unsolicited();
    let on_a = Announcer::start(a, &[]);
    let on_b = Announcer::start(b, &[]);

    // 1. Reply latency with 1,000 announced addresses.
    let targets = addresses(1_000);
    let file = on_a.write_file("1000.json", &sync_file(&targets, "layer2"));
    on_a.ctl_ok(&["sync", "--generation", "1", "--file", common::path(&file)]);
    let list = on_a.write_file(
        "targets.txt",
        targets
            .iter()
            .map(|t| format!("{t}\n"))
            .collect::<String>()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let exe = std::env::current_exe().expect("current exe");
    let generate = || {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            &client.ns,
            common::path(&exe),
            "--generator",
            &client.mac(),
            &client.ipv4,
            &client.ipv6,
            common::path(&list),
        ]);
        let figures: Vec<f64> = out
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [p50, p99, sent, answered, rate, p90] = figures[..] else {
            panic!("generator printed {out:?}")
        };
        (p50, p90, p99, sent, answered, rate)
    };
    let (p50, p90, p99, sent, answered, rate) = generate();

    // Baseline under the same load: the same addresses in vip mode, answered by the kernel.
    let vips = on_a.write_file("1000vip.json", &sync_file(&targets, "vip"));
    on_a.ctl_ok(&["sync", "--generation", "2", "--file", common::path(&vips)]);
    std::thread::sleep(Duration::from_secs(1));
    let (kernel_p50, kernel_p90, kernel_p99, ..) = generate();
    on_a.ctl_ok(&["sync", "--generation", "3", "--file", common::path(&file)]);

    // 2. Takeover A -> B -> A ..., from the Announce call returning to the client's entry.
    let vip = "192.0.2.50";
    on_a.ctl_ok(&["announce", vip]);
    assert!(
        client
            .wait_neighbour(vip, &a.mac(), Duration::from_secs(5))
            .is_some(),
        "client never learned {vip}"
    );
    let mut takeovers = Vec::new();
    let hosts = [(&on_a, a), (&on_b, b)];
    for round in 0..6 {
        let (from, _) = hosts[round % 2];
        let (to, to_host) = hosts[(round + 1) % 2];
        from.ctl_ok(&["withdraw", vip]);
        to.ctl_ok(&["announce", vip]);
        let took = client.wait_neighbour(vip, &to_host.mac(), Duration::from_secs(5));
        takeovers.push(
            took.map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(f64::INFINITY),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut sorted = takeovers.clone();
    sorted.sort_by(f64::total_cmp);
    let takeover_ms = sorted[sorted.len() / 2];

    // 3. RSS with 10,000 addresses.
    let many = addresses(10_000);
    let file = on_a.write_file("10000.json", &sync_file(&many, "layer2"));
    let synced = Instant::now();
    on_a.ctl_ok(&["sync", "--generation", "4", "--file", common::path(&file)]);
    let sync_ms = synced.elapsed().as_millis();
    std::thread::sleep(Duration::from_secs(7));
    let rss_mb = vm_rss_kib(on_a.child.id()) as f64 / 1024.0;

    println!(
        "l2 reply_p50_us={p50} reply_p99_us={p99} takeover_ms={takeover_ms:.1} rss_mb={rss_mb:.1}"
    );
    println!(
        "l2 details: reply_p90_us={p90} requests_sent={sent} replies_timed={answered} rate_per_s={rate} kernel_vip_p50_us={kernel_p50} kernel_vip_p90_us={kernel_p90} kernel_vip_p99_us={kernel_p99} takeovers_ms={takeovers:.1?} sync_10000_ms={sync_ms} load_avg={}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
}
