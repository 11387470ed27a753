//! `AssumeRole`.

use std::sync::Arc;

use awswire::{rules, AwsError, HttpResponse, QueryRequest, STS};
use iam::{IdentityArn, Principal, RequestContext};
use twin_state::{Role, StateError};

use super::issuing::{
    self, issue_async, store_failure, write_assumed_role_user, write_session, Assumed, Issue,
};
use super::session_policies::SessionPolicies;
use super::session_tags::{inherited_tags, read_tags, SessionTags};
use super::trust::{no_trust, TrustCheck};
use super::Inner;
use crate::auth::{describe_principal, AuthenticatedCaller};
use crate::service::ApiRequest;

/// The members of an `AssumeRole` request, validated against the model (or built by another
/// service of the twin that assumes roles through STS, such as EKS Auth).
#[derive(Debug, Clone, Default)]
pub(crate) struct AssumeRoleParams {
    pub(crate) role_arn: String,
    pub(crate) session_name: String,
    pub(crate) policies: SessionPolicies,
    pub(crate) duration: Option<i64>,
    pub(crate) tags: Vec<twin_state::Tag>,
    pub(crate) transitive_keys: Vec<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) source_identity: Option<String>,
    /// Set when an AWS service of the twin assumes the role on a caller's behalf.
    pub(crate) service: Option<ServiceCall>,
}

/// How an AWS service's own `AssumeRole` differs from a client's (EKS Pod Identity's, for
/// one).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceCall {
    /// Context keys the service adds to the trust decision (`aws:SourceAccount`,
    /// `aws:SourceArn`).
    pub(crate) context: Vec<(String, String)>,
    /// Whether the calling session's transitive tags are inherited. A service that passes the
    /// tags again itself (EKS's chained call) turns this off, so they are evaluated as tags of
    /// the request (`sts:TagSession`, `aws:RequestTag/…`) rather than conflicting with it.
    pub(crate) inherit_transitive_tags: bool,
    /// The service sets the duration itself (EKS Pod Identity's 6-hour sessions): the role's
    /// `MaxSessionDuration` does not apply. The role-chaining limit still does.
    pub(crate) fixed_duration: bool,
}

type Params = AssumeRoleParams;

/// An `AssumeRole` its trust decisions allowed: the session to issue, and how to answer once
/// it is (or could not be) stored.
struct Allowed {
    issue: Issue,
    answer: Answer,
}

struct Answer {
    caller_arn: String,
    role_arn: String,
    chained: bool,
}

impl Answer {
    /// The issued session, logged; a role deleted since the decision is a denial.
    fn finish(&self, issued: Result<Option<Assumed>, AwsError>) -> Result<Assumed, AwsError> {
        let assumed =
            issued?.ok_or_else(|| denied(&self.caller_arn, "sts:AssumeRole", &self.role_arn))?;
        let session = &assumed.session;
        tracing::info!(
            role = %session.role_arn,
            session = %session.session_name,
            access_key_id = %session.access_key_id,
            chained = self.chained,
            "role assumed"
        );
        Ok(assumed)
    }
}

fn read(query: &QueryRequest) -> Result<Params, AwsError> {
    // The model's member order: RoleArn, RoleSessionName, PolicyArns, Policy, DurationSeconds,
    // Tags, TransitiveTagKeys, ExternalId, SerialNumber, TokenCode, SourceIdentity.
    let mut v = query.validator();
    let role_arn = v.required_str("RoleArn", &rules::STS_ARN);
    let session_name = v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
    let policies = SessionPolicies::read(&mut v, &rules::UNRESTRICTED_SESSION_POLICY);
    let duration = v.int("DurationSeconds", &rules::ROLE_DURATION_SECONDS);
    let (tags, transitive_keys) = read_tags(&mut v);
    let external_id = v.str("ExternalId", &rules::EXTERNAL_ID);
    v.str("SerialNumber", &rules::SERIAL_NUMBER);
    v.str("TokenCode", &rules::TOKEN_CODE);
    let source_identity = v.str("SourceIdentity", &rules::SOURCE_IDENTITY);
    let checked = v.finish()?;
    Ok(Params {
        role_arn: role_arn.get(&checked),
        session_name: session_name.get(&checked),
        policies: policies.get(&checked),
        duration,
        tags: tags.get(&checked),
        transitive_keys,
        external_id,
        source_identity,
        service: None,
    })
}

/// AWS's `AccessDenied` for an `AssumeRole` the caller may not make. STS does not say why
/// (nor whether the role exists); the decision log does.
fn denied(caller: &str, action: &str, role_arn: &str) -> AwsError {
    AwsError::access_denied(format!(
        "User: {caller} is not authorized to perform: {action} on resource: {role_arn}"
    ))
}

impl Inner {
    pub(super) async fn assume_role(
        self: Arc<Self>,
        req: ApiRequest,
        query: QueryRequest,
    ) -> Result<HttpResponse, AwsError> {
        let caller = self.authenticate(&req)?;
        let params = read(&query)?;
        // The decisions in place, the session write without holding a thread.
        let Allowed { issue, answer } = self.authorize_assume(&req, &caller, params)?;
        let Assumed { session, packed } = answer.finish(issue_async(&self, issue).await)?;
        Ok(awswire::query_response(
            &STS,
            "AssumeRole",
            &req.request_id,
            |r| {
                write_session(r, &session);
                write_assumed_role_user(r, &session);
                if let Some(packed) = packed {
                    r.display("PackedPolicySize", packed);
                }
                r.opt_text("SourceIdentity", session.source_identity.as_deref());
            },
        ))
    }

    /// `AssumeRole` for `caller` (an IAM user, a role session, or an AWS service principal
    /// acting through [`ServiceCall`]): the trust decision for `sts:AssumeRole` and, as needed,
    /// `sts:TagSession` and `sts:SetSourceIdentity` (each recorded in the decision log), the
    /// tag, policy and duration checks, then the stored session. Synchronous store work: call
    /// it from the blocking pool.
    pub(crate) fn assume(
        &self,
        req: &ApiRequest,
        caller: &AuthenticatedCaller,
        p: Params,
    ) -> Result<Assumed, AwsError> {
        let Allowed { issue, answer } = self.authorize_assume(req, caller, p)?;
        answer.finish(issuing::issue(self, issue))
    }

    /// The trust decisions of [`assume`](Self::assume), and the session they allow.
    fn authorize_assume(
        &self,
        req: &ApiRequest,
        caller: &AuthenticatedCaller,
        p: Params,
    ) -> Result<Allowed, AwsError> {
        if matches!(caller.principal, Principal::Root { .. }) {
            return Err(AwsError::access_denied(
                "Roles may not be assumed by root accounts.",
            ));
        }
        let caller_arn = describe_principal(&caller.principal);
        let chained = matches!(caller.principal, Principal::AssumedRole { .. });
        let caller_session = match (&caller.access_key_id, chained) {
            (Some(key), true) => self.store.get_session(key).map_err(store_failure)?,
            _ => None,
        };

        let role = self.find_role(&p.role_arn)?;
        let trust = match &role {
            Some(role) => self.trust_policies.policy(role)?,
            None => no_trust(&p.role_arn),
        };
        let resource_account = match &role {
            Some(role) => role.account.clone(),
            None => p
                .role_arn
                .parse::<iam::Arn>()
                .map(|a| a.account)
                .unwrap_or_default(),
        };
        let policies = match self.authorizer.caller_policies(caller) {
            Ok(policies) => policies,
            // The caller's user or role is gone since it authenticated.
            Err(StateError::NoSuchEntity(_)) => {
                return Err(denied(&caller_arn, "sts:AssumeRole", &p.role_arn))
            }
            Err(e) => return Err(store_failure(e)),
        };

        let tags = SessionTags {
            passed: p.tags.clone(),
            transitive_keys: p.transitive_keys.clone(),
            inherited: if p.service.as_ref().is_none_or(|s| s.inherit_transitive_tags) {
                inherited_tags(caller_session.as_ref())
            } else {
                Vec::new()
            },
        };
        let source_identity = p.source_identity.clone().or_else(|| {
            caller_session
                .as_ref()
                .and_then(|s| s.source_identity.clone())
        });
        let extra = |ctx: &mut RequestContext| {
            ctx.set("sts:RoleSessionName", &p.session_name);
            if let Some(id) = &p.external_id {
                ctx.set("sts:ExternalId", id);
            }
            if let Some(id) = &p.source_identity {
                ctx.set("sts:SourceIdentity", id);
            }
            tags.context(ctx);
            for (k, v) in p.service.iter().flat_map(|s| &s.context) {
                ctx.set(k, v);
            }
        };

        let check = TrustCheck {
            principal: &caller.principal,
            policies: &policies,
            role_arn: &p.role_arn,
            resource_account: &resource_account,
            trust: &trust,
            role_exists: role.is_some(),
            extra: &extra,
        };
        let refused = check.refused_action(
            self,
            req,
            "sts:AssumeRole",
            &tags,
            p.source_identity.as_deref(),
        );
        if let Some(action) = refused {
            return Err(denied(&caller_arn, action, &p.role_arn));
        }
        let Some(role) = role else {
            return Err(denied(&caller_arn, "sts:AssumeRole", &p.role_arn));
        };

        Ok(Allowed {
            issue: Issue {
                role,
                session_name: p.session_name.clone(),
                now: req.received_at,
                requested_duration: p.duration,
                fixed_duration: p.service.as_ref().is_some_and(|s| s.fixed_duration),
                policies: p.policies,
                tags,
                source_identity,
                chained,
            },
            answer: Answer {
                caller_arn,
                role_arn: p.role_arn,
                chained,
            },
        })
    }

    /// The role a `RoleArn` names, if it exists with exactly that ARN (path included).
    pub(super) fn find_role(&self, role_arn: &str) -> Result<Option<Role>, AwsError> {
        let Ok(IdentityArn::Role { account, name, .. }) = role_arn.parse::<IdentityArn>() else {
            return Ok(None);
        };
        // STS sees IAM as changes have propagated (`--iam-propagation-delay`).
        match self.store.propagated().get_role(&account, &name) {
            Ok(role) if role.arn == role_arn => Ok(Some(role)),
            Ok(_) | Err(StateError::NoSuchEntity(_)) => Ok(None),
            Err(e) => Err(store_failure(e)),
        }
    }
}
