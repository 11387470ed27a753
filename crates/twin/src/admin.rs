//! The twin's own routes: health, metrics, the decision log, fault rules, and local OIDC
//! issuers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::json;

use crate::decisions::VerdictFilter;
use crate::faults::{self, FaultRule, RuleError};
use crate::shared::{RouteInfo, Shared};

/// Middleware of the admin routes: 421 Misdirected Request unless `Host` is the twin's own;
/// 400 for a request with more than one `Host` (RFC 9112, section 3.2), which must not pass
/// for the twin's own by its first one.
pub(crate) async fn require_own_host(
    State(shared): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.headers().get_all(http::header::HOST).iter().count() > 1 {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "a request may carry only one Host header"}),
            internal("misdirected"),
        );
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    if host.is_some_and(|h| shared.admin_hosts.allows(h)) {
        return next.run(req).await;
    }
    json_response(
        StatusCode::MISDIRECTED_REQUEST,
        &json!({"error": "the twin's admin endpoints answer only under its own address (Host: the listen address, localhost, 127.0.0.1 or [::1] with its port, or the --public-url host)"}),
        internal("misdirected"),
    )
}

/// Entries `/decisions` returns when no `limit` is given.
const DEFAULT_DECISIONS_LIMIT: usize = 100;

pub(crate) fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
    route: RouteInfo,
) -> Response {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "serializing a JSON response failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error":"internal error"}"#.to_vec(),
            )
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.extensions_mut().insert(route);
    resp
}

pub(crate) const fn internal(action: &'static str) -> RouteInfo {
    RouteInfo {
        service: "rolechain",
        action,
    }
}

const fn oidc(action: &'static str) -> RouteInfo {
    RouteInfo {
        service: "oidc",
        action,
    }
}

pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let route = internal("health");
    if shared.readiness.is_ready() {
        json_response(StatusCode::OK, &json!({"status": "ok"}), route)
    } else if shared.readiness.is_stopping() {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "stopping"}),
            route,
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "starting"}),
            route,
        )
    }
}

pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut resp = Response::new(Body::from(shared.metrics.encode()));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp.extensions_mut().insert(internal("metrics"));
    resp
}

pub(crate) async fn decisions(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let route = internal("decisions");
    let mut limit = DEFAULT_DECISIONS_LIMIT;
    let mut filter = VerdictFilter::Any;
    // The values are plain tokens (digits, words), so no percent-decoding is needed; anything
    // else fails to parse and is reported.
    for pair in query.as_deref().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => match value.parse::<usize>() {
                Ok(n) => limit = n,
                Err(_) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": "limit must be a non-negative integer"}),
                        route,
                    )
                }
            },
            "verdict" => match value.parse::<VerdictFilter>() {
                Ok(f) => filter = f,
                Err(message) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({ "error": message }),
                        route,
                    )
                }
            },
            _ => {}
        }
    }
    let entries = shared.decisions.recent(limit, filter);
    // Serialized outside the log's lock: `recent` returned shared pointers.
    let view: Vec<&crate::DecisionEntry> = entries.iter().map(|e| &**e).collect();
    json_response(StatusCode::OK, &view, route)
}

fn unknown_issuer(action: &'static str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "no such OIDC issuer"}),
        oidc(action),
    )
}

pub(crate) async fn discovery(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match shared.issuers.by_id(&id) {
        Some(entry) => cacheable(json_response(
            StatusCode::OK,
            &entry.issuer.discovery_document(),
            oidc("discovery"),
        )),
        None => unknown_issuer("discovery"),
    }
}

pub(crate) async fn jwks(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Some(entry) = shared.issuers.by_id(&id) else {
        return unknown_issuer("jwks");
    };
    // Keys rotated on disk by another process (`rolechain cluster rotate-keys`) are published
    // at the next JWKS fetch; a stat of the key directory when nothing changed.
    let issuer = Arc::clone(&entry.issuer);
    let reloaded = tokio::task::spawn_blocking(move || issuer.reload_if_changed()).await;
    match reloaded {
        Ok(Ok(true)) => {
            tracing::info!(issuer = %entry.issuer.issuer_url(), kids = ?entry.issuer.kids(), "issuer keys reloaded from disk")
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(issuer = %entry.issuer.issuer_url(), error = %e, "issuer keys not reloaded; serving the loaded ones")
        }
        Err(e) => tracing::warn!(error = %e, "issuer key reload task failed"),
    }
    cacheable(json_response(
        StatusCode::OK,
        &entry.issuer.jwks(),
        oidc("jwks"),
    ))
}

/// Short caching only: keys rotate, and a verifier holding a stale JWKS for long rejects
/// tokens signed with the new key.
fn cacheable(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    resp
}

/// `GET /_rolechain/faults`: the rules in force.
pub(crate) async fn faults_list(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &shared.faults.rules(), internal("faults"))
}

/// `POST /_rolechain/faults`: replaces the rules (LocalStack's semantics; `[]` clears them).
pub(crate) async fn faults_replace(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    change_faults(&shared, &headers, body, "replaced", |_, given| {
        given.ok_or_else(faults::no_rules)
    })
    .await
}

/// `PATCH /_rolechain/faults`: appends rules.
pub(crate) async fn faults_append(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    change_faults(&shared, &headers, body, "appended", |now, given| {
        faults::appended(now, given.ok_or_else(faults::no_rules)?)
    })
    .await
}

/// `DELETE /_rolechain/faults`: removes the rules equal to the given ones, or all of them
/// without a body.
pub(crate) async fn faults_remove(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    change_faults(&shared, &headers, body, "removed", |now, given| {
        Ok(given.map_or_else(Vec::new, |gone| faults::without(now, &gone)))
    })
    .await
}

/// Reads the body's rules (`None` for an empty body), applies `change` to the rules in force,
/// and answers with the result.
async fn change_faults(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    done: &'static str,
    change: impl FnOnce(&[FaultRule], Option<Vec<FaultRule>>) -> Result<Vec<FaultRule>, RuleError>,
) -> Response {
    let route = internal("faults");
    let bytes = match read_json_body(headers, body, faults::MAX_BODY_BYTES, route).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let given = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match faults::parse_rules(&bytes, &shared.service_names()) {
            Ok(rules) => Some(rules),
            Err(e) => return fault_error(&e),
        }
    };
    match shared.faults.update(|now| change(now, given)) {
        Ok(rules) => {
            tracing::info!(rules = rules.len(), "fault rules {done}");
            json_response(StatusCode::OK, &rules, route)
        }
        Err(e) => fault_error(&e),
    }
}

/// 400 with the error and the member it names.
fn fault_error(e: &RuleError) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": e.to_string(), "field": e.field()}),
        internal("faults"),
    )
}

/// The body of an admin write (fault rules, service accounts): `application/json` (so that a
/// web page cannot send it without a CORS preflight the twin never grants) and at most `limit`
/// bytes.
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    route: RouteInfo,
) -> Result<Bytes, Response> {
    let refuse = |status: StatusCode, message: String| {
        let mut resp = json_response(status, &json!({ "error": message }), route);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body may still be coming: do not read it as the next request.
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    };
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the {limit}-byte limit"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            tracing::debug!(error = %e, action = route.action, "reading an admin body failed");
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the body could not be read completely".into(),
            ));
        }
    };
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !bytes.is_empty() && !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be sent as Content-Type: application/json".into(),
        ));
    }
    Ok(bytes)
}
