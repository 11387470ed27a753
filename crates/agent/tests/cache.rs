//! The shared cache against a scripted upstream and a clock that moves only when told: one
//! chain per set of credentials under a burst, renewal ahead of expiry, idle entries dropped,
//! static stability, refusals never cached, the one-hour chain cap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use agent::cache::{CacheConfig, CacheError, CacheKey, ClusterIdentity, CredentialCache};
use agent::clock::{until, Clock, ManualClock};
use agent::metrics::Metrics;
use agent::token::PodClaims;
use agent::upstream::{
    AssumeRoleRequest, BoxFuture, Operation, PodIdentityRequest, Retry, Upstream, UpstreamError,
    WebIdentityRequest,
};
use agent::{Chain, Credentials, Hop, PodIdentity, SessionTags, Start};

/// One call the scripted upstream saw.
#[derive(Debug, Clone)]
struct Call {
    operation: Operation,
    role: String,
    session_name: String,
    duration: Option<u32>,
    tags: Vec<String>,
    external_id: Option<String>,
}

/// STS as far as the cache can tell: credentials for the asked duration (default one hour),
/// chained sessions capped at one hour as STS caps them, failures on demand.
struct Scripted {
    clock: ManualClock,
    calls: Mutex<Vec<Call>>,
    failure: Mutex<Option<UpstreamError>>,
    delay: Duration,
}

impl Scripted {
    fn new(clock: &ManualClock) -> Arc<Scripted> {
        Arc::new(Scripted {
            clock: clock.clone(),
            calls: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            delay: Duration::from_millis(20),
        })
    }

    fn count(&self, operation: Operation) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn fail_with(&self, failure: Option<UpstreamError>) {
        *self.failure.lock().unwrap() = failure;
    }

    async fn answer(&self, call: Call, chained: bool) -> Result<Credentials, UpstreamError> {
        tokio::time::sleep(self.delay).await;
        let operation = call.operation;
        let duration = call.duration.unwrap_or(3600);
        let role = call.role.clone();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call);
            calls.len()
        };
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return Err(UpstreamError {
                operation,
                ..failure
            });
        }
        if chained && duration > 3600 {
            return Err(UpstreamError::answered(
                operation,
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
                400,
            ));
        }
        Ok(Credentials {
            access_key_id: format!("ASIA{n:016}"),
            secret_access_key: format!("secret-{n}"),
            session_token: format!("token-{n}"),
            expiration: self.clock.now() + Duration::from_secs(u64::from(duration)),
            account_id: role.split(':').nth(4).unwrap_or("111111111111").to_string(),
        })
    }
}

impl Upstream for Scripted {
    fn assume_role_with_web_identity<'a>(
        &'a self,
        r: WebIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        let call = Call {
            operation: Operation::AssumeRoleWithWebIdentity,
            role: r.role_arn.into(),
            session_name: r.session_name.into(),
            duration: r.duration_seconds,
            tags: Vec::new(),
            external_id: None,
        };
        Box::pin(self.answer(call, false))
    }

    fn assume_role<'a>(
        &'a self,
        r: AssumeRoleRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        let call = Call {
            operation: Operation::AssumeRole,
            role: r.role_arn.into(),
            session_name: r.session_name.into(),
            duration: r.duration_seconds,
            tags: r
                .tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect(),
            external_id: r.external_id.map(str::to_owned),
        };
        Box::pin(self.answer(call, true))
    }

    fn assume_role_for_pod_identity<'a>(
        &'a self,
        _r: PodIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        let call = Call {
            operation: Operation::AssumeRoleForPodIdentity,
            role: "arn:aws:iam::111111111111:role/eks".into(),
            session_name: String::new(),
            duration: Some(6 * 3600),
            tags: Vec::new(),
            external_id: None,
        };
        Box::pin(self.answer(call, false))
    }
}

const FIRST: &str = "arn:aws:iam::111111111111:role/first";
const SECOND: &str = "arn:aws:iam::222222222222:role/second";
const THIRD: &str = "arn:aws:iam::333333333333:role/third";

fn chain(hops: &[&str], tags: SessionTags, duration: Option<u32>) -> Arc<Chain> {
    Arc::new(Chain {
        start: Start::WebIdentity {
            role_arn: FIRST.into(),
        },
        hops: hops
            .iter()
            .map(|arn| Hop {
                role_arn: arn.to_string(),
                account: arn.split(':').nth(4).unwrap().to_string(),
                external_id: (*arn == SECOND).then(|| "shared-secret".to_string()),
            })
            .collect(),
        session_tags: tags,
        duration_seconds: duration,
    })
}

struct Fixture {
    clock: ManualClock,
    upstream: Arc<Scripted>,
    cache: Arc<CredentialCache>,
}

fn fixture(config: CacheConfig) -> Fixture {
    let clock = ManualClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let upstream = Scripted::new(&clock);
    let cache = Arc::new(CredentialCache::new(
        config,
        ClusterIdentity {
            name: "development-cluster".into(),
            arn: Some("arn:aws:eks:us-east-1:111111111111:cluster/development-cluster".into()),
        },
        upstream.clone(),
        Arc::new(clock.clone()),
        Metrics::new(),
    ));
    Fixture {
        clock,
        upstream,
        cache,
    }
}

impl Fixture {
    /// A verified token's claims for pod `pod` of `sa`, valid for `valid`.
    fn claims(&self, sa: &str, pod: &str, valid: Duration) -> Arc<PodClaims> {
        Arc::new(PodClaims {
            namespace: "apps".into(),
            service_account: sa.into(),
            pod: PodIdentity {
                name: pod.into(),
                uid: format!("uid-{pod}"),
            },
            expires_at: self.clock.now() + valid,
            not_before: None,
            fingerprint: format!("fp-{pod}"),
        })
    }

    async fn get(
        &self,
        chain: &Arc<Chain>,
        claims: &Arc<PodClaims>,
    ) -> Result<Arc<agent::cache::Served>, CacheError> {
        let key = CacheKey::new(
            Arc::from(claims.namespace.as_str()),
            Arc::from(claims.service_account.as_str()),
            Arc::clone(chain),
            &claims.pod.uid,
        );
        let token = format!("token-of-{}", claims.pod.name);
        self.cache.get(key, Arc::clone(claims), &token).await
    }

    fn left(&self, served: &agent::cache::Served) -> Duration {
        until(self.clock.now(), served.credentials.expiration)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pods_costs_one_chain_per_service_account() {
    let f = Arc::new(fixture(CacheConfig::default()));
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, None);
    let mut requests = tokio::task::JoinSet::new();
    for sa in 0..10 {
        for pod in 0..20 {
            let claims = f.claims(
                &format!("sa-{sa}"),
                &format!("pod-{sa}-{pod}"),
                Duration::from_secs(3600),
            );
            for _ in 0..10 {
                let (f, chain, claims) = (Arc::clone(&f), Arc::clone(&chain), Arc::clone(&claims));
                requests.spawn(async move {
                    let served = f.get(&chain, &claims).await.expect("credentials");
                    (claims.service_account.clone(), served.credentials.clone())
                });
            }
        }
    }
    let mut by_sa = std::collections::HashMap::new();
    let mut answered = 0;
    while let Some(done) = requests.join_next().await {
        let (sa, creds) = done.unwrap();
        answered += 1;
        let first = by_sa.entry(sa.clone()).or_insert_with(|| creds.clone());
        assert_eq!(
            first.access_key_id, creds.access_key_id,
            "{sa}: one set of credentials"
        );
        assert_eq!(creds.account_id, "222222222222");
    }
    assert_eq!(answered, 2000);
    assert_eq!(by_sa.len(), 10);
    assert_eq!(f.upstream.count(Operation::AssumeRoleWithWebIdentity), 10);
    assert_eq!(f.upstream.count(Operation::AssumeRole), 10);
    assert_eq!(f.cache.len(), 10);
}

#[tokio::test]
async fn handed_out_credentials_always_have_fifteen_minutes_left_and_renewal_is_ahead() {
    let f = fixture(CacheConfig::default());
    let chain = chain(&[SECOND, THIRD], SessionTags::ServiceAccount, Some(3600));
    let mut renewals = 0;
    for minute in 0..(6 * 60) {
        // A pod refreshes its token hourly, as kubelet would (long before it expires).
        let claims = f.claims(
            "reader",
            &format!("pod-{}", minute / 60),
            Duration::from_secs(2 * 3600),
        );
        let served = f.get(&chain, &claims).await.expect("credentials");
        assert!(
            f.left(&served) >= Duration::from_secs(15 * 60),
            "minute {minute}: handed out with {:?} left",
            f.left(&served)
        );
        renewals += f.cache.refresh_pass().await.refreshed;
        f.clock.advance(Duration::from_secs(60));
    }
    // One-hour credentials renewed 20–25 minutes before expiry: every 35–40 minutes, by the
    // renewer, never by a request (the first fetch aside).
    assert!(
        (9..=11).contains(&renewals),
        "{renewals} renewals in 6 hours"
    );
    let chains = f.upstream.count(Operation::AssumeRoleWithWebIdentity);
    assert_eq!(chains, renewals + 1);
    assert_eq!(f.upstream.count(Operation::AssumeRole), 2 * chains);
}

#[tokio::test]
async fn max_lifetime_rehearses_renewal_within_seconds() {
    let f = fixture(CacheConfig {
        max_lifetime: Some(Duration::from_secs(4)),
        ..CacheConfig::default()
    });
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, Some(3600));
    let claims = f.claims("reader", "pod-0", Duration::from_secs(3600));
    let first = f.get(&chain, &claims).await.expect("credentials");
    // Handed out as the knob says, in the wire body too: the pod's SDK refreshes as soon.
    assert_eq!(f.left(&first), Duration::from_secs(4));
    let wire: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let expiration = wire["Expiration"].as_str().unwrap();
    assert_eq!(
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp(),
        1_800_000_004,
        "{wire}"
    );
    let mut keys = std::collections::BTreeSet::from([first.credentials.access_key_id.clone()]);
    for _ in 0..10 {
        f.clock.advance(Duration::from_secs(1));
        f.cache.refresh_pass().await;
        let served = f.get(&chain, &claims).await.expect("credentials");
        // Never handed out with less than half the rehearsed lifetime left.
        assert!(
            f.left(&served) >= Duration::from_secs(2),
            "{:?}",
            f.left(&served)
        );
        keys.insert(served.credentials.access_key_id.clone());
    }
    assert!(
        keys.len() >= 4,
        "{} sets of credentials in 10 s",
        keys.len()
    );
    assert_eq!(
        f.upstream.count(Operation::AssumeRoleWithWebIdentity),
        keys.len()
    );
}

#[tokio::test]
async fn the_chain_is_made_as_sts_wants_it() {
    let f = fixture(CacheConfig::default());
    let chain = chain(&[SECOND, THIRD], SessionTags::Pod, Some(3600));
    let claims = f.claims("reader", "pod-a", Duration::from_secs(3600));
    let served = f.get(&chain, &claims).await.unwrap();
    assert_eq!(served.credentials.account_id, "333333333333");
    let calls = f.upstream.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].operation, Operation::AssumeRoleWithWebIdentity);
    assert_eq!(calls[0].role, FIRST);
    // Intermediate sessions are used once, at once: STS's shortest.
    assert_eq!(calls[0].duration, Some(900));
    assert_eq!(calls[1].duration, Some(900));
    assert_eq!(calls[2].duration, Some(3600));
    assert!(calls.iter().all(|c| c.session_name == "apps.reader.pod-a"));
    assert_eq!(calls[1].external_id.as_deref(), Some("shared-secret"));
    assert_eq!(calls[2].external_id, None);
    // Tags once, on the first AssumeRole (transitive: STS carries them on).
    assert_eq!(
        calls[1].tags,
        [
            "eks-cluster-arn=arn:aws:eks:us-east-1:111111111111:cluster/development-cluster",
            "eks-cluster-name=development-cluster",
            "kubernetes-namespace=apps",
            "kubernetes-service-account=reader",
            "kubernetes-pod-name=pod-a",
            "kubernetes-pod-uid=uid-pod-a",
        ]
    );
    assert!(calls[2].tags.is_empty() && calls[0].tags.is_empty());
    // Pod-level tags: another pod of the same service account gets its own credentials.
    let other = f.claims("reader", "pod-b", Duration::from_secs(3600));
    let theirs = f.get(&chain, &other).await.unwrap();
    assert_ne!(
        theirs.credentials.access_key_id,
        served.credentials.access_key_id
    );
    assert_eq!(f.cache.len(), 2);
}

#[tokio::test]
async fn a_chain_asking_more_than_an_hour_is_refused_by_sts_and_not_cached() {
    let f = fixture(CacheConfig::default());
    // The association file refuses this; an upstream refusing it must not be retried either.
    let chain = chain(&[SECOND], SessionTags::None, Some(7200));
    let claims = f.claims("reader", "pod-a", Duration::from_secs(3600));
    let error = f.get(&chain, &claims).await.unwrap_err();
    assert_eq!(error.retry(), Retry::Never);
    assert!(
        error.to_string().contains("1 hour session limit"),
        "{error}"
    );
    assert!(f.cache.is_empty(), "a refusal leaves no entry");
}

#[tokio::test]
async fn idle_entries_stop_being_renewed_and_are_dropped() {
    let f = fixture(CacheConfig::default());
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, None);
    let claims = f.claims("gone", "pod-gone", Duration::from_secs(24 * 3600));
    f.get(&chain, &claims).await.unwrap();
    let mut dropped = 0;
    for _ in 0..(3 * 60) {
        f.clock.advance(Duration::from_secs(60));
        dropped += f.cache.refresh_pass().await.dropped;
    }
    assert_eq!(dropped, 1);
    assert!(f.cache.is_empty());
    // Renewed at most once before the 50-minute idle time ran out, then never again.
    assert!(f.upstream.count(Operation::AssumeRoleWithWebIdentity) <= 2);
}

#[tokio::test]
async fn renewal_needs_a_valid_token_and_never_uses_an_expired_one() {
    let f = fixture(CacheConfig::default());
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, None);
    // A token that expires in 10 minutes, long before the credentials need renewing.
    let claims = f.claims("short", "pod-short", Duration::from_secs(600));
    let served = f.get(&chain, &claims).await.unwrap();
    let calls = f.upstream.total();
    for _ in 0..90 {
        f.clock.advance(Duration::from_secs(60));
        f.cache.refresh_pass().await;
    }
    assert_eq!(
        f.upstream.total(),
        calls,
        "no renewal with an expired token"
    );
    assert!(f.clock.now() > served.credentials.expiration);
    assert!(f.cache.is_empty(), "dropped once its credentials expired");
}

#[tokio::test]
async fn cached_credentials_are_served_through_an_outage_with_backoff_then_it_recovers() {
    let config = CacheConfig::default();
    let f = fixture(config.clone());
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, None);
    let claims = f.claims("steady", "pod-steady", Duration::from_secs(24 * 3600));
    let first = f.get(&chain, &claims).await.unwrap();
    let key = first.credentials.access_key_id.clone();

    f.upstream.fail_with(Some(UpstreamError::answered(
        Operation::AssumeRoleWithWebIdentity,
        "ServiceUnavailable",
        "injected",
        503,
    )));
    // The outage lasts 58 minutes: renewal comes due 35–40 minutes in and keeps failing; a
    // pod asks every second and the renewer runs every second.
    let before = f.upstream.total();
    for second in 0..(58 * 60) {
        f.cache.refresh_pass().await;
        let served = f
            .get(&chain, &claims)
            .await
            .unwrap_or_else(|e| panic!("second {second}: {e}"));
        assert_eq!(served.credentials.access_key_id, key, "the cached ones");
        f.clock.advance(Duration::from_secs(1));
    }
    let attempts = f.upstream.total() - before;
    // Without backoff: one attempt a second for the last 20 minutes (~1,300). With it (1 s
    // doubling to 60 s, requests sharing the renewer's backoff): about 25.
    assert!(
        (10..=60).contains(&attempts),
        "{attempts} attempts in the outage"
    );

    // The outage outlasts the credentials: an error, retryable, once they are nearly expired.
    f.clock.advance(Duration::from_secs(90));
    let error = f.get(&chain, &claims).await.unwrap_err();
    assert_eq!(error.retry(), Retry::Later);

    // Recovery: the next request gets new credentials.
    f.upstream.fail_with(None);
    let fresh = f.get(&chain, &claims).await.unwrap();
    assert_ne!(fresh.credentials.access_key_id, key);
    assert!(f.left(&fresh) >= config.min_remaining);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_shared_by_concurrent_requests_and_never_cached() {
    let f = Arc::new(fixture(CacheConfig::default()));
    let chain = chain(&[SECOND], SessionTags::ServiceAccount, None);
    f.upstream.fail_with(Some(UpstreamError::answered(
        Operation::AssumeRoleWithWebIdentity,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        403,
    )));
    let claims = f.claims("denied", "pod-denied", Duration::from_secs(3600));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (f, chain, claims) = (Arc::clone(&f), Arc::clone(&chain), Arc::clone(&claims));
        requests.spawn(async move { f.get(&chain, &claims).await });
    }
    while let Some(done) = requests.join_next().await {
        let error = done.unwrap().unwrap_err();
        assert_eq!(error.retry(), Retry::Never);
        assert!(error.to_string().contains("AccessDenied"), "{error}");
    }
    assert_eq!(f.upstream.total(), 1, "one call for 50 concurrent requests");
    assert!(f.cache.is_empty());
    // Not cached: fixed upstream, next request succeeds at once.
    f.upstream.fail_with(None);
    f.get(&chain, &claims)
        .await
        .expect("credentials once the trust is fixed");
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let f = fixture(CacheConfig {
        max_entries: 50,
        ..CacheConfig::default()
    });
    let chain = chain(&[], SessionTags::Pod, None);
    for pod in 0..200 {
        let claims = f.claims("many", &format!("pod-{pod}"), Duration::from_secs(3600));
        f.get(&chain, &claims).await.unwrap();
        f.clock.advance(Duration::from_millis(10));
    }
    assert_eq!(f.cache.len(), 50);
    // The most recent pods stayed.
    let recent = f.claims("many", "pod-199", Duration::from_secs(3600));
    let calls = f.upstream.total();
    f.get(&chain, &recent).await.unwrap();
    assert_eq!(f.upstream.total(), calls, "a hit");
}

#[tokio::test]
async fn an_unanswered_fetch_ends_within_the_timeout() {
    let f = fixture(CacheConfig {
        fetch_timeout: Duration::from_millis(200),
        ..CacheConfig::default()
    });
    let slow = Arc::new(Scripted {
        clock: f.clock.clone(),
        calls: Mutex::new(Vec::new()),
        failure: Mutex::new(None),
        delay: Duration::from_secs(30),
    });
    let cache = Arc::new(CredentialCache::new(
        CacheConfig {
            fetch_timeout: Duration::from_millis(200),
            ..CacheConfig::default()
        },
        ClusterIdentity {
            name: "c".into(),
            arn: None,
        },
        slow,
        Arc::new(f.clock.clone()),
        Metrics::new(),
    ));
    let chain = chain(&[], SessionTags::ServiceAccount, None);
    let claims = f.claims("slow", "pod-slow", Duration::from_secs(3600));
    let key = CacheKey::new(Arc::from("apps"), Arc::from("slow"), chain, "uid-pod-slow");
    let started = std::time::Instant::now();
    let error = cache.get(key, claims, "t").await.unwrap_err();
    assert!(matches!(error, CacheError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
