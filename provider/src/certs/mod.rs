//! Certificates for the provider ↔ announcer gRPC link (mutual TLS), with no manual step.
//!
//! ```text
//!  managed (default)                              files (cert-manager, your own PKI)
//!  Secret ferrolb-ca ──► plan ──► Secret ferrolb-announcer-tls     --announcer-client-cert/-key/-ca
//!   (CA; created if     (pure)    (tls.crt/tls.key/ca.crt,             │ re-read every
//!    missing)             │        mounted by every announcer)         │ --cert-recheck-interval
//!                         └──► provider client cert (in memory) ──┐    │
//!                                                                 ▼    ▼
//!                                      watch::Sender<Option<Arc<ClientTls>>> ──► gRPC client
//! ```
//!
//! [`issue`] makes and reads certificates, [`plan`] decides from the Secrets as read and the
//! time what must be (re)issued; both are pure and tested with an injected clock. [`managed`]
//! and [`files`] are the I/O loops; [`run`] picks one. Leaves are replaced at two thirds of
//! their validity. The announcers re-read their mounted files, so no pod restarts.

pub mod args;
mod client;
pub mod files;
pub mod issue;
pub mod managed;
pub mod plan;

use std::sync::Arc;

use tokio::sync::watch;

pub use args::{TlsArgs, TlsMode};
pub use client::ClientTls;
pub use issue::{ANNOUNCER_SERVER_NAME, PROVIDER_CLIENT_NAME};

/// Why a pass of the certificate loop failed; each names the Secret or file and key.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A certificate or key could not be used.
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    /// rcgen failed to make a key or certificate.
    #[error("issuing {what}: {source}")]
    Issue {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    /// The API server refused or failed a request.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// Another writer (a second replica) changed the Secret first; re-read and retry.
    #[error("{action}: the Secret changed or appeared meanwhile (conflict); re-reading")]
    Conflict { action: String },
    /// A file of files mode could not be read.
    #[error("reading {flag} {path}: {source}")]
    File {
        flag: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CertsError {
    /// Wraps a kube error; 409 (AlreadyExists on create, stale resourceVersion on update)
    /// becomes [`CertsError::Conflict`].
    pub fn kube(action: String, source: kube::Error) -> Self {
        match source {
            kube::Error::Api(status) if status.code == 409 => CertsError::Conflict { action },
            source => CertsError::Kube { action, source },
        }
    }
}

/// The sender the certificate task publishes on; `None` until the first material is ready.
pub type ClientTlsSender = watch::Sender<Option<Arc<ClientTls>>>;

/// Runs forever: keeps the announcer certificates (managed mode) and the provider's client
/// certificate current and publishes the latter on `tx`. `namespace` holds the Secrets
/// (the provider's `--config-namespace`). Failures are logged and retried with backoff.
pub async fn run(client: kube::Client, namespace: String, args: TlsArgs, tx: ClientTlsSender) {
    match args.announcer_tls {
        TlsMode::Managed => managed::run(client, namespace, args, tx).await,
        TlsMode::Files => files::run(args, tx).await,
    }
}
