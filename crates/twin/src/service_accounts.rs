//! `/_rolechain/serviceaccounts`: the local clusters' Kubernetes service accounts, for
//! `rolechain cluster apply|annotate|get` and `rolechain exec` (a local cluster has no API
//! server; this is the part of one that pod mutation reads).
//!
//! | route | does |
//! | --- | --- |
//! | `GET /_rolechain/serviceaccounts?cluster=ARN[&namespace=NS]` | a Kubernetes `List` |
//! | `GET /_rolechain/serviceaccounts/{ns}/{name}?cluster=ARN` | one `ServiceAccount` |
//! | `PUT …/{ns}/{name}?cluster=ARN` | apply (body: a `ServiceAccount`) |
//! | `PATCH …/{ns}/{name}?cluster=ARN` | annotate (body: `{"changes": […], "overwrite": bool}`) |
//! | `DELETE …/{ns}/{name}?cluster=ARN` | delete |
//! | `GET …/{ns}/{name}/association?cluster=ARN` | its EKS Pod Identity association, or 404 |
//! | `POST /_rolechain/oidc-provider?cluster=ARN` | associate the cluster's issuer with IAM (body: `{"account"?, "audience"?}`) |
//!
//! The last is `rolechain cluster associate-oidc-provider`, eksctl's `utils
//! associate-iam-oidc-provider --approve`: the IAM OIDC provider for the cluster's issuer, in
//! the cluster's account or another, accepting the audience (default `sts.amazonaws.com`),
//! created or completed, idempotently.
//!
//! Objects are shaped as the API server's (`apiVersion: v1`, `kind`, `metadata`), so what
//! reads them can use Kubernetes' own types. Errors are `{"error", "code"}` with the state
//! layer's status. Like the other admin routes, these answer only under the twin's own host
//! names, and bodies must be `application/json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use twin_state::{AnnotationChange, Cluster, ServiceAccount, StateError, Store};

use crate::admin::{internal, json_response, read_json_body};
use crate::shared::{RouteInfo, Shared};

/// The largest body accepted: a ServiceAccount's annotations may hold 256 KiB, plus framing.
const MAX_BODY_BYTES: usize = 300 * 1024;

const ROUTE: RouteInfo = internal("serviceaccounts");

/// Why a request was refused: the status, the code and the message of the JSON error.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_parameter(message: impl Into<String>) -> Refusal {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    fn bad_body(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    fn response(&self) -> Response {
        json_response(
            self.status,
            &json!({"error": self.message, "code": self.code}),
            ROUTE,
        )
    }
}

impl From<StateError> for Refusal {
    fn from(e: StateError) -> Refusal {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "service account storage failed");
        }
        Refusal::new(status, e.code(), e.to_string())
    }
}

/// The object as the API server shows it.
pub(crate) fn to_kubernetes(sa: &ServiceAccount) -> Value {
    let mut metadata = json!({
        "name": sa.name,
        "namespace": sa.namespace,
        "uid": sa.uid,
    });
    if let Some(at) = sa.created_at {
        if let Ok(text) = at.format(&time::format_description::well_known::Rfc3339) {
            metadata["creationTimestamp"] = Value::String(text);
        }
    }
    if !sa.annotations.is_empty() {
        metadata["annotations"] = json!(sa.annotations);
    }
    if !sa.labels.is_empty() {
        metadata["labels"] = json!(sa.labels);
    }
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata})
}

/// The query's `cluster` (an EKS cluster ARN) and `namespace`.
struct Query {
    cluster: String,
    namespace: Option<String>,
}

fn parse_query(raw: Option<&str>) -> Result<Query, Refusal> {
    let mut cluster = None;
    let mut namespace = None;
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "cluster" => cluster = Some(v.into_owned()),
            "namespace" => namespace = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some(cluster) = cluster.filter(|c| !c.is_empty()) else {
        return Err(Refusal::bad_parameter(
            "the query parameter cluster (the cluster's ARN) is required",
        ));
    };
    Ok(Query { cluster, namespace })
}

/// The cluster named by an ARN `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
fn find_cluster(store: &Store, arn: &str) -> Result<Cluster, Refusal> {
    let parsed = arn
        .strip_prefix("arn:aws:eks:")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(region, rest)| rest.split_once(":cluster/").map(|(a, n)| (region, a, n)));
    let Some((region, account, name)) = parsed.filter(|(r, a, n)| {
        !r.is_empty() && a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty()
    }) else {
        return Err(Refusal::bad_parameter(format!(
            "cluster: {arn:?} is not an EKS cluster ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME)"
        )));
    };
    Ok(store.get_cluster(account, region, name)?)
}

/// Runs `f` on the store off the async threads, with the query's cluster.
async fn with_cluster<T: Send + 'static>(
    shared: &Shared,
    query: Option<String>,
    f: impl FnOnce(&Store, &Cluster, Option<String>) -> Result<T, StateError> + Send + 'static,
) -> Result<T, Refusal> {
    let Some(store) = shared.local_clusters.clone() else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "this twin keeps no local clusters",
        ));
    };
    let query = parse_query(query.as_deref())?;
    let joined = tokio::task::spawn_blocking(move || {
        let cluster = find_cluster(&store, &query.cluster)?;
        Ok(f(&store, &cluster, query.namespace)?)
    })
    .await;
    match joined {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "a service account task failed");
            Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailure",
                "internal error",
            ))
        }
    }
}

fn answer(result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(body) => json_response(StatusCode::OK, &body, ROUTE),
        Err(refusal) => refusal.response(),
    }
}

/// `GET /_rolechain/serviceaccounts`.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    answer(
        with_cluster(&shared, q, |store, cluster, namespace| {
            let items: Vec<Value> = store
                .list_service_accounts(cluster, namespace.as_deref())?
                .iter()
                .map(to_kubernetes)
                .collect();
            Ok(json!({"apiVersion": "v1", "kind": "List", "items": items}))
        })
        .await,
    )
}

/// `GET /_rolechain/serviceaccounts/{ns}/{name}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            Ok(to_kubernetes(
                &store.get_service_account(cluster, &namespace, &name)?,
            ))
        })
        .await,
    )
}

/// `GET /_rolechain/serviceaccounts/{ns}/{name}/association`: the service account's EKS Pod
/// Identity association (what decides, as in the webhook, that its pods get container
/// credentials from the agent), or 404.
pub(crate) async fn association(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            twin_state::service_accounts::validate_namespace(&namespace)?;
            twin_state::service_accounts::validate_name(&name)?;
            match store.find_pod_identity_association(cluster, &namespace, &name)? {
                Some(a) => Ok(json!({
                    "associationId": a.association_id,
                    "associationArn": a.association_arn,
                    "roleArn": a.role_arn,
                    "targetRoleArn": a.target_role_arn,
                })),
                None => Err(StateError::ResourceNotFound(format!(
                    "No Pod Identity association for service account {namespace}/{name}"
                ))),
            }
        })
        .await,
    )
}

/// `DELETE /_rolechain/serviceaccounts/{ns}/{name}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            store.delete_service_account(cluster, &namespace, &name)?;
            Ok(json!({"deleted": format!("{namespace}/{name}")}))
        })
        .await,
    )
}

/// The body of `POST /_rolechain/oidc-provider`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcAssociationRequest {
    /// The account to register the provider in; the cluster's by default.
    #[serde(default)]
    account: Option<String>,
    /// The audience the provider must accept; `sts.amazonaws.com` by default (IRSA's).
    #[serde(default)]
    audience: Option<String>,
}

/// `POST /_rolechain/oidc-provider`: see the module's table.
pub(crate) async fn associate_oidc_provider(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_json_body(&headers, body, 4096, ROUTE).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    // An object only: serde would also read a struct from an array.
    let request = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.is_object() => serde_json::from_value::<OidcAssociationRequest>(value),
        Ok(_) => {
            return Refusal::bad_body("the body is not valid: expected a JSON object").response()
        }
        Err(e) => Err(e),
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => return Refusal::bad_body(format!("the body is not valid: {e}")).response(),
    };
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            let account = request.account.unwrap_or_else(|| cluster.account.clone());
            let audience = request.audience.as_deref().unwrap_or("sts.amazonaws.com");
            let (provider, outcome) =
                store.associate_oidc_provider(&account, &cluster.issuer_url, audience)?;
            let outcome = match outcome {
                twin_state::OidcAssociation::Created => "created",
                twin_state::OidcAssociation::AudienceAdded => "audience-added",
                twin_state::OidcAssociation::AlreadyAssociated => "already-associated",
            };
            Ok(json!({
                "outcome": outcome,
                "arn": provider.arn,
                "url": provider.url,
                "clientIds": provider.client_ids,
                "issuer": cluster.issuer_url,
            }))
        })
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The parts of a ServiceAccount that apply reads; the rest of a manifest (secrets,
/// `automountServiceAccountToken`, `uid`, …) is ignored as the twin keeps none of it.
#[derive(Deserialize)]
struct Manifest {
    #[serde(default, rename = "apiVersion")]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    metadata: Metadata,
}

/// A ServiceAccount's annotations and labels, as apply sets them.
struct Declared {
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

/// Reads an apply body: a ServiceAccount whose name and namespace, when given, are the path's.
fn parse_manifest(bytes: &[u8], namespace: &str, name: &str) -> Result<Declared, Refusal> {
    // Unknown metadata fields other than the usual read-only ones are ignored too: strip them
    // first so `deny_unknown_fields` names only real mistakes.
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::bad_body(format!("the body is not JSON: {e}")))?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "annotations" | "labels"));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| Refusal::bad_body(format!("the body is not a ServiceAccount: {e}")))?;
    if manifest.api_version.as_deref().is_some_and(|v| v != "v1") {
        return Err(Refusal::bad_body("apiVersion: a ServiceAccount is v1"));
    }
    if manifest
        .kind
        .as_deref()
        .is_some_and(|k| k != "ServiceAccount")
    {
        return Err(Refusal::bad_body(format!(
            "kind: expected ServiceAccount, got {:?}",
            manifest.kind.unwrap_or_default()
        )));
    }
    for (field, given, path) in [
        ("metadata.name", &manifest.metadata.name, name),
        (
            "metadata.namespace",
            &manifest.metadata.namespace,
            namespace,
        ),
    ] {
        if given.as_deref().is_some_and(|g| g != path) {
            return Err(Refusal::bad_body(format!(
                "{field}: {:?} does not match the request's {path:?}",
                given.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(Declared {
        annotations: manifest.metadata.annotations.unwrap_or_default(),
        labels: manifest.metadata.labels.unwrap_or_default(),
    })
}

/// `PUT /_rolechain/serviceaccounts/{ns}/{name}`: `{"result": "created"|"configured"|
/// "unchanged", "serviceAccount": {…}}`.
pub(crate) async fn apply(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_json_body(&headers, body, MAX_BODY_BYTES, ROUTE).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let declared = match parse_manifest(&bytes, &namespace, &name) {
        Ok(declared) => declared,
        Err(refusal) => return refusal.response(),
    };
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            let (sa, applied) = store.apply_service_account(
                cluster,
                &namespace,
                &name,
                declared.annotations,
                declared.labels,
            )?;
            Ok(json!({"result": applied, "serviceAccount": to_kubernetes(&sa)}))
        })
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotate {
    changes: Vec<AnnotationChange>,
    #[serde(default)]
    overwrite: bool,
}

/// The most changes one annotate request makes.
const MAX_CHANGES: usize = 1000;

/// `PATCH /_rolechain/serviceaccounts/{ns}/{name}`: the annotated object.
pub(crate) async fn annotate(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_json_body(&headers, body, MAX_BODY_BYTES, ROUTE).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let request: Annotate = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return Refusal::bad_body(format!(
                "the body is not {{\"changes\": [...], \"overwrite\": bool}}: {e}"
            ))
            .response()
        }
    };
    if request.changes.len() > MAX_CHANGES {
        return Refusal::bad_body(format!("changes: at most {MAX_CHANGES} in one request"))
            .response();
    }
    answer(
        with_cluster(&shared, q, move |store, cluster, _| {
            let sa = store.annotate_service_account(
                cluster,
                &namespace,
                &name,
                &request.changes,
                request.overwrite,
            )?;
            Ok(to_kubernetes(&sa))
        })
        .await,
    )
}
