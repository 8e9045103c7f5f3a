//! The provider's error type.
//!
//! One enum for the library; `metric_label()` turns each kind into the `kind` label of the
//! `ferrolb_reconcile_errors_total` counter so a dashboard shows *what* keeps failing.

/// Errors of the controller's I/O side (the pure index never fails as a whole: bad input
/// becomes conditions and events on the affected Services).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API request `{action}` failed: {source}")]
    Kube {
        /// What we were doing, e.g. "patch Service default/web".
        action: String,
        #[source]
        source: kube::Error,
    },
    /// A conditional write lost against a newer version of the object.
    #[error("`{action}`: the object changed since it was read (resourceVersion conflict)")]
    Conflict {
        /// What we were doing.
        action: String,
    },
    /// The process does not hold the Lease (or its claim is stale), so it must not write.
    #[error("not writing `{action}`: this replica does not hold the leader Lease")]
    NotLeader {
        /// What we were about to do.
        action: String,
    },
    /// A request took longer than allowed.
    #[error("`{action}` timed out")]
    Timeout {
        /// What we were doing.
        action: String,
    },
}

impl Error {
    /// Stable, low-cardinality name of the error kind for Prometheus labels.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(status) if status.code == 404 => "not_found",
                kube::Error::Api(status) if status.code >= 500 => "api_server_error",
                kube::Error::Api(_) => "api_rejected",
                _ => "transport",
            },
            Error::Conflict { .. } => "conflict",
            Error::NotLeader { .. } => "not_leader",
            Error::Timeout { .. } => "timeout",
        }
    }

    /// Wraps a kube error, turning a 409 (stale resourceVersion) and a 422 from a failed JSON
    /// Patch `test` into [`Error::Conflict`].
    pub fn from_kube(action: impl Into<String>, source: kube::Error) -> Self {
        let action = action.into();
        match &source {
            kube::Error::Api(status) if is_conflict_code(status.code) => Error::Conflict { action },
            _ => Error::Kube { action, source },
        }
    }
}

/// 409 is a stale resourceVersion; a JSON Patch whose `test` fails is rejected with 422
/// by kube-apiserver (and 409 by some servers) — both mean "re-read and recompute".
fn is_conflict_code(code: u16) -> bool {
    code == 409 || code == 422
}

/// Result with the provider's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
