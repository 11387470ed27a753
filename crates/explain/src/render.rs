//! Rendering a decision for a person.

use std::fmt::Write as _;

use iam::eval::{PolicyRole, StatementRef};
use iam::{Decision, Mismatch, Principal, Reason, RequestContext, StatementTrace, Verdict};

/// What a decision was about, as much as rendering needs: the caller described for a person,
/// the action, the resource and the resource's owner.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The caller, e.g. `role session arn:aws:sts::… (role arn:aws:iam::…)`.
    pub caller: &'a str,
    /// The IAM action.
    pub action: &'a str,
    /// The resource ARN.
    pub resource: &'a str,
    /// The account owning the resource, when known.
    pub resource_account: Option<&'a str>,
}

/// A person's description of a principal.
fn describe_principal(p: &Principal) -> String {
    match p {
        Principal::Anonymous => "an anonymous caller".to_string(),
        Principal::Root { account } => format!("the root user of account {account}"),
        Principal::User { arn, .. } => format!("IAM user {arn}"),
        Principal::AssumedRole {
            session_arn,
            role_arn,
            ..
        } => format!("role session {session_arn} (role {role_arn})"),
        Principal::FederatedUser { arn, .. } => format!("federated user {arn}"),
        Principal::WebIdentity { provider } => format!("a web identity from {provider}"),
        Principal::Service { name } => format!("the service principal {name}"),
    }
}

fn role_label(role: PolicyRole) -> &'static str {
    match role {
        PolicyRole::Identity => "identity policy",
        PolicyRole::Resource => "resource policy",
        PolicyRole::Boundary => "permissions boundary",
        PolicyRole::Session => "session policy",
    }
}

fn statement(r: &StatementRef) -> String {
    match &r.sid {
        Some(sid) => format!(
            "statement {} (Sid \"{sid}\") of {} '{}'",
            r.statement,
            role_label(r.role),
            r.policy
        ),
        None => format!(
            "statement {} of {} '{}'",
            r.statement,
            role_label(r.role),
            r.policy
        ),
    }
}

/// One sentence on the rule that decided.
pub fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::ExplicitDeny { by } => format!(
            "{} explicitly denies this request; an explicit deny overrides every allow.",
            statement(by)
        ),
        Reason::RootUser => {
            "The account's root user has full access within its own account.".to_string()
        }
        Reason::ResourcePolicyNamesCaller { by } => format!(
            "{} names the caller itself, which within one account is enough on its own.",
            statement(by)
        ),
        Reason::ResourcePolicyNamesRole { by } => format!(
            "{} names the caller's role; within one account that allows, subject to the permissions boundary and session policies, which allowed too.",
            statement(by)
        ),
        Reason::IdentityPolicyAllows { by } => format!("{} allows it.", statement(by)),
        Reason::CrossAccountBothAllow { identity, resource } => match identity {
            Some(identity) => format!(
                "Cross-account: {} allows it in the caller's account and {} allows it in the resource's account.",
                statement(identity),
                statement(resource)
            ),
            None => format!(
                "Cross-account: {} allows the other account's root user.",
                statement(resource)
            ),
        },
        Reason::ResourcePolicyAllows { by } => format!("{} allows this caller.", statement(by)),
        Reason::NoAllow => "No statement allows this request (implicit deny).".to_string(),
        Reason::ResourcePolicyRequired => "This caller is not an IAM user or role, so only a resource or trust policy naming it can allow the request, and none of its statements allows this request.".to_string(),
        Reason::AccountDelegationWithoutIdentityAllow { resource } => format!(
            "{} names only the caller's account, which delegates the decision to the account's identity policies, and none of them allows it.",
            statement(resource)
        ),
        Reason::BoundaryDoesNotAllow { allowed_by } => format!(
            "{} allows it, but the permissions boundary does not (a boundary only limits).",
            statement(allowed_by)
        ),
        Reason::SessionPolicyDoesNotAllow { allowed_by } => format!(
            "{} allows it, but no session policy does (session permissions are the intersection).",
            statement(allowed_by)
        ),
        Reason::CrossAccountResourcePolicyDoesNotAllow { identity } => match identity {
            Some(identity) => format!(
                "Cross-account: {} allows it in the caller's account, but the resource's policy in the other account does not allow this request; both must.",
                statement(identity)
            ),
            None => "Cross-account: the resource's policy in the other account does not allow this request, and it must.".to_string(),
        },
        Reason::CrossAccountIdentityPolicyDoesNotAllow { resource } => format!(
            "Cross-account: {} allows it, but no identity policy in the caller's own account does; both must.",
            statement(resource)
        ),
    }
}

/// Why one statement did not apply, in a sentence.
pub fn mismatch_text(m: &Mismatch, ctx: &Asked<'_>) -> String {
    match m {
        Mismatch::Action => format!("the action {} is not in its Action", ctx.action),
        Mismatch::NotAction => format!("the action {} is excluded by its NotAction", ctx.action),
        Mismatch::Resource => format!("the resource {} is not in its Resource", ctx.resource),
        Mismatch::NotResource => format!(
            "the resource {} is excluded by its NotResource",
            ctx.resource
        ),
        Mismatch::Principal { expected } => format!(
            "the caller is not among its principals [{}]",
            expected.join(", ")
        ),
        Mismatch::NotPrincipal => "the caller is excluded by its NotPrincipal".to_string(),
        Mismatch::UnresolvedVariable { variable } => format!(
            "the policy variable ${{{variable}}} in its resources has no value in this request"
        ),
        Mismatch::Condition(c) => {
            let iam::eval::ConditionMismatch {
                operator,
                key,
                expected,
                actual,
                unresolved_variable,
                redacted,
                ..
            } = &**c;
            if *redacted {
                return match actual {
                    Some(_) => format!(
                        "condition {operator} on {key} did not match (its value is a shared secret, not shown)"
                    ),
                    None => format!(
                        "condition {operator} on {key} did not match: the request has no value for this key"
                    ),
                };
            }
            let mut text = format!("condition {operator} on {key} expects {expected:?}");
            match actual {
                Some(values) => {
                    let _ = write!(text, " but the request has {values:?}");
                }
                None => text.push_str(" but the request has no value for this key"),
            }
            if let Some(v) = unresolved_variable {
                let _ = write!(text, " (the variable ${{{v}}} has no value)");
            }
            text
        }
    }
}

fn statement_line(st: &StatementTrace, ctx: &Asked<'_>) -> String {
    let name = match &st.sid {
        Some(sid) => format!("[{}] {} \"{sid}\"", st.index, st.effect),
        None => format!("[{}] {}", st.index, st.effect),
    };
    let mut line = if st.matched {
        format!("{name}: matches")
    } else if let Some(m) = &st.failed {
        format!("{name}: does not apply: {}", mismatch_text(m, ctx))
    } else {
        format!("{name}: does not apply")
    };
    if let Some(note) = &st.note {
        let _ = write!(line, " ({note})");
    }
    line
}

/// The whole explanation: verdict, rule, closest statement on an implicit deny, and every
/// policy and statement considered.
pub fn render_text(decision: &Decision, ctx: &RequestContext) -> String {
    let caller = describe_principal(ctx.principal());
    render_asked(
        decision,
        &Asked {
            caller: &caller,
            action: ctx.action(),
            resource: ctx.resource(),
            resource_account: ctx.resource_account(),
        },
    )
}

/// Whether some `Allow` statement matched: then an implicit deny is the other side's (the
/// resource's account, across accounts), and no statement of this side is "closest".
fn any_allow_matched(decision: &Decision) -> bool {
    decision
        .policies
        .iter()
        .flat_map(|p| &p.statements)
        .any(|s| s.effect == iam::Effect::Allow && s.matched)
}

/// Across accounts with no resource-based policy: the resource's account grants nothing, so
/// the fix is a policy on the resource (for S3, a bucket policy on the named bucket).
fn missing_resource_policy(ctx: &Asked<'_>) -> String {
    let owner = ctx.resource_account.unwrap_or("the resource's account");
    let bucket = ctx
        .action
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("s3:"))
        .and_then(|_| ctx.resource.strip_prefix("arn:aws:s3:::"))
        .and_then(|rest| rest.split('/').next())
        .filter(|b| !b.is_empty());
    match bucket {
        Some(bucket) => format!(
            "The bucket has no bucket policy: '{bucket}' in account {owner} grants nothing to another account's caller. Add a bucket policy that allows {} for the caller's role.",
            ctx.action
        ),
        None => format!(
            "The resource has no resource-based policy, so its account ({owner}) grants nothing to another account's caller. Add one that allows {} for the caller.",
            ctx.action
        ),
    }
}

/// [`render_text`] for a decision known only by what was asked, such as one from the twin's
/// decision log.
pub fn render_asked(decision: &Decision, ctx: &Asked<'_>) -> String {
    let mut out = String::new();
    let verdict = match decision.verdict {
        Verdict::Allow => "ALLOW",
        Verdict::ExplicitDeny => "DENY (explicit)",
        Verdict::ImplicitDeny => "DENY (implicit)",
    };
    let _ = writeln!(out, "{verdict}: {} on {}", ctx.action, ctx.resource);
    let _ = writeln!(out, "  caller: {}", ctx.caller);
    if let Some(owner) = ctx.resource_account {
        let scope = if decision.cross_account {
            "cross-account: the caller's account and the resource's account must both allow"
        } else {
            "same account"
        };
        let _ = writeln!(out, "  resource account: {owner} ({scope})");
    }
    let _ = writeln!(out, "\nWhy: {}", reason_text(&decision.reason));
    if decision.verdict == Verdict::ImplicitDeny {
        match decision.closest_allow() {
            Some((policy, st)) => {
                let what = st
                    .failed
                    .as_ref()
                    .map(|m| mismatch_text(m, ctx))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "Closest to allowing: statement {} of {} '{}': {what}.",
                    st.index,
                    role_label(policy.role),
                    policy.name
                );
            }
            None if !decision.policies.is_empty() && !any_allow_matched(decision) => {
                let _ = writeln!(
                    out,
                    "Closest to allowing: none; no Allow statement names {}.",
                    ctx.action
                );
            }
            None => {}
        }
        if decision.cross_account && !decision.has_resource_policy() {
            let _ = writeln!(out, "{}", missing_resource_policy(ctx));
        }
    }
    if decision.policies.is_empty() {
        let _ = writeln!(out, "\nNo policies were given.");
    }
    for policy in &decision.policies {
        let _ = writeln!(out, "\n{} '{}':", role_label(policy.role), policy.name);
        for st in &policy.statements {
            let _ = writeln!(out, "  {}", statement_line(st, ctx));
        }
    }
    out
}
