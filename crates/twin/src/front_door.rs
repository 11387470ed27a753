//! The AWS API front door: read the SigV4 credential scope, pick the service handler, buffer the
//! body within its limit, and hand over.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt as _;

use crate::metrics::UNKNOWN;
use crate::service::{error_response, ApiAction, ApiRequest, Shape, Signing};
use crate::shared::{RequestMeta, RouteInfo, Shared};

/// Set (in the request's extensions) once the request is handed to a streaming service, which
/// the request timeout then no longer bounds.
#[derive(Clone, Default)]
pub(crate) struct Streamed(pub(crate) Arc<std::sync::atomic::AtomicBool>);

/// Unsigned requests that matched no internal route: AWS's answer to a request without
/// credentials, except for the Query actions a service serves unsigned
/// ([`AwsService::unsigned_actions`](crate::AwsService::unsigned_actions), STS's
/// `AssumeRoleWithWebIdentity`), which go to that service, and requests that are not Query
/// calls at all, which go to a streaming service serving anonymous requests (S3, which decides
/// them by bucket policy) when there is one.
pub(crate) async fn unsigned(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if !may_be_query_call(&req) {
        let anonymous = shared
            .streaming
            .values()
            .find(|s| s.serves_anonymous())
            .cloned();
        if let Some(service) = anonymous {
            return stream(&shared, service, req).await;
        }
    }
    let wanted = shared
        .services
        .values()
        .any(|s| !s.unsigned_actions().is_empty());
    if !wanted || !matches!(req.method(), &http::Method::POST | &http::Method::GET) {
        return handle(&shared, req).await;
    }
    let (parts, body) = req.into_parts();
    let meta = request_meta(&parts.extensions);
    let declared = declared_length(&parts.headers);
    let body = match read_body(body, shared.config.max_body_bytes, declared).await {
        Ok(body) => body,
        // Not worth a distinct answer: without credentials the request is refused anyway.
        Err(_) => Bytes::new(),
    };
    let action = query_action(parts.uri.query().unwrap_or(""), &parts.headers, &body);
    let target = action.as_deref().and_then(|action| {
        shared
            .services
            .values()
            .find(|s| s.unsigned_actions().contains(&action))
            .cloned()
    });
    let Some(service) = target else {
        return handle(&shared, Request::from_parts(parts, Body::from(body))).await;
    };
    let name = service.signing_name();
    let unsigned = Signing::Unsigned { service: name };
    let api = api_request(parts, body, &meta, unsigned);
    call(shared.as_ref(), service, api).await
}

/// Hands `api` to a buffered service, unless a fault rule answers first: its latency is waited
/// and its error answered in the service's protocol, before the handler (and so before the
/// signature is checked, or anything is done) runs.
async fn call(shared: &Shared, service: Arc<dyn crate::AwsService>, api: ApiRequest) -> Response {
    let name = service.signing_name();
    let faults = shared.fault_point(name);
    if faults.armed() {
        let operation = service.operation(&api);
        if let Some(error) = faults.inject(operation).await {
            let mut resp = service.error_response(&error, &api.request_id);
            resp.extensions_mut()
                .insert(ApiAction(operation.unwrap_or(UNKNOWN)));
            return route_answered(resp, name);
        }
    }
    let resp = service.handle(api).await;
    route_answered(resp, name)
}

/// True when an unsigned request may be a Query-protocol call: an `Action` in the query
/// string, or a form-encoded POST (whose body may name one).
fn may_be_query_call(req: &Request) -> bool {
    query_call(req.method(), req.uri(), req.headers())
}

/// [`may_be_query_call`] on a request's parts.
fn is_query_call(parts: &http::request::Parts) -> bool {
    query_call(&parts.method, &parts.uri, &parts.headers)
}

fn query_call(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap) -> bool {
    let in_query = uri.query().is_some_and(|q| {
        awswire::Params::parse(q.as_bytes())
            .ok()
            .is_some_and(|p| p.get("Action").is_some())
    });
    in_query || (method == http::Method::POST && is_form(headers))
}

/// A `multipart/form-data` POST: S3's browser-form upload (PostObject).
fn is_form_upload(req: &Request) -> bool {
    req.method() == http::Method::POST
        && req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

/// A SigV4 error in the envelope of `shape`, with AWS's status for it.
fn sigv4_error(e: &sigv4::Error, request_id: &str, shape: Shape, service: &str) -> Response {
    error_response(
        StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
        e.code(),
        &e.to_string(),
        request_id,
        shape,
        service,
    )
}

/// S3's answer to authentication it cannot parse: S3 has no `IncompleteSignature`, it names
/// the element that is malformed by where the signature travelled.
fn s3_parse_error(e: &sigv4::Error, parts: &http::request::Parts, request_id: &str) -> Response {
    let sigv4::Error::IncompleteSignature(message) = e else {
        return sigv4_error(e, request_id, Shape::S3, "s3");
    };
    let view = sigv4::Request::from_parts(parts, &[]);
    let code = match sigv4::presence(&view) {
        sigv4::Presence::SigV4 { query: true, .. } => "AuthorizationQueryParametersError",
        _ => "AuthorizationHeaderMalformed",
    };
    error_response(
        StatusCode::BAD_REQUEST,
        code,
        message,
        request_id,
        Shape::S3,
        "s3",
    )
}

/// S3's answer to a credential scoped to a region that does not exist: it names the
/// authorization element that is malformed, by where the signature travelled.
fn s3_region_error(region: &str, location: sigv4::AuthLocation, request_id: &str) -> Response {
    let region: String = region
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    let (code, message) = match location {
        sigv4::AuthLocation::Header => (
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; the region '{region}' is not a valid region."),
        ),
        sigv4::AuthLocation::Query => (
            "AuthorizationQueryParametersError",
            format!("Error parsing the X-Amz-Credential parameter; the region '{region}' is not a valid region."),
        ),
    };
    error_response(
        StatusCode::BAD_REQUEST,
        code,
        &message,
        request_id,
        Shape::S3,
        "s3",
    )
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Hands a request with its body unread to a [`StreamingService`](crate::StreamingService):
/// from here the request timeout no longer applies, the body's idle timeout does.
async fn stream(
    shared: &Shared,
    service: Arc<dyn crate::StreamingService>,
    req: Request,
) -> Response {
    let meta = request_meta(req.extensions());
    if let Some(streamed) = req.extensions().get::<Streamed>() {
        streamed.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let stall = crate::BodyStall::new(shared.config.body_idle_timeout);
    let name = service.signing_name();
    if is_form_upload(&req) {
        // A browser-form upload (S3's PostObject) carries its signature inside the body, where
        // the front door's gate cannot check it; the twin does not serve it, rather than let
        // another signature check decide.
        let resp = error_response(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "POST object uploads (multipart/form-data) are not served by the rolechain twin; use PutObject.",
            &meta.request_id,
            Shape::S3,
            name,
        );
        return route(resp, name, UNKNOWN);
    }
    let req = req.map(|body| crate::idle_body::with_idle_timeout(body, &stall));
    let resp = service
        .handle(crate::StreamRequest {
            request: req,
            source_ip: meta.peer.ip(),
            request_id: meta.request_id,
            received_at: meta.received_at,
            body_stall: stall,
            faults: shared.fault_point(name),
        })
        .await;
    route_answered(resp, name)
}

/// The Query `Action` of an unsigned request: from the query string, else from a form body.
fn query_action(query: &str, headers: &http::HeaderMap, body: &[u8]) -> Option<String> {
    // `Params::first`, not a parse of the whole body: the service parses it again anyway.
    let from = |bytes: &[u8]| awswire::Params::first(bytes, "Action").ok().flatten();
    if let Some(action) = from(query.as_bytes()) {
        return Some(action);
    }
    if is_form(headers) {
        from(body)
    } else {
        None
    }
}

/// Routes a request that carries (or should carry) SigV4 authentication.
pub(crate) async fn handle(shared: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let meta = request_meta(&parts.extensions);

    // The body is not needed to read the credential scope, so a request without usable
    // authentication or for an unknown service is refused before its body is read.
    let parsed = {
        let view = sigv4::Request::from_parts(&parts, &[]);
        sigv4::parse(&view).map(|signed| {
            (
                signed.scope().clone(),
                signed.security_token().map(str::to_owned),
                signed.location(),
            )
        })
    };
    // Before a scope names the service, the request's own shape does: a REST call that is not
    // a Query call is answered as S3 would (the only REST service reached unsigned-or-SigV2).
    let unscoped_shape = if !shared.streaming.is_empty() && !is_query_call(&parts) {
        Shape::S3
    } else {
        Shape::Query
    };
    let (scope, security_token, auth_location) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let resp = if unscoped_shape == Shape::S3 {
                s3_parse_error(&e, &parts, &meta.request_id)
            } else {
                sigv4_error(&e, &meta.request_id, Shape::Query, "")
            };
            return route(resp, UNKNOWN, UNKNOWN);
        }
    };
    tracing::Span::current().record("access_key_id", scope.access_key_id.as_str());

    if let Some(service) = shared.streaming.get(scope.service.as_str()).cloned() {
        let name = service.signing_name();
        if let Err(e) = service.region_rule().check(&scope.region) {
            tracing::debug!(error = %e, "credential scoped to an unknown region");
            let resp = s3_region_error(&scope.region, auth_location, &meta.request_id);
            return route(resp, name, UNKNOWN);
        }
        return stream(shared, service, Request::from_parts(parts, body)).await;
    }
    let Some(service) = shared.services.get(scope.service.as_str()).cloned() else {
        let resp = unknown_service(shared, &scope.service, &meta.request_id);
        return route(resp, UNKNOWN, UNKNOWN);
    };
    let name = service.signing_name();
    let shape = Shape::for_service(name);
    if let Err(e) = service.region_rule().check(&scope.region) {
        return route(
            sigv4_error(&e, &meta.request_id, shape, name),
            name,
            UNKNOWN,
        );
    }

    let limit = service
        .max_body_bytes()
        .unwrap_or(shared.config.max_body_bytes);
    let declared = declared_length(&parts.headers);
    let body = match read_body(body, limit, declared).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return route(
                too_large(limit, &meta.request_id, shape, name),
                name,
                UNKNOWN,
            );
        }
        Err(BodyError::Incomplete(e)) => {
            tracing::debug!(error = %e, "reading the request body failed");
            let resp = error_response(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "The request body could not be read completely.",
                &meta.request_id,
                shape,
                name,
            );
            return route(resp, name, UNKNOWN);
        }
    };

    let signing = Signing::SigV4 {
        scope,
        security_token,
        location: auth_location,
    };
    let api = api_request(parts, body, &meta, signing);
    call(shared, service, api).await
}

/// The request a service handler gets: the HTTP parts, the buffered body, the front door's
/// facts (`meta`) and how it is signed.
fn api_request(
    parts: http::request::Parts,
    body: Bytes,
    meta: &RequestMeta,
    signing: Signing,
) -> ApiRequest {
    ApiRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        signing,
        source_ip: meta.peer.ip(),
        request_id: meta.request_id.clone(),
        received_at: meta.received_at,
    }
}

/// The facts the server attached to the request (peer, id, arrival); fresh ones when absent.
fn request_meta(extensions: &http::Extensions) -> RequestMeta {
    extensions
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(RequestMeta::detached)
}

/// The body length the client declared (`Content-Length`), when it is a number.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// [`route`] for a service's response, with the action it named ([`ApiAction`]).
fn route_answered(resp: Response, service: &'static str) -> Response {
    let action = resp
        .extensions()
        .get::<ApiAction>()
        .map_or(UNKNOWN, |a| a.0);
    route(resp, service, action)
}

fn route(mut resp: Response, service: &'static str, action: &'static str) -> Response {
    resp.extensions_mut().insert(RouteInfo { service, action });
    resp
}

/// `InvalidAction` 400 naming the service: the credential scope asks for a service the twin
/// does not emulate. AWS has no error for "this endpoint serves several services and not that
/// one"; `InvalidAction` is the common Query-protocol error every SDK already treats as a
/// non-retryable client error, and the message says what is wrong.
fn unknown_service(shared: &Shared, service: &str, request_id: &str) -> Response {
    let served = shared.service_names();
    let served = if served.is_empty() {
        "none yet".to_string()
    } else {
        served.join(", ")
    };
    let printable: String = service
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    error_response(
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        &format!(
            "The rolechain twin does not serve the service '{printable}' named in the credential scope; it serves: {served}."
        ),
        request_id,
        Shape::Query,
        "",
    )
}

/// How much of an oversized body is read and thrown away before answering 413. A client that
/// is still sending when the server answers and closes sees a broken pipe instead of the
/// error (curl, urllib3 and hyper all do), so moderately oversized bodies are drained; beyond
/// this the connection is cut rather than spending more time on a request already refused.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Incomplete(axum::Error),
}

/// The whole body if it is at most `limit` bytes.
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, BodyError> {
    let limit = limit as u64;
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(BodyError::TooLarge);
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut seen: u64 = 0;
    let mut over = declared.is_some_and(|len| len > limit);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Incomplete)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > limit && !over {
            over = true;
            chunks = Vec::new();
        }
        if over {
            if seen > DRAIN_LIMIT {
                return Err(BodyError::TooLarge);
            }
            continue;
        }
        chunks.push(data);
    }
    if over {
        return Err(BodyError::TooLarge);
    }
    Ok(match chunks.len() {
        // One chunk is the common case (a small Query body): no copy.
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut whole = Vec::with_capacity(seen as usize);
            for chunk in &chunks {
                whole.extend_from_slice(chunk);
            }
            Bytes::from(whole)
        }
    })
}

fn too_large(limit: usize, request_id: &str, shape: Shape, service: &str) -> Response {
    let mut resp = error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("The request body is larger than the {limit}-byte limit."),
        request_id,
        shape,
        service,
    );
    // The rest of an oversized body may still be on its way: end the connection after the
    // answer rather than parse it as the next request.
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// The response when a request ran past the request timeout.
pub(crate) fn timed_out(request_id: &str, limit: std::time::Duration) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        &format!(
            "The request did not complete within {} s.",
            limit.as_secs_f64()
        ),
        request_id,
        Shape::Query,
        "",
    )
}
