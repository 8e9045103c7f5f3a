//! The provider's knowledge of BGP peers, pure: the `BGPPeer` objects, the password Secrets
//! they name, and what each node's announcer last reported. From these it derives each
//! node's desired peer set ([`PeerBook::desired`]) and what each object's status says
//! ([`PeerBook::reports`], rendered by `status.rs`).
//!
//! Rules, decided here and nowhere else:
//! - a peer goes to the nodes with an announcer whose labels its `nodeSelector` selects;
//! - a peer whose spec is invalid, or whose password Secret or key is missing, goes nowhere;
//! - two objects with the same `peerAddress` on one node: the name first in order is sent,
//!   the other is reported as a conflict on that node (an announcer keys peers by address).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::model::{BgpPeer, PeerSpec};
use crate::announce::model::NodeName;
use crate::pools::objects::selector::Subject;

/// The label that makes a Secret in the provider's namespace visible as a BGP password.
pub const PASSWORD_SECRET_LABEL: &str = "ferrolb.io/bgp-password";

/// One peer as one node's announcer gets it.
#[derive(Clone, PartialEq, Eq)]
pub struct NodePeer {
    /// The `BGPPeer` it comes from.
    pub object: Arc<str>,
    pub spec: Arc<PeerSpec>,
    /// The MD5 password's bytes, from the Secret.
    pub password: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for NodePeer {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePeer")
            .field("object", &self.object)
            .field("spec", &self.spec)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One session as an announcer reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReport {
    /// RFC 4271 state name: `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`,
    /// `Established`.
    pub state: String,
    /// The session's last error, if any.
    pub last_error: String,
}

/// What one node's announcer said about its managed peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// Sessions of managed peers, by peer address.
    pub sessions: BTreeMap<IpAddr, SessionReport>,
    /// Peers the announcer refused (SyncPeers' `refused`), by address as sent.
    pub refused: BTreeMap<String, String>,
    /// Why the announcer holds none of this node's peers (BGP not enabled, unreachable).
    pub problem: Option<String>,
}

/// How one selected node stands with one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSession {
    pub node: NodeName,
    /// A session state name, or `Pending` (sent, nothing reported yet), `Refused`,
    /// `Conflict`, `Unavailable`.
    pub state: String,
    pub message: String,
}

/// What one object's status should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectReport {
    pub name: String,
    pub generation: i64,
    /// Why the peer goes to no node (invalid spec, password missing), if so.
    pub problem: Option<(&'static str, String)>,
    /// Every selected node, by name.
    pub sessions: Vec<NodeSession>,
}

/// Usable peers with the nodes they select, and why each other object is unusable
/// (condition reason, message).
type Placements<'a> = (
    Vec<(NodePeer, Vec<&'a NodeName>)>,
    BTreeMap<&'a str, (&'static str, String)>,
);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct PeerBook {
    objects: BTreeMap<String, BgpPeer>,
    /// Secret name → data (key → bytes).
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    objects_listed: bool,
    secrets_listed: bool,
    reports: BTreeMap<NodeName, PeerReport>,
    /// The namespace the Secrets are read from (for messages).
    namespace: String,
}

impl PeerBook {
    /// A book whose password Secrets live in `namespace`.
    pub fn new(namespace: &str) -> PeerBook {
        PeerBook {
            namespace: namespace.to_string(),
            ..PeerBook::default()
        }
    }

    /// Both lists are in: desired sets may be sent (before, a new leader would remove peers
    /// it has not read yet).
    pub fn ready(&self) -> bool {
        self.objects_listed && self.secrets_listed
    }

    pub fn reset_objects(&mut self, peers: Vec<BgpPeer>) {
        self.objects = peers.into_iter().map(|p| (p.name.clone(), p)).collect();
        self.objects_listed = true;
    }

    pub fn apply_object(&mut self, peer: BgpPeer) {
        self.objects.insert(peer.name.clone(), peer);
    }

    pub fn delete_object(&mut self, name: &str) {
        self.objects.remove(name);
    }

    pub fn reset_secrets(&mut self, secrets: Vec<(String, BTreeMap<String, Vec<u8>>)>) {
        self.secrets = secrets.into_iter().collect();
        self.secrets_listed = true;
    }

    pub fn apply_secret(&mut self, name: String, data: BTreeMap<String, Vec<u8>>) {
        self.secrets.insert(name, data);
    }

    pub fn delete_secret(&mut self, name: &str) {
        self.secrets.remove(name);
    }

    /// A node's announcer reported; `None` forgets the node (its announcer left).
    pub fn set_report(&mut self, node: &NodeName, report: Option<PeerReport>) {
        match report {
            Some(report) => self.reports.insert(node.clone(), report),
            None => self.reports.remove(node),
        };
    }

    /// The object names in order (for status writes of deleted objects to stop).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }

    /// The password of a valid spec: `Ok(None)` without MD5, `Err` naming what is missing.
    fn password(&self, spec: &PeerSpec) -> Result<Option<Arc<[u8]>>, String> {
        let Some(secret) = &spec.password else {
            return Ok(None);
        };
        let shown = format!("Secret {}/{}", self.namespace, secret.name);
        let data = self.secrets.get(&secret.name).ok_or_else(|| {
            format!(
                "spec.passwordSecret: {shown} not found (only Secrets labelled {PASSWORD_SECRET_LABEL} in {} are read)",
                self.namespace
            )
        })?;
        let bytes = data.get(&secret.key).ok_or_else(|| {
            format!(
                "spec.passwordSecret.key: {shown} has no key {:?}",
                secret.key
            )
        })?;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if bytes.is_empty() || bytes.len() > 80 {
            return Err(format!(
                "spec.passwordSecret: {shown} key {:?} holds {} bytes; TCP MD5 needs 1..=80",
                secret.key,
                bytes.len()
            ));
        }
        Ok(Some(Arc::from(bytes)))
    }

    /// Every usable peer with the nodes it selects (among `nodes`), and per object why it is
    /// unusable.
    fn placements<'a>(
        &'a self,
        nodes: &'a BTreeMap<NodeName, Arc<BTreeMap<String, String>>>,
    ) -> Placements<'a> {
        let mut usable = Vec::new();
        let mut problems = BTreeMap::new();
        for (name, object) in &self.objects {
            let spec = match &object.spec {
                Ok(spec) => spec,
                Err(problem) => {
                    problems.insert(name.as_str(), ("InvalidSpec", problem.clone()));
                    continue;
                }
            };
            let password = match self.password(spec) {
                Ok(password) => password,
                Err(problem) => {
                    problems.insert(name.as_str(), ("PasswordSecretNotFound", problem));
                    continue;
                }
            };
            let selected = nodes
                .iter()
                .filter(|(_, labels)| {
                    spec.node_selector.matches(Subject {
                        labels,
                        namespace: None,
                        name: None,
                    })
                })
                .map(|(node, _)| node)
                .collect();
            usable.push((
                NodePeer {
                    object: Arc::from(name.as_str()),
                    spec: Arc::new(spec.clone()),
                    password,
                },
                selected,
            ));
        }
        (usable, problems)
    }

    /// Every node's desired peer set (nodes given with their labels: those with an
    /// announcer). Nodes selected by no peer get an empty set.
    pub fn desired(
        &self,
        nodes: &BTreeMap<NodeName, Arc<BTreeMap<String, String>>>,
    ) -> BTreeMap<NodeName, Vec<NodePeer>> {
        let mut sets: BTreeMap<NodeName, Vec<NodePeer>> =
            nodes.keys().map(|n| (n.clone(), Vec::new())).collect();
        let (usable, _) = self.placements(nodes);
        for (peer, selected) in usable {
            for node in selected {
                let set = sets.entry(node.clone()).or_default();
                if !set.iter().any(|p| p.spec.address == peer.spec.address) {
                    set.push(peer.clone());
                }
            }
        }
        sets
    }

    /// What every object's status should say.
    pub fn reports(
        &self,
        nodes: &BTreeMap<NodeName, Arc<BTreeMap<String, String>>>,
    ) -> Vec<ObjectReport> {
        let (usable, mut problems) = self.placements(nodes);
        let mut first_owner: BTreeMap<(&NodeName, IpAddr), &str> = BTreeMap::new();
        let mut selected_by: BTreeMap<&str, (&NodePeer, Vec<&NodeName>)> = BTreeMap::new();
        for (peer, selected) in &usable {
            for node in selected {
                first_owner
                    .entry((*node, peer.spec.address))
                    .or_insert(&peer.object);
            }
            selected_by.insert(&peer.object, (peer, selected.clone()));
        }
        let mut reports = Vec::new();
        for (name, object) in &self.objects {
            let mut report = ObjectReport {
                name: name.clone(),
                generation: object.generation,
                problem: problems.remove(name.as_str()),
                sessions: Vec::new(),
            };
            if let Some((peer, selected)) = selected_by.get(name.as_str()) {
                let address = peer.spec.address;
                for node in selected {
                    let owner = first_owner.get(&(*node, address)).copied();
                    let (state, message) = match owner {
                        Some(owner) if owner != name.as_str() => (
                            "Conflict".to_string(),
                            format!("BGPPeer {owner} peers with {address} on this node"),
                        ),
                        _ => self.node_state(node, address),
                    };
                    report.sessions.push(NodeSession {
                        node: (*node).clone(),
                        state,
                        message,
                    });
                }
            }
            reports.push(report);
        }
        reports
    }

    fn node_state(&self, node: &NodeName, address: IpAddr) -> (String, String) {
        let Some(report) = self.reports.get(node) else {
            return ("Pending".into(), "not reported by the announcer yet".into());
        };
        if let Some(problem) = &report.problem {
            return ("Unavailable".into(), problem.clone());
        }
        if let Some(message) = report.refused.get(&address.to_string()) {
            return ("Refused".into(), message.clone());
        }
        match report.sessions.get(&address) {
            Some(session) => (session.state.clone(), session.last_error.clone()),
            None => ("Pending".into(), "not reported by the announcer yet".into()),
        }
    }

    /// Addresses of a set, for tests and logs.
    pub fn addresses(set: &[NodePeer]) -> BTreeSet<IpAddr> {
        set.iter().map(|p| p.spec.address).collect()
    }
}
