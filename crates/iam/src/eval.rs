//! Policy evaluation per AWS's documented logic, producing a decision with a full trace.
//!
//! Order (IAM User Guide, "Policy evaluation logic"): an explicit deny in any policy wins; then
//! the resource-based policy, identity-based policies, permissions boundary and session policies
//! combine by the same-account and cross-account rules implemented in [`decide`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::condition::{ConditionOutcome, Operator};
use crate::context::{Principal, RequestContext};
use crate::policy::{
    ActionClause, AwsPrincipal, Effect, Policy, PrincipalClause, Principals, ResourceClause,
    Statement,
};

/// A policy with the name it is reported under (e.g. a managed policy ARN or
/// `role/S3_Pics/inline/read`).
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// The name shown in traces.
    pub name: Arc<str>,
    /// The compiled policy.
    pub policy: Arc<Policy>,
}

impl NamedPolicy {
    /// Wraps a policy under a name.
    pub fn new(name: &str, policy: Policy) -> Self {
        NamedPolicy {
            name: Arc::from(name),
            policy: Arc::new(policy),
        }
    }
}

/// The policies that apply to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySet<'a> {
    /// Identity-based policies of the caller (inline and attached managed policies).
    pub identity: &'a [NamedPolicy],
    /// The resource-based policy: an S3 bucket policy, or a role's trust policy for
    /// `sts:AssumeRole*`.
    pub resource: Option<&'a NamedPolicy>,
    /// The caller's permissions boundary.
    pub boundary: Option<&'a NamedPolicy>,
    /// Session policies passed when the caller's session was created (inline and managed).
    pub session: &'a [NamedPolicy],
}

/// The final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Denied by a matching `Deny` statement.
    ExplicitDeny,
    /// Denied because nothing (or not everything that must) allowed it.
    ImplicitDeny,
}

/// Which role a policy plays in the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyRole {
    /// Identity-based policy of the caller.
    Identity,
    /// Resource-based policy (bucket policy, trust policy).
    Resource,
    /// Permissions boundary.
    Boundary,
    /// Session policy.
    Session,
}

/// How a `Principal` element matched the caller; the strength matters within one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalMatch {
    /// The account (ID or `:root`): delegates to the account, whose identity policies must
    /// also allow.
    Account,
    /// The role ARN, matching the role's sessions: boundary and session policies still apply.
    Role,
    /// The caller itself (user, role session, federated user, web identity, service).
    Direct,
    /// `"*"`.
    Everyone,
}

/// The first element of a statement that did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "element", rename_all = "kebab-case")]
pub enum Mismatch {
    /// The request's action is not in `Action`.
    Action,
    /// The request's action is listed in `NotAction`.
    NotAction,
    /// The request's resource is not in `Resource`.
    Resource,
    /// The request's resource is listed in `NotResource`.
    NotResource,
    /// The caller is not in `Principal`.
    Principal {
        /// The principals the statement names.
        expected: Vec<String>,
    },
    /// The caller is listed (in every form) in `NotPrincipal`.
    NotPrincipal,
    /// A policy variable in `Resource`/`NotResource` had no value.
    UnresolvedVariable {
        /// The variable's key.
        variable: String,
    },
    /// A condition did not hold (boxed: it is by far the largest variant, and traces are
    /// built for every statement of every evaluation).
    Condition(Box<ConditionMismatch>),
}

/// The details of a failed condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionMismatch {
    /// Position of the condition within the statement's conditions.
    pub index: usize,
    /// The operator, e.g. `StringEquals`.
    pub operator: Operator,
    /// The condition key as written.
    pub key: String,
    /// The values the policy expects.
    pub expected: Vec<String>,
    /// The request's values, or `None` when the key is absent.
    pub actual: Option<Vec<String>>,
    /// A policy variable in the values had no value in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved_variable: Option<String>,
    /// True when the key holds a secret ([`SECRET_CONDITION_KEYS`]) and
    /// [`Decision::redact_secrets`] removed `expected` and the values of `actual` (which then
    /// only tells whether the request had the key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// Condition keys whose values are shared secrets: `sts:ExternalId` is what one account gives
/// another so that only it can assume a role. A trace shown to the caller who was denied must
/// not tell it the value the trust policy expects.
pub const SECRET_CONDITION_KEYS: &[&str] = &["sts:ExternalId"];

impl Mismatch {
    /// How far the statement got before failing, to pick the statement closest to allowing.
    fn progress(&self) -> usize {
        match self {
            Mismatch::Action | Mismatch::NotAction => 0,
            Mismatch::Resource | Mismatch::NotResource | Mismatch::UnresolvedVariable { .. } => 1,
            Mismatch::Principal { .. } | Mismatch::NotPrincipal => 2,
            Mismatch::Condition(c) => 3 + c.index,
        }
    }
}

/// What happened to one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementTrace {
    /// Position in the policy.
    pub index: usize,
    /// The statement's Sid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Arc<str>>,
    /// The statement's effect.
    pub effect: Effect,
    /// True when every element matched.
    pub matched: bool,
    /// For resource-policy statements that matched: how the principal matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_match: Option<PrincipalMatch>,
    /// For statements that did not match: the first element that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Mismatch>,
    /// A noteworthy rule that applied, e.g. the NotPrincipal/boundary interaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Cow<'static, str>>,
}

/// What happened to one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTrace {
    /// The policy's name.
    pub name: Arc<str>,
    /// The role it played.
    pub role: PolicyRole,
    /// Every statement, in order.
    pub statements: Vec<StatementTrace>,
}

/// A reference to one statement, used in reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRef {
    /// The policy's name.
    pub policy: Arc<str>,
    /// The policy's role.
    pub role: PolicyRole,
    /// The statement's position.
    pub statement: usize,
    /// The statement's Sid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Arc<str>>,
}

/// Why the verdict is what it is: the rule of the evaluation logic that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Reason {
    /// A matching `Deny` statement.
    ExplicitDeny {
        /// The statement.
        by: StatementRef,
    },
    /// The account's root user acting in its own account.
    RootUser,
    /// Within one account, the resource policy names the caller itself (or `*`); identity
    /// policies, boundary and session policies are not needed.
    ResourcePolicyNamesCaller {
        /// The allowing statement.
        by: StatementRef,
    },
    /// Within one account, the resource policy names the caller's role; the boundary and session
    /// policies allowed too.
    ResourcePolicyNamesRole {
        /// The allowing statement.
        by: StatementRef,
    },
    /// Within one account, an identity policy allowed (and boundary and session policies too).
    IdentityPolicyAllows {
        /// The allowing statement.
        by: StatementRef,
    },
    /// Across accounts, both the caller's identity policy and the resource policy allowed.
    CrossAccountBothAllow {
        /// The identity policy's allowing statement (absent for a root user).
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<StatementRef>,
        /// The resource policy's allowing statement.
        resource: StatementRef,
    },
    /// A caller that is not an IAM entity (web identity, service, anonymous) was allowed by the
    /// resource policy.
    ResourcePolicyAllows {
        /// The allowing statement.
        by: StatementRef,
    },
    /// No statement allowed the request.
    NoAllow,
    /// A caller that is not an IAM entity can only be allowed by a resource policy naming it,
    /// and none did.
    ResourcePolicyRequired,
    /// The resource policy names only the caller's account, which delegates to the account's
    /// identity policies, and none of them allowed.
    AccountDelegationWithoutIdentityAllow {
        /// The resource policy statement naming the account.
        resource: StatementRef,
    },
    /// Something allowed, but the permissions boundary did not.
    BoundaryDoesNotAllow {
        /// What allowed.
        allowed_by: StatementRef,
    },
    /// Something allowed, but no session policy did.
    SessionPolicyDoesNotAllow {
        /// What allowed.
        allowed_by: StatementRef,
    },
    /// Across accounts the resource policy must allow, and it did not (or there is none).
    CrossAccountResourcePolicyDoesNotAllow {
        /// The identity policy's allowing statement, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<StatementRef>,
    },
    /// Across accounts the caller's identity policy must allow, and none did.
    CrossAccountIdentityPolicyDoesNotAllow {
        /// The resource policy's allowing statement.
        resource: StatementRef,
    },
}

/// The decision and its trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow, explicit deny, or implicit deny.
    pub verdict: Verdict,
    /// The rule that decided.
    pub reason: Reason,
    /// True when the caller's account differs from the resource owner's.
    pub cross_account: bool,
    /// Every policy considered, with every statement.
    pub policies: Vec<PolicyTrace>,
}

impl Decision {
    /// Removes the values of [`SECRET_CONDITION_KEYS`] from the trace (what the policy
    /// expects and what the request sent), so the decision can be shown to anyone who may read
    /// a decision log. The verdict and which condition failed stay.
    pub fn redact_secrets(&mut self) {
        let statements = self
            .policies
            .iter_mut()
            .flat_map(|p| p.statements.iter_mut());
        for statement in statements {
            if let Some(Mismatch::Condition(c)) = &mut statement.failed {
                if SECRET_CONDITION_KEYS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&c.key))
                {
                    c.expected.clear();
                    if let Some(values) = &mut c.actual {
                        values.clear();
                    }
                    c.redacted = true;
                }
            }
        }
    }

    /// True for [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// On an implicit deny, the `Allow` statement that came closest to matching, among those
    /// that name the action: the one whose first failing element comes latest (resource, then
    /// principal, then each condition in turn). `None` when no `Allow` statement names the
    /// action at all: then none is close, and pointing at one about another action misleads.
    pub fn closest_allow(&self) -> Option<(&PolicyTrace, &StatementTrace)> {
        self.policies
            .iter()
            .flat_map(|p| p.statements.iter().map(move |s| (p, s)))
            .filter(|(_, s)| s.effect == Effect::Allow && !s.matched)
            .filter(|(_, s)| s.failed.as_ref().is_some_and(|m| m.progress() > 0))
            .max_by_key(|(_, s)| s.failed.as_ref().map_or(0, Mismatch::progress))
    }

    /// Whether a resource-based policy took part (a bucket policy, a role's trust policy).
    pub fn has_resource_policy(&self) -> bool {
        self.policies.iter().any(|p| p.role == PolicyRole::Resource)
    }
}

/// Evaluates `set` against `ctx`.
pub fn evaluate(set: &PolicySet<'_>, ctx: &RequestContext) -> Decision {
    let has_boundary = set.boundary.is_some();
    let capacity = set.identity.len() + set.session.len() + usize::from(set.resource.is_some()) + 1;
    let mut policies = Vec::with_capacity(capacity);
    let ordered = set
        .resource
        .map(|p| (p, PolicyRole::Resource))
        .into_iter()
        .chain(set.identity.iter().map(|p| (p, PolicyRole::Identity)))
        .chain(set.boundary.map(|p| (p, PolicyRole::Boundary)))
        .chain(set.session.iter().map(|p| (p, PolicyRole::Session)));
    for (named, role) in ordered {
        let statements = named
            .policy
            .statements
            .iter()
            .enumerate()
            .map(|(index, st)| evaluate_statement(st, index, role, ctx, has_boundary))
            .collect();
        policies.push(PolicyTrace {
            name: named.name.clone(),
            role,
            statements,
        });
    }
    let reason = decide(&policies, set, ctx);
    let verdict = match reason {
        Reason::ExplicitDeny { .. } => Verdict::ExplicitDeny,
        Reason::RootUser
        | Reason::ResourcePolicyNamesCaller { .. }
        | Reason::ResourcePolicyNamesRole { .. }
        | Reason::IdentityPolicyAllows { .. }
        | Reason::CrossAccountBothAllow { .. }
        | Reason::ResourcePolicyAllows { .. } => Verdict::Allow,
        _ => Verdict::ImplicitDeny,
    };
    Decision {
        verdict,
        reason,
        cross_account: ctx.is_cross_account(),
        policies,
    }
}

fn statement_ref(policy: &PolicyTrace, st: &StatementTrace) -> StatementRef {
    StatementRef {
        policy: policy.name.clone(),
        role: policy.role,
        statement: st.index,
        sid: st.sid.clone(),
    }
}

/// Applies the combination rules to the traced statements.
fn decide(policies: &[PolicyTrace], set: &PolicySet<'_>, ctx: &RequestContext) -> Reason {
    let matched = |effect: Effect| {
        policies.iter().flat_map(move |p| {
            p.statements
                .iter()
                .filter(move |s| s.matched && s.effect == effect)
                .map(move |s| (p, s))
        })
    };
    if let Some((p, s)) = matched(Effect::Deny).next() {
        return Reason::ExplicitDeny {
            by: statement_ref(p, s),
        };
    }
    let first_allow = |role: PolicyRole| {
        matched(Effect::Allow)
            .find(|(p, _)| p.role == role)
            .map(|(p, s)| statement_ref(p, s))
    };
    // The strongest principal match among the resource policy's allowing statements.
    let resource_allow = matched(Effect::Allow)
        .filter(|(p, _)| p.role == PolicyRole::Resource)
        .max_by_key(|(_, s)| s.principal_match)
        .map(|(p, s)| {
            (
                s.principal_match.unwrap_or(PrincipalMatch::Direct),
                statement_ref(p, s),
            )
        });
    let identity_allow = first_allow(PolicyRole::Identity);

    let principal = ctx.principal();
    if !principal.is_iam_entity() {
        return match resource_allow {
            Some((_, by)) => Reason::ResourcePolicyAllows { by },
            None => Reason::ResourcePolicyRequired,
        };
    }
    let cross_account = ctx.is_cross_account();
    if let Principal::Root { .. } = principal {
        if !cross_account {
            return Reason::RootUser;
        }
        return match resource_allow {
            Some((_, resource)) => Reason::CrossAccountBothAllow {
                identity: None,
                resource,
            },
            None => Reason::CrossAccountResourcePolicyDoesNotAllow { identity: None },
        };
    }
    // Boundary and session policies can only limit; each must allow when present.
    let limits = |allowed_by: StatementRef| -> Option<Reason> {
        if set.boundary.is_some() && first_allow(PolicyRole::Boundary).is_none() {
            return Some(Reason::BoundaryDoesNotAllow { allowed_by });
        }
        if !set.session.is_empty() && first_allow(PolicyRole::Session).is_none() {
            return Some(Reason::SessionPolicyDoesNotAllow { allowed_by });
        }
        None
    };
    if cross_account {
        let Some((_, resource)) = resource_allow else {
            return Reason::CrossAccountResourcePolicyDoesNotAllow {
                identity: identity_allow,
            };
        };
        let Some(identity) = identity_allow else {
            return Reason::CrossAccountIdentityPolicyDoesNotAllow { resource };
        };
        if let Some(limited) = limits(identity.clone()) {
            return limited;
        }
        return Reason::CrossAccountBothAllow {
            identity: Some(identity),
            resource,
        };
    }
    match resource_allow {
        Some((PrincipalMatch::Direct | PrincipalMatch::Everyone, by)) => {
            return Reason::ResourcePolicyNamesCaller { by };
        }
        Some((PrincipalMatch::Role, by)) => {
            return limits(by.clone()).unwrap_or(Reason::ResourcePolicyNamesRole { by });
        }
        Some((PrincipalMatch::Account, _)) | None => {}
    }
    match (identity_allow, resource_allow) {
        (Some(by), _) => limits(by.clone()).unwrap_or(Reason::IdentityPolicyAllows { by }),
        (None, Some((_, resource))) => Reason::AccountDelegationWithoutIdentityAllow { resource },
        (None, None) => Reason::NoAllow,
    }
}

fn evaluate_statement(
    st: &Statement,
    index: usize,
    role: PolicyRole,
    ctx: &RequestContext,
    has_boundary: bool,
) -> StatementTrace {
    let mut trace = StatementTrace {
        index,
        sid: st.sid.clone(),
        effect: st.effect,
        matched: false,
        principal_match: None,
        failed: None,
        note: None,
    };
    if let Err(mismatch) = check_statement(st, role, ctx, has_boundary, &mut trace) {
        trace.failed = Some(mismatch);
    } else {
        trace.matched = true;
    }
    trace
}

fn check_statement(
    st: &Statement,
    role: PolicyRole,
    ctx: &RequestContext,
    has_boundary: bool,
    trace: &mut StatementTrace,
) -> Result<(), Mismatch> {
    let action = ctx.action_lower();
    match &st.action {
        ActionClause::Action(patterns) => {
            if !patterns.iter().any(|p| p.matches(action, ctx) == Ok(true)) {
                return Err(Mismatch::Action);
            }
        }
        ActionClause::NotAction(patterns) => {
            if patterns.iter().any(|p| p.matches(action, ctx) == Ok(true)) {
                return Err(Mismatch::NotAction);
            }
        }
    }
    if let Some(clause) = &st.resource {
        let (patterns, negated) = match clause {
            ResourceClause::Resource(p) => (p, false),
            ResourceClause::NotResource(p) => (p, true),
        };
        let mut unresolved = None;
        let mut listed = false;
        for pattern in patterns {
            match pattern.matches(ctx.resource(), ctx) {
                Ok(true) => {
                    listed = true;
                    break;
                }
                Ok(false) => {}
                Err(u) => {
                    unresolved.get_or_insert(u);
                }
            }
        }
        // A variable without a value makes its entry unusable: it cannot grant, and in
        // NotResource it cannot be known to exclude, so the statement does not apply.
        match (listed, negated, unresolved) {
            (true, true, _) => return Err(Mismatch::NotResource),
            (false, false, Some(u)) | (false, true, Some(u)) => {
                return Err(Mismatch::UnresolvedVariable { variable: u.key })
            }
            (false, false, None) => return Err(Mismatch::Resource),
            _ => {}
        }
    }
    if role == PolicyRole::Resource {
        match &st.principal {
            Some(PrincipalClause::Principal(principals)) => match best_match(principals, ctx) {
                Some(m) => trace.principal_match = Some(m),
                None => {
                    return Err(Mismatch::Principal {
                        expected: principals.describe(),
                    })
                }
            },
            Some(PrincipalClause::NotPrincipal(principals)) => {
                if has_boundary && st.effect == Effect::Deny && ctx.principal().is_iam_entity() {
                    // Documented IAM behaviour: Deny with NotPrincipal always applies to a
                    // principal that has a permissions boundary.
                    trace.note = Some(Cow::Borrowed(
                        "Deny with NotPrincipal always applies to principals with a permissions boundary",
                    ));
                } else if all_identities_listed(principals, ctx) {
                    return Err(Mismatch::NotPrincipal);
                }
                trace.principal_match = Some(PrincipalMatch::Direct);
            }
            None => {}
        }
    }
    for (index, condition) in st.conditions.iter().enumerate() {
        let outcome = condition.evaluate(ctx);
        if outcome == ConditionOutcome::Satisfied {
            continue;
        }
        let unresolved_variable = match outcome {
            ConditionOutcome::Unresolved(u) => Some(u.key),
            _ => None,
        };
        return Err(Mismatch::Condition(Box::new(ConditionMismatch {
            index,
            operator: condition.operator,
            key: condition.key.clone(),
            expected: condition.values.clone(),
            actual: ctx.get(condition.key_lower()).map(|v| v.values.clone()),
            unresolved_variable,
            redacted: false,
        })));
    }
    Ok(())
}

/// The forms under which a caller can be named in a `Principal` element.
enum CallerForm<'a> {
    Account(&'a str),
    User { arn: &'a str, id: Option<&'a str> },
    Role { arn: &'a str, id: Option<&'a str> },
    Session(&'a str),
    FederatedUser(&'a str),
    WebIdentity(&'a str),
    Service(&'a str),
    CanonicalUser(&'a str),
    Anonymous,
}

fn identities(ctx: &RequestContext) -> impl Iterator<Item = CallerForm<'_>> {
    let mut out: [Option<CallerForm<'_>>; 4] = [None, None, None, None];
    match ctx.principal() {
        Principal::Anonymous => out[0] = Some(CallerForm::Anonymous),
        Principal::Root { account } => out[0] = Some(CallerForm::Account(account)),
        Principal::User {
            arn,
            account,
            unique_id,
        } => {
            out[0] = Some(CallerForm::User {
                arn,
                id: unique_id.as_deref(),
            });
            out[1] = Some(CallerForm::Account(account));
        }
        Principal::AssumedRole {
            session_arn,
            role_arn,
            account,
            role_unique_id,
        } => {
            out[0] = Some(CallerForm::Session(session_arn));
            out[1] = Some(CallerForm::Role {
                arn: role_arn,
                id: role_unique_id.as_deref(),
            });
            out[2] = Some(CallerForm::Account(account));
        }
        Principal::FederatedUser { arn, account } => {
            out[0] = Some(CallerForm::FederatedUser(arn));
            out[1] = Some(CallerForm::Account(account));
        }
        Principal::WebIdentity { provider } => out[0] = Some(CallerForm::WebIdentity(provider)),
        Principal::Service { name } => out[0] = Some(CallerForm::Service(name)),
    }
    out[3] = ctx.canonical_user().map(CallerForm::CanonicalUser);
    out.into_iter().flatten()
}

/// Whether `principals` names this form of the caller, and how.
fn names(principals: &Principals, identity: &CallerForm<'_>) -> Option<PrincipalMatch> {
    if principals.everyone {
        return Some(PrincipalMatch::Everyone);
    }
    let aws = |want: &dyn Fn(&AwsPrincipal) -> bool| principals.aws.iter().any(want);
    let found = match identity {
        CallerForm::Account(account) => {
            return aws(&|p| matches!(p, AwsPrincipal::Account(a) if a == account))
                .then_some(PrincipalMatch::Account)
        }
        CallerForm::Role { arn, id } => {
            return aws(&|p| match p {
                AwsPrincipal::Role(r) => r == arn,
                AwsPrincipal::UniqueId(u) => Some(u.as_str()) == *id,
                _ => false,
            })
            .then_some(PrincipalMatch::Role)
        }
        CallerForm::User { arn, id } => aws(&|p| match p {
            AwsPrincipal::User(u) => u == arn,
            AwsPrincipal::UniqueId(u) => Some(u.as_str()) == *id,
            _ => false,
        }),
        CallerForm::Session(arn) => aws(&|p| matches!(p, AwsPrincipal::AssumedRole(s) if s == arn)),
        CallerForm::FederatedUser(arn) => {
            aws(&|p| matches!(p, AwsPrincipal::FederatedUser(f) if f == arn))
        }
        CallerForm::WebIdentity(provider) => principals.federated.iter().any(|f| f == provider),
        CallerForm::Service(name) => principals.service.iter().any(|s| s == name),
        CallerForm::CanonicalUser(id) => principals
            .canonical_user
            .iter()
            .any(|c| c.eq_ignore_ascii_case(id)),
        CallerForm::Anonymous => false,
    };
    found.then_some(PrincipalMatch::Direct)
}

fn best_match(principals: &Principals, ctx: &RequestContext) -> Option<PrincipalMatch> {
    identities(ctx).filter_map(|i| names(principals, &i)).max()
}

/// `NotPrincipal` excludes a caller only when every form of it is listed: a role session is
/// excluded only if its session ARN, its role ARN and its account are all listed, as in the IAM
/// User Guide's NotPrincipal examples.
fn all_identities_listed(principals: &Principals, ctx: &RequestContext) -> bool {
    identities(ctx)
        // The caller's canonical id is an alternative name, not a separate form.
        .filter(|i| !matches!(i, CallerForm::CanonicalUser(_)))
        .all(|i| names(principals, &i).is_some())
}
