//! What the server hands every route: the shared state (`Shared`), the per-request facts
//! (`RequestMeta`) and what a response answered (`RouteInfo`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use time::OffsetDateTime;

use crate::admin_hosts::AdminHosts;
use crate::config::TwinConfig;
use crate::decisions::DecisionLog;
use crate::faults::{FaultPoint, Faults};
use crate::ids::new_request_id;
use crate::issuers::IssuerRegistry;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::service::{AwsService, StreamingService};

/// Per-request facts the wrapper hands to the routes.
#[derive(Debug, Clone)]
pub(crate) struct RequestMeta {
    pub(crate) request_id: String,
    pub(crate) peer: SocketAddr,
    pub(crate) received_at: OffsetDateTime,
}

impl RequestMeta {
    /// For a request that did not come through the wrapper (only possible in unit tests of
    /// the routes); the loopback peer is the least surprising stand-in.
    pub(crate) fn detached() -> Self {
        RequestMeta {
            request_id: new_request_id(),
            peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            received_at: OffsetDateTime::now_utc(),
        }
    }
}

/// What a response answered, for metrics and the request log (a response extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteInfo {
    pub(crate) service: &'static str,
    pub(crate) action: &'static str,
}

pub(crate) struct Shared {
    pub(crate) config: TwinConfig,
    pub(crate) services: HashMap<&'static str, Arc<dyn AwsService>>,
    pub(crate) streaming: HashMap<&'static str, Arc<dyn StreamingService>>,
    pub(crate) issuers: IssuerRegistry,
    pub(crate) decisions: DecisionLog,
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
    /// The `Host` values the admin endpoints answer to ([`AdminHosts`]).
    pub(crate) admin_hosts: AdminHosts,
    /// The fault rules of `/_rolechain/faults`.
    pub(crate) faults: Faults,
    /// The store whose local clusters' service accounts `/_rolechain/serviceaccounts` serves.
    pub(crate) local_clusters: Option<Arc<twin_state::Store>>,
    /// The store whose clock is the twin's now (`/_rolechain/clock`); real time without one.
    pub(crate) clock: Option<Arc<twin_state::Store>>,
}

impl Shared {
    /// The twin's now: its clock's, or real time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock
            .as_ref()
            .map_or_else(OffsetDateTime::now_utc, |store| store.clock().now())
    }

    /// Where `service`'s requests meet the fault rules.
    pub(crate) fn fault_point(&self, service: &'static str) -> FaultPoint {
        FaultPoint::new(self.faults.clone(), self.metrics.clone(), service)
    }

    /// The signing names of every registered service, sorted.
    pub(crate) fn service_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .services
            .keys()
            .chain(self.streaming.keys())
            .copied()
            .collect();
        names.sort_unstable();
        names
    }
}
