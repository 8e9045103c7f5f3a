//! The slice of a Service the controller cares about, and the request it makes to the ipam.
//!
//! ```text
//!   Service (watch) ──▶ ServiceView::from_service ──▶ ServiceView::request() ──▶ ServiceRequest
//!                                                    └▶ owned fields, compared by desired.rs
//! ```
//!
//! Keeping a slim view instead of the whole object keeps the index small (10,000 Services)
//! and makes the pure core independent of k8s-openapi's deep structs.
//!
//! The annotation `kube-vip.io/loadbalancerIPs` is both an input (a user may request
//! addresses with it, as with kube-vip-cloud-provider) and our output. To tell them apart we
//! record what we wrote in `ferrolb.io/allocated`, and the request we honoured in
//! `ferrolb.io/requested`: an annotation equal to our record is ours, anything else is a
//! user's request (see [`ServiceView::requested`]).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::announce::Mode;
use crate::ipam::{
    FamilyPolicy, IpFamily, OneOrMore, Protocol, ServiceKey, ServiceRequest, SharingKey,
};
use crate::pools::objects::PoolKind;
use crate::pools::{NamedPool, PoolQuery};
use crate::stored_condition::StoredCondition;

/// Annotation kube-vip reads its addresses from (and users may request addresses with).
pub const LOADBALANCER_IPS: &str = "kube-vip.io/loadbalancerIPs";
/// Annotation kube-vip reads the interface to announce on from.
pub const SERVICE_INTERFACE: &str = "kube-vip.io/serviceInterface";
/// Our record of what we wrote into `kube-vip.io/loadbalancerIPs`.
pub const ALLOCATED: &str = "ferrolb.io/allocated";
/// Our record of the addresses the user requested (absent = automatic).
pub const REQUESTED: &str = "ferrolb.io/requested";
/// Label kube-vip-cloud-provider marks its Services with.
pub const IMPLEMENTATION_LABEL: &str = "implementation";
/// Value of [`IMPLEMENTATION_LABEL`].
pub const IMPLEMENTATION_VALUE: &str = "kube-vip";
/// kube-vip-cloud-provider's legacy label holding the address; KVCP removes it when it
/// copies `spec.loadBalancerIP` into the annotation, and so do we.
pub const IPAM_ADDRESS_LABEL: &str = "ipam-address";
/// Finalizer of the cloud-provider service controller, which we keep using.
pub const FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
/// Our Service condition.
pub const CONDITION_TYPE: &str = "ferrolb.io/AddressAllocated";
/// Our Service condition in cluster mode: is the address announced, by whom.
pub const ANNOUNCED_CONDITION: &str = "ferrolb.io/Announced";
/// Our annotation choosing the mode of a Service: `layer2`, `vip` or `bgp`.
pub const MODE_ANNOTATION: &str = "ferrolb.io/mode";
/// OpenELB's annotation choosing the mode (same values).
pub const OPENELB_PROTOCOL: &str = "protocol.openelb.kubesphere.io/v1alpha1";
/// The older name of OpenELB's annotation (PorterLB).
pub const PORTER_PROTOCOL: &str = "protocol.porter.kubesphere.io/v1alpha1";
/// Our annotation naming the pool a Service takes its address from: a `LoadBalancerPool`'s
/// name, or `eip/<name>` / `cilium/<name>` for the other kinds.
pub const POOL_ANNOTATION: &str = "ferrolb.io/pool";
/// OpenELB's annotation naming the Eip a Service takes its address from.
pub const OPENELB_EIP: &str = "eip.openelb.kubesphere.io/v1alpha2";
/// The older name of [`OPENELB_EIP`] (PorterLB).
pub const PORTER_EIP: &str = "eip.porter.kubesphere.io/v1alpha2";
/// OpenELB's annotation asking for one address (`eip.openelb.kubesphere.io/v1alpha1: <ip>`).
pub const OPENELB_IP: &str = "eip.openelb.kubesphere.io/v1alpha1";
/// OpenELB's annotation choosing OpenELB for a Service (`openelb`, or PorterLB's `porter`).
pub const OPENELB_LB: &str = "lb.kubesphere.io/v1alpha1";
/// Our annotation requesting addresses (comma list), as Cilium's `lbipam.cilium.io/ips`.
pub const IPS_ANNOTATION: &str = "ferrolb.io/ips";
/// Cilium's annotation requesting addresses.
pub const CILIUM_IPS: &str = "lbipam.cilium.io/ips";
/// Our sharing-key annotation (Cilium's semantics).
pub const SHARING_KEY: &str = "ferrolb.io/sharing-key";
/// Cilium's sharing-key annotation.
pub const CILIUM_SHARING_KEY: &str = "lbipam.cilium.io/sharing-key";
/// Our cross-namespace sharing annotation: namespaces (comma list, `*` for all).
pub const SHARING_CROSS_NAMESPACE: &str = "ferrolb.io/sharing-cross-namespace";
/// Cilium's cross-namespace sharing annotation.
pub const CILIUM_SHARING_CROSS_NAMESPACE: &str = "lbipam.cilium.io/sharing-cross-namespace";

/// Which Services this controller serves, by `spec.loadBalancerClass`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassFilter {
    /// `--load-balancer-class`; `None` = class-less Services only.
    pub class: Option<String>,
    /// `--also-classless`.
    pub also_classless: bool,
}

impl ClassFilter {
    /// True when a Service of class `class` is ours.
    pub fn accepts(&self, class: Option<&str>) -> bool {
        match (class, self.class.as_deref()) {
            (None, None) => true,
            (None, Some(_)) => self.also_classless,
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => false,
        }
    }
}

/// A short string kept inline (resourceVersions, addresses, `IPv4`, `TCP`, `SingleStack`):
/// the index keeps several per Service, and a heap string costs 32 bytes or more each.
pub type Text = compact_str::CompactString;

/// What we need of one Service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    /// namespace/name.
    pub key: ServiceKey,
    /// metadata.uid (shared with the planner's target).
    pub uid: Option<Arc<str>>,
    /// metadata.resourceVersion the view was built from (writes test it).
    pub resource_version: Text,
    /// metadata.generation (for the condition's observedGeneration).
    pub generation: Option<i64>,
    /// metadata.creationTimestamp in unix seconds (0 when absent).
    pub created: i64,
    /// spec.type == LoadBalancer.
    pub is_load_balancer: bool,
    /// metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// spec.ipFamilyPolicy, raw.
    pub family_policy: Option<Text>,
    /// spec.ipFamilies, raw.
    pub families: OneOrMore<Text>,
    /// spec.ports as (protocol, port), raw protocol.
    pub ports: OneOrMore<(Text, i32)>,
    /// Annotation `kube-vip.io/loadbalancerIPs`.
    pub loadbalancer_ips: Option<Text>,
    /// Annotation `ferrolb.io/allocated`.
    pub allocated: Option<Text>,
    /// spec.loadBalancerIP (trimmed; `None` when empty). We write it by default
    /// (`--write-load-balancer-ip`), so it is not among the [`Uncommon`] fields.
    load_balancer_ip: Option<Text>,
    /// Whether metadata.annotations exists at all (JSON Patch needs a parent to add into).
    pub has_annotations: bool,
    /// Label `implementation`.
    pub implementation_label: Option<Text>,
    /// Whether metadata.labels exists.
    pub has_labels: bool,
    /// metadata.finalizers.
    pub finalizers: Option<OneOrMore<Text>>,
    /// Whether the object has a status at all.
    pub has_status: bool,
    /// status.loadBalancer.ingress as (ip, ipMode); hostnames are kept as ip = "".
    pub ingress: OneOrMore<(Text, Option<Text>)>,
    /// status.conditions (compact, see [`StoredCondition`]).
    pub conditions: Option<Box<[StoredCondition]>>,
    /// spec.externalTrafficPolicy is Local.
    pub local_traffic: bool,
    /// What pool selection needs (labels, a named pool, OpenELB, the stated mode), shared
    /// with every request made from this view.
    pub pool_query: Arc<PoolQuery>,
    /// What most Services leave unset; `None` when all of it is.
    pub uncommon: Option<Box<Uncommon>>,
}

/// The fields of a [`ServiceView`] that most Services leave unset, kept in one box so a
/// Service that sets none of them costs a pointer (the index keeps a view per Service).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Uncommon {
    /// spec.loadBalancerClass.
    pub class: Option<String>,
    /// Annotation `kube-vip.io/serviceInterface`.
    pub service_interface: Option<String>,
    /// Annotation `ferrolb.io/requested`.
    pub requested_record: Option<String>,
    /// Label `ipam-address` (KVCP's legacy label).
    pub ipam_address_label: Option<String>,
    /// The mode annotation that applies, as (annotation, raw value): ours first, then
    /// OpenELB's, then PorterLB's.
    pub mode: Option<(&'static str, String)>,
    /// Requested addresses from `ferrolb.io/ips`, `lbipam.cilium.io/ips` or OpenELB's
    /// `eip.openelb.kubesphere.io/v1alpha1`, the first present.
    pub requested_ips: Option<String>,
    /// The sharing key (ours, else Cilium's).
    pub sharing_key: Option<String>,
    /// The cross-namespace sharing list (ours, else Cilium's).
    pub sharing_cross_namespace: Option<String>,
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl ServiceView {
    /// Builds the view; `None` when the object lacks a namespace or name (never from a real
    /// API server; such objects are skipped).
    pub fn from_service(service: &Service) -> Option<Self> {
        let meta = &service.metadata;
        let key = ServiceKey {
            namespace: meta.namespace.as_deref()?.into(),
            name: meta.name.as_deref()?.into(),
        };
        let annotations = meta.annotations.as_ref();
        let annotation = |name: &str| non_empty(annotations.and_then(|a| a.get(name)));
        let spec = service.spec.as_ref();
        let status = service.status.as_ref();
        let mode = [MODE_ANNOTATION, OPENELB_PROTOCOL, PORTER_PROTOCOL]
            .into_iter()
            .find_map(|name| annotation(name).map(|value| (name, value)));
        let stated_mode = mode.as_ref().and_then(|(_, value)| Mode::parse(value));
        let created = meta
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        let label = |name: &str| meta.labels.as_ref().and_then(|l| l.get(name));
        let uncommon = Uncommon {
            class: spec.and_then(|s| s.load_balancer_class.clone()),
            service_interface: annotation(SERVICE_INTERFACE),
            requested_record: annotation(REQUESTED),
            ipam_address_label: label(IPAM_ADDRESS_LABEL).cloned(),
            mode,
            requested_ips: [IPS_ANNOTATION, CILIUM_IPS, OPENELB_IP]
                .into_iter()
                .find_map(annotation),
            sharing_key: annotation(SHARING_KEY).or_else(|| annotation(CILIUM_SHARING_KEY)),
            sharing_cross_namespace: annotation(SHARING_CROSS_NAMESPACE)
                .or_else(|| annotation(CILIUM_SHARING_CROSS_NAMESPACE)),
        };
        Some(ServiceView {
            uid: meta.uid.as_deref().map(Arc::from),
            resource_version: meta.resource_version.as_deref().unwrap_or_default().into(),
            generation: meta.generation,
            created,
            is_load_balancer: spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            deleting: meta.deletion_timestamp.is_some(),
            family_policy: spec.and_then(|s| s.ip_family_policy.as_deref().map(Text::from)),
            families: spec
                .and_then(|s| s.ip_families.as_ref())
                .map(|families| families.iter().map(Text::from).collect())
                .unwrap_or_default(),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| (Text::from(p.protocol.as_deref().unwrap_or("TCP")), p.port))
                        .collect()
                })
                .unwrap_or_default(),
            loadbalancer_ips: annotation(LOADBALANCER_IPS).map(Text::from),
            allocated: annotation(ALLOCATED).map(Text::from),
            load_balancer_ip: non_empty(spec.and_then(|s| s.load_balancer_ip.as_ref()))
                .map(Text::from),
            has_annotations: annotations.is_some(),
            implementation_label: label(IMPLEMENTATION_LABEL).map(Text::from),
            has_labels: meta.labels.is_some(),
            finalizers: meta.finalizers.as_ref().map(|list| {
                list.iter()
                    // Ours is the usual one: a static string costs no allocation.
                    .map(|f| match f.as_str() {
                        FINALIZER => Text::const_new(FINALIZER),
                        other => Text::from(other),
                    })
                    .collect()
            }),
            has_status: status.is_some(),
            ingress: status
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .map(|ingress| {
                    ingress
                        .iter()
                        .map(|i| {
                            (
                                Text::from(i.ip.as_deref().unwrap_or_default()),
                                i.ip_mode.as_deref().map(Text::from),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            conditions: status
                .and_then(|s| s.conditions.clone())
                .map(|conditions| conditions.into_iter().map(StoredCondition::from).collect()),
            local_traffic: spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local"),
            pool_query: pool_query(meta.labels.as_ref(), &annotation, stated_mode),
            uncommon: (uncommon != Uncommon::default()).then(|| Box::new(uncommon)),
            key,
        })
    }

    /// One of the fields most Services leave unset (`None` also when the Service sets none).
    fn uncommon<'a, T: ?Sized>(
        &'a self,
        field: impl FnOnce(&'a Uncommon) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.uncommon.as_deref().and_then(field)
    }

    /// spec.loadBalancerClass.
    pub fn class(&self) -> Option<&str> {
        self.uncommon(|u| u.class.as_deref())
    }

    /// Annotation `kube-vip.io/serviceInterface`.
    pub fn service_interface(&self) -> Option<&str> {
        self.uncommon(|u| u.service_interface.as_deref())
    }

    /// Annotation `ferrolb.io/requested`: our record of the addresses the user requested.
    pub fn requested_record(&self) -> Option<&str> {
        self.uncommon(|u| u.requested_record.as_deref())
    }

    /// Label `ipam-address` (KVCP's legacy label).
    pub fn ipam_address_label(&self) -> Option<&str> {
        self.uncommon(|u| u.ipam_address_label.as_deref())
    }

    /// spec.loadBalancerIP (trimmed; `None` when empty).
    pub fn load_balancer_ip(&self) -> Option<&str> {
        self.load_balancer_ip.as_deref()
    }

    /// The mode annotation that applies, as (annotation, raw value).
    pub fn mode(&self) -> Option<(&'static str, &str)> {
        let (annotation, value) = self.uncommon(|u| u.mode.as_ref())?;
        Some((annotation, value))
    }

    /// (creationTimestamp, uid or namespace/name): older Services win adoption conflicts.
    pub fn order(&self) -> (i64, String) {
        let tiebreak = self
            .uid
            .as_deref()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/{}", self.key.namespace, self.key.name));
        (self.created, tiebreak)
    }

    /// [`ServiceView::order`] without copying: sorts Services oldest first.
    pub fn age_key(&self) -> (i64, Option<&str>, &ServiceKey) {
        (self.created, self.uid.as_deref(), &self.key)
    }

    /// True when the class filter and type make this Service ours.
    pub fn in_scope(&self, filter: &ClassFilter) -> bool {
        self.is_load_balancer && filter.accepts(self.class())
    }

    /// True when the Service carries anything we write (so leaving scope needs a cleanup).
    pub fn carries_our_marks(&self) -> bool {
        self.allocated.is_some()
            || self.requested_record().is_some()
            || self.has_finalizer()
            || self.our_condition().is_some()
            || self.condition(ANNOUNCED_CONDITION).is_some()
    }

    /// Our finalizer is present.
    pub fn has_finalizer(&self) -> bool {
        self.finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
    }

    /// Our condition, if present.
    pub fn our_condition(&self) -> Option<&StoredCondition> {
        self.condition(CONDITION_TYPE)
    }

    /// The `ferrolb.io/Announced` condition is True (what the Service shows now).
    pub fn shows_announced(&self) -> bool {
        self.condition(ANNOUNCED_CONDITION)
            .is_some_and(|c| c.status == "True")
    }

    /// The condition of type `type_`, if present.
    pub fn condition(&self, type_: &str) -> Option<&StoredCondition> {
        self.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
    }

    /// The addresses recorded in `ferrolb.io/allocated` (unparseable items skipped).
    pub fn recorded_addresses(&self) -> Vec<IpAddr> {
        parse_list(self.allocated.as_deref())
    }

    /// The raw addresses the user asks for, in this order of precedence:
    /// 1. the annotation, when it differs from what we wrote (a user edit; like kube-vip, the
    ///    annotation wins over spec.loadBalancerIP);
    /// 2. `ferrolb.io/ips`, Cilium's `lbipam.cilium.io/ips` or OpenELB's
    ///    `eip.openelb.kubesphere.io/v1alpha1`;
    /// 3. spec.loadBalancerIP, when it is not an address we wrote;
    /// 4. the request we honoured before (`ferrolb.io/requested`), while its source is still
    ///    present;
    /// 5. nothing: allocate automatically.
    pub fn requested(&self) -> Vec<String> {
        if self.annotation_edited() {
            return split_raw(self.loadbalancer_ips.as_deref());
        }
        if let Some(ips) = self.uncommon(|u| u.requested_ips.as_deref()) {
            return vec![ips.to_string()];
        }
        if let Some(ip) = self.load_balancer_ip() {
            let written = self
                .recorded_addresses()
                .iter()
                .any(|a| a.to_string() == ip);
            if !written {
                return vec![ip.to_string()];
            }
        }
        let record = split_raw(self.requested_record());
        if record.is_empty() || self.allocated.is_none() {
            return Vec::new();
        }
        if self.loadbalancer_ips.is_some() {
            return record;
        }
        // The user removed our annotation: the request stands only if it came from
        // spec.loadBalancerIP, which is still there.
        match self.load_balancer_ip() {
            Some(ip) if record == [ip] => record,
            _ => Vec::new(),
        }
    }

    /// `kube-vip.io/loadbalancerIPs` is present and not what we wrote: a user's request.
    fn annotation_edited(&self) -> bool {
        self.loadbalancer_ips.is_some() && !crate::ownership::annotation(self)
    }

    /// The ipam request, or a message saying which field is invalid.
    pub fn request(&self) -> Result<ServiceRequest, String> {
        let who = format!("Service {}/{}", self.key.namespace, self.key.name);
        let family_policy = match self.family_policy.as_deref() {
            None | Some("SingleStack") => FamilyPolicy::SingleStack,
            Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
            Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
            Some(other) => {
                return Err(format!(
                    "{who}: spec.ipFamilyPolicy `{other}` is not SingleStack, PreferDualStack or RequireDualStack"
                ));
            }
        };
        let mut families = crate::ipam::Families::new();
        for family in &self.families {
            families.push(match family.as_str() {
                "IPv4" => IpFamily::V4,
                "IPv6" => IpFamily::V6,
                other => {
                    return Err(format!(
                        "{who}: spec.ipFamilies entry `{other}` is not IPv4 or IPv6"
                    ));
                }
            });
        }
        let mut ports = crate::ipam::Ports::new();
        for (protocol, port) in &self.ports {
            let protocol = match protocol.as_str() {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                other => return Err(format!("{who}: port {port} has unknown protocol `{other}`")),
            };
            let port =
                u16::try_from(*port).map_err(|_| format!("{who}: port {port} is out of range"))?;
            ports.push((protocol, port));
        }
        Ok(ServiceRequest {
            key: self.key.clone(),
            family_policy,
            families,
            requested: self.requested(),
            ports,
            query: Arc::clone(&self.pool_query),
            several_per_family: self.uncommon(|u| u.requested_ips.as_deref()).is_some()
                && !self.annotation_edited(),
            sharing: self.uncommon(|u| u.sharing_key.as_deref()).map(|key| {
                Box::new(SharingKey {
                    key: key.to_string(),
                    namespaces: split_raw(self.uncommon(|u| u.sharing_cross_namespace.as_deref())),
                })
            }),
        })
    }
}

/// The pool query of a Service with these labels and annotations. Most Services have no
/// labels and name no pool: they share one empty query instead of allocating their own.
fn pool_query(
    labels: Option<&BTreeMap<String, String>>,
    annotation: &dyn Fn(&str) -> Option<String>,
    mode: Option<Mode>,
) -> Arc<PoolQuery> {
    static EMPTY: std::sync::OnceLock<Arc<PoolQuery>> = std::sync::OnceLock::new();
    let named = [
        (POOL_ANNOTATION, None),
        (OPENELB_EIP, Some(PoolKind::Eip)),
        (PORTER_EIP, Some(PoolKind::Eip)),
    ]
    .into_iter()
    .find_map(|(name, kind)| {
        annotation(name).map(|value| NamedPool {
            annotation: name,
            kind,
            name: value,
        })
    });
    let asks_openelb = annotation(OPENELB_LB)
        .is_some_and(|v| v.eq_ignore_ascii_case("openelb") || v.eq_ignore_ascii_case("porter"));
    let names_eip = named
        .as_ref()
        .is_some_and(|n| n.kind == Some(PoolKind::Eip));
    let query = PoolQuery {
        labels: labels.cloned().unwrap_or_default(),
        named,
        openelb: asks_openelb || names_eip,
        mode,
    };
    if query == PoolQuery::default() {
        return Arc::clone(EMPTY.get_or_init(|| Arc::new(PoolQuery::default())));
    }
    Arc::new(query)
}

/// Splits a comma list into trimmed, non-empty items.
pub fn split_raw(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a comma list of addresses, skipping items that do not parse.
pub fn parse_list(list: Option<&str>) -> Vec<IpAddr> {
    split_raw(list)
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Joins addresses the way kube-vip expects them (primary family first, comma, no spaces).
pub fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
