//! The agent's Prometheus metrics, served at `/metrics` on `--metrics-bind`.
//!
//! Label values come from the code (status codes, operation names, fixed reasons), never from
//! a request, so no client can grow the series count; no token, key or secret is ever a label.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::upstream::Operation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Eviction {
    /// Nobody asked for it within the idle time: its pods are gone.
    Idle,
    /// The cache was full and it was the least recently asked for.
    Capacity,
    /// Its credentials expired and no valid token was left to renew them.
    Expired,
    /// Upstream refused its chain for good (access denied, invalid token, no association).
    Refused,
    /// Its association changed or was removed from the file.
    Reconfigured,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvictionLabels {
    reason: Eviction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: STS answers in tens of milliseconds; the tail is throttling and timeouts.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn lifetime_histogram() -> Histogram {
    // 1 min … ~17 h, so both sides of the 15-minute line and 6-hour EKS Auth sessions show.
    Histogram::new(exponential_buckets(60.0, 2.0, 11))
}

/// Every metric of the agent.
///
/// - `rolechain_agent_requests_total{status}`: `/v1/credentials` answers by HTTP status;
/// - `rolechain_agent_cache_hits_total`, `rolechain_agent_cache_misses_total`: answers from
///   the cache, and requests that had to wait for upstream;
/// - `rolechain_agent_cache_stale_served_total`: cached credentials served because upstream
///   failed (static stability);
/// - `rolechain_agent_cache_refreshes_total{outcome}`: renewals ahead of expiry;
/// - `rolechain_agent_cache_evictions_total{reason}` and `rolechain_agent_cache_entries`;
/// - `rolechain_agent_upstream_calls_total{operation,outcome}` and
///   `rolechain_agent_upstream_call_duration_seconds{operation}`;
/// - `rolechain_agent_served_credentials_remaining_seconds`: lifetime left of what pods get;
/// - `rolechain_agent_config_reloads_total{outcome}` and `rolechain_agent_associations`.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<StatusLabels, Counter>,
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) stale_served: Counter,
    refreshes: Family<OutcomeLabels, Counter>,
    evictions: Family<EvictionLabels, Counter>,
    pub(crate) entries: Gauge,
    upstream_calls: Family<UpstreamLabels, Counter>,
    upstream_durations: Histograms<OperationLabels>,
    remaining: Histogram,
    reloads: Family<OutcomeLabels, Counter>,
    pub(crate) associations: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Arc::new(Registry::default()),
            requests: Family::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            stale_served: Counter::default(),
            refreshes: Family::default(),
            evictions: Family::default(),
            entries: Gauge::default(),
            upstream_calls: Family::default(),
            upstream_durations: Family::new_with_constructor(latency_histogram),
            remaining: lifetime_histogram(),
            reloads: Family::default(),
            associations: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "rolechain_agent_requests",
            "Credential requests answered, by HTTP status",
            metrics.requests.clone(),
        );
        r.register(
            "rolechain_agent_cache_hits",
            "Credential requests answered from the cache",
            metrics.hits.clone(),
        );
        r.register(
            "rolechain_agent_cache_misses",
            "Credential requests that waited for upstream",
            metrics.misses.clone(),
        );
        r.register(
            "rolechain_agent_cache_stale_served",
            "Cached credentials served while upstream failed",
            metrics.stale_served.clone(),
        );
        r.register(
            "rolechain_agent_cache_refreshes",
            "Renewals ahead of expiry, by outcome",
            metrics.refreshes.clone(),
        );
        r.register(
            "rolechain_agent_cache_evictions",
            "Entries removed from the cache, by reason",
            metrics.evictions.clone(),
        );
        r.register(
            "rolechain_agent_cache_entries",
            "Entries in the cache",
            metrics.entries.clone(),
        );
        r.register(
            "rolechain_agent_upstream_calls",
            "Calls to STS and EKS Auth, by operation and outcome",
            metrics.upstream_calls.clone(),
        );
        r.register(
            "rolechain_agent_upstream_call_duration_seconds",
            "Time of one upstream call",
            metrics.upstream_durations.clone(),
        );
        r.register(
            "rolechain_agent_served_credentials_remaining_seconds",
            "Lifetime left of the credentials handed to pods",
            metrics.remaining.clone(),
        );
        r.register(
            "rolechain_agent_config_reloads",
            "Association file loads, by outcome",
            metrics.reloads.clone(),
        );
        r.register(
            "rolechain_agent_associations",
            "Associations in the configuration in use",
            metrics.associations.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// Counts one `/v1/credentials` answer.
    pub fn request(&self, status: u16) {
        self.requests.get_or_create(&StatusLabels { status }).inc();
    }

    /// Counts one renewal ahead of expiry.
    pub fn refresh(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one eviction.
    pub fn evicted(&self, reason: Eviction) {
        self.evictions
            .get_or_create(&EvictionLabels { reason })
            .inc();
    }

    /// Counts one upstream call (`outcome`: `ok` or the error code's class).
    pub fn upstream(&self, operation: Operation, outcome: &'static str, took: Duration) {
        let operation = operation.name();
        self.upstream_calls
            .get_or_create(&UpstreamLabels { operation, outcome })
            .inc();
        self.upstream_durations
            .get_or_create(&OperationLabels { operation })
            .observe(took.as_secs_f64());
    }

    /// Records the lifetime left of credentials handed to a pod.
    pub fn served(&self, remaining: Duration) {
        self.remaining.observe(remaining.as_secs_f64());
    }

    /// Counts one load of the association file.
    pub fn reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "rejected" };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
