//! The errors a verification can end in, each with the AWS error code, HTTP status and message
//! that the real service would answer with.

use thiserror::Error;
use time::OffsetDateTime;

use crate::timefmt::format_amz_date;

/// Why a request was not accepted as signed by the holder of its access key.
///
/// [`Error::code`] and [`Error::http_status`] give what the twin puts in its error response;
/// `Display` gives the message. Messages never contain the secret key, the signing key or the
/// full signature the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The request carries no SigV4 authentication at all (no `Authorization` header and no
    /// `X-Amz-Algorithm`/`X-Amz-Credential`/`X-Amz-Signature` query parameter).
    ///
    /// S3 treats such a request as anonymous rather than failing it: its front end should map
    /// this variant to the anonymous principal instead of answering with it.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,

    /// The authentication data is malformed or incomplete: a missing component, a bad
    /// credential scope, an unsupported algorithm, an unparseable date. The message names
    /// the problem the way AWS does.
    #[error("{0}")]
    IncompleteSignature(String),

    /// Signature Version 2 (`Authorization: AWS …`, or `AWSAccessKeyId`/`Signature` in the
    /// query): refused, as S3 refuses it in every region opened since 2014, whatever its
    /// expiry says.
    #[error("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")]
    UnsupportedAuthMechanism,

    /// The access key id is unknown, or the session token does not belong to it. The lookup is
    /// the caller's; [`SignedRequest::verify`](crate::SignedRequest::verify) returns it when the
    /// session token in the request does not match the one the caller looked up.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,

    /// S3's answer to a session token that does not match the access key.
    #[error("The provided token is malformed or otherwise invalid.")]
    InvalidToken,

    /// S3's answer to an unknown access key id (the lookup is the caller's).
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,

    /// The session credentials have expired (the caller knows their expiry, not this crate).
    #[error("The security token included in the request is expired")]
    ExpiredToken,

    /// The signature is well formed but is not the one the secret key gives for this request.
    #[error("{}", if *s3 {
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    } else {
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    })]
    SignatureDoesNotMatch {
        /// Whether S3's wording applies.
        s3: bool,
        /// What the verifier signed, for the twin's diagnostics (S3 returns the same two texts
        /// in its error body). `None` when the mismatch was found before canonicalizing.
        detail: Option<Box<MismatchDetail>>,
    },

    /// The credential scope contradicts the request: its date is not the request's date, or
    /// (reported by the caller through [`Error::wrong_region`] / [`Error::wrong_service`]) its
    /// region or service is not the one the request was sent to. AWS answers these with
    /// `SignatureDoesNotMatch` and a message naming the problem.
    #[error("{0}")]
    CredentialScopeMismatch(String),

    /// The request time is outside the allowed window (STS/IAM/EKS wording; code
    /// `SignatureDoesNotMatch`), e.g. `Signature expired: 20240101T000000Z is now earlier than
    /// 20240101T001000Z (20240101T002500Z - 15 min.)`.
    #[error("{0}")]
    SignatureExpired(String),

    /// S3's answer to a request time more than the allowed skew away from the server's clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed {
        /// The time the request claims.
        request_time: OffsetDateTime,
        /// The verifier's `now`.
        server_time: OffsetDateTime,
        /// The allowed skew in milliseconds (S3 returns it as `MaxAllowedSkewMilliseconds`).
        max_allowed_skew_ms: u64,
    },

    /// S3's answer to a presigned URL used after `X-Amz-Date + X-Amz-Expires` (code
    /// `AccessDenied`).
    #[error("Request has expired")]
    RequestExpired {
        /// The `X-Amz-Expires` value, in seconds.
        expires_in: u32,
        /// When the URL expired.
        expired_at: OffsetDateTime,
        /// The verifier's `now`.
        server_time: OffsetDateTime,
    },

    /// S3: the body does not hash to the `x-amz-content-sha256` value the client signed.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch {
        /// The value the client sent.
        client: String,
        /// The hash of the body received.
        computed: String,
    },

    /// S3: an `x-amz-content-sha256` mode this verifier does not implement (signed streaming
    /// chunks). Refused rather than accepted with an unverified body.
    #[error("A header you provided implies functionality that is not implemented.")]
    NotImplemented {
        /// The header and value that asked for it.
        header: String,
    },
}

/// What the verifier signed when a signature did not match: compare with the client's own
/// canonical request to find the element that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MismatchDetail {
    /// The canonical request, lossily decoded if a signed header value was not UTF-8.
    pub canonical_request: String,
    /// The string to sign built from it.
    pub string_to_sign: String,
}

impl Error {
    /// The AWS error code for the response body (`<Code>` / `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAuthenticationToken => "MissingAuthenticationToken",
            Error::IncompleteSignature(_) => "IncompleteSignature",
            Error::UnsupportedAuthMechanism => "InvalidRequest",
            Error::InvalidClientTokenId => "InvalidClientTokenId",
            Error::InvalidToken => "InvalidToken",
            Error::InvalidAccessKeyId => "InvalidAccessKeyId",
            Error::ExpiredToken => "ExpiredToken",
            Error::SignatureDoesNotMatch { .. }
            | Error::CredentialScopeMismatch(_)
            | Error::SignatureExpired(_) => "SignatureDoesNotMatch",
            Error::RequestTimeTooSkewed { .. } => "RequestTimeTooSkewed",
            Error::RequestExpired { .. } => "AccessDenied",
            Error::ContentSha256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            Error::NotImplemented { .. } => "NotImplemented",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::IncompleteSignature(_)
            | Error::UnsupportedAuthMechanism
            | Error::InvalidToken
            | Error::ContentSha256Mismatch { .. } => 400,
            Error::NotImplemented { .. } => 501,
            Error::MissingAuthenticationToken
            | Error::InvalidClientTokenId
            | Error::InvalidAccessKeyId
            | Error::ExpiredToken
            | Error::SignatureDoesNotMatch { .. }
            | Error::CredentialScopeMismatch(_)
            | Error::SignatureExpired(_)
            | Error::RequestTimeTooSkewed { .. }
            | Error::RequestExpired { .. } => 403,
        }
    }

    /// The answer for a credential scoped to a region this endpoint does not serve.
    pub fn wrong_region() -> Self {
        Error::CredentialScopeMismatch("Credential should be scoped to a valid region. ".into())
    }

    /// The answer for a credential scoped to another service than the one the request reached.
    pub fn wrong_service(expected: &str) -> Self {
        Error::CredentialScopeMismatch(format!(
            "Credential should be scoped to correct service: '{}'. ",
            crate::auth::printable(expected, 64)
        ))
    }

    pub(crate) fn expired(request_time: OffsetDateTime, now: OffsetDateTime, secs: u64) -> Self {
        let limit = now - time::Duration::seconds(secs as i64);
        Error::SignatureExpired(format!(
            "Signature expired: {} is now earlier than {} ({} - {}.)",
            format_amz_date(request_time),
            format_amz_date(limit),
            format_amz_date(now),
            window_text(secs),
        ))
    }

    pub(crate) fn not_yet_current(
        request_time: OffsetDateTime,
        now: OffsetDateTime,
        secs: u64,
    ) -> Self {
        let limit = now + time::Duration::seconds(secs as i64);
        Error::SignatureExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + {}.)",
            format_amz_date(request_time),
            format_amz_date(limit),
            format_amz_date(now),
            window_text(secs),
        ))
    }
}

/// AWS writes the 15-minute window as "15 min"; other windows (a presigned URL's own expiry)
/// are written in seconds so the arithmetic in the message stays checkable.
fn window_text(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}
