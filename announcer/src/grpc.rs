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
use crate::engine::Engine;
use crate::events;
use crate::tls::{self, ReloadingConfig, TlsError};

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

fn bgp_disabled() -> Status {
    Status::failed_precondition("BGP mode is not enabled (no BGP speaker configured)")
}

#[tonic::async_trait]
impl Announcer for AnnouncerService {
    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        self.engine
            .sync(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn announce(
        &self,
        request: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceResponse>, Status> {
        let status = self
            .engine
            .announce(request.into_inner().announcement)
            .await?;
        Ok(Response::new(pb::AnnounceResponse {
            status: Some(status),
        }))
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        let withdrawn = self.engine.withdraw(request.into_inner()).await?;
        Ok(Response::new(pb::WithdrawResponse { withdrawn }))
    }

    async fn get_state(
        &self,
        _: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::State>, Status> {
        Ok(Response::new(self.engine.state().await))
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
        let peer = request
            .into_inner()
            .peer
            .ok_or_else(|| Status::invalid_argument("peer: is required"))?;
        let status = backend.add_peer(peer).await?;
        Ok(Response::new(pb::AddPeerResponse {
            status: Some(status),
        }))
    }

    async fn delete_peer(
        &self,
        request: Request<pb::DeletePeerRequest>,
    ) -> Result<Response<pb::DeletePeerResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        let deleted = backend.delete_peer(&request.into_inner().address).await;
        Ok(Response::new(pb::DeletePeerResponse { deleted }))
    }

    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let backend = self.engine.backend().ok_or_else(bgp_disabled)?;
        Ok(Response::new(pb::ListPeersResponse {
            peers: backend.peers(),
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
