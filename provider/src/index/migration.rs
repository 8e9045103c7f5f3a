//! Coming from kube-vip-cloud-provider: what the index adopts as KVCP left it, and the
//! warnings about the ConfigMap it publishes as Events.
//!
//! ```text
//!   ServiceView ──adoptable_addresses / is_requested──▶ Adoption (ipam::adopt)
//!   AdoptionConflict{kept} / outside every pool ──────▶ Warning Event `AdoptedAsIs` + metric
//!   ConfigMap + its warnings ──ConfigNotes::config_read──▶ Warning Events on the ConfigMap
//! ```
//! KVCP accepted any address a Service asked for. A Service it left behind keeps its address
//! after the switch even where FerroLB would refuse the same request for a new Service; the
//! operator learns about it from a Warning Event and `ferrolb_adopted_as_is_total`, never
//! from a failed Service.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::ConfigMap;

use crate::{
    ipam::{AdoptionConflict, ServiceKey, ServiceRequest},
    outcome::EventNote,
    pools::ConfigWarning,
    service_view::{IMPLEMENTATION_VALUE, ServiceView, join, parse_list},
};

/// The addresses a Service shows as kube-vip-cloud-provider left it (its
/// `implementation=kube-vip` label and no record of ours): its annotation, or for a legacy
/// KVCP Service without the annotation its `spec.loadBalancerIP` (KVCP copies that into the
/// annotation; so do we). `0.0.0.0` (DHCP) included.
pub fn left_by_kvcp(view: &ServiceView) -> Vec<IpAddr> {
    if view.allocated.is_some()
        || view.implementation_label.as_deref() != Some(IMPLEMENTATION_VALUE)
    {
        return Vec::new();
    }
    match &view.loadbalancer_ips {
        Some(list) => parse_list(Some(list)),
        None => parse_list(view.load_balancer_ip()),
    }
}

/// Addresses a Service already carries that we adopt: what we recorded, or what
/// kube-vip-cloud-provider left ([`left_by_kvcp`]).
pub fn adoptable_addresses(view: &ServiceView) -> Vec<IpAddr> {
    let mut addresses = if view.allocated.is_some() {
        view.recorded_addresses()
    } else {
        left_by_kvcp(view)
    };
    // DHCP placeholders are not addresses anybody holds.
    addresses.retain(|a| !a.is_unspecified());
    addresses
}

/// True when `addresses` are exactly what the Service explicitly asks for.
pub fn is_requested(request: &ServiceRequest, addresses: &[IpAddr]) -> bool {
    let mut asked: Vec<IpAddr> = request
        .requested
        .iter()
        .flat_map(|raw| parse_list(Some(raw)))
        .filter(|a| !a.is_unspecified())
        .collect();
    asked.sort();
    asked.dedup();
    let mut held = addresses.to_vec();
    held.sort();
    held.dedup();
    !asked.is_empty() && asked == held
}

/// The Event for a Service that keeps an address another Service holds too.
pub fn kept_despite_conflict(conflict: &AdoptionConflict) -> EventNote {
    EventNote {
        warning: true,
        reason: "AdoptedAsIs",
        note: format!(
            "kept {} as it was found, although Service {} holds it too and sharing does not \
             allow it; FerroLB would refuse this request for a new Service",
            conflict.address, conflict.held_by
        ),
    }
}

/// The metric reason and Event for a Service that keeps addresses outside every pool of its
/// namespace (`has_pool` false: the namespace has no pool at all).
pub fn kept_outside_pools(
    key: &ServiceKey,
    addresses: &[IpAddr],
    has_pool: bool,
) -> (&'static str, EventNote) {
    let (reason, why) = if has_pool {
        (
            "outside_pool",
            format!("it lies in no pool of namespace {}", key.namespace),
        )
    } else {
        (
            "no_pool",
            format!("namespace {} has no pool", key.namespace),
        )
    };
    let note = EventNote {
        warning: true,
        reason: "AdoptedAsIs",
        note: format!(
            "kept {} as it was found, although {why}; FerroLB would refuse this request for \
             a new Service",
            join(addresses)
        ),
    };
    (reason, note)
}

/// Warning Events for the pool ConfigMap, one batch per reading whose data changed.
#[derive(Debug, Default)]
pub struct ConfigNotes {
    /// The data of the last reading (None before the first).
    last: Option<BTreeMap<String, String>>,
    /// Events not yet taken.
    pending: Option<ConfigEvents>,
}

/// Events about the pool ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEvents {
    /// namespace/name of the ConfigMap.
    pub key: ServiceKey,
    /// Its uid.
    pub uid: Option<String>,
    /// One Warning per ConfigMap warning.
    pub notes: Vec<EventNote>,
}

impl ConfigNotes {
    /// The ConfigMap was read; `warnings` are what parsing it found. A reading with the
    /// same data as the last one (a relist, a change of labels) publishes nothing again.
    pub fn config_read(&mut self, config: &ConfigMap, warnings: &[ConfigWarning]) {
        let data = config.data.clone().unwrap_or_default();
        if self.last.as_ref() == Some(&data) {
            return;
        }
        self.last = Some(data);
        let notes: Vec<EventNote> = warnings
            .iter()
            .map(|warning| EventNote {
                warning: true,
                reason: if warning.kind.is_kvcp_difference() {
                    "KvcpDifference"
                } else {
                    "ConfigWarning"
                },
                note: warning.to_string(),
            })
            .collect();
        let meta = &config.metadata;
        self.pending = (!notes.is_empty()).then(|| ConfigEvents {
            key: ServiceKey::new(
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
            ),
            uid: meta.uid.clone(),
            notes,
        });
    }

    /// The ConfigMap is gone: its next reading is news again.
    pub fn config_missing(&mut self) {
        self.last = None;
        self.pending = None;
    }

    /// The Events not yet published.
    pub fn take(&mut self) -> Option<ConfigEvents> {
        self.pending.take()
    }
}
