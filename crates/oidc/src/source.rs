//! Where an issuer's JWKS comes from: over HTTP via OIDC discovery, or from this process.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use crate::error::{sanitize, SourceError};

/// A boxed future, so [`JwksSource`] stays object-safe (`Arc<dyn JwksSource>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Produces the current JWKS document of an issuer.
///
/// [`Verifier`](crate::Verifier) calls this at most once per issuer per refresh interval, and
/// caches the parsed keys, so implementations need no caching of their own.
pub trait JwksSource: Send + Sync {
    /// Fetches the JWKS (`{"keys": [...]}` JSON bytes) of `issuer`.
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>>;
}

impl<T: JwksSource + ?Sized> JwksSource for Arc<T> {
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        (**self).fetch_jwks(issuer)
    }
}

/// JWKS documents held in memory, for issuers this process serves itself (the twin's local
/// clusters) and for tests. Documents can be replaced at any time, e.g. after a key rotation.
#[derive(Debug, Default)]
pub struct StaticSource {
    documents: RwLock<HashMap<String, Vec<u8>>>,
}

impl StaticSource {
    /// An empty source: every issuer is unknown until [`insert`](Self::insert)ed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes (or replaces) `issuer`'s JWKS document.
    pub fn insert(&self, issuer: impl Into<String>, jwks: impl Into<Vec<u8>>) {
        let mut documents = self
            .documents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        documents.insert(issuer.into(), jwks.into());
    }

    /// Stops publishing `issuer`'s keys.
    pub fn remove(&self, issuer: &str) {
        let mut documents = self
            .documents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        documents.remove(issuer);
    }
}

impl JwksSource for StaticSource {
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        let documents = self
            .documents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = documents
            .get(issuer)
            .cloned()
            .ok_or_else(|| SourceError::UnknownIssuer(sanitize(issuer)));
        Box::pin(std::future::ready(result))
    }
}

/// Which certificate authorities vouch for an `https://` issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsTrust {
    /// `https://` is refused: only plain `http://` issuers (the twin's own, on loopback).
    #[default]
    Disabled,
    /// The system's root certificates (as `rustls-native-certs` finds them), as for any
    /// public issuer such as EKS's `oidc.eks.REGION.amazonaws.com`.
    System,
    /// Only these root certificates (DER), for a cluster whose issuer has a private CA.
    Roots(Vec<Vec<u8>>),
}

/// Limits for [`HttpSource`].
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    /// How long establishing a TCP connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// How long one request may take end to end, body included. Default 10 s.
    pub request_timeout: Duration,
    /// Largest response body accepted (discovery document or JWKS). Default 256 KiB, far above
    /// any real JWKS, small enough that a hostile issuer cannot exhaust memory.
    pub max_body_bytes: usize,
    /// Whether and how `https://` issuers are trusted. Default [`TlsTrust::Disabled`].
    pub tls: TlsTrust,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        HttpSourceConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 256 * 1024,
            tls: TlsTrust::Disabled,
        }
    }
}

/// Fetches JWKS by OIDC discovery: `GET {issuer}/.well-known/openid-configuration`, check its
/// `issuer`, then `GET` its `jwks_uri`.
///
/// `http://` always; `https://` when [`HttpSourceConfig::tls`] trusts some roots (rustls on
/// aws-lc, TLS 1.2 and 1.3), else such URLs fail with [`SourceError::UnsupportedScheme`].
/// Redirects are not followed.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    config: HttpSourceConfig,
}

impl Default for HttpSource {
    fn default() -> Self {
        Self::new(HttpSourceConfig::default())
    }
}

/// The TLS client configuration for `trust`: its roots, aws-lc's algorithms.
fn tls_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, SourceError> {
    let tls_error = |detail: String| SourceError::Tls(detail);
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        TlsTrust::Disabled => {}
        TlsTrust::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(tls_error(
                    "no system root certificates were found (install the CA bundle, or give the issuer's CA)".to_string(),
                ));
            }
        }
        TlsTrust::Roots(ders) => {
            for der in ders {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| tls_error(format!("a root certificate is not usable: {e}")))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl HttpSource {
    /// A source with the given limits. Needs a Tokio runtime when used, not when built.
    ///
    /// # Panics
    ///
    /// Never for [`TlsTrust::Disabled`]; use [`try_new`](Self::try_new) for the others.
    pub fn new(config: HttpSourceConfig) -> Self {
        match Self::try_new(config) {
            Ok(source) => source,
            // Only reachable with roots given; the default configuration always builds.
            Err(e) => panic!("the JWKS source cannot be built: {e}"),
        }
    }

    /// A source with the given limits, or why its TLS roots are unusable.
    ///
    /// # Errors
    ///
    /// [`SourceError::Tls`] when [`TlsTrust::System`] finds no root certificate or a
    /// [`TlsTrust::Roots`] certificate does not parse.
    pub fn try_new(config: HttpSourceConfig) -> Result<Self, SourceError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&config.tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HttpSource { client, config })
    }

    /// Fetches `issuer`'s discovery document and returns its `jwks_uri`.
    pub async fn discover(&self, issuer: &str) -> Result<String, SourceError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let bad = |detail: &str| SourceError::BadDocument {
            url: url.clone(),
            detail: detail.to_string(),
        };
        let doc: Value = serde_json::from_slice(&body).map_err(|_| bad("not JSON"))?;
        // OIDC Discovery §4.3: the document's issuer must be exactly the issuer it was fetched
        // for, or a compromised path could vouch keys for another issuer.
        match doc.get("issuer").and_then(Value::as_str) {
            Some(got) if got == issuer => {}
            Some(got) => {
                return Err(bad(&format!(
                    "issuer {:?} does not match {:?}",
                    sanitize(got),
                    sanitize(issuer)
                )))
            }
            None => return Err(bad("no issuer")),
        }
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad("no jwks_uri"))
    }

    /// `GET url`, requiring status 200 and a body within the size cap.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, SourceError> {
        let uri = parse_url(url, self.config.tls != TlsTrust::Disabled)?;
        let request = Request::get(uri)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "rolechain-oidc")
            .body(Empty::<Bytes>::new())
            .map_err(|e| SourceError::InvalidUrl {
                url: sanitize(url),
                reason: e.to_string(),
            })?;
        let limit = self.config.max_body_bytes;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| SourceError::Request {
                        url: url.to_string(),
                        detail: error_chain(&e),
                    })?;
            if response.status() != StatusCode::OK {
                return Err(SourceError::Status {
                    url: url.to_string(),
                    status: response.status().as_u16(),
                });
            }
            let too_large = || SourceError::TooLarge {
                url: url.to_string(),
                limit,
            };
            // Refuse early when the server announces an oversized body; `Limited` below still
            // enforces the cap for chunked or lying responses.
            if let Some(len) = response
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                if len > limit as u64 {
                    return Err(too_large());
                }
            }
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_large()
                    } else {
                        SourceError::Request {
                            url: url.to_string(),
                            detail: e.to_string(),
                        }
                    }
                })?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .map_err(|_| SourceError::Timeout {
                url: url.to_string(),
                millis: self.config.request_timeout.as_millis(),
            })?
    }
}

impl JwksSource for HttpSource {
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            let jwks_uri = self.discover(issuer).await?;
            self.get(&jwks_uri).await
        })
    }
}

/// Parses `url`, accepting absolute `http://` URLs with a host, and `https://` ones when
/// `https` is on.
fn parse_url(url: &str, https: bool) -> Result<Uri, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidUrl {
        url: sanitize(url),
        reason: reason.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if https => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(SourceError::UnsupportedScheme {
                url: sanitize(url),
                reason: "https is not enabled for this JWKS source (no TLS roots are trusted); \
                         serve the issuer over http:// or trust its CA",
            })
        }
        _ => {
            return Err(invalid(
                "only absolute http:// or https:// URLs are supported",
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

/// Renders an error and its sources: hyper's top-level client errors ("client error (Connect)")
/// say nothing useful without the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_when_trusted() {
        assert!(parse_url("http://127.0.0.1:8080/keys", false).is_ok());
        let eks = "https://oidc.eks.us-east-1.amazonaws.com/id/X";
        let https = parse_url(eks, false).unwrap_err();
        assert!(matches!(https, SourceError::UnsupportedScheme { .. }));
        assert!(https.to_string().contains("https is not enabled"));
        assert!(parse_url(eks, true).is_ok());
        for bad in ["ftp://x/", "/relative", "", "http://", "not a url"] {
            assert!(
                matches!(parse_url(bad, true), Err(SourceError::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn static_source_serves_what_was_inserted() {
        let source = StaticSource::new();
        assert!(matches!(
            source.fetch_jwks("http://a").await,
            Err(SourceError::UnknownIssuer(_))
        ));
        source.insert("http://a", br#"{"keys":[]}"#.to_vec());
        assert_eq!(
            source.fetch_jwks("http://a").await.unwrap(),
            br#"{"keys":[]}"#
        );
        source.remove("http://a");
        assert!(source.fetch_jwks("http://a").await.is_err());
    }
}
