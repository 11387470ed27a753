//! The upstream as the cache uses it: every call rate-limited (a token bucket with a burst, so
//! a cron burst of new pods waits its turn instead of being refused or feeding throttling
//! upstream) and measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::credentials::Credentials;
use crate::limits::TokenBucket;
use crate::metrics::Metrics;
use crate::upstream::{
    AssumeRoleRequest, BoxFuture, Operation, PodIdentityRequest, Retry, Upstream, UpstreamError,
    WebIdentityRequest,
};

/// An [`Upstream`] wrapped in the agent's rate limit and metrics.
pub struct GuardedUpstream {
    inner: Arc<dyn Upstream>,
    limiter: TokenBucket,
    patience: Duration,
    metrics: Metrics,
}

impl GuardedUpstream {
    /// `inner`, allowed `rate` calls a second with `burst` saved up; a call waits up to
    /// `patience` for its turn.
    pub fn new(
        inner: Arc<dyn Upstream>,
        rate: f64,
        burst: u32,
        patience: Duration,
        metrics: Metrics,
    ) -> GuardedUpstream {
        GuardedUpstream {
            inner,
            limiter: TokenBucket::new(rate, burst),
            patience,
            metrics,
        }
    }

    async fn call(
        &self,
        operation: Operation,
        call: BoxFuture<'_, Result<Credentials, UpstreamError>>,
    ) -> Result<Credentials, UpstreamError> {
        if !self.limiter.acquire_within(self.patience).await {
            self.metrics.upstream(operation, "limited", Duration::ZERO);
            return Err(UpstreamError::unanswered(
                operation,
                "AgentThrottled",
                "the agent's own upstream rate limit: too many calls waiting",
            ));
        }
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.retry == Retry::Later => "retryable_error",
            Err(_) => "refused",
        };
        self.metrics.upstream(operation, outcome, started.elapsed());
        result
    }
}

impl Upstream for GuardedUpstream {
    fn assume_role_with_web_identity<'a>(
        &'a self,
        request: WebIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(self.call(
            Operation::AssumeRoleWithWebIdentity,
            self.inner.assume_role_with_web_identity(request),
        ))
    }

    fn assume_role<'a>(
        &'a self,
        request: AssumeRoleRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(self.call(Operation::AssumeRole, self.inner.assume_role(request)))
    }

    fn assume_role_for_pod_identity<'a>(
        &'a self,
        request: PodIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(self.call(
            Operation::AssumeRoleForPodIdentity,
            self.inner.assume_role_for_pod_identity(request),
        ))
    }
}
