//! The announcer as `manifests/announcer/daemonset.yaml` deploys it: with exactly the
//! capabilities the manifest adds (as the bounding set, the rest dropped), a passive BGP peer
//! on port 179 can be added — the listener binds the node's port 179. Without
//! `NET_BIND_SERVICE` the same request fails naming the peer, the address and the errno,
//! which is what an older manifest gets. Real binary, `ctl` over the Unix socket, a network
//! namespace of its own (root; fails under `CI=true` without it).

#[path = "netns/mod.rs"]
mod netns;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-announcer");

/// The `capabilities.add` list of the DaemonSet's container, lower-case without `CAP_`.
fn deployed_capabilities() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/announcer/daemonset.yaml");
    let text = std::fs::read_to_string(&path).expect("read the DaemonSet");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("add: ["))
        .unwrap_or_else(|| panic!("{}: no `add: [...]` capabilities line", path.display()));
    line.trim_start_matches("add: [")
        .trim_end_matches(']')
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Starts the announcer in a new network namespace with `capabilities` as its bounding set,
/// adds a passive peer on port 179 with `ctl`, and returns (success, ctl's output).
fn add_passive_peer(capabilities: &[String]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("announcer.sock");
    let bounding: String = std::iter::once("-all".to_string())
        .chain(capabilities.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let listen = format!("unix:{}", socket.display());
    let mut child = Command::new("unshare")
        .args([
            "-n",
            "setpriv",
            &format!("--bounding-set={bounding}"),
            "--inh-caps=-all",
        ])
        .args([BIN, "--listen", &listen, "--metrics-listen", "", "--bgp"])
        .args(["--bgp-restart-marker", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the announcer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("the announcer did not open {}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Command::new(BIN)
        .args([
            "ctl",
            "--server",
            &listen,
            "peers",
            "add",
            "--address",
            "192.0.2.2",
        ])
        .args(["--peer-asn", "64512", "--local-asn", "64513", "--passive"])
        .output()
        .expect("run ctl");
    let _ = child.kill();
    let _ = child.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_passive_peer_on_179_works_with_the_daemonsets_capabilities() {
    if !netns::prerequisites("the deployed-capabilities test", &["unshare", "setpriv"]) {
        return;
    }
    let deployed = deployed_capabilities();
    assert!(
        deployed.contains(&"net_bind_service".to_string()),
        "the DaemonSet adds {deployed:?}"
    );
    let (ok, text) = add_passive_peer(&deployed);
    assert!(ok, "with {deployed:?}: {text}");
    assert!(
        text.contains(r#""passive":true"#) && text.contains(r#""port":179"#),
        "{text}"
    );

    let without: Vec<String> = deployed
        .into_iter()
        .filter(|c| c != "net_bind_service")
        .collect();
    let (ok, text) = add_passive_peer(&without);
    assert!(!ok, "with {without:?} binding 179 must fail: {text}");
    assert!(
        text.contains(
            "peer 192.0.2.2: cannot listen on 0.0.0.0:179 for the passive session: \
             Permission denied (os error 13)"
        ),
        "{text}"
    );
}
