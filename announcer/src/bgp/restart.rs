//! Graceful restart on the restarting side (RFC 4724 §4.1): did this process restart, and may
//! End-of-RIB go out yet?
//!
//! ```text
//!  start ── marker file present? ──► restarted: R bit in every OPEN
//!                                    End-of-RIB held on GR sessions until the desired set is
//!  first Sync (desired_complete) ──► complete ◄── or the EoR deferral timer expires
//!  a GR session Established ───────► marker written      clean shutdown ──► marker removed
//! ```
//!
//! The announcer restarted when a previous run had advertised routes over a session with
//! graceful restart and did not stop cleanly (SIGKILL, OOM kill, panic, crash): that run left
//! the marker file, which a clean stop (withdraw + Cease) removes. The default path is under
//! `/run/ferrolb`, an `emptyDir` in the DaemonSet: it survives a container restart and is gone
//! after a node reboot, when the routers no longer hold anything worth keeping. GoBGP makes
//! the operator say it (`gobgpd -r`); FRR sets the bit when bgpd restarts with its forwarding
//! state kept. A file kept by the node gives the same answer without an operator.
//!
//! While the routers keep our stale routes, sending End-of-RIB with a partial route set would
//! make them drop the rest (§4.2), so End-of-RIB waits for the first complete desired set
//! (a Sync) or, bounded, for `eor_deferral` (like FRR's `select-defer-time`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

/// Default of `--bgp-eor-deferral`.
pub const DEFAULT_EOR_DEFERRAL: Duration = Duration::from_secs(60);

/// Graceful restart settings of the speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOptions {
    /// The marker file; `None` disables restart detection (never restarting).
    pub marker: Option<PathBuf>,
    /// Longest wait for the desired set before End-of-RIB is sent anyway.
    pub eor_deferral: Duration,
}

impl Default for RestartOptions {
    fn default() -> Self {
        RestartOptions {
            marker: None,
            eor_deferral: DEFAULT_EOR_DEFERRAL,
        }
    }
}

/// Whether End-of-RIB goes out now on a session that just came up (or is waiting): at once
/// without graceful restart or once the desired set is complete; otherwise held.
pub fn end_of_rib_due(graceful_restart_negotiated: bool, desired_complete: bool) -> bool {
    !graceful_restart_negotiated || desired_complete
}

/// The restart state shared by the speaker and its sessions.
#[derive(Debug)]
pub struct RestartState {
    /// Set at start: a previous run left the marker.
    pub restarted: bool,
    marker: Option<PathBuf>,
    complete: watch::Sender<bool>,
}

impl RestartState {
    /// Reads the marker. When restarted, the desired set is incomplete until
    /// [`RestartState::desired_complete`] or the deferral (see [`RestartState::deferral`]).
    pub fn load(options: &RestartOptions) -> RestartState {
        let restarted = options.marker.as_deref().is_some_and(Path::exists);
        let (complete, _) = watch::channel(!restarted);
        if restarted {
            tracing::info!(
                marker = ?options.marker,
                deferral = ?options.eor_deferral,
                "BGP graceful restart: a previous run advertised routes and did not stop cleanly; \
                 setting the Restart State bit and holding End-of-RIB until the first Sync"
            );
        }
        RestartState {
            restarted,
            marker: options.marker.clone(),
            complete,
        }
    }

    /// The desired set is known (the first Sync): held End-of-RIBs go out.
    pub fn desired_complete(&self) {
        self.complete
            .send_if_modified(|complete| !std::mem::replace(complete, true));
    }

    /// Whether the desired set is known.
    pub fn is_complete(&self) -> bool {
        *self.complete.borrow()
    }

    /// A receiver that changes when the set becomes complete.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.complete.subscribe()
    }

    /// Records that routes were advertised with graceful restart (a later start after a crash
    /// is then a restart).
    pub fn mark_advertised(&self) {
        let Some(path) = &self.marker else { return };
        if path.exists() {
            return;
        }
        if let Err(error) = write_marker(path) {
            tracing::warn!(
                path = %path.display(),
                "BGP graceful restart marker cannot be written ({error}); a restart will not set the Restart State bit"
            );
        }
    }

    /// A clean stop: routes withdrawn, nothing for routers to keep.
    pub fn clear(&self) {
        if let Some(path) = &self.marker
            && let Err(error) = std::fs::remove_file(path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), "removing BGP graceful restart marker: {error}");
        }
    }
}

fn write_marker(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        path,
        "routes were advertised with BGP graceful restart; removed on a clean stop\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_rib_is_held_only_on_graceful_restart_sessions_before_the_set_is_complete() {
        // (GR negotiated, desired set complete) -> End-of-RIB now?
        let table = [
            (false, false, true),
            (false, true, true),
            (true, false, false),
            (true, true, true),
        ];
        for (gr, complete, due) in table {
            assert_eq!(
                end_of_rib_due(gr, complete),
                due,
                "gr={gr} complete={complete}"
            );
        }
    }

    #[tokio::test]
    async fn a_start_after_advertising_without_a_clean_stop_is_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = RestartOptions {
            marker: Some(dir.path().join("run/bgp-advertised")),
            eor_deferral: Duration::from_secs(60),
        };
        let first = RestartState::load(&options);
        assert!(!first.restarted && first.is_complete());
        first.mark_advertised();
        // Killed here: the next start is a restart, incomplete until the first Sync.
        let second = RestartState::load(&options);
        assert!(second.restarted && !second.is_complete());
        let complete = second.subscribe();
        second.desired_complete();
        assert!(complete.has_changed().expect("sender alive") && second.is_complete());
        // A clean stop: the next start is not a restart.
        second.clear();
        assert!(!RestartState::load(&options).restarted);
        // Without a marker path nothing is ever a restart.
        let none = RestartState::load(&RestartOptions::default());
        none.mark_advertised();
        assert!(!RestartState::load(&RestartOptions::default()).restarted);
    }
}
