//! The one error type of the server: every failure a client can cause, with the
//! HTTP code and `reason` a real kube-apiserver uses, rendered as a `kind: Status`
//! body so `kube::Error::Api` and kubectl print the message unchanged.

use serde_json::{Value, json};

/// A request the server refuses, in the shape of a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The named object (or resource type) does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    /// The URL names no resource this server serves.
    #[error("the server could not find the requested resource ({0})")]
    UnknownResource(String),
    /// POST of a name that is already taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// A write based on a stale `resourceVersion` or a failed precondition.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: String,
        name: String,
        detail: String,
    },
    /// The body or a query parameter cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// The body is understood but violates a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// An object that violates its schema, field by field (422 with
    /// `details.causes`, as `apierrors.NewInvalid` builds it).
    #[error(
        "{} \"{name}\" is invalid: {}",
        qualified_kind(group, kind),
        aggregate(causes)
    )]
    InvalidFields {
        group: String,
        kind: String,
        name: String,
        causes: Vec<crate::schema::FieldError>,
    },
    /// A watch or continue token refers to history the event log no longer holds.
    #[error("{0}")]
    Expired(String),
    /// The verb is not allowed on this URL.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A PATCH content type this server does not implement.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A failure injected by a test through [`crate::Faults`].
    #[error("{message}")]
    Injected { code: u16, message: String },
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownResource(_) => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::BadRequest(_) => 400,
            ApiError::Invalid(_) | ApiError::InvalidFields { .. } => 422,
            ApiError::Expired(_) => 410,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Injected { code, .. } => *code,
        }
    }

    /// The machine-readable `reason`, as `metav1.StatusReason` spells it.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownResource(_) => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Invalid(_) | ApiError::InvalidFields { .. } => "Invalid",
            ApiError::Expired(_) => "Expired",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Injected { code, .. } => reason_for_code(*code),
        }
    }

    /// The `kind: Status` document sent as the response body (and inside watch ERROR events).
    pub fn to_status(&self) -> Value {
        if let ApiError::InvalidFields {
            group,
            kind,
            name,
            causes,
        } = self
        {
            let causes: Vec<Value> = causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.body, "field": c.field}))
                .collect();
            return json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": self.to_string(),
                "reason": self.reason(),
                "details": {"name": name, "group": group, "kind": kind, "causes": causes},
                "code": self.code(),
            });
        }
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        })
    }

    /// Shorthand for the conflict every stale write gets.
    pub fn stale(resource: &str, name: &str) -> Self {
        ApiError::Conflict {
            resource: resource.to_owned(),
            name: name.to_owned(),
            detail: "the object has been modified; please apply your changes to the latest version and try again".to_owned(),
        }
    }
}

/// `Kind.group` as `schema.GroupKind.String()` prints it (`Kind` for the core group).
fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

/// `field.ErrorList.ToAggregate().Error()`: one error alone, several in brackets.
fn aggregate(causes: &[crate::schema::FieldError]) -> String {
    match causes {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The reason a real server gives for an HTTP code, for injected faults.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}
