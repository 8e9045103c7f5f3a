//! A peer's BFD settings, validated from the gRPC `Bfd` block. Errors name the field and the
//! value, e.g. `peer.bfd.detect_multiplier: 0 must be 1..=255`.

use std::path::PathBuf;
use std::time::Duration;

use proto::announcer::v1 as pb;

use super::packet::{AuthKey, AuthType};
use super::session::Parameters;

/// Defaults, the same as FRR's bfdd: 300 ms both ways, multiplier 3.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_DETECT_MULTIPLIER: u8 = 3;

/// One peer's BFD session, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdConfig {
    pub params: Parameters,
    /// RFC 5883 multihop (UDP 4784, no TTL check) instead of RFC 5881 single hop.
    pub multihop: bool,
    pub auth: Option<AuthKey>,
    /// Where the key was read from (reported instead of the key).
    pub key_file: Option<PathBuf>,
}

impl BfdConfig {
    /// Validates a gRPC `Bfd` block; `None` when BFD is not enabled. Reads the key file.
    pub fn from_proto(bfd: &pb::Bfd, field: &str) -> Result<Option<Self>, String> {
        let err = |name: &str, why: String| format!("{field}.{name}: {why}");
        if !bfd.enabled {
            let set = [
                ("min_tx_ms", bfd.min_tx_ms.is_some()),
                ("min_rx_ms", bfd.min_rx_ms.is_some()),
                ("detect_multiplier", bfd.detect_multiplier.is_some()),
                ("multihop", bfd.multihop),
                ("auth_type", !bfd.auth_type.is_empty()),
                ("key_file", !bfd.key_file.is_empty()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
                return Err(err(
                    name,
                    "is set but BFD is not enabled (set enabled / --bfd)".into(),
                ));
            }
            return Ok(None);
        }
        let interval = |name: &str, value: Option<u32>| -> Result<Duration, String> {
            match value {
                None => Ok(DEFAULT_INTERVAL),
                Some(ms) if (10..=60_000).contains(&ms) => Ok(Duration::from_millis(u64::from(ms))),
                Some(ms) => Err(err(name, format!("{ms} must be 10..=60000 milliseconds"))),
            }
        };
        let desired_min_tx = interval("min_tx_ms", bfd.min_tx_ms)?;
        let required_min_rx = interval("min_rx_ms", bfd.min_rx_ms)?;
        let detect_mult = match bfd.detect_multiplier {
            None => DEFAULT_DETECT_MULTIPLIER,
            Some(m) => u8::try_from(m)
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| err("detect_multiplier", format!("{m} must be 1..=255")))?,
        };
        let (auth, key_file) = match bfd.auth_type.as_str() {
            "" | "none" => {
                if !bfd.key_file.is_empty() {
                    return Err(err(
                        "key_file",
                        "is set but auth_type is none; set auth_type too".into(),
                    ));
                }
                (None, None)
            }
            kind => {
                let (kind, max) = match kind {
                    "simple" => (AuthType::SimplePassword, 16),
                    "keyed-sha1" => (AuthType::KeyedSha1, 20),
                    "meticulous-keyed-sha1" => (AuthType::MeticulousKeyedSha1, 20),
                    other => {
                        return Err(err(
                            "auth_type",
                            format!(
                                "{other:?} is not one of none, simple, keyed-sha1, meticulous-keyed-sha1"
                            ),
                        ));
                    }
                };
                if bfd.key_file.is_empty() {
                    return Err(err("key_file", "is required with auth_type".into()));
                }
                let path = PathBuf::from(&bfd.key_file);
                let text = std::fs::read(&path)
                    .map_err(|e| err("key_file", format!("{:?}: {e}", bfd.key_file)))?;
                let secret = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
                if secret.is_empty() || secret.len() > max {
                    return Err(err(
                        "key_file",
                        format!(
                            "{:?} holds {} bytes, need 1..={max}",
                            bfd.key_file,
                            secret.len()
                        ),
                    ));
                }
                let key_id = u8::try_from(bfd.key_id)
                    .map_err(|_| err("key_id", format!("{} exceeds 255", bfd.key_id)))?;
                (
                    Some(AuthKey {
                        kind,
                        key_id,
                        secret,
                    }),
                    Some(path),
                )
            }
        };
        Ok(Some(BfdConfig {
            params: Parameters {
                desired_min_tx,
                required_min_rx,
                detect_mult,
            },
            multihop: bfd.multihop,
            auth,
            key_file,
        }))
    }

    /// The gRPC form (never the key).
    pub fn to_proto(&self) -> pb::Bfd {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        pb::Bfd {
            enabled: true,
            min_tx_ms: Some(ms(self.params.desired_min_tx)),
            min_rx_ms: Some(ms(self.params.required_min_rx)),
            detect_multiplier: Some(u32::from(self.params.detect_mult)),
            multihop: self.multihop,
            auth_type: match self.auth.as_ref().map(|a| a.kind) {
                None => "none",
                Some(AuthType::SimplePassword) => "simple",
                Some(AuthType::KeyedSha1) => "keyed-sha1",
                Some(AuthType::MeticulousKeyedSha1) => "meticulous-keyed-sha1",
            }
            .into(),
            key_id: self.auth.as_ref().map(|a| u32::from(a.key_id)).unwrap_or(0),
            key_file: self
                .key_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }
}
