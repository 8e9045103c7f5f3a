//! Plumbing of the image and manifest tests: where the repository and the binaries are, the
//! prerequisite check (a missing tool fails under `CI=true`, elsewhere the test prints why and
//! returns), running commands with their output in the panic message, and the README check
//! (every command a test runs for the README must appear in README.md as written).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (this crate lives in tests/images).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// target/<profile> of this test run: test executables live in target/<profile>/deps.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary built into the same target directory as this test
/// (`cargo test --workspace` builds every binary before any test runs).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first, e.g. `cargo build -p provider -p announcer -p \
         test-apiserver` (or run `cargo test --workspace`)",
        path.display()
    );
    path
}

/// True when every tool is on PATH (and root, when `root`). Otherwise panics under
/// `CI=true`, or prints why and returns false.
pub fn prerequisites(test: &str, root: bool, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if root {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            missing.push("root".to_string());
        }
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
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

/// Runs `command` (a shell command line, as a person types it) in `dir` with `env` added;
/// panics with its output when it fails; returns stdout.
pub fn sh(dir: &Path, env: &[(&str, &str)], command: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{command}` failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Panics unless README.md has `command` as a line of its own (leading spaces ignored), so
/// what the tests run is what the README tells a person to type.
pub fn assert_in_readme(command: &str) {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    assert!(
        readme.lines().any(|l| l.trim() == command),
        "README.md no longer shows `{command}`, which the tests run for it; update the \
         README and the test together"
    );
}

/// The workspace version, which every binary prints with `--version` and the images are
/// tagged with.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
