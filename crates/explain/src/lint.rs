//! `rolechain lint`: the pitfalls of pod credential chains, found over a [`Snapshot`] before a
//! pod trips on them. Two kinds of rules:
//!
//! - every chain the snapshot defines (each Pod Identity association, each service account
//!   annotated with `eks.amazonaws.com/role-arn`) is walked as `explain pod` walks it, and each
//!   failed step is a finding (rule = the step's check: `role-exists`, `trust-tag-session`,
//!   `target-trust-tag-session`, `hop-identity`, `oidc-provider`, `oidc-audience`,
//!   `chain-loop`, …);
//! - every role's trust policy is read for what can never match: a Pod Identity trust without
//!   `sts:TagSession` (`pod-identity-trust-without-tag-session`), a `Federated` OIDC provider
//!   that does not exist or is in another account (`provider-missing`,
//!   `provider-other-account`), `:sub`/`:aud` keys of another issuer host or an unknown claim
//!   (`condition-key-issuer`, `condition-key-unknown`), `StringEquals` with a wildcard
//!   (`string-equals-wildcard`), and `:aud` values the provider does not accept
//!   (`audience-not-client-id`);
//! - a warning: a target role's trust granting `sts:AssumeRole` and `sts:TagSession` in one
//!   statement (`target-trust-combined-actions`; seed 004 recommends two).

use std::collections::{BTreeMap, BTreeSet};

use iam::{Principal, RequestContext};
use serde::Serialize;
use serde_json::Value;
use twin_state::snapshot::{Snapshot, SnapshotRole};

use crate::pod::{explain_pod, PodQuery};
use crate::view::{
    allowed, issuer_host_path, trust_decision, RolePolicies, View, POD_IDENTITY_SERVICE,
    ROLE_ARN_ANNOTATION,
};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The chain fails, or a condition can never match.
    Error,
    /// Works today, but is fragile or surprising.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// Where: the role, or the cluster and service account.
    pub at: String,
    /// Why it is a problem.
    pub why: String,
    /// The smallest change that fixes it.
    pub fix: String,
}

impl Finding {
    /// An error-level finding.
    fn error(rule: &'static str, at: &str, why: String, fix: String) -> Finding {
        Finding {
            rule,
            severity: Severity::Error,
            at: at.to_string(),
            why,
            fix,
        }
    }
}

/// The claims of an EKS service-account token that trust conditions may test.
const KNOWN_CLAIMS: &[&str] = &["sub", "aud", "amr", "oaud"];

/// Lints the whole snapshot; findings are sorted by severity, then place.
pub fn lint(snap: &Snapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    chains(snap, &mut findings);
    for role in &snap.roles {
        trust_rules(snap, role, &mut findings);
    }
    combined_target_actions(snap, &mut findings);
    findings.sort_by(|a, b| (a.severity, &a.at, a.rule).cmp(&(b.severity, &b.at, b.rule)));
    findings.dedup();
    findings
}

/// Whether any finding is an error (`rolechain lint` then exits non-zero).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

fn chains(snap: &Snapshot, out: &mut Vec<Finding>) {
    let view = View { snap };
    let mut subjects: BTreeSet<(String, String, String)> = BTreeSet::new();
    for a in &snap.associations {
        subjects.insert((
            a.cluster_arn.clone(),
            a.namespace.clone(),
            a.service_account.clone(),
        ));
    }
    for s in &snap.service_accounts {
        if s.annotations.contains_key(ROLE_ARN_ANNOTATION) {
            subjects.insert((s.cluster_arn.clone(), s.namespace.clone(), s.name.clone()));
        }
    }
    for (cluster_arn, namespace, name) in subjects {
        let Some(cluster) = view.cluster(&cluster_arn) else {
            continue;
        };
        let query = PodQuery {
            cluster: Some(cluster_arn.clone()),
            namespace: namespace.clone(),
            service_account: name.clone(),
            action: None,
            resource: None,
        };
        let Ok(explained) = explain_pod(snap, &query) else {
            continue;
        };
        for step in explained.steps.iter().filter(|s| !s.ok) {
            out.push(Finding {
                rule: step.check,
                severity: Severity::Error,
                at: format!(
                    "cluster {}, service account {namespace}/{name}: {}",
                    cluster.name, step.title
                ),
                why: step.cause.clone().unwrap_or_default(),
                fix: step.fix.clone().unwrap_or_default(),
            });
        }
    }
}

fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn strings(v: &Value) -> Vec<&str> {
    one_or_many(v)
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

fn allows_pod_identity(stmt: &Value) -> bool {
    stmt.get("Effect").and_then(Value::as_str) == Some("Allow")
        && stmt
            .get("Principal")
            .and_then(|p| p.get("Service"))
            .is_some_and(|s| strings(s).contains(&POD_IDENTITY_SERVICE))
}

/// The rules read from one role's trust policy.
fn trust_rules(snap: &Snapshot, role: &SnapshotRole, out: &mut Vec<Finding>) {
    let Ok(doc) = serde_json::from_str::<Value>(&role.trust_policy) else {
        return;
    };
    let statements = doc.get("Statement").map(one_or_many).unwrap_or_default();
    let at = format!("role {}", role.arn);
    let view = View { snap };
    if statements.iter().any(|s| allows_pod_identity(s)) {
        pod_identity_trust(snap, role, &at, out);
    }
    for (i, stmt) in statements.iter().enumerate() {
        let conditions = stmt
            .get("Condition")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let federated: Vec<&str> = stmt
            .get("Principal")
            .and_then(|p| p.get("Federated"))
            .map(strings)
            .unwrap_or_default();
        let providers: Vec<&str> = federated
            .into_iter()
            .filter(|f| f.contains(":oidc-provider/"))
            .collect();
        let here = format!("{at}, trust statement {i}");
        for arn in &providers {
            let host = arn.split_once(":oidc-provider/").map_or("", |(_, h)| h);
            let provider = view.provider_by_arn(arn);
            match provider {
                None => out.push(Finding::error("provider-missing", &here, format!("the trust policy trusts the OIDC provider {arn}, which does not exist, so no token can assume the role"), format!("aws iam create-open-id-connect-provider --url https://{host} --client-id-list sts.amazonaws.com (in account {})", role.account))),
                Some(p) if p.account != role.account => out.push(Finding::error("provider-other-account", &here, format!("the provider {arn} is in account {}, not the role's account {}: STS only accepts a provider of the role's own account", p.account, role.account), format!("create a provider for https://{host} in account {} and trust arn:aws:iam::{}:oidc-provider/{host}", role.account, role.account))),
                Some(_) => {}
            }
            condition_keys(
                &conditions,
                host,
                provider.map(|p| &p.client_ids[..]),
                &here,
                out,
            );
        }
        wildcard_equals(&conditions, &here, out);
    }
}

/// A target role's trust granting `sts:AssumeRole` and `sts:TagSession` in one statement: valid
/// IAM, but seed 004 found two statements more reliable and recommends them.
fn combined_target_actions(snap: &Snapshot, out: &mut Vec<Finding>) {
    let view = View { snap };
    for a in &snap.associations {
        let Some(target) = a.target_role_arn.as_deref().and_then(|t| view.role(t)) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&target.trust_policy) else {
            continue;
        };
        let statements = doc.get("Statement").map(one_or_many).unwrap_or_default();
        for (i, stmt) in statements.iter().enumerate() {
            let names_primary = stmt
                .get("Principal")
                .and_then(|p| p.get("AWS"))
                .is_some_and(|p| strings(p).contains(&a.role_arn.as_str()));
            let actions = stmt.get("Action").map(strings).unwrap_or_default();
            if names_primary
                && actions.contains(&"sts:AssumeRole")
                && actions.contains(&"sts:TagSession")
            {
                out.push(Finding {
                    rule: "target-trust-combined-actions",
                    severity: Severity::Warning,
                    at: format!("role {}, trust statement {i}", target.arn),
                    why: "sts:AssumeRole and sts:TagSession share one statement of the target role's trust; it works, but seed 004 found two statements more reliable for cross-account Pod Identity".to_string(),
                    fix: format!("split it into two statements trusting {}, one with sts:AssumeRole and one with sts:TagSession", a.role_arn),
                });
            }
        }
    }
}

/// A trust policy that lets `pods.eks.amazonaws.com` assume the role but not tag the session.
fn pod_identity_trust(snap: &Snapshot, role: &SnapshotRole, at: &str, out: &mut Vec<Finding>) {
    let Ok(trust) = RolePolicies::trust_of(role) else {
        return;
    };
    // Chains already report the roles their associations use.
    if snap.associations.iter().any(|a| a.role_arn == role.arn) {
        return;
    }
    let principal = Principal::Service {
        name: POD_IDENTITY_SERVICE.to_string(),
    };
    let tags = BTreeMap::from([
        (
            "eks-cluster-arn",
            "arn:aws:eks:us-east-1:000000000000:cluster/any",
        ),
        ("eks-cluster-name", "any"),
        ("kubernetes-namespace", "any"),
        ("kubernetes-service-account", "any"),
        ("kubernetes-pod-name", "any"),
        ("kubernetes-pod-uid", "any"),
    ]);
    let ctx = |action: &str| {
        let mut ctx = RequestContext::new(principal.clone(), action, &role.arn);
        for (k, v) in &tags {
            ctx.set(&format!("aws:RequestTag/{k}"), v);
        }
        ctx.set_multi("aws:TagKeys", tags.keys().copied());
        ctx.set_resource_account(&role.account);
        ctx
    };
    let assume = allowed(&trust_decision(&trust, &ctx("sts:AssumeRole")));
    let tag = allowed(&trust_decision(&trust, &ctx("sts:TagSession")));
    if assume && !tag {
        out.push(Finding::error("pod-identity-trust-without-tag-session", at, format!("the trust policy lets {POD_IDENTITY_SERVICE} call sts:AssumeRole but not sts:TagSession; EKS Pod Identity tags every session, so the agent fails unless the association disables session tags"), format!("add sts:TagSession to the Action of the statement that trusts {POD_IDENTITY_SERVICE}: \"Action\": [\"sts:AssumeRole\", \"sts:TagSession\"]")));
    }
}

/// `HOST:CLAIM` keys: the host must be the provider's, the claim one the token has, and
/// `:aud` values among the provider's client ids.
fn condition_keys(
    conditions: &serde_json::Map<String, Value>,
    host: &str,
    client_ids: Option<&[String]>,
    at: &str,
    out: &mut Vec<Finding>,
) {
    for (op, keys) in conditions {
        let Some(keys) = keys.as_object() else {
            continue;
        };
        for (key, values) in keys {
            if key.starts_with("aws:") || key.starts_with("sts:") {
                continue;
            }
            let Some((prefix, claim)) = key.rsplit_once(':') else {
                continue;
            };
            if issuer_host_path(prefix) != host {
                out.push(Finding::error("condition-key-issuer", at, format!("{op} tests {key}, but the trusted provider's tokens set {host}:{claim}; the key is never present, so the condition never matches"), format!("rename the key to {host}:{claim}")));
                continue;
            }
            if !KNOWN_CLAIMS.contains(&claim) {
                out.push(Finding::error("condition-key-unknown", at, format!("{op} tests {key}, but IAM only sets {host}:sub, :aud and :amr from a service-account token; the condition never matches"), format!("test {host}:sub (system:serviceaccount:NAMESPACE:NAME) or {host}:aud instead")));
                continue;
            }
            let literal = op.ends_with("StringEquals") || op.ends_with("StringLike");
            if claim == "aud" && literal && !op.contains("Not") {
                if let Some(ids) = client_ids {
                    for v in strings(values) {
                        if !v.contains('*') && !ids.iter().any(|c| c == v) {
                            out.push(Finding::error("audience-not-client-id", at, format!("{key} must be {v}, which is not among the provider's client ids [{}]: STS refuses such a token before the trust policy is read", ids.join(", ")), format!("add the client id {v} to the provider (aws iam add-client-id-to-open-id-connect-provider), or expect one of its client ids")));
                        }
                    }
                }
            }
        }
    }
}

/// `StringEquals` does not expand `*` or `?`: a value with one only matches itself.
fn wildcard_equals(conditions: &serde_json::Map<String, Value>, at: &str, out: &mut Vec<Finding>) {
    for (op, keys) in conditions {
        let base = op.rsplit(':').next().unwrap_or(op);
        if !matches!(base, "StringEquals" | "StringEqualsIgnoreCase") {
            continue;
        }
        let Some(keys) = keys.as_object() else {
            continue;
        };
        for (key, values) in keys {
            for v in strings(values) {
                if v.contains('*') || v.contains('?') {
                    out.push(Finding::error("string-equals-wildcard", at, format!("{op} on {key} compares literally: \"{v}\" only matches a value that is exactly \"{v}\", never what the wildcard suggests"), format!("use StringLike for {key}")));
                }
            }
        }
    }
}

/// The findings as text, one block each, and a summary line.
pub fn render_lint_text(findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}[{}]: {}", f.rule, f.at);
        let _ = writeln!(out, "    why: {}", f.why);
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let _ = writeln!(
        out,
        "{errors} error(s), {} warning(s)",
        findings.len() - errors
    );
    out
}
