//! JSON Patch (RFC 6902). kube-runtime's `finalizer()` relies on the `test`
//! operation (RFC 6902 §4.6) to make finalizer edits conditional, so a failed
//! test must reject the whole patch (§5: operations apply atomically).

use serde_json::Value;

use crate::error::ApiError;

pub fn apply(current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::BadRequest(format!("invalid JSON Patch (RFC 6902) document: {e}"))
    })?;
    // Work on a copy: a failing operation leaves the stored object untouched.
    let mut doc = current.clone();
    for (index, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Test(test) = op {
            // Like the apiserver's JSON Patch library, testing a missing path
            // against `null` passes; kube-runtime's finalizer() relies on it
            // when it adds the first finalizer.
            if test.value.is_null() && doc.pointer(test.path.as_str()).is_none() {
                continue;
            }
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            ApiError::Invalid(format!(
                "the server rejected our request due to an error in our request: JSON Patch operation {index} on `{}` failed: {}",
                e.path, e.kind
            ))
        })?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    #[test]
    fn failed_test_operation_rejects_whole_patch() {
        let obj = json!({"metadata": {"finalizers": ["a"]}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": ["b"]},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        let err = apply(&obj, &patch).expect_err("test op must fail");
        assert_eq!(err.code(), 422);
        assert!(err.to_string().contains("/metadata/finalizers"), "{err}");
    }

    #[test]
    fn passing_test_then_add_applies() {
        let obj = json!({"metadata": {"finalizers": ["a"]}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": ["a"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "b"}
        ]);
        assert_eq!(
            apply(&obj, &patch),
            Ok(json!({"metadata": {"finalizers": ["a", "b"]}}))
        );
    }

    #[test]
    fn test_of_null_on_a_missing_path_passes() {
        let obj = json!({"metadata": {}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["a"]}
        ]);
        assert_eq!(
            apply(&obj, &patch),
            Ok(json!({"metadata": {"finalizers": ["a"]}}))
        );
    }

    #[test]
    fn non_array_body_is_bad_request() {
        let err = apply(&json!({}), &json!({"op": "add"})).expect_err("object is not a patch");
        assert_eq!(err.code(), 400);
    }
}
