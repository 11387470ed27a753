//! What the agent asks of AWS (or the twin): the three calls a chain is made of, behind a trait
//! so the cache and the server can be tested against a scripted upstream.

use std::future::Future;
use std::pin::Pin;

use crate::credentials::Credentials;
use crate::session::SessionTag;

/// A boxed future, as the trait's methods return (the trait is used as `dyn Upstream`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The three upstream operations, named once: metrics labels and logs use [`Operation::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// STS `AssumeRoleWithWebIdentity`.
    AssumeRoleWithWebIdentity,
    /// STS `AssumeRole`.
    AssumeRole,
    /// EKS Auth `AssumeRoleForPodIdentity`.
    AssumeRoleForPodIdentity,
}

impl Operation {
    /// Every operation, for metric families that list them all.
    pub const ALL: [Operation; 3] = [
        Operation::AssumeRoleWithWebIdentity,
        Operation::AssumeRole,
        Operation::AssumeRoleForPodIdentity,
    ];

    /// The AWS operation name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Operation::AssumeRole => "AssumeRole",
            Operation::AssumeRoleForPodIdentity => "AssumeRoleForPodIdentity",
        }
    }
}

/// `AssumeRoleWithWebIdentity` with the pod's token.
#[derive(Debug, Clone)]
pub struct WebIdentityRequest<'a> {
    /// The role.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// The pod's projected service-account token.
    pub token: &'a str,
    /// `DurationSeconds`, when asked.
    pub duration_seconds: Option<u32>,
}

/// `AssumeRole` with the previous hop's credentials.
#[derive(Debug, Clone)]
pub struct AssumeRoleRequest<'a> {
    /// The credentials the call is signed with.
    pub caller: &'a Credentials,
    /// The role.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// `ExternalId`, when the role asks for one.
    pub external_id: Option<&'a str>,
    /// Session tags, all transitive.
    pub tags: &'a [SessionTag],
    /// `DurationSeconds`, when asked.
    pub duration_seconds: Option<u32>,
}

/// EKS Auth `AssumeRoleForPodIdentity`, signed with the node's own credentials.
#[derive(Debug, Clone)]
pub struct PodIdentityRequest<'a> {
    /// The cluster's name.
    pub cluster_name: &'a str,
    /// The pod's projected service-account token.
    pub token: &'a str,
}

/// The code of an upstream call that did not answer in time (the agent's own, not AWS's).
pub const TIMEOUT: &str = "Timeout";
/// The code of an upstream call that could not connect (the agent's own).
pub const CONNECTION_FAILED: &str = "ConnectionFailed";

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling, 5xx, timeouts, connection failures: the same call may succeed later, so
    /// cached credentials keep being served and the call is retried with backoff.
    Later,
    /// AccessDenied, an invalid token, no association, a malformed request: the same call will
    /// fail again. Answered at once and never retried.
    Never,
}

/// A failed upstream call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {code}: {message}", operation = .operation.name())]
pub struct UpstreamError {
    /// The call that failed.
    pub operation: Operation,
    /// AWS's error code (`AccessDenied`, `Throttling`, …), or one of the agent's own for
    /// failures below the protocol (`Timeout`, `ConnectionFailed`).
    pub code: String,
    /// What upstream said (never a credential).
    pub message: String,
    /// The HTTP status upstream answered, when it answered.
    pub status: Option<u16>,
    /// Whether retrying can help.
    pub retry: Retry,
}

impl UpstreamError {
    /// An error upstream answered with `code` and `status`, classified by [`classify`].
    pub fn answered(operation: Operation, code: &str, message: &str, status: u16) -> Self {
        UpstreamError {
            operation,
            code: code.to_string(),
            message: message.to_string(),
            status: Some(status),
            retry: classify(code, status),
        }
    }

    /// A failure with no answer from upstream (timeout, refused connection, TLS): retryable.
    pub fn unanswered(operation: Operation, code: &str, message: impl Into<String>) -> Self {
        UpstreamError {
            operation,
            code: code.to_string(),
            message: message.into(),
            status: None,
            retry: Retry::Later,
        }
    }
}

/// Which answers retrying can fix: throttling and server-side failures. Everything else a
/// service answers (a 4xx with any other code) is the caller's problem and final.
pub fn classify(code: &str, status: u16) -> Retry {
    const RETRYABLE_CODES: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerException",
        "IDPCommunicationError",
        "RequestTimeout",
        "RequestTimeoutException",
    ];
    if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code) {
        Retry::Later
    } else {
        Retry::Never
    }
}

/// The upstream calls a chain is made of.
pub trait Upstream: Send + Sync {
    /// STS `AssumeRoleWithWebIdentity`.
    fn assume_role_with_web_identity<'a>(
        &'a self,
        request: WebIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>>;

    /// STS `AssumeRole`.
    fn assume_role<'a>(
        &'a self,
        request: AssumeRoleRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>>;

    /// EKS Auth `AssumeRoleForPodIdentity`.
    fn assume_role_for_pod_identity<'a>(
        &'a self,
        request: PodIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retried_and_refusals_are_not() {
        assert_eq!(classify("Throttling", 400), Retry::Later);
        assert_eq!(classify("ThrottlingException", 429), Retry::Later);
        assert_eq!(classify("ServiceUnavailable", 503), Retry::Later);
        assert_eq!(classify("Whatever", 500), Retry::Later);
        assert_eq!(classify("IDPCommunicationError", 400), Retry::Later);
        assert_eq!(classify("AccessDenied", 403), Retry::Never);
        assert_eq!(classify("InvalidIdentityToken", 400), Retry::Never);
        assert_eq!(classify("ExpiredTokenException", 400), Retry::Never);
        assert_eq!(classify("ResourceNotFoundException", 404), Retry::Never);
    }
}
