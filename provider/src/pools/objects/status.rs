//! What each pool object's `status` says, in the form its kind defines:
//!
//! - `LoadBalancerPool`: `observedGeneration`, `ipsTotal`/`ipsUsed`/`ipsAvailable` (strings:
//!   an IPv6 /64 holds more addresses than an int64), and the conditions
//!   `ferrolb.io/PoolConflict` and `ferrolb.io/Valid`;
//! - `CiliumLoadBalancerIPPool`: Cilium's conditions `cilium.io/PoolConflict`,
//!   `cilium.io/IPsTotal`, `cilium.io/IPsAvailable`, `cilium.io/IPsUsed` (counts in the
//!   message, as the seed shows them);
//! - `Eip`: OpenELB's fields `occupied`, `usage`, `poolSize`, `used` (address →
//!   `namespace/name`), `firstIP`, `lastIP`, `ready`, `v4`.
//!
//! [`StatusBook`] remembers what each object's status says (from the watch, and from our own
//! writes) so a status is written only when it would change, and a condition keeps its
//! `lastTransitionTime` while its status stays the same. Pure: the clock is an argument.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::PoolKind;
use std::sync::Arc;

use super::ObjectPool;
use crate::ipam::{IpFamily, ServiceKey};

/// Condition type of a `LoadBalancerPool` that overlaps an older pool.
pub const CONFLICT_CONDITION: &str = "ferrolb.io/PoolConflict";
/// Condition type of a `LoadBalancerPool` whose fields could all be used.
pub const VALID_CONDITION: &str = "ferrolb.io/Valid";

/// What a pool object's status should say (see `pools::objects::status`).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolReport {
    /// The object as read.
    pub object: Arc<ObjectPool>,
    /// Why it conflicts, if it does.
    pub conflict: Option<String>,
    /// Addresses it can give, per family present.
    pub total: Vec<(IpFamily, u128)>,
    /// Of those, how many are held.
    pub used: u128,
    /// Held addresses with their Services, ascending (filled for Eips only: their `used`).
    pub held: Vec<(std::net::IpAddr, Vec<ServiceKey>)>,
    /// First and last address of its blocks.
    pub first_last: Option<(std::net::IpAddr, std::net::IpAddr)>,
}

/// The status `report` calls for, keeping transition times from `existing`.
pub fn desired(report: &PoolReport, existing: &Value, now: Timestamp) -> Value {
    let object = &report.object;
    let generation = object.meta.generation;
    let total: u128 = report
        .total
        .iter()
        .map(|(_, n)| *n)
        .fold(0, u128::saturating_add);
    let available = total.saturating_sub(report.used);
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let since = existing["conditions"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == type_))
            .filter(|c| c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
            .unwrap_or_else(|| now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        json!({
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": since,
        })
    };
    match object.kind {
        PoolKind::LoadBalancerPool => {
            let conflict = match &report.conflict {
                Some(message) => {
                    condition(CONFLICT_CONDITION, "True", "BlockOverlap", message.clone())
                }
                None => condition(
                    CONFLICT_CONDITION,
                    "False",
                    "NoOverlap",
                    "no block overlaps another pool".to_string(),
                ),
            };
            let valid = if object.problems.is_empty() {
                condition(
                    VALID_CONDITION,
                    "True",
                    "Valid",
                    "every field is usable".to_string(),
                )
            } else {
                condition(
                    VALID_CONDITION,
                    "False",
                    "InvalidFields",
                    object.problems.join("; "),
                )
            };
            json!({
                "observedGeneration": generation,
                "conditions": [conflict, valid],
                "ipsTotal": total.to_string(),
                "ipsUsed": report.used.to_string(),
                "ipsAvailable": available.to_string(),
            })
        }
        PoolKind::Cilium => {
            let conflict = match &report.conflict {
                Some(message) => condition(
                    "cilium.io/PoolConflict",
                    "True",
                    "cidr_overlap",
                    message.clone(),
                ),
                None => condition("cilium.io/PoolConflict", "False", "resolved", String::new()),
            };
            let count =
                |type_: &str, n: u128| condition(type_, "Unknown", "noreason", n.to_string());
            json!({
                "conditions": [
                    conflict,
                    count("cilium.io/IPsTotal", total),
                    count("cilium.io/IPsAvailable", available),
                    count("cilium.io/IPsUsed", report.used),
                ],
            })
        }
        PoolKind::Eip => {
            let used: Map<String, Value> = report
                .held
                .iter()
                .map(|(address, holders)| {
                    let services: Vec<String> = holders.iter().map(|k| k.to_string()).collect();
                    (address.to_string(), Value::String(services.join(",")))
                })
                .collect();
            let mut status = json!({
                "occupied": total > 0 && report.used >= total,
                "usage": u64::try_from(report.used).unwrap_or(u64::MAX),
                "poolSize": u64::try_from(total).unwrap_or(u64::MAX),
                "ready": report.conflict.is_none() && object.problems.is_empty(),
                "v4": report.total.iter().any(|(f, _)| *f == IpFamily::V4),
            });
            if !used.is_empty() {
                status["used"] = Value::Object(used);
            }
            if let Some((first, last)) = report.first_last {
                status["firstIP"] = json!(first.to_string());
                status["lastIP"] = json!(last.to_string());
            }
            status
        }
    }
}

/// What each pool object's status says now; see the module doc.
#[derive(Debug, Default)]
pub struct StatusBook {
    seen: HashMap<(PoolKind, String), Value>,
}

impl StatusBook {
    /// The watch delivered the object with this status.
    pub fn observe(&mut self, kind: PoolKind, name: &str, status: Value) {
        self.seen.insert((kind, name.to_string()), status);
    }

    /// The object is gone.
    pub fn forget(&mut self, kind: PoolKind, name: &str) {
        self.seen.remove(&(kind, name.to_string()));
    }

    /// The status to write for `report`, if it differs from what the object shows; it is
    /// then recorded as shown (the watch confirms it later).
    pub fn due(&mut self, report: &PoolReport, now: Timestamp) -> Option<Value> {
        let key = (report.object.kind, report.object.meta.name.clone());
        let existing = self.seen.get(&key).cloned().unwrap_or(Value::Null);
        let want = desired(report, &existing, now);
        if want == existing {
            return None;
        }
        self.seen.insert(key, want.clone());
        Some(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: PoolKind, conflict: Option<&str>, total: u128, used: u128) -> PoolReport {
        let mut object = ObjectPool::new(kind, "blue-pool");
        object.meta.generation = 1;
        PoolReport {
            object: Arc::new(object),
            conflict: conflict.map(str::to_string),
            total: vec![(IpFamily::V4, total)],
            used,
            held: vec![(
                "192.0.2.91".parse().expect("ip"),
                vec![ServiceKey::new("default", "test-svc")],
            )],
            first_last: Some((
                "192.0.2.91".parse().expect("ip"),
                "192.0.2.100".parse().expect("ip"),
            )),
        }
    }

    fn now() -> Timestamp {
        "2026-12-02T05:00:00Z".parse().expect("time")
    }

    #[test]
    fn an_eip_status_has_the_fields_openelb_documents() {
        let status = desired(&report(PoolKind::Eip, None, 10, 1), &Value::Null, now());
        assert_eq!(
            status,
            json!({
                "occupied": false, "usage": 1, "poolSize": 10,
                "used": {"192.0.2.91": "default/test-svc"},
                "firstIP": "192.0.2.91", "lastIP": "192.0.2.100", "ready": true, "v4": true,
            })
        );
    }

    #[test]
    fn a_cilium_status_has_ciliums_conditions_and_counts() {
        let status = desired(
            &report(PoolKind::Cilium, Some("Pool conflicts since …"), 254, 0),
            &Value::Null,
            now(),
        );
        let conditions = status["conditions"].as_array().expect("conditions");
        let by_type = |t: &str| conditions.iter().find(|c| c["type"] == t).expect(t).clone();
        assert_eq!(by_type("cilium.io/PoolConflict")["status"], "True");
        assert_eq!(by_type("cilium.io/PoolConflict")["reason"], "cidr_overlap");
        assert_eq!(by_type("cilium.io/IPsTotal")["message"], "254");
        assert_eq!(by_type("cilium.io/IPsAvailable")["message"], "254");
        assert_eq!(by_type("cilium.io/IPsUsed")["message"], "0");
        assert_eq!(by_type("cilium.io/IPsUsed")["observedGeneration"], 1);
    }

    #[test]
    fn an_ipv6_slash_64_prints_its_exact_size() {
        let mut big = report(PoolKind::LoadBalancerPool, None, 1 << 64, 2);
        big.total = vec![(IpFamily::V6, 1 << 64)];
        let status = desired(&big, &Value::Null, now());
        assert_eq!(status["ipsTotal"], "18446744073709551616");
        assert_eq!(status["ipsAvailable"], "18446744073709551614");
    }

    #[test]
    fn the_book_writes_only_changes_and_keeps_transition_times() {
        let mut book = StatusBook::default();
        let first = report(PoolKind::LoadBalancerPool, None, 10, 0);
        let written = book.due(&first, now()).expect("first status");
        assert_eq!(book.due(&first, now()), None);
        let later: Timestamp = "2026-12-02T06:00:00Z".parse().expect("time");
        let changed = book
            .due(&report(PoolKind::LoadBalancerPool, None, 10, 1), later)
            .expect("count changed");
        assert_eq!(changed["ipsUsed"], "1");
        assert_eq!(
            changed["conditions"][0]["lastTransitionTime"],
            written["conditions"][0]["lastTransitionTime"]
        );
    }
}
