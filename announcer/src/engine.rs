//! The engine: applies changes of the desired set to the data plane and keeps the observed
//! status of every announcement. It speaks domain types only: validated [`Desired`]s in,
//! [`AnnouncementStatus`]/[`Snapshot`] out, refusals as [`EngineError`] (`grpc.rs` and
//! `wire.rs` convert at the edge).
//!
//! ```text
//!  grpc.rs ──(wire.rs: validate)──► Engine::{sync, announce, withdraw}
//!                        │ diff + exclusion rules (state.rs), safety (safety.rs)
//!                        ▼
//!        layer2: L2Runtime (l2/socket.rs)   vip: VipManager (vip.rs) + L2Runtime (GARP,
//!        conflict watch)                    bgp: BgpBackend (backend.rs)
//!                        │
//!                        ▼  status + events (WatchEvents)
//! ```
//! One async mutex serialises all changes, so a Sync and an Announce never interleave.
//! Only what changed is touched: a new label or candidate list is reported and nothing else,
//! new BGP attributes are re-pushed to the speaker, a new selector re-activates; activation is
//! idempotent (an entry that stays on its interface keeps its VIP and packet socket), so a
//! Sync of an unchanged set never interrupts answers.
//!
//! A periodic [`Engine::tick`] (and every kernel link notification) re-reads the interfaces:
//! an Active entry on a link that went down turns Pending "interface X is down", and back to
//! Active when the link comes up (announced again); Failed entries are retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::backend::{BgpBackend, BgpRoute, EventSender};
use crate::error::EngineError;
use crate::events;
use crate::failover::{Decision, Failover, NodeId};
use crate::interfaces::{self, Interface};
use crate::l2::Mac;
use crate::l2::responder::Ownership;
use crate::l2::socket::{L2Runtime, Link, identity_of};
use crate::metrics::Metrics;
use crate::model::{Desired, FailoverSync, Key, Mode};
use crate::safety::Policy;
use crate::state::{self, Change, DesiredState, Diff};
use crate::status::{AnnouncementStatus, Observed, Phase, Snapshot, SyncOutcome};
use crate::vip::VipManager;
use crate::wire;

#[derive(Default)]
struct Inner {
    desired: DesiredState,
    observed: HashMap<Key, Observed>,
    links_up: HashMap<u32, bool>,
    /// The failover part of the last Sync (only when this announcer runs failover).
    failover: Option<FailoverSync>,
    /// Addresses the election gave this node (see [`Inner::gated`]).
    granted: HashSet<IpAddr>,
}

impl Inner {
    /// True when the candidates of `desired` elect who answers for it: layer2 or vip, at least
    /// two candidates, this node among them, and a heartbeat key.
    fn gated(&self, desired: &Desired) -> bool {
        desired.key.mode != Mode::Bgp
            && desired.candidates.len() >= 2
            && self
                .failover
                .as_ref()
                .is_some_and(|f| desired.candidates.contains(&f.node))
    }
}

/// Everything the engine drives.
pub struct Engine {
    inner: Mutex<Inner>,
    l2: L2Runtime,
    vip: VipManager,
    backend: Option<Arc<dyn BgpBackend>>,
    events: EventSender,
    metrics: Metrics,
    policy: Policy,
    failover: Option<Arc<Failover>>,
}

impl Engine {
    pub fn new(
        l2: L2Runtime,
        vip: VipManager,
        backend: Option<Arc<dyn BgpBackend>>,
        events: EventSender,
        metrics: Metrics,
        policy: Policy,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            l2,
            vip,
            backend,
            events,
            metrics,
            policy,
            failover: None,
        }
    }

    /// Lets the candidates of layer2 and vip addresses elect who answers (see `failover`).
    pub fn with_failover(mut self, failover: Arc<Failover>) -> Self {
        self.failover = Some(failover);
        self
    }

    pub fn events(&self) -> &EventSender {
        &self.events
    }

    pub fn backend(&self) -> Option<&Arc<dyn BgpBackend>> {
        self.backend.as_ref()
    }

    /// Replaces the desired set (see `state.rs` for the generation and exclusion rules).
    pub async fn sync(
        &self,
        generation: u64,
        wanted: Vec<Desired>,
        failover: Option<FailoverSync>,
    ) -> Result<SyncOutcome, EngineError> {
        let mut inner = self.inner.lock().await;
        let diff = inner.desired.sync(generation, wanted)?;
        inner.failover = failover.filter(|_| self.failover.is_some());
        // A changed entry (same address and mode, anything else different) counts as added.
        let outcome = SyncOutcome {
            generation: inner.desired.generation(),
            added: (diff.added.len() + diff.changed.len()) as u32,
            removed: diff.removed.len() as u32,
            unchanged: diff.unchanged,
        };
        let large = outcome.added + outcome.removed > 1000;
        self.apply(&mut inner, diff).await;
        if let Some(backend) = &self.backend {
            // After apply, so the speaker has the routes before it sends End-of-RIB.
            backend.desired_complete();
        }
        self.regate(&mut inner).await;
        drop(inner);
        if large {
            crate::sys::memory::release_free_memory();
        }
        Ok(outcome)
    }

    /// Adds or replaces one announcement. Safety refusals are errors here (nothing stored).
    pub async fn announce(&self, desired: Desired) -> Result<AnnouncementStatus, EngineError> {
        let interfaces = interfaces::list().map_err(EngineError::Interfaces)?;
        self.policy
            .check(desired.key.address, &interfaces, |a| self.vip.holds(a))
            .map_err(|refusal| EngineError::Refused {
                field: "announcement.address".into(),
                refusal,
            })?;
        let mut inner = self.inner.lock().await;
        let diff = inner.desired.announce(desired.clone())?;
        self.apply(&mut inner, diff).await;
        self.publish_groups(&inner);
        Ok(self.status_of(&inner, &desired))
    }

    /// Withdraws one address (in `mode`, or in every mode); false when nothing matched.
    pub async fn withdraw(&self, address: IpAddr, mode: Option<Mode>) -> bool {
        let mut inner = self.inner.lock().await;
        let diff = inner.desired.withdraw(address, mode);
        let withdrawn = !diff.removed.is_empty();
        self.apply(&mut inner, diff).await;
        self.publish_groups(&inner);
        withdrawn
    }

    /// What is announced, where, and how each announcement is doing.
    pub async fn state(&self) -> Snapshot {
        let inner = self.inner.lock().await;
        Snapshot {
            generation: inner.desired.generation(),
            announcements: inner
                .desired
                .entries()
                .map(|d| self.status_of(&inner, d))
                .collect(),
            counts: Mode::ALL
                .iter()
                .map(|m| (*m, inner.desired.count(*m)))
                .collect(),
        }
    }

    /// Re-reads interfaces: re-announces on links that came up, retries what is not active.
    pub async fn tick(&self) {
        let Ok(interfaces) = interfaces::list() else {
            return;
        };
        let mut inner = self.inner.lock().await;
        let mut came_up = HashSet::new();
        for iface in &interfaces {
            let was_up = inner.links_up.insert(iface.index, iface.up);
            if iface.up && was_up == Some(false) {
                came_up.insert(iface.index);
            }
        }
        for index in &came_up {
            tracing::info!(
                index,
                "link came up: sending gratuitous announcements again"
            );
            self.l2.reannounce(*index);
        }
        // An announcement in force on a link that is down is not reachable: say so (and
        // back to Active through the retry below when the link comes up).
        let down: HashSet<u32> = interfaces
            .iter()
            .filter(|i| !i.up)
            .map(|i| i.index)
            .collect();
        let went_down: Vec<(Desired, Observed)> = inner
            .desired
            .entries()
            .filter_map(|d| {
                let observed = inner.observed.get(&d.key)?;
                let (_, index) = observed.interface.as_ref()?;
                down.contains(index)
                    .then(|| observed.on_link_down())
                    .flatten()
                    .map(|pending| (d.clone(), pending))
            })
            .collect();
        for (desired, pending) in went_down {
            // A failover holder whose link is down hands the address to the other candidates
            // at once (its heartbeats may still get through another way).
            if inner.granted.remove(&desired.key.address)
                && let Some(failover) = &self.failover
            {
                self.deactivate(&mut inner, &desired).await;
                failover.unable(desired.key.address);
                let mut released = pending.clone();
                released.interface = None;
                released.message =
                    format!("{}; released to the other candidates", pending.message).into();
                self.set_observed(&mut inner, &desired, released);
                continue;
            }
            self.set_observed(&mut inner, &desired, pending);
        }
        let retry: Vec<Desired> = inner
            .desired
            .entries()
            .filter(|d| d.key.mode != Mode::Bgp)
            .filter(|d| {
                inner
                    .observed
                    .get(&d.key)
                    .is_none_or(|o| match (&o.interface, o.phase) {
                        (_, Phase::Failed) => true,
                        // Pending on a link that is up now, even if no poll saw it down.
                        (Some((_, index)), Phase::Pending) => {
                            interfaces.iter().any(|i| i.index == *index && i.up)
                        }
                        _ => false,
                    })
            })
            .cloned()
            .collect();
        // Activation is idempotent: an entry that stays on its interface is not removed
        // and re-added (no gap in answers), only confirmed.
        for desired in retry {
            let observed = self.activate(&mut inner, &desired, &interfaces).await;
            self.set_observed(&mut inner, &desired, observed);
        }
        self.refresh_bgp_phases(&mut inner);
    }

    /// Re-evaluates the phase of every BGP announcement from the backend (sessions come and
    /// go); emits `announcement_changed` only for those that changed. Called by the link poll,
    /// and through [`Engine::refresh_bgp`] on every `PeerChanged` event (`server.rs`).
    fn refresh_bgp_phases(&self, inner: &mut Inner) {
        let bgp: Vec<Desired> = inner
            .desired
            .entries()
            .filter(|d| d.key.mode == Mode::Bgp)
            .cloned()
            .collect();
        for desired in &bgp {
            if inner
                .observed
                .get(&desired.key)
                .is_some_and(|o| o.phase == Phase::Failed)
            {
                continue;
            }
            let observed = self.bgp_observed(desired);
            self.set_observed(inner, desired, observed);
        }
    }

    /// See [`Engine::refresh_bgp_phases`].
    pub async fn refresh_bgp(&self) {
        let mut inner = self.inner.lock().await;
        self.refresh_bgp_phases(&mut inner);
    }

    /// Withdraws everything: stop answering, remove VIPs, withdraw BGP routes.
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        let diff = inner.desired.clear();
        self.apply(&mut inner, diff).await;
        // The heartbeats say nothing is held any more: the candidates take over at once.
        self.publish_groups(&inner);
        self.l2.clear();
        self.vip.remove_all().await;
        if let Some(backend) = &self.backend {
            backend.shutdown().await;
        }
    }

    async fn apply(&self, inner: &mut Inner, diff: Diff) {
        if diff.is_empty() {
            return;
        }
        let interfaces = interfaces::list().unwrap_or_else(|e| {
            tracing::error!("listing interfaces: {e}");
            Vec::new()
        });
        let mut bgp_touched = false;
        for old in &diff.removed {
            bgp_touched |= old.key.mode == Mode::Bgp;
            self.deactivate(inner, old).await;
            if let Some(observed) = inner.observed.remove(&old.key) {
                self.report(old, &observed, true);
            }
        }
        for new in &diff.added {
            bgp_touched |= new.key.mode == Mode::Bgp;
            let observed = self.activate(inner, new, &interfaces).await;
            self.set_observed(inner, new, observed);
        }
        // Only what changed is touched: labels and candidates are reported, BGP attributes
        // re-pushed to the speaker, and a new selector re-activates (which keeps an entry
        // that stays on its interface in place).
        for (old, new) in &diff.changed {
            match state::change_of(old, new) {
                Change::Selector => {
                    let observed = self.activate(inner, new, &interfaces).await;
                    self.set_observed(inner, new, observed);
                }
                change @ (Change::BgpAttributes | Change::Reported) => {
                    bgp_touched |= change == Change::BgpAttributes;
                    // The phase may stay as it is; the reported entry changed.
                    if let Some(observed) = inner.observed.get(&new.key) {
                        self.report(new, observed, false);
                    }
                }
            }
        }
        if bgp_touched {
            self.push_bgp(inner).await;
        }
        for mode in Mode::ALL {
            self.metrics
                .announcements
                .get_or_create(&[("mode", mode.as_str())])
                .set(inner.desired.count(mode) as i64);
        }
    }

    async fn push_bgp(&self, inner: &mut Inner) {
        let bgp: Vec<Desired> = inner
            .desired
            .entries()
            .filter(|d| d.key.mode == Mode::Bgp)
            .cloned()
            .collect();
        if let Some(backend) = &self.backend {
            backend
                .set_announcements(
                    bgp.iter()
                        .map(|d| BgpRoute {
                            address: d.key.address,
                            attributes: d.bgp.as_deref().cloned().unwrap_or_default(),
                        })
                        .collect(),
                )
                .await;
        }
        for desired in &bgp {
            let observed = self.bgp_observed(desired);
            self.set_observed(inner, desired, observed);
        }
    }

    fn bgp_observed(&self, desired: &Desired) -> Observed {
        match &self.backend {
            None => Observed::new(Phase::Pending, "no BGP speaker configured"),
            Some(backend) => match backend.is_advertised(desired.key.address) {
                Some(true) => Observed::new(Phase::Active, "advertised"),
                _ => Observed::new(Phase::Pending, "no BGP session is established"),
            },
        }
    }

    /// Puts one announcement in force and says how that went. Idempotent: an entry already in
    /// force on the interface it resolves to stays there (the VIP is replaced in place, the
    /// packet socket kept); one that moves or can no longer be placed is first taken down.
    async fn activate(
        &self,
        inner: &mut Inner,
        desired: &Desired,
        interfaces: &[Interface],
    ) -> Observed {
        if inner.gated(desired) && !inner.granted.contains(&desired.key.address) {
            // Another candidate answers (or the election is under way): not in force here.
            self.deactivate(inner, desired).await;
            return match inner.observed.get(&desired.key) {
                Some(o) if o.phase == Phase::Standby => o.clone(),
                _ => Observed::standby(None, "standby: the candidates are electing who answers"),
            };
        }
        let held_on = inner
            .observed
            .get(&desired.key)
            .and_then(|o| o.interface.as_ref().map(|(_, index)| *index));
        let placement = self.placement(desired, interfaces);
        let target = placement
            .as_ref()
            .ok()
            .and_then(|p| p.map(|(i, _)| i.index));
        if held_on.is_some() && held_on != target {
            self.deactivate(inner, desired).await;
        }
        let (iface, mac) = match placement {
            Err(observed) => return observed,
            Ok(None) => return self.bgp_observed(desired),
            Ok(Some(placement)) => placement,
        };
        let address = desired.key.address;
        let link = Link {
            name: iface.name.clone(),
            index: iface.index,
            identity: identity_of(mac),
        };
        let ownership = if desired.key.mode == Mode::Vip {
            if let Err(e) = self.vip.add(iface.index, address).await {
                return Observed::new(Phase::Failed, e.to_string());
            }
            Ownership::KernelAnswers
        } else {
            Ownership::Answer
        };
        let mut observed = match self.l2.own(&link, address, ownership) {
            Ok(()) if iface.up => Observed::new(Phase::Active, "announced"),
            Ok(()) => Observed::new(Phase::Pending, format!("interface {} is down", iface.name)),
            Err(e) => Observed::new(
                Phase::Failed,
                format!("packet socket on {}: {e}", iface.name),
            ),
        };
        observed.interface = Some((iface.name.clone(), iface.index));
        observed.mac = Some(mac);
        observed
    }

    /// Where an announcement goes: `Ok(None)` for BGP (no interface), the interface and its
    /// MAC for layer2 and vip, or the Failed observation saying why it cannot be placed.
    fn placement<'i>(
        &self,
        desired: &Desired,
        interfaces: &'i [Interface],
    ) -> Result<Option<(&'i Interface, Mac)>, Observed> {
        let address = desired.key.address;
        self.policy
            .check(address, interfaces, |a| self.vip.holds(a))
            .map_err(|refusal| Observed::new(Phase::Failed, format!("refused: {refusal}")))?;
        if desired.key.mode == Mode::Bgp {
            return Ok(None);
        }
        let iface = interfaces::resolve(&desired.selector, address, interfaces)
            .map_err(|e| Observed::new(Phase::Failed, e.to_string()))?;
        let mac = iface.mac.ok_or_else(|| {
            Observed::new(
                Phase::Failed,
                format!("interface {} has no MAC address", iface.name),
            )
        })?;
        Ok(Some((iface, mac)))
    }

    async fn deactivate(&self, inner: &mut Inner, desired: &Desired) {
        let Some(observed) = inner.observed.get(&desired.key) else {
            return;
        };
        if observed.phase == Phase::Standby {
            return;
        }
        if let Some((_, index)) = observed.interface {
            self.l2.release(index, desired.key.address);
        }
        if desired.key.mode == Mode::Vip
            && let Err(e) = self.vip.remove(desired.key.address).await
        {
            tracing::warn!("{e}");
            let _ = self.events.send(events::error(
                desired.key.address.to_string(),
                e.to_string(),
            ));
        }
    }

    /// Applies the election's decisions under one lock and one interface listing; returns,
    /// for each claim, the address and whether it is now in force here (false: the election
    /// must let another candidate have it).
    pub async fn failover_decisions(&self, decisions: Vec<Decision>) -> Vec<(IpAddr, bool)> {
        if decisions.is_empty() {
            return Vec::new();
        }
        let mut inner = self.inner.lock().await;
        let gated: HashMap<IpAddr, Key> = inner
            .desired
            .entries()
            .filter(|d| inner.gated(d))
            .map(|d| (d.key.address, d.key))
            .collect();
        let mut interfaces = None;
        let mut claims = Vec::new();
        for decision in decisions {
            match decision {
                Decision::Claim { address, message } => {
                    let Some(desired) = gated
                        .get(&address)
                        .and_then(|k| inner.desired.get(k))
                        .cloned()
                    else {
                        continue;
                    };
                    let desired = &desired;
                    inner.granted.insert(address);
                    let interfaces =
                        interfaces.get_or_insert_with(|| interfaces::list().unwrap_or_default());
                    let mut observed = self.activate(&mut inner, desired, interfaces).await;
                    let in_force = observed.phase == Phase::Active;
                    if in_force {
                        observed.message = message.into();
                        observed.holder = inner.failover.as_ref().map(|f| f.node.clone());
                        tracing::info!(key = %desired.key, "{}", observed.message);
                    } else {
                        inner.granted.remove(&address);
                        self.deactivate(&mut inner, desired).await;
                    }
                    self.set_observed(&mut inner, desired, observed);
                    claims.push((address, in_force));
                }
                Decision::Release {
                    address,
                    holder,
                    message,
                } => {
                    let Some(desired) = gated
                        .get(&address)
                        .and_then(|k| inner.desired.get(k))
                        .cloned()
                    else {
                        continue;
                    };
                    let desired = &desired;
                    inner.granted.remove(&address);
                    self.deactivate(&mut inner, desired).await;
                    let holder = holder.map(|h| h.to_string());
                    self.set_observed(&mut inner, desired, Observed::standby(holder, message));
                }
                Decision::Standby {
                    address,
                    holder,
                    message,
                } => {
                    let Some(desired) = gated
                        .get(&address)
                        .and_then(|k| inner.desired.get(k))
                        .cloned()
                    else {
                        continue;
                    };
                    let desired = &desired;
                    if !inner.granted.contains(&address) {
                        let holder = holder.map(|h| h.to_string());
                        self.set_observed(&mut inner, desired, Observed::standby(holder, message));
                    }
                }
            }
        }
        claims
    }

    /// After a Sync changed who runs failover: an entry in force that became gated stays in
    /// force (granted: the election sees it held, no flap), one that is no longer gated is put
    /// in force, and grants of addresses no longer gated are dropped.
    async fn regate(&self, inner: &mut Inner) {
        let entries: Vec<Desired> = inner
            .desired
            .entries()
            .filter(|d| d.key.mode != Mode::Bgp)
            .cloned()
            .collect();
        let gated: HashSet<IpAddr> = entries
            .iter()
            .filter(|d| inner.gated(d))
            .map(|d| d.key.address)
            .collect();
        inner.granted.retain(|a| gated.contains(a));
        let mut interfaces = None;
        for desired in entries {
            let phase = inner.observed.get(&desired.key).map(|o| o.phase);
            let is_gated = gated.contains(&desired.key.address);
            if is_gated && phase == Some(Phase::Active) {
                inner.granted.insert(desired.key.address);
            } else if !is_gated && phase == Some(Phase::Standby) {
                let interfaces =
                    interfaces.get_or_insert_with(|| interfaces::list().unwrap_or_default());
                let observed = self.activate(inner, &desired, interfaces).await;
                self.set_observed(inner, &desired, observed);
            }
        }
        self.publish_groups(inner);
    }

    /// Hands the election its groups (gated addresses and their candidates), peers and key;
    /// after every change of the desired set (Sync through `regate`, Announce, Withdraw).
    fn publish_groups(&self, inner: &Inner) {
        let Some(failover) = &self.failover else {
            return;
        };
        let Some(config) = &inner.failover else {
            failover.configure("", BTreeMap::new(), BTreeMap::new(), &[]);
            return;
        };
        let groups = inner
            .desired
            .entries()
            .filter(|d| inner.gated(d))
            .map(|d| {
                let candidates = d
                    .candidates
                    .iter()
                    .map(|c| NodeId::from(c.as_str()))
                    .collect();
                (
                    d.key.address,
                    (candidates, inner.granted.contains(&d.key.address)),
                )
            })
            .collect();
        let peers = config
            .peers
            .iter()
            .map(|(n, a)| (NodeId::from(n.as_str()), *a))
            .collect();
        failover.configure(&config.node, peers, groups, &config.key);
    }

    fn set_observed(&self, inner: &mut Inner, desired: &Desired, mut observed: Observed) {
        if let Some(previous) = inner.observed.get(&desired.key)
            && previous.same_as(&observed)
        {
            observed.since_unix_ms = previous.since_unix_ms;
            inner.observed.insert(desired.key, observed);
            return;
        }
        match observed.phase {
            Phase::Failed => {
                tracing::warn!(key = %desired.key, "announcement failed: {}", observed.message)
            }
            phase => {
                tracing::info!(key = %desired.key, ?phase, interface = ?observed.interface, "{}", observed.message)
            }
        }
        self.report(desired, &observed, false);
        inner.observed.insert(desired.key, observed);
    }

    /// Sends an `announcement_changed` event.
    fn report(&self, desired: &Desired, observed: &Observed, removed: bool) {
        let status = AnnouncementStatus {
            desired: desired.clone(),
            observed: observed.clone(),
        };
        let _ = self
            .events
            .send(wire::announcement_changed(&status, removed));
    }

    /// The status of a stored entry (Pending with no message before its first activation).
    fn status_of(&self, inner: &Inner, desired: &Desired) -> AnnouncementStatus {
        let observed = inner
            .observed
            .get(&desired.key)
            .cloned()
            .unwrap_or_else(|| Observed::new(Phase::Pending, ""));
        AnnouncementStatus {
            desired: desired.clone(),
            observed,
        }
    }
}
