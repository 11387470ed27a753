//! `rolechain explain pod`: the whole chain a pod's credentials walk, step by step, over a
//! [`Snapshot`]: the service account, its token, the OIDC provider or the Pod Identity
//! association, every role's trust policy, every hop's identity policy, the session durations,
//! and the final action. Each step is checked by the `iam` engine; a failed step says why in
//! plain words and the smallest change that fixes it.

use std::collections::BTreeMap;

use iam::{Decision, NamedPolicy, Policy, PolicyKind, Principal, RequestContext};
use serde::Serialize;
use twin_state::snapshot::{Snapshot, SnapshotCluster, SnapshotRole};

use crate::render::{mismatch_text, reason_text, Asked};
use crate::view::{
    allowed, arn_account, full_decision, issuer_host_path, session_principal, trust_decision,
    RolePolicies, View, AUDIENCE_ANNOTATION, IRSA_AUDIENCE, POD_IDENTITY_SERVICE,
    ROLE_ARN_ANNOTATION,
};

/// The session name used for simulated sessions.
pub(crate) const SESSION: &str = "rolechain-explain";
/// Placeholders for the pod's own session tags (the pod is not known, only its account).
const POD_NAME: &str = "POD-NAME";
const POD_UID: &str = "POD-UID";

/// What to explain: which pod (by its service account) and, optionally, the final request.
#[derive(Debug, Clone, Default)]
pub struct PodQuery {
    /// The cluster's name or ARN; `None` for the only cluster.
    pub cluster: Option<String>,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The final action, e.g. `s3:GetObject`; `None` stops after the credentials.
    pub action: Option<String>,
    /// The final resource ARN (or `*`).
    pub resource: Option<String>,
}

/// Why a query cannot be explained at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// No cluster of that name.
    #[error("no cluster '{0}' (known: {1})")]
    UnknownCluster(String, String),
    /// No `--cluster` and not exactly one cluster.
    #[error("give --cluster: there are {0} clusters ({1})")]
    WhichCluster(usize, String),
    /// The service account does not exist and nothing names it.
    #[error("no service account {namespace}/{name} in cluster {cluster} (apply it with `rolechain cluster apply`)")]
    UnknownServiceAccount {
        /// The cluster.
        cluster: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// `--resource` is not an ARN.
    #[error("invalid --resource '{0}': expected an ARN (arn:aws:SERVICE:REGION:ACCOUNT:…) or *")]
    BadResource(String),
    /// `--action` is not `service:Action`.
    #[error("invalid --action '{0}': expected SERVICE:ACTION, e.g. s3:GetObject")]
    BadAction(String),
}

/// One step of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// A stable id of the check, e.g. `trust-tag-session` (lint uses it as the rule).
    pub check: &'static str,
    /// What was checked, for a person.
    pub title: String,
    /// Whether it holds.
    pub ok: bool,
    /// Facts found on the way (claims, ARNs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// On failure: why, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// On failure: the smallest change that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The engine's decision, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl Step {
    pub(crate) fn pass(check: &'static str, title: impl Into<String>) -> Step {
        Step {
            check,
            title: title.into(),
            ok: true,
            details: Vec::new(),
            cause: None,
            fix: None,
            decision: None,
        }
    }

    pub(crate) fn fail(
        check: &'static str,
        title: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Step {
        Step {
            ok: false,
            cause: Some(cause.into()),
            fix: Some(fix.into()),
            ..Step::pass(check, title)
        }
    }

    pub(crate) fn detail(mut self, d: impl Into<String>) -> Step {
        self.details.push(d.into());
        self
    }
}

/// The explanation of one pod's chain.
#[derive(Debug, Clone, Serialize)]
pub struct PodExplanation {
    /// The cluster's name.
    pub cluster: String,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// `pod-identity`, `irsa`, or `none`.
    pub mechanism: &'static str,
    /// The final request, when one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Its resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Every step, in the order the pod walks them.
    pub steps: Vec<Step>,
    /// Whether every step holds.
    pub ok: bool,
}

impl PodExplanation {
    /// The first failed step.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }
}

fn names(snap: &Snapshot) -> String {
    let v: Vec<&str> = snap.clusters.iter().map(|c| c.name.as_str()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn check_request(q: &PodQuery) -> Result<(), PodError> {
    if let Some(a) = &q.action {
        let ok = a
            .split_once(':')
            .is_some_and(|(s, n)| !s.is_empty() && !n.is_empty() && !n.contains(':'));
        if !ok {
            return Err(PodError::BadAction(a.clone()));
        }
    }
    if let Some(r) = &q.resource {
        if r != "*" && r.parse::<iam::Arn>().is_err() {
            return Err(PodError::BadResource(r.clone()));
        }
    }
    Ok(())
}

/// Explains the chain of `query`'s service account over `snap`.
///
/// # Errors
///
/// [`PodError`] when the cluster or service account is unknown, or the request is malformed.
pub fn explain_pod(snap: &Snapshot, query: &PodQuery) -> Result<PodExplanation, PodError> {
    check_request(query)?;
    let view = View { snap };
    let cluster = match &query.cluster {
        Some(c) => view
            .cluster(c)
            .ok_or_else(|| PodError::UnknownCluster(c.clone(), names(snap)))?,
        None => match snap.clusters.as_slice() {
            [only] => only,
            many => return Err(PodError::WhichCluster(many.len(), names(snap))),
        },
    };
    let (ns, sa) = (&query.namespace, &query.service_account);
    let stored = view.service_account(cluster, ns, sa);
    let association = view.association(cluster, ns, sa);
    if stored.is_none() && association.is_none() && sa != "default" {
        return Err(PodError::UnknownServiceAccount {
            cluster: cluster.name.clone(),
            namespace: ns.clone(),
            name: sa.clone(),
        });
    }
    let final_request = query
        .action
        .as_deref()
        .map(|a| (a, query.resource.as_deref().unwrap_or("*")));
    let mut walk = Walk {
        view,
        cluster,
        namespace: ns,
        service_account: sa,
        steps: Vec::new(),
    };
    let role_annotation = stored.and_then(|s| s.annotations.get(ROLE_ARN_ANNOTATION));
    let mut sa_step = Step::pass(
        "service-account",
        format!("service account {ns}/{sa} in cluster {}", cluster.name),
    );
    if stored.is_none() {
        sa_step = sa_step.detail(if sa == "default" {
            "the namespace's implicit default service account"
        } else {
            "not stored in the local cluster, but named by a Pod Identity association"
        });
    }
    let mechanism = match (association, role_annotation) {
        (Some(a), _) => {
            walk.steps.push(sa_step.detail(format!(
                    "EKS Pod Identity association: role {}{}",
                    a.role_arn,
                    a.target_role_arn
                        .as_deref()
                        .map(|t| format!(", target role {t}"))
                        .unwrap_or_default()
                )));
            walk.pod_identity(a, final_request);
            "pod-identity"
        }
        (None, Some(role_arn)) => {
            walk.steps.push(sa_step.detail(format!(
                "annotation {ROLE_ARN_ANNOTATION}: {role_arn} (IRSA)"
            )));
            let audience = stored
                .and_then(|s| s.annotations.get(AUDIENCE_ANNOTATION))
                .map_or(IRSA_AUDIENCE, String::as_str);
            walk.irsa(role_arn, audience, final_request);
            "irsa"
        }
        (None, None) => {
            walk.steps.push(Step::fail(
                "service-account-role",
                format!(
                    "service account {ns}/{sa} in cluster {} names a role",
                    cluster.name
                ),
                format!("the service account has no {ROLE_ARN_ANNOTATION} annotation and no EKS Pod Identity association, so the pod gets no AWS credentials"),
                format!(
                    "annotate it for IRSA: `rolechain cluster annotate serviceaccount -n {ns} {sa} {ROLE_ARN_ANNOTATION}=arn:aws:iam::{}:role/ROLE`, or create a Pod Identity association: `aws eks create-pod-identity-association --cluster-name {} --namespace {ns} --service-account {sa} --role-arn arn:aws:iam::{}:role/ROLE`",
                    cluster.account, cluster.name, cluster.account
                ),
            ));
            "none"
        }
    };
    let ok = walk.steps.iter().all(|s| s.ok);
    Ok(PodExplanation {
        cluster: cluster.name.clone(),
        namespace: ns.clone(),
        service_account: sa.clone(),
        mechanism,
        action: query.action.clone(),
        resource: final_request.map(|(_, r)| r.to_string()),
        steps: walk.steps,
        ok,
    })
}

/// The steps of a walk so far, with what they need.
pub(crate) struct Walk<'a> {
    pub(crate) view: View<'a>,
    pub(crate) cluster: &'a SnapshotCluster,
    pub(crate) namespace: &'a str,
    pub(crate) service_account: &'a str,
    pub(crate) steps: Vec<Step>,
}

/// Why a decision denied, in a sentence or two: the rule and the closest statement.
pub(crate) fn why(decision: &Decision, asked: &Asked<'_>) -> String {
    let mut text = reason_text(&decision.reason);
    if let Some((policy, st)) = decision.closest_allow() {
        if let Some(m) = &st.failed {
            text.push_str(&format!(
                " Closest: statement {} of '{}': {}.",
                st.index,
                policy.name,
                mismatch_text(m, asked)
            ));
        }
    }
    text
}

pub(crate) fn describe(p: &Principal) -> String {
    match p {
        Principal::AssumedRole { session_arn, .. } => session_arn.clone(),
        Principal::WebIdentity { provider } => format!("web identity from {provider}"),
        Principal::Service { name } => format!("service {name}"),
        other => other.arn().unwrap_or_else(|| "the caller".to_string()),
    }
}

pub(crate) fn asked<'c>(ctx: &'c RequestContext, caller: &'c str) -> Asked<'c> {
    Asked {
        caller,
        action: ctx.action(),
        resource: ctx.resource(),
        resource_account: ctx.resource_account(),
    }
}

/// A statement as one line of JSON, for fixes.
pub(crate) fn statement(value: serde_json::Value) -> String {
    value.to_string()
}

impl<'a> Walk<'a> {
    /// Finds a role named by the chain, or records why it cannot be used.
    fn role(&mut self, arn: &str, named_by: &str) -> Option<(&'a SnapshotRole, RolePolicies)> {
        let Some(role) = self.view.role(arn) else {
            let account = arn_account(arn).unwrap_or("its account");
            self.steps.push(Step::fail(
                "role-exists",
                format!("role {arn} exists"),
                format!("{named_by} names the role {arn}, which does not exist in account {account}"),
                format!("create the role in account {account}, or correct {named_by} to name an existing role"),
            ));
            return None;
        };
        match RolePolicies::of(role) {
            Ok(p) => {
                self.steps
                    .push(Step::pass("role-exists", format!("role {arn} exists")));
                Some((role, p))
            }
            Err(bad) => {
                self.steps.push(Step::fail(
                    "policy-valid",
                    format!("the policies of role {arn} are valid"),
                    format!("policy '{}' is invalid: {}", bad.name, bad.error),
                    "correct the policy document",
                ));
                None
            }
        }
    }

    /// A trust check: passes when the trust policy lets the caller in for `action`.
    fn trust_step(
        &mut self,
        check: &'static str,
        role: &SnapshotRole,
        policies: &RolePolicies,
        ctx: &RequestContext,
        fix: String,
    ) -> bool {
        let decision = trust_decision(&policies.trust, ctx);
        let caller = describe(ctx.principal());
        let title = format!(
            "trust policy of {} allows {} for {caller}",
            role.arn,
            ctx.action()
        );
        let mut step = if allowed(&decision) {
            Step::pass(check, title)
        } else {
            Step::fail(check, title, why(&decision, &asked(ctx, &caller)), fix)
        };
        let ok = step.ok;
        step.decision = Some(decision);
        self.steps.push(step);
        ok
    }

    /// IRSA: the token, the provider in the role's account, the trust policy, the action.
    fn irsa(&mut self, role_arn: &str, audience: &str, final_request: Option<(&str, &str)>) {
        let issuer = &self.cluster.issuer;
        let host = issuer_host_path(issuer).to_string();
        let subject = format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        );
        self.steps.push(
            Step::pass("token", "the pod's projected service-account token")
                .detail(format!("iss: {issuer}"))
                .detail(format!("sub: {subject}"))
                .detail(format!("aud: {audience}")),
        );
        let Some((role, policies)) =
            self.role(role_arn, &format!("the {ROLE_ARN_ANNOTATION} annotation"))
        else {
            return;
        };
        let Some(provider) = self.view.provider(&role.account, issuer) else {
            self.steps.push(Step::fail(
                "oidc-provider",
                format!("an IAM OIDC provider for {issuer} in account {}", role.account),
                format!("account {} has no IAM OIDC identity provider for the cluster's issuer, so STS cannot verify the token", role.account),
                format!("aws iam create-open-id-connect-provider --url {issuer} --client-id-list {audience} (in account {})", role.account),
            ));
            return;
        };
        let mut step = Step::pass(
            "oidc-provider",
            format!(
                "IAM OIDC provider {} in account {}",
                provider.arn, role.account
            ),
        );
        step = step.detail(format!("client ids: {}", provider.client_ids.join(", ")));
        self.steps.push(step);
        if provider.client_ids.iter().any(|c| c == audience) {
            self.steps.push(Step::pass(
                "oidc-audience",
                format!("the provider accepts the audience {audience}"),
            ));
        } else {
            self.steps.push(Step::fail(
                "oidc-audience",
                format!("the provider accepts the audience {audience}"),
                format!("the token's audience {audience} is not among the provider's client ids [{}]", provider.client_ids.join(", ")),
                format!("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {} --client-id {audience}", provider.arn),
            ));
        }
        let mut ctx = RequestContext::new(
            Principal::WebIdentity {
                provider: provider.arn.clone(),
            },
            "sts:AssumeRoleWithWebIdentity",
            &role.arn,
        );
        ctx.set(&format!("{host}:sub"), &subject);
        ctx.set(&format!("{host}:aud"), audience);
        ctx.set("aws:FederatedProvider", &provider.arn);
        ctx.set("sts:RoleSessionName", SESSION);
        ctx.set_resource_account(&role.account);
        let fix = format!(
            "add to the trust policy of {}: {}",
            role.arn,
            statement(serde_json::json!({
                "Effect": "Allow",
                "Principal": {"Federated": provider.arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{host}:sub"): subject,
                    format!("{host}:aud"): audience,
                }}
            }))
        );
        self.trust_step("trust-web-identity", role, &policies, &ctx, fix);
        if let Some((action, resource)) = final_request {
            self.final_action(role, &policies, &BTreeMap::new(), &[], action, resource);
        }
    }

    /// EKS Pod Identity: the association's role as `pods.eks.amazonaws.com` with session tags,
    /// the target role chained, the action.
    fn pod_identity(
        &mut self,
        a: &twin_state::snapshot::SnapshotAssociation,
        final_request: Option<(&str, &str)>,
    ) {
        let tags: BTreeMap<String, String> = if a.disable_session_tags {
            BTreeMap::new()
        } else {
            BTreeMap::from([
                ("eks-cluster-arn".to_string(), self.cluster.arn.clone()),
                ("eks-cluster-name".to_string(), self.cluster.name.clone()),
                (
                    "kubernetes-namespace".to_string(),
                    self.namespace.to_string(),
                ),
                (
                    "kubernetes-service-account".to_string(),
                    self.service_account.to_string(),
                ),
                ("kubernetes-pod-name".to_string(), POD_NAME.to_string()),
                ("kubernetes-pod-uid".to_string(), POD_UID.to_string()),
            ])
        };
        let mut token = Step::pass("token", "the pod's projected service-account token")
            .detail(format!("iss: {}", self.cluster.issuer))
            .detail(format!(
                "sub: system:serviceaccount:{}:{}",
                self.namespace, self.service_account
            ))
            .detail(format!("aud: {POD_IDENTITY_SERVICE}"));
        token = token.detail(if a.disable_session_tags {
            "session tags: disabled by the association".to_string()
        } else {
            format!(
                "session tags: {} (pod name and uid are the pod's own)",
                tags.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        });
        self.steps.push(token);
        if a.target_role_arn.as_deref() == Some(a.role_arn.as_str()) {
            self.steps.push(Step::fail(
                "chain-loop",
                "the chain does not loop",
                format!("the association's target role is its own role {}: the chain assumes the same role twice", a.role_arn),
                "set the target role to the role in the resource account, or remove it",
            ));
            return;
        }
        let Some((primary, primary_policies)) =
            self.role(&a.role_arn, "the Pod Identity association")
        else {
            return;
        };
        let context = |action: &str, role: &SnapshotRole, principal: Principal| {
            let mut ctx = RequestContext::new(principal, action, &role.arn);
            for (k, v) in &tags {
                ctx.set(&format!("aws:RequestTag/{k}"), v);
            }
            if !tags.is_empty() {
                ctx.set_multi("aws:TagKeys", tags.keys().map(String::as_str));
                ctx.set_multi("sts:TransitiveTagKeys", tags.keys().map(String::as_str));
            }
            ctx.set("sts:RoleSessionName", SESSION);
            ctx.set_resource_account(&role.account);
            ctx
        };
        let service = Principal::Service {
            name: POD_IDENTITY_SERVICE.to_string(),
        };
        let fix_primary = format!(
            "add to the trust policy of {}: {}",
            primary.arn,
            statement(serde_json::json!({
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_SERVICE},
                "Action": ["sts:AssumeRole", "sts:TagSession"]
            }))
        );
        let mut ctx = context("sts:AssumeRole", primary, service.clone());
        ctx.set("aws:SourceAccount", &self.cluster.account);
        ctx.set("aws:SourceArn", &self.cluster.arn);
        self.trust_step(
            "trust-assume-role",
            primary,
            &primary_policies,
            &ctx,
            fix_primary.clone(),
        );
        if !tags.is_empty() {
            let mut ctx = context("sts:TagSession", primary, service);
            ctx.set("aws:SourceAccount", &self.cluster.account);
            ctx.set("aws:SourceArn", &self.cluster.arn);
            self.trust_step(
                "trust-tag-session",
                primary,
                &primary_policies,
                &ctx,
                format!("{fix_primary} (EKS Pod Identity always tags its sessions unless the association disables session tags)"),
            );
        }
        self.steps.push(
            Step::pass("duration", format!("session of {}", primary.arn)).detail(
                "EKS Pod Identity issues it for 6 hours, whatever the role's MaxSessionDuration",
            ),
        );
        let (last, last_policies) = match &a.target_role_arn {
            None => (primary, primary_policies),
            Some(target_arn) => {
                let Some((target, target_policies)) =
                    self.role(target_arn, "the association's target role")
                else {
                    return;
                };
                let caller = session_principal(primary, SESSION);
                let mut actions = vec!["sts:AssumeRole"];
                if !tags.is_empty() {
                    actions.push("sts:TagSession");
                }
                for action in &actions {
                    self.hop_identity(
                        primary,
                        &primary_policies,
                        target,
                        &target_policies,
                        action,
                        &caller,
                    );
                }
                let mut fix_target = serde_json::json!({
                    "Effect": "Allow",
                    "Principal": {"AWS": primary.arn},
                    "Action": actions,
                });
                let mut external_ctx = None;
                if tags.is_empty() {
                    let id = format!(
                        "{}/{}/{}/{}/{}",
                        self.cluster.region,
                        self.cluster.account,
                        self.cluster.name,
                        self.namespace,
                        self.service_account
                    );
                    fix_target["Condition"] =
                        serde_json::json!({"StringEquals": {"sts:ExternalId": id}});
                    external_ctx = Some(id);
                }
                for action in &actions {
                    let mut ctx = context(action, target, caller.clone());
                    if let Some(id) = &external_ctx {
                        ctx.set("sts:ExternalId", id);
                    }
                    let check = if *action == "sts:TagSession" {
                        "target-trust-tag-session"
                    } else {
                        "target-trust-assume-role"
                    };
                    let fix = format!(
                        "add to the trust policy of {}: {}",
                        target.arn,
                        statement(fix_target.clone())
                    );
                    self.trust_step(check, target, &target_policies, &ctx, fix);
                }
                self.steps.push(
                    Step::pass("duration", format!("chained session of {}", target.arn))
                        .detail("role chaining: EKS Pod Identity asks 1 hour, the most a chained session may last"),
                );
                (target, target_policies)
            }
        };
        if let Some((action, resource)) = final_request {
            let session: Vec<NamedPolicy> = a
                .policy
                .as_deref()
                .and_then(|p| Policy::parse(p, PolicyKind::Identity).ok())
                .map(|p| NamedPolicy::new("the association's session policy", p))
                .into_iter()
                .collect();
            self.final_action(last, &last_policies, &tags, &session, action, resource);
        }
    }

    /// A hop's own identity policies allow `action` on the next role.
    fn hop_identity(
        &mut self,
        from: &SnapshotRole,
        policies: &RolePolicies,
        to: &SnapshotRole,
        to_policies: &RolePolicies,
        action: &str,
        caller: &Principal,
    ) {
        let mut ctx = RequestContext::new(caller.clone(), action, &to.arn);
        ctx.set("sts:RoleSessionName", SESSION);
        let decision = policies.identity_decision(&ctx, &[]);
        let title = format!(
            "identity policies of {} allow {action} on {}",
            from.arn, to.arn
        );
        let who = describe(caller);
        let mut step = if allowed(&decision) {
            Step::pass("hop-identity", title)
        } else if from.account == to.account && {
            let mut same = ctx.clone();
            same.set_resource_account(&to.account);
            allowed(&full_decision(
                &policies.identity,
                policies.boundary.as_ref(),
                &[],
                Some(&to_policies.trust),
                &same,
            ))
        } {
            Step::pass("hop-identity", title)
                .detail("not needed: the trust policy names the role in its own account")
        } else {
            Step::fail(
                if action == "sts:TagSession" {
                    "hop-identity-tag-session"
                } else {
                    "hop-identity"
                },
                title,
                why(&decision, &asked(&ctx, &who)),
                format!(
                    "add to an identity policy of {}: {}",
                    from.arn,
                    statement(serde_json::json!({
                        "Effect": "Allow",
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Resource": to.arn,
                    }))
                ),
            )
        };
        step.decision = Some(decision);
        self.steps.push(step);
    }
}
