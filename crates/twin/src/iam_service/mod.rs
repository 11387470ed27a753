//! The twin's IAM service: the Query protocol (`Version=2010-05-08`) on signing name `iam`,
//! IAM's global endpoint (credential scope region `us-east-1`, though any region is accepted, as
//! the twin has one endpoint for every region).
//!
//! Every request is
//!
//! 1. authenticated with [`StoreAuthenticator`] (`InvalidClientTokenId`, `ExpiredToken`,
//!    `SignatureDoesNotMatch`, …);
//! 2. parsed and validated against botocore's IAM model (`InvalidAction`, `ValidationError`
//!    listing every failed member);
//! 3. authorized with [`Authorizer`]: action `iam:{Action}` on the resource's ARN in the
//!    caller's account (`AccessDenied` with AWS's message; the decision, allowed or denied,
//!    goes to the decision log);
//! 4. carried out on the [`twin_state::Store`], whose errors carry IAM's codes
//!    (`NoSuchEntity` 404, `EntityAlreadyExists` 409, `DeleteConflict` 409,
//!    `MalformedPolicyDocument` 400 naming the element, `LimitExceeded` 409, …).
//!
//! All of it runs on tokio's blocking pool (`spawn_blocking`): the store is synchronous and
//! fsyncs on every mutation.
//!
//! | resource | ARN authorized |
//! | --- | --- |
//! | a role | `arn:aws:iam::ACCOUNT:role/PATH/NAME` (the role's own path when it exists) |
//! | a managed policy | the policy ARN given (another account's: denied, no resource policy allows) |
//! | an OIDC provider | `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH` |
//! | an instance profile | `arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME` (and `iam:PassRole` on the role for `AddRoleToInstanceProfile`) |
//! | a user | `arn:aws:iam::ACCOUNT:user/NAME` |
//! | `ListRoles` / `ListPolicies` / `ListInstanceProfiles` | `arn:aws:iam::ACCOUNT:role/` / `…:policy/` / `…:instance-profile/` (as AWS names them in denials) |
//! | `ListInstanceProfilesForRole` | the role |
//! | `ListOpenIDConnectProviders`, `SimulateCustomPolicy` | `*` |
//!
//! Policy documents in responses are percent-encoded as IAM sends them
//! ([`awswire::iam_policy_encode`]); trust policies show the ARNs of principals that still exist
//! and the raw unique id (`AROA…`) of those deleted since.

mod instance_profiles;
mod oidc;
mod policies;
mod render;
mod roles;
mod simulate;

use std::sync::Arc;

use awswire::{
    query_empty_response, query_response, AwsError, Element, HttpResponse, QueryRequest, IAM,
};
use time::OffsetDateTime;
use twin_state::{Paging, Role, StateError, Store};

use crate::auth::AuthenticatedCaller;
use crate::authz::Authorizer;
use crate::decisions::DecisionLog;
use crate::failure::{Failure, StateWords};
use crate::service::{
    on_blocking_pool, to_response, ApiAction, ApiRequest, AwsService, BoxFuture, UNKNOWN_FAILURE,
};
use crate::state_auth::StoreAuthenticator;
use crate::Response;

/// Names each IAM action once, with the method that answers it: the table of what IAM
/// answers ([`OPERATIONS`], also the metrics' `action` labels) and the dispatch.
macro_rules! iam_operations {
    ($($name:literal => $method:ident,)*) => {
        /// The actions the twin's IAM answers; anything else is `InvalidAction`.
        pub const OPERATIONS: &[&str] = &[$($name),*];

        impl Call<'_> {
            fn dispatch(&self) -> Out {
                match self.query.action() {
                    $($name => self.$method(),)*
                    other => Err(AwsError::unknown_operation(other, IAM.version).into()),
                }
            }
        }
    };
}

iam_operations! {
    "CreateRole" => create_role,
    "GetRole" => get_role,
    "DeleteRole" => delete_role,
    "ListRoles" => list_roles,
    "UpdateRole" => update_role,
    "UpdateAssumeRolePolicy" => update_assume_role_policy,
    "TagRole" => tag_role,
    "UntagRole" => untag_role,
    "ListRoleTags" => list_role_tags,
    "PutRolePolicy" => put_role_policy,
    "GetRolePolicy" => get_role_policy,
    "DeleteRolePolicy" => delete_role_policy,
    "ListRolePolicies" => list_role_policies,
    "CreatePolicy" => create_policy,
    "GetPolicy" => get_policy,
    "DeletePolicy" => delete_policy,
    "ListPolicies" => list_policies,
    "CreatePolicyVersion" => create_policy_version,
    "GetPolicyVersion" => get_policy_version,
    "ListPolicyVersions" => list_policy_versions,
    "DeletePolicyVersion" => delete_policy_version,
    "SetDefaultPolicyVersion" => set_default_policy_version,
    "AttachRolePolicy" => attach_role_policy,
    "DetachRolePolicy" => detach_role_policy,
    "ListAttachedRolePolicies" => list_attached_role_policies,
    "PutRolePermissionsBoundary" => put_role_permissions_boundary,
    "DeleteRolePermissionsBoundary" => delete_role_permissions_boundary,
    "CreateOpenIDConnectProvider" => create_oidc_provider,
    "GetOpenIDConnectProvider" => get_oidc_provider,
    "ListOpenIDConnectProviders" => list_oidc_providers,
    "DeleteOpenIDConnectProvider" => delete_oidc_provider,
    "AddClientIDToOpenIDConnectProvider" => add_client_id,
    "RemoveClientIDFromOpenIDConnectProvider" => remove_client_id,
    "UpdateOpenIDConnectProviderThumbprint" => update_thumbprints,
    "CreateInstanceProfile" => create_instance_profile,
    "GetInstanceProfile" => get_instance_profile,
    "DeleteInstanceProfile" => delete_instance_profile,
    "ListInstanceProfiles" => list_instance_profiles,
    "ListInstanceProfilesForRole" => list_instance_profiles_for_role,
    "AddRoleToInstanceProfile" => add_role_to_instance_profile,
    "RemoveRoleFromInstanceProfile" => remove_role_from_instance_profile,
    "TagInstanceProfile" => tag_instance_profile,
    "UntagInstanceProfile" => untag_instance_profile,
    "ListInstanceProfileTags" => list_instance_profile_tags,
    "GetUser" => get_user,
    "SimulatePrincipalPolicy" => simulate_principal_policy,
    "SimulateCustomPolicy" => simulate_custom_policy,
}

/// The IAM service handler. Register it with [`TwinServer::register`](crate::TwinServer::register).
#[derive(Debug, Clone)]
pub struct IamService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    auth: StoreAuthenticator,
    authz: Authorizer,
}

impl IamService {
    /// IAM over `store`, recording decisions into `decisions` (give it
    /// [`TwinServer::decisions`](crate::TwinServer::decisions)).
    pub fn new(store: Arc<Store>, decisions: DecisionLog) -> Self {
        IamService {
            inner: Arc::new(Inner {
                auth: StoreAuthenticator::new(Arc::clone(&store)),
                authz: Authorizer::new(Arc::clone(&store), decisions),
                store,
            }),
        }
    }
}

impl AwsService for IamService {
    fn signing_name(&self) -> &'static str {
        "iam"
    }

    /// IAM is global: signed for `us-east-1` in the `aws` partition.
    fn region_rule(&self) -> sigv4::RegionRule {
        sigv4::RegionRule::Global
    }

    fn operation(&self, req: &ApiRequest) -> Option<&'static str> {
        let query = parse_query(req).ok()?;
        OPERATIONS.iter().copied().find(|o| *o == query.action())
    }

    fn error_response(&self, error: &AwsError, request_id: &str) -> Response {
        to_response(error.to_query_response(&IAM, request_id))
    }

    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let request_id = req.request_id.clone();
            let (reply, action) = on_blocking_pool("iam", move || inner.serve(&req))
                .await
                .unwrap_or_else(|| (Reply::Aws(AwsError::service_failure(UNKNOWN_FAILURE)), None));
            let mut resp = match reply {
                Reply::Http(h) => to_response(h),
                Reply::Aws(e) => to_response(e.to_query_response(&IAM, &request_id)),
                Reply::Front(resp) => resp,
            };
            if let Some(action) = action {
                resp.extensions_mut().insert(ApiAction(action));
            }
            resp
        })
    }
}

/// `Action`, `Version` and the members, from the query string and a form body.
fn parse_query(req: &ApiRequest) -> Result<QueryRequest, AwsError> {
    let form = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    QueryRequest::parse(
        &IAM,
        req.uri.query().unwrap_or(""),
        form.then_some(&req.body[..]),
        OPERATIONS,
    )
}

/// What a request ends with.
enum Reply {
    /// A built response.
    Http(HttpResponse),
    /// An IAM error.
    Aws(AwsError),
    /// An authentication failure, in the front door's shape.
    Front(Response),
}

impl Inner {
    fn serve(&self, req: &ApiRequest) -> (Reply, Option<&'static str>) {
        let caller = match req.authenticate(&self.auth, OffsetDateTime::now_utc()) {
            Ok(caller) => caller,
            Err(e) => return (Reply::Front(req.error_response(&e)), None),
        };
        let query = match parse_query(req) {
            Ok(q) => q,
            Err(e) => return (Reply::Aws(e), None),
        };
        let action = OPERATIONS.iter().copied().find(|o| *o == query.action());
        let Some(account) = caller.principal.account().map(str::to_string) else {
            return (
                Reply::Aws(AwsError::access_denied(format!(
                    "{} cannot call IAM.",
                    caller.arn()
                ))),
                action,
            );
        };
        let call = Call {
            inner: self,
            req,
            query: &query,
            caller,
            account,
        };
        let reply = match call.dispatch() {
            Ok(h) => Reply::Http(h),
            Err(e) => Reply::Aws(e.into_aws()),
        };
        (reply, action)
    }
}

/// One authenticated, parsed request.
pub(crate) struct Call<'a> {
    inner: &'a Inner,
    req: &'a ApiRequest,
    query: &'a QueryRequest,
    caller: AuthenticatedCaller,
    /// The caller's account: every resource it names by name is in it.
    account: String,
}

/// The result type of the actions: store errors convert in IAM's words.
type Out = Result<HttpResponse, Failure<Iam>>;

/// IAM's Query protocol, for [`Failure`]: store errors in IAM's codes.
pub(crate) struct Iam;

impl StateWords for Iam {
    fn state_error(error: StateError) -> AwsError {
        state_error(error)
    }
}

impl Call<'_> {
    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn action(&self) -> &str {
        self.query.action()
    }

    /// Authorizes `iam:{Action}` on `resource`, owned by the account in its ARN (the caller's
    /// when the ARN names none, e.g. `*`).
    fn authorize(&self, resource: &str) -> Result<(), AwsError> {
        self.authorize_with(resource, &|_| {})
    }

    /// [`authorize`](Self::authorize) with request-specific context keys (`aws:TagKeys`, …).
    fn authorize_with(
        &self,
        resource: &str,
        extra: &dyn Fn(&mut iam::RequestContext),
    ) -> Result<(), AwsError> {
        self.authorize_as(&format!("iam:{}", self.action()), resource, extra)
    }

    /// Authorizes another `action` than the request's own (`iam:PassRole` beside
    /// `AddRoleToInstanceProfile`) on `resource`.
    fn authorize_action(&self, action: &str, resource: &str) -> Result<(), AwsError> {
        self.authorize_as(action, resource, &|_| {})
    }

    fn authorize_as(
        &self,
        action: &str,
        resource: &str,
        extra: &dyn Fn(&mut iam::RequestContext),
    ) -> Result<(), AwsError> {
        let owner = resource
            .parse::<iam::Arn>()
            .ok()
            .map(|a| a.account)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| self.account.clone());
        self.inner
            .authz
            .authorize_request(
                self.req,
                &self.caller,
                action,
                resource,
                &owner,
                None,
                extra,
            )
            .map(|_| ())
            .map_err(|e| e.to_aws_error(action, &self.caller.arn(), resource))
    }

    /// The ARN of role `name` in the caller's account: the live role's (with its path), or
    /// `role/NAME` when there is none.
    fn role_arn(&self, name: &str) -> Result<String, AwsError> {
        self.read_role(name).map(|(_, arn)| arn)
    }

    /// Role `name` in the caller's account as the store answers it (`NoSuchEntity` kept for
    /// after authorization), with the ARN [`role_arn`](Self::role_arn) names: one read for
    /// actions that authorize on the role and then show it.
    fn read_role(&self, name: &str) -> Result<(Result<Role, StateError>, String), AwsError> {
        match self.store().get_role(&self.account, name) {
            Ok(role) => {
                let arn = role.arn.clone();
                Ok((Ok(role), arn))
            }
            Err(e @ StateError::NoSuchEntity(_)) => {
                Ok((Err(e), format!("arn:aws:iam::{}:role/{name}", self.account)))
            }
            Err(e) => Err(state_error(e)),
        }
    }

    /// A success response with a `{Action}Result`.
    fn ok(&self, build: impl FnOnce(&mut Element<'_>)) -> Out {
        Ok(query_response(
            &IAM,
            self.action(),
            &self.req.request_id,
            build,
        ))
    }

    /// A success response without output.
    fn done(&self) -> Out {
        Ok(query_empty_response(
            &IAM,
            self.action(),
            &self.req.request_id,
        ))
    }

    /// `Marker` and `MaxItems`, in the models' member order (after the operation's own).
    fn read_paging(v: &mut awswire::Validator<'_>) -> Paging {
        let marker = v.str("Marker", &awswire::rules::MARKER);
        let max_items = v.int("MaxItems", &awswire::rules::MAX_ITEMS);
        Paging {
            marker,
            max_items: max_items.and_then(|n| u32::try_from(n).ok()),
        }
    }
}

/// IAM's error for a store failure: its code, status and message; the twin's own failures
/// (500) are logged and answered with a generic `ServiceFailure`.
pub(crate) fn state_error(e: StateError) -> AwsError {
    if e.is_client_error() {
        AwsError::new(e.code(), e.to_string(), e.http_status())
    } else {
        tracing::error!(error = %e, "IAM store operation failed");
        AwsError::service_failure(UNKNOWN_FAILURE)
    }
}

/// `policyVersionIdType`: `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`.
pub(crate) const VERSION_ID: awswire::StrRule =
    awswire::StrRule::ANY.pattern(awswire::pattern::Pattern {
        regex: r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?",
        matches: |s| {
            let Some(rest) = s.strip_prefix('v') else {
                return false;
            };
            let (num, suffix) = match rest.find('.') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            !num.is_empty()
                && !num.starts_with('0')
                && num.bytes().all(|b| b.is_ascii_digit())
                && suffix.is_none_or(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        },
    });

/// `existingUserNameType`.
pub(crate) const USER_NAME: awswire::StrRule =
    awswire::StrRule::len(1, 128).pattern(awswire::pattern::ENTITY_NAME);
