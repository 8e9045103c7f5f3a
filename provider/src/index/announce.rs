//! The index's cluster-mode side: what each Service wants announced, and what the planner's
//! verdicts and moves mean for the Service (its `ferrolb.io/Announced` condition and Events).

use super::*;

impl Index {
    /// Cluster mode: the Services whose announce target may have changed since the last call,
    /// with their target (`None`: nothing to announce).
    pub fn take_targets(&mut self) -> Vec<(ServiceKey, Option<Target>)> {
        let Some(default_mode) = self.settings.cluster_default_mode else {
            self.dirty_targets.clear();
            return Vec::new();
        };
        std::mem::take(&mut self.dirty_targets)
            .into_iter()
            .map(|key| {
                let target = self.target(&key, default_mode);
                (key, target)
            })
            .collect()
    }

    pub(super) fn target(&self, key: &ServiceKey, default_mode: Mode) -> Option<Target> {
        let view = self.view(key)?;
        if view.deleting || !view.in_scope(&self.settings.classes) {
            return None;
        }
        let allocation = self.allocator.allocation(key)?;
        let mut addresses: Vec<std::net::IpAddr> = allocation
            .addresses
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified())
            .collect();
        // The planner keeps it: no room for the four a filtered `collect` reserves.
        addresses.shrink_to_fit();
        if addresses.is_empty() {
            return None;
        }
        let pool = self.allocator.pools().pool(&allocation.pool);
        let mode = match view.mode() {
            None => Ok(pool.and_then(|p| p.mode()).unwrap_or(default_mode)),
            Some((annotation, value)) => Mode::parse(value).ok_or_else(|| {
                format!(
                    "Service {key}: annotation {annotation}: `{value}` is not layer2, vip or bgp"
                )
            }),
        };
        let interface = view
            .service_interface()
            .or_else(|| pool.filter(|p| p.object.is_some())?.interface.as_deref());
        let (mode, interface) = match InterfaceChoice::parse(interface.unwrap_or_default()) {
            Ok(interface) => (mode, interface),
            Err(problem) => (
                Err(format!(
                    "Service {key}: annotation {}: {problem}",
                    crate::service_view::SERVICE_INTERFACE
                )),
                InterfaceChoice::Automatic,
            ),
        };
        let object = pool.and_then(|p| p.object.as_ref()).map(|o| &o.object);
        let nodes = pool.zip(object).and_then(|(p, o)| {
            o.node_selector.as_ref().map(|selector| NodeSelection {
                pool: p.name.as_str().into(),
                selector: Arc::new(selector.clone()),
            })
        });
        let bgp = object
            .map(|o| BgpAttributes {
                communities: o.bgp.communities.clone(),
                large_communities: o.bgp.large_communities.clone(),
                local_pref: o.bgp.local_preference,
            })
            .filter(|attributes| !attributes.is_empty())
            .map(Arc::new);
        Some(Target {
            addresses,
            mode,
            interface,
            local_traffic: view.local_traffic,
            age: (view.created, view.uid.clone().unwrap_or_default()),
            nodes,
            bgp,
        })
    }

    /// Cluster mode: the planner's verdict on a Service changed.
    pub fn set_announced(
        &mut self,
        key: &ServiceKey,
        status: Option<ServiceStatus>,
    ) -> Vec<ServiceWrite> {
        // A verdict on a Service already gone (the planner had not heard yet) is moot.
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        let changed = record.announced != status;
        record.announced = status;
        let mut writes = Vec::new();
        if (changed || self.announce_notes.contains_key(key)) && self.serving {
            self.reconcile_into(key, &mut writes);
        }
        writes
    }

    /// Cluster mode: an address moved; its Services get an Event with their next write.
    pub fn note_move(&mut self, moved: &Move) {
        let to = moved.to.as_deref().unwrap_or("no node");
        // A move learnt from a takeover report is news only to a Service whose condition does
        // not name the new holder yet (an earlier provider may have reported it).
        let records = &self.records;
        let reported = |key: &ServiceKey| {
            moved.adopted
                && records.get(key).is_some_and(|record| {
                    let view = &record.view;
                    view.condition(crate::service_view::ANNOUNCED_CONDITION)
                        .is_some_and(|c| c.status == "True" && c.message.contains(to))
                })
        };
        let note = format!(
            "{} moved from {} to {to}: {}",
            moved.address, moved.from, moved.why
        );
        for key in moved.services.iter().filter(|key| !reported(key)) {
            self.announce_notes
                .entry(key.clone())
                .or_default()
                .push(EventNote {
                    warning: moved.to.is_none(),
                    reason: "Moved",
                    note: note.clone(),
                });
        }
    }

    /// Cluster mode: an announcer saw another host answer for this Service's address; a
    /// Warning Event `AddressConflict` with its next write (now).
    pub fn note_conflict(&mut self, key: &ServiceKey, sentence: &str) -> Vec<ServiceWrite> {
        self.announce_notes
            .entry(key.clone())
            .or_default()
            .push(EventNote {
                warning: true,
                reason: "AddressConflict",
                note: sentence.to_string(),
            });
        let mut writes = Vec::new();
        if self.serving && self.records.contains_key(key) {
            self.reconcile_into(key, &mut writes);
        }
        writes
    }
}

/// The Events for a change of a Service's announcement verdict.
pub(super) fn announce_events(
    view: &ServiceView,
    status: &ServiceStatus,
    announced_seen: &mut Option<bool>,
) -> Vec<EventNote> {
    let was = *announced_seen.get_or_insert_with(|| view.shows_announced());
    let mut notes = Vec::new();
    match status {
        ServiceStatus::Announced { mode, by } if !was => {
            for (address, nodes) in by {
                let nodes: Vec<&str> = nodes.iter().map(|n| n.as_ref()).collect();
                notes.push(EventNote {
                    warning: false,
                    reason: "Announced",
                    note: format!("{address} announced by {} ({mode})", nodes.join(", ")),
                });
            }
            *announced_seen = Some(true);
        }
        ServiceStatus::NotAnnounced {
            reason, message, ..
        } if was => {
            notes.push(EventNote {
                warning: true,
                reason: "AnnounceFailed",
                note: format!("{reason}: {message}"),
            });
            *announced_seen = Some(false);
        }
        _ => {}
    }
    notes
}
