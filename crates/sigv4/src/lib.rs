//! `sigv4`: verification of AWS Signature Version 4 on requests arriving at the twin.
//!
//! Pure: no I/O, no clock, no async. The twin's single HTTP endpoint serves STS and IAM
//! (Query protocol), EKS and EKS Auth (rest-json) and S3 behind one address, so it has to
//! know which service a request is for *before* it verifies it. Verification is therefore two
//! steps:
//!
//! 1. [`parse`] reads the authentication data (the `Authorization` header, or the
//!    `X-Amz-*` parameters of a presigned URL) and returns a [`SignedRequest`] whose
//!    [`scope`](SignedRequest::scope) names the access key id, date, region and service. The
//!    twin routes on the service and region and looks the key up.
//! 2. [`SignedRequest::verify`] checks the signature against the secret the twin found
//!    ([`SigningSecret`]), with the caller's `now`.
//!
//! ```
//! use sigv4::{parse, Error, Request, SigningSecret};
//! # fn lookup(akid: &str) -> Option<(&'static str, Option<&'static str>)> { None }
//! # let now = time::OffsetDateTime::now_utc();
//! let req = Request::new("POST", "/")
//!     .header("host", "sts.amazonaws.com")
//!     .header("x-amz-date", "20240101T000000Z")
//!     .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
//!     .body(b"Action=GetCallerIdentity&Version=2011-06-15");
//! let outcome = parse(&req).and_then(|signed| {
//!     // Route: signed.scope().service is "sts" here.
//!     let (secret, token) = lookup(signed.access_key_id()).ok_or(Error::InvalidClientTokenId)?;
//!     signed.verify(&SigningSecret { secret_access_key: secret, session_token: token }, now)
//! });
//! let err = outcome.unwrap_err();
//! assert_eq!((err.code(), err.http_status()), ("InvalidClientTokenId", 403));
//! ```
//!
//! # Why the canonicalization is written here and not borrowed from `aws-sigv4`
//!
//! Re-signing the incoming request with `aws_sigv4::http_request::sign` and comparing the
//! signatures was considered and rejected, because a signer decides things a verifier must
//! take from the request:
//!
//! - **Which headers are signed.** The signer picks its own set (everything it is given, minus
//!   its exclusions such as `user-agent`, and for presigned URLs minus `x-amz-user-agent` and
//!   `x-amz-checksum-mode`) and always adds `host`, `x-amz-date` and the session token itself.
//!   A client that signed a header `aws-sigv4` never signs, or did not sign one it always
//!   signs, cannot be reproduced.
//! - **The query string.** It parses the query with `application/x-www-form-urlencoded`
//!   rules (`+` is a space) and, for presigned URLs, adds its own `X-Amz-*` parameters, so
//!   the client's ones would have to be stripped and re-derived from settings.
//! - **Dates.** It writes `X-Amz-Date` itself; a client that signed with the `Date` header
//!   cannot be reproduced.
//! - **Header values** must be visible ASCII for it; the wire allows more, and the client
//!   hashed the bytes it sent.
//!
//! The canonical request is small and fully specified, so it is hand-written here
//! ([`ServiceRules::Standard`] normalizes the path and encodes it twice, [`ServiceRules::S3`]
//! signs it as sent), and `aws-sigv4` is used where it is strongest: as the
//! independent real signer in the tests, alongside botocore (when available) and the SigV4
//! test-suite vectors shipped with `aws-sigv4`.
//!
//! # What is AWS's and what is chosen here
//!
//! | situation | answer |
//! | --- | --- |
//! | no SigV4 data | `MissingAuthenticationToken` 403 (S3: treat as anonymous instead) |
//! | malformed header or query parameters, unsupported algorithm | `IncompleteSignature` 400, AWS's wording where known |
//! | request time more than 15 min away (STS/IAM/EKS) | `SignatureDoesNotMatch` 403, `Signature expired: … is now earlier than … (… - 15 min.)` or `Signature not yet current: … is still later than … (… + 15 min.)`, as STS answers |
//! | same, S3 | `RequestTimeTooSkewed` 403 |
//! | presigned URL past `X-Amz-Expires`, S3 | `AccessDenied` 403 `Request has expired`, as S3 answers |
//! | presigned URL, other services | valid within the 15-minute window whatever `X-Amz-Expires` says ([`PresignedValidity::ClockWindow`]), as STS does for EKS tokens; with [`PresignedValidity::Expires`] an expired URL gets the `Signature expired` shape with the window in seconds. `ExpiredToken` is *not* used: AWS reserves it for expired session credentials, which the caller reports. |
//! | scope date ≠ request date | `SignatureDoesNotMatch` 403, `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: …` |
//! | session token does not match the key | `InvalidClientTokenId` 403 (S3: `InvalidToken` 400) |
//! | wrong signature | `SignatureDoesNotMatch` 403, with the canonical request and string to sign for diagnosis |
//! | `x-amz-content-sha256` on a non-S3 request | ignored: the body hash is always signed, so a client cannot opt an STS or IAM call out of body signing |
//! | S3 signed streaming (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD…`) | `NotImplemented` 501 rather than accepting a body whose chunks are not checked |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod canonical;
mod error;
mod region;
mod timefmt;
mod verify;

pub use auth::{
    parse, presence, AuthLocation, CredentialScope, Presence, SignedRequest, ALGORITHM,
    MAX_PRESIGNED_EXPIRES_SECS,
};
pub use error::{Error, MismatchDetail};
pub use region::{partition_of, Partition, RegionRule, PARTITIONS};
pub use verify::{
    PresignedValidity, ServiceRules, SigningSecret, Verified, VerifyOptions, DEFAULT_MAX_SKEW,
    UNSIGNED_PAYLOAD,
};

/// An incoming HTTP request as SigV4 sees it: everything borrowed from the server's request.
///
/// `path` and `query` must be the raw, still percent-encoded text from the request line; a
/// decoded path makes `%2F` and `/` indistinguishable and breaks signatures. Header names may
/// be in any case; repeated headers are separate entries. For HTTP/2 requests, which carry no
/// `Host` header, add `host` from the `:authority`.
#[derive(Clone, Default)]
pub struct Request<'a> {
    /// The method, as sent (`GET`, `POST`, …).
    pub method: &'a str,
    /// The raw path, e.g. `/clusters/my%20cluster`.
    pub path: &'a str,
    /// The raw query string without `?`; empty if there is none.
    pub query: &'a str,
    /// Header names and raw values.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The whole body (empty for none).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request from its method and raw request target (`/path?query`); a `#fragment`, which
    /// clients never send, is dropped.
    pub fn new(method: &'a str, path_and_query: &'a str) -> Self {
        let target = path_and_query
            .split_once('#')
            .map_or(path_and_query, |(before, _)| before);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method,
            path,
            query,
            headers: Vec::new(),
            body: &[],
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: &'a (impl AsRef<[u8]> + ?Sized)) -> Self {
        self.headers.push((name, value.as_ref()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// A view of an `http` 1.x request whose body has been read into `body`.
    #[cfg(feature = "http")]
    pub fn from_http<B>(request: &'a http::Request<B>, body: &'a [u8]) -> Self {
        Self::from_http_parts(request.method(), request.uri(), request.headers(), body)
    }

    /// A view of the parts of an `http` 1.x request and its body.
    #[cfg(feature = "http")]
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self::from_http_parts(&parts.method, &parts.uri, &parts.headers, body)
    }

    #[cfg(feature = "http")]
    fn from_http_parts(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
        body: &'a [u8],
    ) -> Self {
        let mut list: Vec<(&'a str, &'a [u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        if !headers.contains_key(http::header::HOST) {
            if let Some(authority) = uri.authority() {
                list.push(("host", authority.as_str().as_bytes()));
            }
        }
        Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: list,
            body,
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    // Header values, the query and the body can hold signatures and session tokens; a Debug
    // print in a log must not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}
