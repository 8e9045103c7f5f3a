//! scripts/build-images.sh builds the three images with podman on an mmdebstrap base, and
//! each runs: `--version` and `--help` under podman (runc) and, after
//! `ctr -n k8s.io images import`, under containerd, the runtime the kubelet uses. The
//! announcer also runs as its DaemonSet runs it (read-only, two capabilities) and answers
//! `ferrolb-announcer ctl state` through exec.
//!
//! Everything stays inside a temporary folder: podman's storage and settings
//! (`CONTAINERS_STORAGE_CONF`, `CONTAINERS_CONF`), a containerd of its own
//! (`CONTAINERD_ADDRESS`), the OCI archives (`FERROLB_IMAGE_OUT`). The images are made from
//! the binaries this test run built (`FERROLB_BIN_DIR`), not a release build, to keep the test
//! short; the mmdebstrap base is cached under target/images/cache.
//!
//! The podman settings are what this kind of machine needs (a VM with cgroup v1 and no
//! CAP_SYS_RESOURCE): runc with cgroupfs (crun refuses hybrid cgroups), ulimits below the
//! hard limits, no network namespace set-up. docs/images.md explains them.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{assert_in_readme, prerequisites, profile_dir, repo_root, sh, version};

const BUILD: &str = "./scripts/build-images.sh";

/// (binary, the image's user, a command line `--help` must show)
const IMAGES: &[(&str, &str, &str)] = &[
    ("ferrolb-provider", "65532:65532", "Usage: ferrolb-provider"),
    ("ferrolb-announcer", "0:0", "Usage: ferrolb-announcer"),
    ("test-apiserver", "65532:65532", "Usage: test-apiserver"),
];

fn image(binary: &str) -> String {
    format!("ghcr.io/ferrolb/{binary}:{}", version())
}

/// podman settings of the test: private storage (vfs: nothing stays mounted), runc and
/// cgroupfs, ulimits this machine allows, no network.
fn write_podman_config(dir: &Path) -> (String, String) {
    let d = dir.display();
    let storage = dir.join("storage.conf");
    std::fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/storage\"\nrunroot = \"{d}/run\"\n"
        ),
    )
    .expect("storage.conf");
    let containers = dir.join("containers.conf");
    std::fs::write(
        &containers,
        format!(
            "[containers]\nnetns = \"none\"\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"none\"\ntmp_dir = \"{d}/libpod-tmp\"\n\
             [network]\nnetwork_config_dir = \"{d}/networks\"\n"
        ),
    )
    .expect("containers.conf");
    (
        storage.display().to_string(),
        containers.display().to_string(),
    )
}

/// A containerd of the test's own (state, content and socket in `dir`), killed when dropped.
struct Containerd {
    child: Child,
    socket: String,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("containerd dir");
        let d = dir.display();
        let config = dir.join("containerd.toml");
        let socket = format!("{d}/c.sock");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .expect("containerd.toml");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd.log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd { child, socket };
        let start = Instant::now();
        while !Path::new(&containerd.socket).exists() {
            let log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "containerd did not listen on {} within 30 s:\n{log}",
                containerd.socket
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn images_build_and_run_under_podman_and_containerd() {
    if !prerequisites(
        "image test",
        true,
        &["mmdebstrap", "podman", "runc", "containerd", "ctr"],
    ) {
        return;
    }
    let repo = repo_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (storage_conf, containers_conf) = write_podman_config(tmp.path());
    let out = tmp.path().join("images");
    let out_str = out.display().to_string();
    let bin_dir = profile_dir().display().to_string();
    let target_dir = profile_dir()
        .parent()
        .expect("target dir")
        .display()
        .to_string();
    let podman_env = [
        ("CONTAINERS_STORAGE_CONF", storage_conf.as_str()),
        ("CONTAINERS_CONF", containers_conf.as_str()),
    ];

    // Build, as the README says, from this run's binaries into the temporary folder.
    assert_in_readme(BUILD);
    let started = Instant::now();
    let mut env = podman_env.to_vec();
    env.extend([
        ("FERROLB_BIN_DIR", bin_dir.as_str()),
        ("FERROLB_IMAGE_OUT", out_str.as_str()),
        ("CARGO_TARGET_DIR", target_dir.as_str()),
    ]);
    let built = sh(&repo, &env, BUILD);
    let build_s = started.elapsed().as_secs_f64();
    for (binary, _, _) in IMAGES {
        let line = format!("{} {out_str}/{binary}.oci.tar", image(binary));
        assert!(
            built.lines().any(|l| l == line),
            "{BUILD} should print `{line}`:\n{built}"
        );
    }

    // podman: --version, --help, the user, and the announcer's `ctl` through PATH.
    for (binary, user, usage) in IMAGES {
        let name = image(binary);
        let run_version = format!("podman run --rm {name} --version");
        if *binary != "test-apiserver" {
            assert_in_readme(&run_version);
        }
        let printed = sh(&repo, &podman_env, &run_version);
        assert_eq!(
            printed.trim(),
            format!("{binary} {}", version()),
            "{run_version}"
        );
        let help = sh(
            &repo,
            &podman_env,
            &format!("podman run --rm {name} --help"),
        );
        assert!(help.contains(usage), "{name} --help:\n{help}");
        let image_user = sh(
            &repo,
            &podman_env,
            &format!("podman image inspect --format '{{{{.Config.User}}}}' {name}"),
        );
        assert_eq!(image_user.trim(), *user, "user of {name}");
    }
    let ctl_help = sh(
        &repo,
        &podman_env,
        &format!(
            "podman run --rm --entrypoint ferrolb-announcer {} ctl --help",
            image("ferrolb-announcer")
        ),
    );
    assert!(
        ctl_help.contains("Usage: ferrolb-announcer ctl"),
        "`ferrolb-announcer ctl` found through PATH in the image:\n{ctl_help}"
    );

    // As the manifests run them: the provider non-root with no capabilities, the announcer
    // with only NET_ADMIN and NET_RAW, both on a read-only root filesystem without privilege
    // escalation; `ferrolb-announcer ctl` through `exec` as the DaemonSet's comment says.
    let provider_locked_down = sh(
        &repo,
        &podman_env,
        &format!(
            "podman run --rm --read-only --cap-drop=all --security-opt no-new-privileges {} --version",
            image("ferrolb-provider")
        ),
    );
    assert_eq!(
        provider_locked_down.trim(),
        format!("ferrolb-provider {}", version())
    );
    announcer_runs_as_in_the_daemonset(&repo, &podman_env);

    // containerd: import the archives as the README says, then run them. `ctr run` replaces
    // the entrypoint with its arguments (the kubelet appends `args:` to it, as podman does),
    // so the binary is named, and found through the image's PATH.
    let containerd = Containerd::start(&tmp.path().join("containerd"));
    let ctr_env = [
        ("CONTAINERD_ADDRESS", containerd.socket.as_str()),
        // Plain directories: nothing stays mounted when the test ends.
        ("CONTAINERD_SNAPSHOTTER", "native"),
    ];
    for (binary, _, usage) in IMAGES {
        let import = format!("ctr -n k8s.io images import target/images/{binary}.oci.tar");
        if *binary != "test-apiserver" {
            assert_in_readme(&import);
        }
        let import = import.replace("target/images/", &format!("{out_str}/"));
        let imported = sh(&repo, &ctr_env, &import);
        assert!(imported.contains(&image(binary)), "{import}:\n{imported}");
        let id = format!("images-test-{}-{binary}", std::process::id());
        let printed = sh(
            &repo,
            &ctr_env,
            &format!(
                "ctr -n k8s.io run --rm {} {id} {binary} --version",
                image(binary)
            ),
        );
        assert_eq!(
            printed.trim(),
            format!("{binary} {}", version()),
            "ctr run --version"
        );
        let help = sh(
            &repo,
            &ctr_env,
            &format!(
                "ctr -n k8s.io run --rm {} {id} {binary} --help",
                image(binary)
            ),
        );
        assert!(help.contains(usage), "ctr run {binary} --help:\n{help}");
    }
    let sizes: Vec<String> = IMAGES
        .iter()
        .map(|(binary, _, _)| {
            let len = std::fs::metadata(out.join(format!("{binary}.oci.tar")))
                .map(|m| m.len())
                .unwrap_or(0);
            format!("{binary}={:.1}MB", len as f64 / 1e6)
        })
        .collect();
    println!(
        "images build_s={build_s:.1} total_s={:.1} archives: {}",
        started.elapsed().as_secs_f64(),
        sizes.join(" ")
    );
}

/// Removes the named podman container when dropped (also when the test panics).
struct PodmanContainer<'a> {
    name: String,
    env: &'a [(&'a str, &'a str)],
}

impl Drop for PodmanContainer<'_> {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", &self.name])
            .envs(self.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Starts the announcer image with the DaemonSet's security context (read-only root, only
/// NET_ADMIN and NET_RAW, no privilege escalation, an empty /run/ferrolb), asks it for its
/// state with `ferrolb-announcer ctl state` through exec, and stops it with SIGTERM: it
/// withdraws and exits 0.
fn announcer_runs_as_in_the_daemonset(repo: &Path, env: &[(&str, &str)]) {
    let container = PodmanContainer {
        name: format!("images-test-{}-announcer", std::process::id()),
        env,
    };
    let name = &container.name;
    sh(
        repo,
        env,
        &format!(
            "podman run -d --name {name} --read-only --cap-drop=all \
             --cap-add=NET_ADMIN,NET_RAW --security-opt no-new-privileges \
             --tmpfs /run/ferrolb {} --listen unix:/run/ferrolb/announcer.sock",
            image("ferrolb-announcer")
        ),
    );
    let exec = format!("podman exec {name} ferrolb-announcer ctl state");
    let start = Instant::now();
    let state = loop {
        let out = Command::new("sh")
            .args(["-c", &exec])
            .envs(env.iter().copied())
            .output()
            .expect("podman exec");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`{exec}` did not answer within 30 s: {}{}",
            String::from_utf8_lossy(&out.stderr),
            sh(repo, env, &format!("podman logs {name} 2>&1"))
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        state.contains("\"announcements\":[]"),
        "`{exec}` should print the (empty) state:\n{state}"
    );
    sh(repo, env, &format!("podman stop -t 20 {name}"));
    let exit = sh(
        repo,
        env,
        &format!("podman inspect --format '{{{{.State.ExitCode}}}}' {name}"),
    );
    let logs = sh(repo, env, &format!("podman logs {name} 2>&1"));
    assert_eq!(
        exit.trim(),
        "0",
        "announcer exit code after SIGTERM; logs:\n{logs}"
    );
    assert!(
        logs.contains("SIGTERM: withdrawing everything"),
        "announcer logs after SIGTERM:\n{logs}"
    );
}
