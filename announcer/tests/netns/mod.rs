//! Plumbing shared by the announcer's network tests (the layer-2 harness in `common/` and the
//! BGP harness in `bgp_support/`): unique names, the prerequisite check, command runners.
//!
//! A test that lacks root or a tool fails under `CI=true`; elsewhere it prints why and the
//! caller returns early.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call: `<prefix><pid % 100000><n>`, so parallel
/// tests and parallel test runs never collide (namespace and interface names stay short).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// True when `test` can run: root (network namespaces) and every tool in `tools` plus `ip`.
/// Otherwise panics under `CI=true`, or prints why and returns false.
pub fn prerequisites(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if String::from_utf8_lossy(&output(&["id", "-u"]).stdout).trim() != "0" {
        missing.push("root (network namespaces)".to_string());
    }
    for tool in tools.iter().chain(&["ip"]) {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool} || test -x {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("{tool} (scripts/install-test-deps.sh)"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{test} lacks: {}", missing.join(", "));
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {why}"
    );
    eprintln!("skipping: {why}");
    false
}

/// Runs a command, panicking with its stdout and stderr when it fails; returns stdout.
pub fn run(args: &[&str]) -> String {
    let output = output(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command and returns its output whatever the exit status (panics only if it cannot
/// be started at all).
pub fn output(args: &[&str]) -> Output {
    try_output(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs a command; an error only when it cannot be started (safe to use in Drop guards).
pub fn try_output(args: &[&str]) -> std::io::Result<Output> {
    Command::new(args[0]).args(&args[1..]).output()
}
