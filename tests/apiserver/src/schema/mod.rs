//! Structural-schema semantics of a CRD version's `openAPIV3Schema`, applied to
//! custom resources the way kube-apiserver's apiextensions code does on every
//! write: prune unknown fields, apply defaults, then validate.
//!
//! ```text
//!  request object ──► prune (unknown fields and non-nullable nulls dropped,
//!                     │       except under x-kubernetes-preserve-unknown-fields)
//!                     ├─► default (missing or null properties get `default`, top-down)
//!                     └─► validate ──► Vec<FieldError> ──► 422 Invalid with details.causes
//! ```
//!
//! The messages are the ones a real server prints: apiextensions-apiserver turns
//! go-openapi's validation results into `field.Error`s
//! (`kubeOpenAPIResultToFieldErrors`): `required` → `Required value`, `enum` →
//! `Unsupported value: "x": supported values: "a", "b"`, `maxLength` → `Too long:
//! may not be more than N bytes`, `maxItems` → `Too many: N: must have at most M
//! items`, a wrong type → `Invalid value: "string": spec.x in body must be of
//! type integer: "string"`, and everything else → `Invalid value: <value>:
//! <go-openapi sentence>` (`spec.x in body should match '^a$'`, `should be
//! greater than or equal to 1`, `should be at least 1 chars long`, `should have
//! at least 1 items`, `shouldn't contain duplicates`, `must be of type cidr`).
//! Pure: no store, no HTTP.

mod formats;
mod prune;
mod structural;

use serde_json::{Map, Value};

pub use formats::format_matches;
pub use prune::{prune, unknown_fields};
pub use structural::structural_errors;

/// One problem with one field, as `k8s.io/apimachinery/pkg/util/validation/field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The `metav1.CauseType` (`FieldValueRequired`, `FieldValueInvalid`, ...).
    pub reason: &'static str,
    /// The dotted path (`spec.blocks[0].cidr`).
    pub field: String,
    /// `ErrorBody()`: the text after `field: `.
    pub body: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

/// Go's `%#v`-like rendering field errors use for bad values.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => "[]interface {}{...}".to_owned(),
        Value::Object(_) => "map[string]interface {}{...}".to_owned(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of a map's values (`additionalProperties: {schema}`), if any.
fn additional(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

/// Sets `default` on every missing (or non-nullable `null`) property, top-down,
/// so a defaulted object gets its own nested defaults too.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = properties(schema) {
                for (key, sub) in props {
                    let Some(default) = sub.get("default") else {
                        continue;
                    };
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !flag(sub, "nullable"),
                        Some(_) => false,
                    };
                    if missing {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            let props = properties(schema);
            let extra = additional(schema);
            for (key, v) in map.iter_mut() {
                if let Some(sub) = props.and_then(|p| p.get(key)).or(extra) {
                    apply_defaults(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    apply_defaults(sub, item);
                }
            }
        }
        _ => {}
    }
}

/// Every violation of `schema` in `object`; the root's `metadata`, `apiVersion`
/// and `kind` are checked by the server itself, not here.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_at(schema, object, "", true, &mut errors);
    errors
}

fn push(errors: &mut Vec<FieldError>, reason: &'static str, field: &str, body: String) {
    let error = FieldError {
        reason,
        field: field.to_owned(),
        body,
    };
    // field.ErrorList.ToAggregate() drops duplicates.
    if !errors.contains(&error) {
        errors.push(error);
    }
}

fn invalid(errors: &mut Vec<FieldError>, field: &str, value: &Value, detail: String) {
    push(
        errors,
        "FieldValueInvalid",
        field,
        format!("Invalid value: {}: {detail}", go_value(value)),
    );
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn validate_at(
    schema: &Value,
    value: &Value,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    // A null the pruner kept (root or an explicit property) is a type error
    // below unless the field is nullable.
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            let shown = json_type(value);
            push(
                errors,
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {shown:?}: {path} in body must be of type integer,string: {shown:?}"
                ),
            );
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        let shown = json_type(value);
        push(
            errors,
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: {shown:?}: {path} in body must be of type {expected}: {shown:?}"
            ),
        );
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => format!("{s:?}"),
                other => format!("{:?}", other.to_string()),
            })
            .collect();
        push(
            errors,
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                supported.join(", ")
            ),
        );
    }
    match value {
        Value::String(s) => validate_string(schema, s, value, path, errors),
        Value::Number(n) => validate_number(schema, n.as_f64().unwrap_or(0.0), value, path, errors),
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                push(
                    errors,
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {count}: must have at most {max} items"),
                );
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                invalid(
                    errors,
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                );
            }
            if flag(schema, "uniqueItems")
                && items
                    .iter()
                    .enumerate()
                    .any(|(i, a)| items[..i].contains(a))
            {
                invalid(
                    errors,
                    path,
                    value,
                    format!("{path} in body shouldn't contain duplicates"),
                );
            }
            list_type_duplicates(schema, items, path, errors);
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    validate_at(sub, item, &format!("{path}[{i}]"), false, errors);
                }
            }
        }
        Value::Object(map) => {
            for key in crate::meta::str_list(schema.get("required")) {
                if !map.contains_key(&key) {
                    push(
                        errors,
                        "FieldValueRequired",
                        &child(path, &key),
                        "Required value".to_owned(),
                    );
                }
            }
            let count = map.len() as u64;
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && count > max
            {
                push(
                    errors,
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {count}: must have at most {max} items"),
                );
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && count < min
            {
                invalid(
                    errors,
                    path,
                    value,
                    format!("{path} in body should have at least {min} properties"),
                );
            }
            let props = properties(schema);
            let extra = additional(schema);
            for (key, v) in map {
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(sub) = props.and_then(|p| p.get(key)).or(extra) {
                    validate_at(sub, v, &child(path, key), false, errors);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// `x-kubernetes-list-type: set` (no repeated value) and `map` (no two items
/// with the same `x-kubernetes-list-map-keys`), as `field.Duplicate` reports them.
fn list_type_duplicates(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let keys = crate::meta::str_list(schema.get("x-kubernetes-list-map-keys"));
    let identity = |item: &Value| -> Value {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => Value::Object(
                keys.iter()
                    .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                    .collect(),
            ),
            _ => item.clone(),
        }
    };
    if !matches!(
        schema.get("x-kubernetes-list-type").and_then(Value::as_str),
        Some("set" | "map")
    ) {
        return;
    }
    let ids: Vec<Value> = items.iter().map(identity).collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            let shown = match id {
                Value::Object(map) => format!(
                    "map[string]interface {{}}{{{}}}",
                    map.iter()
                        .map(|(k, v)| format!("{k:?}:{}", go_value(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => go_value(other),
            };
            push(
                errors,
                "FieldValueDuplicate",
                &format!("{path}[{i}]"),
                format!("Duplicate value: {shown}"),
            );
        }
    }
}

fn validate_string(
    schema: &Value,
    s: &str,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        push(
            errors,
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        );
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be at least {min} chars long"),
        );
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => invalid(
                errors,
                path,
                value,
                format!("{path} in body should match '{pattern}'"),
            ),
            Err(_) => {}
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_matches(format, s)
    {
        push(
            errors,
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: {s:?}: {path} in body must be of type {format}: {s:?}"),
        );
    }
}

fn validate_number(
    schema: &Value,
    n: f64,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let shown = |b: f64| {
        if b.fract() == 0.0 && b.abs() < 1e15 {
            format!("{}", b as i64)
        } else {
            b.to_string()
        }
    };
    if let Some(min) = bound("minimum") {
        if flag(schema, "exclusiveMinimum") && n <= min {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be greater than {}", shown(min)),
            );
        } else if n < min {
            invalid(
                errors,
                path,
                value,
                format!(
                    "{path} in body should be greater than or equal to {}",
                    shown(min)
                ),
            );
        }
    }
    if let Some(max) = bound("maximum") {
        if flag(schema, "exclusiveMaximum") && n >= max {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be less than {}", shown(max)),
            );
        } else if n > max {
            invalid(
                errors,
                path,
                value,
                format!(
                    "{path} in body should be less than or equal to {}",
                    shown(max)
                ),
            );
        }
    }
    if let Some(step) = bound("multipleOf")
        && step != 0.0
        && (n / step).fract() != 0.0
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be a multiple of {}", shown(step)),
        );
    }
}

/// What the real server does to a custom resource on every write, in its
/// order: prune, default, validate. A violation is 422 with one cause per field.
pub fn admit(
    rt: &crate::resources::ResourceType,
    object: &mut Value,
) -> Result<(), crate::ApiError> {
    let Some(schema) = rt.schema.as_deref() else {
        return Ok(());
    };
    prune(schema, object);
    apply_defaults(schema, object);
    let causes = validate(schema, object);
    if causes.is_empty() {
        return Ok(());
    }
    Err(crate::ApiError::InvalidFields {
        group: rt.group.clone(),
        kind: rt.kind.clone(),
        name: crate::meta::name(object).to_owned(),
        causes,
    })
}

/// The defaults of the current schema applied to a stored object on read, as
/// the real server does when it decodes from storage (objects written before a
/// default was added get it in responses).
pub fn defaulted_on_read<'a>(
    rt: &crate::resources::ResourceType,
    object: &'a Value,
) -> std::borrow::Cow<'a, Value> {
    match rt.schema.as_deref() {
        Some(schema) => {
            let mut copy = object.clone();
            apply_defaults(schema, &mut copy);
            if copy == *object {
                std::borrow::Cow::Borrowed(object)
            } else {
                std::borrow::Cow::Owned(copy)
            }
        }
        None => std::borrow::Cow::Borrowed(object),
    }
}

#[cfg(test)]
mod tests;
