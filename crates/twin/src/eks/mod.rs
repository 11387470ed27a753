//! The twin's EKS (signing name `eks`) and EKS Auth (`eks-auth`) services, both rest-json.
//!
//! # EKS
//!
//! | route | action | authorized as |
//! | --- | --- | --- |
//! | `POST /clusters` | `CreateCluster` (see [`ClusterLifecycle`]) | `eks:CreateCluster` on the cluster, `iam:PassRole` on its role (`iam:PassedToService` = `eks.amazonaws.com`) |
//! | `GET /clusters` | `ListClusters` (`maxResults` 1–100, `nextToken`) | `eks:ListClusters` on `arn:aws:eks:REGION:ACCOUNT:cluster/*` |
//! | `GET /clusters/{name}` | `DescribeCluster` | `eks:DescribeCluster` on the cluster |
//! | `DELETE /clusters/{name}` | `DeleteCluster` (with its associations) | `eks:DeleteCluster` on the cluster |
//! | `POST /clusters/{name}/pod-identity-associations` | `CreatePodIdentityAssociation` | `eks:CreatePodIdentityAssociation` on the cluster, `iam:PassRole` on the role (`iam:PassedToService` = `pods.eks.amazonaws.com`) |
//! | `GET /clusters/{name}/pod-identity-associations` | `ListPodIdentityAssociations` (`namespace`, `serviceAccount`, `maxResults` 1–100, `nextToken`) | `eks:ListPodIdentityAssociations` on the cluster |
//! | `GET …/pod-identity-associations/{id}` | `DescribePodIdentityAssociation` | on the association's ARN |
//! | `POST …/pod-identity-associations/{id}` | `UpdatePodIdentityAssociation` | on the association's ARN, `iam:PassRole` on a new role |
//! | `DELETE …/pod-identity-associations/{id}` | `DeletePodIdentityAssociation` | on the association's ARN |
//!
//! Clusters are the caller's account's in the credential scope's region (the twin has one
//! endpoint for every region). `cluster.identity.oidc.issuer` is the issuer the twin serves for
//! the cluster, so seed 000's and 002's `aws eks describe-cluster --query
//! cluster.identity.oidc.issuer` work as written.
//!
//! Association rules, as EKS answers them: the namespace is a DNS-1123 label and the service
//! account a DNS-1123 subdomain; `roleArn` is a role **in the cluster's account** that exists
//! ("Role provided in the request does not exist"); `targetRoleArn` is any role ARN (in
//! another account EKS cannot see it, so its existence is not checked); one association per
//! (namespace, service account) (`ResourceInUseException` "Association already exists: ID");
//! `policy` is an IAM policy and needs `disableSessionTags` true; at most 50 tags, none
//! `aws:`-prefixed. Ids are `a-` + 17 lowercase letters and digits, ARNs
//! `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`, `externalId`
//! `REGION/ACCOUNT/CLUSTER/NAMESPACE/SERVICE-ACCOUNT` when there is a target role.
//! `UpdatePodIdentityAssociation` with `targetRoleArn` `""` removes the target role and with
//! `policy` `""` removes the policy.
//!
//! Errors are rest-json: `x-amzn-ErrorType` and `{"message": …}`. A body that is not a JSON
//! object, or a member of the wrong JSON type, is `SerializationException` 400; unknown routes
//! `UnknownOperationException` 404; a denied request `AccessDeniedException` 403; SigV4
//! failures keep their codes (`InvalidSignatureException`-style codes of the front door:
//! `SignatureDoesNotMatch`, `InvalidClientTokenId`, `ExpiredToken`) in the rest-json shape.
//!
//! # EKS Auth
//!
//! See [`EksAuthService`].

mod associations;
mod auth;
mod clusters;

use std::collections::BTreeMap;
use std::sync::Arc;

use awswire::{json_response, AwsError, HttpResponse};
use serde_json::{Map, Value};
use twin_state::{Cluster, StateError, Store};

use crate::auth::AuthenticatedCaller;
use crate::authz::Authorizer;
use crate::decisions::DecisionLog;
use crate::failure::{Failure, StateWords};
use crate::service::{
    answered, blocking, to_response, ApiRequest, AwsService, BoxFuture, UNKNOWN_FAILURE,
};
use crate::state_auth::StoreAuthenticator;
use crate::Response;

pub use auth::{EksAuthConfig, EksAuthService};
pub use clusters::ClusterLifecycle;

use clusters::ClusterEvent;

/// The service principal EKS Pod Identity assumes roles as, and the audience of its tokens.
pub const POD_IDENTITY_PRINCIPAL: &str = "pods.eks.amazonaws.com";

/// The EKS service handler (clusters and pod identity associations). See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct EksService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    auth: StoreAuthenticator,
    authz: Authorizer,
    /// Serves created clusters' issuers; without it `CreateCluster` is refused.
    clusters: Option<Arc<dyn ClusterLifecycle>>,
}

impl EksService {
    /// EKS over `store`, recording decisions into `decisions` (give it
    /// [`TwinServer::decisions`](crate::TwinServer::decisions)).
    pub fn new(store: Arc<Store>, decisions: DecisionLog) -> Self {
        EksService {
            inner: Arc::new(Inner {
                auth: StoreAuthenticator::new(Arc::clone(&store)),
                authz: Authorizer::new(Arc::clone(&store), decisions),
                store,
                clusters: None,
            }),
        }
    }

    /// EKS that creates and deletes clusters, `lifecycle` serving their issuers.
    pub fn with_cluster_lifecycle(
        store: Arc<Store>,
        decisions: DecisionLog,
        lifecycle: Arc<dyn ClusterLifecycle>,
    ) -> Self {
        let mut eks = Self::new(store, decisions);
        if let Some(inner) = Arc::get_mut(&mut eks.inner) {
            inner.clusters = Some(lifecycle);
        }
        eks
    }
}

impl AwsService for EksService {
    fn signing_name(&self) -> &'static str {
        "eks"
    }

    fn operation(&self, req: &ApiRequest) -> Option<&'static str> {
        Route::of(req).as_ref().map(Route::action)
    }

    fn error_response(&self, error: &AwsError, request_id: &str) -> Response {
        to_response(error.to_rest_json_response(request_id))
    }

    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let request_id = req.request_id.clone();
            let route = Route::of(&req);
            let action = route.as_ref().map_or("unknown", Route::action);
            let serving = Arc::clone(&inner);
            let result = match blocking(move || serving.serve(&req, route)).await {
                Ok((wire, None)) => Ok(wire),
                Ok((wire, Some(event))) => inner.after(event).await.map(|()| wire),
                Err(e) => Err(e),
            };
            let wire = result.unwrap_or_else(|e| eks_error(e).to_rest_json_response(&request_id));
            answered(action, wire)
        })
    }
}

/// An EKS request's operation and path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    CreateCluster,
    ListClusters,
    DescribeCluster(String),
    DeleteCluster(String),
    CreateAssociation(String),
    ListAssociations(String),
    DescribeAssociation(String, String),
    UpdateAssociation(String, String),
    DeleteAssociation(String, String),
}

impl Route {
    fn of(req: &ApiRequest) -> Option<Route> {
        let segments = path_segments(req.uri.path())?;
        let method = &req.method;
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let route = match (method.as_str(), segs.as_slice()) {
            ("POST", ["clusters"]) => Route::CreateCluster,
            ("GET", ["clusters"]) => Route::ListClusters,
            ("GET", ["clusters", name]) => Route::DescribeCluster((*name).to_owned()),
            ("DELETE", ["clusters", name]) => Route::DeleteCluster((*name).to_owned()),
            ("POST", ["clusters", name, "pod-identity-associations"]) => {
                Route::CreateAssociation((*name).to_owned())
            }
            ("GET", ["clusters", name, "pod-identity-associations"]) => {
                Route::ListAssociations((*name).to_owned())
            }
            ("GET", ["clusters", name, "pod-identity-associations", id]) => {
                Route::DescribeAssociation((*name).to_owned(), (*id).to_owned())
            }
            ("POST", ["clusters", name, "pod-identity-associations", id]) => {
                Route::UpdateAssociation((*name).to_owned(), (*id).to_owned())
            }
            ("DELETE", ["clusters", name, "pod-identity-associations", id]) => {
                Route::DeleteAssociation((*name).to_owned(), (*id).to_owned())
            }
            _ => return None,
        };
        Some(route)
    }

    fn action(&self) -> &'static str {
        match self {
            Route::CreateCluster => "CreateCluster",
            Route::ListClusters => "ListClusters",
            Route::DescribeCluster(_) => "DescribeCluster",
            Route::DeleteCluster(_) => "DeleteCluster",
            Route::CreateAssociation(_) => "CreatePodIdentityAssociation",
            Route::ListAssociations(_) => "ListPodIdentityAssociations",
            Route::DescribeAssociation(..) => "DescribePodIdentityAssociation",
            Route::UpdateAssociation(..) => "UpdatePodIdentityAssociation",
            Route::DeleteAssociation(..) => "DeletePodIdentityAssociation",
        }
    }
}

/// The percent-decoded segments of a path (`/clusters/a%2Db` → `["clusters", "a-b"]`), or
/// `None` when a segment is empty, holds a `%` not followed by two hex digits, or is not valid
/// UTF-8 once decoded. A `+` is a plus, as in any URL path.
pub(crate) fn path_segments(path: &str) -> Option<Vec<String>> {
    let trimmed = path.strip_prefix('/')?;
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed
        .split('/')
        .map(|seg| {
            if seg.is_empty() || !well_escaped(seg) {
                return None;
            }
            percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        })
        .collect()
}

/// Whether every `%` of `seg` starts a `%XX` escape: `percent-encoding` passes a malformed one
/// through as text, and the twin refuses such a path as the route it cannot be.
fn well_escaped(seg: &str) -> bool {
    let bytes = seg.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// `SerializationException` 400: the body or a member is not what the model says.
pub(crate) fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new("SerializationException", message, 400)
}

/// A rest-json request body: a JSON object (an empty body is an empty object). Members are
/// read by name; unknown members are ignored, as AWS does.
pub(crate) struct JsonBody(Map<String, Value>);

impl JsonBody {
    pub(crate) fn parse(body: &[u8]) -> Result<JsonBody, AwsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(JsonBody(map)),
            Ok(_) => Err(serialization("The request body must be a JSON object.")),
            Err(e) => Err(serialization(format!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    }

    /// A string member (`null` counts as absent).
    /// The member `name`, whatever its JSON type (`null` is absent).
    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(serialization(format!(
                "The member '{name}' must be a string."
            ))),
        }
    }

    /// A required string member: `InvalidParameterException` naming it when absent.
    pub(crate) fn required_str(&self, name: &str) -> Result<String, AwsError> {
        self.str(name)?.ok_or_else(|| missing(name))
    }

    /// A boolean member.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(serialization(format!(
                "The member '{name}' must be a boolean."
            ))),
        }
    }

    /// A map of strings to strings (`tags`).
    pub(crate) fn string_map(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(serialization(format!(
                        "The values of the member '{name}' must be strings."
                    ))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(_) => Err(serialization(format!(
                "The member '{name}' must be an object of strings."
            ))),
        }
    }
}

/// `InvalidParameterException` for a required member that is absent, in Coral's words.
pub(crate) fn missing(name: &str) -> AwsError {
    AwsError::invalid_parameter_exception(format!(
        "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
    ))
}

/// The error an EKS client gets for `e`: SigV4 and store codes pass through, the twin's own
/// failures become `ServerException` (details logged, never sent), STS's `AccessDenied`
/// becomes `AccessDeniedException`.
fn eks_error(e: AwsError) -> AwsError {
    // A `ServerException` is one this module worded for the caller; other failures may carry
    // internals, which go to the log only.
    if e.status >= 500 && e.code != "ServerException" {
        tracing::error!(code = %e.code, message = %e.message, "eks request failed");
        return AwsError::server_exception(UNKNOWN_FAILURE);
    }
    if e.code == "AccessDenied" {
        return AwsError::access_denied_exception(e.message, 403);
    }
    e
}

/// What EKS's request handlers answer: store errors convert in EKS's words.
pub(crate) type Out = Result<HttpResponse, Failure<Eks>>;

/// EKS's rest-json protocol, for [`Failure`]: store errors in EKS's codes.
pub(crate) struct Eks;

impl StateWords for Eks {
    fn state_error(error: StateError) -> AwsError {
        state_error(error)
    }
}

/// A store error as EKS answers it.
pub(crate) fn state_error(e: StateError) -> AwsError {
    match e {
        StateError::ResourceNotFound(m) | StateError::NoSuchEntity(m) => {
            AwsError::resource_not_found(m)
        }
        StateError::ResourceInUse(m) => AwsError::resource_in_use(m),
        StateError::InvalidInput(m)
        | StateError::Validation(m)
        | StateError::MalformedPolicyDocument(m) => AwsError::invalid_parameter_exception(m),
        other => {
            tracing::error!(error = %other, "eks store operation failed");
            AwsError::server_exception(UNKNOWN_FAILURE)
        }
    }
}

/// A `maxResults` query parameter: an integer from 1 to 100.
pub(crate) fn max_results(query: &awswire::Params) -> Result<usize, AwsError> {
    let Some(raw) = query.get("maxResults") else {
        return Ok(100);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(AwsError::invalid_parameter_exception(format!(
            "1 validation error detected: Value '{}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100",
            printable(raw)
        ))),
    }
}

/// A client value for an error message: at most 256 characters, control characters replaced.
pub(crate) fn printable(value: &str) -> String {
    value
        .chars()
        .take(256)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn query_params(req: &ApiRequest) -> Result<awswire::Params, AwsError> {
    awswire::Params::parse(req.uri.query().unwrap_or("").as_bytes())
        .map_err(|e| serialization(e.message))
}

impl Inner {
    /// Tells the lifecycle about a committed cluster change. A created cluster whose issuer
    /// cannot be served is removed again, and the request fails.
    async fn after(self: &Arc<Self>, event: ClusterEvent) -> Result<(), AwsError> {
        let Some(lifecycle) = self.clusters.clone() else {
            return Ok(());
        };
        match event {
            ClusterEvent::Deleted(cluster) => {
                lifecycle.deleted(cluster).await;
                Ok(())
            }
            ClusterEvent::Created(cluster) => {
                let Err(reason) = lifecycle.created(cluster.clone()).await else {
                    return Ok(());
                };
                tracing::error!(cluster = %cluster.arn, %reason, "the new cluster's issuer cannot be served; removing the cluster");
                let inner = Arc::clone(self);
                let (account, region, name) = (
                    cluster.account.clone(),
                    cluster.region.clone(),
                    cluster.name.clone(),
                );
                let _ = blocking(move || {
                    inner
                        .store
                        .delete_cluster(&account, &region, &name)
                        .map_err(state_error)
                })
                .await;
                Err(AwsError::server_exception(format!(
                    "The cluster {} was not created: the twin could not serve its OIDC issuer (its log says why).",
                    cluster.name
                )))
            }
        }
    }

    fn serve(
        &self,
        req: &ApiRequest,
        route: Option<Route>,
    ) -> Result<(HttpResponse, Option<ClusterEvent>), AwsError> {
        let caller = req
            .authenticate(&self.auth, time::OffsetDateTime::now_utc())
            .map_err(|e| AwsError::new(e.code, e.message, e.status.as_u16()))?;
        let Some(route) = route else {
            return Err(unknown_route("EKS", req));
        };
        let Some(account) = caller.principal.account().map(str::to_owned) else {
            return Err(AwsError::access_denied_exception(
                format!("{} cannot call EKS.", caller.arn()),
                403,
            ));
        };
        let call = Call {
            inner: self,
            req,
            caller,
            account,
        };
        let changing = |(wire, event)| (wire, Some(event));
        let plain = |wire| (wire, None);
        let answered: Result<_, Failure<Eks>> = match route {
            Route::CreateCluster => call.create_cluster().map(changing),
            Route::ListClusters => call.list_clusters().map(plain),
            Route::DescribeCluster(name) => call.describe_cluster(&name).map(plain),
            Route::DeleteCluster(name) => call.delete_cluster(&name).map(changing),
            Route::CreateAssociation(name) => call.create_association(&name).map(plain),
            Route::ListAssociations(name) => call.list_associations(&name).map(plain),
            Route::DescribeAssociation(name, id) => {
                call.describe_association(&name, &id).map(plain)
            }
            Route::UpdateAssociation(name, id) => call.update_association(&name, &id).map(plain),
            Route::DeleteAssociation(name, id) => call.delete_association(&name, &id).map(plain),
        };
        answered.map_err(Failure::into_aws)
    }
}

/// One authenticated EKS request.
struct Call<'a> {
    inner: &'a Inner,
    req: &'a ApiRequest,
    caller: AuthenticatedCaller,
    /// The caller's account: the clusters it names are in it.
    account: String,
}

impl Call<'_> {
    fn region(&self) -> &str {
        self.req.region().unwrap_or_default()
    }

    /// Authorizes `action` on `resource` (owned by the caller's account).
    fn authorize(
        &self,
        action: &str,
        resource: &str,
        extra: &dyn Fn(&mut iam::RequestContext),
    ) -> Result<(), AwsError> {
        self.inner
            .authz
            .authorize_request(
                self.req,
                &self.caller,
                action,
                resource,
                &self.account,
                None,
                extra,
            )
            .map(|_| ())
            .map_err(|e| e.to_aws_error(action, &self.caller.arn(), resource))
    }

    /// The named cluster, once the caller may perform `action` on it ([`authorized_cluster`]).
    fn cluster(&self, name: &str, action: &str) -> Result<Cluster, AwsError> {
        authorized_cluster(
            &self.inner.authz,
            &self.inner.store,
            self.req,
            &self.caller,
            &self.account,
            name,
            action,
        )
    }

    /// Whether `account`'s role `name` exists with the ARN `role_arn` (one recreated under
    /// another path is another role).
    fn role_exists(&self, account: &str, name: &str, role_arn: &str) -> Result<bool, AwsError> {
        match self.inner.store.get_role(account, name) {
            Ok(role) => Ok(role.arn == role_arn),
            Err(StateError::NoSuchEntity(_)) => Ok(false),
            Err(e) => Err(state_error(e)),
        }
    }

    fn ok(&self, body: &Value) -> Out {
        Ok(json_response(200, &self.req.request_id, body))
    }
}

/// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME` (the store gives a cluster the same ARN).
pub(crate) fn cluster_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:eks:{region}:{account}:cluster/{name}")
}

/// The named cluster of `account` in the request's region, once `caller` may perform `action`
/// on it (EKS and EKS Auth). The cluster ARN is authorized before the lookup, so a caller
/// without permission learns nothing about which clusters exist. A denial is `AccessDenied`,
/// which each service answers in its own shape.
pub(crate) fn authorized_cluster(
    authz: &Authorizer,
    store: &Store,
    req: &ApiRequest,
    caller: &AuthenticatedCaller,
    account: &str,
    name: &str,
    action: &str,
) -> Result<Cluster, AwsError> {
    let region = req.region().unwrap_or_default();
    let arn = cluster_arn(region, account, name);
    authz
        .authorize_request(req, caller, action, &arn, account, None, &|_| {})
        .map_err(|e| e.to_aws_error(action, &caller.arn(), &arn))?;
    store
        .get_cluster(account, region, name)
        .map_err(state_error)
}

/// `UnknownOperationException` 404 for a route `service` does not serve.
pub(crate) fn unknown_route(service: &str, req: &ApiRequest) -> AwsError {
    AwsError::new(
        "UnknownOperationException",
        format!(
            "No {service} operation is served at {} {}.",
            req.method,
            printable(req.uri.path())
        ),
        404,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_decode_and_reject_empty() {
        assert_eq!(
            path_segments("/clusters/a%2Db/pod-identity-associations/"),
            Some(vec![
                "clusters".to_owned(),
                "a-b".to_owned(),
                "pod-identity-associations".to_owned()
            ])
        );
        assert_eq!(path_segments("/clusters//x"), None);
        assert_eq!(path_segments("/clusters/a%zz"), None);
        assert_eq!(path_segments("/clusters/a%2"), None);
        assert_eq!(path_segments("/clusters/%FF"), None);
        assert_eq!(
            path_segments("/clusters/a+b%20c"),
            Some(vec!["clusters".to_owned(), "a+b c".to_owned()])
        );
        assert_eq!(path_segments("clusters"), None);
    }

    #[test]
    fn json_body_types() {
        assert!(JsonBody::parse(b"").is_ok());
        assert_eq!(
            JsonBody::parse(b"[1]").err().map(|e| e.code),
            Some("SerializationException".into())
        );
        assert_eq!(
            JsonBody::parse(b"{").err().map(|e| e.code),
            Some("SerializationException".into())
        );
        let body = JsonBody::parse(br#"{"a": 1, "b": "x", "t": {"k": 2}}"#).unwrap();
        assert_eq!(body.str("b").unwrap().as_deref(), Some("x"));
        assert!(body.str("a").unwrap_err().message.contains("'a'"));
        assert!(body.string_map("t").is_err());
        assert_eq!(
            body.required_str("namespace").unwrap_err().code,
            "InvalidParameterException"
        );
    }
}
