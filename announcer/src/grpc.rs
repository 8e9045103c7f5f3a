//! The gRPC service (`ferrolb.announcer.v1.Announcer` plus the standard health service) and
//! its listeners.
//!
//! Transport rules: Unix sockets are plaintext (protected by file permissions, mode 0660);
//! TCP uses TLS with mandatory client-certificate authentication when `--tls-cert` is given
//! (certificates re-read from disk while running, see [`crate::tls`]);
//! plaintext TCP is refused unless the address is loopback or `--insecure` is set.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use proto::announcer::v1::announcer_server::{Announcer, AnnouncerServer};
use proto::announcer::v1::{self as pb};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, UnixListenerStream};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::args::Listen;
use crate::bgp::backend::peer_status;
use crate::bgp::config::{PeerConfig, desired_peers};
use crate::engine::Engine;
use crate::error::{EngineError, ErrorKind};
use crate::events;
use crate::model::InvalidField;
use crate::tls::{self, ReloadingConfig, TlsError};
use crate::wire;

/// The Announcer service over an [`Engine`].
#[derive(Clone)]
pub struct AnnouncerService {
    engine: Arc<Engine>,
}

impl AnnouncerService {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// The one place where domain errors become gRPC status codes.
fn to_status(error: EngineError) -> Status {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::InvalidArgument => Status::invalid_argument(message),
        ErrorKind::FailedPrecondition => Status::failed_precondition(message),
        ErrorKind::Internal => Status::internal(message),
    }
}

fn invalid(error: InvalidField) -> Status {
    to_status(EngineError::Invalid(error))
}

fn bgp_disabled() -> Status {
    to_status(EngineError::BgpDisabled)
}

#[tonic::async_trait]
impl Announcer for AnnouncerService {
    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        let (generation, wanted, failover) =
            wire::sync_request(request.into_inner()).map_err(invalid)?;
        let outcome = self
            .engine
            .sync(generation, wanted, failover)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::sync_response(outcome)))
    }

    async fn announce(
        &self,
        request: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceResponse>, Status> {
        let desired = wire::announce_request(request.into_inner()).map_err(invalid)?;
        let status = self.engine.announce(desired).await.map_err(to_status)?;
        Ok(Response::new(pb::AnnounceResponse {
            status: Some(wire::status(&status)),
        }))
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        let (address, mode) = wire::withdraw_request(&request.into_inner()).map_err(invalid)?;
        let withdrawn = self.engine.withdraw(address, mode).await;
        Ok(Response::new(pb::WithdrawResponse { withdrawn }))
    }

    async fn get_state(
        &self,
        _: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::State>, Status> {
        let snapshot = self.engine.state().await;
        let backend = self.engine.backend().map(|b| b.as_ref());
        Ok(Response::new(wire::state(&snapshot, backend)))
    }

    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let stream =
            BroadcastStream::new(self.engine.events().subscribe()).map(|item| match item {
                Ok(event) => Ok(event),
                // A slow watcher misses events; tell it instead of silently skipping.
                Err(BroadcastStreamRecvError::Lagged(n)) => Ok(events::error(
                    "watch",
                    format!("{n} events were dropped because this watcher was too slow"),
                )),
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn add_peer(
        &self,
        request: Request<pb::AddPeerRequest>,
    ) -> Result<Response<pb::AddPeerResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        let peer = request.into_inner().peer.ok_or_else(|| {
            invalid(InvalidField {
                field: "peer".into(),
                message: "is required".into(),
            })
        })?;
        let config =
            PeerConfig::from_proto(&peer).map_err(|e| to_status(EngineError::InvalidPeer(e)))?;
        let snapshot = backend
            .add_peer(config)
            .await
            .map_err(|e| to_status(EngineError::PeerRefused(e)))?;
        Ok(Response::new(pb::AddPeerResponse {
            status: Some(peer_status(&snapshot)),
        }))
    }

    async fn delete_peer(
        &self,
        request: Request<pb::DeletePeerRequest>,
    ) -> Result<Response<pb::DeletePeerResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        let address = wire::peer_address(&request.into_inner().address).map_err(invalid)?;
        let deleted = backend
            .delete_peer(address)
            .await
            .map_err(|e| to_status(EngineError::PeerRefused(e)))?;
        Ok(Response::new(pb::DeletePeerResponse { deleted }))
    }

    async fn sync_peers(
        &self,
        request: Request<pb::SyncPeersRequest>,
    ) -> Result<Response<pb::SyncPeersResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        let request = request.into_inner();
        let desired = desired_peers(&request.peers, backend.default_local_asn());
        let outcome = backend
            .sync_peers(request.generation, desired)
            .await
            .map_err(|e| to_status(EngineError::PeerRefused(e)))?;
        tracing::info!(
            generation = outcome.generation,
            added = outcome.added,
            replaced = outcome.replaced,
            removed = outcome.removed,
            unchanged = outcome.unchanged,
            refused = outcome.refused.len(),
            "SyncPeers applied"
        );
        for refusal in &outcome.refused {
            tracing::warn!(
                peer = refusal.address,
                "managed BGP peer refused: {}",
                refusal.message
            );
        }
        Ok(Response::new(pb::SyncPeersResponse {
            generation: outcome.generation,
            added: outcome.added,
            replaced: outcome.replaced,
            removed: outcome.removed,
            unchanged: outcome.unchanged,
            refused: outcome
                .refused
                .into_iter()
                .map(|r| pb::PeerRefusal {
                    address: r.address,
                    message: r.message,
                })
                .collect(),
        }))
    }

    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        Ok(Response::new(pb::ListPeersResponse {
            peers: backend.peers().iter().map(peer_status).collect(),
        }))
    }
}

pub use crate::tls::TlsFiles;

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing plaintext gRPC on {0}: not a loopback address; give --tls-cert/--tls-key/--client-ca, listen on a unix: socket, or pass --insecure"
    )]
    PlaintextRefused(std::net::SocketAddr),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("gRPC listener {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("unix socket {path}: {source}")]
    Unix {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gRPC server on {listen:?}: {source}")]
    Transport {
        listen: Listen,
        source: tonic::transport::Error,
    },
}

/// Checks a listener against the transport rules before anything is started.
pub fn check_listener(listen: &Listen, tls: bool, insecure: bool) -> Result<(), ServeError> {
    match listen {
        Listen::Tcp(addr) if !tls && !insecure && !addr.ip().is_loopback() => {
            Err(ServeError::PlaintextRefused(*addr))
        }
        _ => Ok(()),
    }
}

/// Serves the API on one listener until `shutdown` resolves. TCP with `tls` serves mutual
/// TLS whose certificates follow their files ([`crate::tls`]).
pub async fn serve(
    listen: Listen,
    tls: Option<Arc<ReloadingConfig>>,
    service: AnnouncerService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AnnouncerServer<AnnouncerService>>()
        .await;
    let mut builder = Server::builder();
    match (&listen, tls) {
        (Listen::Tcp(addr), Some(tls)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: *addr,
                    source,
                })?;
            let incoming = tls::incoming(listener, tls);
            builder
                .add_service(health)
                .add_service(AnnouncerServer::new(service))
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
                .map_err(|source| ServeError::Transport {
                    listen: listen.clone(),
                    source,
                })
        }
        (Listen::Tcp(addr), None) => builder
            .add_service(health)
            .add_service(AnnouncerServer::new(service))
            .serve_with_shutdown(*addr, shutdown)
            .await
            .map_err(|source| ServeError::Transport {
                listen: listen.clone(),
                source,
            }),
        (Listen::Unix(path), _) => {
            let unix_error = |source| ServeError::Unix {
                path: path.clone(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(unix_error)?;
            }
            // A socket file left by a previous run would make bind fail.
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(unix_error(e)),
                _ => {}
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(unix_error)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .map_err(unix_error)?;
            let result = builder
                .add_service(health)
                .add_service(AnnouncerServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await
                .map_err(|source| ServeError::Transport {
                    listen: listen.clone(),
                    source,
                });
            let _ = std::fs::remove_file(path);
            result
        }
    }
}
