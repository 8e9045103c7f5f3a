//! What the cluster says about nodes, announcers and ready endpoints, converted from the API
//! objects at the edge into the planner's domain types.
//!
//! ```text
//!   Node ───────────────▶ node_info()            ─▶ (name, NodeInfo)
//!   EndpointSlice ──────▶ Slices::apply/delete   ─▶ announcers by node (announcer Service)
//!                                                 └▶ ready nodes per Service (ETP Local)
//! ```
//!
//! One EndpointSlice watch serves both: the slices of the announcer's headless Service list
//! the announcers (they run with hostNetwork, so an endpoint's address is the node's), and
//! every other Service's slices say which nodes hold its ready endpoints.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};

use super::model::{AnnouncerEndpoint, NodeInfo, NodeName};
use crate::ipam::ServiceKey;

/// The label a node carries to be left out of load balancing.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// OpenELB's node annotation naming the node address whose interface layer2 uses.
pub const OPENELB_LAYER2_ANNOTATION: &str = "layer2.openelb.kubesphere.io/v1alpha1";
/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The port name the announcer's gRPC port has in its Service.
pub const GRPC_PORT_NAME: &str = "grpc";

/// A Node's name and what the planner needs of it.
pub fn node_info(node: &Node) -> Option<(NodeName, NodeInfo)> {
    let name = node.metadata.name.as_deref()?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let excluded = node
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(EXCLUDE_LABEL));
    let layer2_address = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OPENELB_LAYER2_ANNOTATION))
        .and_then(|value| match value.trim().parse() {
            Ok(address) => Some(address),
            Err(_) => {
                tracing::warn!(
                    node = name,
                    "annotation {OPENELB_LAYER2_ANNOTATION}: `{value}` is not an IP address; ignored"
                );
                None
            }
        });
    let labels = node
        .metadata
        .labels
        .as_ref()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Some((
        name.into(),
        NodeInfo {
            ready,
            excluded,
            layer2_address,
            labels: std::sync::Arc::new(labels),
        },
    ))
}

/// A slice's (namespace, name).
pub type SliceId = (String, String);

/// What one EndpointSlice contributes (all a relist buffers of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceView {
    service: ServiceKey,
    /// (node, address, ready) per endpoint with a node name.
    endpoints: Vec<(NodeName, Option<IpAddr>, bool)>,
    /// The announcer port (`grpc`, else the first port).
    port: Option<u16>,
}

/// Every EndpointSlice, reduced to what the planner needs.
#[derive(Debug)]
pub struct Slices {
    /// The announcer Service, `namespace/name`.
    announcer_service: ServiceKey,
    by_slice: HashMap<(String, String), SliceView>,
    /// The slices of each Service, so a Service's endpoints are found without a scan.
    of_service: HashMap<ServiceKey, BTreeSet<(String, String)>>,
}

/// What the planner needs of `slice`; `None` for a slice of no Service.
pub fn slice_view(slice: &EndpointSlice) -> Option<(SliceId, SliceView)> {
    let namespace = slice.metadata.namespace.clone()?;
    let name = slice.metadata.name.clone()?;
    let service_name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    let service = ServiceKey::new(namespace.as_str(), service_name.as_str());
    let endpoints = slice
        .endpoints
        .iter()
        .filter_map(|e| {
            let node: NodeName = e.node_name.as_deref()?.into();
            let address = e.addresses.first().and_then(|a| a.parse().ok());
            // Unset `ready` means ready (discovery.k8s.io/v1 API documentation).
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            Some((node, address, ready))
        })
        .collect();
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(GRPC_PORT_NAME))
        .or(ports.first())
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok());
    Some((
        (namespace, name),
        SliceView {
            service,
            endpoints,
            port,
        },
    ))
}

impl Slices {
    /// Slices of `announcer_service` list the announcers.
    pub fn new(announcer_service: ServiceKey) -> Self {
        Slices {
            announcer_service,
            by_slice: HashMap::new(),
            of_service: HashMap::new(),
        }
    }

    /// A slice was added or changed; returns the Service it belongs to.
    pub fn apply(&mut self, slice: &EndpointSlice) -> Option<ServiceKey> {
        slice_view(slice).map(|view| self.insert(view))
    }

    fn insert(&mut self, (id, view): (SliceId, SliceView)) -> ServiceKey {
        let service = view.service.clone();
        self.of_service
            .entry(service.clone())
            .or_default()
            .insert(id.clone());
        let previous = self.by_slice.insert(id.clone(), view);
        // A slice whose service label changed leaves its old Service.
        if let Some(previous) = previous
            && previous.service != service
        {
            self.forget(&previous.service, &id);
        }
        service
    }

    /// A slice was deleted; returns the Service it belonged to.
    pub fn delete(&mut self, namespace: &str, name: &str) -> Option<ServiceKey> {
        let id = (namespace.to_string(), name.to_string());
        let slice = self.by_slice.remove(&id)?;
        self.forget(&slice.service, &id);
        Some(slice.service)
    }

    fn forget(&mut self, service: &ServiceKey, id: &(String, String)) {
        if let Some(ids) = self.of_service.get_mut(service) {
            ids.remove(id);
            if ids.is_empty() {
                self.of_service.remove(service);
            }
        }
    }

    /// A complete list (as [`slice_view`]s): returns every Service whose slices may have
    /// changed.
    pub fn reset(&mut self, views: Vec<(SliceId, SliceView)>) -> BTreeSet<ServiceKey> {
        let mut touched: BTreeSet<ServiceKey> =
            self.by_slice.values().map(|s| s.service.clone()).collect();
        self.by_slice.clear();
        self.of_service.clear();
        for view in views {
            touched.insert(self.insert(view));
        }
        touched
    }

    /// True when `service` is the announcer Service.
    pub fn is_announcer_service(&self, service: &ServiceKey) -> bool {
        &self.announcer_service == service
    }

    /// The announcers, by node. A node with several endpoints keeps a ready one.
    pub fn announcers(&self) -> BTreeMap<NodeName, AnnouncerEndpoint> {
        let mut out: BTreeMap<NodeName, AnnouncerEndpoint> = BTreeMap::new();
        for slice in self.slices_of(&self.announcer_service) {
            let Some(port) = slice.port else { continue };
            for (node, address, ready) in &slice.endpoints {
                let Some(address) = address else { continue };
                let endpoint = AnnouncerEndpoint {
                    address: *address,
                    port,
                    ready: *ready,
                };
                match out.get(node) {
                    Some(known) if known.ready || !ready => {}
                    _ => {
                        out.insert(node.clone(), endpoint);
                    }
                }
            }
        }
        out
    }

    /// The nodes holding a ready endpoint of `service`.
    pub fn ready_nodes(&self, service: &ServiceKey) -> BTreeSet<NodeName> {
        self.slices_of(service)
            .flat_map(|s| s.endpoints.iter())
            .filter(|(_, _, ready)| *ready)
            .map(|(node, _, _)| node.clone())
            .collect()
    }

    fn slices_of<'a>(&'a self, service: &ServiceKey) -> impl Iterator<Item = &'a SliceView> {
        self.of_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_slice.get(id))
    }
}
