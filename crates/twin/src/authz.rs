//! [`Authorizer`]: the twin's IAM decision for an authenticated caller, from the policies in the
//! store, recorded in the [`DecisionLog`].
//!
//! For every request a service asks about, the authorizer
//!
//! 1. builds the `iam::RequestContext` ([`CallerPolicies::request_context`]): the caller's
//!    principal (its global keys such as `aws:PrincipalArn` and `aws:userid` derive from it),
//!    `aws:CurrentTime`/`aws:EpochTime`, `aws:SourceIp`, the principal
//!    tags (a role session's role tags overlaid with its session tags; keys compared regardless
//!    of case, the session's winning), `aws:TokenIssueTime` and `aws:SourceIdentity` for
//!    sessions, and the resource account; then the service's own keys through `extra`;
//! 2. gathers the caller's policies:
//!
//!    | caller | identity policies | boundary | session policies |
//!    | --- | --- | --- | --- |
//!    | `AKIA…` of a user (the twin's `admin`) | the user's inline policies (`AdministratorAccess`) | none | none |
//!    | `AKIA…` of `root` | none (root is allowed in its own account) | none | none |
//!    | `ASIA…` role session | the role's inline and attached managed policies (`role_identity_policies`) | the role's boundary | the session's inline policy and managed policy ARNs |
//!
//!    A managed session policy that no longer exists is evaluated as a policy allowing nothing,
//!    so deleting it can never widen the session;
//! 3. calls `iam::evaluate` with the resource policy the service passes (a trust policy for
//!    `sts:AssumeRole`, `None` for IAM's own actions);
//! 4. records the decision, allowed or denied, with service, action, caller and resource.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use awswire::AwsError;
use iam::eval::StatementRef;
use iam::{Decision, IdentityArn, NamedPolicy, PolicyRole, PolicySet, Reason, RequestContext};
use time::OffsetDateTime;
use twin_state::{StateError, Store};

use crate::auth::{describe_principal, AuthenticatedCaller};
use crate::decisions::{DecisionLog, DecisionRecord};
use crate::service::{ApiRequest, UNKNOWN_FAILURE};

/// Decides requests of authenticated callers with the policies in the store.
#[derive(Debug, Clone)]
pub struct Authorizer {
    store: Arc<Store>,
    decisions: DecisionLog,
}

/// The policies that apply to a caller, as [`Authorizer`] gathers them.
#[derive(Debug, Clone, Default)]
pub struct CallerPolicies {
    /// Identity-based policies (inline, then attached managed).
    pub identity: Vec<NamedPolicy>,
    /// The permissions boundary.
    pub boundary: Option<NamedPolicy>,
    /// Session policies (inline first, then managed ARNs in the order passed).
    pub session: Vec<NamedPolicy>,
    /// Principal tags, key → value.
    pub principal_tags: BTreeMap<String, String>,
    /// Extra global keys of the caller (`aws:TokenIssueTime`, `aws:SourceIdentity`).
    pub keys: Vec<(String, String)>,
}

impl CallerPolicies {
    /// The context a request of `principal` with these policies is decided in: the principal
    /// (its global keys derive from it), `aws:CurrentTime`/`aws:EpochTime` of `now`,
    /// `aws:SourceIp`, the principal tags and the caller's extra keys, and the resource's
    /// account (left unset when unknown: empty). The service adds its own keys after.
    pub(crate) fn request_context(
        &self,
        principal: &iam::Principal,
        action: &str,
        resource_arn: &str,
        resource_account: &str,
        now: OffsetDateTime,
        source_ip: IpAddr,
    ) -> RequestContext {
        let mut ctx = RequestContext::new(principal.clone(), action, resource_arn);
        ctx.set_time(now);
        ctx.set_source_ip(source_ip);
        ctx.set_principal_tags(&self.principal_tags);
        for (k, v) in &self.keys {
            ctx.set(k, v);
        }
        if !resource_account.is_empty() {
            ctx.set_resource_account(resource_account);
        }
        ctx
    }

    /// These policies with `resource` as the resource-based policy, for `iam::evaluate`.
    pub(crate) fn policy_set<'a>(&'a self, resource: Option<&'a NamedPolicy>) -> PolicySet<'a> {
        PolicySet {
            identity: &self.identity,
            resource,
            boundary: self.boundary.as_ref(),
            session: &self.session,
        }
    }
}

/// A request the caller's policies do not allow. Carries the decision with its trace.
#[derive(Debug, Clone)]
pub struct AuthzDenied {
    /// The decision (`ExplicitDeny` or `ImplicitDeny`).
    pub decision: Decision,
}

/// Why [`Authorizer::authorize_at`] did not allow a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The policies do not allow it (`AccessDenied`); the decision is in the log.
    #[error("access denied")]
    Denied(Box<AuthzDenied>),
    /// The store could not be read; nothing was decided (fail closed). The text is for the
    /// log, never for the client.
    #[error("policy store unavailable: {0}")]
    Unavailable(String),
}

impl AuthzError {
    /// The decision, for a denial.
    pub fn decision(&self) -> Option<&Decision> {
        match self {
            AuthzError::Denied(d) => Some(&d.decision),
            AuthzError::Unavailable(_) => None,
        }
    }

    /// The error to answer with: AWS's `AccessDenied` for a denial (see
    /// [`AuthzDenied::to_aws_error`]), `ServiceFailure` 500 when the store failed (logged here).
    pub fn to_aws_error(&self, action: &str, caller_arn: &str, resource: &str) -> AwsError {
        match self {
            AuthzError::Denied(d) => d.to_aws_error(action, caller_arn, resource),
            AuthzError::Unavailable(detail) => {
                tracing::error!(%detail, "authorization could not read the store");
                AwsError::service_failure(UNKNOWN_FAILURE)
            }
        }
    }
}

impl AuthzDenied {
    /// AWS's `AccessDenied` (403) for this denial:
    /// `User: {caller_arn} is not authorized to perform: {action} on resource: {resource}
    /// because no identity-based policy allows the {action} action`, the ending chosen from the
    /// decision's [`Reason`] as AWS words it:
    ///
    /// | reason | ending |
    /// | --- | --- |
    /// | explicit deny in an identity policy | `with an explicit deny in an identity-based policy` (`: ARN` for a managed policy) |
    /// | explicit deny in a resource policy | `with an explicit deny in a resource-based policy` |
    /// | explicit deny in a boundary | `with an explicit deny in a permissions boundary` |
    /// | explicit deny in a session policy | `with an explicit deny in a session policy` |
    /// | nothing allows; identity policy missing (same or cross account) | `because no identity-based policy allows the {action} action` |
    /// | boundary does not allow | `because no permissions boundary allows the {action} action` |
    /// | session policy does not allow | `because no session policy allows the {action} action` |
    /// | resource policy required (cross account, non-IAM callers) | `because no resource-based policy allows the {action} action` |
    pub fn to_aws_error(&self, action: &str, caller_arn: &str, resource: &str) -> AwsError {
        AwsError::access_denied(self.message(action, caller_arn, resource))
    }

    /// The message of [`to_aws_error`](Self::to_aws_error).
    pub fn message(&self, action: &str, caller_arn: &str, resource: &str) -> String {
        let ending = match &self.decision.reason {
            Reason::ExplicitDeny { by } => explicit_deny_ending(by),
            Reason::BoundaryDoesNotAllow { .. } => {
                format!("because no permissions boundary allows the {action} action")
            }
            Reason::SessionPolicyDoesNotAllow { .. } => {
                format!("because no session policy allows the {action} action")
            }
            Reason::ResourcePolicyRequired
            | Reason::CrossAccountResourcePolicyDoesNotAllow { .. } => {
                format!("because no resource-based policy allows the {action} action")
            }
            _ => format!("because no identity-based policy allows the {action} action"),
        };
        format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource} {ending}"
        )
    }
}

fn explicit_deny_ending(by: &StatementRef) -> String {
    match by.role {
        PolicyRole::Identity if by.policy.starts_with("arn:") => format!(
            "with an explicit deny in an identity-based policy: {}",
            by.policy
        ),
        PolicyRole::Identity => "with an explicit deny in an identity-based policy".to_string(),
        PolicyRole::Resource => "with an explicit deny in a resource-based policy".to_string(),
        PolicyRole::Boundary => "with an explicit deny in a permissions boundary".to_string(),
        PolicyRole::Session => "with an explicit deny in a session policy".to_string(),
    }
}

fn unavailable(e: StateError) -> AuthzError {
    AuthzError::Unavailable(e.to_string())
}

/// An identity or session policy document from the store. The store only keeps documents IAM
/// accepted, so one that does not parse is a corrupt `table`.
fn parse_stored(doc: &str, table: &'static str) -> Result<iam::Policy, StateError> {
    iam::Policy::parse(doc, iam::PolicyKind::Identity).map_err(|e| StateError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// A policy that allows nothing, standing in for a managed session policy that is gone.
fn allows_nothing(name: &str) -> NamedPolicy {
    NamedPolicy::new(
        name,
        iam::Policy {
            version: iam::Version::V2012_10_17,
            id: None,
            statements: Vec::new(),
        },
    )
}

impl Authorizer {
    /// An authorizer reading policies from `store` and recording into `decisions` (give it
    /// [`TwinServer::decisions`](crate::TwinServer::decisions)).
    pub fn new(store: Arc<Store>, decisions: DecisionLog) -> Self {
        Authorizer { store, decisions }
    }

    /// The store it reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The log it records into.
    pub fn decisions(&self) -> &DecisionLog {
        &self.decisions
    }

    /// [`authorize_at`](Self::authorize_at) for a request: the service is the request's
    /// signing name, `aws:CurrentTime` its arrival and `aws:SourceIp` the client's address.
    ///
    /// # Errors
    ///
    /// As [`authorize_at`](Self::authorize_at).
    #[allow(clippy::too_many_arguments)]
    pub fn authorize_request(
        &self,
        req: &ApiRequest,
        caller: &AuthenticatedCaller,
        action: &str,
        resource_arn: &str,
        resource_account: &str,
        resource_policy: Option<&NamedPolicy>,
        extra: &dyn Fn(&mut RequestContext),
    ) -> Result<Decision, AuthzError> {
        self.authorize_at(
            req.received_at,
            req.source_ip,
            caller,
            req.service(),
            action,
            resource_arn,
            resource_account,
            resource_policy,
            extra,
        )
    }

    /// Decides whether `caller` may perform `action` (e.g. `iam:CreateRole`) on `resource_arn`,
    /// owned by `resource_account`, with `resource_policy` as the resource-based policy (a
    /// bucket policy for S3, `None` for IAM's own actions). `aws:CurrentTime` is `received_at`
    /// (the request's arrival) and `aws:SourceIp` the client's address; `extra` adds the
    /// service's own context keys last. Records the decision under `service` either way.
    /// Services behind a [`StreamingService`](crate::StreamingService) call it directly, the
    /// others through [`authorize_request`](Self::authorize_request).
    ///
    /// Synchronous store reads: call it from `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`AuthzError::Denied`] with the decision when not allowed; [`AuthzError::Unavailable`]
    /// when the store fails (nothing is recorded then).
    #[allow(clippy::too_many_arguments)]
    pub fn authorize_at(
        &self,
        received_at: OffsetDateTime,
        source_ip: IpAddr,
        caller: &AuthenticatedCaller,
        service: &str,
        action: &str,
        resource_arn: &str,
        resource_account: &str,
        resource_policy: Option<&NamedPolicy>,
        extra: &dyn Fn(&mut RequestContext),
    ) -> Result<Decision, AuthzError> {
        let policies = self.caller_policies(caller).map_err(unavailable)?;
        let mut ctx = policies.request_context(
            &caller.principal,
            action,
            resource_arn,
            resource_account,
            received_at,
            source_ip,
        );
        extra(&mut ctx);
        let decision = iam::evaluate(&policies.policy_set(resource_policy), &ctx);
        self.record_for(service, &caller.principal, &ctx, &decision);
        if decision.is_allowed() {
            Ok(decision)
        } else {
            Err(AuthzError::Denied(Box::new(AuthzDenied { decision })))
        }
    }

    /// Evaluates a policy set the caller assembled (for callers that are not IAM entities, such
    /// as a web identity calling `sts:AssumeRoleWithWebIdentity`) and records the decision under
    /// `caller` (an ARN or a description).
    pub fn evaluate_and_record(
        &self,
        service: &str,
        caller: &str,
        set: &PolicySet<'_>,
        ctx: &RequestContext,
    ) -> Decision {
        let decision = iam::evaluate(set, ctx);
        self.record(service, ctx.action(), caller, ctx.resource(), &decision);
        decision
    }

    /// Records a decision made elsewhere.
    pub fn record(
        &self,
        service: &str,
        action: &str,
        caller: &str,
        resource: &str,
        decision: &Decision,
    ) {
        self.decisions.record(DecisionRecord {
            service: service.to_string(),
            action: action.to_string(),
            caller: caller.to_string(),
            resource: resource.to_string(),
            decision: decision.clone(),
        });
    }

    /// Records the decision `ctx` (its action and resource) got for `principal`, described as
    /// the decision log names callers.
    pub(crate) fn record_for(
        &self,
        service: &str,
        principal: &iam::Principal,
        ctx: &RequestContext,
        decision: &Decision,
    ) {
        self.record(
            service,
            ctx.action(),
            &describe_principal(principal),
            ctx.resource(),
            decision,
        );
    }

    /// The policies, boundary, session policies and principal tags of `caller`.
    ///
    /// # Errors
    ///
    /// The store's, e.g. `NoSuchEntity` when the caller's role or user is gone.
    pub fn caller_policies(
        &self,
        caller: &AuthenticatedCaller,
    ) -> Result<CallerPolicies, StateError> {
        match &caller.principal {
            iam::Principal::User { arn, account, .. } => {
                let name = match arn.parse::<IdentityArn>() {
                    Ok(IdentityArn::User { name, .. }) => name,
                    _ => arn.rsplit('/').next().unwrap_or_default().to_string(),
                };
                let user = self.store.get_user(account, &name)?;
                let mut out = CallerPolicies::default();
                for (policy_name, doc) in &user.inline_policies {
                    out.identity.push(NamedPolicy::new(
                        &format!("{} (inline: {policy_name})", user.arn),
                        parse_stored(doc, "policy document")?,
                    ));
                }
                Ok(out)
            }
            iam::Principal::AssumedRole { role_arn, .. } => {
                self.session_policies(caller.access_key_id.as_deref(), role_arn)
            }
            _ => Ok(CallerPolicies::default()),
        }
    }

    /// The policies of a session of `role_arn`: the role's, and the session's own (tags,
    /// session policies) when it signed with `access_key_id`.
    fn session_policies(
        &self,
        access_key_id: Option<&str>,
        role_arn: &str,
    ) -> Result<CallerPolicies, StateError> {
        let Ok(IdentityArn::Role { account, name, .. }) = role_arn.parse::<IdentityArn>() else {
            return Err(StateError::NoSuchEntity(format!(
                "The role {role_arn} cannot be found."
            )));
        };
        // A session is authorized with its role's policies as IAM changes have propagated
        // (`rolechain up --iam-propagation-delay`); the session itself is STS's own state.
        let iam = self.store.propagated();
        let role = iam.get_role(&account, &name)?;
        let (identity, boundary) = iam.role_identity_policies(&account, &name)?;
        let mut out = CallerPolicies {
            identity,
            boundary,
            ..CallerPolicies::default()
        };
        let mut tags: Vec<(String, String)> = role
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let session = match access_key_id {
            Some(key) => self.store.get_session(key)?,
            None => None,
        };
        if let Some(session) = session {
            for t in &session.session_tags {
                tags.retain(|(k, _)| !k.eq_ignore_ascii_case(&t.key));
                tags.push((t.key.clone(), t.value.clone()));
            }
            if let Some(doc) = &session.session_policy {
                out.session.push(NamedPolicy::new(
                    &format!("{} (session policy)", session.assumed_role_arn),
                    parse_stored(doc, "session policy")?,
                ));
            }
            for arn in &session.session_policy_arns {
                let named = match iam.get_policy(arn) {
                    Ok(p) => match p.default_version() {
                        Some(v) => {
                            NamedPolicy::new(arn, parse_stored(&v.document, "policy document")?)
                        }
                        None => allows_nothing(arn),
                    },
                    Err(StateError::NoSuchEntity(_)) => allows_nothing(arn),
                    Err(e) => return Err(e),
                };
                out.session.push(named);
            }
            if let Ok(issued) = session
                .issued
                .format(&time::format_description::well_known::Rfc3339)
            {
                out.keys.push(("aws:TokenIssueTime".to_string(), issued));
            }
            if let Some(source) = &session.source_identity {
                out.keys
                    .push(("aws:SourceIdentity".to_string(), source.clone()));
            }
        }
        out.principal_tags = tags.into_iter().collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iam::{Policy, PolicyKind, Principal};

    fn denied(identity: &[&str], boundary: Option<&str>) -> AuthzDenied {
        let named = |i: usize, doc: &str| {
            NamedPolicy::new(
                &format!("arn:aws:iam::111111111111:policy/p{i}"),
                Policy::parse(doc, PolicyKind::Identity).unwrap(),
            )
        };
        let identity: Vec<NamedPolicy> = identity
            .iter()
            .enumerate()
            .map(|(i, d)| named(i, d))
            .collect();
        let boundary = boundary.map(|d| named(9, d));
        let ctx = RequestContext::new(
            Principal::AssumedRole {
                session_arn: "arn:aws:sts::111111111111:assumed-role/r/s".into(),
                role_arn: "arn:aws:iam::111111111111:role/r".into(),
                account: "111111111111".into(),
                role_unique_id: None,
            },
            "iam:CreateRole",
            "arn:aws:iam::111111111111:role/x",
        );
        let decision = iam::evaluate(
            &PolicySet {
                identity: &identity,
                boundary: boundary.as_ref(),
                ..Default::default()
            },
            &ctx,
        );
        assert!(!decision.is_allowed());
        AuthzDenied { decision }
    }

    const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#;
    const DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#;
    const OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

    #[test]
    fn access_denied_messages_follow_the_reason() {
        let head = "User: arn:aws:sts::111111111111:assumed-role/r/s is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::111111111111:role/x";
        let msg = |d: AuthzDenied| {
            let e = d.to_aws_error(
                "iam:CreateRole",
                "arn:aws:sts::111111111111:assumed-role/r/s",
                "arn:aws:iam::111111111111:role/x",
            );
            assert_eq!((&*e.code, e.status), ("AccessDenied", 403));
            e.message
        };
        assert_eq!(
            msg(denied(&[], None)),
            format!("{head} because no identity-based policy allows the iam:CreateRole action")
        );
        assert_eq!(
            msg(denied(&[ALLOW, DENY], None)),
            format!("{head} with an explicit deny in an identity-based policy: arn:aws:iam::111111111111:policy/p1")
        );
        assert_eq!(
            msg(denied(&[ALLOW], Some(OTHER))),
            format!("{head} because no permissions boundary allows the iam:CreateRole action")
        );
        assert_eq!(
            msg(denied(&[ALLOW], Some(DENY))),
            format!("{head} with an explicit deny in a permissions boundary")
        );
    }
}
