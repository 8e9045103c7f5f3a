//! The cluster's heartbeat key: 32 random bytes in a Secret of the provider's namespace
//! (`--heartbeat-secret`, default `ferrolb-heartbeat`, data key `key`), sent to every
//! announcer in `SyncRequest.heartbeat_key` so layer2/vip candidates can authenticate each
//! other's heartbeats.
//!
//! ```text
//!   term start ──▶ get Secret ──found, 32 bytes──────────────▶ Ok(key) ──▶ Job (failover on)
//!                     │ 404 ──▶ create (409: get again)  ─────▶ Ok(key)
//!                     │ unusable data ──▶ update (409: get again) ▶ Ok(key)
//!                     └ error (RBAC, API down) ──▶ Err(sentence) ──▶ Job (first candidate
//!                                 ▲                                  only, no key), retry
//!                                 └──────── backoff 1 s .. 60 s ─────┘
//! ```
//!
//! Every leader reads the same Secret, so a hand-over keeps the key. What to do with what was
//! read is decided by the pure [`decide`]; [`run`] does the API calls.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, api::PostParams};
use tokio::sync::mpsc;

use super::model::HeartbeatKey;
use crate::{error::Error, metrics::Metrics};

/// The data key holding the 32 bytes.
pub const DATA_KEY: &str = "key";

/// Retry delays after a failed attempt: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Lost write races in a row before an attempt counts as failed.
const RACES: usize = 3;

/// What one attempt found out: the key, or a sentence naming the Secret and the problem.
pub type KeyOutcome = Result<HeartbeatKey, String>;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
enum KeyError {
    /// The API server refused or failed a request (RBAC, unreachable, a lost race).
    #[error(transparent)]
    Api(#[from] Error),
    /// The operating system's random generator failed.
    #[error("no key for Secret {0}: the system random generator failed")]
    Random(String),
}

impl KeyError {
    fn metric_label(&self) -> &'static str {
        match self {
            KeyError::Api(error) => error.metric_label(),
            KeyError::Random(_) => "random",
        }
    }
}

/// What to do with the Secret as read.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyPlan {
    /// It holds a usable key.
    Use(HeartbeatKey),
    /// It does not exist: create it.
    Create,
    /// It exists without a usable key (the text says why): write a new one into it.
    Replace(String),
}

/// Decides from the Secret's `data` (`None`: no such Secret).
pub fn decide(data: Option<&BTreeMap<String, ByteString>>) -> KeyPlan {
    let Some(data) = data else {
        return KeyPlan::Create;
    };
    match data.get(DATA_KEY) {
        None => KeyPlan::Replace(format!("it has no data key `{DATA_KEY}`")),
        Some(bytes) => match <[u8; HeartbeatKey::LEN]>::try_from(bytes.0.as_slice()) {
            Ok(key) => KeyPlan::Use(HeartbeatKey(key)),
            Err(_) => KeyPlan::Replace(format!(
                "data key `{DATA_KEY}` holds {} bytes, not {}",
                bytes.0.len(),
                HeartbeatKey::LEN
            )),
        },
    }
}

/// Fresh random key bytes from the operating system's generator (`None` if it failed).
pub fn generate() -> Option<HeartbeatKey> {
    use ring::rand::SecureRandom;
    let mut key = [0_u8; HeartbeatKey::LEN];
    ring::rand::SystemRandom::new().fill(&mut key).ok()?;
    Some(HeartbeatKey(key))
}

/// Gets or creates the key, retrying with backoff until it has one; reports every attempt's
/// outcome on `outcomes` (errors too, so the job can fall back at once) and returns after
/// the first key.
pub async fn run(
    client: kube::Client,
    namespace: String,
    name: String,
    outcomes: mpsc::UnboundedSender<KeyOutcome>,
    metrics: std::sync::Arc<Metrics>,
) {
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let what = format!("{namespace}/{name}");
    let mut backoff = BACKOFF.0;
    loop {
        match ensure(&secrets, &name, &what).await {
            Ok(key) => {
                let _ = outcomes.send(Ok(key));
                return;
            }
            Err(error) => {
                metrics
                    .heartbeat_key_errors
                    .get_or_create(&crate::metrics::ReasonLabel {
                        reason: error.metric_label().to_string(),
                    })
                    .inc();
                let problem = error.to_string();
                tracing::error!(
                    secret = %what,
                    "heartbeat key unavailable: {problem}; layer2/vip addresses go to their first candidate only, without announcer failover, until it is readable (retrying in {backoff:?})"
                );
                if outcomes.send(Err(problem)).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

/// One attempt: read, and create or repair when needed. A lost race re-reads.
async fn ensure(secrets: &Api<Secret>, name: &str, what: &str) -> Result<HeartbeatKey, KeyError> {
    let mut last = None;
    for _ in 0..RACES {
        let existing = secrets
            .get_opt(name)
            .await
            .map_err(|e| Error::from_kube(format!("get Secret {what}"), e))?;
        let replace = match decide(existing.as_ref().and_then(|s| s.data.as_ref())) {
            KeyPlan::Use(key) => return Ok(key),
            KeyPlan::Create => None,
            KeyPlan::Replace(reason) => Some(reason),
        };
        let key = generate().ok_or_else(|| KeyError::Random(what.to_string()))?;
        let result = match (&existing, &replace) {
            (Some(existing), Some(reason)) => {
                tracing::warn!(secret = %what, "heartbeat key unusable ({reason}); writing a new one");
                secrets
                    .replace(
                        name,
                        &PostParams::default(),
                        &secret(name, key, Some(existing)),
                    )
                    .await
                    .map_err(|e| Error::from_kube(format!("update Secret {what}"), e))
            }
            _ => secrets
                .create(&PostParams::default(), &secret(name, key, None))
                .await
                .map_err(|e| Error::from_kube(format!("create Secret {what}"), e)),
        };
        match result {
            Ok(_) => {
                tracing::info!(secret = %what, "heartbeat key written");
                return Ok(key);
            }
            // Another replica (or a previous leader) wrote first: read its key.
            Err(error @ Error::Conflict { .. }) => last = Some(error),
            Err(error) => return Err(error.into()),
        }
    }
    Err(last
        .unwrap_or(Error::Conflict {
            action: format!("write Secret {what}"),
        })
        .into())
}

/// The Secret holding `key` (keeping the labels, annotations and version of `existing`).
fn secret(name: &str, key: HeartbeatKey, existing: Option<&Secret>) -> Secret {
    let mut labels = existing
        .and_then(|s| s.metadata.labels.clone())
        .unwrap_or_default();
    labels.insert(
        crate::certs::managed::MANAGED_BY.0.into(),
        crate::certs::managed::MANAGED_BY.1.into(),
    );
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            annotations: existing.and_then(|s| s.metadata.annotations.clone()),
            resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
            ..Default::default()
        },
        type_: existing
            .and_then(|s| s.type_.clone())
            .or_else(|| Some("Opaque".into())),
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(key.0.to_vec()),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(bytes: &[u8]) -> BTreeMap<String, ByteString> {
        BTreeMap::from([(DATA_KEY.to_string(), ByteString(bytes.to_vec()))])
    }

    #[test]
    fn a_secret_is_used_created_or_repaired() {
        assert_eq!(decide(None), KeyPlan::Create);
        assert_eq!(
            decide(Some(&data(&[7; 32]))),
            KeyPlan::Use(HeartbeatKey([7; 32]))
        );
        assert_eq!(
            decide(Some(&data(&[7; 16]))),
            KeyPlan::Replace("data key `key` holds 16 bytes, not 32".into())
        );
        assert_eq!(
            decide(Some(&BTreeMap::new())),
            KeyPlan::Replace("it has no data key `key`".into())
        );
    }

    #[test]
    fn generated_keys_differ_and_never_print() {
        let (a, b) = (generate().expect("key"), generate().expect("key"));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "HeartbeatKey(<redacted>)");
    }
}
