//! JSON Patch building blocks shared by the pure core (`desired.rs`, the index) and the I/O
//! tasks (`writer.rs`, `nodes.rs`), so the core never imports a task for a helper.

use json_patch::{PatchOperation, TestOperation, jsonptr::PointerBuf};
use serde_json::Value;

/// Builds a JSON pointer from unescaped segments (RFC 6901 escaping of `~` and `/`).
pub fn pointer(segments: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(segments.iter().copied())
}

/// `test` that the object still has the resourceVersion we computed the patch from, so an
/// object changed meanwhile is never overwritten (the API server refuses the patch).
pub fn test_resource_version(resource_version: &str) -> PatchOperation {
    PatchOperation::Test(TestOperation {
        path: pointer(&["metadata", "resourceVersion"]),
        value: Value::String(resource_version.to_string()),
    })
}
