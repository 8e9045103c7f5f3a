//! Black-box support: the test API server's HTTP front door, kubectl as an operator runs it,
//! and the built `ferrolb-provider` binary as a child process.

#![allow(dead_code)]

use std::{
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use test_apiserver::TestApiServer;

/// Kills a child process (by its own handle) even when an assertion fails.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when kubectl runs; in CI its absence fails the test instead.
pub fn have_kubectl() -> bool {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl is required in CI"
        );
        eprintln!("kubectl not found; skipping the black-box test outside CI");
    }
    found
}

/// Runs kubectl with `stdin`; returns success and stdout+stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .expect("write kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs kubectl and fails the test when it fails.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let (ok, text) = kubectl(kubeconfig, args, stdin);
    assert!(ok, "kubectl {args:?} failed: {text}");
    text
}

/// Polls `check` every 100 ms for up to 30 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// The workspace root (for manifests/).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("provider/ lives in the workspace")
        .to_path_buf()
}

/// A test API server on HTTP with a kubeconfig for it.
pub struct Front {
    /// The server (its in-process view, for assertions).
    pub server: TestApiServer,
    /// kubeconfig pointing at the HTTP front door.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    _serving: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Starts the server's HTTP front door.
    pub async fn start() -> Front {
        let server = TestApiServer::new();
        let (address, serving) = server.serve_http(0).await.expect("HTTP front door");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
        Front {
            server,
            kubeconfig,
            _dir: dir,
            _serving: serving,
        }
    }

    /// Starts the provider binary with `flags` (and fast leader-election timers).
    pub fn provider(&self, flags: &[&str]) -> ChildGuard {
        let metrics = format!("--metrics-addr=127.0.0.1:{}", free_port());
        ChildGuard(
            Command::new(env!("CARGO_BIN_EXE_ferrolb-provider"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg(metrics)
                .args([
                    "--lease-duration=3s",
                    "--renew-deadline=2s",
                    "--retry-period=500ms",
                    "--log-format=json",
                ])
                .args(flags)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("provider binary starts"),
        )
    }
}
