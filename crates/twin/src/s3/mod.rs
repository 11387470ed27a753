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
//! | `GetBucketAcl`, `GetBucketCors`, `GetBucketVersioning`, … (the configuration reads of `bucket_config`) | their own (`s3:GetBucketCORS`, …) | `arn:aws:s3:::BUCKET` |
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
//! The fault rules of `/_rolechain/faults` apply in the access check, after the signature and
//! before authorization: that is where `s3s` has named the operation. An injected error is an
//! `S3Error` with the rule's code and status, rendered as every other S3 error.
//!
//! Unsupported operations answer `NotImplemented` (501). Object bodies are never held whole in
//! memory: uploads and parts are written to a file as they arrive (MD5 computed on the way),
//! downloads read the file in 64 KiB chunks, copies go file to file in 64 KiB pieces, and a
//! completed multipart upload is assembled file to file.

mod access;
mod body;
mod bucket_config;
mod encoding;
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
    /// The fault rules, applied by the access check once the operation is known.
    faults: crate::FaultPoint,
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

/// S3's answer to a body that stopped arriving for longer than the idle timeout. The rest of
/// the body may still come: the connection is closed after the answer.
fn request_timeout(request_id: &str) -> Response {
    let mut resp = error_response(
        s3s::S3ErrorCode::RequestTimeout,
        "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        request_id,
    );
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// Errors `s3s` answers by itself (authentication, parsing) carry a code but no message or
/// request id; the AWS CLI then prints "Unknown". S3's own messages for those codes (S3 API
/// Reference, "Error responses").
fn standard_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied" => "Access Denied",
        "SignatureDoesNotMatch" => "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "InvalidToken" => "The provided token is malformed or otherwise invalid.",
        "ExpiredToken" => "The provided token has expired.",
        "AuthorizationHeaderMalformed" => "The authorization header that you provided is not valid.",
        "MissingSecurityHeader" => "Your request is missing a required header.",
        "MalformedXML" => "The XML that you provided was not well-formed or did not validate against our published schema.",
        "XAmzContentSHA256Mismatch" => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        "BadDigest" => "The Content-MD5 or checksum value that you specified did not match what the server received.",
        "NotImplemented" => "A header that you provided implies functionality that is not implemented.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        _ => return None,
    })
}

/// Largest error body inspected by [`with_error_details`]; S3 error documents are tiny.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Gives an error `s3s` produced without a message S3's standard message and the request id.
async fn with_error_details(resp: Response, request_id: &str) -> Response {
    use http_body_util::BodyExt as _;
    let is_xml_error = (resp.status().is_client_error() || resp.status().is_server_error())
        && resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("xml"));
    if !is_xml_error {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    let text = String::from_utf8_lossy(&bytes);
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned());
    let filled = match code {
        Some(code) if !text.contains("<Message>") => standard_message(&code).map(|message| {
            let mut error = s3s::S3Error::with_message(
                code.parse().unwrap_or(s3s::S3ErrorCode::InternalError),
                message,
            );
            error.set_request_id(request_id);
            error.set_status_code(parts.status);
            error.to_http_response()
        }),
        _ => None,
    };
    match filled {
        Some(Ok(new)) => {
            let (new_parts, new_body) = new.into_parts();
            let mut parts = parts;
            parts.headers.remove(http::header::CONTENT_LENGTH);
            for (name, value) in &new_parts.headers {
                parts.headers.insert(name.clone(), value.clone());
            }
            Response::from_parts(parts, Body::new(new_body))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
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
                faults: req.faults.clone(),
            });
            let (parts, body) = req.request.into_parts();
            let request = http::Request::from_parts(parts, s3s::Body::http_body_unsync(body));
            let result = CALL
                .scope(Arc::clone(&call), self.inner.call(request))
                .await;
            let mut resp = match result {
                // However `s3s` reported the failed body (an upload's, an XML document's), the
                // client paused too long: S3's answer to that.
                _ if req.body_stall.happened() => request_timeout(&req.request_id),
                Ok(resp) => with_error_details(resp.map(Body::new), &req.request_id).await,
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

#[cfg(test)]
mod error_detail_tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn xml(status: u16, body: &str) -> Response {
        let mut resp = Response::new(Body::from(body.to_owned()));
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        resp
    }

    async fn text(resp: Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn bare_errors_get_the_standard_message_and_request_id() {
        let bare = xml(
            403,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code></Error>",
        );
        let (status, body) = text(with_error_details(bare, "req-1").await).await;
        assert_eq!(status, 403);
        assert!(
            body.contains("<Code>SignatureDoesNotMatch</Code>"),
            "{body}"
        );
        assert!(
            body.contains("<Message>The request signature we calculated"),
            "{body}"
        );
        assert!(body.contains("<RequestId>req-1</RequestId>"), "{body}");
    }

    #[tokio::test]
    async fn other_responses_pass_unchanged() {
        let with_message =
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        let (_, body) = text(with_error_details(xml(403, with_message), "r").await).await;
        assert_eq!(body, with_message);
        let unknown = "<Error><Code>SomethingNew</Code></Error>";
        let (_, body) = text(with_error_details(xml(400, unknown), "r").await).await;
        assert_eq!(body, unknown);
        let ok = "<ListAllMyBucketsResult/>";
        let (status, body) = text(with_error_details(xml(200, ok), "r").await).await;
        assert_eq!((status, body.as_str()), (200, ok));
    }
}
