//! An in-process announcer for the provider's cluster-mode tests and benchmark: a real tonic
//! gRPC server with mandatory client certificates, speaking `ferrolb.announcer.v1`. It keeps
//! the desired set under the contract's generation rules (older refused, equal only for the
//! identical set); it touches no network interface, so it runs anywhere without root. Every
//! Sync is recorded with what it added and removed, so a test can prove that a restart or a
//! leader hand-over changed nothing.
//!
//! Failover among announcers (issue #11) is emulated by an [`Election`] the fakes of a test
//! share instead of heartbeats: for a layer2/vip entry with two or more candidates that name
//! the fake's node, under a heartbeat key, the holder is the one recorded for the address
//! while it runs and stays a candidate, else the first candidate that runs (has not been
//! dropped; so the preferred candidate claims a new address, deterministically). The holder reports ACTIVE, the others STANDBY with `holder`.
//! [`FakeAnnouncer::take_over`] makes a fake claim an address as a real announcer does when
//! the holder stops answering heartbeats. Other entries are reported ACTIVE at once.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
};

use futures::Stream;
use proto::announcer::v1::{
    self as pb,
    announcer_server::{Announcer, AnnouncerServer},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use tokio::sync::broadcast;
use tonic::{
    Request, Response, Status,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};

/// One CA, the announcers' server certificate and the provider's client certificate.
pub struct Pki {
    /// CA certificate (PEM).
    pub ca: String,
    /// Server certificate for DNS name `ferrolb-announcer`.
    pub server_cert: String,
    /// Its key.
    pub server_key: String,
    /// The provider's client certificate.
    pub client_cert: String,
    /// Its key.
    pub client_key: String,
}

impl Pki {
    /// Makes a fresh CA and both leaves.
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferrolb test CA");
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) =
            leaf("ferrolb-announcer", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) =
            leaf("ferrolb-provider", ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// The provider's side.
    pub fn client(&self) -> provider::announce::driver::ClientTls {
        provider::announce::driver::ClientTls::new(
            self.ca.clone(),
            self.client_cert.clone(),
            self.client_key.clone(),
        )
    }
}

/// One accepted Sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    /// Its generation.
    pub generation: u64,
    /// Node name it carried.
    pub node: String,
    /// Its failover peers, as (node, address).
    pub peers: Vec<(String, String)>,
    /// Its heartbeat key.
    pub key: Vec<u8>,
    /// Entries added or changed.
    pub added: usize,
    /// Entries removed.
    pub removed: usize,
}

/// What the fake holds.
#[derive(Debug, Default)]
pub struct FakeState {
    /// The node name of the last Sync.
    pub node: String,
    /// The heartbeat key of the last Sync.
    pub key: Vec<u8>,
    /// Generation in force.
    pub generation: u64,
    /// (address, mode) → announcement.
    pub set: BTreeMap<(String, i32), pb::Announcement>,
    /// Accepted Syncs.
    pub syncs: Vec<SyncRecord>,
    /// Refused Syncs (their messages).
    pub refused: Vec<String>,
}

/// The candidates' shared view, in place of heartbeats: which fakes were synced (by node
/// name, with their event stream), which stopped, and who holds each address, with the
/// holder's status message.
#[derive(Default)]
pub struct ElectionState {
    running: BTreeMap<String, broadcast::Sender<pb::Event>>,
    stopped: std::collections::BTreeSet<String>,
    holders: BTreeMap<String, (String, String)>,
}

/// Shared by the fakes of one test.
pub type Election = Arc<Mutex<ElectionState>>;

impl ElectionState {
    /// The holder of `address` among `candidates` and its message, electing one if needed.
    fn resolve(&mut self, address: &str, candidates: &[String]) -> Option<(String, String)> {
        let previous = self.holders.get(address).cloned();
        if let Some((holder, message)) = &previous
            && !self.stopped.contains(holder)
            && candidates.contains(holder)
        {
            return Some((holder.clone(), message.clone()));
        }
        let next = candidates
            .iter()
            .find(|c| !self.stopped.contains(*c))?
            .clone();
        let message = match &previous {
            Some((old, _)) if *old != next => {
                format!("took over from {old}: {old} stopped answering heartbeats")
            }
            _ => String::new(),
        };
        self.holders
            .insert(address.to_string(), (next.clone(), message.clone()));
        // A first claim changes nobody's report (every caller elects the same node); a
        // takeover changes the old holder's and the standbys'.
        if previous.is_some() {
            self.notify();
        }
        Some((next, message))
    }

    /// Every running fake re-reads its state (a holder changed).
    fn notify(&self) {
        for events in self.running.values() {
            let _ = events.send(pb::Event::default());
        }
    }
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<FakeState>>,
    election: Election,
    events: broadcast::Sender<pb::Event>,
    /// Closed when the fake stops: open connections then fail like a dead process's.
    alive: tokio::sync::watch::Receiver<()>,
}

impl Service {
    fn check_alive(&self) -> Result<(), Status> {
        match self.alive.has_changed() {
            Ok(_) => Ok(()),
            Err(_) => Err(Status::unavailable("fake announcer stopped")),
        }
    }
}

#[tonic::async_trait]
impl Announcer for Service {
    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        self.check_alive()?;
        let request = request.into_inner();
        let next: BTreeMap<(String, i32), pb::Announcement> = request
            .announcements
            .into_iter()
            .map(|a| ((a.address.clone(), a.mode), a))
            .collect();
        let mut state = self.state.lock().expect("lock");
        if request.generation < state.generation {
            let message = format!(
                "generation: {} is older than the accepted generation {}",
                request.generation, state.generation
            );
            state.refused.push(message.clone());
            return Err(Status::failed_precondition(message));
        }
        if request.generation == state.generation && request.generation != 0 && next != state.set {
            let message = format!("generation: {} was already accepted", request.generation);
            state.refused.push(message.clone());
            return Err(Status::failed_precondition(message));
        }
        let added = next
            .iter()
            .filter(|(k, v)| state.set.get(*k) != Some(*v))
            .count();
        let removed = state.set.keys().filter(|k| !next.contains_key(*k)).count();
        let unchanged = next.len() - added;
        state.generation = request.generation;
        state.set = next;
        state.node = request.node.clone();
        state.key = request.heartbeat_key.clone();
        state.syncs.push(SyncRecord {
            generation: request.generation,
            node: request.node.clone(),
            peers: request
                .failover_peers
                .iter()
                .map(|p| (p.node.clone(), p.address.clone()))
                .collect(),
            key: request.heartbeat_key,
            added,
            removed,
        });
        drop(state);
        let mut election = self.election.lock().expect("lock");
        election.stopped.remove(&request.node);
        election.running.insert(request.node, self.events.clone());
        drop(election);
        if added + removed > 0 {
            let _ = self.events.send(pb::Event::default());
        }
        Ok(Response::new(pb::SyncResponse {
            generation: request.generation,
            added: u32::try_from(added).unwrap_or(u32::MAX),
            removed: u32::try_from(removed).unwrap_or(u32::MAX),
            unchanged: u32::try_from(unchanged).unwrap_or(u32::MAX),
        }))
    }

    async fn announce(
        &self,
        _: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }

    async fn withdraw(
        &self,
        _: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }

    async fn get_state(
        &self,
        _: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::State>, Status> {
        self.check_alive()?;
        let state = self.state.lock().expect("lock");
        let mut election = self.election.lock().expect("lock");
        let announcements = state
            .set
            .values()
            .map(|a| {
                let failover = a.candidates.len() >= 2
                    && a.candidates.contains(&state.node)
                    && !state.key.is_empty()
                    && a.mode != pb::Mode::Bgp as i32;
                let (phase, holder, message) = match failover
                    .then(|| election.resolve(&a.address, &a.candidates))
                    .flatten()
                {
                    Some((holder, message)) if holder == state.node => {
                        (pb::Phase::Active, holder, message)
                    }
                    Some((holder, _)) => (pb::Phase::Standby, holder, String::new()),
                    None if failover => (pb::Phase::Standby, String::new(), String::new()),
                    None => (pb::Phase::Active, String::new(), String::new()),
                };
                pb::AnnouncementStatus {
                    announcement: Some(a.clone()),
                    phase: phase.into(),
                    holder,
                    message,
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(pb::State {
            generation: state.generation,
            announcements,
            ..Default::default()
        }))
    }

    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.check_alive()?;
        let rx = self.events.subscribe();
        let alive = self.alive.clone();
        let stream = futures::stream::unfold((rx, alive), |(mut rx, mut alive)| async move {
            tokio::select! {
                event = rx.recv() => Some((Ok(event.ok()?), (rx, alive))),
                changed = alive.changed() => match changed {
                    Ok(()) => Some((Ok(pb::Event::default()), (rx, alive))),
                    Err(_) => None,
                },
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn add_peer(
        &self,
        _: Request<pb::AddPeerRequest>,
    ) -> Result<Response<pb::AddPeerResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }

    async fn delete_peer(
        &self,
        _: Request<pb::DeletePeerRequest>,
    ) -> Result<Response<pb::DeletePeerResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }

    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }

    async fn sync_peers(
        &self,
        _: Request<pb::SyncPeersRequest>,
    ) -> Result<Response<pb::SyncPeersResponse>, Status> {
        Err(Status::unimplemented("fake announcer: Sync only"))
    }
}

/// A running in-process announcer.
pub struct FakeAnnouncer {
    /// Where it listens (127.0.0.1, its own port).
    pub addr: SocketAddr,
    /// What it holds.
    pub state: Arc<Mutex<FakeState>>,
    election: Election,
    task: tokio::task::JoinHandle<()>,
    _alive: tokio::sync::watch::Sender<()>,
}

impl Drop for FakeAnnouncer {
    fn drop(&mut self) {
        self.task.abort();
        // It stops answering heartbeats: the others may take its addresses over.
        let node = self
            .state
            .lock()
            .map(|s| s.node.clone())
            .unwrap_or_default();
        if let Ok(mut election) = self.election.lock()
            && election.running.remove(&node).is_some()
        {
            election.stopped.insert(node);
            election.notify();
        }
    }
}

impl FakeAnnouncer {
    /// Starts one on a free loopback port, in an election of its own.
    pub async fn start(pki: &Pki) -> FakeAnnouncer {
        Self::start_in(pki, &Election::default()).await
    }

    /// Starts one on a free loopback port, electing holders with the other fakes of
    /// `election`.
    pub async fn start_in(pki: &Pki, election: &Election) -> FakeAnnouncer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(pki, listener, Arc::default(), election.clone())
    }

    /// Starts one again on the same port with a fresh state (an announcer restart).
    pub async fn restart(self, pki: &Pki) -> FakeAnnouncer {
        let addr = self.addr;
        let election = self.election.clone();
        drop(self);
        tokio::task::yield_now().await;
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        Self::serve(pki, listener, Arc::default(), election)
    }

    /// Claims `address` as an announcer does when the holder stops answering heartbeats:
    /// this fake reports ACTIVE with "took over from <holder>: <holder> stopped answering
    /// heartbeats", the others STANDBY with this fake as holder. Returns that message.
    pub fn take_over(&self, address: &str) -> String {
        let node = self.state.lock().expect("lock").node.clone();
        let mut election = self.election.lock().expect("lock");
        let old = election
            .holders
            .get(address)
            .map(|(holder, _)| holder.clone())
            .unwrap_or_default();
        let message = format!("took over from {old}: {old} stopped answering heartbeats");
        election
            .holders
            .insert(address.to_string(), (node, message.clone()));
        election.notify();
        message
    }

    /// Reports, as a real announcer's layer-2 responder does, that another MAC answered for
    /// `address` on eth0 (an ARP reply).
    pub fn report_conflict(&self, address: &str, other_mac: &str) {
        let node = self.state.lock().expect("lock").node.clone();
        let election = self.election.lock().expect("lock");
        let events = election.running.get(&node).expect("synced fake");
        let _ = events.send(pb::Event {
            unix_ms: 0,
            kind: Some(pb::event::Kind::Conflict(pb::Conflict {
                address: address.to_string(),
                interface: "eth0".into(),
                our_mac: "02:00:00:00:00:01".into(),
                other_mac: other_mac.to_string(),
                evidence: "arp-reply".into(),
            })),
        });
    }

    /// The addresses it reports ACTIVE (as its last GetState would).
    pub fn active(&self) -> Vec<String> {
        let state = self.state.lock().expect("lock");
        let mut election = self.election.lock().expect("lock");
        state
            .set
            .values()
            .filter(|a| {
                let failover = a.candidates.len() >= 2
                    && a.candidates.contains(&state.node)
                    && !state.key.is_empty()
                    && a.mode != pb::Mode::Bgp as i32;
                !failover
                    || election
                        .resolve(&a.address, &a.candidates)
                        .is_some_and(|(holder, _)| holder == state.node)
            })
            .map(|a| a.address.clone())
            .collect()
    }

    fn serve(
        pki: &Pki,
        listener: tokio::net::TcpListener,
        state: Arc<Mutex<FakeState>>,
        election: Election,
    ) -> Self {
        let addr = listener.local_addr().expect("addr");
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.server_cert, &pki.server_key))
            .client_ca_root(Certificate::from_pem(&pki.ca));
        let (events, _) = broadcast::channel(64);
        let (alive_tx, alive) = tokio::sync::watch::channel(());
        let service = Service {
            state: state.clone(),
            election: election.clone(),
            events,
            alive,
        };
        let incoming = tokio_stream_of(listener);
        let task = tokio::spawn(async move {
            let _ = Server::builder()
                .tls_config(tls)
                .expect("tls")
                .add_service(AnnouncerServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        FakeAnnouncer {
            addr,
            state,
            election,
            task,
            _alive: alive_tx,
        }
    }

    /// The addresses it holds.
    pub fn addresses(&self) -> Vec<String> {
        let state = self.state.lock().expect("lock");
        state.set.keys().map(|(a, _)| a.clone()).collect()
    }

    /// A copy of the accepted Syncs.
    pub fn syncs(&self) -> Vec<SyncRecord> {
        self.state.lock().expect("lock").syncs.clone()
    }
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

/// Sets a Node's Ready condition (a real API server drops status on create, so this is a
/// status patch).
pub async fn set_node_ready(client: &kube::Client, name: &str, ready: bool) {
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let status = if ready { "True" } else { "False" };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": status, "reason": "Test", "message": "set by the test",
             "lastHeartbeatTime": "2026-12-01T00:00:00Z", "lastTransitionTime": "2026-12-01T00:00:00Z"}
        ]}})),
    )
    .await
    .expect("node status");
}

/// What the kubelet and the EndpointSlice controller would show for `announcers`: one Ready
/// Node per name, and one EndpointSlice of kube-system/ferrolb-announcer per node pointing at
/// that node's announcer.
pub async fn register_nodes(client: &kube::Client, names: &[String], announcers: &[FakeAnnouncer]) {
    use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
    use kube::api::{Api, PostParams};
    let nodes: Api<Node> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    for (name, fake) in names.iter().zip(announcers) {
        let node: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        set_node_ready(client, name, true).await;
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("ferrolb-announcer-{name}"),
                "namespace": "kube-system",
                "labels": {"kubernetes.io/service-name": "ferrolb-announcer"},
            },
            "addressType": "IPv4",
            "endpoints": [{
                "addresses": [fake.addr.ip().to_string()],
                "nodeName": name,
                "conditions": {"ready": true},
            }],
            "ports": [{"name": "grpc", "port": fake.addr.port(), "protocol": "TCP"}],
        }))
        .expect("slice");
        slices
            .create(&PostParams::default(), &slice)
            .await
            .expect("create slice");
    }
}
