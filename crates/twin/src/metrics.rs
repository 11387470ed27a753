//! The twin's Prometheus metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::decisions::DecisionLog;

/// The service or action label of a request that never reached a service (or named no
/// operation it knows).
pub(crate) const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    action: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    service: &'static str,
    action: &'static str,
    /// `error` or `latency`.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

type HistogramFamily = Family<ServiceLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~8 s: the twin answers from memory, so most requests sit in the first buckets;
    // the tail shows handlers stuck behind a lock or a slow JWKS fetch.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// The metrics served at `/_rolechain/metrics`:
///
/// - `rolechain_twin_requests_total{service,action,code}`: requests answered, `code` being the
///   HTTP status;
/// - `rolechain_twin_request_duration_seconds{service}`: latency histogram;
/// - `rolechain_twin_decisions_total{verdict}`: IAM decisions recorded in the [`DecisionLog`];
/// - `rolechain_twin_faults_injected_total{service,action,kind}`: faults injected by the rules
///   of `/_rolechain/faults`, `kind` being `error` (the request was failed; it is also counted
///   in `rolechain_twin_requests_total` with the rule's status) or `latency` (it was delayed).
///
/// Label values come from the code (service signing names, [`ApiAction`](crate::ApiAction)s),
/// never from client input, so a client cannot blow up the series count. Internal routes use
/// service `rolechain` (health, metrics, decisions) and `oidc`; requests that never reached a
/// service use `unknown`.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    faults: Family<FaultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics including `decisions`' counters.
    pub fn new(decisions: &DecisionLog) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let faults = Family::<FaultLabels, Counter>::default();
        registry.register(
            "rolechain_twin_requests",
            "Requests answered by the twin",
            requests.clone(),
        );
        registry.register(
            "rolechain_twin_request_duration_seconds",
            "Time to answer a request",
            durations.clone(),
        );
        registry.register(
            "rolechain_twin_decisions",
            "IAM decisions made by the twin",
            decisions.counters(),
        );
        registry.register(
            "rolechain_twin_faults_injected",
            "Faults injected by the rules of /_rolechain/faults",
            faults.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            requests,
            durations,
            faults,
        }
    }

    /// Counts one answered request.
    pub(crate) fn observe(
        &self,
        service: &'static str,
        action: &'static str,
        code: u16,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                service,
                action,
                code,
            })
            .inc();
        self.durations
            .get_or_create(&ServiceLabels { service })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one injected fault (`kind`: `error` or `latency`).
    pub(crate) fn fault_injected(
        &self,
        service: &'static str,
        action: &'static str,
        kind: &'static str,
    ) {
        self.faults
            .get_or_create(&FaultLabels {
                service,
                action,
                kind,
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a bug in a metric.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
