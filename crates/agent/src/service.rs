//! Answering `GET /v1/credentials`: the Host check, the agent's own rate limit, the token,
//! the association, the cache. Plain functions over plain values; the HTTP glue is in
//! the `server` module.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::cache::{remaining, CacheError, CacheKey, CredentialCache};
use crate::clock::Clock;
use crate::limits::TokenBucket;
use crate::metrics::Metrics;
use crate::routes::Routes;
use crate::token::{TokenError, TokenVerifier};
use crate::upstream::Retry;

/// An answer to a credentials request: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body: the credentials, or `{"code","message"}`.
    pub body: Bytes,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl Answer {
    fn error(status: u16, code: &str, message: &str) -> Answer {
        let body = serde_json::to_vec(&ErrorBody { code, message }).unwrap_or_default();
        Answer {
            status,
            body: Bytes::from(body),
        }
    }
}

/// Which `Host` values a request may carry: the addresses the agent serves on. A request
/// through any other name (a DNS name pointing at the node, a rebinding page) is refused
/// before its token is looked at, as the EKS Pod Identity agent does.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    addresses: Vec<IpAddr>,
    any_address: bool,
}

impl AllowedHosts {
    /// Hosts for listeners on `addresses`. An unspecified address (`0.0.0.0`, `::`) accepts
    /// any IP literal, never a name.
    pub fn new(addresses: impl IntoIterator<Item = IpAddr>) -> AllowedHosts {
        let mut allowed = AllowedHosts::default();
        for address in addresses {
            if address.is_unspecified() {
                allowed.any_address = true;
            } else if !allowed.addresses.contains(&address) {
                allowed.addresses.push(address);
            }
        }
        allowed
    }

    /// Whether `host` (a `Host` header: port and IPv6 brackets are stripped) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        let bare = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => match host.rsplit_once(':') {
                // One colon: `host:port`; more: an unbracketed IPv6 literal.
                Some((name, port))
                    if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    name
                }
                _ => host,
            },
        };
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.any_address || self.addresses.contains(&ip),
            Err(_) => false,
        }
    }

    /// The addresses, for messages.
    pub fn describe(&self) -> String {
        let list: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
        if self.any_address {
            "any IP address".to_string()
        } else {
            list.join(", ")
        }
    }
}

/// Everything a credentials request needs.
pub struct CredentialService {
    /// The pod-token verifier.
    pub tokens: TokenVerifier,
    /// The associations.
    pub routes: Arc<Routes>,
    /// The shared cache.
    pub cache: Arc<CredentialCache>,
    /// The agent's own request rate limit.
    pub limiter: TokenBucket,
    /// The allowed `Host` values.
    pub hosts: AllowedHosts,
    /// The metrics.
    pub metrics: Metrics,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Longest time a request is given before it is answered with an error.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for CredentialService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialService").finish_non_exhaustive()
    }
}

impl CredentialService {
    /// Answers one request whose `Host` and `Authorization` headers are given, and counts it.
    pub async fn answer(&self, host: Option<&str>, authorization: Option<&[u8]>) -> Answer {
        let answer =
            match tokio::time::timeout(self.request_timeout, self.resolve(host, authorization))
                .await
            {
                Ok(answer) => answer,
                Err(_) => Answer::error(
                    504,
                    crate::upstream::TIMEOUT,
                    "the credentials could not be fetched in time; retry",
                ),
            };
        self.metrics.request(answer.status);
        answer
    }

    async fn resolve(&self, host: Option<&str>, authorization: Option<&[u8]>) -> Answer {
        let host = host.unwrap_or("");
        if !self.hosts.allows(host) {
            return Answer::error(
                403,
                "AccessDenied",
                &format!(
                    "Called agent through invalid address, please use {} not {:?}",
                    self.hosts.describe(),
                    oidc::sanitize(host)
                ),
            );
        }
        if !self.limiter.try_acquire() {
            return Answer::error(
                429,
                "TooManyRequests",
                "Too Many Requests: the agent's rate limit",
            );
        }
        let token = match authorization.map(std::str::from_utf8) {
            None => {
                return Answer::error(
                    400,
                    "InvalidRequest",
                    "Service account token cannot be empty: send the pod's token in the Authorization header",
                )
            }
            Some(Err(_)) => {
                return Answer::error(400, "InvalidRequest", "the Authorization header is not UTF-8")
            }
            Some(Ok(token)) => token.trim(),
        };
        if token.is_empty() {
            return Answer::error(
                400,
                "InvalidRequest",
                "Service account token cannot be empty: send the pod's token in the Authorization header",
            );
        }
        let claims = match self.tokens.verify(token).await {
            Ok(claims) => claims,
            Err(error) => return token_refusal(&error),
        };
        let Some(route) = self
            .routes
            .route(&claims.namespace, &claims.service_account)
        else {
            return Answer::error(
                404,
                "ResourceNotFoundException",
                &format!(
                    "no association for service account {}/{} in the agent's association file (and --eks-auth is off)",
                    claims.namespace, claims.service_account
                ),
            );
        };
        let key = CacheKey::new(
            route.namespace,
            route.service_account,
            route.chain,
            &claims.pod.uid,
        );
        match self.cache.get(key, Arc::clone(&claims), token).await {
            Ok(served) => {
                self.metrics.served(remaining(&served, self.clock.now()));
                Answer {
                    status: 200,
                    body: served.body.clone(),
                }
            }
            Err(error) => upstream_refusal(&error),
        }
    }
}

fn token_refusal(error: &TokenError) -> Answer {
    if error.is_unavailable() {
        return Answer::error(
            503,
            "IssuerUnavailable",
            "the cluster's OIDC keys could not be fetched to verify the token; retry",
        );
    }
    if error.is_malformed() {
        return Answer::error(
            400,
            "InvalidRequest",
            &format!("Service account token cannot be parsed: {error}"),
        );
    }
    let code = match error {
        TokenError::Invalid(oidc::VerifyError::Expired { .. }) => "ExpiredTokenException",
        _ => "InvalidTokenException",
    };
    Answer::error(403, code, &error.to_string())
}

fn upstream_refusal(error: &CacheError) -> Answer {
    match error {
        CacheError::Timeout(after) => Answer::error(
            504,
            crate::upstream::TIMEOUT,
            &format!("upstream did not answer within {after:?}; retry"),
        ),
        CacheError::Upstream(failure) => {
            let message = failure.to_string();
            match failure.error.retry {
                // Upstream's own refusal, with its code and status.
                Retry::Never => Answer::error(
                    failure
                        .error
                        .status
                        .filter(|s| (400..500).contains(s))
                        .unwrap_or(403),
                    &failure.error.code,
                    &message,
                ),
                // Upstream too slow: a gateway timeout, as when the agent's own clock runs out.
                Retry::Later if failure.error.code == crate::upstream::TIMEOUT => {
                    Answer::error(504, &failure.error.code, &message)
                }
                Retry::Later => Answer::error(503, &failure.error.code, &message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_the_bound_addresses_without_port_or_brackets() {
        let hosts = AllowedHosts::new([
            "169.254.170.23".parse().unwrap(),
            "fd00:ec2::23".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ]);
        for ok in [
            "169.254.170.23",
            "169.254.170.23:80",
            "[fd00:ec2::23]:80",
            "[fd00:ec2::23]",
            "fd00:ec2::23",
            "127.0.0.1:4321",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "evil.example:80",
            "169.254.170.24",
            "[::1]:80",
            "127.0.0.1.nip.io",
            "127.0.0.1:80:80",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let any = AllowedHosts::new(["0.0.0.0".parse().unwrap()]);
        assert!(any.allows("10.1.2.3:80"));
        assert!(!any.allows("node.example"));
    }
}
