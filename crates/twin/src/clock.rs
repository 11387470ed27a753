//! `/_rolechain/clock`: make time pass in the twin ([`twin_state::Clock`]).
//!
//! | route | does |
//! | --- | --- |
//! | `GET /_rolechain/clock` | `{"offsetSeconds", "now", "realNow"}` |
//! | `POST /_rolechain/clock` | body `{"advance": "55m"}` (`ms`, `s`, `m`, `h`, or seconds): moves the clock forward, answers as `GET` |
//!
//! Behind the admin host check like the other admin routes; JSON bodies only. The clock only
//! moves forward, at most ten years in all, and a restarted twin is back on real time.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::admin::{internal, json_response, read_json_body};
use crate::shared::{RouteInfo, Shared};

const ROUTE: RouteInfo = internal("clock");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance: String,
}

fn refused(status: StatusCode, message: String) -> Response {
    json_response(status, &json!({"error": message}), ROUTE)
}

fn state(clock: &twin_state::Clock) -> Value {
    let show = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    json!({
        "offsetSeconds": clock.offset().as_secs_f64(),
        "now": show(clock.now()),
        "realNow": show(OffsetDateTime::now_utc()),
    })
}

fn no_clock() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "this twin runs on real time (it keeps no clock)".to_owned(),
    )
}

/// `GET /_rolechain/clock`.
pub(crate) async fn show(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.clock {
        Some(store) => json_response(StatusCode::OK, &state(store.clock()), ROUTE),
        None => no_clock(),
    }
}

/// `POST /_rolechain/clock`.
pub(crate) async fn advance(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(store) = &shared.clock else {
        return no_clock();
    };
    let bytes = match read_json_body(&headers, body, 1024, ROUTE).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let request = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.is_object() => serde_json::from_value::<Advance>(value),
        Ok(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object: {\"advance\": \"55m\"}".to_owned(),
            )
        }
        Err(e) => Err(e),
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid ({{\"advance\": \"55m\"}}): {e}"),
            )
        }
    };
    let by = match twin_state::clock::parse_duration(&request.advance) {
        Ok(by) => by,
        Err(e) => return refused(StatusCode::BAD_REQUEST, format!("advance: {e}")),
    };
    match store.clock().advance(by) {
        Ok(offset) => {
            tracing::info!(
                advanced_by_ms = by.as_millis() as u64,
                offset_s = offset.as_secs(),
                "twin clock advanced"
            );
            json_response(StatusCode::OK, &state(store.clock()), ROUTE)
        }
        Err(e) => refused(StatusCode::BAD_REQUEST, format!("advance: {e}")),
    }
}
