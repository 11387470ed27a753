//! Pod tokens: verified locally on every request, against the cluster's issuer, with a cache of
//! tokens already verified (keyed by the token's SHA-256, valid until the token's `exp`) so the
//! hot path costs a hash and a lookup, not a signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use oidc::{VerifiedToken, Verifier, VerifyError};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::session::PodIdentity;

/// What a verified pod token says about the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodClaims {
    /// `kubernetes.io.namespace`.
    pub namespace: String,
    /// `kubernetes.io.serviceaccount.name`.
    pub service_account: String,
    /// `kubernetes.io.pod`: the token is bound to this pod.
    pub pod: PodIdentity,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `nbf`, when present.
    pub not_before: Option<SystemTime>,
    /// A short hash of the token, for logs (never the token).
    pub fingerprint: String,
}

/// Why a token gets no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Signature, issuer, audience, validity period, algorithm or shape.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// A valid token that names no pod (`kubernetes.io.pod`): a token from `kubectl create
    /// token` without `--bound-object-kind Pod`, or a legacy secret token.
    #[error("the token is not bound to a pod (no kubernetes.io.pod claim)")]
    NotPodBound,
    /// A Kubernetes claim is missing or disagrees with `sub`.
    #[error("the token's {0} claim is missing or inconsistent")]
    BadClaim(&'static str),
}

impl TokenError {
    /// True when the issuer's keys could not be fetched: the token may be fine, so the answer
    /// is "unavailable", not "forbidden".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::Invalid(VerifyError::JwksUnavailable(_)))
    }

    /// True when the token is not even a JWT: the request is malformed (400), not forbidden.
    pub fn is_malformed(&self) -> bool {
        matches!(self, TokenError::Invalid(VerifyError::Malformed(_)))
    }
}

/// Verifies pod tokens of one issuer and one audience.
pub struct TokenVerifier {
    verifier: Verifier,
    issuer: String,
    audience: String,
    skew: Duration,
    clock: Arc<dyn Clock>,
    max_cached: usize,
    verified: Mutex<HashMap<[u8; 32], Arc<PodClaims>>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier of `issuer`'s tokens for `audience`, remembering at most `max_cached`
    /// verified tokens. `verifier` is configured with the clock skew allowed.
    pub fn new(
        verifier: Verifier,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        clock: Arc<dyn Clock>,
        max_cached: usize,
    ) -> TokenVerifier {
        let skew = verifier.config().clock_skew;
        TokenVerifier {
            verifier,
            issuer: issuer.into(),
            audience: audience.into(),
            skew,
            clock,
            max_cached: max_cached.max(1),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Fetches the issuer's keys if none are cached; the agent is ready once this succeeds.
    pub async fn preload(&self) -> Result<usize, VerifyError> {
        self.verifier.preload(&self.issuer).await
    }

    /// How many verified tokens are remembered now.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    /// Verifies `token` as of the clock's now: from the cache when this exact token was
    /// verified before and is still within its validity period, else in full.
    pub async fn verify(&self, token: &str) -> Result<Arc<PodClaims>, TokenError> {
        let now = self.clock.now();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let hit = self.lock().get(&digest).cloned();
        if let Some(claims) = hit {
            if claims.expires_at + self.skew >= now {
                if claims.not_before.is_some_and(|nbf| nbf > now + self.skew) {
                    return Err(TokenError::Invalid(VerifyError::NotYetValid {
                        nbf: unix(claims.not_before.unwrap_or(now)),
                        now: unix(now),
                    }));
                }
                return Ok(claims);
            }
            self.lock().remove(&digest);
            return Err(TokenError::Invalid(VerifyError::Expired {
                exp: unix(claims.expires_at),
                now: unix(now),
            }));
        }
        let verified = self
            .verifier
            .verify_at(token, &self.issuer, |aud| aud == self.audience, now)
            .await?;
        let claims = Arc::new(pod_claims(&verified)?);
        let mut cache = self.lock();
        if cache.len() >= self.max_cached {
            cache.retain(|_, c| c.expires_at + self.skew >= now);
            // Still full of live tokens: forget an arbitrary half rather than grow.
            if cache.len() >= self.max_cached {
                let drop: Vec<[u8; 32]> = cache.keys().take(cache.len() / 2 + 1).copied().collect();
                for key in drop {
                    cache.remove(&key);
                }
            }
        }
        cache.insert(digest, Arc::clone(&claims));
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<PodClaims>>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The pod, namespace and service account of a verified token, requiring the token to be
/// pod-bound and its `kubernetes.io` claims to agree with `sub`.
pub fn pod_claims(token: &VerifiedToken) -> Result<PodClaims, TokenError> {
    let k8s = token
        .claims
        .get("kubernetes.io")
        .and_then(Value::as_object)
        .ok_or(TokenError::BadClaim("kubernetes.io"))?;
    let text = |value: Option<&Value>, name: &'static str| -> Result<String, TokenError> {
        value
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or(TokenError::BadClaim(name))
    };
    let namespace = text(k8s.get("namespace"), "kubernetes.io.namespace")?;
    let service_account = text(
        k8s.get("serviceaccount").and_then(|sa| sa.get("name")),
        "kubernetes.io.serviceaccount.name",
    )?;
    if token.subject != format!("system:serviceaccount:{namespace}:{service_account}") {
        return Err(TokenError::BadClaim("sub"));
    }
    let pod = k8s.get("pod").ok_or(TokenError::NotPodBound)?;
    let pod = PodIdentity {
        name: text(pod.get("name"), "kubernetes.io.pod.name")?,
        uid: text(pod.get("uid"), "kubernetes.io.pod.uid")?,
    };
    Ok(PodClaims {
        namespace,
        service_account,
        pod,
        expires_at: token.expires_at,
        not_before: token.not_before,
        fingerprint: token.fingerprint.clone(),
    })
}
