//! Processes the harness starts inside a namespace: `ip netns exec <ns> <program>` execs the
//! program, so the child's PID is the program itself. Each is stopped by that PID only —
//! SIGTERM, then SIGKILL if it has not exited — and on Drop, so a failing test leaves nothing
//! running. Output goes to a log file that failure messages quote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A running process and its log.
pub struct Daemon {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `args` in namespace `ns`, stdout and stderr to `<dir>/<name>.log`.
    pub fn spawn(name: &str, ns: &str, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({args:?}): {e}"));
        Daemon {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics with the log when the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status})\n{}", self.name, self.log_tail(40));
        }
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        self.signal_and_wait(Signal::SIGTERM, Duration::from_secs(10));
        if self.running() {
            self.signal_and_wait(Signal::SIGKILL, Duration::from_secs(5));
        }
    }

    /// SIGKILL: a crash, no chance to clean up.
    pub fn kill(&mut self) {
        self.signal_and_wait(Signal::SIGKILL, Duration::from_secs(5));
    }

    fn signal_and_wait(&mut self, signal: Signal, timeout: Duration) {
        if !self.running() {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
        let start = Instant::now();
        while start.elapsed() < timeout {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Daemon {
    /// Waits up to `timeout` for the process to exit on its own; its exit status, or None.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The last `lines` lines of the file at `path`, headed by its name.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    format!(
        "--- last lines of {} ---\n{}",
        path.display(),
        all[from..].join("\n")
    )
}
