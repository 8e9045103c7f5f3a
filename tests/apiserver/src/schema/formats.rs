//! The string `format`s kube-apiserver checks in custom resources: go-openapi's
//! `strfmt` registry as apiextensions uses it (net.ParseIP / net.ParseCIDR
//! semantics for the address formats). Formats not listed here pass, as there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `s` is a valid `format` string; unknown formats pass.
pub fn format_matches(format: &str, s: &str) -> bool {
    match format {
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(addr, len)| {
            let Ok(len) = len.parse::<u8>() else {
                return false;
            };
            match addr.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => len <= 32,
                Ok(IpAddr::V6(_)) => len <= 128,
                Err(_) => false,
            }
        }),
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            matches!(parts.len(), 6 | 8 | 20)
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "uuid" => {
            let groups: Vec<&str> = s.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                && groups
                    .iter()
                    .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "date-time" | "datetime" => is_date_time(s),
        "date" => s.len() == 10 && crate::time::parse_rfc3339(&format!("{s}T00:00:00Z")).is_some(),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 255
                && s.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        _ => true,
    }
}

/// RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_date_time(s: &str) -> bool {
    let Some(base) = s.get(..19) else {
        return false;
    };
    if crate::time::parse_rfc3339(&format!("{base}Z")).is_none() {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    rest == "Z"
        || rest == "z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':')
}
