//! CustomResourceDefinitions: turning a stored CRD into served resource types,
//! and the status a real apiserver would report (`Established`,
//! `NamesAccepted`), which `kube::runtime::wait::conditions::is_crd_established`
//! waits for.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::{PrinterColumn, ResourceType};

/// The resource types (one per served version) a CRD defines.
pub fn resource_types(crd: &Value) -> Result<Vec<ResourceType>, ApiError> {
    let crd_name = crate::meta::name(crd).to_owned();
    let problem = |what: &str| {
        ApiError::Invalid(format!(
            "CustomResourceDefinition.apiextensions.k8s.io \"{crd_name}\" is invalid: {what}"
        ))
    };
    let spec = crd.get("spec").ok_or_else(|| problem("spec is required"))?;
    let text = |path: &[&str]| -> Option<String> {
        let mut cur = spec;
        for p in path {
            cur = cur.get(p)?;
        }
        cur.as_str().map(str::to_owned)
    };
    let group = text(&["group"]).ok_or_else(|| problem("spec.group is required"))?;
    let plural =
        text(&["names", "plural"]).ok_or_else(|| problem("spec.names.plural is required"))?;
    let kind = text(&["names", "kind"]).ok_or_else(|| problem("spec.names.kind is required"))?;
    if crd_name != format!("{plural}.{group}") {
        return Err(problem(&format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group (`{plural}.{group}`)"
        )));
    }
    let namespaced = match text(&["scope"]).as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(problem(&format!(
                "spec.scope must be `Namespaced` or `Cluster`, not {other:?}"
            )));
        }
    };
    let singular = text(&["names", "singular"]).unwrap_or_else(|| kind.to_ascii_lowercase());
    let list_kind = text(&["names", "listKind"]).unwrap_or_else(|| format!("{kind}List"));
    let short_names = crate::meta::str_list(spec.pointer("/names/shortNames"));
    let categories = crate::meta::str_list(spec.pointer("/names/categories"));
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| problem("spec.versions must list at least one version"))?;
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        return Err(problem(&format!(
            "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{{...}}: \
             must have exactly one version marked as storage version (found {storage})"
        )));
    }
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut types = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let name = version
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| problem(&format!("spec.versions[{i}].name is required")))?;
        if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
            let causes = crate::schema::structural_errors(
                schema,
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
            );
            if !causes.is_empty() {
                return Err(ApiError::InvalidFields {
                    group: "apiextensions.k8s.io".to_owned(),
                    kind: "CustomResourceDefinition".to_owned(),
                    name: crd_name.clone(),
                    causes,
                });
            }
        }
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        types.push(ResourceType {
            group: group.clone(),
            version: name.to_owned(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            namespaced,
            status_subresource: version.pointer("/subresources/status").is_some(),
            short_names: short_names.clone(),
            defined_by_crd: Some(crd_name.clone()),
            printer_columns: printer_columns(version),
            categories: categories.clone(),
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .filter(|s| s.is_object())
                .cloned()
                .map(std::sync::Arc::new),
            storage_version: storage_version.clone(),
        });
    }
    Ok(types)
}

/// The `additionalPrinterColumns` whose jsonPath [`crate::jsonpath`] can
/// evaluate (other forms are left out of the table).
fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            let json_path = c.get("jsonPath")?.as_str()?;
            let parsed = crate::jsonpath::parse(json_path)?;
            let simple = parsed
                .0
                .iter()
                .all(|s| matches!(s, crate::jsonpath::Step::Key(k) if !k.contains(['/', '~'])));
            let pointer = if simple {
                parsed
                    .0
                    .iter()
                    .map(|s| match s {
                        crate::jsonpath::Step::Key(k) => format!("/{k}"),
                        _ => String::new(),
                    })
                    .collect()
            } else {
                String::new()
            };
            Some(PrinterColumn {
                name: name.to_owned(),
                kind: c
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_owned(),
                pointer,
                json_path: json_path.to_owned(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            })
        })
        .collect()
}

/// Writes the status a healthy apiserver reports once a CRD is served.
pub fn set_established(crd: &mut Value, now: &str) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    if let Some(obj) = crd.as_object_mut() {
        obj.insert(
            "status".to_owned(),
            json!({
                "acceptedNames": names,
                "storedVersions": stored,
                "conditions": [
                    condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                    condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
            }),
        );
    }
}
