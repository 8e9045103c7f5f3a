//! Cluster mode end to end, BGP peers as objects: a `BGPPeer` (CRD as shipped) with a
//! nodeSelector and an MD5 password from a Secret reaches only the selected nodes' announcers,
//! and their sessions come up at a second, MD5-keyed BIRD; the status shows each node's
//! session and `kubectl get lbpeers` prints the counts. Widening the selector brings up only
//! the new node's session (BIRD receives no OPEN from the others); changing the hold time
//! replaces every session; deleting the object closes them, while the announcers' own peers
//! (from their flags) stay up throughout. The password never appears in a log.

use e2e as support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use support::bird::{NODE_ASN, ROUTER_ASN};
use support::cluster::{Cluster, NODES};
use support::daemon::Daemon;
use support::scenario::{cluster_with_provider, provider};
use support::wait_for;

/// The second router: another address of the router host, port 1179, MD5.
const TOR_ADDRESS: &str = "192.0.2.253";
const TOR_PORT: u16 = 1179;
const PASSWORD: &str = "rack-1-md5-secret";

struct Tor {
    daemon: Daemon,
    socket: PathBuf,
}

impl Tor {
    fn start(cluster: &Cluster) -> Tor {
        let router = cluster.host("router").clone();
        router.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{TOR_ADDRESS}/24"),
            "dev",
            "eth0",
        ]);
        let dir = cluster.dir.path();
        let config = format!(
            r#"router id {TOR_ADDRESS};
log stderr all;
protocol device {{ scan time 1; }}
protocol bgp tor {{
  local {TOR_ADDRESS} port {TOR_PORT} as {ROUTER_ASN};
  neighbor range 192.0.2.0/24 as {NODE_ASN};
  passive on;
  password "{PASSWORD}";
  hold time 9; keepalive time 3;
  debug {{ states, packets }};
  ipv4 {{ import all; export none; }};
}}
"#
        );
        let path = dir.join("tor.conf");
        std::fs::write(&path, config).expect("write tor.conf");
        let socket = dir.join("tor.ctl");
        let daemon = Daemon::spawn(
            "tor-bird",
            &router.ns,
            &[
                "bird",
                "-f",
                "-c",
                &path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
                "-P",
                &dir.join("tor.pid").to_string_lossy(),
            ],
            &[],
            dir,
        );
        Tor { daemon, socket }
    }

    /// Neighbours whose session is Established (`show protocols all`).
    fn established(&self) -> Vec<String> {
        let socket = self.socket.to_string_lossy().into_owned();
        let out = support::netns::try_output(&["birdc", "-s", &socket, "show", "protocols", "all"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut result = Vec::new();
        let mut established = false;
        for line in out.lines().map(str::trim) {
            if line.starts_with("BGP state:") {
                established = line.contains("Established");
            } else if let Some(address) = line.strip_prefix("Neighbor address:") {
                if established {
                    result.push(address.trim().to_string());
                }
                established = false;
            }
        }
        result.sort();
        result
    }

    /// OPEN messages received (BIRD's packet log).
    fn opens(&self) -> usize {
        self.daemon
            .log_text()
            .lines()
            .filter(|l| l.contains("Got OPEN"))
            .count()
    }
}

fn node_ips(cluster: &Cluster, nodes: &[&str]) -> Vec<String> {
    let mut ips: Vec<String> = nodes.iter().map(|n| cluster.host(n).ipv4.clone()).collect();
    ips.sort();
    ips
}

fn peer_object(selector: Value, hold: u32) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "BGPPeer",
        "metadata": {"name": "rack-1-tor"},
        "spec": {
            "peerAddress": TOR_ADDRESS, "peerASN": ROUTER_ASN, "localASN": NODE_ASN,
            "port": TOR_PORT, "holdTimeSeconds": hold, "families": ["ipv4-unicast"],
            "passwordSecret": {"name": "rack-1-tor-md5"},
            "nodeSelector": selector,
        },
    })
}

fn wait_tor(cluster: &Cluster, tor: &mut Tor, nodes: &[&str], what: &str) {
    let want = node_ips(cluster, nodes);
    wait_for(what, Duration::from_secs(40), || {
        tor.daemon.assert_running();
        let up = tor.established();
        (up == want).then_some(()).ok_or_else(|| {
            let socket = tor.socket.to_string_lossy().into_owned();
            let out =
                support::netns::try_output(&["birdc", "-s", &socket, "show", "protocols", "all"])
                    .map(|o| {
                        format!(
                            "{}{}",
                            String::from_utf8_lossy(&o.stdout),
                            String::from_utf8_lossy(&o.stderr)
                        )
                    })
                    .unwrap_or_else(|e| e.to_string());
            format!(
                "{up:?}; birdc:\n{out}\nBIRD log:\n{}",
                tor.daemon.log_tail(30)
            )
        })
    });
}

/// Waits until the object's status says `established` of `nodes` with Ready `ready`.
fn wait_status(cluster: &Cluster, nodes: u64, established: u64, ready: &str) -> Value {
    wait_for(
        &format!("BGPPeer status nodes={nodes} established={established} Ready={ready}"),
        Duration::from_secs(30),
        || {
            let object = cluster
                .kubectl
                .get("bgppeer", None, "rack-1-tor")
                .ok_or("no object")?;
            let status = &object["status"];
            let ok = status["nodes"] == nodes
                && status["established"] == established
                && status["conditions"][0]["status"] == ready
                && status["observedGeneration"] == object["metadata"]["generation"];
            ok.then(|| status.clone()).ok_or_else(|| status.to_string())
        },
    )
}

#[test]
fn a_bgppeer_object_reaches_only_its_nodes_with_the_secrets_password_and_follows_edits() {
    let Some(mut cluster) = cluster_with_provider("the cluster-mode e2e test (BGPPeer objects)")
    else {
        return;
    };
    let mut tor = Tor::start(&cluster);
    for (node, rack) in [("node-1", "r1"), ("node-2", "r1"), ("node-3", "r2")] {
        cluster
            .kubectl
            .ok(&["label", "node", node, &format!("rack={rack}")], None);
    }
    cluster.kubectl.apply(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "rack-1-tor-md5", "namespace": "kube-system",
                     "labels": {"ferrolb.io/bgp-password": "true"}},
        "stringData": {"password": PASSWORD},
    }));
    let crd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../manifests/provider/crd-bgppeers.yaml");
    cluster
        .kubectl
        .ok(&["apply", "-f", &crd.to_string_lossy()], None);
    // What the schema refuses is a 422 naming the field; what only the provider can judge is
    // an InvalidSpec condition naming the field, and the other objects go on.
    let mut bad = peer_object(json!({}), 9);
    bad["metadata"]["name"] = json!("bad-asn");
    bad["spec"]["peerASN"] = json!(0);
    let refused = cluster
        .kubectl
        .run(&["apply", "-f", "-"], Some(&bad.to_string()));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("spec.peerASN"),
        "{stderr}"
    );
    let mut bad = peer_object(json!({}), 2);
    bad["metadata"]["name"] = json!("bad-hold");
    cluster.kubectl.apply(&bad);
    cluster
        .kubectl
        .apply(&peer_object(json!({"matchLabels": {"rack": "r1"}}), 9));
    cluster
        .steps
        .log("BGPPeer rack-1-tor (rack=r1, MD5 from a Secret) applied");

    wait_tor(
        &cluster,
        &mut tor,
        &["node-1", "node-2"],
        "node-1 and node-2 Established at the MD5-keyed BIRD",
    );
    let status = wait_status(&cluster, 2, 2, "True");
    assert_eq!(status["conditions"][0]["reason"], "Established", "{status}");
    let sessions: Vec<(String, String)> = status["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["node"].as_str().unwrap_or("").to_string(),
                s["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        [
            ("node-1".to_string(), "Established".to_string()),
            ("node-2".to_string(), "Established".to_string())
        ]
    );
    // node-3 (rack r2) got no managed peer; every node keeps its own peer from its flags.
    let peers = cluster.ctl("node-3", &["peers", "list"]);
    assert!(
        peers
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["managed"] == false),
        "{peers}"
    );
    let peers = cluster.ctl("node-1", &["peers", "list"]);
    let managed: Vec<&Value> = peers
        .as_array()
        .expect("list")
        .iter()
        .filter(|p| p["managed"] == true)
        .collect();
    assert_eq!(managed.len(), 1, "{peers}");
    assert_eq!(managed[0]["address"], TOR_ADDRESS);
    assert_eq!(managed[0]["password_set"], true);
    let columns = cluster.kubectl.ok(&["get", "lbpeers"], None);
    let header: Vec<&str> = columns
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "ADDRESS", "ASN", "NODES", "ESTABLISHED", "AGE"],
        "{columns}"
    );
    let row: Vec<&str> = columns
        .lines()
        .find(|l| l.starts_with("rack-1-tor "))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        ["rack-1-tor", TOR_ADDRESS, "64512", "2", "2"],
        "{columns}"
    );
    cluster
        .steps
        .log(&format!("status and kubectl get lbpeers:\n{columns}"));
    let bad = cluster
        .kubectl
        .get("bgppeer", None, "bad-hold")
        .expect("bad-hold");
    let condition = &bad["status"]["conditions"][0];
    assert_eq!(condition["reason"], "InvalidSpec", "{bad}");
    assert_eq!(
        condition["message"],
        "spec.holdTimeSeconds: 2 must be 0 or 3..=65535 (RFC 4271 §4.2)"
    );
    cluster.kubectl.ok(&["delete", "bgppeer", "bad-hold"], None);
    let opens = tor.opens();
    assert_eq!(opens, 2, "{}", tor.daemon.log_tail(40));

    // Widen the selector: node-3's session comes up; node-1's and node-2's are untouched.
    cluster.kubectl.apply(&peer_object(
        json!({"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1", "r2"]}]}),
        9,
    ));
    wait_tor(&cluster, &mut tor, &NODES, "node-3 joins at BIRD");
    wait_status(&cluster, 3, 3, "True");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        tor.opens(),
        3,
        "only node-3 opened a session: {}",
        tor.daemon.log_tail(40)
    );
    cluster
        .steps
        .log("selector widened: node-3 Established, node-1/2 sent no new OPEN");

    // A provider restart (a new term with higher generations) sends the same sets again: every
    // announcer finds its peer unchanged and BIRD sees no new OPEN.
    cluster.stop_provider("p1", false);
    cluster.start_provider(&provider("p1-again", false, 18080));
    cluster.wait_announcers_connected();
    wait_for(
        "every announcer to take the new provider's identical peer set",
        Duration::from_secs(30),
        || {
            let pending: Vec<&str> = NODES
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    let log = cluster.announcers[*i]
                        .as_ref()
                        .map(|a| a.daemon.log_text())
                        .unwrap_or_default();
                    !log.lines().any(|l| {
                        l.contains("SyncPeers applied")
                            && l.contains("added=0 replaced=0 removed=0 unchanged=1")
                    })
                })
                .map(|(_, n)| *n)
                .collect();
            pending
                .is_empty()
                .then_some(())
                .ok_or(format!("{pending:?}"))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        tor.opens(),
        3,
        "the restart reopened sessions: {}",
        tor.daemon.log_tail(40)
    );
    assert_eq!(tor.established(), node_ips(&cluster, &NODES));
    cluster
        .steps
        .log("provider restarted: the same peer sets, sessions untouched (no OPEN)");

    // Change the hold time: every session is replaced (three more OPENs), and comes back.
    cluster.kubectl.apply(&peer_object(
        json!({"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1", "r2"]}]}),
        12,
    ));
    wait_for("three new OPENs at BIRD", Duration::from_secs(40), || {
        let n = tor.opens();
        (n == 6).then_some(()).ok_or(format!("{n} OPENs"))
    });
    wait_tor(
        &cluster,
        &mut tor,
        &NODES,
        "every node Established again after the change",
    );
    wait_status(&cluster, 3, 3, "True");

    // Delete: the sessions close; the announcers' own peers stay Established at the main BIRD.
    cluster
        .kubectl
        .ok(&["delete", "bgppeer", "rack-1-tor"], None);
    wait_tor(&cluster, &mut tor, &[], "every managed session closed");
    let closed = {
        let socket = tor.socket.to_string_lossy().into_owned();
        support::netns::try_output(&["birdc", "-s", &socket, "show", "protocols", "all"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    assert!(closed.contains("Peer de-configured"), "{closed}");
    assert_eq!(
        cluster.bird.established_neighbours(),
        node_ips(&cluster, &NODES)
    );
    for node in NODES {
        let peers = cluster.ctl(node, &["peers", "list"]);
        assert!(
            peers
                .as_array()
                .expect("list")
                .iter()
                .all(|p| p["managed"] == false),
            "{node}: {peers}"
        );
    }
    // The password was sent, never logged.
    for log in cluster.dir.path().read_dir().expect("dir").flatten() {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        let name = log.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") && name != "tor-bird.log" {
            assert!(!text.contains(PASSWORD), "{name} holds the password");
        }
    }
    cluster
        .steps
        .log("deleted: managed sessions closed (Cease/Peer De-configured), local peers up");
}
