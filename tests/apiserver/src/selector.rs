//! Label and field selectors, parsed from the `labelSelector` / `fieldSelector`
//! query parameters and matched against stored objects (for LIST, WATCH and
//! `deletecollection`).
//!
//! Label selectors follow `k8s.io/apimachinery/pkg/labels`: `a=b`, `a==b`,
//! `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not exist),
//! `a>1`, `a<1`, joined by commas. Field selectors accept `=`, `==` and `!=` on
//! any dotted path (`metadata.name`, `involvedObject.uid`, ...); a missing
//! field compares as the empty string, as in the real server.

use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelRequirement {
    key: String,
    op: LabelOp,
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query value.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in split_top_level(text).map_err(|e| selector_error(text, &e))? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_label_term(term).map_err(|e| selector_error(text, &e))?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|req| {
            let value = labels.and_then(|l| l.get(&req.key)).and_then(Value::as_str);
            match &req.op {
                LabelOp::Equals(v) => value == Some(v.as_str()),
                LabelOp::NotEquals(v) => value != Some(v.as_str()),
                LabelOp::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                LabelOp::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
                LabelOp::Exists => value.is_some(),
                LabelOp::DoesNotExist => value.is_none(),
                LabelOp::GreaterThan(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::LessThan(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

fn selector_error(text: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "unable to parse requirement: labelSelector `{text}`: {problem}"
    ))
}

/// Splits on commas that are not inside a `( ... )` value list.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("`)` without a matching `(`".to_owned());
                }
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed `(`".to_owned());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelRequirement {
            key: valid_key(key.trim())?,
            op: LabelOp::DoesNotExist,
        });
    }
    if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .filter(|c| *c > open)
            .ok_or_else(|| format!("`{term}`: unclosed `(`"))?;
        let head: Vec<&str> = term[..open].split_whitespace().collect();
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        for v in &values {
            valid_value(v)?;
        }
        return match head.as_slice() {
            [key, "in"] => Ok(LabelRequirement {
                key: valid_key(key)?,
                op: LabelOp::In(values),
            }),
            [key, "notin"] => Ok(LabelRequirement {
                key: valid_key(key)?,
                op: LabelOp::NotIn(values),
            }),
            _ => Err(format!(
                "`{term}`: expected `key in (...)` or `key notin (...)`"
            )),
        };
    }
    for (token, make) in [
        ("!=", LabelOp::NotEquals as fn(String) -> LabelOp),
        ("==", LabelOp::Equals),
        ("=", LabelOp::Equals),
    ] {
        if let Some((key, value)) = term.split_once(token) {
            let value = value.trim();
            valid_value(value)?;
            return Ok(LabelRequirement {
                key: valid_key(key.trim())?,
                op: make(value.to_owned()),
            });
        }
    }
    for (token, greater) in [(">", true), ("<", false)] {
        if let Some((key, value)) = term.split_once(token) {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{term}`: `{}` is not an integer", value.trim()))?;
            return Ok(LabelRequirement {
                key: valid_key(key.trim())?,
                op: if greater {
                    LabelOp::GreaterThan(n)
                } else {
                    LabelOp::LessThan(n)
                },
            });
        }
    }
    Ok(LabelRequirement {
        key: valid_key(term)?,
        op: LabelOp::Exists,
    })
}

fn valid_key(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("empty label key".to_owned());
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(format!("label key `{key}` contains `{bad}`"));
    }
    Ok(key.to_owned())
}

fn valid_value(value: &str) -> Result<(), String> {
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("label value `{value}` contains `{bad}`"));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    path: Vec<String>,
    value: String,
    equal: bool,
}

/// A parsed field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query value.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, equal) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, true)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid fieldSelector `{text}`: `{term}` is not `field=value`, `field==value` or `field!=value`"
                )));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "invalid fieldSelector `{text}`: `{term}` has no field name"
                )));
            }
            requirements.push(FieldRequirement {
                path: path.split('.').map(str::to_owned).collect(),
                value: value.trim().to_owned(),
                equal,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|req| {
            let mut cur = Some(obj);
            for part in &req.path {
                cur = cur.and_then(|v| v.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == req.value) == req.equal
        })
    }
}

/// Both selectors of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(crate::meta::labels(obj)) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_selector_table() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (db, web)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("app notin (web,db)", false),
            ("missing notin (web)", true),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app in (web,db),tier", true),
            ("n>4", true),
            ("n<4", false),
        ];
        for (text, want) in cases {
            let sel = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(sel.matches(Some(&l)), want, "selector `{text}`");
        }
    }

    #[test]
    fn bad_label_selectors_name_the_problem() {
        for (text, needle) in [
            ("app in (web", "unclosed"),
            ("app)", "without a matching"),
            ("app=we b", "contains ` `"),
            ("app inn (x)", "expected `key in"),
            ("n>x", "not an integer"),
        ] {
            let err = LabelSelector::parse(text).expect_err(text).to_string();
            assert!(err.contains(needle) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn field_selector_matches_paths() {
        let obj =
            json!({"metadata": {"name": "a", "namespace": "ns"}, "involvedObject": {"uid": "u1"}});
        for (text, want) in [
            ("metadata.name=a", true),
            ("metadata.name==b", false),
            ("metadata.name!=b,metadata.namespace=ns", true),
            ("involvedObject.uid=u1", true),
            ("spec.missing=", true),
        ] {
            assert_eq!(
                FieldSelector::parse(text).map(|s| s.matches(&obj)),
                Ok(want),
                "{text}"
            );
        }
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
