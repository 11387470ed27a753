//! The shared credential cache: one entry per set of identical credentials, single flight on
//! misses, renewal ahead of expiry, static stability through upstream failures, bounded size,
//! and entries of pods that are gone dropped instead of renewed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::associations::{Chain, SessionTags, Start};
use crate::chain::{resolve, ChainError, ChainRequest};
use crate::clock::{until, Clock};
use crate::credentials::Credentials;
use crate::limits::{backoff, random_unit};
use crate::metrics::{Eviction, Metrics};
use crate::token::PodClaims;
use crate::upstream::{Retry, Upstream};

/// Tunables of the cache.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most entries at once; beyond it the least recently asked for is dropped. Default 10 000.
    pub max_entries: usize,
    /// Credentials are handed out only with at least this much left (botocore renews container
    /// credentials 15 minutes before expiry). Credentials shorter-lived than twice this are
    /// handed out while half their lifetime is left. Default 15 minutes.
    pub min_remaining: Duration,
    /// Renewal starts this long before credentials fall below `min_remaining` (capped at a
    /// quarter of their lifetime), so retries have time. Default 5 minutes.
    pub refresh_lead: Duration,
    /// Up to this much earlier still, at random, so entries fetched together do not all renew
    /// together (capped at an eighth of the lifetime). Default 5 minutes.
    pub refresh_jitter: Duration,
    /// An entry nobody asked for within this long is dropped and no longer renewed. An SDK asks
    /// again when its credentials have 15 minutes left, at most 45 minutes after it was given
    /// one-hour credentials. Default 50 minutes.
    pub idle_ttl: Duration,
    /// First wait after a failed renewal; doubled per failure. Default 1 s.
    pub backoff_initial: Duration,
    /// Longest wait between renewal attempts. Default 60 s.
    pub backoff_max: Duration,
    /// When upstream fails, cached credentials are still served while they have at least this
    /// long left. Default 60 s.
    pub stale_margin: Duration,
    /// How long a request waits for upstream before it is answered with an error. Default 10 s.
    pub fetch_timeout: Duration,
    /// A rehearsal knob: credentials are treated, and handed out, as expiring at most this
    /// long after they were fetched, so renewals (and the SDKs' own refreshes) happen within
    /// seconds instead of an hour. STS's sessions stay as long as they are. Default: off.
    pub max_lifetime: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            min_remaining: Duration::from_secs(15 * 60),
            refresh_lead: Duration::from_secs(5 * 60),
            refresh_jitter: Duration::from_secs(5 * 60),
            idle_ttl: Duration::from_secs(50 * 60),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stale_margin: Duration::from_secs(60),
            max_lifetime: None,
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything that decides a set of credentials. The cluster is the agent's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The pod's namespace.
    pub namespace: Arc<str>,
    /// Its service account.
    pub service_account: Arc<str>,
    /// The chain its association gives.
    pub chain: Arc<Chain>,
    /// The pod's uid, when the credentials are the pod's own: pod-level session tags, or an
    /// EKS Auth start (EKS Auth tags its sessions with the pod).
    pub pod_uid: Option<Arc<str>>,
}

impl CacheKey {
    /// The key of the pod `pod_uid` of `namespace`/`service_account` under `chain`.
    pub fn new(
        namespace: Arc<str>,
        service_account: Arc<str>,
        chain: Arc<Chain>,
        pod_uid: &str,
    ) -> CacheKey {
        let per_pod = chain.session_tags == SessionTags::Pod || chain.start == Start::EksAuth;
        CacheKey {
            namespace,
            service_account,
            pod_uid: per_pod.then(|| Arc::from(pod_uid)),
            chain,
        }
    }
}

/// What the cache keeps of a set of credentials besides their wire body: who and until when.
/// The secret and the session token live only in the body, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `AccessKeyId` (not a secret: it is in every signed request and CloudTrail).
    pub access_key_id: String,
    /// The account of the chain's last role.
    pub account_id: String,
    /// When they stop working.
    pub expiration: SystemTime,
}

/// Credentials ready to hand out, with their wire body rendered once.
#[derive(Debug)]
pub struct Served {
    /// Which credentials, and until when.
    pub credentials: Issued,
    /// Their `/v1/credentials` JSON body.
    pub body: Bytes,
    /// Below this much lifetime left they are renewed before being handed out.
    floor: Duration,
}

/// Why a request got no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// Upstream refused or failed, and nothing valid was cached.
    #[error(transparent)]
    Upstream(#[from] ChainError),
    /// Upstream did not answer within the request's time.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
}

impl CacheError {
    /// Whether the same request may succeed later.
    pub fn retry(&self) -> Retry {
        match self {
            CacheError::Upstream(e) => e.error.retry,
            CacheError::Timeout(_) => Retry::Later,
        }
    }
}

type Outcome = Result<Arc<Served>, CacheError>;

/// What became of one resolution of a service account's chain: told to the
/// [`CredentialCache::on_resolved`] hook (`rolechain agent --kubernetes` writes it into the
/// RoleChainAssociation's status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The namespace.
    pub namespace: Arc<str>,
    /// The service account.
    pub service_account: Arc<str>,
    /// `Ok`, or what upstream answered.
    pub result: Result<(), String>,
}

/// Told every [`Resolution`]; must not block.
pub type ResolutionHook = Arc<dyn Fn(Resolution) + Send + Sync>;

/// The newest verified token seen for an entry: what renewals are made with.
#[derive(Debug, Clone)]
struct NewestToken {
    token: Arc<str>,
    claims: Arc<PodClaims>,
}

#[derive(Debug)]
struct EntryState {
    served: Option<Arc<Served>>,
    token: NewestToken,
    last_requested: SystemTime,
    refresh_at: SystemTime,
    failures: u32,
    retry_at: SystemTime,
    /// Bumped by every completed fetch, so a waiter can tell that one finished while it waited.
    generation: u64,
    last_outcome: Option<Outcome>,
}

#[derive(Debug)]
struct Entry {
    key: Arc<CacheKey>,
    state: Mutex<EntryState>,
    /// Held while a fetch for this entry runs: concurrent misses make one upstream chain.
    flight: Arc<tokio::sync::Mutex<()>>,
}

impl Entry {
    fn lock(&self) -> std::sync::MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one pass of [`CredentialCache::refresh_pass`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshReport {
    /// Entries renewed.
    pub refreshed: usize,
    /// Renewals that failed (to be retried with backoff).
    pub failed: usize,
    /// Entries dropped.
    pub dropped: usize,
}

/// The cluster a cache's credentials are for.
#[derive(Debug, Clone)]
pub struct ClusterIdentity {
    /// Its name.
    pub name: String,
    /// Its ARN, for the `eks-cluster-arn` session tag, when known.
    pub arn: Option<String>,
}

/// The shared cache. Cheap to share: wrap it in an `Arc`.
pub struct CredentialCache {
    config: CacheConfig,
    cluster: ClusterIdentity,
    upstream: Arc<dyn Upstream>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    entries: RwLock<HashMap<Arc<CacheKey>, Arc<Entry>>>,
    on_resolved: RwLock<Option<ResolutionHook>>,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("config", &self.config)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    /// An empty cache resolving chains of `cluster` through `upstream`.
    pub fn new(
        config: CacheConfig,
        cluster: ClusterIdentity,
        upstream: Arc<dyn Upstream>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> CredentialCache {
        CredentialCache {
            config,
            cluster,
            upstream,
            clock,
            metrics,
            entries: RwLock::new(HashMap::new()),
            on_resolved: RwLock::new(None),
        }
    }

    /// Tells `hook` what each resolution of a chain (a fetch or a renewal) ended with.
    pub fn on_resolved(&self, hook: ResolutionHook) {
        *self
            .on_resolved
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Credentials for the pod of `claims` (whose token, `token`, has just been verified)
    /// under `key`: from the cache when they have enough life left, else from upstream (one
    /// chain for all concurrent requests of the key). When upstream fails with an error that
    /// retrying may fix, cached credentials that are still valid are served.
    pub async fn get(
        self: &Arc<Self>,
        key: CacheKey,
        claims: Arc<PodClaims>,
        token: &str,
    ) -> Result<Arc<Served>, CacheError> {
        let now = self.clock.now();
        let entry = self.entry(key, &claims, token, now);
        let (fresh, backing_off, generation) = {
            let mut state = entry.lock();
            state.last_requested = now;
            if claims.expires_at > state.token.claims.expires_at {
                state.token = NewestToken {
                    token: Arc::from(token),
                    claims: Arc::clone(&claims),
                };
            }
            let fresh = state
                .served
                .as_ref()
                .filter(|s| until(now, s.credentials.expiration) >= s.floor)
                .cloned();
            // Renewal failed lately and waits out its backoff: requests wait with it, served
            // what is cached while it is valid, rather than each calling upstream.
            let backing_off = (now < state.retry_at)
                .then(|| state.served.clone())
                .flatten()
                .filter(|s| until(now, s.credentials.expiration) >= self.config.stale_margin);
            (fresh, backing_off, state.generation)
        };
        if let Some(served) = fresh {
            self.metrics.hits.inc();
            return Ok(served);
        }
        if let Some(served) = backing_off {
            self.metrics.stale_served.inc();
            return Ok(served);
        }
        self.metrics.misses.inc();
        let fetch = tokio::spawn(Arc::clone(self).fetch(Arc::clone(&entry), Some(generation)));
        let outcome = match tokio::time::timeout(self.config.fetch_timeout, fetch).await {
            Ok(Ok(outcome)) => outcome,
            // The fetch task panicked: treat as an upstream failure worth retrying.
            Ok(Err(_)) => Err(CacheError::Timeout(self.config.fetch_timeout)),
            Err(_) => Err(CacheError::Timeout(self.config.fetch_timeout)),
        };
        match outcome {
            Ok(served) => Ok(served),
            Err(error) if error.retry() == Retry::Later => {
                let now = self.clock.now();
                let stale = entry
                    .lock()
                    .served
                    .as_ref()
                    .filter(|s| until(now, s.credentials.expiration) >= self.config.stale_margin)
                    .cloned();
                match stale {
                    Some(served) => {
                        self.metrics.stale_served.inc();
                        tracing::warn!(
                            namespace = %entry.key.namespace,
                            service_account = %entry.key.service_account,
                            error = %error,
                            "upstream failed; serving cached credentials while they are valid"
                        );
                        Ok(served)
                    }
                    None => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// One pass of the renewer: drops entries nobody asked for within the idle time and
    /// entries that can no longer be renewed, and renews, in parallel, the entries whose
    /// renewal time has come (and whose last failure's backoff has passed). Returns when every
    /// renewal it started has finished.
    pub async fn refresh_pass(self: &Arc<Self>) -> RefreshReport {
        let now = self.clock.now();
        let entries: Vec<Arc<Entry>> = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut report = RefreshReport::default();
        let mut renewals = Vec::new();
        for entry in entries {
            let verdict = {
                let state = entry.lock();
                let token_valid = state.token.claims.expires_at > now;
                let creds_valid = state
                    .served
                    .as_ref()
                    .is_some_and(|s| s.credentials.expiration > now);
                if until(state.last_requested, now) >= self.config.idle_ttl {
                    Some(Eviction::Idle)
                } else if !creds_valid && !token_valid {
                    Some(Eviction::Expired)
                } else if state.served.is_some()
                    && token_valid
                    && now >= state.refresh_at
                    && now >= state.retry_at
                {
                    None
                } else {
                    continue;
                }
            };
            match verdict {
                Some(reason) => {
                    self.remove(&entry, reason);
                    report.dropped += 1;
                }
                None => {
                    // Skip an entry a request is already fetching.
                    if entry.flight.try_lock().is_err() {
                        continue;
                    }
                    renewals.push(tokio::spawn(
                        Arc::clone(self).fetch(Arc::clone(&entry), None),
                    ));
                }
            }
        }
        for renewal in renewals {
            match renewal.await {
                Ok(Ok(_)) => {
                    report.refreshed += 1;
                    self.metrics.refresh(true);
                }
                _ => {
                    report.failed += 1;
                    self.metrics.refresh(false);
                }
            }
        }
        report
    }

    /// Drops every entry whose chain is not one of `chains` (after the association file
    /// changed); entries of unchanged chains stay, with their credentials.
    pub fn retain_chains(&self, keep: impl Fn(&CacheKey) -> bool) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        entries.retain(|key, _| keep(key));
        let dropped = before - entries.len();
        for _ in 0..dropped {
            self.metrics.evicted(Eviction::Reconfigured);
        }
        self.metrics.entries.set(entries.len() as i64);
        dropped
    }

    fn entry(
        &self,
        key: CacheKey,
        claims: &Arc<PodClaims>,
        token: &str,
        now: SystemTime,
    ) -> Arc<Entry> {
        if let Some(entry) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Arc::clone(entry);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&key) {
            return Arc::clone(entry);
        }
        while entries.len() >= self.config.max_entries.max(1) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.lock().last_requested)
                .map(|(k, _)| Arc::clone(k));
            match oldest {
                Some(oldest) => {
                    entries.remove(&oldest);
                    self.metrics.evicted(Eviction::Capacity);
                }
                None => break,
            }
        }
        let key = Arc::new(key);
        let entry = Arc::new(Entry {
            key: Arc::clone(&key),
            state: Mutex::new(EntryState {
                served: None,
                token: NewestToken {
                    token: Arc::from(token),
                    claims: Arc::clone(claims),
                },
                last_requested: now,
                refresh_at: now,
                failures: 0,
                retry_at: now,
                generation: 0,
                last_outcome: None,
            }),
            flight: Arc::new(tokio::sync::Mutex::new(())),
        });
        entries.insert(key, Arc::clone(&entry));
        self.metrics.entries.set(entries.len() as i64);
        entry
    }

    fn remove(&self, entry: &Arc<Entry>, reason: Eviction) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        // Only this entry: a newer one may have taken its key since.
        if entries
            .get(&entry.key)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            entries.remove(&entry.key);
            self.metrics.evicted(reason);
            self.metrics.entries.set(entries.len() as i64);
        }
    }

    /// Fetches `entry`'s chain under its flight lock and stores the outcome. A waiter that saw
    /// generation `seen` takes the outcome of a fetch that completed while it waited instead
    /// of making another (so a refusal, too, costs one upstream chain for all its waiters).
    async fn fetch(self: Arc<Self>, entry: Arc<Entry>, seen: Option<u64>) -> Outcome {
        let _flight = Arc::clone(&entry.flight).lock_owned().await;
        let token = {
            let state = entry.lock();
            if let Some(seen) = seen {
                if state.generation != seen {
                    if let Some(outcome) = &state.last_outcome {
                        return outcome.clone();
                    }
                }
            }
            state.token.clone()
        };
        let request = ChainRequest {
            cluster_name: &self.cluster.name,
            cluster_arn: self.cluster.arn.as_deref(),
            claims: &token.claims,
            token: &token.token,
        };
        let result = resolve(self.upstream.as_ref(), &entry.key.chain, request).await;
        let now = self.clock.now();
        let outcome: Outcome = match result {
            Ok(credentials) => Ok(Arc::new(self.serve(credentials, now))),
            Err(error) => Err(CacheError::Upstream(error)),
        };
        let refused = {
            let mut state = entry.lock();
            state.generation += 1;
            state.last_outcome = Some(outcome.clone());
            match &outcome {
                Ok(served) => {
                    state.refresh_at = self.refresh_time(served, now);
                    state.failures = 0;
                    state.retry_at = now;
                    state.served = Some(Arc::clone(served));
                    false
                }
                Err(error) if error.retry() == Retry::Later => {
                    state.failures += 1;
                    state.retry_at = now
                        + backoff(
                            state.failures,
                            self.config.backoff_initial,
                            self.config.backoff_max,
                        );
                    false
                }
                Err(_) => {
                    state.served = None;
                    true
                }
            }
        };
        match &outcome {
            Ok(served) => tracing::info!(
                namespace = %entry.key.namespace,
                service_account = %entry.key.service_account,
                links = entry.key.chain.len(),
                account = %served.credentials.account_id,
                access_key_id = %served.credentials.access_key_id,
                expires_in_s = until(now, served.credentials.expiration).as_secs(),
                token = %token.claims.fingerprint,
                "chain resolved"
            ),
            Err(error) => tracing::warn!(
                namespace = %entry.key.namespace,
                service_account = %entry.key.service_account,
                token = %token.claims.fingerprint,
                error = %error,
                "chain failed"
            ),
        }
        let hook = self
            .on_resolved
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(Resolution {
                namespace: Arc::clone(&entry.key.namespace),
                service_account: Arc::clone(&entry.key.service_account),
                result: outcome.as_ref().map(|_| ()).map_err(ToString::to_string),
            });
        }
        if refused {
            // A refusal is final for this chain: drop its credentials and its entry, so the
            // next request asks upstream again rather than being served from the cache.
            self.remove(&entry, Eviction::Refused);
        }
        outcome
    }

    fn serve(&self, mut credentials: Credentials, now: SystemTime) -> Served {
        if let Some(max) = self.config.max_lifetime {
            credentials.expiration = credentials.expiration.min(now + max);
        }
        let lifetime = until(now, credentials.expiration);
        let floor = self.config.min_remaining.min(lifetime / 2);
        Served {
            body: Bytes::from(credentials.to_wire_json()),
            credentials: Issued {
                access_key_id: credentials.access_key_id,
                account_id: credentials.account_id,
                expiration: credentials.expiration,
            },
            floor,
        }
    }

    /// When to renew `served`, fetched at `now`: before it falls below its floor, with time
    /// for retries, jittered.
    fn refresh_time(&self, served: &Served, now: SystemTime) -> SystemTime {
        let lifetime = until(now, served.credentials.expiration);
        let lead = self.config.refresh_lead.min(lifetime / 4);
        let jitter = self
            .config
            .refresh_jitter
            .min(lifetime / 8)
            .mul_f64(random_unit());
        served
            .credentials
            .expiration
            .checked_sub(served.floor + lead + jitter)
            .unwrap_or(now)
            .max(now)
    }
}

/// For the metrics: the lifetime left of credentials handed out now.
pub fn remaining(served: &Served, now: SystemTime) -> Duration {
    until(now, served.credentials.expiration)
}
