//! [`ApiError`] and authentication for service handlers: key lookup, SigV4 verification, and
//! the error response a handler answers with.

use axum::response::Response;
use http::StatusCode;
use sigv4::{ServiceRules, SigningSecret};
use time::OffsetDateTime;

use crate::service::{error_response, ApiRequest, Shape};

/// Finds the secret behind an access key id. The twin's store implements it; handlers hold an
/// `Arc<dyn Authenticator>` and call [`ApiRequest::authenticate`].
///
/// Synchronous on purpose: lookups are in-memory or local-database reads, and a handler
/// should not hold a request waiting on anything slower.
pub trait Authenticator: Send + Sync {
    /// The secret, session token and identity of `access_key_id`. `security_token` is the token
    /// the request carried, for stores that index sessions by token; the verification compares
    /// it with [`CallerKey::session_token`] in constant time either way.
    ///
    /// # Errors
    ///
    /// [`AuthFailure`] when the key is unknown, its session is expired or the store failed.
    fn secret_for(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
    ) -> Result<CallerKey, AuthFailure>;
}

/// What an [`Authenticator`] knows about a key.
#[derive(Clone)]
pub struct CallerKey {
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token issued with session (`ASIA…`) keys; `None` for long-term keys.
    pub session_token: Option<String>,
    /// When session credentials stop working; `None` for long-term keys.
    pub expires_at: Option<OffsetDateTime>,
    /// Who signs with this key.
    pub principal: iam::Principal,
    /// The caller's `UserId` as `GetCallerIdentity` reports it (`AIDA…`, `AROA…:session`, or the
    /// account id for root).
    pub user_id: String,
}

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerKey")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("principal", &self.principal)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Why an [`Authenticator`] found no usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No such access key id (`InvalidClientTokenId`; S3: `InvalidAccessKeyId`).
    #[error("unknown access key id")]
    UnknownAccessKey,
    /// The session token does not belong to the key (`InvalidClientTokenId`; S3:
    /// `InvalidToken`).
    #[error("session token does not match the access key")]
    TokenMismatch,
    /// The session has expired (`ExpiredToken`).
    #[error("session credentials expired")]
    Expired,
    /// The store could not answer (`InternalFailure`, 500). The text is logged, never sent.
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
}

/// A caller whose signature verified.
#[derive(Debug, Clone)]
pub struct AuthenticatedCaller {
    /// Who signed.
    pub principal: iam::Principal,
    /// `GetCallerIdentity`'s `UserId`.
    pub user_id: String,
    /// The access key id used; `None` for a caller that signed nothing (a service principal
    /// acting for the twin, as EKS Auth does as `pods.eks.amazonaws.com`, or an anonymous S3
    /// caller).
    pub access_key_id: Option<String>,
    /// True when the body is not covered by the signature (S3 unsigned payloads, presigned
    /// URLs): do not trust it as signed.
    pub unsigned_payload: bool,
}

impl AuthenticatedCaller {
    /// The caller's ARN, or a description for principals without one.
    pub fn arn(&self) -> String {
        describe_principal(&self.principal)
    }
}

/// The caller's ARN, or a short description for principals that have none, as the decision
/// log's `caller` field shows it.
pub(crate) fn describe_principal(principal: &iam::Principal) -> String {
    match principal {
        iam::Principal::Anonymous => "anonymous".to_string(),
        iam::Principal::WebIdentity { provider } => format!("web identity from {provider}"),
        iam::Principal::Service { name } => format!("service {name}"),
        other => other.arn().unwrap_or_else(|| "unknown".to_string()),
    }
}

/// An AWS error for a handler to answer with: the code, HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// AWS error code (`SignatureDoesNotMatch`, `AccessDenied`, …).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The answer AWS gives for a SigV4 failure. The mismatch detail (canonical request) is
    /// dropped: it echoes signed header values, session tokens among them.
    pub fn from_sigv4(error: &sigv4::Error) -> Self {
        ApiError {
            status: StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            code: error.code().to_string(),
            message: error.to_string(),
        }
    }

    /// `InternalFailure` 500 with a generic message (the detail belongs in the log).
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            crate::service::UNKNOWN_FAILURE,
        )
    }
}

impl ApiRequest {
    /// Looks the key up with `authenticator` and verifies the SigV4 signature as of `now`,
    /// with AWS's rules for the credential scope's service (15-minute clock window; S3's path
    /// and payload rules for `s3`).
    ///
    /// # Errors
    ///
    /// The [`ApiError`] AWS would answer with: `InvalidClientTokenId` (S3:
    /// `InvalidAccessKeyId` / `InvalidToken`), `ExpiredToken`, `SignatureDoesNotMatch`,
    /// `IncompleteSignature`, `InternalFailure` when the store fails.
    pub fn authenticate(
        &self,
        authenticator: &dyn Authenticator,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedCaller, ApiError> {
        let view = self.sigv4_view();
        let signed = sigv4::parse(&view).map_err(|e| ApiError::from_sigv4(&e))?;
        let s3 = ServiceRules::for_service(&signed.scope().service) == ServiceRules::S3;

        let key = authenticator
            .secret_for(signed.access_key_id(), signed.security_token())
            .map_err(|failure| {
                let error = match failure {
                    AuthFailure::UnknownAccessKey if s3 => sigv4::Error::InvalidAccessKeyId,
                    AuthFailure::UnknownAccessKey => sigv4::Error::InvalidClientTokenId,
                    AuthFailure::TokenMismatch if s3 => sigv4::Error::InvalidToken,
                    AuthFailure::TokenMismatch => sigv4::Error::InvalidClientTokenId,
                    AuthFailure::Expired => sigv4::Error::ExpiredToken,
                    AuthFailure::Unavailable(detail) => {
                        tracing::error!(%detail, "credential lookup failed");
                        return ApiError::internal();
                    }
                };
                ApiError::from_sigv4(&error)
            })?;

        // AWS reports an expired session before looking at the signature: the client's fix is
        // to refresh, whatever else is wrong.
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::from_sigv4(&sigv4::Error::ExpiredToken));
        }

        let secret = SigningSecret {
            secret_access_key: &key.secret_access_key,
            session_token: key.session_token.as_deref(),
        };
        let verified = signed
            .verify(&secret, now)
            .map_err(|e| ApiError::from_sigv4(&e))?;
        Ok(AuthenticatedCaller {
            principal: key.principal,
            user_id: key.user_id,
            access_key_id: Some(signed.access_key_id().to_string()),
            unsigned_payload: verified.unsigned_payload,
        })
    }

    /// The AWS-shaped XML error response for `error`, carrying this request's id (the Query
    /// envelope, or S3's for `s3`).
    pub fn error_response(&self, error: &ApiError) -> Response {
        error_response(
            error.status,
            &error.code,
            &error.message,
            &self.request_id,
            Shape::for_service(self.service()),
            self.service(),
        )
    }
}
