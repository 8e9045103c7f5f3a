//! The demo's state directory (`/run/ferrolb-demo` by default): what `ferrolb-demo --down`
//! and the Ctrl-C handler need to remove exactly what this demo made and nothing else.
//!
//! - `namespaces`: each network namespace, written before it is created;
//! - `pid`: the running `ferrolb-demo`;
//! - `run-*/`: the cluster's directory (kubeconfig, logs, sockets, certificates).
//!
//! Tearing down stops the processes inside the recorded namespaces (`ip netns pids`: every
//! process the demo started runs in one of them), deletes the namespaces, and removes the
//! directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    pub fn new(path: &Path) -> StateDir {
        StateDir {
            path: path.to_path_buf(),
        }
    }

    /// The file namespaces are recorded in.
    pub fn namespace_record(&self) -> PathBuf {
        self.path.join("namespaces")
    }

    fn pid_file(&self) -> PathBuf {
        self.path.join("pid")
    }

    /// Creates the directory for a new run; Err when a demo is already up there.
    pub fn claim(&self) -> Result<(), String> {
        if self.namespace_record().exists() || self.pid_file().exists() {
            return Err(format!(
                "{} holds a demo already (run `ferrolb-demo --down` first)",
                self.path.display()
            ));
        }
        std::fs::create_dir_all(&self.path)
            .map_err(|e| format!("cannot create {}: {e}", self.path.display()))?;
        std::fs::write(self.pid_file(), std::process::id().to_string())
            .map_err(|e| format!("cannot write {}: {e}", self.pid_file().display()))
    }

    /// The recorded namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        std::fs::read_to_string(self.namespace_record())
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The recorded demo process, if it still runs as `ferrolb-demo` (not a reused PID).
    fn running_demo(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if pid == std::process::id() as i32 {
            return None;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        exe.to_string_lossy()
            .contains("ferrolb-demo")
            .then_some(pid)
    }

    /// Stops another running demo of this directory (SIGTERM; it tears down itself), then
    /// stops whatever still runs in the recorded namespaces, deletes them and the directory.
    /// Returns one line per thing removed.
    pub fn tear_down(&self) -> Vec<String> {
        let mut done = Vec::new();
        if let Some(pid) = self.running_demo() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30)
                && Path::new(&format!("/proc/{pid}")).exists()
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            done.push(format!("stopped ferrolb-demo (pid {pid})"));
        }
        for ns in self.namespaces() {
            if !Path::new("/run/netns").join(&ns).exists() {
                continue;
            }
            let pids = std::process::Command::new("ip")
                .args(["netns", "pids", &ns])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<i32> = pids
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            let deleted = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .status()
                .is_ok_and(|s| s.success());
            done.push(format!(
                "{} namespace {ns} ({} processes stopped)",
                if deleted {
                    "deleted"
                } else {
                    "could not delete"
                },
                pids.len()
            ));
        }
        if self.path.exists() {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => done.push(format!("removed {}", self.path.display())),
                Err(e) => done.push(format!("could not remove {}: {e}", self.path.display())),
            }
        }
        done
    }
}
