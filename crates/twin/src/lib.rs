//! `twin`: the single HTTP endpoint of rolechain's offline AWS twin.
//!
//! The real AWS CLI, boto3 and aws-sdk-rust talk to one address (default
//! [`DEFAULT_LISTEN`], `http://127.0.0.1:4555`) for IAM, STS, EKS, EKS Auth and S3. This crate
//! owns everything about that endpoint that is not a service's business logic:
//!
//! | route | answer |
//! | --- | --- |
//! | any request carrying SigV4 (`Authorization` header or `X-Amz-Credential` query) | the AWS front door: routed by the credential scope's service to an [`AwsService`] |
//! | `GET /_rolechain/health` | `200 {"status":"ok"}` once ready, else `503 {"status":"starting"}` / `{"status":"stopping"}` |
//! | `GET /_rolechain/metrics` | Prometheus metrics (OpenMetrics text) |
//! | `GET /_rolechain/decisions?limit=N&verdict=allow\|deny\|explicit-deny\|implicit-deny` | the newest IAM decisions, JSON, newest first |
//! | `GET /_rolechain/snapshot` | the state `rolechain explain pod` and `lint` read, JSON, no secrets |
//! | `GET`, `POST`, `PATCH`, `DELETE /_rolechain/faults` | the fault rules: list, replace, append, remove (or clear); see below |
//! | `GET /id/{ID}/.well-known/openid-configuration` | a local cluster's OIDC discovery document |
//! | `GET /id/{ID}/keys` | its JWKS (EKS's `jwks_uri` is `{issuer}/keys`) |
//! | anything else without SigV4 | `403 MissingAuthenticationToken` |
//!
//! Signed requests go to the front door whatever their path, so an S3 key such as
//! `id/X/keys` in a virtual-hosted bucket never lands on an internal route.
//!
//! What the front door answers itself, in AWS's XML error shape (S3's for `s3`, the Query
//! protocol's otherwise, plus `x-amzn-ErrorType` for rest-json clients), before any handler runs:
//!
//! | situation | answer |
//! | --- | --- |
//! | no SigV4 data | `403 MissingAuthenticationToken` |
//! | malformed SigV4 data (`Authorization` header or presigned parameters) | `400 IncompleteSignature` |
//! | credential scope names a service with no registered handler | `400 InvalidAction`, the message naming the service and the ones served (AWS has no code for "this endpoint serves other services"; `InvalidAction` is the common Query error every SDK treats as a non-retryable client error) |
//! | body over the limit ([`TwinConfig::max_body_bytes`], 1 MiB, or the service's own) | `413 RequestEntityTooLarge`, connection closed |
//! | body cut short | `400 IncompleteBody` |
//! | request over [`TwinConfig::request_timeout`] (buffered services; a streamed body has [`TwinConfig::body_idle_timeout`] between its bytes instead, answered by the service: S3's `400 RequestTimeout`) | `503 ServiceUnavailable` |
//!
//! # Fault injection
//!
//! `/_rolechain/faults` takes rules in the shape of LocalStack's chaos API, JSON:
//! `[{"service":"sts","operation":"AssumeRoleWithWebIdentity","probability":1,"error":{"statusCode":503,"code":"ServiceUnavailable"},"latencyMs":300}]`
//! (every member optional; a rule needs an `error` or a `latencyMs`). As in LocalStack, `POST`
//! replaces the rules (`[]` clears them), `PATCH` appends, `DELETE` with a body removes the
//! rules equal to the given ones, and `DELETE` without a body clears them all; every answer is
//! the rules now in force, `GET` included. Bodies are `application/json`, at most 64 KiB and
//! 100 rules; anything else is `400 {"error": …, "field": "[0].probability"}` (`413` for a
//! larger body, `415` for another content type). Like metrics and decisions, these routes
//! answer only under the twin's own `Host`.
//!
//! A matching request waits the latency, then fails with the error in its service's protocol
//! ([`AwsService::error_response`]; S3's `<Error>` for S3), with the request id and a message
//! saying it was injected. The front door applies the rules to the buffered services before
//! their handler runs (before the signature is checked: unsigned `AssumeRoleWithWebIdentity`
//! included), naming the operation with [`AwsService::operation`]; S3 applies them in its
//! access check, once `s3s` has verified the signature and named the operation. Rules are kept
//! in memory only.
//!
//! Key lookup and signature verification are the handler's, through
//! [`ApiRequest::authenticate`] and an [`Authenticator`]; every response carries
//! `x-amzn-RequestId`.
//!
//! # Plugging in a service
//!
//! ```no_run
//! use std::sync::Arc;
//! use twin::{ApiAction, ApiRequest, Authenticator, AwsService, BoxFuture, Response};
//!
//! struct Sts { auth: Arc<dyn Authenticator> }
//!
//! impl AwsService for Sts {
//!     fn signing_name(&self) -> &'static str { "sts" }
//!     fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
//!         Box::pin(async move {
//!             let caller = match req.authenticate(&*self.auth, time::OffsetDateTime::now_utc()) {
//!                 Ok(caller) => caller,
//!                 Err(e) => return req.error_response(&e),
//!             };
//!             let mut resp = Response::new(format!("hello {}", caller.arn()).into());
//!             // Names the action in metrics and logs.
//!             resp.extensions_mut().insert(ApiAction("GetCallerIdentity"));
//!             resp
//!         })
//!     }
//! }
//!
//! # async fn run(auth: Arc<dyn Authenticator>) -> Result<(), twin::TwinError> {
//! let mut server = twin::TwinServer::bind(twin::TwinConfig::default()).await?;
//! server.register(Arc::new(Sts { auth }))?;
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod admin_hosts;
mod auth;
pub mod authz;
mod clock;
mod config;
mod decisions;
pub mod eks;
mod failure;
mod faults;
mod front_door;
pub mod iam_service;
mod idle_body;
mod ids;
mod issuers;
mod metrics;
mod readiness;
mod refusal_details;
pub mod s3;
mod server;
mod service;
mod service_accounts;
mod shared;
mod snapshot;
pub mod state_auth;
pub mod sts;

pub use auth::{ApiError, AuthFailure, AuthenticatedCaller, Authenticator, CallerKey};
pub use authz::{Authorizer, AuthzDenied, AuthzError, CallerPolicies};
pub use config::{TwinConfig, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES};
pub use decisions::{
    DecisionEntry, DecisionLog, DecisionRecord, Detail, Outcome, Refusal, RefusalRecord,
    VerdictFilter,
};
pub use eks::{ClusterLifecycle, EksAuthConfig, EksAuthService, EksService};
pub use faults::FaultPoint;
pub use iam_service::IamService;
pub use idle_body::{BodyIdle, BodyStall};
pub use ids::log_fingerprint;
pub use issuers::{
    derive_issuer_id, is_valid_issuer_id, issuer_url, IssuerRegistry, IssuerRegistryError,
    RegisteredIssuer,
};
pub use metrics::Metrics;
pub use readiness::{Readiness, ReadinessHold};
pub use s3::S3Service;
pub use server::{TwinError, TwinServer};
pub use service::{
    ApiAction, ApiRequest, AwsService, BoxFuture, Signing, StreamRequest, StreamingService,
};
pub use state_auth::StoreAuthenticator;
pub use sts::{StsConfig, StsService};

/// The body type of [`Response`].
pub use axum::body::Body;
/// Bytes, as in [`ApiRequest::body`].
pub use axum::body::Bytes;
/// The response type handlers return (axum's, an `http::Response` with a boxed body).
pub use axum::response::Response;
