//! Shared by the kubectl tests: finding kubectl (fail under `CI=true` when it
//! is missing), serving a fresh test-apiserver over HTTP with its own
//! kubeconfig and discovery cache, and running kubectl against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use test_apiserver::TestApiServer;
use tokio::process::Command;

pub struct Kubectl {
    pub binary: PathBuf,
    pub kubeconfig: PathBuf,
    pub cache: PathBuf,
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A server on 127.0.0.1 plus a kubectl pointed at it.
pub struct Cluster {
    pub server: TestApiServer,
    pub kubectl: Kubectl,
    pub dir: tempfile::TempDir,
    _serve: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self._serve.abort();
    }
}

fn find_kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

/// Starts a server and returns it with a kubectl, or None (outside CI only) when kubectl is missing.
pub async fn cluster() -> Option<Cluster> {
    let Some(binary) = find_kubectl() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl is not on PATH (CI=true): install kubernetes-client"
        );
        eprintln!("kubectl not found on PATH; skipping the kubectl test outside CI");
        return None;
    };
    let server = TestApiServer::new();
    let (address, serve) = server.serve_http(0).await.expect("serve http");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&kubeconfig, address).expect("kubeconfig");
    let kubectl = Kubectl {
        binary,
        kubeconfig,
        cache: dir.path().join("cache"),
    };
    Some(Cluster {
        server,
        kubectl,
        dir,
        _serve: serve,
    })
}

impl Kubectl {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .unwrap_or_else(|e| panic!("kubectl {args:?} did not start: {e}"));
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires success, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs and requires failure, returning stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.ok,
            "kubectl {args:?} should have failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stderr
    }

    /// The client's minor version (`32` for v1.32.4), 0 if unreadable.
    pub async fn minor_version(&self) -> u32 {
        let out = self.run(&["version", "--client", "-o", "json"]).await;
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| {
                v["clientVersion"]["minor"]
                    .as_str()
                    .map(|m| m.trim_end_matches('+').parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }
}

/// The words of each line of a table (`kubectl get` output).
pub fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The repository root (this crate lives in tests/apiserver).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
