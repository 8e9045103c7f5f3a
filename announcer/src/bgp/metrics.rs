//! Prometheus metrics of the BGP speaker, one series per peer address:
//! `bgp_session_up{peer}` (1 while Established), `bgp_updates_sent_total{peer}` and
//! `bgp_announced_prefixes{peer}` (prefixes currently advertised to the peer).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `peer` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

/// Handles on the BGP metric families (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct BgpMetrics {
    pub session_up: Family<PeerLabel, Gauge>,
    pub updates_sent: Family<PeerLabel, Counter>,
    pub announced_prefixes: Family<PeerLabel, Gauge>,
}

impl BgpMetrics {
    /// Registers the families in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = BgpMetrics::default();
        registry.register(
            "bgp_session_up",
            "1 while the BGP session with the peer is Established, else 0",
            metrics.session_up.clone(),
        );
        registry.register(
            "bgp_updates_sent",
            "UPDATE messages sent to the peer",
            metrics.updates_sent.clone(),
        );
        registry.register(
            "bgp_announced_prefixes",
            "Prefixes currently advertised to the peer",
            metrics.announced_prefixes.clone(),
        );
        metrics
    }

    /// Drops the series of a deleted peer.
    pub fn remove(&self, peer: &str) {
        let label = PeerLabel {
            peer: peer.to_string(),
        };
        self.session_up.remove(&label);
        self.updates_sent.remove(&label);
        self.announced_prefixes.remove(&label);
    }
}
