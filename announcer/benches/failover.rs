//! Failover benchmark against keepalived (`cargo bench -p announcer --bench failover`, as
//! root, with the Debian packages `keepalived` and `nftables`; see
//! scripts/install-test-deps.sh). Issue #11, points 5 and 7.
//!
//! One topology for every case (`tests/failover_support`): node-a, node-b, node-c and a
//! client with the kernel's default sysctls on one bridge.
//!
//! - FerroLB cases: the real `ferrolb-announcer` (bench profile) on every node, address
//!   192.0.2.10 in layer-2 mode, candidates node-a, node-b, node-c; every node accepts the
//!   address on a local route, as kube-proxy would.
//! - keepalived cases: keepalived (VRRPv3, unicast peers, `nopreempt` like FerroLB's default,
//!   priorities 150/100/50) on the same nodes, VIP 192.0.2.20 on eth0.
//!
//! Each case runs 20 failovers. A failover crashes the current owner (link down, then SIGKILL
//! to every process of its daemon: nothing it would send when dying gets out) while the
//! client sends an ICMP echo to the address every 10 ms from a raw socket. Interruption =
//! from the instant the link is down (`ip link set eth0 down` has returned; the SIGKILL
//! follows at once) to the first echo reply to a probe sent after it; lost = probes sent in
//! between. (Timing from before the `ip` command would let a probe sent during its few
//! milliseconds be answered by the dying owner and count as a 0 ms failover.) The crashed node then comes back as a rebooted machine
//! (link up, no VIP on it, the daemon restarted) and must settle as a backup before the next
//! failover, which crashes the new owner.
//!
//! Cost (point 5): one announcer whose 10,000 addresses have candidate lists naming it first
//! and 99 fake peers (addresses of a sink host on the LAN that drops heartbeats); heartbeat
//! packets counted by an nftables counter on its output, CPU from /proc/<pid>/stat, over
//! 10 s.
//!
//! Prints `failover <case> runs=20 p50_ms=… p99_ms=… max_ms=… lost_probes_p50=…` per case,
//! `failover ratio_vs_keepalived=…` (FerroLB p50 / keepalived p50, both at 100 ms) and
//! `failover cost nodes=100 addresses=10000 pps_out=… cpu_percent=…`, each with a details
//! line. Arguments that do not start with `--` select cases by substring (`ferrolb`,
//! `keepalived`, `100ms`, `cost`); `FAILOVER_DEBUG=1` prints every failover,
//! `FAILOVER_COST_ADDRESSES=<n>` and `FAILOVER_COST_PEERS=<n>` change the address and fake
//! peer counts of the cost case.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/failover_support/mod.rs"]
mod failover_support;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Host, run, try_run};
use failover_support::{Cluster, Entry};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const RUNS: usize = 20;
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
const FERROLB_ADDRESS: &str = "192.0.2.10";
const KEEPALIVED_ADDRESS: &str = "192.0.2.20";
/// A failover that has not restored traffic after this long counts as failed.
const GIVE_UP: Duration = Duration::from_secs(20);

/// The client's ICMP echo log: when each probe (index = sequence number) was sent and when
/// its reply came.
#[derive(Default)]
struct ProbeLog {
    sent: Vec<Instant>,
    replied: Vec<Option<Instant>>,
}

/// Sends an echo request to `target` every 10 ms from a raw socket opened inside the client
/// namespace (on its own thread) and records the replies.
struct Prober {
    log: Arc<Mutex<ProbeLog>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![8, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"ferrolb failover probe..");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

impl Prober {
    fn start(client: &Host, target: Ipv4Addr) -> Prober {
        let log = Arc::new(Mutex::new(ProbeLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ns_path = format!("/run/netns/{}", client.ns);
        let id = (std::process::id() & 0xffff) as u16;
        let thread = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                let ns = std::fs::File::open(&ns_path).expect("open client namespace");
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                    .expect("raw ICMP socket");
                let to = SockAddr::from(SocketAddrV4::new(target, 0));
                let mut next = Instant::now();
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next {
                        let mut log = log.lock().expect("log");
                        let seq = log.sent.len() as u16;
                        log.sent.push(Instant::now());
                        log.replied.push(None);
                        drop(log);
                        let _ = socket.send_to(&echo_request(id, seq), &to);
                        next += PROBE_INTERVAL;
                        continue;
                    }
                    // At least 1 ms: a timeout that rounds down to zero would block forever.
                    let wait = (next - now).max(Duration::from_millis(1));
                    let _ = socket.set_read_timeout(Some(wait));
                    let Ok(len) = (&socket).read(&mut buf) else {
                        continue;
                    };
                    let received = Instant::now();
                    // IPv4 header, then ICMP: type 0 (echo reply), id, seq.
                    let ihl = usize::from(buf[0] & 0x0f) * 4;
                    if len < ihl + 8 || buf[ihl] != 0 || buf[12..16] != target.octets() {
                        continue;
                    }
                    let got_id = u16::from_be_bytes([buf[ihl + 4], buf[ihl + 5]]);
                    let seq = usize::from(u16::from_be_bytes([buf[ihl + 6], buf[ihl + 7]]));
                    if got_id != id {
                        continue;
                    }
                    let mut log = log.lock().expect("log");
                    if let Some(slot) = log.replied.get_mut(seq)
                        && slot.is_none()
                    {
                        *slot = Some(received);
                    }
                }
            })
        };
        Prober {
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until the last `n` probes sent were all answered.
    fn wait_steady(&self, n: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            {
                let log = self.log.lock().expect("log");
                // The newest probe may still be in flight.
                let answered = log.replied.iter().rev().skip(1).take(n);
                if log.replied.len() > n && answered.clone().all(Option::is_some) {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// After a crash at `crashed`: (interruption, lost probes) once a probe sent after it is
    /// answered, or None after `timeout`.
    fn wait_recovered(&self, crashed: Instant, timeout: Duration) -> Option<(Duration, usize)> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            {
                let log = self.log.lock().expect("log");
                let after: Vec<usize> = (0..log.sent.len())
                    .filter(|&i| log.sent[i] >= crashed)
                    .collect();
                if let Some(&first) = after.iter().find(|&&i| log.replied[i].is_some()) {
                    let replied = log.replied[first].unwrap_or(crashed);
                    let lost = after.iter().take_while(|&&i| i < first).count();
                    return Some((replied.duration_since(crashed), lost));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The figures of one case.
struct CaseResult {
    name: String,
    interruptions_ms: Vec<f64>,
    lost: Vec<usize>,
    failed: usize,
    /// Rounds restarted because the owner changed before the crash (see `run_case`).
    unplanned_moves: usize,
}

fn percentile<T: Copy + PartialOrd>(values: &[T], p: f64) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied()
}

impl CaseResult {
    fn p50_ms(&self) -> f64 {
        percentile(&self.interruptions_ms, 0.5).unwrap_or(f64::NAN)
    }

    fn print(&self) {
        let p = |q| percentile(&self.interruptions_ms, q).unwrap_or(f64::NAN);
        println!(
            "failover {} runs={} p50_ms={:.0} p99_ms={:.0} max_ms={:.0} lost_probes_p50={}",
            self.name,
            self.interruptions_ms.len(),
            p(0.5),
            p(0.99),
            p(1.0),
            percentile(&self.lost, 0.5).unwrap_or(0)
        );
        let runs: Vec<String> = self
            .interruptions_ms
            .iter()
            .map(|ms| format!("{ms:.0}"))
            .collect();
        println!(
            "failover {} details: failed_runs={} unplanned_moves={} min_ms={:.0} interruptions_ms=[{}] lost_max={}",
            self.name,
            self.failed,
            self.unplanned_moves,
            p(0.0),
            runs.join(","),
            self.lost.iter().max().copied().unwrap_or(0)
        );
    }
}

/// A daemon that answers for one address on the cluster's nodes: FerroLB or keepalived.
trait Daemon {
    /// Starts it on node `i` (which has none running).
    fn start(&mut self, cluster: &mut Cluster, i: usize);
    /// Crashes node `i`: link down, then SIGKILL to its processes; returns the instant the
    /// link was down.
    fn crash(&mut self, cluster: &mut Cluster, i: usize) -> Instant;
    /// The node that answers, when exactly one does and every other is a settled backup.
    fn settled_owner(&self, cluster: &Cluster) -> Option<usize>;
    fn address(&self) -> Ipv4Addr;
    fn stop_all(&mut self, cluster: &mut Cluster);
}

struct Ferrolb;

impl Daemon for Ferrolb {
    fn start(&mut self, cluster: &mut Cluster, i: usize) {
        cluster.start(i, &[]);
    }

    fn crash(&mut self, cluster: &mut Cluster, i: usize) -> Instant {
        cluster.crash(i)
    }

    fn settled_owner(&self, cluster: &Cluster) -> Option<usize> {
        let owner = cluster
            .views(FERROLB_ADDRESS)
            .iter()
            .position(|(_, phase, _)| phase == "active")?;
        let owner = (0..cluster.nodes.len())
            .filter(|i| cluster.nodes[*i].announcer.is_some())
            .nth(owner)?;
        cluster.settled_on(FERROLB_ADDRESS, owner).then_some(owner)
    }

    fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 10)
    }

    fn stop_all(&mut self, cluster: &mut Cluster) {
        for node in &mut cluster.nodes {
            node.announcer = None;
        }
    }
}

/// keepalived on every node, each with its own config, pid files and log.
struct Keepalived {
    /// `advert_int` in seconds; None leaves keepalived's default (1 s).
    advert_int: Option<&'static str>,
    dir: tempfile::TempDir,
    processes: Vec<Option<Child>>,
}

impl Keepalived {
    fn new(nodes: usize, advert_int: Option<&'static str>) -> Keepalived {
        Keepalived {
            advert_int,
            dir: tempfile::tempdir().expect("tempdir"),
            processes: (0..nodes).map(|_| None).collect(),
        }
    }

    fn config(&self, cluster: &Cluster, i: usize) -> String {
        let me = &cluster.nodes[i];
        let peers: String = cluster
            .nodes
            .iter()
            .filter(|n| n.name != me.name)
            .map(|n| format!("    {}\n", n.host.ipv4))
            .collect();
        let advert = self
            .advert_int
            .map(|a| format!("  advert_int {a}\n"))
            .unwrap_or_default();
        format!(
            "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n\
             vrrp_instance flb {{\n  state BACKUP\n  nopreempt\n  interface eth0\n  \
             virtual_router_id 51\n  priority {priority}\n{advert}  unicast_src_ip {src}\n  \
             unicast_peer {{\n{peers}  }}\n  virtual_ipaddress {{\n    {vip}/32 dev eth0\n  }}\n}}\n",
            name = me.name,
            priority = 150 - 50 * i,
            src = me.host.ipv4,
            vip = KEEPALIVED_ADDRESS,
        )
    }

    fn file(&self, i: usize, suffix: &str) -> PathBuf {
        self.dir.path().join(format!("node{i}.{suffix}"))
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.file(i, "log")).unwrap_or_default()
    }

    /// The keepalived parent and its children (the VRRP process), by PID.
    fn pids(&self, i: usize) -> Vec<i32> {
        let Some(child) = &self.processes[i] else {
            return Vec::new();
        };
        let parent = child.id() as i32;
        let mut pids = vec![parent];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
        pids
    }

    fn kill(&mut self, i: usize) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pids = self.pids(i);
        // Stop all first so that the parent neither restarts a child nor lets one exit
        // gracefully (the children die with SIGTERM when the parent dies).
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGSTOP);
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if let Some(mut child) = self.processes[i].take() {
            let _ = child.wait();
        }
        // The VRRP child is reparented to us (a child subreaper): reap it.
        for pid in pids.iter().skip(1) {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(*pid), None);
        }
    }

    fn has_vip(cluster: &Cluster, i: usize) -> bool {
        let out = try_run(&[
            "ip",
            "-n",
            &cluster.nodes[i].host.ns,
            "-br",
            "addr",
            "show",
            "dev",
            "eth0",
        ]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("{KEEPALIVED_ADDRESS}/32"))
    }
}

impl Daemon for Keepalived {
    fn start(&mut self, cluster: &mut Cluster, i: usize) {
        let config = self.file(i, "conf");
        std::fs::write(&config, self.config(cluster, i)).expect("write keepalived.conf");
        for suffix in ["pid", "vrrp.pid", "checkers.pid"] {
            let _ = std::fs::remove_file(self.file(i, suffix));
        }
        let log = std::fs::File::create(self.file(i, "log")).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &cluster.nodes[i].host.ns, "keepalived"])
            .args(["--dont-fork", "--log-console", "--log-detail", "--vrrp"])
            .arg("--use-file")
            .arg(&config)
            .arg("--pid")
            .arg(self.file(i, "pid"))
            .arg("--vrrp_pid")
            .arg(self.file(i, "vrrp.pid"))
            .arg("--checkers_pid")
            .arg(self.file(i, "checkers.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn keepalived");
        self.processes[i] = Some(child);
    }

    fn crash(&mut self, cluster: &mut Cluster, i: usize) -> Instant {
        run(&[
            "ip",
            "-n",
            &cluster.nodes[i].host.ns,
            "link",
            "set",
            "eth0",
            "down",
        ]);
        let down = Instant::now();
        self.kill(i);
        down
    }

    fn settled_owner(&self, cluster: &Cluster) -> Option<usize> {
        let holders: Vec<usize> = (0..cluster.nodes.len())
            .filter(|i| Keepalived::has_vip(cluster, *i))
            .collect();
        let [owner] = holders[..] else {
            return None;
        };
        // Every other node runs and the last state its keepalived entered is BACKUP.
        let backups_ready = (0..cluster.nodes.len()).filter(|i| *i != owner).all(|i| {
            let log = self.log(i);
            let backup = log.rfind("Entering BACKUP STATE");
            self.processes[i].is_some()
                && backup.is_some()
                && log.rfind("Entering MASTER STATE") < backup
                && log.rfind("Entering FAULT STATE") < backup
        });
        (self.processes[owner].is_some() && backups_ready).then_some(owner)
    }

    fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 20)
    }

    fn stop_all(&mut self, cluster: &mut Cluster) {
        for i in 0..self.processes.len() {
            self.kill(i);
            let _ = try_run(&[
                "ip",
                "-n",
                &cluster.nodes[i].host.ns,
                "addr",
                "del",
                &format!("{KEEPALIVED_ADDRESS}/32"),
                "dev",
                "eth0",
            ]);
        }
    }
}

/// Waits for a settled owner; None after `timeout`.
fn wait_owner(daemon: &dyn Daemon, cluster: &Cluster, timeout: Duration) -> Option<usize> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(owner) = daemon.settled_owner(cluster) {
            return Some(owner);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Runs [`RUNS`] failovers of `daemon` (already started and settled on every node).
fn run_case(
    name: &str,
    daemon: &mut dyn Daemon,
    cluster: &mut Cluster,
    settle: Duration,
) -> CaseResult {
    let mut result = CaseResult {
        name: name.to_string(),
        interruptions_ms: Vec::new(),
        lost: Vec::new(),
        failed: 0,
        unplanned_moves: 0,
    };
    let client = cluster.clients[0].clone();
    for round in 0..RUNS {
        // The owner to crash: settled, still the owner after `settle` and the probes, and the
        // node the client's neighbour entry points at. A restarted node that claims the
        // address while settling (an unplanned move) makes the round start over.
        let address = daemon.address().to_string();
        let mut ready = None;
        for _ in 0..5 {
            let Some(owner) = wait_owner(daemon, cluster, GIVE_UP) else {
                break;
            };
            std::thread::sleep(settle);
            let prober = Prober::start(&client, daemon.address());
            let steady = prober.wait_steady(20, Duration::from_secs(10));
            let mac = cluster.nodes[owner].host.mac();
            if steady
                && daemon.settled_owner(cluster) == Some(owner)
                && client.neighbour(&address) == Some(mac)
            {
                ready = Some((owner, prober));
                break;
            }
            result.unplanned_moves += 1;
            if std::env::var_os("FAILOVER_DEBUG").is_some() {
                eprintln!(
                    "{name} round {round}: not ready: owner {owner} steady {steady} now {:?} client entry {:?}",
                    daemon.settled_owner(cluster),
                    client.neighbour(&address)
                );
            }
        }
        let Some((owner, prober)) = ready else {
            eprintln!("{name} round {round}: no settled owner; giving up the case");
            result.failed += RUNS - round;
            break;
        };
        let before = client.neighbour(&address);
        let crashed = daemon.crash(cluster, owner);
        match prober.wait_recovered(crashed, GIVE_UP) {
            Some((interruption, lost)) => {
                result
                    .interruptions_ms
                    .push(interruption.as_secs_f64() * 1000.0);
                result.lost.push(lost);
                if std::env::var_os("FAILOVER_DEBUG").is_some() {
                    let after = client.neighbour(&daemon.address().to_string());
                    let macs: Vec<String> = cluster.nodes.iter().map(|n| n.host.mac()).collect();
                    eprintln!(
                        "{name} round {round}: crashed node {owner} {interruption:?} lost {lost} client entry before {before:?} after {after:?} node MACs {macs:?}"
                    );
                }
            }
            None => {
                eprintln!(
                    "{name} round {round}: no answer {GIVE_UP:?} after crashing {}",
                    cluster.nodes[owner].name
                );
                result.failed += 1;
            }
        }
        drop(prober);
        // The crashed node comes back as a rebooted machine: link up, no VIP, daemon started.
        let _ = try_run(&[
            "ip",
            "-n",
            &cluster.nodes[owner].host.ns,
            "addr",
            "del",
            &format!("{KEEPALIVED_ADDRESS}/32"),
            "dev",
            "eth0",
        ]);
        cluster.link_up(owner);
        daemon.start(cluster, owner);
    }
    result
}

/// 10,000 documentation addresses: 500 IPv4, the rest IPv6.
fn many_addresses(count: usize) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(count);
    for i in 0..count.min(500) {
        let (net, host) = if i < 250 {
            ([198, 51, 100], i + 1)
        } else {
            ([203, 0, 113], i - 249)
        };
        out.push(IpAddr::V4(Ipv4Addr::new(
            net[0], net[1], net[2], host as u8,
        )));
    }
    for i in 0..count.saturating_sub(500) {
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

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// (packets, bytes) of the first counter in an nft table listing.
fn nft_counter(ns: &str, table: &str) -> (u64, u64) {
    let out = try_run(&[
        "ip", "netns", "exec", ns, "nft", "list", "table", "inet", table,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |key: &str| {
        words
            .windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(0)
    };
    (after("packets"), after("bytes"))
}

/// Point 5: heartbeat packets per second and CPU of one announcer that owns 10,000 addresses
/// whose candidates are 100 nodes.
fn cost(interval: Option<&str>) {
    // FAILOVER_COST_PEERS overrides the number of fake peers (99).
    let peer_count: usize = std::env::var("FAILOVER_COST_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (2..=150).contains(n))
        .unwrap_or(99);
    // FAILOVER_COST_ADDRESSES overrides the count, to see how the cost grows with it.
    let addresses: usize = std::env::var("FAILOVER_COST_ADDRESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let flags: Vec<&str> = match interval {
        Some(i) => vec!["--heartbeat-interval", i],
        None => Vec::new(),
    };
    let mut cluster = Cluster::new(1, 1, &flags);
    let sink = cluster.clients[0].clone();
    let peer_ip = |p: usize| format!("192.0.2.{}", 100 + p);
    let batch: String = (1..=peer_count)
        .map(|p| format!("addr add {}/24 dev eth0\n", peer_ip(p)))
        .collect();
    let batch_file = std::env::temp_dir().join(format!("flb-cost-{}.batch", std::process::id()));
    std::fs::write(&batch_file, batch).expect("batch");
    run(&["ip", "-n", &sink.ns, "-batch", common::path(&batch_file)]);
    let _ = std::fs::remove_file(&batch_file);
    let node_ns = cluster.nodes[0].host.ns.clone();
    let nft = |ns: &str, args: &[&str]| {
        let mut full = vec!["ip", "netns", "exec", ns, "nft"];
        full.extend_from_slice(args);
        run(&full);
    };
    let port = failover_support::HEARTBEAT_PORT.to_string();
    nft(&node_ns, &["add", "table", "inet", "flbcost"]);
    nft(
        &node_ns,
        &[
            "add",
            "chain",
            "inet",
            "flbcost",
            "out",
            "{ type filter hook output priority 0; }",
        ],
    );
    nft(
        &node_ns,
        &[
            "add", "rule", "inet", "flbcost", "out", "udp", "dport", &port, "counter",
        ],
    );
    // The fake peers never answer, and the sink's kernel sends no ICMP errors back.
    nft(&sink.ns, &["add", "table", "inet", "flbcost"]);
    nft(
        &sink.ns,
        &[
            "add",
            "chain",
            "inet",
            "flbcost",
            "in",
            "{ type filter hook input priority 0; }",
        ],
    );
    nft(
        &sink.ns,
        &[
            "add", "rule", "inet", "flbcost", "in", "udp", "dport", &port, "counter", "drop",
        ],
    );

    cluster.start(0, &[]);
    let me = cluster.nodes[0].name.clone();
    let peers: Vec<String> = (1..=peer_count).map(|p| format!("peer-{p:02}")).collect();
    // Every address: this node first, then two of the 99 peers, so that every peer is a
    // candidate of some 300 addresses, as in a 100-node cluster with 3 candidates each.
    let entries: Vec<serde_json::Value> = many_addresses(addresses)
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({"address": a.to_string(), "mode": "layer2", "interface": "eth0",
                "candidates": [me, peers[i % peer_count], peers[(i + 1) % peer_count]]})
        })
        .collect();
    let file = cluster
        .announcer(0)
        .write_file("cost.json", &serde_json::to_vec(&entries).expect("json"));
    let mut args: Vec<String> = vec![
        "sync".into(),
        "--generation".into(),
        "1".into(),
        "--node".into(),
        me.clone(),
        "--heartbeat-key-file".into(),
        common::path(&cluster.key_file).into(),
        "--failover-peer".into(),
        format!("{me}={}", cluster.nodes[0].host.ipv4),
    ];
    for (p, name) in peers.iter().enumerate() {
        args.push("--failover-peer".into());
        args.push(format!("{name}={}", peer_ip(p + 1)));
    }
    args.push("--file".into());
    args.push(common::path(&file).into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cluster.announcer(0).ctl_ok(&args);
    // Let it claim everything (its peers are silent) and settle.
    std::thread::sleep(Duration::from_secs(5));
    let active = cluster.announcer(0).ctl_ok(&["state"])["announcements"]
        .as_array()
        .map(|l| l.iter().filter(|a| a["phase"] == "active").count())
        .unwrap_or(0);

    let pid = cluster.announcer(0).child.id();
    let ticks_per_s: f64 = String::from_utf8_lossy(&try_run(&["getconf", "CLK_TCK"]).stdout)
        .trim()
        .parse()
        .unwrap_or(100.0);
    let window = Duration::from_secs(10);
    let (packets0, bytes0) = nft_counter(&node_ns, "flbcost");
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(window);
    let elapsed = start.elapsed().as_secs_f64();
    let (packets1, bytes1) = nft_counter(&node_ns, "flbcost");
    let cpu1 = cpu_ticks(pid);
    let pps = (packets1 - packets0) as f64 / elapsed;
    let cpu_percent = (cpu1 - cpu0) as f64 / ticks_per_s / elapsed * 100.0;
    let (sink_packets, _) = nft_counter(&sink.ns, "flbcost");
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    println!(
        "failover cost nodes={} addresses={addresses} pps_out={pps:.0} cpu_percent={cpu_percent:.1}",
        peer_count + 1
    );
    println!(
        "failover cost details: heartbeat_interval={} active_addresses={active} bytes_per_s_out={:.0} bytes_per_packet={:.0} pps_per_peer={:.1} sink_received_total={sink_packets} rss={rss_kib}",
        interval.unwrap_or("default"),
        (bytes1 - bytes0) as f64 / elapsed,
        if packets1 > packets0 {
            (bytes1 - bytes0) as f64 / (packets1 - packets0) as f64
        } else {
            0.0
        },
        pps / peer_count as f64,
    );
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |case: &str| filters.is_empty() || filters.iter().any(|f| case.contains(f.as_str()));
    if !common::netns_tools("bench failover", &["keepalived", "nft"]) {
        return;
    }
    // keepalived's VRRP process outlives its killed parent: adopt it so it can be reaped.
    let _ = nix::sys::prctl::set_child_subreaper(true);

    let mut results: Vec<CaseResult> = Vec::new();
    let ferrolb_cases: [(&str, &[&str]); 2] = [
        ("ferrolb-default", &[]),
        ("ferrolb-100ms", &["--heartbeat-interval", "100ms"]),
    ];
    let keepalived_cases = [
        ("keepalived-default", None),
        ("keepalived-100ms", Some("0.1")),
    ];
    if ferrolb_cases
        .iter()
        .map(|c| c.0)
        .chain(keepalived_cases.iter().map(|c| c.0))
        .any(wanted)
    {
        let mut cluster = Cluster::new(3, 1, &[]);
        cluster.accept_locally(FERROLB_ADDRESS);
        for (name, flags) in ferrolb_cases {
            if !wanted(name) {
                continue;
            }
            cluster.flags = flags.iter().map(|f| f.to_string()).collect();
            cluster.entries.clear();
            cluster.start_all();
            cluster.sync(&[Entry::new(
                FERROLB_ADDRESS,
                "layer2",
                &["node-a", "node-b", "node-c"],
            )]);
            let mut daemon = Ferrolb;
            let result = run_case(name, &mut daemon, &mut cluster, Duration::from_millis(500));
            result.print();
            results.push(result);
            daemon.stop_all(&mut cluster);
        }
        for (name, advert_int) in keepalived_cases {
            if !wanted(name) {
                continue;
            }
            let mut daemon = Keepalived::new(cluster.nodes.len(), advert_int);
            for i in 0..cluster.nodes.len() {
                daemon.start(&mut cluster, i);
            }
            let settle = Duration::from_millis(500);
            let result = run_case(name, &mut daemon, &mut cluster, settle);
            result.print();
            if result.failed > 0 {
                for i in 0..cluster.nodes.len() {
                    let log = daemon.log(i);
                    let tail: Vec<&str> = log.lines().rev().take(10).collect();
                    eprintln!("keepalived node {i} log tail: {tail:?}");
                }
            }
            results.push(result);
            daemon.stop_all(&mut cluster);
        }
    }
    let p50 = |name: &str| {
        results
            .iter()
            .find(|r| r.name == name)
            .map(CaseResult::p50_ms)
    };
    if let (Some(ours), Some(theirs)) = (p50("ferrolb-100ms"), p50("keepalived-100ms")) {
        println!("failover ratio_vs_keepalived={:.2}", ours / theirs);
    }
    if wanted("cost") {
        cost(None);
    }
}
