//! The engine: applies changes of the desired set to the data plane and keeps the observed
//! status of every announcement.
//!
//! ```text
//!  gRPC (grpc.rs) ──► Engine::{sync, announce, withdraw}
//!                        │ validate (model.rs), diff (state.rs), safety (safety.rs)
//!                        ▼
//!        layer2: L2Runtime (l2/socket.rs)   vip: VipManager (vip.rs) + L2Runtime (GARP,
//!        conflict watch)                    bgp: BgpBackend (backend.rs)
//!                        │
//!                        ▼  status + events (WatchEvents)
//! ```
//! One async mutex serialises all changes, so a Sync and an Announce never interleave. A
//! periodic [`Engine::tick`] re-reads the interfaces: when a link comes up its addresses are
//! announced again, and failed or pending announcements are retried.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use proto::announcer::v1::{self as pb, event::Kind};
use tokio::sync::Mutex;
use tonic::Status;

use crate::backend::{BgpBackend, BgpRoute, EventSender};
use crate::events;
use crate::interfaces::{self, Interface};
use crate::l2::responder::Ownership;
use crate::l2::socket::{L2Runtime, Link, identity_of};
use crate::l2::{Mac, format_mac};
use crate::metrics::Metrics;
use crate::model::{self, Desired, Key, Mode};
use crate::safety::{Policy, Refusal};
use crate::state::{DesiredState, Diff, SyncError};
use crate::vip::VipManager;

/// Observed state of one announcement.
#[derive(Debug, Clone)]
struct Observed {
    phase: pb::Phase,
    interface: Option<(String, u32)>,
    mac: Option<Mac>,
    message: Cow<'static, str>,
    since_unix_ms: u64,
}

impl Observed {
    fn new(phase: pb::Phase, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            phase,
            interface: None,
            mac: None,
            message: message.into(),
            since_unix_ms: events::now_ms(),
        }
    }
}

#[derive(Default)]
struct Inner {
    desired: DesiredState,
    observed: HashMap<Key, Observed>,
    links_up: HashMap<u32, bool>,
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
}

fn refused(field: &str, refusal: &Refusal) -> Status {
    let message = format!("{field}: {refusal}");
    match refusal {
        Refusal::OwnAddress { .. } => Status::failed_precondition(message),
        Refusal::Denied { .. } | Refusal::NotAllowed { .. } => Status::invalid_argument(message),
    }
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
        }
    }

    pub fn events(&self) -> &EventSender {
        &self.events
    }

    pub fn backend(&self) -> Option<&Arc<dyn BgpBackend>> {
        self.backend.as_ref()
    }

    /// Replaces the desired set (see `state.rs` for the generation rules).
    pub async fn sync(&self, request: pb::SyncRequest) -> Result<pb::SyncResponse, Status> {
        let pb::SyncRequest {
            generation,
            announcements,
            ..
        } = request;
        let mut wanted = Vec::with_capacity(announcements.len());
        let mut l2_or_vip: HashMap<IpAddr, (usize, Mode)> = HashMap::new();
        for (i, wire) in announcements.iter().enumerate() {
            let field = format!("announcements[{i}]");
            let desired = model::validate(&field, wire)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            if desired.key.mode != Mode::Bgp
                && let Some((j, other)) =
                    l2_or_vip.insert(desired.key.address, (i, desired.key.mode))
                && other != desired.key.mode
            {
                return Err(Status::invalid_argument(format!(
                    "{field}.mode: {} is already announced in mode {other} by announcements[{j}]; layer2 and vip exclude each other",
                    desired.key.address
                )));
            }
            wanted.push(desired);
        }
        drop(announcements);
        let mut inner = self.inner.lock().await;
        let diff = inner
            .desired
            .sync(generation, wanted)
            .map_err(|e| match e {
                SyncError::Duplicate(field) => Status::invalid_argument(field.to_string()),
                other => Status::failed_precondition(other.to_string()),
            })?;
        // A changed entry (same address and mode, new selector/labels/attributes) is replaced,
        // so it counts as added.
        let response = pb::SyncResponse {
            generation: inner.desired.generation(),
            added: (diff.added.len() + diff.changed.len()) as u32,
            removed: diff.removed.len() as u32,
            unchanged: diff.unchanged,
        };
        let large = response.added + response.removed > 1000;
        self.apply(&mut inner, diff).await;
        drop(inner);
        if large {
            crate::sys::memory::release_free_memory();
        }
        Ok(response)
    }

    /// Adds or replaces one announcement. Safety refusals are errors here (nothing stored).
    pub async fn announce(
        &self,
        wire: Option<pb::Announcement>,
    ) -> Result<pb::AnnouncementStatus, Status> {
        let wire = wire.ok_or_else(|| Status::invalid_argument("announcement: is required"))?;
        let desired = model::validate("announcement", &wire)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let key = desired.key;
        let interfaces =
            interfaces::list().map_err(|e| Status::internal(format!("listing interfaces: {e}")))?;
        self.policy
            .check(key.address, &interfaces, |a| self.vip.holds(a))
            .map_err(|r| refused("announcement.address", &r))?;
        let mut inner = self.inner.lock().await;
        if key.mode != Mode::Bgp {
            let other = if key.mode == Mode::Layer2 {
                Mode::Vip
            } else {
                Mode::Layer2
            };
            if inner
                .desired
                .get(&Key {
                    address: key.address,
                    mode: other,
                })
                .is_some()
            {
                return Err(Status::failed_precondition(format!(
                    "announcement.mode: {} is already announced in mode {other}; withdraw it first",
                    key.address
                )));
            }
        }
        let diff = inner.desired.announce(desired);
        self.apply(&mut inner, diff).await;
        Ok(self.status_of(&inner, &key))
    }

    /// Withdraws one address (in one or every mode).
    pub async fn withdraw(&self, request: pb::WithdrawRequest) -> Result<bool, Status> {
        let address = model::parse_address("address", &request.address)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mode = Mode::from_proto(request.mode)
            .map_err(|v| Status::invalid_argument(format!("mode: {v} is not a known mode")))?;
        let mut inner = self.inner.lock().await;
        let diff = inner.desired.withdraw(address, mode);
        let withdrawn = !diff.removed.is_empty();
        self.apply(&mut inner, diff).await;
        Ok(withdrawn)
    }

    /// What is announced, where, and how each mode is doing.
    pub async fn state(&self) -> pb::State {
        let inner = self.inner.lock().await;
        let announcements = inner
            .desired
            .entries()
            .map(|d| self.status_of(&inner, &d.key))
            .collect();
        let count = |mode| inner.desired.count(mode);
        let modes = vec![
            pb::ModeHealth {
                mode: pb::Mode::Layer2.into(),
                healthy: true,
                message: format!("{} announced", count(Mode::Layer2)),
            },
            pb::ModeHealth {
                mode: pb::Mode::Vip.into(),
                healthy: true,
                message: format!("{} announced", count(Mode::Vip)),
            },
            match &self.backend {
                Some(backend) => {
                    let peers = backend.peers();
                    let up = peers
                        .iter()
                        .filter(|p| p.state == pb::SessionState::Established as i32)
                        .count();
                    pb::ModeHealth {
                        mode: pb::Mode::Bgp.into(),
                        healthy: up > 0,
                        message: format!(
                            "{} announced, {up} of {} sessions established",
                            count(Mode::Bgp),
                            peers.len()
                        ),
                    }
                }
                None => pb::ModeHealth {
                    mode: pb::Mode::Bgp.into(),
                    healthy: false,
                    message: "BGP mode is not enabled (no BGP speaker configured)".into(),
                },
            },
        ];
        let peers = self.backend.as_ref().map(|b| b.peers()).unwrap_or_default();
        pb::State {
            generation: inner.desired.generation(),
            announcements,
            modes,
            peers,
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
        let went_down: Vec<(Desired, Observed)> = inner
            .desired
            .entries()
            .filter(|d| d.key.mode != Mode::Bgp)
            .filter_map(|d| {
                let observed = inner.observed.get(&d.key)?;
                let (name, index) = observed.interface.as_ref()?;
                let down = observed.phase == pb::Phase::Active
                    && interfaces.iter().any(|i| i.index == *index && !i.up);
                down.then(|| {
                    let mut pending = observed.clone();
                    pending.phase = pb::Phase::Pending;
                    pending.message = format!("interface {name} is down").into();
                    (d.clone(), pending)
                })
            })
            .collect();
        for (desired, pending) in went_down {
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
                        (_, pb::Phase::Failed) => true,
                        // Pending on a link that is up now, even if no poll saw it down.
                        (Some((_, index)), pb::Phase::Pending) => {
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
    /// go); emits `announcement_changed` only for those that changed. Called by the link poll;
    /// the BGP speaker may call [`Engine::refresh_bgp`] on session changes for a faster update.
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
                .is_some_and(|o| o.phase == pb::Phase::Failed)
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
            if old.selector != new.selector {
                let observed = self.activate(inner, new, &interfaces).await;
                self.set_observed(inner, new, observed);
            } else if old.bgp != new.bgp {
                bgp_touched = true;
            } else if let Some(observed) = inner.observed.get(&new.key) {
                self.report(new, observed, false);
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
            None => Observed::new(pb::Phase::Pending, "no BGP speaker configured"),
            Some(backend) => match backend.is_advertised(desired.key.address) {
                Some(true) => Observed::new(pb::Phase::Active, "advertised"),
                _ => Observed::new(pb::Phase::Pending, "no BGP session is established"),
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
                return Observed::new(pb::Phase::Failed, e.to_string());
            }
            Ownership::KernelAnswers
        } else {
            Ownership::Answer
        };
        let mut observed = match self.l2.own(&link, address, ownership) {
            Ok(()) if iface.up => Observed::new(pb::Phase::Active, "announced"),
            Ok(()) => Observed::new(
                pb::Phase::Pending,
                format!("interface {} is down", iface.name),
            ),
            Err(e) => Observed::new(
                pb::Phase::Failed,
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
            .map_err(|refusal| Observed::new(pb::Phase::Failed, format!("refused: {refusal}")))?;
        if desired.key.mode == Mode::Bgp {
            return Ok(None);
        }
        let iface = interfaces::resolve(&desired.selector, address, interfaces)
            .map_err(|e| Observed::new(pb::Phase::Failed, e.to_string()))?;
        let mac = iface.mac.ok_or_else(|| {
            Observed::new(
                pb::Phase::Failed,
                format!("interface {} has no MAC address", iface.name),
            )
        })?;
        Ok(Some((iface, mac)))
    }

    async fn deactivate(&self, inner: &mut Inner, desired: &Desired) {
        let Some(observed) = inner.observed.get(&desired.key) else {
            return;
        };
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

    fn set_observed(&self, inner: &mut Inner, desired: &Desired, mut observed: Observed) {
        if let Some(previous) = inner.observed.get(&desired.key)
            && previous.phase == observed.phase
            && previous.message == observed.message
            && previous.interface == observed.interface
        {
            observed.since_unix_ms = previous.since_unix_ms;
            inner.observed.insert(desired.key, observed);
            return;
        }
        match observed.phase {
            pb::Phase::Failed => {
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
        let status = self.to_status(desired, observed);
        let _ = self.events.send(events::event(Kind::AnnouncementChanged(
            pb::AnnouncementChanged {
                status: Some(status),
                removed,
            },
        )));
    }

    fn status_of(&self, inner: &Inner, key: &Key) -> pb::AnnouncementStatus {
        match (inner.desired.get(key), inner.observed.get(key)) {
            (Some(desired), Some(observed)) => self.to_status(desired, observed),
            (Some(desired), None) => {
                self.to_status(desired, &Observed::new(pb::Phase::Pending, ""))
            }
            _ => pb::AnnouncementStatus::default(),
        }
    }

    fn to_status(&self, desired: &Desired, observed: &Observed) -> pb::AnnouncementStatus {
        pb::AnnouncementStatus {
            announcement: Some(desired.to_wire()),
            phase: observed.phase.into(),
            interface: observed
                .interface
                .as_ref()
                .map(|(n, _)| n.clone())
                .unwrap_or_default(),
            mac: observed.mac.as_ref().map(format_mac).unwrap_or_default(),
            message: observed.message.to_string(),
            since_unix_ms: observed.since_unix_ms,
        }
    }
}
