//! Test hooks that sit in front of the store: the ordered request log and
//! fault injection (fail the next N matching requests, add latency).
//!
//! Watch-level faults (drop all open watches, compact the event log) live on
//! the store because they act on its event machinery; [`crate::TestApiServer`]
//! exposes both.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::ApiError;

/// How many requests the log keeps (oldest dropped first), so long benchmarks stay bounded.
const REQUEST_LOG_CAPACITY: usize = 100_000;

/// One handled request, as the request log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// or `discovery` for everything else.
    pub verb: String,
    /// Plural resource name (`services`), if the URL named one.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// HTTP status of the response (200 for a watch that started streaming).
    pub status: u16,
    /// The request's `Content-Type` (empty when absent), e.g. to see that
    /// kubectl sent `application/vnd.kubernetes.protobuf`.
    pub content_type: String,
}

/// The ordered log of requests.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<RequestRecord>>,
}

impl RequestLog {
    pub(crate) fn push(&self, record: RequestRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == REQUEST_LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(record);
    }

    /// All logged requests, oldest first.
    pub fn entries(&self) -> Vec<RequestRecord> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A rule that makes matching requests fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    code: u16,
    remaining: u32,
    resource: Option<String>,
    verb: Option<String>,
    message: String,
}

impl FaultRule {
    /// Fail the next request (any resource, any verb) with HTTP `code`.
    pub fn status(code: u16) -> Self {
        FaultRule {
            code,
            remaining: 1,
            resource: None,
            verb: None,
            message: format!("injected failure (HTTP {code}) from the test API server"),
        }
    }

    /// Fail this many matching requests instead of one.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = n;
        self
    }

    /// Only requests for this plural resource name (`services`).
    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_owned());
        self
    }

    /// Only requests with this verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`).
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_owned());
        self
    }

    /// The `message` of the returned Status.
    pub fn message(mut self, message: &str) -> Self {
        self.message = message.to_owned();
        self
    }

    fn matches(&self, resource: Option<&str>, verb: &str) -> bool {
        self.resource.as_deref().is_none_or(|r| Some(r) == resource)
            && self.verb.as_deref().is_none_or(|v| v == verb)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    rules: Vec<FaultRule>,
    latency: Duration,
}

/// Fault injection switches.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule; rules are checked in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Shorthand: fail the next `n` requests of any kind with `code`.
    pub fn fail_next(&self, n: u32, code: u16) {
        self.inject(FaultRule::status(code).times(n));
    }

    /// Delay every request by `latency` before it is handled (watch streams too).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Removes all rules and the latency.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// How many injected failures are still pending.
    pub fn pending(&self) -> u32 {
        self.lock().rules.iter().map(|r| r.remaining).sum()
    }

    pub(crate) fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// Consumes one failure from the first matching rule.
    pub(crate) fn take(&self, resource: Option<&str>, verb: &str) -> Option<ApiError> {
        let mut state = self.lock();
        let index = state
            .rules
            .iter()
            .position(|r| r.remaining > 0 && r.matches(resource, verb))?;
        let rule = &mut state.rules[index];
        rule.remaining -= 1;
        let error = ApiError::Injected {
            code: rule.code,
            message: rule.message.clone(),
        };
        if rule.remaining == 0 {
            state.rules.remove(index);
        }
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_only_on_matching_requests_and_run_out() {
        let faults = Faults::default();
        faults.inject(
            FaultRule::status(503)
                .times(2)
                .resource("services")
                .verb("patch"),
        );
        assert!(faults.take(Some("configmaps"), "patch").is_none());
        assert!(faults.take(Some("services"), "get").is_none());
        assert_eq!(
            faults.take(Some("services"), "patch").map(|e| e.code()),
            Some(503)
        );
        assert_eq!(faults.pending(), 1);
        assert!(faults.take(Some("services"), "patch").is_some());
        assert!(faults.take(Some("services"), "patch").is_none());
    }
}
