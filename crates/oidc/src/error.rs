//! Error types: why a token was rejected, why a JWKS could not be fetched, why the issuer failed.
//!
//! None of these ever carries the raw token or its signature. A few variants carry header or
//! claim values (`kid`, `alg`, `iss`, `aud`) because an operator cannot diagnose a rejection
//! without them; those values are not credentials (only the signed whole is), and they are
//! passed through [`sanitize`] first so a hostile token cannot inject control characters or
//! megabytes of text into logs.

use std::path::PathBuf;

/// Longest header/claim value copied into an error; the rest is replaced by `…`.
const MAX_ECHOED_CHARS: usize = 128;

/// Makes a token-supplied string safe to echo in an error or log line: control characters are
/// escaped and the value is truncated to a bounded length.
pub fn sanitize(value: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in value.chars() {
        let escaped: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        if count + escaped.len() > MAX_ECHOED_CHARS {
            out.push('…');
            break;
        }
        count += escaped.len();
        out.extend(escaped);
    }
    out
}

/// Why a web identity token was rejected by [`Verifier`](crate::Verifier).
///
/// [`sts_error_code`](Self::sts_error_code) and [`aws_message`](Self::aws_message) give what
/// AWS STS answers `AssumeRoleWithWebIdentity` with. Errors that only the twin can decide
/// (`IDPRejectedClaim` when a trust policy condition fails, "No OpenIDConnect provider found in
/// your account for …" when no IAM OIDC provider matches `iss`) are not produced here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The input is not a compact JWS with a JSON header and payload (or exceeds the size limit).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm outside the allow-list (`none`, HMAC, PS*, EdDSA, …).
    #[error("unsupported token algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The issuer's JWKS has no key with the token's `kid`, even after a refresh.
    #[error("no key with kid {0:?} in the issuer's JWKS")]
    UnknownKey(String),
    /// A key with the token's `kid` exists but cannot verify the token's algorithm.
    #[error("key {kid:?} cannot verify {alg} tokens: {reason}")]
    IncompatibleKey {
        /// The `kid` of the published key.
        kid: String,
        /// The token's algorithm.
        alg: &'static str,
        /// Which JWK parameter disagrees.
        reason: &'static str,
    },
    /// The signature does not verify with the issuer's key.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is further in the past than the allowed clock skew.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`, seconds since the Unix epoch.
        exp: i64,
        /// The verifier's clock, seconds since the Unix epoch.
        now: i64,
    },
    /// `nbf` is further in the future than the allowed clock skew.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`, seconds since the Unix epoch.
        nbf: i64,
        /// The verifier's clock, seconds since the Unix epoch.
        now: i64,
    },
    /// `iat` is further in the future than the allowed clock skew.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`, seconds since the Unix epoch.
        iat: i64,
        /// The verifier's clock, seconds since the Unix epoch.
        now: i64,
    },
    /// `iss` is not exactly the expected issuer.
    #[error("token issuer {got:?} is not the expected issuer {expected:?}")]
    IssuerMismatch {
        /// The issuer the caller expected.
        expected: String,
        /// The token's `iss` (sanitized).
        got: String,
    },
    /// None of the token's audiences is accepted by the caller.
    #[error("no accepted audience in the token's audiences {got:?}")]
    AudienceMismatch {
        /// The token's audiences (sanitized).
        got: Vec<String>,
    },
    /// A required claim (or the `kid` header parameter) is absent.
    #[error("token has no {0:?} claim")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong JSON type or an out-of-range value.
    #[error("token claim {0:?} has an invalid value")]
    InvalidClaim(&'static str),
    /// The issuer's keys could not be fetched (and none are cached that could be used).
    #[error("the issuer's JWKS is unavailable: {0}")]
    JwksUnavailable(String),
}

/// STS's generic description of an identity token it cannot validate.
const INVALID_TOKEN_MESSAGE: &str = "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.";

impl VerifyError {
    /// The error code AWS STS returns for this failure of `AssumeRoleWithWebIdentity`.
    ///
    /// | failure | code |
    /// | --- | --- |
    /// | `Expired` | `ExpiredTokenException` |
    /// | `JwksUnavailable` | `IDPCommunicationError` (retryable, as when AWS cannot reach the IdP) |
    /// | everything else (malformed, algorithm, key, signature, `nbf`, `iat`, `iss`, `aud`, missing claim) | `InvalidIdentityToken` |
    ///
    /// The twin additionally answers `IDPRejectedClaim` (trust policy conditions) and
    /// `InvalidIdentityToken` with "No OpenIDConnect provider found in your account for …"
    /// (no IAM OIDC provider for `iss`); those decisions are not made by this crate.
    pub fn sts_error_code(&self) -> &'static str {
        match self {
            VerifyError::Expired { .. } => "ExpiredTokenException",
            VerifyError::JwksUnavailable(_) => "IDPCommunicationError",
            VerifyError::Malformed(_)
            | VerifyError::UnsupportedAlgorithm(_)
            | VerifyError::UnknownKey(_)
            | VerifyError::IncompatibleKey { .. }
            | VerifyError::BadSignature
            | VerifyError::NotYetValid { .. }
            | VerifyError::IssuedInFuture { .. }
            | VerifyError::IssuerMismatch { .. }
            | VerifyError::AudienceMismatch { .. }
            | VerifyError::MissingClaim(_)
            | VerifyError::InvalidClaim(_) => "InvalidIdentityToken",
        }
    }

    /// A message in the style of AWS STS's for this failure, safe to return to the caller: it
    /// contains no token content beyond timestamps.
    pub fn aws_message(&self) -> String {
        match self {
            VerifyError::Expired { exp, now } => format!(
                "Token expired: current date/time {now} must be before the expiration date/time {exp}"
            ),
            VerifyError::AudienceMismatch { .. } => "Incorrect token audience".to_string(),
            VerifyError::UnknownKey(_) | VerifyError::IncompatibleKey { .. } => {
                "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".to_string()
            }
            VerifyError::JwksUnavailable(_) => "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached. Couldn't retrieve verification key from your identity provider.".to_string(),
            VerifyError::UnsupportedAlgorithm(_) => {
                "The web identity token is signed with an unsupported algorithm.".to_string()
            }
            VerifyError::NotYetValid { .. } => "Token is not yet valid (nbf is in the future).".to_string(),
            VerifyError::IssuedInFuture { .. } => "Token issue time (iat) is in the future.".to_string(),
            VerifyError::IssuerMismatch { .. } => "Token issuer does not match the identity provider.".to_string(),
            VerifyError::MissingClaim(name) => format!("The web identity token has no '{name}' claim."),
            VerifyError::Malformed(_)
            | VerifyError::BadSignature
            | VerifyError::InvalidClaim(_) => INVALID_TOKEN_MESSAGE.to_string(),
        }
    }
}

/// Why a [`JwksSource`](crate::JwksSource) could not produce an issuer's JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The TLS roots configured cannot be used (none found, or one does not parse).
    #[error("TLS: {0}")]
    Tls(String),
    /// The URL uses a scheme this source cannot fetch (`https` without trusted roots).
    #[error("cannot fetch {url}: {reason}")]
    UnsupportedScheme {
        /// The URL that was refused.
        url: String,
        /// What is supported instead.
        reason: &'static str,
    },
    /// The URL does not parse or has no host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (sanitized).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting, sending or reading failed.
    #[error("request to {url} failed: {detail}")]
    Request {
        /// The URL requested.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// The request did not complete within the configured timeout.
    #[error("request to {url} timed out after {millis} ms")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that elapsed.
        millis: u128,
    },
    /// The server answered with a status other than 200 (redirects are not followed).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The response body exceeds the configured cap.
    #[error("response from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The discovery document or JWKS is not what OIDC requires.
    #[error("bad document from {url}: {detail}")]
    BadDocument {
        /// Where the document came from.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The source does not know this issuer at all.
    #[error("unknown issuer {0:?}")]
    UnknownIssuer(String),
}

/// Why the token [`Issuer`](crate::Issuer) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// Reading or writing the key directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key file exists but does not hold a usable RSA private key.
    #[error("{path}: not a usable RSA private key: {reason}")]
    InvalidKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file is readable or writable by group or others.
    #[error("{path}: permissions {mode:o} let other users read the signing key; expected 600")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The configuration is unusable (bad issuer URL, zero keys, …).
    #[error("invalid issuer configuration: {0}")]
    InvalidConfig(String),
    /// The token request is unusable (empty names, no audience, …).
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// The crypto library failed to generate a key or sign.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}
