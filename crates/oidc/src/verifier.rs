//! Token verification with a per-issuer JWKS cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::{sanitize, VerifyError};
use crate::jwks::KeySet;
use crate::jwt::{self, token_fingerprint, Algorithm};
use crate::source::JwksSource;

/// Tunables of a [`Verifier`].
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Tolerance for clock differences when checking `exp`, `nbf` and `iat`. Default 5 minutes.
    pub clock_skew: Duration,
    /// Minimum time between two JWKS fetches for one issuer, whatever triggers them (first use,
    /// unknown `kid`, stale cache). Default 10 s: a flood of tokens with random `kid`s costs the
    /// issuer at most one fetch per interval.
    pub refresh_interval: Duration,
    /// After this long, cached keys are refetched on next use, so keys the issuer stopped
    /// publishing stop verifying. If the refetch fails the old keys stay in use. Default 5 min.
    pub cache_ttl: Duration,
    /// Longest token accepted, in bytes. Default 20 000, STS's limit for `WebIdentityToken`.
    pub max_token_bytes: usize,
    /// Algorithms accepted; defaults to [`Algorithm::ALL`]. HMAC and `none` cannot be added.
    pub algorithms: Vec<Algorithm>,
    /// Most issuers whose keys are cached at once. Default 256. Beyond it the issuer used
    /// least recently is forgotten (its next token fetches its keys again), so a caller that
    /// names ever new issuers cannot grow the cache without bound.
    pub max_issuers: usize,
    /// An issuer not used for this long is forgotten when another is added. Default 1 hour.
    pub idle_issuer_ttl: Duration,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            clock_skew: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(300),
            max_token_bytes: 20_000,
            algorithms: Algorithm::ALL.to_vec(),
            max_issuers: 256,
            idle_issuer_ttl: Duration::from_secs(3600),
        }
    }
}

/// A token whose signature, issuer, audience and validity period have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `iss`, equal to the expected issuer.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, as a list even when the token has a single string.
    pub audiences: Vec<String>,
    /// Every claim of the payload, including the ones above.
    pub claims: Map<String, Value>,
    /// The `kid` of the key that verified the signature.
    pub kid: String,
    /// The signature algorithm.
    pub alg: Algorithm,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `iat`, if present.
    pub issued_at: Option<SystemTime>,
    /// `nbf`, if present.
    pub not_before: Option<SystemTime>,
    /// [`token_fingerprint`] of the token, for log correlation.
    pub fingerprint: String,
}

/// Keys cached for one issuer.
#[derive(Default)]
struct IssuerCache {
    /// The last successfully fetched key set; swapped whole so readers never wait on a fetch.
    keys: RwLock<Option<Arc<CachedKeys>>>,
    /// Held while fetching, so concurrent verifications of unknown `kid`s share one fetch.
    fetch: tokio::sync::Mutex<FetchState>,
}

struct CachedKeys {
    set: KeySet,
    fetched_at: Instant,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// Verifies OIDC ID tokens / Kubernetes service-account tokens against their issuer's JWKS.
///
/// One verifier serves any number of issuers; each issuer's keys are fetched from the
/// [`JwksSource`] on first use and cached. Share it (`Arc<Verifier>`) rather than creating one
/// per request, or the cache and rate limit are lost.
pub struct Verifier {
    source: Arc<dyn JwksSource>,
    config: VerifierConfig,
    /// Each issuer's keys, with when it was last used (for [`VerifierConfig::max_issuers`]).
    issuers: Mutex<HashMap<String, (Arc<IssuerCache>, Instant)>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Reads the `iss` claim **without verifying anything**, so a caller can pick which identity
/// provider (and therefore which expected issuer and audiences) applies before calling
/// [`Verifier::verify`]. Never trust the result for anything else.
pub fn peek_issuer(token: &str) -> Result<String, VerifyError> {
    peek(token).map(|peeked| peeked.issuer)
}

/// A token decoded **without verifying anything** ([`peek`]): its `iss`, to choose the identity
/// provider, and the decoded parts [`Verifier::verify_peeked`] goes on to verify, so a caller
/// that peeks before verifying decodes the token once, not twice.
pub struct PeekedToken<'a> {
    token: &'a str,
    raw: jwt::RawJwt<'a>,
    issuer: String,
}

impl PeekedToken<'_> {
    /// The unverified `iss`: trust it for nothing but choosing what to verify against.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The unverified claims, for diagnosing a refusal (never for deciding anything).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.raw.claims
    }

    /// The unverified header's `kid`, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.raw.kid.as_deref()
    }
}

impl std::fmt::Debug for PeekedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself: it is a credential.
        f.debug_struct("PeekedToken")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Decodes `token` as [`peek_issuer`] does (the default size limit, every algorithm) and keeps
/// it for [`Verifier::verify_peeked`].
pub fn peek(token: &str) -> Result<PeekedToken<'_>, VerifyError> {
    let raw = jwt::parse(
        token,
        VerifierConfig::default().max_token_bytes,
        &Algorithm::ALL,
    )?;
    let issuer = string_claim(&raw.claims, "iss")?;
    Ok(PeekedToken { token, raw, issuer })
}

fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, VerifyError> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
        None => Err(VerifyError::MissingClaim(name)),
    }
}

/// Reads a NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, VerifyError> {
    // Year 10000: beyond it a timestamp is nonsense and risks overflow in skew arithmetic.
    const MAX_SECONDS: i64 = 253_402_300_800;
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(VerifyError::InvalidClaim(name));
    };
    let seconds = if let Some(i) = number.as_i64() {
        i
    } else {
        match number.as_f64() {
            Some(f) if f.is_finite() && f.abs() < MAX_SECONDS as f64 => f.floor() as i64,
            _ => return Err(VerifyError::InvalidClaim(name)),
        }
    };
    if seconds.abs() > MAX_SECONDS {
        return Err(VerifyError::InvalidClaim(name));
    }
    Ok(Some(seconds))
}

fn to_system_time(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

impl Verifier {
    /// A verifier with the default [`VerifierConfig`].
    pub fn new(source: impl JwksSource + 'static) -> Self {
        Self::with_config(Arc::new(source), VerifierConfig::default())
    }

    /// A verifier with explicit tunables, sharing `source` with other users.
    pub fn with_config(source: Arc<dyn JwksSource>, config: VerifierConfig) -> Self {
        Verifier {
            source,
            config,
            issuers: Mutex::new(HashMap::new()),
        }
    }

    /// The tunables in use.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Drops the cached keys of `issuer` (e.g. when its IAM OIDC provider is deleted), so its
    /// next token triggers a fresh fetch.
    pub fn forget(&self, issuer: &str) {
        self.issuers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer);
    }

    /// Verifies `token` now. See [`verify_at`](Self::verify_at).
    pub async fn verify(
        &self,
        token: &str,
        expected_issuer: &str,
        accept_audience: impl Fn(&str) -> bool,
    ) -> Result<VerifiedToken, VerifyError> {
        self.verify_at(token, expected_issuer, accept_audience, SystemTime::now())
            .await
    }

    /// Verifies `token` as of `now`.
    ///
    /// Checks, in order: shape and size; `alg` in the allow-list (before any key is looked
    /// at); `iss` exactly `expected_issuer`; the signature with the key named by `kid`
    /// (fetching the JWKS if the issuer or `kid` is new, rate-limited); `exp` (required),
    /// `nbf`, `iat` within the clock skew; `sub` present; and at least one `aud` (a string or
    /// an array) for which `accept_audience` returns true. The twin passes a closure over the
    /// IAM OIDC provider's client-ID list.
    pub async fn verify_at(
        &self,
        token: &str,
        expected_issuer: &str,
        accept_audience: impl Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<VerifiedToken, VerifyError> {
        let raw = jwt::parse(token, self.config.max_token_bytes, &self.config.algorithms)?;
        self.verify_raw(token, raw, expected_issuer, accept_audience, now)
            .await
    }

    /// Verifies a token decoded by [`peek`] at `now`, exactly as [`verify_at`](Self::verify_at)
    /// verifies it (this verifier's size limit and algorithm allow-list included, and then the issuer,
    /// the signature and every claim), without decoding it again.
    pub async fn verify_peeked(
        &self,
        peeked: PeekedToken<'_>,
        expected_issuer: &str,
        accept_audience: impl Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<VerifiedToken, VerifyError> {
        let PeekedToken { token, raw, .. } = peeked;
        // `peek` applied the default limits; these are the ones `jwt::parse` would have failed
        // with under this verifier's, in its order (the size first, then the algorithm), every
        // other check of the parse being the same.
        if token.len() > self.config.max_token_bytes {
            return Err(VerifyError::Malformed("token exceeds the size limit"));
        }
        if !self.config.algorithms.contains(&raw.alg) {
            return Err(VerifyError::UnsupportedAlgorithm(sanitize(
                raw.alg.as_str(),
            )));
        }
        self.verify_raw(token, raw, expected_issuer, accept_audience, now)
            .await
    }

    async fn verify_raw(
        &self,
        token: &str,
        raw: jwt::RawJwt<'_>,
        expected_issuer: &str,
        accept_audience: impl Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<VerifiedToken, VerifyError> {
        // Checked before touching keys: a token from another issuer must not make this verifier
        // fetch (and be rate-limited on) the expected issuer's JWKS.
        let issuer = string_claim(&raw.claims, "iss")?;
        if issuer != expected_issuer {
            return Err(VerifyError::IssuerMismatch {
                expected: expected_issuer.to_string(),
                got: sanitize(&issuer),
            });
        }
        let kid = raw.kid.clone().ok_or(VerifyError::MissingClaim("kid"))?;

        let keys = self.keys_for(expected_issuer, &kid).await?;
        keys.verify(&kid, raw.alg, raw.signing_input, raw.signature_b64)?;

        // Only an authentic token gets claim-specific errors.
        let now_s = unix_seconds(now);
        let skew = i64::try_from(self.config.clock_skew.as_secs()).unwrap_or(i64::MAX);
        let exp = time_claim(&raw.claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
        if now_s > exp.saturating_add(skew) {
            return Err(VerifyError::Expired { exp, now: now_s });
        }
        let nbf = time_claim(&raw.claims, "nbf")?;
        if let Some(nbf) = nbf {
            if nbf > now_s.saturating_add(skew) {
                return Err(VerifyError::NotYetValid { nbf, now: now_s });
            }
        }
        let iat = time_claim(&raw.claims, "iat")?;
        if let Some(iat) = iat {
            if iat > now_s.saturating_add(skew) {
                return Err(VerifyError::IssuedInFuture { iat, now: now_s });
            }
        }
        let subject = string_claim(&raw.claims, "sub")?;

        let audiences = match raw.claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(VerifyError::InvalidClaim("aud"))?,
            Some(_) => return Err(VerifyError::InvalidClaim("aud")),
            None => return Err(VerifyError::MissingClaim("aud")),
        };
        if audiences.is_empty() {
            return Err(VerifyError::MissingClaim("aud"));
        }
        if !audiences.iter().any(|aud| accept_audience(aud)) {
            return Err(VerifyError::AudienceMismatch {
                got: audiences.iter().take(8).map(|a| sanitize(a)).collect(),
            });
        }

        Ok(VerifiedToken {
            issuer,
            subject,
            audiences,
            kid,
            alg: raw.alg,
            expires_at: to_system_time(exp),
            issued_at: iat.map(to_system_time),
            not_before: nbf.map(to_system_time),
            fingerprint: token_fingerprint(token),
            claims: raw.claims,
        })
    }

    /// Makes sure `issuer`'s keys are cached, fetching them when none are (rate-limited like
    /// every fetch), and returns how many are cached. A server that verifies one issuer's
    /// tokens calls it before it reports ready, so its first request does not wait for a fetch.
    pub async fn preload(&self, issuer: &str) -> Result<usize, VerifyError> {
        let cache = self.issuer_cache(issuer);
        let cached = cache
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(keys) = cached {
            return Ok(keys.set.len());
        }
        // No key has the empty kid, so this fetches unless a fetch was just tried.
        self.keys_for(issuer, "").await.map(|keys| keys.set.len())
    }

    /// The number of issuers whose keys are cached now.
    pub fn cached_issuers(&self) -> usize {
        self.issuers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn issuer_cache(&self, issuer: &str) -> Arc<IssuerCache> {
        let now = Instant::now();
        let mut issuers = self.issuers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cache, used)) = issuers.get_mut(issuer) {
            *used = now;
            return Arc::clone(cache);
        }
        if issuers.len() >= self.config.max_issuers.max(1) {
            let ttl = self.config.idle_issuer_ttl;
            issuers.retain(|_, (_, used)| now.duration_since(*used) < ttl);
        }
        while issuers.len() >= self.config.max_issuers.max(1) {
            let oldest = issuers
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => issuers.remove(&name),
                None => break,
            };
        }
        let cache = Arc::new(IssuerCache::default());
        issuers.insert(issuer.to_string(), (Arc::clone(&cache), now));
        cache
    }

    /// Returns a key set to verify a token naming `kid`, fetching if the cache is empty, stale,
    /// or lacks `kid` — but never more than once per issuer per refresh interval.
    async fn keys_for(&self, issuer: &str, kid: &str) -> Result<Arc<CachedKeys>, VerifyError> {
        let cache = self.issuer_cache(issuer);
        let snapshot = |cache: &IssuerCache| {
            cache
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let usable = |keys: &Option<Arc<CachedKeys>>| {
            keys.as_ref().is_some_and(|k| {
                k.set.has_kid(kid) && k.fetched_at.elapsed() < self.config.cache_ttl
            })
        };

        let current = snapshot(&cache);
        if usable(&current) {
            if let Some(keys) = current {
                return Ok(keys);
            }
        }

        let mut state = cache.fetch.lock().await;
        // Another task may have fetched while this one waited for the lock.
        let current = snapshot(&cache);
        if usable(&current) {
            if let Some(keys) = current {
                return Ok(keys);
            }
        }
        let rate_limited = state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.config.refresh_interval);
        if rate_limited {
            return match (current, &state.last_error) {
                // Stale or lacking the kid, but the best available: the key set decides.
                (Some(keys), _) => Ok(keys),
                (None, Some(error)) => Err(VerifyError::JwksUnavailable(error.clone())),
                (None, None) => Err(VerifyError::JwksUnavailable(
                    "key fetch rate-limited".to_string(),
                )),
            };
        }

        state.last_attempt = Some(Instant::now());
        let fetched = self
            .source
            .fetch_jwks(issuer)
            .await
            .map_err(|e| e.to_string())
            .and_then(|document| KeySet::parse(&document));
        match fetched {
            Ok(set) => {
                state.last_error = None;
                let keys = Arc::new(CachedKeys {
                    set,
                    fetched_at: Instant::now(),
                });
                *cache.keys.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::clone(&keys));
                Ok(keys)
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                match current {
                    // A stale set that knows the kid keeps the issuer usable through an outage.
                    Some(keys) if keys.set.has_kid(kid) => Ok(keys),
                    _ => Err(VerifyError::JwksUnavailable(error)),
                }
            }
        }
    }
}

impl CachedKeys {
    fn verify(
        &self,
        kid: &str,
        alg: Algorithm,
        signing_input: &str,
        signature_b64: &str,
    ) -> Result<(), VerifyError> {
        self.set.verify(kid, alg, signing_input, signature_b64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_claims() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"a":1700000000,"b":1700000000.9,"c":"1700000000","d":1e300,"e":-5,"f":null}"#,
        )
        .unwrap();
        assert_eq!(time_claim(&claims, "a"), Ok(Some(1_700_000_000)));
        assert_eq!(time_claim(&claims, "b"), Ok(Some(1_700_000_000)));
        assert_eq!(
            time_claim(&claims, "c"),
            Err(VerifyError::InvalidClaim("c"))
        );
        assert_eq!(
            time_claim(&claims, "d"),
            Err(VerifyError::InvalidClaim("d"))
        );
        assert_eq!(time_claim(&claims, "e"), Ok(Some(-5)));
        assert_eq!(
            time_claim(&claims, "f"),
            Err(VerifyError::InvalidClaim("f"))
        );
        assert_eq!(time_claim(&claims, "zz"), Ok(None));
        assert_eq!(to_system_time(-5), UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
