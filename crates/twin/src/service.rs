//! What a service handler implements and what it receives.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use awswire::{AwsError, HttpResponse};
use axum::body::{Body, Bytes};
use axum::response::Response;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode, Uri};
use sigv4::{AuthLocation, CredentialScope};
use time::OffsetDateTime;

/// A boxed, `Send` future: [`AwsService::handle`] returns one so the trait stays object-safe
/// (`Arc<dyn AwsService>`) without `async_trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One AWS service behind the front door (STS, IAM, EKS, EKS Auth, S3), chosen by the service
/// name of the request's SigV4 credential scope.
///
/// The front door has parsed the SigV4 data and buffered the body when `handle` is called, but
/// has **not** verified the signature: the handler looks the key up and verifies with
/// [`ApiRequest::authenticate`], because what an unknown key or a bad signature means can differ
/// per service (S3 serves anonymous requests, the EKS token flow presigns STS).
pub trait AwsService: Send + Sync + 'static {
    /// The SigV4 signing name this handler serves: `sts`, `iam`, `eks`, `eks-auth`, `s3`.
    fn signing_name(&self) -> &'static str;

    /// Handles one request. Insert an [`ApiAction`] into the response's extensions to name the
    /// action in metrics and logs.
    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response>;

    /// The largest body this service accepts, when it differs from
    /// [`TwinConfig::max_body_bytes`](crate::TwinConfig::max_body_bytes) (S3 uploads).
    fn max_body_bytes(&self) -> Option<usize> {
        None
    }

    /// The regions a credential scope may name for this service: any real region, unless
    /// the service is global (IAM: its partition's signing region only), as AWS checks.
    fn region_rule(&self) -> sigv4::RegionRule {
        sigv4::RegionRule::Regional
    }

    /// Query-protocol actions this service answers **without** SigV4, as AWS does for STS's
    /// `AssumeRoleWithWebIdentity` and `AssumeRoleWithSAML` (the token or assertion is the
    /// credential). An unsigned request whose `Action` (query string or form body) is one of
    /// these reaches [`handle`](Self::handle) with [`ApiRequest::is_signed`] false; every other
    /// unsigned request is answered `MissingAuthenticationToken` by the front door. Default:
    /// none.
    fn unsigned_actions(&self) -> &'static [&'static str] {
        &[]
    }

    /// The operation `req` calls, as [`handle`](Self::handle) would route it, named without
    /// handling it (no authentication, no side effect); `None` when it names none the service
    /// serves. The fault rules of `/_rolechain/faults` match on it. Default: `None` (only rules
    /// without an `operation` apply).
    fn operation(&self, req: &ApiRequest) -> Option<&'static str> {
        let _ = req;
        None
    }

    /// `error` as this service answers errors, in its wire protocol, carrying `request_id`:
    /// how an injected fault is answered. Default: the front door's Query XML envelope.
    fn error_response(&self, error: &AwsError, request_id: &str) -> Response {
        let name = self.signing_name();
        error_response(
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &error.code,
            &error.message,
            request_id,
            Shape::for_service(name),
            name,
        )
    }
}

/// The action a response answered, for the `action` label of
/// `rolechain_twin_requests_total` and the request's log line. `&'static str` keeps the label's
/// cardinality bounded by the code, never by what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiAction(pub &'static str);

/// How a request that reached a service is signed, as the front door read it (the signature
/// is verified by [`ApiRequest::authenticate`]).
#[derive(Clone)]
pub enum Signing {
    /// SigV4, in the `Authorization` header or a presigned query.
    SigV4 {
        /// The credential scope: access key id, date, region, service.
        scope: CredentialScope,
        /// The session token (`x-amz-security-token`), for session credentials.
        security_token: Option<String>,
        /// Whether the signature came in the header or the query.
        location: AuthLocation,
    },
    /// No signature: let through for one of the service's
    /// [`unsigned_actions`](AwsService::unsigned_actions); authenticating it fails with
    /// `MissingAuthenticationToken`.
    Unsigned {
        /// The signing name of the service it was routed to.
        service: &'static str,
    },
}

impl std::fmt::Debug for Signing {
    // The session token is a secret: a fingerprint only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signing::SigV4 {
                scope,
                security_token,
                location,
            } => f
                .debug_struct("SigV4")
                .field("scope", scope)
                .field(
                    "security_token",
                    &security_token.as_deref().map(crate::ids::log_fingerprint),
                )
                .field("location", location)
                .finish(),
            Signing::Unsigned { service } => f
                .debug_struct("Unsigned")
                .field("service", service)
                .finish(),
        }
    }
}

/// A request that reached a service handler: SigV4 parsed (not yet verified) and the body
/// buffered within the size limit.
#[derive(Clone)]
pub struct ApiRequest {
    /// The HTTP method.
    pub method: Method,
    /// The request target as sent (still percent-encoded), with the query.
    pub uri: Uri,
    /// All request headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// How the request is signed, as the front door read it (not yet verified).
    pub signing: Signing,
    /// The client's address (`aws:SourceIp`).
    pub source_ip: IpAddr,
    /// This request's id, also sent back as `x-amzn-RequestId`.
    pub request_id: String,
    /// When the twin received the request.
    pub received_at: OffsetDateTime,
}

impl std::fmt::Debug for ApiRequest {
    // Header values, the query and the body carry signatures and session tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("signing", &self.signing)
            .field("source_ip", &self.source_ip)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl ApiRequest {
    /// False for an unsigned request the front door let through for one of the service's
    /// [`unsigned_actions`](AwsService::unsigned_actions) ([`Signing::Unsigned`]).
    pub fn is_signed(&self) -> bool {
        matches!(self.signing, Signing::SigV4 { .. })
    }

    /// The credential scope of a signed request.
    pub fn scope(&self) -> Option<&CredentialScope> {
        match &self.signing {
            Signing::SigV4 { scope, .. } => Some(scope),
            Signing::Unsigned { .. } => None,
        }
    }

    /// The access key id the request was signed with.
    pub fn access_key_id(&self) -> Option<&str> {
        self.scope().map(|s| s.access_key_id.as_str())
    }

    /// The region of the credential scope (`None` unsigned).
    pub fn region(&self) -> Option<&str> {
        self.scope().map(|s| s.region.as_str())
    }

    /// The service the request was signed for (its credential scope), or routed to.
    pub fn service(&self) -> &str {
        match &self.signing {
            Signing::SigV4 { scope, .. } => &scope.service,
            Signing::Unsigned { service } => service,
        }
    }

    /// A `sigv4` view of this request, for re-parsing and verification.
    pub fn sigv4_view(&self) -> sigv4::Request<'_> {
        let mut headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        // HTTP/1.1 clients always send Host; an absolute-form target is the only other place
        // the signed host can come from.
        if !self.headers.contains_key(http::header::HOST) {
            if let Some(authority) = self.uri.authority() {
                headers.push(("host", authority.as_str().as_bytes()));
            }
        }
        sigv4::Request {
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query().unwrap_or(""),
            headers,
            body: &self.body,
        }
    }
}

/// A service that reads request bodies itself, as they arrive (S3: objects of any size, and
/// SigV4's chunked payload signing, which only the service can check chunk by chunk).
///
/// The front door routes to it by the credential scope's service as it does for an
/// [`AwsService`], but neither buffers the body nor applies the body limit; the service
/// verifies the signature itself. Nor does the request timeout apply once the request is
/// handed over: the body ends with an error after
/// [`TwinConfig::body_idle_timeout`](crate::TwinConfig::body_idle_timeout) without bytes
/// instead ([`StreamRequest::body_stall`]). With [`serves_anonymous`](Self::serves_anonymous), unsigned
/// requests that are not Query-protocol calls reach it too (S3 decides anonymous access by
/// bucket policy).
pub trait StreamingService: Send + Sync + 'static {
    /// The SigV4 signing name it serves (`s3`).
    fn signing_name(&self) -> &'static str;

    /// Handles one request. Insert an [`ApiAction`] into the response's extensions to name the
    /// action in metrics and logs.
    fn handle(&self, req: StreamRequest) -> BoxFuture<'_, Response>;

    /// The regions a credential scope may name: any real region by default.
    fn region_rule(&self) -> sigv4::RegionRule {
        sigv4::RegionRule::Regional
    }

    /// Whether unsigned requests (other than Query-protocol calls) come here. Default: no.
    fn serves_anonymous(&self) -> bool {
        false
    }
}

/// A request for a [`StreamingService`]: the HTTP request with its body unread.
pub struct StreamRequest {
    /// The request; the body streams from the connection.
    pub request: http::Request<axum::body::Body>,
    /// The client's address (`aws:SourceIp`).
    pub source_ip: IpAddr,
    /// This request's id, also sent back as `x-amzn-RequestId` (and `x-amz-request-id`).
    pub request_id: String,
    /// When the twin received the request.
    pub received_at: OffsetDateTime,
    /// Set when the body was ended because the client paused longer than
    /// [`TwinConfig::body_idle_timeout`](crate::TwinConfig::body_idle_timeout) (the body then
    /// fails with [`BodyIdle`](crate::BodyIdle)): answer with the protocol's timeout error.
    pub body_stall: crate::BodyStall,
    /// The fault rules of `/_rolechain/faults` for this service: call
    /// [`FaultPoint::inject`](crate::FaultPoint::inject) once the operation is known, and
    /// answer with the error it returns, if any.
    pub faults: crate::FaultPoint,
}

impl std::fmt::Debug for StreamRequest {
    // Headers and the query carry signatures and session tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRequest")
            .field("method", self.request.method())
            .field("path", &self.request.uri().path())
            .field("source_ip", &self.source_ip)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// What AWS says of its own failures; the detail is logged, never sent.
pub(crate) const UNKNOWN_FAILURE: &str =
    "The request processing has failed because of an unknown error, exception or failure.";

/// Runs synchronous store work on tokio's blocking pool. `None` when the task panicked
/// (logged, naming `service`): the handler answers with its service's own failure.
pub(crate) async fn on_blocking_pool<T, F>(service: &str, f: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => Some(out),
        Err(e) => {
            tracing::error!(error = %e, service, "handler task failed");
            None
        }
    }
}

/// [`on_blocking_pool`] for work that answers AWS errors (STS, EKS, EKS Auth): a panicked task
/// is `InternalFailure` 500.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, AwsError>
where
    F: FnOnce() -> Result<T, AwsError> + Send + 'static,
    T: Send + 'static,
{
    on_blocking_pool("worker", f)
        .await
        .unwrap_or_else(|| Err(AwsError::internal_failure(UNKNOWN_FAILURE)))
}

/// The HTTP response of a wire response (status, headers, body). Headers that are not valid
/// HTTP are dropped; the server adds `x-amzn-RequestId` to every response itself.
pub(crate) fn to_response(wire: HttpResponse) -> Response {
    let mut resp = Response::new(Body::from(wire.body));
    *resp.status_mut() =
        StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in wire.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// [`to_response`] naming the `action` it answered ([`ApiAction`]) for metrics and logs.
pub(crate) fn answered(action: &'static str, wire: HttpResponse) -> Response {
    let mut resp = to_response(wire);
    resp.extensions_mut().insert(ApiAction(action));
    resp
}

/// `Name { store: …, config: …, .. }`: what a service's `Debug` shows (its authenticator and
/// verifier hold nothing worth printing).
pub(crate) fn debug_service(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    store: &twin_state::Store,
    config: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("store", store)
        .field("config", config)
        .finish_non_exhaustive()
}

// The XML error envelopes the front door answers with before a service handler takes over,
// and the default for `AwsService::error_response`: kept here, beside the trait whose default
// they are, rather than in a module of their own.

/// Which of AWS's XML error envelopes to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`:
    /// the Query protocol (STS, IAM), also used for services whose protocol is unknown here.
    Query,
    /// `<Error><Code/><Message/><RequestId/></Error>`: S3.
    S3,
}

impl Shape {
    pub(crate) fn for_service(service: &str) -> Shape {
        if sigv4::ServiceRules::for_service(service) == sigv4::ServiceRules::S3 {
            Shape::S3
        } else {
            Shape::Query
        }
    }
}

/// An AWS-shaped XML error. `x-amzn-ErrorType` carries the code too, which is where
/// rest-json clients (EKS, EKS Auth) look when the body is not JSON they can read.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    shape: Shape,
    service: &str,
) -> Response {
    let code_x = escape(code);
    let message_x = escape(message);
    let id_x = escape(request_id);
    let body = match shape {
        Shape::S3 => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code_x}</Code><Message>{message_x}</Message><RequestId>{id_x}</RequestId></Error>"
        ),
        Shape::Query => {
            let kind = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let ns = match service {
                "sts" => " xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"",
                "iam" => " xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"",
                _ => "",
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse{ns}><Error><Type>{kind}</Type><Code>{code_x}</Code><Message>{message_x}</Message></Error><RequestId>{id_x}</RequestId></ErrorResponse>"
            )
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    resp
}

/// XML escaping for element text (quotes need none there); also drops the control characters XML 1.0 cannot carry at all, which a
/// hostile credential scope could otherwise smuggle into a message.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;\"'?");
    }
}
