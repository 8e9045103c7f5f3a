//! PATCH bodies, chosen by `Content-Type` like the real apiserver:
//!
//! | content type                              | module        | semantics                      |
//! |-------------------------------------------|---------------|--------------------------------|
//! | `application/json-patch+json`             | [`json`]      | RFC 6902, including `test`     |
//! | `application/merge-patch+json`            | [`merge`]     | RFC 7386                       |
//! | `application/strategic-merge-patch+json`  | [`strategic`] | lists merged by key            |
//! | `application/apply-patch+yaml` (JSON body)| [`apply`]     | server-side apply, approximated|
//!
//! Each function takes the current object and returns the patched one; the
//! store then applies the usual update rules (resourceVersion, generation,
//! status subresource, finalizers).

pub mod apply;
pub mod json;
pub mod merge;
pub mod strategic;

use serde_json::Value;

use crate::error::ApiError;

/// The patch flavour named by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    /// Maps a `Content-Type` header (parameters ignored) to a patch kind.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json (got `{other}`)"
            ))),
        }
    }
}

/// Parses a PATCH body as JSON, naming the patch kind in the error.
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let hint = if kind == PatchKind::Apply {
            " (this server accepts apply patches in JSON form only, as kube-rs and kubectl send them)"
        } else {
            ""
        };
        ApiError::BadRequest(format!("{kind:?} patch body is not valid JSON: {e}{hint}"))
    })
}

/// Applies a non-apply patch to `current`.
pub fn apply_patch(kind: PatchKind, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => json::apply(current, patch),
        PatchKind::Merge => Ok(merge::apply(current, patch)),
        PatchKind::Strategic => strategic::apply(current, patch),
        PatchKind::Apply => Ok(apply::merge_applied(current, patch)),
    }
}
