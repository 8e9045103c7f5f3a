//! The HTTP server for `/metrics`, `/healthz` and `/readyz`.
//!
//! `/healthz` answers 200 while the process runs its tasks. `/readyz` answers 200 once this
//! replica is useful: either it leads and has adopted every existing allocation, or it stands
//! by waiting for the Lease. It answers 503 while a leader is still adopting.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;

/// What this replica is doing, as reported by `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Starting up: not yet connected or not yet decided.
    Starting = 0,
    /// Another replica holds the Lease; this one waits.
    StandingBy = 1,
    /// Leading, but still reading existing Services (no allocation yet).
    Adopting = 2,
    /// Leading and allocating.
    Serving = 3,
}

/// Readiness shared between the controller tasks and the HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
}

impl Health {
    /// Records the current phase.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::StandingBy,
            2 => Phase::Adopting,
            3 => Phase::Serving,
            _ => Phase::Starting,
        }
    }

    /// Ready once adopted and leading, or standing by.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase(), Phase::StandingBy | Phase::Serving)
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Arc<Health>,
}

/// The router (exposed for tests).
pub fn router(registry: Arc<Registry>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { registry, health })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&state.registry),
    )
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let phase = state.health.phase();
    let text = format!("{phase:?}");
    if state.health.is_ready() {
        (StatusCode::OK, text)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, text)
    }
}

/// Binds `addr` and serves until the task is dropped. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(registry, health);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    async fn status_of(app: Router, path: &str) -> StatusCode {
        let request = axum::http::Request::get(path)
            .body(Body::empty())
            .expect("request");
        app.oneshot(request).await.expect("response").status()
    }

    #[tokio::test]
    async fn readyz_is_ready_only_when_standing_by_or_serving() {
        let health = Arc::new(Health::default());
        let app = router(Arc::new(Registry::default()), health.clone());
        assert_eq!(
            status_of(app.clone(), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set(Phase::Adopting);
        assert_eq!(
            status_of(app.clone(), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set(Phase::StandingBy);
        assert_eq!(status_of(app.clone(), "/readyz").await, StatusCode::OK);
        health.set(Phase::Serving);
        assert_eq!(status_of(app.clone(), "/readyz").await, StatusCode::OK);
        assert_eq!(status_of(app.clone(), "/healthz").await, StatusCode::OK);
        assert_eq!(status_of(app, "/metrics").await, StatusCode::OK);
    }
}
