//! The webhook's Prometheus metrics: requests, mutations by kind, skips, pods admitted
//! unmutated by the webhook's own fault, the directory's size, latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label with one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Label {
    /// The value: an HTTP status, a mode or a reason.
    pub value: &'static str,
}

/// The metrics, registered once.
#[derive(Clone)]
pub struct Metrics {
    /// Requests answered, by HTTP status.
    pub requests: Family<Label, Counter>,
    /// Pods mutated, by mode (`irsa`, `container_credentials`).
    pub mutations: Family<Label, Counter>,
    /// Reviews let through unchanged, by reason.
    pub skips: Family<Label, Counter>,
    /// Pods admitted unmutated because of the webhook's own fault (lookup or internal error).
    pub unmutated: Counter,
    /// Service accounts and associations held.
    pub cache_entries: Gauge,
    /// Time to answer a review.
    pub latency: Histogram,
    registry: std::sync::Arc<Registry>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The metrics, in a registry of their own.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Label, Counter>::default();
        let mutations = Family::<Label, Counter>::default();
        let skips = Family::<Label, Counter>::default();
        let unmutated = Counter::default();
        let cache_entries = Gauge::default();
        let latency = Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0]);
        registry.register(
            "rolechain_webhook_requests",
            "Requests answered, by status",
            requests.clone(),
        );
        registry.register(
            "rolechain_webhook_mutations",
            "Pods mutated, by mode",
            mutations.clone(),
        );
        registry.register(
            "rolechain_webhook_skips",
            "Reviews let through unchanged, by reason",
            skips.clone(),
        );
        registry.register(
            "rolechain_webhook_admitted_unmutated",
            "Pods admitted unmutated because of the webhook's own fault",
            unmutated.clone(),
        );
        registry.register(
            "rolechain_webhook_cache_entries",
            "Service accounts and associations held",
            cache_entries.clone(),
        );
        registry.register(
            "rolechain_webhook_review_seconds",
            "Time to answer an AdmissionReview",
            latency.clone(),
        );
        Metrics {
            requests,
            mutations,
            skips,
            unmutated,
            cache_entries,
            latency,
            registry: std::sync::Arc::new(registry),
        }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
