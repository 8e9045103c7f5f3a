//! Leader election with a `coordination.k8s.io/v1` Lease.
//!
//! ```text
//!   GET Lease ──▶ decide(lease, identity, now) ──▶ Acquire/Renew: PUT (resourceVersion-checked)
//!                                               └▶ Yield/Wait: publish "not leading"
//!   success ──▶ watch::Sender<Claim>{ valid_until = start of this round + renew deadline }
//! ```
//!
//! Why the claim carries a deadline rather than a flag: a holder whose renewals stall (API
//! server unreachable, process starved) must stop writing *before* another replica may take
//! the Lease. Other replicas take it only after `renewTime + leaseDuration`; our claim ends at
//! `(time the renewal was sent) + renewDeadline`, which is earlier because
//! `renewDeadline < leaseDuration` (enforced by `Args::validate`). Writers check the deadline
//! with the local monotonic clock before each write, so no message from the loop is needed
//! for the claim to lapse. Clock skew between nodes larger than
//! `leaseDuration - renewDeadline` breaks this guarantee, as with every Lease-based election.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Client, api::PostParams};
use tokio::{sync::watch, time::Instant};

use crate::{
    error::{Error, Result},
    metrics::Metrics,
};

/// Epochs of Lease terms start here, above every millisecond timestamp (see [`Claim::epoch`]).
pub const LEASE_EPOCH_BASE: u64 = 1 << 43;

/// Name of the Lease object.
pub const LEASE_NAME: &str = "ferrolb-provider";

/// What to do with the Lease after reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds a valid lease: take it (a new term).
    Acquire,
    /// We hold it and it is still valid: extend it.
    Renew,
    /// The lease names us but our term already expired (renewals stalled for longer than the
    /// lease duration): stop writing now; the next round acquires a fresh term, which makes
    /// the controller re-read everything instead of trusting state from before the gap.
    Yield,
    /// Another replica holds a valid lease.
    Wait {
        /// The current holder.
        holder: String,
    },
}

/// Pure decision on a Lease read from the API (`None` = no Lease object yet).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(seconds)) => {
            *renewed + SignedDuration::from_secs(i64::from(seconds)) <= now
        }
        // A lease without renew time or duration never protects anybody.
        _ => true,
    };
    match (holder == identity, holder.is_empty(), expired) {
        (true, _, false) => Decision::Renew,
        (true, _, true) => Decision::Yield,
        (false, true, _) | (false, false, true) => Decision::Acquire,
        (false, false, false) => Decision::Wait {
            holder: holder.to_string(),
        },
    }
}

/// The lease spec we write for `decision` (Acquire or Renew).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: &Decision,
    identity: &str,
    duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let transitions = current.and_then(|s| s.lease_transitions).unwrap_or(0);
    match (decision, current) {
        (Decision::Renew, Some(spec)) => LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            ..spec.clone()
        },
        _ => LeaseSpec {
            holder_identity: Some(identity.to_string()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            lease_transitions: Some(if current.is_some() {
                transitions + 1
            } else {
                0
            }),
            ..LeaseSpec::default()
        },
    }
}

/// This replica's right to write, published on a `watch` channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    /// Writes are allowed strictly before this instant; `None` = not leading.
    pub valid_until: Option<Instant>,
    /// Orders this term among all terms, for announcer `Sync` generations
    /// (`epoch << 20` + a per-term count): with leader election `2^43 + leaseTransitions + 1`,
    /// which grows with every change of holder, so a deposed leader's late Sync is refused as
    /// stale; without it the start time in Unix milliseconds (below 2^43 until the year 2248).
    /// 0 when not leading.
    pub epoch: u64,
}

impl Claim {
    /// A claim that never lapses (leader election disabled).
    pub fn forever() -> Self {
        // Without a Lease the start time orders successive processes.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(1));
        Claim {
            valid_until: Some(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
            epoch: started,
        }
    }

    /// True while writes are allowed.
    pub fn is_current(&self) -> bool {
        self.valid_until.is_some_and(|until| Instant::now() < until)
    }
}

/// Resolves once `claims` shows a current claim.
pub async fn wait_for_claim(claims: &mut watch::Receiver<Claim>) {
    loop {
        if claims.borrow_and_update().is_current() {
            return;
        }
        if claims.changed().await.is_err() {
            // The election loop ended; never lead again.
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once the claim is no longer current (lapsed by time or withdrawn).
pub async fn claim_lost(claims: &mut watch::Receiver<Claim>) {
    loop {
        let until = claims.borrow_and_update().valid_until;
        match until {
            Some(until) if Instant::now() < until => {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    changed = claims.changed() => if changed.is_err() { return },
                }
            }
            _ => return,
        }
    }
}

/// Settings of the election loop.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Our holder identity.
    pub identity: String,
    /// Lease duration written into the Lease.
    pub duration: Duration,
    /// How long after sending a renewal we may still write.
    pub renew_deadline: Duration,
    /// Pause between rounds.
    pub retry_period: Duration,
}

/// Runs the election forever, publishing the claim on `claims`.
pub async fn run(
    client: Client,
    settings: LeaseSettings,
    claims: watch::Sender<Claim>,
    metrics: std::sync::Arc<Metrics>,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut leading = false;
    loop {
        let started = Instant::now();
        match round(&api, &settings).await {
            Ok(Some(transitions)) => {
                if !leading {
                    tracing::info!(identity = %settings.identity, "acquired the leader Lease");
                    metrics.leader_transitions.inc();
                }
                leading = true;
                claims.send_replace(Claim {
                    valid_until: Some(started + settings.renew_deadline),
                    epoch: LEASE_EPOCH_BASE + u64::try_from(transitions).unwrap_or(0) + 1,
                });
            }
            Ok(None) => {
                if leading {
                    tracing::warn!(identity = %settings.identity, "lost the leader Lease");
                }
                leading = false;
                claims.send_replace(Claim::default());
            }
            Err(error) => {
                // Keep the current claim: it lapses by itself at its deadline.
                tracing::warn!(%error, "leader Lease round failed");
                metrics.reconcile_error(error.metric_label());
            }
        }
        metrics.leader.set(i64::from(claims.borrow().is_current()));
        tokio::time::sleep_until(started + settings.retry_period).await;
    }
}

/// Gives the Lease up on shutdown (after every writer has stopped), so a standby replica takes
/// over at its next retry instead of waiting for the lease to expire. Best effort: a failure
/// only means the standby waits for expiry.
pub async fn release(client: Client, settings: &LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let Ok(Some(mut lease)) = api.get_opt(LEASE_NAME).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    match api
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!("released the leader Lease"),
        Err(error) => tracing::warn!(%error, "could not release the leader Lease"),
    }
}

/// One read-decide-write round. Returns the Lease's transitions when we hold it afterwards.
async fn round(api: &Api<Lease>, settings: &LeaseSettings) -> Result<Option<i32>> {
    let action = format!("update Lease {}/{LEASE_NAME}", settings.namespace);
    let current = api
        .get_opt(LEASE_NAME)
        .await
        .map_err(|source| Error::from_kube(action.clone(), source))?;
    let now = Timestamp::now();
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &settings.identity,
        now,
    );
    match decision {
        Decision::Wait { .. } | Decision::Yield => return Ok(None),
        Decision::Acquire | Decision::Renew => {}
    }
    let spec = next_spec(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &decision,
        &settings.identity,
        settings.duration,
        now,
    );
    let transitions = spec.lease_transitions.unwrap_or(0);
    let result = match current {
        Some(mut lease) => {
            // PUT carries the resourceVersion we read: a concurrent writer makes this a 409.
            lease.spec = Some(spec);
            api.replace(LEASE_NAME, &PostParams::default(), &lease)
                .await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.to_string()),
                    namespace: Some(settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(Some(transitions)),
        // Somebody else won this round.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(source) => Err(Error::from_kube(action, source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_secs_ago: i64, duration: i32, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn missing_lease_is_acquired() {
        assert_eq!(decide(None, "a", Timestamp::now()), Decision::Acquire);
    }

    #[test]
    fn own_valid_lease_is_renewed() {
        let now = Timestamp::now();
        assert_eq!(
            decide(Some(&spec("a", 3, 15, now)), "a", now),
            Decision::Renew
        );
    }

    #[test]
    fn own_expired_lease_yields() {
        let now = Timestamp::now();
        assert_eq!(
            decide(Some(&spec("a", 20, 15, now)), "a", now),
            Decision::Yield
        );
    }

    #[test]
    fn other_holders_valid_lease_is_respected() {
        let now = Timestamp::now();
        assert_eq!(
            decide(Some(&spec("b", 14, 15, now)), "a", now),
            Decision::Wait { holder: "b".into() }
        );
    }

    #[test]
    fn other_holders_expired_or_empty_lease_is_taken() {
        let now = Timestamp::now();
        assert_eq!(
            decide(Some(&spec("b", 15, 15, now)), "a", now),
            Decision::Acquire
        );
        assert_eq!(
            decide(Some(&spec("", 1, 15, now)), "a", now),
            Decision::Acquire
        );
        let no_times = LeaseSpec {
            holder_identity: Some("b".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(decide(Some(&no_times), "a", now), Decision::Acquire);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewal_keeps_acquire_time() {
        let now = Timestamp::now();
        let old = LeaseSpec {
            lease_transitions: Some(4),
            ..spec("b", 30, 15, now)
        };
        let taken = next_spec(
            Some(&old),
            &Decision::Acquire,
            "a",
            Duration::from_secs(15),
            now,
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(5));
        let later = now + SignedDuration::from_secs(2);
        let renewed = next_spec(
            Some(&taken),
            &Decision::Renew,
            "a",
            Duration::from_secs(15),
            later,
        );
        assert_eq!(renewed.acquire_time, taken.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
    }

    #[tokio::test]
    async fn claim_lapses_at_its_deadline_without_any_message() {
        let (tx, mut rx) = watch::channel(Claim {
            valid_until: Some(Instant::now() + Duration::from_millis(200)),
            epoch: 1,
        });
        assert!(rx.borrow().is_current());
        let started = Instant::now();
        claim_lost(&mut rx).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(!rx.borrow().is_current());
        drop(tx);
    }
}
