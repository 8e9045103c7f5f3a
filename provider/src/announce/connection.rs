//! One announcer connection: TCP, mutual TLS with the material's shared configuration
//! (`certs::client`), and HTTP/2 straight from hyper, which the generated gRPC client drives.
//!
//! ```text
//!   AnnouncerClient<Connection> ──▶ Connection (origin, call timeout) ──▶ hyper http2::SendRequest
//!                                                                         │ task: the connection
//!                                                                         ▼
//!                                                        TLS (tokio-rustls) ──▶ TCP
//! ```
//!
//! Why not tonic's `Channel`: it puts a request queue (`tower::buffer`, with its own task)
//! and a reconnecting layer in front of each connection; the driver sends one request at a
//! time and reconnects itself, so they were only cost — about 20 KiB per announcer, 2 MiB at
//! 100. What `Channel` did that we still need is here: the origin on each request (HTTP/2's
//! `:scheme` and `:authority`) and a timeout per call.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response, Uri, uri::Scheme};
use hyper::{body::Incoming, client::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, rustls::pki_types::ServerName};

use crate::certs::{ANNOUNCER_SERVER_NAME, ClientTls};

/// The request body the generated client sends.
type Body = tonic::body::Body;

/// An established connection to one announcer; cheap to clone (clones share it). The
/// connection closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Connection {
    send: http2::SendRequest<Body>,
    authority: http::uri::Authority,
    call_timeout: Duration,
}

/// Connects to `address`: TCP and the TLS handshake within `connect_timeout` each; every
/// call must answer (headers) within `call_timeout`.
pub async fn connect(
    address: SocketAddr,
    tls: &ClientTls,
    connect_timeout: Duration,
    call_timeout: Duration,
) -> Result<Connection, String> {
    let connector = TlsConnector::from(tls.config()?);
    let name = ServerName::try_from(ANNOUNCER_SERVER_NAME)
        .map_err(|e| format!("server name {ANNOUNCER_SERVER_NAME}: {e}"))?;
    let timed_out = |what: &str| format!("{what} {address}: no answer within {connect_timeout:?}");
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| timed_out("TCP connect to"))?
        .map_err(|e| format!("TCP connect to {address}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP connect to {address}: {e}"))?;
    let stream = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| timed_out("TLS handshake with"))?
        .map_err(|e| format!("TLS handshake with {address}: {e}"))?;
    let (send, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 handshake with {address}: {e}"))?;
    // Runs until the connection fails or every `SendRequest` is dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%address, %error, "announcer connection closed");
        }
    });
    let authority = address
        .to_string()
        .parse()
        .map_err(|e| format!("{address} as an authority: {e}"))?;
    Ok(Connection {
        send,
        authority,
        call_timeout,
    })
}

/// Why a call failed before its response arrived.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connection failed or refused the request.
    #[error(transparent)]
    Http(#[from] hyper::Error),
    /// No response within the call timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The generated client built a URI we could not complete.
    #[error("request URI: {0}")]
    Uri(#[from] http::uri::InvalidUriParts),
}

type CallFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, CallError>> + Send>>;

impl tower::Service<Request<Body>> for Connection {
    type Response = Response<Incoming>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.send.poll_ready(cx).map_err(CallError::from)
    }

    fn call(&mut self, mut request: Request<Body>) -> CallFuture {
        // The generated client sets only the path; HTTP/2 needs scheme and authority.
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTPS);
        parts.authority = Some(self.authority.clone());
        match Uri::from_parts(parts) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => return Box::pin(std::future::ready(Err(CallError::Uri(error)))),
        }
        let response = self.send.send_request(request);
        let limit = self.call_timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, response).await {
                Ok(answer) => answer.map_err(CallError::from),
                Err(_) => Err(CallError::Timeout(limit)),
            }
        })
    }
}
