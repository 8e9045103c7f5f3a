//! Prometheus metrics of the announcer and the small HTTP server for `/metrics` and
//! `/healthz`.
//!
//! Counters are registered once in a [`Registry`] passed around in [`Metrics`] (no global
//! state); the hot paths hold cloned handles of the labelled series, so counting a frame is
//! one atomic add.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// A counter with one series per IP family.
#[derive(Debug, Clone)]
pub struct PerFamily {
    pub ipv4: Counter,
    pub ipv6: Counter,
}

impl PerFamily {
    fn register(registry: &mut Registry, name: &str, help: &str) -> Self {
        let family = Family::<Labels, Counter>::default();
        registry.register(name, help, family.clone());
        // One statement per series: the guard returned by get_or_create holds the family's
        // lock until the end of the statement.
        let ipv4 = family.get_or_create(&[("family", "ipv4")]).clone();
        let ipv6 = family.get_or_create(&[("family", "ipv6")]).clone();
        Self { ipv4, ipv6 }
    }

    /// The series for `address`'s family.
    pub fn of(&self, address: IpAddr) -> &Counter {
        if address.is_ipv4() {
            &self.ipv4
        } else {
            &self.ipv6
        }
    }
}

/// Every metric the announcer exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// ARP requests and Neighbor Solicitations received, for any address.
    pub requests_received: PerFamily,
    /// ARP replies and solicited Neighbor Advertisements sent.
    pub replies_sent: PerFamily,
    /// Gratuitous ARP frames and unsolicited Neighbor Advertisements sent.
    pub gratuitous_sent: PerFamily,
    /// Another MAC answered for an address this announcer owns.
    pub conflicts: Counter,
    /// Frames that looked like ARP/NDP but could not be parsed.
    pub malformed_frames: Counter,
    /// Frames that could not be sent.
    pub send_errors: Counter,
    /// Announcements in the desired set, by mode.
    pub announcements: Family<[(&'static str, &'static str); 1], Gauge>,
}

impl Metrics {
    /// Registers all metrics under the `ferrolb_announcer` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("ferrolb_announcer");
        let announcements = Family::default();
        registry.register(
            "announcements",
            "Announcements in the desired set, by mode",
            announcements.clone(),
        );
        let conflicts = Counter::default();
        registry.register(
            "conflicts",
            "Times another MAC answered for an address this announcer owns",
            conflicts.clone(),
        );
        let malformed_frames = Counter::default();
        registry.register(
            "malformed_frames",
            "ARP/NDP frames that could not be parsed (ignored)",
            malformed_frames.clone(),
        );
        let send_errors = Counter::default();
        registry.register(
            "send_errors",
            "Frames that could not be sent",
            send_errors.clone(),
        );
        Self {
            requests_received: PerFamily::register(
                registry,
                "requests_received",
                "ARP requests and Neighbor Solicitations received",
            ),
            replies_sent: PerFamily::register(
                registry,
                "replies_sent",
                "ARP replies and solicited Neighbor Advertisements sent",
            ),
            gratuitous_sent: PerFamily::register(
                registry,
                "gratuitous_sent",
                "Gratuitous ARP and unsolicited Neighbor Advertisements sent",
            ),
            conflicts,
            malformed_frames,
            send_errors,
            announcements,
        }
    }
}

/// Serves `/metrics` (Prometheus text format) and `/healthz` on `address` until `shutdown`
/// resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move {
                    let mut body = String::new();
                    match encode(&mut body, &registry) {
                        Ok(()) => (
                            StatusCode::OK,
                            [(
                                header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            body,
                        )
                            .into_response(),
                        Err(e) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                        }
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
