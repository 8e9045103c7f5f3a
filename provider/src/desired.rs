//! The state the controller wants a Service to have, and the JSON Patches that get it there.
//!
//! ```text
//!   Outcome (index) ──▶ Desired ──▶ main_patch(view, desired)   → metadata + spec operations
//!                                └▶ status_patch(view, desired) → /status subresource operations
//! ```
//!
//! Only fields that differ from the observed [`ServiceView`] produce operations, so a Service
//! already in the desired state causes no write at all.
//!
//! `status.loadBalancer.ingress` has two owners depending on who announces. With FerroLB's
//! own announcers the entries are ours (`{ip, ipMode: VIP}`) and rewritten when they differ.
//! Next to kube-vip (`ingress_ip_only`) kube-vip completes each entry with the Service's
//! ports once it announces the address, and treats ports that differ from the spec as a
//! reason to re-add its VIP; so only the set of IPs is compared, entries for IPs that stay
//! are never touched, and new IPs are added bare (`{ip}`), for kube-vip to complete.
//!
//! The writer prefixes each patch with a `test` of the resourceVersion the view was built
//! from: a Service changed meanwhile is never overwritten (the API server rejects the patch
//! and we re-read).

use std::{collections::BTreeSet, net::IpAddr};

use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use serde_json::{Value, json};

use crate::{
    patch::pointer,
    service_view::{
        ALLOCATED, ANNOUNCED_CONDITION, CONDITION_TYPE, FINALIZER, IMPLEMENTATION_LABEL,
        IPAM_ADDRESS_LABEL, LOADBALANCER_IPS, REQUESTED, SERVICE_INTERFACE, ServiceView, Text,
    },
};

/// JSON Patch operations kept as their JSON text.
///
/// A pending write then costs a few hundred bytes instead of a tree of `serde_json::Value`s
/// (about 2.4 KiB for a status patch with its condition), which matters when thousands of
/// writes wait for the writer after a burst or a relist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ops(Box<str>);

impl Ops {
    /// Encodes `ops`; no operations give the empty value.
    pub fn new(ops: &[PatchOperation]) -> Self {
        if ops.is_empty() {
            return Ops::default();
        }
        // Serializing plain strings and JSON values cannot fail.
        Ops(serde_json::to_string(ops)
            .unwrap_or_default()
            .into_boxed_str())
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The operations, decoded again.
    pub fn operations(&self) -> Vec<PatchOperation> {
        if self.is_empty() {
            return Vec::new();
        }
        // The text was produced by `new` from the same type.
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

/// What to do with one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Make it equal to this value.
    Set(T),
    /// Remove it.
    Remove,
}

/// Our condition's content (the transition time is filled in when it changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSpec {
    /// True or False.
    pub status: bool,
    /// CamelCase reason: `Allocated`, `OutsidePool` or an ipam failure reason.
    pub reason: String,
    /// Human-readable sentence naming pool and address or what to fix.
    pub message: String,
}

/// The desired values of every field the controller owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// `kube-vip.io/loadbalancerIPs`.
    pub loadbalancer_ips: Field<String>,
    /// `ferrolb.io/allocated`.
    pub allocated: Field<String>,
    /// `ferrolb.io/requested`.
    pub requested: Field<String>,
    /// `kube-vip.io/serviceInterface`.
    pub service_interface: Field<String>,
    /// Label `implementation=kube-vip`.
    pub implementation_label: Field<String>,
    /// KVCP's legacy label `ipam-address` (only ever removed, as KVCP removes it).
    pub ipam_address_label: Field<String>,
    /// `spec.loadBalancerIP`.
    pub load_balancer_ip: Field<String>,
    /// Finalizer `service.kubernetes.io/load-balancer-cleanup`: `Some(true)` present,
    /// `Some(false)` absent.
    pub finalizer: Option<bool>,
    /// `status.loadBalancer.ingress` (ipMode VIP); `Set(vec![])` clears it. An unspecified
    /// address (`0.0.0.0`, `::`: DHCP) is never written: it stands for the lease the
    /// announcer reports.
    pub ingress: Field<Vec<IpAddr>>,
    /// Our condition in `status.conditions`.
    pub condition: Field<ConditionSpec>,
    /// The `ferrolb.io/Announced` condition (cluster mode).
    pub announced: Field<ConditionSpec>,
}

fn add(segments: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(segments),
        value,
    })
}

fn remove(segments: &[&str]) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation {
        path: pointer(segments),
    })
}

/// Operations on one string-valued map entry (annotation or label).
fn map_entry(
    ops: &mut Vec<PatchOperation>,
    parent_exists: &mut bool,
    parent: &str,
    key: &str,
    current: Option<&str>,
    want: &Field<String>,
) {
    match want {
        Field::Keep => {}
        Field::Set(value) if current == Some(value.as_str()) => {}
        Field::Set(value) => {
            if !*parent_exists {
                ops.push(add(&["metadata", parent], json!({})));
                *parent_exists = true;
            }
            ops.push(add(
                &["metadata", parent, key],
                Value::String(value.clone()),
            ));
        }
        Field::Remove if current.is_some() => ops.push(remove(&["metadata", parent, key])),
        Field::Remove => {}
    }
}

/// Operations on metadata and spec.
pub fn main_patch(view: &ServiceView, desired: &Desired) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    let mut has_annotations = view.has_annotations;
    let annotations = [
        (
            LOADBALANCER_IPS,
            view.loadbalancer_ips.as_deref(),
            &desired.loadbalancer_ips,
        ),
        (ALLOCATED, view.allocated.as_deref(), &desired.allocated),
        (REQUESTED, view.requested_record(), &desired.requested),
        (
            SERVICE_INTERFACE,
            view.service_interface(),
            &desired.service_interface,
        ),
    ];
    for (key, current, want) in annotations {
        map_entry(
            &mut ops,
            &mut has_annotations,
            "annotations",
            key,
            current,
            want,
        );
    }
    let mut has_labels = view.has_labels;
    map_entry(
        &mut ops,
        &mut has_labels,
        "labels",
        IMPLEMENTATION_LABEL,
        view.implementation_label.as_deref(),
        &desired.implementation_label,
    );
    map_entry(
        &mut ops,
        &mut has_labels,
        "labels",
        IPAM_ADDRESS_LABEL,
        view.ipam_address_label(),
        &desired.ipam_address_label,
    );
    match &desired.load_balancer_ip {
        Field::Set(ip) if view.load_balancer_ip() != Some(ip.as_str()) => {
            ops.push(add(&["spec", "loadBalancerIP"], Value::String(ip.clone())));
        }
        Field::Remove if view.load_balancer_ip().is_some() => {
            ops.push(remove(&["spec", "loadBalancerIP"]))
        }
        _ => {}
    }
    match (desired.finalizer, &view.finalizers) {
        (Some(true), None) => ops.push(add(&["metadata", "finalizers"], json!([FINALIZER]))),
        (Some(true), Some(list)) if !list.iter().any(|f| f == FINALIZER) => {
            ops.push(add(&["metadata", "finalizers", "-"], json!(FINALIZER)));
        }
        (Some(false), Some(list)) => {
            // Highest index first so the lower ones stay valid.
            for (at, _) in list
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, f)| *f == FINALIZER)
            {
                ops.push(remove(&["metadata", "finalizers", &at.to_string()]));
            }
        }
        _ => {}
    }
    ops
}

/// Makes the condition `type_` in `conditions` what `want` says; true when that changed it.
fn apply_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    want: &Field<ConditionSpec>,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let at = conditions.iter().position(|c| c.type_ == type_);
    match want {
        Field::Keep => false,
        Field::Remove => match at {
            Some(at) => {
                conditions.remove(at);
                true
            }
            None => false,
        },
        Field::Set(spec) => {
            let status = if spec.status { "True" } else { "False" };
            let current = at.map(|at| &conditions[at]);
            let unchanged = current.is_some_and(|c| {
                c.status == status
                    && c.reason == spec.reason
                    && c.message == spec.message
                    && c.observed_generation == generation
            });
            if unchanged {
                return false;
            }
            // lastTransitionTime moves only when the status flips (API conventions).
            let since = match current {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Time(now),
            };
            let condition = Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: spec.reason.clone(),
                message: spec.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            };
            match at {
                Some(at) => conditions[at] = condition,
                None => conditions.push(condition),
            }
            true
        }
    }
}

/// One `status.loadBalancer.ingress` entry as the IP-only rule sees it.
enum IngressEntry {
    /// No IP (a hostname only): not ours to judge, never touched.
    Hostname,
    /// An IP that is still allocated, or a DHCP lease of a family allocated as `0.0.0.0`
    /// or `::`: kept as the announcer wrote it.
    Wanted(IpAddr),
    /// An IP no longer allocated (or unparsable, which the API server never accepts).
    Unwanted,
}

/// Ingress operations when only the set of IPs is ours (see the module documentation):
/// none when the IPs already match (an IP of a family allocated as `0.0.0.0`/`::` is the
/// announcer's DHCP lease and matches); otherwise unwanted entries are removed and allocated
/// IPs that are missing are appended as `{ip}`. The writer's resourceVersion `test` keeps
/// the indices valid.
fn ingress_by_ip(view: &ServiceView, addresses: &[IpAddr]) -> Vec<PatchOperation> {
    let (dhcp, specific): (Vec<IpAddr>, Vec<IpAddr>) =
        addresses.iter().copied().partition(IpAddr::is_unspecified);
    let want: BTreeSet<IpAddr> = specific.iter().copied().collect();
    let leased = |ip: &IpAddr| dhcp.iter().any(|d| d.is_ipv4() == ip.is_ipv4());
    let entries: Vec<IngressEntry> = view
        .ingress
        .iter()
        .map(|(ip, _)| match ip.parse::<IpAddr>() {
            _ if ip.is_empty() => IngressEntry::Hostname,
            Ok(ip) if want.contains(&ip) || leased(&ip) => IngressEntry::Wanted(ip),
            _ => IngressEntry::Unwanted,
        })
        .collect();
    let have: BTreeSet<IpAddr> = entries
        .iter()
        .filter_map(|e| match e {
            IngressEntry::Wanted(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    let unwanted = |e: &IngressEntry| matches!(e, IngressEntry::Unwanted);
    if want.is_subset(&have) && !entries.iter().any(unwanted) {
        return Vec::new();
    }
    let mut missing: Vec<IpAddr> = Vec::new();
    for ip in &specific {
        if !have.contains(ip) && !missing.contains(ip) {
            missing.push(*ip);
        }
    }
    let bare = |ip: IpAddr| json!({ "ip": ip.to_string() });
    if entries.iter().all(unwanted) {
        // Nothing to keep: write the whole value (also when there is no ingress list yet).
        let value = if missing.is_empty() {
            json!({})
        } else {
            json!({ "ingress": missing.into_iter().map(bare).collect::<Vec<_>>() })
        };
        return vec![add(&["status", "loadBalancer"], value)];
    }
    let mut ops = Vec::new();
    // Highest index first so the lower ones stay valid.
    for (at, _) in entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| unwanted(e))
    {
        let at = at.to_string();
        ops.push(remove(&["status", "loadBalancer", "ingress", &at]));
    }
    for ip in missing {
        ops.push(add(&["status", "loadBalancer", "ingress", "-"], bare(ip)));
    }
    ops
}

/// Operations on the status subresource. `now` stamps a changed condition; with
/// `ingress_ip_only` the ingress is compared by its IPs only (see the module documentation).
pub fn status_patch(
    view: &ServiceView,
    desired: &Desired,
    ingress_ip_only: bool,
    now: Timestamp,
) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    let mut has_status = view.has_status;
    let mut ensure_status = |ops: &mut Vec<PatchOperation>| {
        if !has_status {
            ops.push(add(&["status"], json!({})));
            has_status = true;
        }
    };
    if let Field::Set(addresses) = &desired.ingress
        && ingress_ip_only
    {
        let ingress_ops = ingress_by_ip(view, addresses);
        if !ingress_ops.is_empty() {
            ensure_status(&mut ops);
            ops.extend(ingress_ops);
        }
    } else if let Field::Set(addresses) = &desired.ingress {
        let want: Vec<(Text, Option<Text>)> = addresses
            .iter()
            .filter(|a| !a.is_unspecified())
            .map(|a| (a.to_string().into(), Some(Text::const_new("VIP"))))
            .collect();
        if *view.ingress != *want {
            ensure_status(&mut ops);
            let ingress: Vec<Value> = want
                .iter()
                .map(|(ip, _)| json!({"ip": ip.as_str(), "ipMode": "VIP"}))
                .collect();
            let value = if ingress.is_empty() {
                json!({})
            } else {
                json!({ "ingress": ingress })
            };
            ops.push(add(&["status", "loadBalancer"], value));
        }
    }
    let mut conditions: Vec<Condition> = view
        .conditions
        .iter()
        .flatten()
        .map(|c| c.to_condition())
        .collect();
    let mut changed = false;
    for (type_, want) in [
        (CONDITION_TYPE, &desired.condition),
        (ANNOUNCED_CONDITION, &desired.announced),
    ] {
        changed |= apply_condition(&mut conditions, type_, want, view.generation, now);
    }
    if changed {
        ensure_status(&mut ops);
        ops.push(add(&["status", "conditions"], json!(conditions)));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_their_text() {
        let ops = vec![
            add(&["metadata", "annotations"], json!({})),
            add(
                &["metadata", "annotations", "kube-vip.io/loadbalancerIPs"],
                json!("192.0.2.10"),
            ),
            remove(&["metadata", "finalizers", "0"]),
            add(
                &["status", "conditions"],
                json!([{"type": "x", "status": "True"}]),
            ),
        ];
        let compact = Ops::new(&ops);
        assert!(!compact.is_empty());
        assert_eq!(compact.operations(), ops);
        assert!(Ops::new(&[]).is_empty());
        assert!(Ops::new(&[]).operations().is_empty());
    }

    /// A Service whose `status.loadBalancer` is `load_balancer` (`Value::Null`: no status).
    fn service_with(load_balancer: Value) -> Value {
        let mut svc = json!({
            "metadata": {"namespace": "default", "name": "web", "resourceVersion": "7"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        });
        if !load_balancer.is_null() {
            svc["status"] = json!({ "loadBalancer": load_balancer });
        }
        svc
    }

    /// `status.loadBalancer.ingress` after applying the status patch for `desired`, or `None`
    /// when no write is made.
    fn ingress_after(
        load_balancer: Value,
        desired: &[&str],
        ingress_ip_only: bool,
    ) -> Option<Value> {
        let mut svc = service_with(load_balancer);
        let service = serde_json::from_value(svc.clone()).expect("a Service");
        let view = ServiceView::from_service(&service).expect("a view");
        let want = Desired {
            ingress: Field::Set(
                desired
                    .iter()
                    .map(|ip| ip.parse().expect("an address"))
                    .collect(),
            ),
            ..Desired::default()
        };
        let ops = status_patch(&view, &want, ingress_ip_only, Timestamp::UNIX_EPOCH);
        if ops.is_empty() {
            return None;
        }
        json_patch::patch(&mut svc, &ops).expect("patch applies");
        Some(svc["status"]["loadBalancer"]["ingress"].clone())
    }

    #[test]
    fn ingress_ip_only_compares_ips_and_leaves_kube_vips_fields_alone() {
        let ports = json!([{"port": 80, "protocol": "TCP"}]);
        // (what the table row shows, status.loadBalancer, desired addresses,
        //  ingress after the write or None for no write)
        let rows = [
            (
                "kube-vip's ports cause no write",
                json!({"ingress": [{"ip": "192.0.2.10", "ports": ports}]}),
                vec!["192.0.2.10"],
                None,
            ),
            (
                "any ipMode or hostname kube-vip sets causes no write",
                json!({"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy", "hostname": "web"}]}),
                vec!["192.0.2.10"],
                None,
            ),
            (
                "order does not matter, only the set of IPs",
                json!({"ingress": [
                    {"ip": "2001:db8::10", "ports": ports},
                    {"ip": "192.0.2.10", "ports": ports},
                ]}),
                vec!["192.0.2.10", "2001:db8::10"],
                None,
            ),
            (
                "no status yet: bare IPs, as kube-vip-cloud-provider leaves them to kube-vip",
                Value::Null,
                vec!["192.0.2.10"],
                Some(json!([{"ip": "192.0.2.10"}])),
            ),
            (
                "an IP that stays keeps kube-vip's fields; a gone one leaves, a new one is bare",
                json!({"ingress": [
                    {"ip": "192.0.2.10", "ipMode": "Proxy", "ports": ports},
                    {"ip": "192.0.2.99", "ports": ports},
                ]}),
                vec!["192.0.2.10", "2001:db8::10"],
                Some(json!([
                    {"ip": "192.0.2.10", "ipMode": "Proxy", "ports": ports},
                    {"ip": "2001:db8::10"},
                ])),
            ),
            (
                "a DHCP allocation (0.0.0.0) keeps the lease kube-vip reports",
                json!({"ingress": [{"ip": "192.0.2.77", "ports": ports}]}),
                vec!["0.0.0.0"],
                None,
            ),
            (
                "a DHCP allocation keeps only leases of its own family",
                json!({"ingress": [
                    {"ip": "192.0.2.77", "ports": ports},
                    {"ip": "2001:db8::77", "ports": ports},
                ]}),
                vec!["0.0.0.0"],
                Some(json!([{"ip": "192.0.2.77", "ports": ports}])),
            ),
            (
                "release removes the IPs but not a hostname-only entry",
                json!({"ingress": [{"ip": "192.0.2.10", "ports": ports}, {"hostname": "lb.example"}]}),
                vec![],
                Some(json!([{"hostname": "lb.example"}])),
            ),
            (
                "release of the last entry removes the list",
                json!({"ingress": [{"ip": "192.0.2.10", "ports": ports}]}),
                vec![],
                Some(Value::Null),
            ),
        ];
        for (what, load_balancer, desired, expected) in rows {
            assert_eq!(
                ingress_after(load_balancer, &desired, true),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn without_ingress_ip_only_ingress_is_ours_and_rewritten_with_ip_mode_vip() {
        let kube_vip = json!({"ingress": [
            {"ip": "192.0.2.10", "ports": [{"port": 80, "protocol": "TCP"}]},
        ]});
        assert_eq!(
            ingress_after(kube_vip, &["192.0.2.10"], false),
            Some(json!([{"ip": "192.0.2.10", "ipMode": "VIP"}]))
        );
    }
}
