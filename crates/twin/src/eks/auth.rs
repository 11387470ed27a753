//! EKS Auth's `AssumeRoleForPodIdentity`: what the EKS Pod Identity agent on a node calls to
//! turn a pod's service-account token into role credentials.

use std::sync::Arc;

use awswire::{json_response, AwsError, HttpResponse};
use iam::Principal;
use serde_json::{json, Value};
use twin_state::{Cluster, PodIdentityAssociation, Store, Tag};

use super::{
    authorized_cluster, path_segments, printable, state_error, unknown_route, JsonBody,
    POD_IDENTITY_PRINCIPAL,
};
use crate::auth::{AuthenticatedCaller, Authenticator};
use crate::authz::Authorizer;
use crate::service::{
    answered, blocking, to_response, ApiRequest, AwsService, BoxFuture, UNKNOWN_FAILURE,
};
use crate::sts::ServiceAssumeRole;
use crate::{Response, StsService};

const ACTION: &str = "eks-auth:AssumeRoleForPodIdentity";

/// EKS Auth's one operation.
const OPERATION: &str = "AssumeRoleForPodIdentity";

/// Settings of [`EksAuthService`]. Build with `EksAuthConfig::default()` and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EksAuthConfig {
    /// Length of the session of the association's role. Default 6 hours: the EKS Pod Identity
    /// agent caches those credentials for 6 hours (EKS User Guide, "Access AWS Resources using
    /// EKS Pod Identity Target IAM Roles", caching considerations). The role's
    /// `MaxSessionDuration` does not limit it: EKS sets it, not the caller.
    pub session_duration_seconds: u32,
    /// Length of the target role's session: role chaining's 1-hour limit.
    pub chained_duration_seconds: u32,
    /// Requests per second each calling account may make before EKS Auth answers
    /// `ThrottlingException` (429), with a burst of as many. Default `None`: never throttles.
    /// AWS publishes no EKS Auth quota, so this exists to rehearse throttling (the node agent
    /// must back off and keep serving cached credentials), not to mimic a number.
    pub max_requests_per_second: Option<u32>,
}

impl Default for EksAuthConfig {
    fn default() -> Self {
        EksAuthConfig {
            session_duration_seconds: 6 * 3600,
            chained_duration_seconds: 3600,
            max_requests_per_second: None,
        }
    }
}

/// The EKS Auth service (`POST /clusters/{clusterName}/assume-role-for-pod-identity`, signing
/// name `eks-auth`, rest-json).
///
/// 1. The caller (the node's role, signing with SigV4) is authenticated and authorized for
///    `eks-auth:AssumeRoleForPodIdentity` on the cluster's ARN (`AccessDeniedException` 400,
///    EKS Auth's status for it); the cluster is the caller's account's in the credential
///    scope's region (`ResourceNotFoundException`).
/// 2. The token is verified against the cluster's OIDC issuer (its JWKS over HTTP, as for
///    IRSA) with audience `pods.eks.amazonaws.com`: expired → `ExpiredTokenException`; bad
///    signature, other issuer (another cluster's token), other audience, not bound to a pod →
///    `InvalidTokenException`; issuer unreachable → `ServiceUnavailableException`.
/// 3. The association of the token's namespace and service account is looked up
///    (`ResourceNotFoundException` when there is none).
/// 4. The association's role is assumed through the twin's STS as the service principal
///    `pods.eks.amazonaws.com` (trust decisions recorded in the decision log under `sts`):
///    its trust policy must allow `sts:AssumeRole`, and `sts:TagSession` for the six session
///    tags (`eks-cluster-arn`, `eks-cluster-name`, `kubernetes-namespace`,
///    `kubernetes-service-account`, `kubernetes-pod-name`, `kubernetes-pod-uid`, all
///    transitive) unless the association disables them. `aws:SourceAccount` and
///    `aws:SourceArn` are the cluster's account and ARN.
/// 5. With a target role, the first session assumes it (role chaining: 1 hour), passing the
///    same tags (its trust policy must allow the first role `sts:AssumeRole` and
///    `sts:TagSession`), or, with session tags disabled, the external id
///    `REGION/ACCOUNT/CLUSTER/NAMESPACE/SERVICE-ACCOUNT`. The association's `policy` is the
///    session policy of the last session.
///
/// A denied trust decision answers `AccessDeniedException` naming the role; the decision, with
/// its trace, is in the decision log.
#[derive(Clone)]
pub struct EksAuthService {
    inner: Arc<Inner>,
}

/// Token buckets of the calling accounts, refilled at the configured rate.
#[derive(Default)]
struct Throttle {
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl Throttle {
    /// Takes one token from `account`'s bucket; false when it is empty.
    fn admit(&self, account: &str, per_second: u32) -> bool {
        let rate = f64::from(per_second.max(1));
        let now = std::time::Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(account.to_owned()).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Inner {
    store: Arc<Store>,
    throttle: Throttle,
    authenticator: Arc<dyn Authenticator>,
    authorizer: Authorizer,
    verifier: Arc<oidc::Verifier>,
    sts: StsService,
    config: EksAuthConfig,
}

impl std::fmt::Debug for EksAuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::service::debug_service(f, "EksAuthService", &self.inner.store, &self.inner.config)
    }
}

impl EksAuthService {
    /// EKS Auth over `store`: callers resolved by `authenticator`, decisions made and recorded
    /// through `authorizer`, pod tokens verified by `verifier` against each cluster's issuer,
    /// roles assumed through `sts` (the twin's STS service, so trust decisions and sessions
    /// are STS's own).
    pub fn new(
        store: Arc<Store>,
        authenticator: Arc<dyn Authenticator>,
        authorizer: Authorizer,
        verifier: Arc<oidc::Verifier>,
        sts: StsService,
        config: EksAuthConfig,
    ) -> Self {
        EksAuthService {
            inner: Arc::new(Inner {
                store,
                throttle: Throttle::default(),
                authenticator,
                authorizer,
                verifier,
                sts,
                config,
            }),
        }
    }
}

impl AwsService for EksAuthService {
    fn signing_name(&self) -> &'static str {
        "eks-auth"
    }

    fn operation(&self, req: &ApiRequest) -> Option<&'static str> {
        cluster_name(req).map(|_| OPERATION)
    }

    fn error_response(&self, error: &AwsError, request_id: &str) -> Response {
        to_response(error.to_rest_json_response(request_id))
    }

    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let request_id = req.request_id.clone();
            let (action, result) = inner.serve(req).await;
            let wire = result.unwrap_or_else(|e| auth_error(e).to_rest_json_response(&request_id));
            answered(action, wire)
        })
    }
}

/// The error an EKS Auth client gets: the twin's own failures become
/// `InternalServerException` (logged, not sent); STS's `AccessDenied` becomes EKS Auth's
/// `AccessDeniedException` 400; STS's other refusals (duration, packed size) are
/// `InvalidRequestException`.
fn auth_error(e: AwsError) -> AwsError {
    if e.status >= 500 {
        tracing::error!(code = %e.code, message = %e.message, "eks-auth request failed");
        return AwsError::new("InternalServerException", UNKNOWN_FAILURE, 500);
    }
    match &*e.code {
        "AccessDenied" => AwsError::access_denied_exception(e.message, 400),
        "ValidationError"
        | "PackedPolicyTooLarge"
        | "InvalidParameterValue"
        | "MalformedPolicyDocument" => AwsError::invalid_request_exception(e.message),
        _ => e,
    }
}

fn token_error(e: &oidc::VerifyError) -> AwsError {
    match e {
        oidc::VerifyError::Expired { .. } => {
            AwsError::expired_token_exception(format!("The token is expired: {}", e.aws_message()))
        }
        oidc::VerifyError::JwksUnavailable(_) => AwsError::service_unavailable_exception(
            "The cluster's OIDC issuer could not be reached to verify the token.",
        ),
        oidc::VerifyError::AudienceMismatch { .. } => AwsError::invalid_token_exception(format!(
            "The token's audience is not {POD_IDENTITY_PRINCIPAL}."
        )),
        oidc::VerifyError::IssuerMismatch { .. } => AwsError::invalid_token_exception(
            "The token was not issued by this cluster's OIDC issuer.",
        ),
        _ => AwsError::invalid_token_exception(format!(
            "The token is not valid: {}",
            e.aws_message()
        )),
    }
}

/// The cluster name of the path, checked against the model (`ClusterName`: 1–100 characters,
/// `[0-9A-Za-z][A-Za-z0-9\-_]*`).
fn cluster_name(req: &ApiRequest) -> Option<Result<String, AwsError>> {
    let segments = path_segments(req.uri.path())?;
    let [clusters, name, op] = segments.as_slice() else {
        return None;
    };
    if req.method != http::Method::POST
        || clusters != "clusters"
        || op != "assume-role-for-pod-identity"
    {
        return None;
    }
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Some(Ok(name.clone()))
    } else {
        Some(Err(AwsError::invalid_parameter_exception(format!(
            "1 validation error detected: Value '{}' at 'clusterName' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z][A-Za-z0-9\\-_]*",
            printable(name)
        ))))
    }
}

/// `JwtToken`: three base64url parts.
fn check_token_shape(token: &str) -> Result<(), AwsError> {
    let parts: Vec<&str> = token.split('.').collect();
    let part_ok = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    if parts.len() == 3 && parts.iter().all(part_ok) {
        return Ok(());
    }
    // The token itself is never echoed.
    Err(AwsError::invalid_parameter_exception(
        "1 validation error detected: Value at 'token' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9-_=]+\\.[A-Za-z0-9-_=]+\\.[A-Za-z0-9-_=]+",
    ))
}

/// What the verified token says about the pod.
#[derive(Debug, Clone)]
struct Pod {
    namespace: String,
    service_account: String,
    name: String,
    uid: String,
}

/// The pod's namespace, service account, name and uid, from `sub` and the `kubernetes.io`
/// claim, which must agree.
fn pod_of(token: &oidc::VerifiedToken) -> Result<Pod, AwsError> {
    let invalid =
        |what: &str| AwsError::invalid_token_exception(format!("The token is not valid: {what}."));
    let rest = token
        .subject
        .strip_prefix("system:serviceaccount:")
        .ok_or_else(|| invalid("its subject is not a Kubernetes service account"))?;
    let (namespace, service_account) = rest
        .split_once(':')
        .ok_or_else(|| invalid("its subject is not a Kubernetes service account"))?;
    let k8s = token.claims.get("kubernetes.io");
    let claim = |path: &[&str]| -> Option<String> {
        let mut v = k8s?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_owned)
    };
    if claim(&["namespace"]).as_deref() != Some(namespace)
        || claim(&["serviceaccount", "name"]).as_deref() != Some(service_account)
    {
        return Err(invalid(
            "its kubernetes.io claim does not match its subject",
        ));
    }
    let (Some(name), Some(uid)) = (claim(&["pod", "name"]), claim(&["pod", "uid"])) else {
        return Err(invalid("it is not bound to a pod"));
    };
    Ok(Pod {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        name,
        uid,
    })
}

/// EKS Pod Identity's six session tags.
fn session_tags(cluster: &Cluster, pod: &Pod) -> Vec<Tag> {
    vec![
        Tag::new("eks-cluster-arn", cluster.arn.clone()),
        Tag::new("eks-cluster-name", cluster.name.clone()),
        Tag::new("kubernetes-namespace", pod.namespace.clone()),
        Tag::new("kubernetes-service-account", pod.service_account.clone()),
        Tag::new("kubernetes-pod-name", pod.name.clone()),
        Tag::new("kubernetes-pod-uid", pod.uid.clone()),
    ]
}

/// `eks-CLUSTER-POD-RANDOM`, within STS's 64 characters and `[\w+=,.@-]` alphabet.
fn session_name(cluster: &Cluster, pod: &Pod) -> Result<String, AwsError> {
    let mut random = [0u8; 5];
    getrandom::fill(&mut random)
        .map_err(|e| AwsError::internal_failure(format!("random source failed: {e}")))?;
    let suffix = hex::encode(random);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let head: String = format!("eks-{}-{}", cluster.name, pod.name)
        .chars()
        .filter(|c| allowed(*c))
        .take(64 - 1 - suffix.len())
        .collect();
    Ok(format!("{head}-{suffix}"))
}

impl Inner {
    async fn serve(
        self: Arc<Self>,
        req: ApiRequest,
    ) -> (&'static str, Result<HttpResponse, AwsError>) {
        let Some(name) = cluster_name(&req) else {
            let auth = self.authenticate(&req).await;
            let e = auth
                .err()
                .unwrap_or_else(|| unknown_route("EKS Auth", &req));
            return ("unknown", Err(e));
        };
        (
            OPERATION,
            self.assume_role_for_pod_identity(req, name).await,
        )
    }

    async fn authenticate(&self, req: &ApiRequest) -> Result<AuthenticatedCaller, AwsError> {
        let authenticator = Arc::clone(&self.authenticator);
        let req = req.clone();
        blocking(move || {
            req.authenticate(&*authenticator, time::OffsetDateTime::now_utc())
                .map_err(|e| AwsError::new(e.code, e.message, e.status.as_u16()))
        })
        .await
    }

    async fn assume_role_for_pod_identity(
        self: Arc<Self>,
        req: ApiRequest,
        name: Result<String, AwsError>,
    ) -> Result<HttpResponse, AwsError> {
        let caller = self.authenticate(&req).await?;
        if let Some(per_second) = self.config.max_requests_per_second {
            let account = caller.principal.account().unwrap_or_default();
            if !self.throttle.admit(account, per_second) {
                return Err(AwsError::new("ThrottlingException", "Rate exceeded", 429));
            }
        }
        let name = name?;
        let body = JsonBody::parse(&req.body)?;
        let token = body.required_str("token")?;
        check_token_shape(&token)?;

        let cluster = {
            let inner = Arc::clone(&self);
            let req = req.clone();
            let caller = caller.clone();
            blocking(move || inner.authorized_cluster(&req, &caller, &name)).await?
        };

        let caller_arn = caller.arn();
        let cluster_arn = cluster.arn.clone();
        let outcome = async {
            let verified = self
                .verifier
                // The twin clock's now: tokens expire on its time too.
                .verify_at(
                    &token,
                    &cluster.issuer_url,
                    |aud| aud == POD_IDENTITY_PRINCIPAL,
                    self.store.clock().system_now(),
                )
                .await
                .map_err(|e| {
                    tracing::debug!(
                        error = %e,
                        cluster = %cluster.arn,
                        token = %oidc::token_fingerprint(&token),
                        "pod identity token rejected"
                    );
                    token_error(&e)
                })?;
            let pod = pod_of(&verified)?;
            let inner = Arc::clone(&self);
            blocking(move || inner.assume_sync(&req, &cluster, &pod, &verified.fingerprint)).await
        }
        .await;
        if let Err(e) = &outcome {
            self.log_refusal(&caller_arn, &cluster_arn, e, &token);
        }
        outcome
    }

    /// Puts a failed step that no policy decided (the token, the association) in the decision
    /// log. Trust-policy denials are already there, recorded by STS with their traces.
    fn log_refusal(&self, caller_arn: &str, cluster_arn: &str, e: &AwsError, token: &str) {
        if e.code.starts_with("AccessDenied")
            || (e.status >= 500 && e.code != "ServiceUnavailableException")
        {
            return;
        }
        self.authorizer.decisions().refuse(crate::RefusalRecord {
            service: "eks-auth".to_owned(),
            action: ACTION.to_owned(),
            caller: caller_arn.to_owned(),
            resource: cluster_arn.to_owned(),
            refusal: crate::Refusal {
                code: e.code.to_string(),
                message: e.message.to_string(),
                details: self.refusal_details(cluster_arn, token),
            },
        });
    }

    /// What a user needs to fix the refusal: the token's facts, the service account it names,
    /// and the associations its namespace has in the cluster (EKS Auth looks for exactly one
    /// by namespace and name). Refusal path only.
    fn refusal_details(&self, cluster_arn: &str, token: &str) -> Vec<crate::Detail> {
        use crate::Detail;
        let facts = crate::refusal_details::token_facts(token, self.store.clock().now());
        let mut details = facts.details;
        let pod = facts
            .subject
            .as_deref()
            .and_then(|s| s.strip_prefix("system:serviceaccount:"))
            .and_then(|s| s.split_once(':'));
        let Some((namespace, service_account)) = pod else {
            return details;
        };
        let cluster = self
            .store
            .all_clusters()
            .ok()
            .and_then(|all| all.into_iter().find(|c| c.arn == cluster_arn));
        let Some(cluster) = cluster else {
            return details;
        };
        details.push(Detail::new(
            "association looked for",
            format!(
                "service account {}/{} in cluster {}",
                oidc::sanitize(namespace),
                oidc::sanitize(service_account),
                cluster.name
            ),
        ));
        if let Ok(page) =
            self.store
                .list_pod_identity_associations(&cluster, Some(namespace), None, 100, None)
        {
            let listed: Vec<String> = page
                .associations
                .iter()
                .map(|a| {
                    let mut line = format!("{} → {}", a.service_account, a.role_arn);
                    if let Some(target) = &a.target_role_arn {
                        line.push_str(&format!(" → {target}"));
                    }
                    line
                })
                .collect();
            details.push(Detail::new(
                format!("associations in namespace {}", oidc::sanitize(namespace)),
                if listed.is_empty() {
                    format!("none: create one (aws eks create-pod-identity-association --cluster-name {} --namespace {} --service-account {} --role-arn …)", cluster.name, oidc::sanitize(namespace), oidc::sanitize(service_account))
                } else {
                    listed.join("; ")
                },
            ));
        }
        details
    }

    /// The cluster, once the caller may call EKS Auth for it (`AccessDenied`, which
    /// [`auth_error`] answers as EKS Auth's `AccessDeniedException` 400).
    fn authorized_cluster(
        &self,
        req: &ApiRequest,
        caller: &AuthenticatedCaller,
        name: &str,
    ) -> Result<Cluster, AwsError> {
        let account = caller.principal.account().unwrap_or_default();
        authorized_cluster(
            &self.authorizer,
            &self.store,
            req,
            caller,
            account,
            name,
            ACTION,
        )
    }

    fn assume_sync(
        &self,
        req: &ApiRequest,
        cluster: &Cluster,
        pod: &Pod,
        token_fingerprint: &str,
    ) -> Result<HttpResponse, AwsError> {
        let association = self
            .store
            .find_pod_identity_association(cluster, &pod.namespace, &pod.service_account)
            .map_err(state_error)?
            .ok_or_else(|| {
                AwsError::resource_not_found(format!(
                    "No Pod Identity Association found for service account {} in namespace {} of cluster {}.",
                    pod.service_account, pod.namespace, cluster.name
                ))
            })?;
        let tags = if association.disable_session_tags {
            Vec::new()
        } else {
            session_tags(cluster, pod)
        };
        let transitive_keys: Vec<String> = tags.iter().map(|t| t.key.clone()).collect();
        let session_name = session_name(cluster, pod)?;
        // The association's policy restricts the session the pod gets: the target role's when
        // there is one.
        let last_policy = association.policy.clone();
        let has_target = association.target_role_arn.is_some();

        let service = AuthenticatedCaller {
            principal: Principal::Service {
                name: POD_IDENTITY_PRINCIPAL.to_owned(),
            },
            user_id: POD_IDENTITY_PRINCIPAL.to_owned(),
            access_key_id: None,
            unsigned_payload: false,
        };
        let primary = self
            .sts
            .assume_role_as(
                req,
                &service,
                ServiceAssumeRole {
                    role_arn: association.role_arn.clone(),
                    session_name: session_name.clone(),
                    policy: if has_target {
                        None
                    } else {
                        last_policy.clone()
                    },
                    duration_seconds: self.config.session_duration_seconds,
                    tags: tags.clone(),
                    transitive_keys: transitive_keys.clone(),
                    context: vec![
                        ("aws:SourceAccount".to_owned(), cluster.account.clone()),
                        ("aws:SourceArn".to_owned(), cluster.arn.clone()),
                    ],
                    inherit_transitive_tags: false,
                    fixed_duration: true,
                    ..ServiceAssumeRole::default()
                },
            )
            .map_err(|e| step_error(e, &association, &association.role_arn))?;

        let last = match &association.target_role_arn {
            None => primary,
            Some(target) => {
                let session = &primary;
                let chained_caller = AuthenticatedCaller {
                    principal: session.principal(),
                    user_id: session.user_id(),
                    access_key_id: Some(session.access_key_id.clone()),
                    unsigned_payload: false,
                };
                self.sts
                    .assume_role_as(
                        req,
                        &chained_caller,
                        ServiceAssumeRole {
                            role_arn: target.clone(),
                            session_name: session_name.clone(),
                            policy: last_policy,
                            duration_seconds: self.config.chained_duration_seconds,
                            tags,
                            transitive_keys,
                            external_id: if association.disable_session_tags {
                                association.external_id()
                            } else {
                                None
                            },
                            context: Vec::new(),
                            inherit_transitive_tags: false,
                            fixed_duration: false,
                        },
                    )
                    .map_err(|e| step_error(e, &association, target))?
            }
        };
        let session = last;
        tracing::info!(
            association = %association.association_id,
            cluster = %cluster.arn,
            role = %session.role_arn,
            access_key_id = %session.access_key_id,
            token = %token_fingerprint,
            "role assumed for pod identity"
        );
        let body: Value = json!({
            "subject": { "namespace": pod.namespace, "serviceAccount": pod.service_account },
            "audience": POD_IDENTITY_PRINCIPAL,
            "podIdentityAssociation": {
                "associationArn": association.association_arn,
                "associationId": association.association_id,
            },
            "assumedRoleUser": {
                "arn": session.assumed_role_arn,
                "assumeRoleId": session.user_id(),
            },
            "credentials": {
                "sessionToken": session.session_token,
                "secretAccessKey": session.secret_access_key,
                "accessKeyId": session.access_key_id,
                "expiration": awswire::epoch_seconds(session.expires),
            },
        });
        Ok(json_response(200, &req.request_id, &body))
    }
}

/// An STS refusal during one of the role assumptions, naming the association and role (STS's
/// own message, which names the principal and action, follows).
fn step_error(e: AwsError, association: &PodIdentityAssociation, role_arn: &str) -> AwsError {
    if e.code == "AccessDenied" {
        return AwsError::access_denied_exception(
            format!(
                "Pod Identity association {} could not assume role {role_arn}: {}",
                association.association_id, e.message
            ),
            400,
        );
    }
    e
}
