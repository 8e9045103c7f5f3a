//! A Service's `status.conditions` as the index keeps them: compact, and converted back to the
//! API's type only when a write needs them.
//!
//! ```text
//!   Condition (watch) ──StoredCondition::from──▶ view ──to_condition──▶ Condition (patch)
//! ```
//!
//! At 10,000 Services the conditions were a fifth of a view's memory: each holds four
//! strings, and three of them (type, status, reason) nearly always come from a small
//! vocabulary (our two types, `True`/`False`, our reasons). Those are kept as `&'static str`
//! (no allocation); anything else, and every message, is kept as written.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::service_view::{ANNOUNCED_CONDITION, CONDITION_TYPE};

/// The words kept without an allocation.
const VOCABULARY: &[&str] = &[
    CONDITION_TYPE,
    ANNOUNCED_CONDITION,
    "True",
    "False",
    "Unknown",
    // ferrolb.io/AddressAllocated
    "Allocated",
    "AllocationFailed",
    "AlreadyAllocated",
    "FamilyUnavailable",
    "InvalidRequest",
    "NoPool",
    "NoSuchPool",
    "NotInPool",
    "OutOfAddresses",
    "OutsidePool",
    "PoolConflict",
    "PoolDisabled",
    "PoolDoesNotSelect",
    // ferrolb.io/Announced
    "Announced",
    "Pending",
    "NoEligibleNode",
    "NoReadyEndpoints",
    "AnnouncerUnreachable",
    "Refused",
    "Conflict",
    "InvalidMode",
];

/// A word of [`VOCABULARY`] borrowed, anything else owned.
fn word(text: String) -> Cow<'static, str> {
    match VOCABULARY.iter().find(|w| **w == text) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(text),
    }
}

/// One condition, compactly. Compares with `&str` as the API type's fields do.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCondition {
    /// `type`.
    pub type_: Cow<'static, str>,
    /// `status`: `True`, `False` or `Unknown`.
    pub status: Cow<'static, str>,
    /// `reason`.
    pub reason: Cow<'static, str>,
    /// `message`.
    pub message: Box<str>,
    /// `observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `lastTransitionTime`.
    pub last_transition_time: Time,
}

impl From<Condition> for StoredCondition {
    fn from(condition: Condition) -> Self {
        StoredCondition {
            type_: word(condition.type_),
            status: word(condition.status),
            reason: word(condition.reason),
            message: condition.message.into_boxed_str(),
            observed_generation: condition.observed_generation,
            last_transition_time: condition.last_transition_time,
        }
    }
}

impl StoredCondition {
    /// The API's type, for a write.
    pub fn to_condition(&self) -> Condition {
        Condition {
            type_: self.type_.to_string(),
            status: self.status.to_string(),
            reason: self.reason.to_string(),
            message: self.message.to_string(),
            observed_generation: self.observed_generation,
            last_transition_time: self.last_transition_time.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: "allocated 192.0.2.1 from pool cidr-global".into(),
            observed_generation: Some(3),
            last_transition_time: Time(Timestamp::from_second(1_700_000_000).expect("time")),
        }
    }

    #[test]
    fn known_words_are_borrowed_and_everything_round_trips() {
        let ours = condition(CONDITION_TYPE, "True", "Allocated");
        let stored = StoredCondition::from(ours.clone());
        assert!(matches!(stored.type_, Cow::Borrowed(_)));
        assert!(matches!(stored.status, Cow::Borrowed(_)));
        assert!(matches!(stored.reason, Cow::Borrowed(_)));
        assert_eq!(stored.to_condition(), ours);

        let theirs = condition("example.com/Ready", "True", "SomethingElse");
        let stored = StoredCondition::from(theirs.clone());
        assert!(matches!(stored.type_, Cow::Owned(_)));
        assert!(matches!(stored.reason, Cow::Owned(_)));
        assert_eq!(stored.status, "True");
        assert_eq!(stored.to_condition(), theirs);
    }
}
