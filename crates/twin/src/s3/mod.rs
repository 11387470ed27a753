//! The twin's S3, on [`s3s`]: path-style requests, every one SigV4-verified and authorized by
//! `iam` with the bucket policy, bodies streamed between the connection and files.
//!
//! | action | IAM action | resource |
//! | --- | --- | --- |
//! | `ListBuckets` | `s3:ListAllMyBuckets` | `*` (the caller's account) |
//! | `CreateBucket` | `s3:CreateBucket` | `arn:aws:s3:::BUCKET` (the caller's account) |
//! | `DeleteBucket` | `s3:DeleteBucket` | `arn:aws:s3:::BUCKET` |
//! | `HeadBucket`, `ListObjectsV2` | `s3:ListBucket` | `arn:aws:s3:::BUCKET` |
//! | `PutObject` | `s3:PutObject` | `arn:aws:s3:::BUCKET/KEY` |
//! | `GetObject`, `HeadObject` | `s3:GetObject` | `arn:aws:s3:::BUCKET/KEY` |
//! | `DeleteObject` | `s3:DeleteObject` | `arn:aws:s3:::BUCKET/KEY` |
//! | `DeleteObjects` | `s3:DeleteObject` for each key (denied keys are errors in the result) | `arn:aws:s3:::BUCKET/KEY` |
//! | `CreateMultipartUpload`, `UploadPart`, `CompleteMultipartUpload` | `s3:PutObject` | `arn:aws:s3:::BUCKET/KEY` |
//! | `AbortMultipartUpload` | `s3:AbortMultipartUpload` | `arn:aws:s3:::BUCKET/KEY` |
//! | `ListParts` | `s3:ListMultipartUploadParts` | `arn:aws:s3:::BUCKET/KEY` |
//! | `ListMultipartUploads` | `s3:ListBucketMultipartUploads` | `arn:aws:s3:::BUCKET` |
//! | `CopyObject`, `UploadPartCopy` | `s3:PutObject` on the destination and `s3:GetObject` on the source, each with its bucket's policy and owner | both objects |
//! | `PutBucketPolicy`, `GetBucketPolicy`, `DeleteBucketPolicy` | `s3:` + the same | `arn:aws:s3:::BUCKET` |
//!
//! How a request is decided:
//!
//! 1. `s3s` checks the SigV4 signature (header, presigned URL, and `aws-chunked` uploads chunk
//!    by chunk) with the secret [`StoreAuthenticator`] finds. For session keys (`ASIA…`) the
//!    authenticator also compares the request's session token in constant time and refuses
//!    expired sessions and sessions of deleted or recreated roles, before the signature is
//!    looked at; the token reaches it through a task-local, since `s3s`'s key lookup sees only
//!    the access key id.
//! 2. The access check maps the operation to its IAM action and resource, reads the bucket
//!    (owner account and policy), and asks the [`Authorizer`]: the caller's identity policies
//!    (a session's role policies, limited by its boundary and session policies) and the bucket
//!    policy as the resource-based policy, with the bucket owner as the resource account, so
//!    a caller from another account needs both its own policy and the bucket policy. Unsigned
//!    requests are the anonymous principal, allowed only by a bucket policy naming `*`. Every
//!    decision lands in the decision log; a denial is S3's `AccessDenied`.
//! 3. The bucket owner's root user may always get, put and delete the bucket policy; other
//!    callers need the permission and must belong to the owner's account, else
//!    `MethodNotAllowed` (405), as S3 answers.
//!
//! Unsupported operations answer `NotImplemented` (501). Object bodies are never held whole in
//! memory: uploads and parts are written to a file as they arrive (MD5 computed on the way),
//! downloads read the file in 64 KiB chunks, copies go file to file in 64 KiB pieces, and a
//! completed multipart upload is assembled file to file.

mod access;
mod body;
mod ops;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::Response;
use time::OffsetDateTime;
use twin_state::Store;

use crate::auth::CallerKey;
use crate::authz::Authorizer;
use crate::decisions::DecisionLog;
use crate::service::{ApiAction, BoxFuture, StreamRequest, StreamingService};
use crate::state_auth::StoreAuthenticator;

/// What one S3 request's handlers share: the facts of the request and what authentication
/// found. Lives in a task-local for the duration of the `s3s` call.
struct CallState {
    /// The session token the request carried (header or presigned query).
    security_token: Option<String>,
    source_ip: IpAddr,
    received_at: OffsetDateTime,
    request_id: String,
    /// The key the signature was checked with, set by the key lookup.
    caller: Mutex<Option<(String, CallerKey)>>,
    /// The operation `s3s` resolved, for metrics and the log.
    operation: Mutex<Option<&'static str>>,
}

tokio::task_local! {
    static CALL: Arc<CallState>;
}

/// The twin's S3 service. Register with
/// [`TwinServer::register_streaming`](crate::TwinServer::register_streaming).
pub struct S3Service {
    inner: s3s::service::S3Service,
}

impl std::fmt::Debug for S3Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Service").finish_non_exhaustive()
    }
}

impl S3Service {
    /// S3 over `store` (bucket metadata in the database, bodies under
    /// [`Store::object_bodies`]), recording decisions in `decisions`.
    pub fn new(store: Arc<Store>, decisions: DecisionLog) -> Self {
        let authorizer = Authorizer::new(Arc::clone(&store), decisions);
        let mut builder = s3s::service::S3ServiceBuilder::new(ops::TwinS3 {
            store: Arc::clone(&store),
            authorizer: authorizer.clone(),
        });
        builder.set_auth(access::KeyLookup {
            keys: StoreAuthenticator::new(Arc::clone(&store)),
        });
        builder.set_access(access::Access { authorizer });
        S3Service {
            inner: builder.build(),
        }
    }
}

/// `x-amz-security-token`, from the header or a presigned URL's query.
fn security_token(req: &http::Request<Body>) -> Option<String> {
    if let Some(v) = req.headers().get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_owned);
    }
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}

/// An S3-shaped error response for failures outside `s3s`'s own handling.
fn error_response(code: s3s::S3ErrorCode, message: &str, request_id: &str) -> Response {
    let mut error = s3s::S3Error::with_message(code, message.to_string());
    error.set_request_id(request_id);
    match error.to_http_response() {
        Ok(resp) => resp.map(Body::new),
        Err(_) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

impl StreamingService for S3Service {
    fn signing_name(&self) -> &'static str {
        "s3"
    }

    fn serves_anonymous(&self) -> bool {
        true
    }

    fn handle(&self, req: StreamRequest) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let call = Arc::new(CallState {
                security_token: security_token(&req.request),
                source_ip: req.source_ip,
                received_at: req.received_at,
                request_id: req.request_id.clone(),
                caller: Mutex::new(None),
                operation: Mutex::new(None),
            });
            let (parts, body) = req.request.into_parts();
            let request = http::Request::from_parts(parts, s3s::Body::http_body_unsync(body));
            let result = CALL
                .scope(Arc::clone(&call), self.inner.call(request))
                .await;
            let mut resp = match result {
                Ok(resp) => resp.map(Body::new),
                Err(e) => {
                    tracing::error!(error = ?e, "s3 request failed");
                    error_response(
                        s3s::S3ErrorCode::InternalError,
                        "We encountered an internal error. Please try again.",
                        &req.request_id,
                    )
                }
            };
            let operation = call.operation.lock().ok().and_then(|op| *op);
            if let Some(op) = operation {
                resp.extensions_mut().insert(ApiAction(op));
            }
            resp
        })
    }
}
