//! The network front door: the same router on a hyper HTTP/1.1 server bound
//! to 127.0.0.1, plus the kubeconfig that points kubectl, the built provider
//! or any kube-rs program at it (plain `http://`, no credentials).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::router::Backend;
use crate::service::ApiService;

/// Binds `127.0.0.1:port` (0 = any free port) and serves until the task is aborted.
pub async fn serve(
    backend: Arc<Backend>,
    port: u16,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Typically EMFILE: keep serving the connections we have.
                    tracing::warn!(error = %e, "test-apiserver: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(ApiService::new(backend.clone()));
            tokio::spawn(async move {
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "test-apiserver: connection ended with an error");
                }
            });
        }
    });
    Ok((address, task))
}

/// A kubeconfig whose current context talks to `address` over plain HTTP.
pub fn kubeconfig(address: SocketAddr, namespace: &str) -> String {
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: test-apiserver\n  cluster:\n    server: http://{address}\n\
         contexts:\n\
         - name: test-apiserver\n  context:\n    cluster: test-apiserver\n    user: test-apiserver\n    namespace: {namespace}\n\
         current-context: test-apiserver\n\
         users:\n\
         - name: test-apiserver\n  user: {{}}\n\
         preferences: {{}}\n"
    )
}

/// Writes [`kubeconfig`] (namespace `default`) to `path`.
pub fn write_kubeconfig(path: &Path, address: SocketAddr) -> std::io::Result<()> {
    std::fs::write(path, kubeconfig(address, "default"))
}
