//! The last step of `explain pod`: the pod's request, made with the last role's session,
//! against that role's identity policies and, for S3, the bucket's policy in its owner's
//! account.

use std::collections::BTreeMap;

use iam::{NamedPolicy, Policy, PolicyKind, RequestContext};
use twin_state::snapshot::SnapshotRole;

use crate::pod::{asked, describe, statement, why, Step, Walk, SESSION};
use crate::view::{allowed, arn_account, full_decision, session_principal, RolePolicies};

impl Walk<'_> {
    /// The final request as the last role's session.
    pub(crate) fn final_action(
        &mut self,
        role: &SnapshotRole,
        policies: &RolePolicies,
        tags: &BTreeMap<String, String>,
        session: &[NamedPolicy],
        action: &str,
        resource: &str,
    ) {
        let caller = session_principal(role, SESSION);
        let mut ctx = RequestContext::new(caller.clone(), action, resource);
        ctx.set_principal_tags(tags);
        let is_s3 = action
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("s3:"));
        let bucket = is_s3.then(|| self.view.bucket_of(resource)).flatten();
        let bucket_policy = match bucket.and_then(|b| b.policy.as_deref()) {
            Some(text) => match Policy::parse(text, PolicyKind::Resource) {
                Ok(p) => Some(NamedPolicy::new(
                    &format!("bucket policy of {}", bucket.map_or("", |b| &b.name)),
                    p,
                )),
                Err(e) => {
                    self.steps.push(Step::fail(
                        "policy-valid",
                        "the bucket policy is valid",
                        e.to_string(),
                        "correct the bucket policy",
                    ));
                    return;
                }
            },
            None => None,
        };
        if let Some(b) = bucket {
            ctx.set_resource_account(&b.owner);
        } else if let Some(account) = arn_account(resource).filter(|a| a.len() == 12) {
            ctx.set_resource_account(account);
        }
        let decision = full_decision(
            &policies.identity,
            policies.boundary.as_ref(),
            session,
            bucket_policy.as_ref(),
            &ctx,
        );
        let who = describe(&caller);
        let title = format!("{} may {action} on {resource}", role.arn);
        let mut step = if allowed(&decision) {
            Step::pass("final-action", title)
        } else {
            let cross = decision.cross_account;
            // The caller's side alone, as if the resource were its own account's.
            let mut own = RequestContext::new(caller.clone(), action, resource);
            own.set_principal_tags(tags);
            let identity_ok = allowed(&policies.identity_decision(&own, session));
            let resource_side = format!(
                "add to the {} of account {}: {}",
                if bucket.is_some() {
                    "bucket policy"
                } else {
                    "resource policy"
                },
                ctx.resource_account().unwrap_or("the resource"),
                statement(serde_json::json!({
                    "Effect": "Allow",
                    "Principal": {"AWS": role.arn},
                    "Action": action,
                    "Resource": resource,
                }))
            );
            let identity_side = format!(
                "add to an identity policy of {}: {}",
                role.arn,
                statement(serde_json::json!({
                    "Effect": "Allow",
                    "Action": action,
                    "Resource": resource,
                }))
            );
            let resource_allows = bucket_policy.is_some()
                && !matches!(
                    decision.reason,
                    iam::Reason::CrossAccountResourcePolicyDoesNotAllow { .. }
                );
            let fix = match (cross, identity_ok) {
                (true, true) => resource_side,
                (true, false) if !resource_allows => {
                    format!("{identity_side}; and {resource_side}")
                }
                _ => identity_side,
            };
            Step::fail(
                "final-action",
                title,
                why(&decision, &asked(&ctx, &who)),
                fix,
            )
        };
        if let Some(b) = bucket {
            step = step.detail(format!("bucket {} is owned by account {}", b.name, b.owner));
        } else if is_s3 && resource != "*" {
            step = step.detail("the bucket is not in the twin; only the identity side was checked");
        }
        step.decision = Some(decision);
        self.steps.push(step);
    }
}
