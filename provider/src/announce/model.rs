//! Domain types of the announce job: what a Service wants announced, what the cluster says
//! about nodes and announcers, and what each node's announcer is told.
//!
//! No Kubernetes or gRPC types here: `topology.rs` converts the API objects in, `wire.rs`
//! converts the per-node sets out to the announcer's protobuf messages.

use std::{collections::BTreeMap, fmt, net::IpAddr, sync::Arc};

use crate::pools::objects::selector::{Requirement, Selector, Subject};

/// A node's name (`metadata.name` of the Node, `nodeName` of an endpoint).
pub type NodeName = Arc<str>;

/// How an address is made reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// ARP/NDP answers from one node (MetalLB's layer 2, OpenELB's `layer2`).
    Layer2,
    /// The address on one node's interface (kube-vip, OpenELB's `vip`).
    Vip,
    /// A host route from every eligible node (ECMP at the router).
    Bgp,
}

impl Mode {
    /// Parses an annotation value: `layer2` (also `l2`), `vip` or `bgp`, any case.
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "layer2" | "l2" => Some(Mode::Layer2),
            "vip" => Some(Mode::Vip),
            "bgp" => Some(Mode::Bgp),
            _ => None,
        }
    }

    /// The name used in conditions, Events, metrics and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Layer2 => "layer2",
            Mode::Vip => "vip",
            Mode::Bgp => "bgp",
        }
    }

    /// True for the modes where exactly one node answers.
    pub fn single_owner(self) -> bool {
        !matches!(self, Mode::Bgp)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which interface a node announces on (layer2, vip).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum InterfaceChoice {
    /// The interface whose subnet holds the address (the announcer decides).
    #[default]
    Automatic,
    /// An interface by name (`kube-vip.io/serviceInterface`, `interface-<ns>`).
    Name(Arc<str>),
    /// The interface the route to this address uses (`can_reach:<address>`).
    CanReach(IpAddr),
}

impl InterfaceChoice {
    /// Parses an interface value as the ConfigMap and annotations give it: a name or
    /// `can_reach:<address>`.
    pub fn parse(text: &str) -> Result<InterfaceChoice, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(InterfaceChoice::Automatic);
        }
        match text.strip_prefix("can_reach:") {
            Some(peer) => peer
                .trim()
                .parse()
                .map(InterfaceChoice::CanReach)
                .map_err(|_| format!("`{text}`: `{peer}` is not an IP address")),
            None if text.len() > 15 || text.contains('/') || text.contains(' ') => Err(format!(
                "`{text}` is not an interface name (1-15 characters, no '/' or spaces)"
            )),
            None => Ok(InterfaceChoice::Name(text.into())),
        }
    }
}

/// What one Service wants announced. Built by the index from its view and its allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The allocated addresses (never placeholders such as `0.0.0.0`).
    pub addresses: Vec<IpAddr>,
    /// The mode, or why the Service's mode annotation is unusable.
    pub mode: Result<Mode, String>,
    /// Where to announce.
    pub interface: InterfaceChoice,
    /// `externalTrafficPolicy: Local`: only nodes with a ready endpoint may announce.
    pub local_traffic: bool,
    /// (creationTimestamp, uid): the oldest Service sharing an address decides its mode.
    pub age: (i64, Arc<str>),
    /// The allocation's pool's `nodeSelector`: only the nodes it selects may announce.
    pub nodes: Option<NodeSelection>,
    /// The allocation's pool's BGP attributes (mode bgp; `None`: none), shared with the
    /// placement and the entries it makes.
    pub bgp: Option<Arc<BgpAttributes>>,
}

/// The nodes a pool lets announce its addresses (its `spec.nodeSelector`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSelection {
    /// The pool, as conditions name it (for example `lbpool/rack-1`).
    pub pool: Arc<str>,
    /// The selector over the Nodes' labels.
    pub selector: Arc<Selector>,
}

impl NodeSelection {
    /// Whether the selector selects a node with `labels`.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(Subject {
            labels,
            namespace: None,
            name: None,
        })
    }

    /// The selector in kubectl's `-l` syntax (`rack=r1,zone in (a,b),!gpu`).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .selector
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.extend(self.selector.requirements.iter().map(|r| match r {
            Requirement::In(k, v) => format!("{k} in ({})", v.join(",")),
            Requirement::NotIn(k, v) => format!("{k} notin ({})", v.join(",")),
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
        }));
        if parts.is_empty() {
            "{} (every node)".into()
        } else {
            parts.join(",")
        }
    }
}

/// BGP path attributes for an address's route (from its pool). Empty: none added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BgpAttributes {
    /// RFC 1997 communities, `65000:100` (well-known names as the pool gave them).
    pub communities: Vec<String>,
    /// RFC 8092 large communities, `65000:1:2`.
    pub large_communities: Vec<String>,
    /// LOCAL_PREF (iBGP peers only).
    pub local_pref: Option<u32>,
}

impl BgpAttributes {
    /// True when no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.communities.is_empty()
            && self.large_communities.is_empty()
            && self.local_pref.is_none()
    }
}

/// What the cluster says about one Node.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// The Ready condition is True.
    pub ready: bool,
    /// Labelled `node.kubernetes.io/exclude-from-external-load-balancers`.
    pub excluded: bool,
    /// OpenELB's node annotation `layer2.openelb.kubesphere.io/v1alpha1`: the node address
    /// whose interface layer2/vip announcements use on this node (unless the Service or its
    /// pool names an interface).
    pub layer2_address: Option<std::net::IpAddr>,
    /// The Node's labels (pools' `nodeSelector`s select on them).
    pub labels: Arc<BTreeMap<String, String>>,
}

/// One announcer as the announcer Service's EndpointSlices list it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnnouncerEndpoint {
    /// The node address it listens on (hostNetwork).
    pub address: IpAddr,
    /// Its gRPC port.
    pub port: u16,
    /// `conditions.ready` of the endpoint.
    pub ready: bool,
}

/// Why a node may not announce an address right now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ineligible {
    /// An announcer endpoint names a node that does not exist.
    NoNode,
    /// The Node's Ready condition is not True.
    NodeNotReady,
    /// The Node carries the exclude-from-external-load-balancers label.
    Excluded,
    /// No announcer endpoint on this node.
    NoAnnouncer,
    /// The announcer's endpoint is not ready.
    AnnouncerNotReady,
    /// The provider cannot reach the announcer (the text says what failed).
    Unreachable(String),
}

impl Ineligible {
    /// The metric label of a move caused by this.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Ineligible::NoNode => "node_deleted",
            Ineligible::NodeNotReady => "node_not_ready",
            Ineligible::Excluded => "node_excluded",
            Ineligible::NoAnnouncer => "announcer_missing",
            Ineligible::AnnouncerNotReady => "announcer_not_ready",
            Ineligible::Unreachable(_) => "announcer_unreachable",
        }
    }
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligible::NoNode => f.write_str("its Node object does not exist"),
            Ineligible::NodeNotReady => f.write_str("it is not Ready"),
            Ineligible::Excluded => f.write_str(
                "it is labelled node.kubernetes.io/exclude-from-external-load-balancers",
            ),
            Ineligible::NoAnnouncer => f.write_str("no announcer runs on it"),
            Ineligible::AnnouncerNotReady => f.write_str("its announcer is not ready"),
            Ineligible::Unreachable(why) => write!(f, "its announcer is unreachable ({why})"),
        }
    }
}

/// One entry of a node's desired set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAnnouncement {
    /// The address.
    pub address: IpAddr,
    /// The mode.
    pub mode: Mode,
    /// Where (layer2, vip).
    pub interface: InterfaceChoice,
    /// The Services served, "namespace/name", sorted (the `service` label).
    pub services: Arc<str>,
    /// Ordered failover candidates, owner first (layer2, vip); empty for BGP.
    pub candidates: Arc<[NodeName]>,
    /// BGP path attributes (mode bgp; `None`: none), shared by the address's entries on
    /// every node.
    pub bgp: Option<Arc<BgpAttributes>>,
}

/// The phase an announcer reports for one of its announcements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In force; the announcer's message (after a takeover it says from whom and why, e.g.
    /// "took over from node-1: node-1 stopped answering heartbeats"), often empty.
    Active(String),
    /// Layer2/vip with failover: ready to take over while another candidate answers
    /// (`holder`, as this announcer sees it; `None` while the candidates elect one).
    Standby {
        /// The candidate this announcer sees answering.
        holder: Option<NodeName>,
    },
    /// Accepted, not yet in force (the message says why).
    Pending(String),
    /// Cannot be put in force (the announcer's own message).
    Failed(String),
}

/// A failover peer of a node: another candidate named in the node's set (or the node itself)
/// and the address its announcer receives heartbeats on (its announcer endpoint's address).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FailoverPeer {
    /// The node, as in the candidate lists.
    pub node: NodeName,
    /// Its announcer's address.
    pub address: IpAddr,
}

/// The cluster's heartbeat key (HMAC-SHA256 key the candidates authenticate heartbeats with).
/// Its bytes never appear in `Debug` output or logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatKey(pub [u8; HeartbeatKey::LEN]);

impl HeartbeatKey {
    /// Key length in bytes (the contract's `SyncRequest.heartbeat_key`).
    pub const LEN: usize = 32;
}

impl fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeartbeatKey(<redacted>)")
    }
}
