//! Certificate rotation without a restart: the real binary serves mutual TLS from files, the
//! files are replaced by ones from another CA (as the kubelet does when a mounted Secret is
//! rotated), and within a few seconds new connections use them while an established stream
//! stays up. Clients without a certificate, or with one from a CA no longer trusted, are
//! refused throughout. Plain loopback TCP: no root, no namespaces.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{free_port, leaf, new_ca};
use common::{Announcer, BIN, ctl_at, stderr};

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A client of generation `ca` (trusting that CA for the server, presenting `cert`).
struct Client {
    ca: String,
    cert: Option<(String, String)>,
}

impl Client {
    fn args(&self, command: &[&str]) -> Vec<String> {
        let mut args = vec![
            "--tls-ca".to_string(),
            self.ca.clone(),
            "--tls-server-name".into(),
            "ferrolb-announcer".into(),
        ];
        if let Some((cert, key)) = &self.cert {
            args.extend([
                "--tls-cert".into(),
                cert.clone(),
                "--tls-key".into(),
                key.clone(),
            ]);
        }
        args.extend(command.iter().map(|a| a.to_string()));
        args
    }

    fn state(&self, server: &str) -> std::process::Output {
        let args = self.args(&["state"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl_at(server, &args)
    }
}

fn wait_until_accepted(client: &Client, server: &str, what: &str) {
    let start = Instant::now();
    loop {
        let out = client.state(server);
        if out.status.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what}: still refused: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_refused(client: &Client, server: &str, what: &str) {
    let out = client.state(server);
    assert!(!out.status.success(), "{what} got an answer");
    assert!(out.stdout.is_empty(), "{what} got output");
}

#[test]
fn rotated_files_apply_to_new_connections_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str| dir.path().join(name);
    let (ca1, ca2) = (new_ca("ferrolb CA 1"), new_ca("ferrolb CA 2"));
    let (server1, server2) = (
        leaf(&ca1, vec!["ferrolb-announcer".into()], true),
        leaf(&ca2, vec!["ferrolb-announcer".into()], true),
    );
    let (client1, client2) = (
        leaf(&ca1, vec!["ferrolb-provider".into()], false),
        leaf(&ca2, vec!["ferrolb-provider".into()], false),
    );
    // The announcer's mounted Secret (tls.crt, tls.key, ca.crt) and the clients' files.
    replace(&file("tls.crt"), &server1.0);
    replace(&file("tls.key"), &server1.1);
    replace(&file("ca.crt"), &ca1.pem());
    for (name, text) in [
        ("ca1.pem", ca1.pem()),
        ("ca2.pem", ca2.pem()),
        ("client1.crt", client1.0.clone()),
        ("client1.key", client1.1.clone()),
        ("client2.crt", client2.0.clone()),
        ("client2.key", client2.1.clone()),
    ] {
        replace(&file(name), &text);
    }
    let client = |ca: &str, cert: Option<&str>| Client {
        ca: s(&file(ca)).to_string(),
        cert: cert.map(|c| {
            (
                s(&file(&format!("{c}.crt"))).to_string(),
                s(&file(&format!("{c}.key"))).to_string(),
            )
        }),
    };
    let first = client("ca1.pem", Some("client1"));
    let second = client("ca2.pem", Some("client2"));
    let first_against_new_server = client("ca2.pem", Some("client1"));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = format!("https://{listen}");
    let _announcer = Announcer::start_here(
        &[
            "--listen",
            &listen,
            "--tls-cert",
            s(&file("tls.crt")),
            "--tls-key",
            s(&file("tls.key")),
            "--client-ca",
            s(&file("ca.crt")),
            "--tls-reload-interval",
            "300ms",
        ],
        false,
    );
    wait_until_accepted(&first, &server, "a CA-1 client before rotation");
    assert_refused(
        &client("ca1.pem", None),
        &server,
        "a client without certificate",
    );
    assert_refused(&second, &server, "a CA-2 client before rotation");

    // An established stream (`ctl watch` exits when its connection ends).
    let watch_args = first.args(&["watch"]);
    let mut watch = Command::new(BIN)
        .args(["ctl", "--server", &server])
        .args(&watch_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl watch");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        watch.try_wait().expect("try_wait").is_none(),
        "ctl watch ended before the rotation"
    );

    // Rotation to CA 2: server certificate and trusted client CA.
    replace(&file("tls.crt"), &server2.0);
    replace(&file("tls.key"), &server2.1);
    replace(&file("ca.crt"), &ca2.pem());
    wait_until_accepted(&second, &server, "a CA-2 client after rotation");
    assert_refused(
        &first_against_new_server,
        &server,
        "a CA-1 client after rotation",
    );
    assert_refused(
        &client("ca2.pem", None),
        &server,
        "a client without certificate",
    );

    assert!(
        watch.try_wait().expect("try_wait").is_none(),
        "the established stream was dropped by the rotation"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn unreadable_files_at_start_stop_the_server_with_the_flag_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.crt");
    let out = Command::new(BIN)
        .args([
            "--metrics-listen",
            "",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            s(&missing),
            "--tls-key",
            s(&missing),
            "--client-ca",
            s(&missing),
        ])
        .output()
        .expect("run announcer");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("reading --tls-cert"),
        "{}",
        stderr(&out)
    );
}
