//! Go's `strconv.ParseBool`, the one boolean syntax kube-vip-cloud-provider reads.
//!
//! KVCP parses `KUBEVIP_ENABLE_LOADBALANCERCLASS` and the `allow-share-*` keys with it, so a
//! migrated Deployment or ConfigMap may say `True`, `1` or `t`. Flags, environment variables
//! and ConfigMap booleans all go through this one function. Unlike Go, surrounding spaces are
//! ignored (a YAML value with a trailing space should not crash-loop the provider).

/// `1 t T TRUE true True` → true; `0 f F FALSE false False` → false; anything else → None.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// [`parse_bool`] as a clap value parser.
pub fn parse_flag(text: &str) -> Result<bool, String> {
    parse_bool(text).ok_or_else(|| {
        format!(
            "`{text}` is not a boolean; use true or false (Go's strconv.ParseBool forms \
             1, t, T, TRUE, True, 0, f, F, FALSE, False are accepted too)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form Go's `strconv.ParseBool` accepts, and a few it refuses (Go's
    /// `strconv/atob_test.go` table).
    #[test]
    fn accepts_exactly_gos_forms() {
        let table = [
            ("1", Some(true)),
            ("t", Some(true)),
            ("T", Some(true)),
            ("TRUE", Some(true)),
            ("true", Some(true)),
            ("True", Some(true)),
            ("0", Some(false)),
            ("f", Some(false)),
            ("F", Some(false)),
            ("FALSE", Some(false)),
            ("false", Some(false)),
            ("False", Some(false)),
            (" true ", Some(true)),
            ("tRuE", None),
            ("yes", None),
            ("", None),
            ("2", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_bool(text), expected, "{text:?}");
        }
    }
}
