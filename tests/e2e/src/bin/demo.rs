//! `ferrolb-demo`: FerroLB on one machine. Builds a small cluster in network namespaces
//! with the real binaries (test-apiserver, ferrolb-provider, three nodes each running
//! ferrolb-announcer, a client, a BIRD router), plays the seeds' walkthroughs printing what
//! they print, and stays up for kubectl until Ctrl-C or `ferrolb-demo --down`.
//!
//! Run as root (network namespaces). Everything it makes is recorded in `--state-dir` first,
//! so Ctrl-C, SIGTERM or `--down` from another shell remove exactly that: the processes in
//! the demo's namespaces, the namespaces, the directory.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use e2e::demo::forward::{relay_to_namespace, rewrite_kubeconfig};
use e2e::demo::state::StateDir;
use e2e::demo::{Demo, Options};

/// FerroLB on one machine: the seeds' walkthroughs on real binaries in network namespaces.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Remove a running or crashed demo (its processes, namespaces and state directory) and
    /// exit.
    #[arg(long)]
    down: bool,
    /// Where the demo records what it made, and keeps the kubeconfig and logs.
    #[arg(
        long,
        env = "FERROLB_DEMO_STATE_DIR",
        default_value = "/run/ferrolb-demo"
    )]
    state_dir: PathBuf,
    /// Prefix of the demo's network namespace names (`<prefix>node1`, ...).
    #[arg(long, env = "FERROLB_DEMO_PREFIX", default_value = "ferrolb-demo-")]
    prefix: String,
    /// Bring the cluster up and stay up without playing the walkthroughs.
    #[arg(long)]
    no_walkthrough: bool,
    /// Tear down after the walkthroughs instead of staying up.
    #[arg(long)]
    exit: bool,
}

fn main() {
    let args = Args::parse();
    let state = StateDir::new(&args.state_dir);
    if args.down {
        for line in state.tear_down() {
            println!("{line}");
        }
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "ferrolb-demo: run as root (it creates network namespaces): sudo {}",
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        std::process::exit(2);
    }
    let missing = e2e::demo::missing_tools();
    if !missing.is_empty() {
        eprintln!(
            "ferrolb-demo: not found: {}; install them with scripts/install-test-deps.sh demo",
            missing.join(", ")
        );
        std::process::exit(2);
    }
    if let Err(e) = state.claim() {
        eprintln!("ferrolb-demo: {e}");
        std::process::exit(2);
    }
    watch_signals(state.clone());

    let outcome = std::panic::catch_unwind(|| up(&args, &state));
    match outcome {
        Ok(()) => {
            for line in state.tear_down() {
                println!("{line}");
            }
        }
        Err(_) => {
            eprintln!(
                "ferrolb-demo: a step failed (above); the process logs were printed. Cleaning up."
            );
            for line in state.tear_down() {
                eprintln!("{line}");
            }
            std::process::exit(1);
        }
    }
}

/// Tears down on SIGINT, SIGTERM or SIGHUP, from a thread of its own. The signals are
/// caught (not blocked: a blocked mask would be inherited by every process the demo starts,
/// which then would not stop on SIGTERM); caught signals revert to their default in children.
fn watch_signals(state: StateDir) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!(
                "ferrolb-demo: no signal handling ({e}); Ctrl-C will not clean up, use --down"
            );
            return;
        }
    };
    let handlers = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    });
    let (mut interrupt, mut terminate, mut hangup) = match handlers {
        Ok(handlers) => handlers,
        Err(e) => {
            eprintln!(
                "ferrolb-demo: no signal handling ({e}); Ctrl-C will not clean up, use --down"
            );
            return;
        }
    };
    std::thread::spawn(move || {
        let name = runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
                _ = hangup.recv() => "SIGHUP",
            }
        });
        eprintln!("\nferrolb-demo: {name}; tearing down");
        for line in state.tear_down() {
            eprintln!("{line}");
        }
        std::process::exit(130);
    });
}

fn up(args: &Args, state: &StateDir) {
    println!(
        "ferrolb-demo: building the cluster (state in {})",
        state.path.display()
    );
    let mut demo = Demo::start(&Options {
        namespace_prefix: Some(args.prefix.clone()),
        namespace_record: Some(state.namespace_record()),
        dir_in: Some(state.path.clone()),
        echo: true,
    });
    let kubeconfig = state.path.join("kubeconfig");
    let cp_ns = demo.cluster.host("cp").ns.clone();
    let relayed = relay_to_namespace(&cp_ns, demo.cluster.kubectl.server_port())
        .and_then(|port| rewrite_kubeconfig(&demo.cluster.kubectl.kubeconfig, &kubeconfig, port));
    let from_host = relayed.is_ok();
    match relayed {
        Ok(()) => println!(
            "\nkubeconfig: {path}\n  kubectl --kubeconfig {path} get svc -A -o wide\n",
            path = kubeconfig.display()
        ),
        Err(e) => println!(
            "\nkubectl from the host is not available ({e}); inside the cluster:\n  \
             ip netns exec {cp_ns} kubectl --kubeconfig {} get svc -A\n",
            demo.cluster.kubectl.kubeconfig.display()
        ),
    }
    if !args.no_walkthrough {
        demo.run_all();
        demo.report.section("Done");
        demo.report
            .say("Every walkthrough ran and showed what its seed shows.");
    }
    if from_host {
        // The README's command, from the host through the relay.
        let path = kubeconfig.to_string_lossy().into_owned();
        let args = ["--kubeconfig", &path, "get", "svc", "-A", "-o", "wide"];
        println!("\nhost$ kubectl {}", args.join(" "));
        match std::process::Command::new("kubectl").args(args).output() {
            Ok(out) => print!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => println!("cannot run kubectl: {e}"),
        }
    }
    if args.exit {
        return;
    }
    let client = demo.cluster.host("client").ns.clone();
    println!(
        "\nThe demo stays up. Try:\n  kubectl --kubeconfig {k} get svc -A -o wide\n  \
         ip netns exec {client} curl http://<EXTERNAL-IP>/\n  \
         ip netns exec {client} ip neigh\n\
         Stop it with Ctrl-C, or `ferrolb-demo --down` from another shell.",
        k = kubeconfig.display()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
