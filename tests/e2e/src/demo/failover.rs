//! Failover shown, not claimed: the client probes a layer2 Service's address with a new TCP
//! connection every 50 ms while the node announcing it dies (its announcer SIGKILLed and its
//! link set down). The report gives the interruption the probes measured — from the kill to
//! the first answer from another node — and then, once the node is back (link up, announcer
//! restarted and re-synced by the provider), that a further run of probes loses nothing and
//! the address stayed where it went (no preemption, docs/failover.md).

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::checks::{CHANGE, wait_reachable_at, wait_single_owner};
use crate::topology::Host;
use crate::wait_for;

use super::Demo;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: failover-demo
spec:
  type: LoadBalancer
  selector:
    app: failover-demo
  ports:
    - name: http
      port: 80
"#;

/// Time between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// How long a probe waits for the connection while the node dies: short, so the measured
/// interruption is not rounded up to a long timeout (a SYN to a dead MAC gets no answer).
const CONNECT_DURING_FAILOVER: Duration = Duration::from_millis(300);
/// How long a probe waits once the node is back: generous, so a loaded machine's stall is
/// not taken for a flap.
const CONNECT_AFTER_RETURN: Duration = Duration::from_secs(2);

/// One probe: when it started and who answered (None: no answer).
type Probe = (Instant, Option<String>);

/// TCP probes from a thread inside the client's namespace.
struct Prober {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    thread: JoinHandle<Result<(), String>>,
}

impl Prober {
    fn start(client: &Host, ip: &str, connect_timeout: Duration) -> Prober {
        let ip: IpAddr = ip
            .parse()
            .unwrap_or_else(|e| panic!("{ip:?} is not an address: {e}"));
        let ns_path = format!("/run/netns/{}", client.ns);
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let (stop_flag, record) = (stop.clone(), probes.clone());
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {ns_path}: {e}"))?;
            let target = SocketAddr::new(ip, 80);
            while !stop_flag.load(Ordering::SeqCst) {
                let started = Instant::now();
                let answer = probe(target, connect_timeout);
                if let Ok(mut list) = record.lock() {
                    list.push((started, answer));
                }
                std::thread::sleep(PROBE_INTERVAL.saturating_sub(started.elapsed()));
            }
            Ok(())
        });
        Prober {
            stop,
            probes,
            thread,
        }
    }

    fn finish(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the client's prober failed: {e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        self.probes.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The probes so far.
    fn seen(&self) -> Vec<Probe> {
        self.probes.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Who answered one new connection (`node-2` from `You've hit node-2`), or None.
fn probe(target: SocketAddr, connect_timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&target, connect_timeout).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, b)| b);
    body.trim().strip_prefix("You've hit ").map(str::to_string)
}

/// The failover scenario.
pub fn node_dies(demo: &mut Demo) {
    demo.report
        .section("Failover: the announcing node dies while the client probes");
    demo.apply("failover-demo.yaml", SERVICE);
    let ip = demo.external_ip("default", "failover-demo");
    let victim = wait_single_owner(&demo.cluster, &ip, "layer2", None);
    wait_reachable_at(&demo.cluster, &ip, &victim);
    demo.report.say(&format!(
        "{ip} is announced by {victim}; every node's own `You've hit <node>` server answers \
         behind it. The client opens a new TCP connection to {ip}:80 every 50 ms."
    ));
    let client = demo.cluster.host("client").clone();
    let prober = Prober::start(&client, &ip, CONNECT_DURING_FAILOVER);
    wait_for("the probes to reach the victim", CHANGE, || {
        let seen = prober.seen();
        let answered = seen
            .iter()
            .filter(|(_, a)| a.as_deref() == Some(&victim))
            .count();
        (answered >= 10)
            .then_some(())
            .ok_or(format!("{answered} answers"))
    });

    let node = demo.cluster.host(&victim).clone();
    let killed_at = Instant::now();
    node.exec_ok(&["ip", "link", "set", "eth0", "down"]);
    demo.cluster.kill_announcer(&victim);
    demo.report.say(&format!(
        "{victim}$ ip link set eth0 down; kill -9 <ferrolb-announcer>"
    ));
    let heir = wait_for(
        &format!("the client's probes to {ip} answered by a node other than {victim}"),
        CHANGE,
        || {
            prober
                .seen()
                .iter()
                .filter(|(at, _)| *at > killed_at)
                .find_map(|(_, a)| a.clone().filter(|n| *n != victim))
                .ok_or_else(|| "no answer from another node yet".to_string())
        },
    );
    // A second of answers after the takeover, then the figures.
    std::thread::sleep(Duration::from_secs(1));
    let probes = prober.finish();
    let before = probes
        .iter()
        .filter(|(at, a)| *at <= killed_at && a.is_some())
        .count();
    let first_after = probes
        .iter()
        .find(|(at, a)| *at > killed_at && a.as_deref() == Some(heir.as_str()))
        .map(|(at, _)| *at)
        .unwrap_or(killed_at);
    let lost = probes
        .iter()
        .filter(|(at, a)| *at > killed_at && a.is_none())
        .count();
    let interruption = first_after.duration_since(killed_at).as_millis();
    demo.report.measured(
        &format!(
            "Traffic interrupted for {{ms}} ms: {{before}} probes answered by {victim} before \
             the kill, then {{lost}} unanswered, then {heir} answered."
        ),
        &[
            ("ms", interruption.to_string()),
            ("before", before.to_string()),
            ("lost", lost.to_string()),
        ],
    );
    assert!(before > 0, "no probe reached {victim} before the kill");
    let owner = wait_single_owner(&demo.cluster, &ip, "layer2", Some(&victim));
    assert_eq!(
        owner, heir,
        "ctl state and the client disagree on the new holder"
    );
    wait_reachable_at(&demo.cluster, &ip, &heir);
    demo.report.say(&format!(
        "The client's neighbour entry for {ip} now holds {heir}'s MAC; {heir}'s announcer \
         reports it active."
    ));

    // The node comes back: link up (its IPv6 address is re-added, Linux drops it on link
    // down), announcer restarted; the provider re-syncs it.
    node.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    let v6 = format!("{}/64", node.ipv6);
    node.exec_ok(&["ip", "addr", "replace", &v6, "dev", "eth0", "nodad"]);
    demo.cluster.restart_announcer(&victim);
    demo.cluster.wait_announcers_connected();
    demo.report.say(&format!(
        "{victim}$ ip link set eth0 up; ferrolb-announcer started again (the provider re-syncs it)"
    ));
    let prober = Prober::start(&client, &ip, CONNECT_AFTER_RETURN);
    std::thread::sleep(Duration::from_secs(5));
    let probes = prober.finish();
    let answered_by_heir = probes
        .iter()
        .filter(|(_, a)| a.as_deref() == Some(heir.as_str()))
        .count();
    let owner = wait_single_owner(&demo.cluster, &ip, "layer2", None);
    assert_eq!(
        owner, heir,
        "{ip} moved back to {owner} when {victim} returned (a flap)"
    );
    assert_eq!(
        answered_by_heir,
        probes.len(),
        "after {victim} returned, some probes were lost or answered elsewhere: {:?}",
        probes.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>()
    );
    demo.report.measured(
        &format!(
            "{victim} is back: {{probes}} probes over 5 s, every one answered by {heir}; {ip} \
             stayed on {heir} (no flap)."
        ),
        &[("probes", probes.len().to_string())],
    );
    demo.delete_services("default", &["failover-demo"]);
}
