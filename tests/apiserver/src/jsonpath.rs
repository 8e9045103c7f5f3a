//! The subset of Kubernetes JSONPath that CRD `additionalPrinterColumns` use:
//! `.a.b`, `['a.b']`, `[0]`, `[*]` and equality filters such as
//! `.status.conditions[?(@.type=="Ready")].status`. Parsed once when the CRD is
//! stored, evaluated for every table row.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]` (or `!=`): the elements whose `a.b` equals (or differs from) `v`.
    Filter {
        path: Vec<String>,
        value: Value,
        equal: bool,
    },
}

/// A parsed path; `None` from [`parse`] means a form this subset does not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<Step>);

/// Parses `.a.b[0]` (braces `{...}` allowed around it, as kubectl writes them).
pub fn parse(text: &str) -> Option<Path> {
    let text = text.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let mut rest = text.strip_prefix('$').unwrap_or(text);
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return None;
            }
            steps.push(Step::Key(key.to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = find_close(r)?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            steps.push(bracket(inner)?);
        } else {
            return None;
        }
    }
    (!steps.is_empty()).then_some(Path(steps))
}

/// The index of the `]` closing a bracket, skipping quoted text.
fn find_close(r: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in r.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|t| t.strip_suffix('"')))
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inner.parse::<usize>() {
        return Some(Step::Index(i));
    }
    if let Some(key) = unquote(inner) {
        return Some(Step::Key(key.to_owned()));
    }
    let filter = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, rhs, equal) = match filter.split_once("==") {
        Some((l, r)) => (l, r, true),
        None => {
            let (l, r) = filter.split_once("!=")?;
            (l, r, false)
        }
    };
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    let rhs = rhs.trim();
    let value = match unquote(rhs) {
        Some(s) => Value::String(s.to_owned()),
        None => serde_json::from_str(rhs).ok()?,
    };
    Some(Step::Filter { path, value, equal })
}

impl Path {
    /// Every value the path reaches in `root`, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Key(k) => next.extend(v.get(k)),
                    Step::Index(i) => next.extend(v.get(*i)),
                    Step::All => match v {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Step::Filter { path, value, equal } => {
                        for item in v.as_array().into_iter().flatten() {
                            let mut at = Some(item);
                            for key in path {
                                at = at.and_then(|a| a.get(key));
                            }
                            if (at == Some(value)) == *equal {
                                next.push(item);
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn printer_column_paths_find_values() {
        let obj = json!({"metadata": {"labels": {"a.b/c": "x"}},
            "spec": {"blocks": [{"cidr": "192.0.2.0/24"}, {"cidr": "2001:db8::/64"}]},
            "status": {"conditions": [
                {"type": "cilium.io/PoolConflict", "status": "False"},
                {"type": "Ready", "status": "True"}]}});
        let cases = [
            (".spec.blocks[0].cidr", vec![json!("192.0.2.0/24")]),
            (
                ".spec.blocks[*].cidr",
                vec![json!("192.0.2.0/24"), json!("2001:db8::/64")],
            ),
            ("{.metadata.labels['a.b/c']}", vec![json!("x")]),
            (
                r#".status.conditions[?(@.type=="cilium.io/PoolConflict")].status"#,
                vec![json!("False")],
            ),
            (".spec.missing", vec![]),
        ];
        for (text, want) in cases {
            let path = parse(text).expect(text);
            let got: Vec<Value> = path.find(&obj).into_iter().cloned().collect();
            assert_eq!(got, want, "{text}");
        }
        assert_eq!(parse(".spec..x"), None);
        assert_eq!(parse(".spec[?(@.a > 1)]"), None);
    }
}
