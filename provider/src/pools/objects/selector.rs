//! Label selectors as pools use them: `matchLabels` and `matchExpressions` (Kubernetes'
//! `LabelSelector`), with Cilium's virtual keys for a Service's namespace and name.
//!
//! A selector is parsed once from the object's JSON into a [`Selector`] (bad operators and
//! missing values become an error naming the field), then evaluated per Service with no
//! allocation. An absent selector selects everything; an empty one (`{}`) does too, as in
//! Kubernetes.

use std::collections::BTreeMap;

use serde_json::Value;

/// Virtual label holding a Service's namespace (Cilium's `io.kubernetes.service.namespace`).
pub const SERVICE_NAMESPACE_KEY: &str = "io.kubernetes.service.namespace";
/// Virtual label holding a Service's name (Cilium's `io.kubernetes.service.name`).
pub const SERVICE_NAME_KEY: &str = "io.kubernetes.service.name";

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `In`: the label is present with one of the values.
    In(String, Vec<String>),
    /// `NotIn`: the label is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// `Exists`.
    Exists(String),
    /// `DoesNotExist`.
    DoesNotExist(String),
}

/// A parsed label selector. The default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `matchLabels`: every pair must be present.
    pub labels: BTreeMap<String, String>,
    /// `matchExpressions`: every requirement must hold.
    pub requirements: Vec<Requirement>,
}

/// What a selector is evaluated against: labels plus the virtual keys.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The object's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Value of [`SERVICE_NAMESPACE_KEY`] (None for objects without one, such as Nodes).
    pub namespace: Option<&'a str>,
    /// Value of [`SERVICE_NAME_KEY`].
    pub name: Option<&'a str>,
}

impl Subject<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            SERVICE_NAMESPACE_KEY if self.namespace.is_some() => self.namespace,
            SERVICE_NAME_KEY if self.name.is_some() => self.name,
            _ => self.labels.get(key).map(String::as_str),
        }
    }
}

impl Selector {
    /// A selector no object satisfies (stands in for one that could not be read).
    pub fn nothing() -> Selector {
        Selector {
            labels: BTreeMap::new(),
            requirements: vec![Requirement::In(String::new(), Vec::new())],
        }
    }

    /// Parses a `LabelSelector` object; `field` (for example `spec.serviceSelector`) is named
    /// in errors.
    pub fn parse(value: &Value, field: &str) -> Result<Selector, String> {
        let Some(object) = value.as_object() else {
            return Err(format!(
                "{field}: expected an object with matchLabels/matchExpressions"
            ));
        };
        let mut selector = Selector::default();
        if let Some(labels) = object.get("matchLabels").filter(|v| !v.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| format!("{field}.matchLabels: expected a map of strings"))?;
            for (key, value) in labels {
                let value = value.as_str().ok_or_else(|| {
                    format!("{field}.matchLabels.{key}: expected a string, got {value}")
                })?;
                selector.labels.insert(key.clone(), value.to_string());
            }
        }
        if let Some(expressions) = object.get("matchExpressions").filter(|v| !v.is_null()) {
            let expressions = expressions
                .as_array()
                .ok_or_else(|| format!("{field}.matchExpressions: expected a list"))?;
            for (i, expression) in expressions.iter().enumerate() {
                let at = format!("{field}.matchExpressions[{i}]");
                selector
                    .requirements
                    .push(parse_requirement(expression, &at)?);
            }
        }
        Ok(selector)
    }

    /// Whether the selector selects `subject`.
    pub fn matches(&self, subject: Subject<'_>) -> bool {
        self.labels
            .iter()
            .all(|(key, value)| subject.get(key) == Some(value.as_str()))
            && self.requirements.iter().all(|r| match r {
                Requirement::In(key, values) => subject
                    .get(key)
                    .is_some_and(|v| values.iter().any(|x| x == v)),
                Requirement::NotIn(key, values) => subject
                    .get(key)
                    .is_none_or(|v| values.iter().all(|x| x != v)),
                Requirement::Exists(key) => subject.get(key).is_some(),
                Requirement::DoesNotExist(key) => subject.get(key).is_none(),
            })
    }
}

fn parse_requirement(value: &Value, at: &str) -> Result<Requirement, String> {
    let key = value
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("{at}.key: required"))?
        .to_string();
    let operator = value
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.operator: required"))?;
    let values: Vec<String> = match value.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{at}.values: expected strings, got {v}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("{at}.values: expected a list, got {other}")),
    };
    match operator {
        "In" | "NotIn" if values.is_empty() => Err(format!(
            "{at}.values: must be non-empty when operator is {operator}"
        )),
        "In" => Ok(Requirement::In(key, values)),
        "NotIn" => Ok(Requirement::NotIn(key, values)),
        "Exists" | "DoesNotExist" if !values.is_empty() => Err(format!(
            "{at}.values: must be empty when operator is {operator}"
        )),
        "Exists" => Ok(Requirement::Exists(key)),
        "DoesNotExist" => Ok(Requirement::DoesNotExist(key)),
        other => Err(format!(
            "{at}.operator: `{other}` is not In, NotIn, Exists or DoesNotExist"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn selects(selector: &Value, pairs: &[(&str, &str)], namespace: &str, name: &str) -> bool {
        let labels = labels(pairs);
        Selector::parse(selector, "spec.serviceSelector")
            .expect("valid selector")
            .matches(Subject {
                labels: &labels,
                namespace: Some(namespace),
                name: Some(name),
            })
    }

    #[test]
    fn the_seed_selectors_select_as_cilium_documents() {
        let blue = json!({"matchExpressions": [{"key": "color", "operator": "In", "values": ["blue", "cyan"]}]});
        assert!(selects(&blue, &[("color", "cyan")], "example", "a"));
        assert!(!selects(&blue, &[("color", "red")], "example", "a"));
        assert!(!selects(&blue, &[], "example", "a"));
        let red = json!({"matchLabels": {"color": "red"}});
        assert!(selects(&red, &[("color", "red")], "example", "a"));
        let tenant = json!({"matchLabels": {"io.kubernetes.service.namespace": "tenant-a"}});
        assert!(selects(&tenant, &[], "tenant-a", "a"));
        assert!(!selects(&tenant, &[], "tenant-b", "a"));
        let by_name = json!({"matchExpressions": [{"key": "io.kubernetes.service.name", "operator": "NotIn", "values": ["b"]}]});
        assert!(selects(&by_name, &[], "x", "a") && !selects(&by_name, &[], "x", "b"));
        assert!(selects(&json!({}), &[], "x", "a"));
    }

    #[test]
    fn exists_and_does_not_exist_look_at_presence_only() {
        let exists = json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]});
        assert!(selects(&exists, &[("tier", "")], "x", "a"));
        assert!(!selects(&exists, &[], "x", "a"));
        let absent = json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]});
        assert!(!selects(&absent, &[("tier", "web")], "x", "a"));
    }

    #[test]
    fn bad_selectors_name_the_field() {
        let cases = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}),
                "spec.serviceSelector.matchExpressions[0].operator: `Near` is not In, NotIn, Exists or DoesNotExist",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "spec.serviceSelector.matchExpressions[0].values: must be non-empty when operator is In",
            ),
            (
                json!({"matchLabels": {"a": 1}}),
                "spec.serviceSelector.matchLabels.a: expected a string, got 1",
            ),
        ];
        for (selector, message) in cases {
            assert_eq!(
                Selector::parse(&selector, "spec.serviceSelector").expect_err("invalid"),
                message
            );
        }
    }
}
