//! The pure core of the controller: watch events in, desired Service patches out.
//!
//! ```text
//!   Service watch ──apply/delete/reset──┐
//!                                       ▼
//!   ConfigMap watch ──apply_config──▶ Index { Allocator, records } ──▶ Vec<ServiceWrite>
//!                                                                           (to writer.rs)
//! ```
//!
//! Owned by a single task (`controller.rs`); no I/O, no async, no locks. Tests build an
//! `Index`, apply objects and assert on the writes that come out.
//!
//! **Adopt before allocate.** Until the first complete list of Services *and* the first read
//! of the ConfigMap (present or missing) have arrived, the index only records what it sees.
//! Then it hands every address Services already carry to `Allocator::adopt` (older Services
//! win contested addresses), and only after that allocates anything. So a restart never moves
//! or duplicates an address.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Service},
    jiff::Timestamp,
};

use crate::{
    announce::{
        InterfaceChoice, Mode, Move, ServiceStatus, Target,
        model::{BgpAttributes, NodeSelection},
    },
    args::StatusMode,
    desired::{Ops, main_patch, status_patch},
    ipam::{Adoption, Allocator, ServiceKey},
    metrics::{Metrics, PoolFigures},
    outcome::{Announce, EventNote, Outcome, Seen, WriteSettings, desired, events},
    pools::{PoolSet, parse_config},
    service_view::{ClassFilter, ServiceView},
};

/// Settings of the index (from the command line).
#[derive(Clone, Debug)]
pub struct IndexSettings {
    /// Which classes we serve.
    pub classes: ClassFilter,
    /// `--write-load-balancer-ip`.
    pub write_load_balancer_ip: bool,
    /// `--status`.
    pub status: StatusMode,
    /// `--reallocate-outside-pools`.
    pub reallocate_outside_pools: bool,
    /// "namespace/name" of the pool ConfigMap, for messages.
    pub config_source: String,
    /// Cluster mode (`--announcers=cluster`): the mode of Services that name none. `None`:
    /// somebody else announces (`--announcers=none`).
    pub cluster_default_mode: Option<Mode>,
    /// Next to kube-vip (`--announcers=none`): `status.loadBalancer.ingress` is compared by
    /// its set of IPs only, so the ports and ipMode kube-vip writes are left alone (kube-vip
    /// re-adds its VIP whenever the ingress ports differ from the spec, so rewriting them
    /// makes the two loop). See [`crate::desired::status_patch`].
    pub ingress_ip_only: bool,
    /// `--requested-addresses=unchecked`: requested addresses are taken as written, as
    /// kube-vip-cloud-provider does (no pool, family or conflict check).
    pub requests_unchecked: bool,
}

/// One conditional write the writer should make.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceWrite {
    /// The Service.
    pub key: ServiceKey,
    /// Its uid (for the Event reference).
    pub uid: Option<String>,
    /// The resourceVersion the patches were computed from; the writer `test`s it.
    pub resource_version: String,
    /// Operations on metadata/spec (empty = none).
    pub main: Ops,
    /// Operations on the status subresource (empty = none).
    pub status: Ops,
    /// Events to publish on the Service.
    pub events: Vec<EventNote>,
    /// This write gives the Service new addresses (for the latency histogram).
    pub allocates: bool,
}

impl ServiceWrite {
    /// One write for both: `newer`'s patches (computed later) win, the Events of both are
    /// kept in order, and it allocates if either did.
    pub fn absorb(self, newer: ServiceWrite) -> ServiceWrite {
        let mut events = self.events;
        events.extend(newer.events);
        ServiceWrite {
            events,
            allocates: self.allocates || newer.allocates,
            ..newer
        }
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.main.is_empty() && self.status.is_empty() && self.events.is_empty()
    }
}

/// Folds writes to the same Service into one ([`ServiceWrite::absorb`]), in first-seen order.
fn coalesce(writes: Vec<ServiceWrite>) -> Vec<ServiceWrite> {
    let mut at: HashMap<ServiceKey, usize> = HashMap::new();
    let mut out: Vec<Option<ServiceWrite>> = Vec::with_capacity(writes.len());
    for write in writes {
        match at.get(&write.key) {
            Some(&i) => out[i] = out[i].take().map(|older| older.absorb(write)),
            None => {
                at.insert(write.key.clone(), out.len());
                out.push(Some(write));
            }
        }
    }
    out.into_iter().flatten().collect()
}

/// The index. See the module documentation.
pub struct Index {
    settings: IndexSettings,
    allocator: Allocator,
    /// Problems of the current ConfigMap as (affected namespace or None = all, sentence).
    config_problems: Vec<(Option<String>, String)>,
    /// One record per Service, boxed: a `BTreeMap` node holds 11 values, so records of
    /// several hundred bytes inline left about a third of every node empty.
    records: BTreeMap<ServiceKey, Box<Record>>,
    /// Services keeping addresses that lie in no current pool.
    outside: BTreeSet<ServiceKey>,
    /// Services whose last allocation failed: retried when addresses are released.
    failed: BTreeSet<ServiceKey>,
    /// Notes from adoption conflicts, added to the loser's next Event.
    adoption_notes: HashMap<ServiceKey, String>,
    services_listed: bool,
    config_listed: bool,
    /// The ConfigMap could not be read: pools are unknown, so nothing is judged "outside".
    pools_unknown: bool,
    serving: bool,
    metrics: Arc<Metrics>,
    clock: fn() -> Timestamp,
    /// Cluster mode: Events about moves, added to the Service's next write.
    announce_notes: HashMap<ServiceKey, Vec<EventNote>>,
    /// Cluster mode: Services whose announce target may have changed.
    dirty_targets: BTreeSet<ServiceKey>,
    /// ConfigMap reads that failed in a row.
    config_failures: u32,
    /// Warnings about the ConfigMap, to publish as Events on it (see [`migration`]).
    config_notes: migration::ConfigNotes,
    /// Warning Events for Services adopted as kube-vip-cloud-provider left them although
    /// FerroLB would refuse the same request today, added to the Service's next write.
    adopted_as_is: HashMap<ServiceKey, EventNote>,
    /// The pools of the ConfigMap and of pool objects (see [`pool_sources`]).
    sources: pool_sources::PoolSources,
    /// The views' pool queries, one per distinct value (see [`queries`]).
    queries: queries::Queries,
}

/// What the index keeps about one Service, in one allocation (separate maps per field cost a
/// key and a table slot each, several MiB at 10,000 Services).
struct Record {
    view: ServiceView,
    /// What the Service showed when last reconciled (Events are about changes to it).
    seen: Option<Seen>,
    /// Cluster mode: the planner's verdict.
    announced: Option<ServiceStatus>,
    /// Cluster mode: whether we last reported it announced (for its Events).
    announced_seen: Option<bool>,
}

impl Record {
    /// The record of a Service whose object is now `view`: what `old` knew beyond the object
    /// is kept, and so is its key (shared with the index's other maps, not a new copy).
    fn refreshed(old: Option<Box<Record>>, mut view: ServiceView) -> Box<Record> {
        match old {
            Some(mut record) => {
                view.key = record.view.key.clone();
                record.view = view;
                record
            }
            None => Box::new(Record {
                view,
                seen: None,
                announced: None,
                announced_seen: None,
            }),
        }
    }
}

/// Failed ConfigMap reads in a row after which the pools count as unreadable.
pub const UNREADABLE_AFTER: u32 = 3;

impl Index {
    /// An empty index; nothing is allocated until [`Index::is_serving`].
    pub fn new(settings: IndexSettings, metrics: Arc<Metrics>) -> Self {
        Self::with_clock(settings, metrics, Timestamp::now)
    }

    /// Same, with a clock for condition timestamps (tests pin it).
    pub fn with_clock(
        settings: IndexSettings,
        metrics: Arc<Metrics>,
        clock: fn() -> Timestamp,
    ) -> Self {
        let mut allocator = Allocator::new(PoolSet::default());
        allocator.set_requests_unchecked(settings.requests_unchecked);
        Index {
            settings,
            allocator,
            config_problems: Vec::new(),
            records: BTreeMap::new(),
            outside: BTreeSet::new(),
            failed: BTreeSet::new(),
            adoption_notes: HashMap::new(),
            services_listed: false,
            config_listed: false,
            pools_unknown: false,
            serving: false,
            metrics,
            clock,
            announce_notes: HashMap::new(),
            dirty_targets: BTreeSet::new(),
            config_failures: 0,
            config_notes: migration::ConfigNotes::default(),
            adopted_as_is: HashMap::new(),
            sources: pool_sources::PoolSources::default(),
            queries: queries::Queries::default(),
        }
    }

    /// Warning Events to publish on the pool ConfigMap: at start and after every change of
    /// its data, one per warning (above all, each place where new Services get addresses
    /// differently than with kube-vip-cloud-provider).
    pub fn take_config_events(&mut self) -> Option<migration::ConfigEvents> {
        self.config_notes.take()
    }

    /// True once existing allocations are adopted and new ones are made.
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// The allocation a Service holds (for tests and diagnostics).
    pub fn allocation(&self, key: &ServiceKey) -> Option<&crate::ipam::Allocation> {
        self.allocator.allocation(key)
    }

    /// A Service was added or changed.
    pub fn apply_service(&mut self, service: &Service) -> Vec<ServiceWrite> {
        let Some(mut view) = ServiceView::from_service(service) else {
            return Vec::new();
        };
        self.queries.share(&mut view.pool_query);
        let record = Record::refreshed(self.records.remove(&view.key), view);
        let key = record.view.key.clone();
        self.records.insert(key.clone(), record);
        if !self.serving {
            return Vec::new();
        }
        let mut writes = Vec::new();
        let held_before = self.held(&key);
        self.reconcile_into(&key, &mut writes);
        if self.held(&key) < held_before {
            self.retry_failed(&key, &mut writes);
        }
        writes
    }

    /// A Service read back after a write computed from its resourceVersion `failed` failed
    /// (refused, timed out, server error).
    ///
    /// The re-read and the Service watch are separate streams, so the watch may have brought
    /// a newer version than `failed` meanwhile, and the re-read may be *older* than that one
    /// (it was read before the next write of the Service succeeded). The watch event already
    /// reconciled the Service, and the watch brings every later version too, so a re-read is
    /// taken only while the index still holds `failed`. Taking an older one would put a
    /// replaced version back: a write computed from it is what the writer drops as made stale
    /// by the write that replaced that version, and as no watch event follows any more,
    /// what it carried (the `ferrolb.io/Announced` condition) would never be written.
    pub fn apply_reread(&mut self, failed: &str, service: &Service) -> Vec<ServiceWrite> {
        let Some(view) = ServiceView::from_service(service) else {
            return Vec::new();
        };
        if !self.holds_version(&view.key, failed) {
            tracing::debug!(service = %view.key, failed, read = %view.resource_version,
                "re-read after a failed write: the watch has moved on; not taken");
            return Vec::new();
        }
        self.apply_service(service)
    }

    /// A re-read found the Service gone, after a write computed from its resourceVersion
    /// `failed` failed. Taken, like [`Index::apply_reread`], only while the index still holds
    /// `failed`; otherwise the watch has moved on and brings the deletion itself.
    pub fn reread_gone(&mut self, failed: &str, key: &ServiceKey) -> Vec<ServiceWrite> {
        if !self.holds_version(key, failed) {
            return Vec::new();
        }
        self.delete_service(&key.namespace, &key.name)
    }

    fn holds_version(&self, key: &ServiceKey, resource_version: &str) -> bool {
        self.view(key)
            .is_some_and(|view| view.resource_version == resource_version)
    }

    /// A Service is gone from the API (after its finalizer was removed, or force-deleted).
    pub fn delete_service(&mut self, namespace: &str, name: &str) -> Vec<ServiceWrite> {
        let key = ServiceKey::new(namespace, name);
        self.records.remove(&key);
        self.outside.remove(&key);
        self.failed.remove(&key);
        self.announce_notes.remove(&key);
        self.dirty_targets.insert(key.clone());
        if !self.serving {
            return Vec::new();
        }
        let mut writes = Vec::new();
        if !self.allocator.release(&key).is_empty() {
            self.metrics.releases.inc();
            self.retry_failed(&key, &mut writes);
        }
        writes
    }

    /// A complete list of Services (initial list or relist after a watch gap).
    pub fn reset_services(&mut self, services: &[Service]) -> Vec<ServiceWrite> {
        self.reset_views(services.iter().filter_map(ServiceView::from_service))
    }

    /// [`Index::reset_services`] for Services already reduced to views, so a caller that
    /// buffers a list of thousands keeps only the compact views.
    pub fn reset_views(
        &mut self,
        views: impl IntoIterator<Item = ServiceView>,
    ) -> Vec<ServiceWrite> {
        let mut fresh: BTreeMap<ServiceKey, Box<Record>> = BTreeMap::new();
        for mut view in views {
            self.queries.share(&mut view.pool_query);
            let record = Record::refreshed(self.records.remove(&view.key), view);
            fresh.insert(record.view.key.clone(), record);
        }
        let gone: Vec<ServiceKey> = std::mem::replace(&mut self.records, fresh)
            .into_keys()
            .collect();
        self.services_listed = true;
        let mut writes = Vec::new();
        for key in gone {
            writes.extend(self.delete_service(&key.namespace, &key.name));
        }
        if self.serving {
            self.reconcile_all(&mut writes);
        } else {
            self.maybe_start(&mut writes);
        }
        // Releases of vanished Services retry failed ones, which `reconcile_all` visits again:
        // one write per Service, or the second would fail its resourceVersion test.
        coalesce(writes)
    }

    /// The pool ConfigMap was read: `None` means it does not exist.
    pub fn apply_config(&mut self, config: Option<&ConfigMap>) -> Vec<ServiceWrite> {
        let source = self.settings.config_source.clone();
        let problems_before = std::mem::take(&mut self.config_problems);
        let pools = match config {
            Some(config) => {
                let empty = BTreeMap::new();
                let parsed = parse_config(&source, config.data.as_ref().unwrap_or(&empty));
                for error in &parsed.errors {
                    self.config_problems
                        .push((error.namespace().map(str::to_string), error.to_string()));
                }
                for warning in &parsed.warnings {
                    tracing::warn!(config = %source, "{warning}");
                }
                let differences = parsed
                    .warnings
                    .iter()
                    .filter(|w| w.kind.is_kvcp_difference())
                    .count();
                self.metrics
                    .config_kvcp_differences
                    .set(i64::try_from(differences).unwrap_or(i64::MAX));
                self.config_notes.config_read(config, &parsed.warnings);
                parsed.pools
            }
            None => {
                self.config_notes.config_missing();
                self.metrics.config_kvcp_differences.set(0);
                self.config_problems.push((
                    None,
                    format!(
                        "ConfigMap {source} does not exist; create it with cidr-*/range-* keys"
                    ),
                ));
                PoolSet::default()
            }
        };
        for (_, problem) in &self.config_problems {
            tracing::warn!(config = %source, "{problem}");
        }
        self.metrics
            .config_errors
            .set(i64::try_from(self.config_problems.len()).unwrap_or(i64::MAX));
        // Problems are quoted in failure messages: new ones (or pools that were unknown) are
        // news to every Service, even when the pools come out the same.
        let everyone = self.pools_unknown || problems_before != self.config_problems;
        self.sources.config = pools;
        self.config_listed = true;
        self.pools_unknown = false;
        self.pools_changed(everyone)
    }

    /// The ConfigMap was read (any real data, also one object of a list).
    pub fn config_readable(&mut self) {
        self.config_failures = 0;
    }

    /// Reading the ConfigMap failed. A single failure is usually transient;
    /// [`UNREADABLE_AFTER`] in a row (with the watcher's backoff between them) mean it is
    /// unreadable, and Services are told ([`Index::config_unreadable`]).
    pub fn config_read_failed(&mut self, problem: &str) -> Vec<ServiceWrite> {
        self.config_failures += 1;
        if self.config_failures >= UNREADABLE_AFTER {
            self.config_unreadable(problem)
        } else {
            tracing::warn!(problem, "ConfigMap read failed; retrying");
            Vec::new()
        }
    }

    /// The ConfigMap cannot be read (for example 403 Forbidden) although the API answers.
    /// Before the first successful read this lets the index start: existing addresses are
    /// adopted and kept, and Services that need a new address get a False condition saying
    /// why. After a successful read it only reports; the last good pools stay in force.
    pub fn config_unreadable(&mut self, problem: &str) -> Vec<ServiceWrite> {
        let message = format!(
            "cannot read ConfigMap {}: {problem}",
            self.settings.config_source
        );
        tracing::warn!("{message}");
        if self.config_listed && !self.pools_unknown {
            return Vec::new();
        }
        self.config_problems = vec![(None, message)];
        self.metrics.config_errors.set(1);
        self.pools_unknown = true;
        self.config_listed = true;
        let mut writes = Vec::new();
        if self.serving {
            self.reconcile_all(&mut writes);
        } else {
            self.maybe_start(&mut writes);
        }
        writes
    }

    /// Adopts and starts serving once both initial reads are complete.
    fn maybe_start(&mut self, writes: &mut Vec<ServiceWrite>) {
        if self.serving
            || !self.services_listed
            || !self.config_listed
            || !self.sources.all_listed()
        {
            return;
        }
        let mut adoptions = Vec::new();
        for view in self.views() {
            if view.deleting || !view.in_scope(&self.settings.classes) {
                continue;
            }
            let addresses = migration::adoptable_addresses(view);
            if addresses.is_empty() {
                continue;
            }
            match view.request() {
                Ok(request) => adoptions.push(Adoption {
                    as_requested: migration::is_requested(&request, &addresses),
                    request,
                    addresses,
                    order: view.order(),
                }),
                Err(problem) => tracing::warn!(service = ?view.key, "not adopting: {problem}"),
            }
        }
        let adopted = adoptions.len();
        let as_requested: BTreeSet<ServiceKey> = adoptions
            .iter()
            .filter(|a| a.as_requested)
            .map(|a| a.request.key.clone())
            .collect();
        for conflict in self.allocator.adopt(adoptions) {
            if conflict.kept {
                let note = migration::kept_despite_conflict(&conflict);
                tracing::warn!(service = ?conflict.key, "{}", note.note);
                self.metrics.adopted_as_is("address_conflict");
                self.note_adopted_as_is(conflict.key, note);
                continue;
            }
            let note = format!(
                "{} was also held by the older Service {}/{}, which keeps it",
                conflict.address, conflict.held_by.namespace, conflict.held_by.name
            );
            tracing::warn!(service = ?conflict.key, "{note}");
            self.adoption_notes.insert(conflict.key, note);
        }
        tracing::info!(
            adopted,
            services = self.records.len(),
            "adopted existing allocations; allocating"
        );
        self.serving = true;
        self.refresh_outside();
        let mut notes = Vec::new();
        for key in self.outside.intersection(&as_requested) {
            if self.adopted_as_is.contains_key(key) {
                continue;
            }
            let Some(allocation) = self.allocator.allocation(key) else {
                continue;
            };
            let has_pool = self
                .view(key)
                .and_then(|view| view.request().ok())
                .is_some_and(|request| self.allocator.home_pool(&request, &[]).is_some());
            let (reason, note) =
                migration::kept_outside_pools(key, &allocation.addresses, has_pool);
            tracing::warn!(service = ?key, "{}", note.note);
            self.metrics.adopted_as_is(reason);
            notes.push((key.clone(), note));
        }
        for (key, note) in notes {
            self.note_adopted_as_is(key, note);
        }
        self.reconcile_all(writes);
    }

    /// Keeps the `AdoptedAsIs` Event for the Service's next write, unless the Service was
    /// ours before (it shows our condition): a restart repeats no Event.
    fn note_adopted_as_is(&mut self, key: ServiceKey, note: EventNote) {
        let ours_before = self
            .view(&key)
            .is_some_and(|view| view.our_condition().is_some());
        if !ours_before {
            self.adopted_as_is.insert(key, note);
        }
    }

    fn refresh_outside(&mut self) {
        if self.pools_unknown {
            // Unknown pools say nothing about where existing addresses lie.
            self.outside.clear();
            return;
        }
        self.outside = self.allocator.outside_pools().into_iter().collect();
        if self.settings.reallocate_outside_pools {
            for key in std::mem::take(&mut self.outside) {
                tracing::info!(service = ?key, "address outside every pool: reallocating");
                if !self.allocator.release(&key).is_empty() {
                    self.metrics.releases.inc();
                }
            }
        }
    }

    /// Reconciles every Service, oldest first (older Services get addresses first).
    fn reconcile_all(&mut self, writes: &mut Vec<ServiceWrite>) {
        let mut keys: Vec<_> = self.views().map(|v| v.age_key()).collect();
        keys.sort();
        let keys: Vec<ServiceKey> = keys.into_iter().map(|(_, _, k)| k.clone()).collect();
        for key in keys {
            self.reconcile_into(&key, writes);
        }
    }

    /// After addresses were released, Services that failed may succeed now.
    fn retry_failed(&mut self, except: &ServiceKey, writes: &mut Vec<ServiceWrite>) {
        let mut retry: Vec<_> = self
            .failed
            .iter()
            .filter(|k| *k != except)
            .filter_map(|k| self.view(k).map(|v| v.age_key()))
            .collect();
        retry.sort();
        let retry: Vec<ServiceKey> = retry.into_iter().map(|(_, _, k)| k.clone()).collect();
        for key in retry {
            self.reconcile_into(&key, writes);
        }
    }

    /// The view of a Service.
    fn view(&self, key: &ServiceKey) -> Option<&ServiceView> {
        self.records.get(key).map(|r| &r.view)
    }

    /// Every view.
    fn views(&self) -> impl Iterator<Item = &ServiceView> {
        self.records.values().map(|r| &r.view)
    }

    fn held(&self, key: &ServiceKey) -> usize {
        self.allocator.allocation(key).map_or(0, |a| {
            a.addresses.iter().filter(|a| !a.is_unspecified()).count()
        })
    }

    /// Computes the outcome for one Service and pushes the write it needs, if any.
    fn reconcile_into(&mut self, key: &ServiceKey, writes: &mut Vec<ServiceWrite>) {
        // Out of the map while the outcome mutates the allocator next to it (no copy).
        let Some((held_key, mut record)) = self.records.remove_entry(key) else {
            return;
        };
        self.reconcile_record(&mut record, writes);
        self.records.insert(held_key, record);
    }

    fn reconcile_record(&mut self, record: &mut Record, writes: &mut Vec<ServiceWrite>) {
        let view = &record.view;
        let key = &view.key;
        if self.settings.cluster_default_mode.is_some() {
            self.dirty_targets.insert(key.clone());
        }
        let Some(outcome) = self.outcome(view) else {
            record.seen = None;
            return;
        };
        let seen = match &record.seen {
            Some(seen) => seen.clone(),
            None => {
                let pool = self.allocator.allocation(key).map(|a| a.pool.clone());
                let mut seen = Seen::from_view(view, pool);
                if view.allocated.is_none() {
                    // What kube-vip-cloud-provider left: adopting it is no new allocation.
                    seen.addresses = migration::left_by_kvcp(view);
                }
                seen
            }
        };
        let (mut notes, next) = events(&seen, &outcome);
        if let Some(note) = self.adoption_notes.remove(key) {
            for event in notes
                .iter_mut()
                .filter(|n| n.reason == "AddressChanged" || n.reason == "AddressAllocated")
            {
                event.note = format!("{} ({note})", event.note);
            }
        }
        match &outcome {
            Outcome::Allocated { pool, .. } => {
                self.failed.remove(key);
                if next.addresses != seen.addresses {
                    self.metrics.allocated(pool);
                }
            }
            Outcome::Failed { reason, .. } => {
                self.failed.insert(key.clone());
                if seen.failure.as_ref().map(|f| &f.0) != Some(reason) {
                    self.metrics.allocation_failed(reason);
                }
            }
            Outcome::Released { .. } => {
                self.failed.remove(key);
            }
        }
        let allocates = !next.addresses.is_empty() && next.addresses != seen.addresses;
        record.seen = Some(next);
        let settings = WriteSettings {
            write_load_balancer_ip: self.settings.write_load_balancer_ip,
            status: self.settings.status,
        };
        let status = record.announced.as_ref();
        let announce = match (self.settings.cluster_default_mode, &status, &outcome) {
            (None, _, _) => Announce::Off,
            // Waiting for reports (a new leader, a restarted announcer) about a Service that
            // is announced: leave what it shows until the announcers answer.
            (Some(_), Some(ServiceStatus::Pending { .. }), _) if view.shows_announced() => {
                Announce::Unknown
            }
            (Some(_), Some(status), Outcome::Allocated { .. }) => {
                notes.extend(announce::announce_events(
                    view,
                    status,
                    &mut record.announced_seen,
                ));
                Announce::Status(status)
            }
            (Some(_), _, _) => Announce::Unknown,
        };
        notes.extend(self.announce_notes.remove(key).unwrap_or_default());
        notes.extend(self.adopted_as_is.remove(key));
        let want = desired(view, &outcome, settings, announce);
        let write = ServiceWrite {
            key: key.clone(),
            uid: view.uid.as_deref().map(str::to_string),
            resource_version: view.resource_version.to_string(),
            main: Ops::new(&main_patch(view, &want)),
            status: Ops::new(&status_patch(
                view,
                &want,
                self.settings.ingress_ip_only,
                (self.clock)(),
            )),
            events: notes,
            allocates,
        };
        if !write.is_empty() {
            writes.push(write);
        }
    }

    /// Copies the pool figures into the metrics. Costs O(held addresses), so the controller
    /// calls it on a timer, not per event.
    pub fn publish_stats(&self) {
        let figures: Vec<PoolFigures> = self
            .allocator
            .pool_stats()
            .into_iter()
            .map(|s| PoolFigures {
                pool: s.pool,
                family: match s.family {
                    crate::ipam::IpFamily::V4 => "ipv4",
                    crate::ipam::IpFamily::V6 => "ipv6",
                },
                size: s.size,
                used: s.used,
                free: s.free,
            })
            .collect();
        self.metrics.set_pool_stats(&figures);
    }
}

mod allocate;
mod announce;
pub mod migration;
pub mod pool_sources;
pub mod queries;
#[cfg(test)]
mod tests;
