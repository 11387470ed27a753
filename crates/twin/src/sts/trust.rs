//! The trust decision of an `AssumeRole*` request: the trust policy as the resource policy,
//! with STS's rule that only the trust policy can allow, each decision logged.

use iam::{
    Decision, Effect, NamedPolicy, PolicyRole, PolicySet, Principal, Reason, RequestContext,
    Verdict,
};

use super::session_tags::SessionTags;
use super::Inner;
use crate::authz::CallerPolicies;
use crate::service::ApiRequest;

/// A trust policy allowing nothing: what a role that does not exist is evaluated with, so the
/// denial is recorded like any other.
pub(crate) fn no_trust(role_arn: &str) -> NamedPolicy {
    NamedPolicy::new(
        &format!("{role_arn} (no such role)"),
        iam::Policy {
            version: iam::Version::V2012_10_17,
            id: None,
            statements: Vec::new(),
        },
    )
}

/// `iam::evaluate` with STS's rule on top: an `AssumeRole*` request is allowed only if a
/// statement of the trust policy allowed it (the engine alone lets a same-account identity
/// policy allow without the resource policy, which is right for S3 and wrong for roles).
pub(crate) fn evaluate_trust(set: &PolicySet<'_>, ctx: &RequestContext) -> Decision {
    let mut decision = iam::evaluate(set, ctx);
    if decision.is_allowed() {
        let trusted = decision.policies.iter().any(|p| {
            p.role == PolicyRole::Resource
                && p.statements
                    .iter()
                    .any(|s| s.matched && s.effect == Effect::Allow)
        });
        if !trusted {
            decision.verdict = Verdict::ImplicitDeny;
            decision.reason = Reason::ResourcePolicyRequired;
        }
    }
    decision
}

/// The trust decisions of one `AssumeRole*` request, each recorded in the decision log under
/// `sts`: the trust policy is the resource policy, `policies` the caller's (none for a web
/// identity, which only the trust policy can allow), in the context the
/// [`Authorizer`](crate::Authorizer) builds plus `extra`.
pub(crate) struct TrustCheck<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) policies: &'a CallerPolicies,
    pub(crate) role_arn: &'a str,
    pub(crate) resource_account: &'a str,
    pub(crate) trust: &'a NamedPolicy,
    /// False when no such role exists: `trust` then allows nothing, and the request is refused
    /// with the first decision.
    pub(crate) role_exists: bool,
    pub(crate) extra: &'a dyn Fn(&mut RequestContext),
}

impl TrustCheck<'_> {
    /// Decides `first` (`sts:AssumeRole…`), then `sts:TagSession` when the session gets tags
    /// and `sts:SetSourceIdentity` when it gets a source identity, stopping at the first action
    /// refused, which it returns; `None` when all are allowed.
    pub(crate) fn refused_action(
        &self,
        inner: &Inner,
        req: &ApiRequest,
        first: &'static str,
        tags: &SessionTags,
        source_identity: Option<&str>,
    ) -> Option<&'static str> {
        let mut actions = vec![first];
        if tags.any() {
            actions.push("sts:TagSession");
        }
        if source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        actions
            .into_iter()
            .find(|action| !self.allows(inner, req, action) || !self.role_exists)
    }

    fn allows(&self, inner: &Inner, req: &ApiRequest, action: &str) -> bool {
        let mut ctx = self.policies.request_context(
            self.principal,
            action,
            self.role_arn,
            self.resource_account,
            req.received_at,
            req.source_ip,
        );
        (self.extra)(&mut ctx);
        let decision = evaluate_trust(&self.policies.policy_set(Some(self.trust)), &ctx);
        inner
            .authorizer
            .record_for("sts", self.principal, &ctx, &decision);
        decision.is_allowed()
    }
}
