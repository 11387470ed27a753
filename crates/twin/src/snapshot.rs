//! `GET /_rolechain/snapshot`: the read-only [`twin_state::Snapshot`] of the twin's state that
//! `rolechain explain pod` and `rolechain lint` reason over (roles with their policies, OIDC
//! providers, clusters, service accounts, Pod Identity associations, bucket policies). It holds
//! no secret. Like the other admin routes it answers only under the twin's own host names.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::admin::{internal, json_response};
use crate::shared::{RouteInfo, Shared};

const ROUTE: RouteInfo = internal("snapshot");

/// `GET /_rolechain/snapshot`.
pub(crate) async fn get(State(shared): State<Arc<Shared>>) -> Response {
    let Some(store) = shared.local_clusters.clone() else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "this twin serves no snapshot (no store)", "code": "ResourceNotFoundException"}),
            ROUTE,
        );
    };
    match tokio::task::spawn_blocking(move || store.snapshot()).await {
        Ok(Ok(snapshot)) => json_response(StatusCode::OK, &snapshot, ROUTE),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the snapshot failed");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": e.to_string(), "code": e.code()}),
                ROUTE,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "the snapshot task failed");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "internal error", "code": "ServiceFailure"}),
                ROUTE,
            )
        }
    }
}
