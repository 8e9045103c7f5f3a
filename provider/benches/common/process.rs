//! The provider binary as both provider benchmarks start and stop it.

use std::process::{Child, Command};

/// The provider binary, under `FERROLB_BENCH_WRAP` (e.g. `heaptrack`) when set and not empty,
/// in its own process group so that [`stop`] stops a wrapper's child too.
pub fn wrapped_provider() -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = match std::env::var("FERROLB_BENCH_WRAP") {
        Ok(wrapper) if !wrapper.is_empty() => {
            let mut command = Command::new(wrapper);
            command.arg(env!("CARGO_BIN_EXE_ferrolb-provider"));
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_ferrolb-provider")),
    };
    command.process_group(0);
    command
}

/// SIGKILLs the provider's whole process group and reaps it.
pub fn stop(mut child: Child) {
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}
