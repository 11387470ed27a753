//! The twin's STS service (Query protocol, `Version=2011-06-15`, signing name `sts`).
//!
//! | action | authentication | authorization |
//! | --- | --- | --- |
//! | `GetCallerIdentity` | SigV4 | none (as AWS: every caller may ask who it is) |
//! | `AssumeRole` | SigV4; root is refused (`AccessDenied` "Roles may not be assumed by root accounts.") | `sts:AssumeRole` on the role: its trust policy (stored by unique id) as the resource policy plus the caller's identity, boundary and session policies; `sts:TagSession` too when tags are passed or carried; `sts:SetSourceIdentity` when a source identity is passed |
//! | `AssumeRoleWithWebIdentity` | **none** (the token is the credential; the front door lets it through unsigned) | the token is verified against the IAM OIDC provider for its `iss` in the **role's** account, then `sts:AssumeRoleWithWebIdentity` by the trust policy alone, with the principal `Federated` = the provider ARN |
//!
//! The trust policy is required for `AssumeRole*` even within one account: an identity policy
//! allowing `sts:AssumeRole` is not enough unless the trust policy names the caller, its role or
//! its account (IAM User Guide, "Roles terms and concepts": the trust policy is the role's
//! resource-based policy, and a role can only be assumed by principals it trusts). Every decision
//! — allowed or denied, web identities included — is recorded in the decision log through the
//! [`Authorizer`].
//!
//! Sessions are stored with `twin_state::Store::issue_session`, bound to the role's unique id:
//! they end when the role is deleted. Session policies (`Policy`, `PolicyArns`) and session
//! tags are stored on the session and applied by the [`Authorizer`] when the session is used.
//!
//! # Validation, in AWS's order and words
//!
//! Members are checked with the botocore model's constraints first (one `ValidationError`
//! listing every failure, e.g. `Value 'a' at 'roleSessionName' failed to satisfy constraint:
//! Member must have length greater than or equal to 2`); then, once the caller is authorized,
//! the duration against role chaining ("The requested DurationSeconds exceeds the 1 hour session
//! limit for roles assumed by role chaining.") and against the role ("The requested
//! DurationSeconds exceeds the MaxSessionDuration set for this role.").

mod assume_role;
mod for_services;
mod issuing;
mod session_policies;
mod session_tags;
mod session_writes;
mod trust;
mod trust_cache;
mod web_identity;

use assume_role::{AssumeRoleParams, ServiceCall};
pub(crate) use for_services::ServiceAssumeRole;
use session_policies::SessionPolicies;

use std::sync::Arc;

use awswire::{AwsError, HttpResponse, QueryRequest, STS};
use axum::response::Response;
use twin_state::Store;

use crate::auth::Authenticator;
use crate::authz::Authorizer;
use crate::service::{answered, to_response, ApiRequest, AwsService, BoxFuture};

/// The actions the twin's STS answers, each named once; any other is `InvalidAction` ("Could
/// not find operation X for version 2011-06-15").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    AssumeRole,
    AssumeRoleWithWebIdentity,
    GetCallerIdentity,
}

impl Operation {
    const ALL: [Operation; 3] = [
        Operation::AssumeRole,
        Operation::AssumeRoleWithWebIdentity,
        Operation::GetCallerIdentity,
    ];

    /// The `Action` (also the metrics' `action` label).
    const fn name(self) -> &'static str {
        match self {
            Operation::AssumeRole => "AssumeRole",
            Operation::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Operation::GetCallerIdentity => "GetCallerIdentity",
        }
    }

    /// Whether AWS serves it without SigV4.
    const fn unsigned(self) -> bool {
        matches!(self, Operation::AssumeRoleWithWebIdentity)
    }

    fn of(action: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == action)
    }
}

/// The names of [`Operation::ALL`], for the Query reader.
const OPERATIONS: [&str; Operation::ALL.len()] = {
    let mut names = [""; Operation::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Operation::ALL[i].name();
        i += 1;
    }
    names
};

const UNSIGNED_COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < Operation::ALL.len() {
        if Operation::ALL[i].unsigned() {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The names of the operations AWS serves without SigV4.
const UNSIGNED: [&str; UNSIGNED_COUNT] = {
    let mut names = [""; UNSIGNED_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < Operation::ALL.len() {
        if Operation::ALL[i].unsigned() {
            names[n] = Operation::ALL[i].name();
            n += 1;
        }
        i += 1;
    }
    names
};

/// Settings of [`StsService`]. Build with `StsConfig::default()` and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StsConfig {
    /// Most session tags one session may carry, passed and inherited transitive ones together.
    /// Default 50, STS's quota.
    pub max_session_tags: usize,
    /// Most managed session policy ARNs (`PolicyArns`). Default 10, STS's quota.
    pub max_session_policy_arns: usize,
    /// Session length when `DurationSeconds` is absent. Default 3600 s.
    pub default_duration_seconds: u32,
    /// Longest session a role session may get by assuming another role (role chaining).
    /// Default 3600 s, AWS's fixed limit.
    pub chained_duration_limit_seconds: u32,
}

impl Default for StsConfig {
    fn default() -> Self {
        StsConfig {
            max_session_tags: 50,
            max_session_policy_arns: 10,
            default_duration_seconds: 3600,
            chained_duration_limit_seconds: 3600,
        }
    }
}

/// The STS service handler. See the [module documentation](self).
#[derive(Clone)]
pub struct StsService {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<Store>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) authorizer: Authorizer,
    pub(crate) verifier: Arc<oidc::Verifier>,
    pub(crate) config: StsConfig,
    /// Where handlers store the sessions they issue.
    pub(crate) session_writes: session_writes::SessionWrites,
    /// The roles' trust policies, parsed once per document.
    pub(crate) trust_policies: trust_cache::TrustPolicies,
}

impl std::fmt::Debug for StsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::service::debug_service(f, "StsService", &self.inner.store, &self.inner.config)
    }
}

impl StsService {
    /// An STS service over `store`: callers are resolved by `authenticator` (the twin's
    /// [`StoreAuthenticator`](crate::StoreAuthenticator)), decisions made and recorded through
    /// `authorizer`, and web identity tokens verified by `verifier` (the binary gives it an
    /// `oidc::HttpSource`: the twin serves its issuers' JWKS over HTTP itself).
    pub fn new(
        store: Arc<Store>,
        authenticator: Arc<dyn Authenticator>,
        authorizer: Authorizer,
        verifier: Arc<oidc::Verifier>,
        config: StsConfig,
    ) -> Self {
        StsService {
            inner: Arc::new(Inner {
                session_writes: session_writes::SessionWrites::new(Arc::clone(&store)),
                trust_policies: trust_cache::TrustPolicies::default(),
                store,
                authenticator,
                authorizer,
                verifier,
                config,
            }),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &StsConfig {
        &self.inner.config
    }
}

impl AwsService for StsService {
    fn signing_name(&self) -> &'static str {
        "sts"
    }

    fn unsigned_actions(&self) -> &'static [&'static str] {
        &UNSIGNED
    }

    fn operation(&self, req: &ApiRequest) -> Option<&'static str> {
        let query = parse_query(req).ok()?;
        Operation::of(query.action()).map(Operation::name)
    }

    fn error_response(&self, error: &AwsError, request_id: &str) -> Response {
        to_response(error.to_query_response(&STS, request_id))
    }

    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let request_id = req.request_id.clone();
            let (action, result) = inner.serve(req).await;
            let wire = match result {
                Ok(resp) => resp,
                Err(e) => {
                    if e.sender_fault {
                        tracing::debug!(code = %e.code, message = %e.message, "sts request refused");
                    } else {
                        tracing::warn!(code = %e.code, "sts request failed");
                    }
                    e.to_query_response(&STS, &request_id)
                }
            };
            answered(action, wire)
        })
    }
}

impl Inner {
    /// Parses the Query request and runs the action; the action name is static for metrics.
    async fn serve(
        self: Arc<Self>,
        req: ApiRequest,
    ) -> (&'static str, Result<HttpResponse, AwsError>) {
        let query = match parse_query(&req) {
            Ok(q) => q,
            Err(e) => {
                // An unsigned request is only here for an unsigned action; a signed one with a
                // bad Action is refused for its signature first, as AWS does.
                if req.is_signed() {
                    if let Err(auth) = self.authenticate(&req) {
                        return ("unknown", Err(auth));
                    }
                }
                return ("unknown", Err(e));
            }
        };
        let Some(operation) = Operation::of(query.action()) else {
            let unknown = AwsError::unknown_operation(query.action(), STS.version);
            return ("unknown", Err(unknown));
        };
        let result = match operation {
            Operation::GetCallerIdentity => self.get_caller_identity(&req).await,
            Operation::AssumeRole => self.assume_role(req, query).await,
            Operation::AssumeRoleWithWebIdentity => {
                self.assume_role_with_web_identity(req, query).await
            }
        };
        (operation.name(), result)
    }

    /// SigV4 verification against the store, in place: a lookup of one small record in the
    /// memory-mapped store and an HMAC cost less than the hop to the blocking pool would.
    pub(crate) fn authenticate(
        &self,
        req: &ApiRequest,
    ) -> Result<crate::AuthenticatedCaller, AwsError> {
        req.authenticate(&*self.authenticator, time::OffsetDateTime::now_utc())
            .map_err(|e| AwsError::new(e.code, e.message, e.status.as_u16()))
    }

    async fn get_caller_identity(&self, req: &ApiRequest) -> Result<HttpResponse, AwsError> {
        let caller = self.authenticate(req)?;
        let account = caller.principal.account().unwrap_or_default().to_string();
        let arn = caller.principal.arn().unwrap_or_else(|| caller.arn());
        Ok(awswire::query_response(
            &STS,
            "GetCallerIdentity",
            &req.request_id,
            |r| {
                r.text("UserId", &caller.user_id)
                    .text("Account", &account)
                    .text("Arn", &arn);
            },
        ))
    }
}

/// `Action`, `Version` and the members, from the query string and a form body.
fn parse_query(req: &ApiRequest) -> Result<QueryRequest, AwsError> {
    let form = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let body = (req.method == http::Method::POST && form).then_some(&req.body[..]);
    QueryRequest::parse(&STS, req.uri.query().unwrap_or(""), body, &OPERATIONS)
}
