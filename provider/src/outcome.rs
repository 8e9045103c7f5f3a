//! What happened to one Service in the ipam, turned into desired fields and Events.
//!
//! ```text
//!   Outcome + ServiceView ──▶ desired()  ──▶ Desired (desired.rs makes patches of it)
//!   Outcome + Seen        ──▶ events()   ──▶ EventNote (only when something changed)
//! ```

use std::{net::IpAddr, sync::Arc};

use crate::{
    announce::{Mode, ServiceStatus},
    args::StatusMode,
    desired::{ConditionSpec, Desired, Field},
    ownership,
    service_view::{ANNOUNCED_CONDITION, IMPLEMENTATION_VALUE, ServiceView, join},
};

/// What cluster mode says about a Service's announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce<'a> {
    /// `--announcers=none`: somebody else announces; ingress as soon as allocated.
    Off,
    /// Cluster mode, but the planner has not judged this Service yet: leave ingress and the
    /// condition as they are (a new leader must not blank what is really announced).
    Unknown,
    /// Cluster mode: the planner's verdict.
    Status(&'a ServiceStatus),
}

/// The `ferrolb.io/Announced` condition for `status`.
fn announced_condition(status: &ServiceStatus) -> Field<ConditionSpec> {
    match status {
        ServiceStatus::Announced { mode, by } => {
            let list: Vec<String> = by
                .iter()
                .map(|(address, nodes)| {
                    let nodes: Vec<&str> = nodes.iter().map(|n| n.as_ref()).collect();
                    format!("{address} by {}", nodes.join(", "))
                })
                .collect();
            let what = match mode {
                Mode::Bgp => "advertised over BGP",
                Mode::Layer2 => "answered in layer2 mode",
                Mode::Vip => "held in vip mode",
            };
            Field::Set(ConditionSpec {
                status: true,
                reason: "Announced".to_string(),
                message: format!("{} ({what})", list.join("; ")),
            })
        }
        // A Service that shows True while pending is left alone by the index (Unknown).
        ServiceStatus::Pending { message, .. } => Field::Set(ConditionSpec {
            status: false,
            reason: "Pending".to_string(),
            message: message.to_string(),
        }),
        ServiceStatus::NotAnnounced {
            reason, message, ..
        } => Field::Set(ConditionSpec {
            status: false,
            reason: reason.to_string(),
            message: message.to_string(),
        }),
    }
}

/// The result of reconciling one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Service holds these addresses.
    Allocated {
        /// Primary family first.
        addresses: Vec<IpAddr>,
        /// Pool name.
        pool: Arc<str>,
        /// At least one address is shared with another Service.
        shared: bool,
        /// The addresses lie in no current pool (kept after a ConfigMap change).
        outside_pool: bool,
        /// The user's raw request (empty = automatic).
        requested: Vec<String>,
        /// `interface-*` of the pool, for `kube-vip.io/serviceInterface`.
        interface: Option<String>,
    },
    /// No address could be given.
    Failed {
        /// ipam reason (`NoPool`, `OutOfAddresses`, ...).
        reason: String,
        /// Sentence naming Service, pool and address or what to fix.
        message: String,
        /// The user's raw request.
        requested: Vec<String>,
    },
    /// The Service left our scope or is being deleted: undo what we wrote.
    Released {
        /// Why, for the Event.
        why: String,
        /// The interface annotation value we would have written (removed if equal).
        interface: Option<String>,
    },
}

/// What we last reported for a Service, to emit Events only on change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Addresses held.
    pub addresses: Vec<IpAddr>,
    /// Their pool (shared with the allocation).
    pub pool: Arc<str>,
    /// Last failure (reason, message). Boxed: rare, and the index keeps a `Seen` per Service.
    pub failure: Option<Box<(String, String)>>,
    /// Reported as outside every pool.
    pub outside_pool: bool,
}

impl Seen {
    /// What a Service we have not reconciled since start already shows (so a restart emits
    /// no Event for an unchanged Service).
    pub fn from_view(view: &ServiceView, pool: Option<Arc<str>>) -> Self {
        let condition = view.our_condition();
        Seen {
            addresses: {
                let mut addresses = view.recorded_addresses();
                addresses.shrink_to_fit();
                addresses
            },
            pool: pool.unwrap_or_else(|| "unknown".into()),
            failure: condition
                .filter(|c| c.status == "False")
                .map(|c| Box::new((c.reason.to_string(), c.message.to_string()))),
            outside_pool: condition.is_some_and(|c| c.reason == "OutsidePool"),
        }
    }
}

/// One Event to publish on the Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Sentence naming pool and address.
    pub note: String,
}

fn normal(reason: &'static str, note: String) -> EventNote {
    EventNote {
        warning: false,
        reason,
        note,
    }
}

fn warning(reason: &'static str, note: String) -> EventNote {
    EventNote {
        warning: true,
        reason,
        note,
    }
}

/// Settings that shape the desired fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSettings {
    /// `--write-load-balancer-ip`.
    pub write_load_balancer_ip: bool,
    /// `--status`.
    pub status: StatusMode,
}

/// Removed when ours (see `ownership.rs`), kept otherwise.
fn remove_if<T>(ours: bool) -> Field<T> {
    if ours { Field::Remove } else { Field::Keep }
}

fn release_common(view: &ServiceView, settings: WriteSettings) -> Desired {
    Desired {
        loadbalancer_ips: remove_if(ownership::annotation_removable(view)),
        allocated: Field::Remove,
        implementation_label: remove_if(ownership::implementation_label(view)),
        load_balancer_ip: remove_if(ownership::load_balancer_ip(view)),
        ingress: if settings.status == StatusMode::Allocated && ownership::ingress(view) {
            Field::Set(Vec::new())
        } else {
            Field::Keep
        },
        announced: Field::Remove,
        ..Desired::default()
    }
}

/// `from pool <name>`; a Service outside every pool (a DHCP request, an unchecked request,
/// an address adopted as kube-vip-cloud-provider left it) holds its addresses "as requested".
fn from_pool(pool: &str) -> String {
    if pool.is_empty() {
        "as requested".to_string()
    } else {
        format!("from pool {pool}")
    }
}

fn request_record(requested: &[String]) -> Field<String> {
    if requested.is_empty() {
        Field::Remove
    } else {
        Field::Set(requested.join(","))
    }
}

/// The desired fields for `outcome`.
pub fn desired(
    view: &ServiceView,
    outcome: &Outcome,
    settings: WriteSettings,
    announce: Announce<'_>,
) -> Desired {
    match outcome {
        Outcome::Allocated {
            addresses,
            pool,
            shared,
            outside_pool,
            requested,
            interface,
        } => {
            let list = join(addresses);
            // As kube-vip-cloud-provider: the first address (of a dual-stack Service too)
            // when the provider picked the addresses; a Service that requested its addresses
            // gets no new field (a field we wrote earlier follows the addresses), and a value
            // the user set is never overwritten.
            let ours = ownership::load_balancer_ip(view);
            let users_value = view.load_balancer_ip().is_some() && !ours;
            let automatic = requested.is_empty();
            let load_balancer_ip = match addresses.first() {
                _ if users_value => Field::Keep,
                Some(first) if settings.write_load_balancer_ip && (automatic || ours) => {
                    Field::Set(first.to_string())
                }
                _ if ours => Field::Remove,
                _ => Field::Keep,
            };
            // As kube-vip-cloud-provider: the interface goes with addresses the provider
            // picks, in the same write; an existing Service (also one KVCP left) keeps the
            // value it has.
            let picks_new = automatic && view.loadbalancer_ips.as_deref() != Some(list.as_str());
            let service_interface = match interface {
                Some(interface) if picks_new => Field::Set(interface.clone()),
                _ => Field::Keep,
            };
            // KVCP drops its legacy `ipam-address` label when it copies
            // spec.loadBalancerIP into the annotation.
            let ipam_address_label =
                if view.load_balancer_ip().is_some() && view.loadbalancer_ips.is_none() {
                    Field::Remove
                } else {
                    Field::Keep
                };
            let (reason, message) = if *outside_pool {
                (
                    "OutsidePool",
                    if requested.is_empty() {
                        format!(
                            "{list} no longer lies in any pool for namespace {}; kept (run with \
                             --reallocate-outside-pools to move it, or add it back to the \
                             ConfigMap)",
                            view.key.namespace
                        )
                    } else {
                        // Requested (for example left by kube-vip-cloud-provider, which
                        // never checked it): moving it would not honour the request.
                        format!(
                            "{list} lies in no pool for namespace {}; kept as requested (add it \
                             to the ConfigMap to silence this)",
                            view.key.namespace
                        )
                    },
                )
            } else {
                let sharing = if *shared {
                    " (shared with other Services)"
                } else {
                    ""
                };
                ("Allocated", format!("{list} {}{sharing}", from_pool(pool)))
            };
            Desired {
                loadbalancer_ips: Field::Set(list.clone()),
                allocated: Field::Set(list),
                requested: request_record(requested),
                service_interface,
                implementation_label: Field::Set(IMPLEMENTATION_VALUE.to_string()),
                ipam_address_label,
                load_balancer_ip,
                finalizer: Some(true),
                ingress: match (settings.status, announce) {
                    (StatusMode::None, _) | (_, Announce::Unknown) => Field::Keep,
                    // 0.0.0.0 asks kube-vip for DHCP; desired.rs leaves the lease to kube-vip.
                    (StatusMode::Allocated, Announce::Off) => Field::Set(addresses.clone()),
                    // Cluster mode: only what an announcer really has in force.
                    (StatusMode::Allocated, Announce::Status(status)) => {
                        Field::Set(status.active())
                    }
                },
                announced: match announce {
                    Announce::Off if view.condition(ANNOUNCED_CONDITION).is_some() => Field::Remove,
                    Announce::Off | Announce::Unknown => Field::Keep,
                    Announce::Status(status) => announced_condition(status),
                },
                condition: Field::Set(ConditionSpec {
                    status: true,
                    reason: reason.to_string(),
                    message,
                }),
            }
        }
        Outcome::Failed {
            reason,
            message,
            requested,
        } => Desired {
            requested: request_record(requested),
            finalizer: Some(true),
            condition: Field::Set(ConditionSpec {
                status: false,
                reason: reason.clone(),
                message: message.clone(),
            }),
            ..release_common(view, settings)
        },
        Outcome::Released { interface, .. } => Desired {
            requested: Field::Remove,
            service_interface: remove_if(ownership::service_interface(view, interface.as_deref())),
            finalizer: Some(false),
            condition: Field::Remove,
            ..release_common(view, settings)
        },
    }
}

/// Events for the change from `seen` to `outcome`, and the new `Seen`.
pub fn events(seen: &Seen, outcome: &Outcome) -> (Vec<EventNote>, Seen) {
    let mut notes = Vec::new();
    let held = join(&seen.addresses);
    let next = match outcome {
        Outcome::Allocated {
            addresses,
            pool,
            outside_pool,
            shared,
            ..
        } => {
            let list = join(addresses);
            if seen.addresses.is_empty() {
                let sharing = if *shared {
                    ", shared with other Services"
                } else {
                    ""
                };
                notes.push(normal(
                    "AddressAllocated",
                    format!("allocated {list} {}{sharing}", from_pool(pool)),
                ));
            } else if seen.addresses != *addresses {
                notes.push(normal(
                    "AddressChanged",
                    format!(
                        "address changed from {held} (pool {}) to {list} (pool {pool})",
                        seen.pool
                    ),
                ));
            }
            if *outside_pool && !seen.outside_pool {
                notes.push(warning(
                    "AddressOutsidePool",
                    format!("{list} (pool {pool}) no longer lies in any pool; kept"),
                ));
            }
            Seen {
                addresses: addresses.clone(),
                pool: pool.clone(),
                failure: None,
                outside_pool: *outside_pool,
            }
        }
        Outcome::Failed {
            reason, message, ..
        } => {
            if !seen.addresses.is_empty() {
                notes.push(normal(
                    "AddressReleased",
                    format!("released {held} (pool {}): {reason}", seen.pool),
                ));
            }
            let failure = (reason.clone(), message.clone());
            if seen.failure.as_deref() != Some(&failure) {
                notes.push(warning("AllocationFailed", format!("{reason}: {message}")));
            }
            Seen {
                failure: Some(Box::new(failure)),
                ..Seen::default()
            }
        }
        Outcome::Released { why, .. } => {
            if !seen.addresses.is_empty() {
                notes.push(normal(
                    "AddressReleased",
                    format!("released {held} (pool {}): {why}", seen.pool),
                ));
            }
            Seen::default()
        }
    };
    (notes, next)
}
