//! What a `BGPPeer`'s `status` says, rendered from a [`ObjectReport`]:
//!
//! ```yaml
//! status:
//!   observedGeneration: 3
//!   nodes: 2            # selected nodes with an announcer
//!   established: 1      # of which Established
//!   sessions:
//!     - {node: node-1, state: Established}
//!     - {node: node-2, state: Active, message: "connect: connection refused"}
//!   conditions:
//!     - type: Ready     # True when every selected node's session is Established
//!       status: "False"
//!       reason: NotEstablished   # or Established, InvalidSpec, PasswordSecretNotFound, NoNodesSelected
//!       message: "1 of 2 sessions Established; node-2: Active (connect: connection refused)"
//! ```
//!
//! [`StatusBook`] writes a status only when it changes and keeps `lastTransitionTime` while
//! the condition's status stays. Pure: the clock is an argument.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::book::ObjectReport;

/// The condition type.
pub const READY_CONDITION: &str = "Ready";

/// The status `report` should have, given the one stored.
pub fn desired(report: &ObjectReport, existing: &Value, now: Timestamp) -> Value {
    let established = report
        .sessions
        .iter()
        .filter(|s| s.state == "Established")
        .count();
    let total = report.sessions.len();
    let (status, reason, message) = match &report.problem {
        Some((reason, problem)) => ("False", *reason, problem.clone()),
        None if total == 0 => (
            "False",
            "NoNodesSelected",
            "spec.nodeSelector selects no node with an announcer".to_string(),
        ),
        None if established == total => (
            "True",
            "Established",
            format!("{established} of {total} sessions Established"),
        ),
        None => {
            let down: Vec<String> = report
                .sessions
                .iter()
                .filter(|s| s.state != "Established")
                .map(|s| match s.message.as_str() {
                    "" => format!("{}: {}", s.node, s.state),
                    why => format!("{}: {} ({why})", s.node, s.state),
                })
                .collect();
            (
                "False",
                "NotEstablished",
                format!(
                    "{established} of {total} sessions Established; {}",
                    down.join("; ")
                ),
            )
        }
    };
    let since = existing["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == READY_CONDITION))
        .filter(|c| c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let sessions: Vec<Value> = report
        .sessions
        .iter()
        .map(|s| {
            let mut entry = json!({"node": s.node.to_string(), "state": s.state});
            if !s.message.is_empty() {
                entry["message"] = json!(s.message);
            }
            entry
        })
        .collect();
    json!({
        "observedGeneration": report.generation,
        "nodes": total,
        "established": established,
        "sessions": sessions,
        "conditions": [{
            "type": READY_CONDITION,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": report.generation,
            "lastTransitionTime": since,
        }],
    })
}

/// What each object's status says now; see the module doc.
#[derive(Debug, Default)]
pub struct StatusBook {
    seen: HashMap<String, Value>,
}

impl StatusBook {
    /// The watch delivered the object with this status.
    pub fn observe(&mut self, name: &str, status: Value) {
        self.seen.insert(name.to_string(), status);
    }

    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// The status to write, when it differs from the one stored.
    pub fn due(&mut self, report: &ObjectReport, now: Timestamp) -> Option<Value> {
        let existing = self.seen.get(&report.name).cloned().unwrap_or(Value::Null);
        let want = desired(report, &existing, now);
        if want == existing {
            return None;
        }
        self.seen.insert(report.name.clone(), want.clone());
        Some(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::book::NodeSession;

    fn session(node: &str, state: &str, message: &str) -> NodeSession {
        NodeSession {
            node: node.into(),
            state: state.into(),
            message: message.into(),
        }
    }

    fn report(sessions: Vec<NodeSession>) -> ObjectReport {
        ObjectReport {
            name: "rack-1".into(),
            generation: 3,
            problem: None,
            sessions,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    #[test]
    fn ready_when_every_selected_node_is_established() {
        let status = desired(
            &report(vec![
                session("node-1", "Established", ""),
                session("node-2", "Established", ""),
            ]),
            &Value::Null,
            at("2026-12-02T07:00:00Z"),
        );
        assert_eq!(status["nodes"], 2);
        assert_eq!(status["established"], 2);
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["conditions"][0]["reason"], "Established");
    }

    #[test]
    fn not_ready_names_each_node_that_is_down_and_why() {
        let status = desired(
            &report(vec![
                session("node-1", "Established", ""),
                session("node-2", "Active", "connect: connection refused"),
            ]),
            &Value::Null,
            at("2026-12-02T07:00:00Z"),
        );
        assert_eq!(status["conditions"][0]["reason"], "NotEstablished");
        assert_eq!(
            status["conditions"][0]["message"],
            "1 of 2 sessions Established; node-2: Active (connect: connection refused)"
        );
        assert_eq!(
            status["sessions"][1],
            json!({"node": "node-2", "state": "Active", "message": "connect: connection refused"})
        );
    }

    #[test]
    fn a_problem_and_an_empty_selection_have_their_reasons() {
        let mut bad = report(Vec::new());
        bad.problem = Some(("InvalidSpec", "spec.peerASN: 0 is not an AS number".into()));
        let status = desired(&bad, &Value::Null, at("2026-12-02T07:00:00Z"));
        assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
        assert_eq!(
            status["conditions"][0]["message"],
            "spec.peerASN: 0 is not an AS number"
        );
        let none = desired(
            &report(Vec::new()),
            &Value::Null,
            at("2026-12-02T07:00:00Z"),
        );
        assert_eq!(none["conditions"][0]["reason"], "NoNodesSelected");
    }

    #[test]
    fn the_book_writes_changes_only_and_keeps_the_transition_time() {
        let mut book = StatusBook::default();
        let up = report(vec![session("node-1", "Established", "")]);
        let first = book
            .due(&up, at("2026-12-02T07:00:00Z"))
            .expect("first write");
        assert_eq!(book.due(&up, at("2026-12-02T07:00:05Z")), None);
        // Another node joins, still Established: same condition status, same time.
        let two = report(vec![
            session("node-1", "Established", ""),
            session("node-2", "Established", ""),
        ]);
        let second = book.due(&two, at("2026-12-02T07:00:09Z")).expect("changed");
        assert_eq!(
            second["conditions"][0]["lastTransitionTime"],
            first["conditions"][0]["lastTransitionTime"]
        );
    }
}
