//! The end-to-end harness: a small bare-metal "cluster" in network namespaces on one bridge,
//! built from the real binaries, with the harness playing kubelet and the EndpointSlice
//! controller.
//!
//! ```text
//!                         bridge br0 (own namespace)
//!   ┌──────────────┬──────────────┬──────────────┬──────────────┬──────────────┐
//!   cp .250         node-1 .1      node-2 .2      node-3 .3      client .200    router .254
//!   test-apiserver  announcer      announcer      announcer      ip neigh,      BIRD 2
//!   (127.0.0.1)     + e2e-hello    + e2e-hello    + e2e-hello    TCP, ping      (BGP from
//!   provider(s)       :80            :80            :80                          every node)
//!   kubectl
//! ```
//! (IPv4 192.0.2.x/24, IPv6 2001:db8::x/64.) The provider dials the announcers over mTLS
//! gRPC at the addresses of the announcer EndpointSlice; the harness reads each announcer's
//! own view through its Unix socket (`ferrolb-announcer ctl state`).
//!
//! Modules: [`topology`] (namespaces), [`daemon`] (processes stopped by PID), [`kube`]
//! (kubectl and the objects the harness plays), [`bird`] (the router), [`certs`] (TLS for
//! the announcers), [`announcers`] and [`provider`] (the two binaries under test),
//! [`client`] (what a user on the LAN sees), [`cluster`] (all of it wired), [`checks`] and
//! [`scenario`] (what the scenario files are made of); [`demo`] (the seeds' walkthroughs,
//! for `ferrolb-demo` and `tests/demo.rs`).
//! Every wait is [`wait_for`]: a bounded poll whose failure names what was expected and the
//! last thing seen.

pub mod announcers;
pub mod bird;
pub mod certs;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod daemon;
pub mod demo;
pub mod kube;
pub mod provider;
pub mod scenario;
pub mod topology;

#[path = "../../../announcer/tests/netns/mod.rs"]
pub mod netns;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of a workspace binary built into the same target directory as the running
/// executable: a test (`target/<profile>/deps/e2e-<hash>`, and `cargo test --workspace` builds
/// every binary before any test runs) or `ferrolb-demo` (`target/<profile>/ferrolb-demo`).
/// Panics with the command to run when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running executable");
    let mut dir = exe
        .parent()
        .expect("the executable lives in a directory")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: the e2e harness runs the real binaries. Build them first, e.g. \
         `cargo build -p provider -p announcer -p test-apiserver -p e2e` (or run `cargo test --workspace`)",
        path.display()
    );
    path
}

/// Polls `probe` every 100 ms until it returns `Ok`, for at most `timeout`. On timeout,
/// panics with `expected` and the last `Err` the probe returned (what was seen instead).
pub fn wait_for<T>(
    expected: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(seen) if start.elapsed() >= timeout => {
                panic!("expected {expected} within {timeout:?}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The scenario log: one line per step with the seconds since the topology came up
/// (visible with `--nocapture`, and in the output of a failed test).
pub struct Steps {
    start: Instant,
}

impl Default for Steps {
    fn default() -> Steps {
        Steps::new()
    }
}

impl Steps {
    pub fn new() -> Steps {
        Steps {
            start: Instant::now(),
        }
    }

    pub fn log(&self, text: &str) {
        eprintln!("[e2e {:>7.2}s] {text}", self.start.elapsed().as_secs_f64());
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
