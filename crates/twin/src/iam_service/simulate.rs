//! `GetUser`, `SimulatePrincipalPolicy` and `SimulateCustomPolicy`.
//!
//! The simulations evaluate with `iam::evaluate`, the same engine that decides the twin's real
//! requests, and answer in IAM's shape: one `EvaluationResults` member per action and resource,
//! with `EvalDecision` `allowed`, `explicitDeny` or `implicitDeny`, the `MatchedStatements` that
//! decided (the allowing statements for `allowed`, the denying ones for `explicitDeny`, none for
//! `implicitDeny`), each with `SourcePolicyId` and the statement's `StartPosition`/`EndPosition`
//! (1-based line and column of its `{` and just past its `}` in the document as stored), and the
//! `MissingContextValues`: condition keys a statement needed that the request did not have.
//!
//! | source | `SourcePolicyId` | `SourcePolicyType` |
//! | --- | --- | --- |
//! | `PolicyInputList.N` | `PolicyInputList.N` | (none) |
//! | `PermissionsBoundaryPolicyInputList.N` | `PermissionsBoundaryPolicyInputList.N` | (none) |
//! | a role's or user's inline policy | its name | `role` / `user` |
//! | an attached managed policy or boundary | its name | `user-managed` |
//! | `ResourcePolicy` | `ResourcePolicy` | `resource` |

use awswire::{rules, AwsError, ListRule, StrRule, Validator};
use iam::{
    Decision, Effect, IdentityArn, Mismatch, NamedPolicy, PolicyKind, PolicyRole, PolicySet,
    Principal, RequestContext, Verdict,
};
use time::OffsetDateTime;
use twin_state::StateError;

use super::{state_error, Call, Out, USER_NAME};

/// One policy of a simulation, with where it came from and its text (for positions).
struct Source {
    id: String,
    kind: Option<&'static str>,
    text: String,
    named: NamedPolicy,
}

fn source(
    id: &str,
    kind: Option<&'static str>,
    text: &str,
    policy_kind: PolicyKind,
) -> Result<Source, AwsError> {
    let policy = iam::Policy::parse(text, policy_kind)
        .map_err(|e| AwsError::malformed_policy_document(format!("{id}: {e}")))?;
    Ok(Source {
        id: id.to_string(),
        kind,
        text: text.to_string(),
        named: NamedPolicy::new(id, policy),
    })
}

/// What every simulation reads besides its policies.
struct Request {
    actions: Vec<String>,
    resources: Vec<String>,
    resource_policy: Option<String>,
    resource_owner: Option<String>,
    caller_arn: Option<String>,
    context: Vec<(String, Vec<String>, bool)>,
    input: Vec<String>,
    boundary_input: Vec<String>,
}

const RESOURCE_HANDLING: StrRule = StrRule::len(1, 64);

fn read_request(v: &mut Validator<'_>, input_required: bool) -> Request {
    let input_rule = if input_required {
        ListRule::ANY.required()
    } else {
        ListRule::ANY
    };
    let input = v.str_list("PolicyInputList", &input_rule, &rules::POLICY_DOCUMENT);
    let boundary_input = v.str_list(
        "PermissionsBoundaryPolicyInputList",
        &ListRule::ANY,
        &rules::POLICY_DOCUMENT,
    );
    let actions = v.str_list(
        "ActionNames",
        &ListRule::ANY.required(),
        &rules::ACTION_NAME,
    );
    let resources = v.str_list("ResourceArns", &ListRule::ANY, &rules::RESOURCE_NAME);
    let resource_policy = v.str("ResourcePolicy", &rules::POLICY_DOCUMENT);
    let resource_owner = v.str("ResourceOwner", &rules::RESOURCE_NAME);
    let caller_arn = v.str("CallerArn", &rules::RESOURCE_NAME);
    let mut context = Vec::new();
    for entry in v.struct_list("ContextEntries", &ListRule::ANY) {
        let name = v.str(entry.member("ContextKeyName"), &rules::CONTEXT_KEY_NAME);
        let values = v.str_list(
            entry.member("ContextKeyValues"),
            &ListRule::ANY,
            &StrRule::ANY,
        );
        let kind = v.str(entry.member("ContextKeyType"), &rules::CONTEXT_KEY_TYPE);
        if let Some(name) = name {
            let multi = kind.as_deref().is_some_and(|k| k.ends_with("List"));
            context.push((name, values, multi));
        }
    }
    let _handling = v.str("ResourceHandlingOption", &RESOURCE_HANDLING);
    let _max = v.int("MaxItems", &rules::MAX_ITEMS);
    let _marker = v.str("Marker", &rules::MARKER);
    Request {
        actions,
        resources,
        resource_policy,
        resource_owner,
        caller_arn,
        context,
        input,
        boundary_input,
    }
}

/// The principal a `CallerArn` names.
fn principal_from_arn(arn: &str) -> Option<Principal> {
    Some(match arn.parse::<IdentityArn>().ok()? {
        IdentityArn::Root { account, .. } => Principal::Root { account },
        IdentityArn::User { account, .. } => Principal::User {
            arn: arn.to_string(),
            account,
            unique_id: None,
        },
        IdentityArn::Role { account, name, .. } => Principal::AssumedRole {
            session_arn: format!("arn:aws:sts::{account}:assumed-role/{name}/SimulatedSession"),
            role_arn: arn.to_string(),
            account,
            role_unique_id: None,
        },
        IdentityArn::AssumedRole {
            account, role_name, ..
        } => Principal::AssumedRole {
            session_arn: arn.to_string(),
            role_arn: format!("arn:aws:iam::{account}:role/{role_name}"),
            account,
            role_unique_id: None,
        },
        IdentityArn::FederatedUser { account, .. } => Principal::FederatedUser {
            arn: arn.to_string(),
            account,
        },
        IdentityArn::OidcProvider { .. } => Principal::WebIdentity {
            provider: arn.to_string(),
        },
    })
}

/// 1-based (line, column) of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, column)
}

/// The byte spans (`{` .. just past `}`) of a policy document's statements, in order.
pub(crate) fn statement_spans(text: &str) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Frame {
        Top,
        Other,
        StatementArray,
        Statement(usize),
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut spans = Vec::new();
    let mut expecting_statement = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(bytes.len());
                i = end + 1;
                if stack.len() == 1 && stack[0] == Frame::Top {
                    let mut k = i;
                    while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < bytes.len() && bytes[k] == b':' {
                        expecting_statement = text.get(start..end) == Some("Statement");
                    }
                }
                continue;
            }
            b'{' => {
                let frame = if stack.is_empty() {
                    Frame::Top
                } else if (expecting_statement && stack.len() == 1)
                    || stack.last() == Some(&Frame::StatementArray)
                {
                    Frame::Statement(i)
                } else {
                    Frame::Other
                };
                expecting_statement = false;
                stack.push(frame);
            }
            b'[' => {
                let frame = if expecting_statement && stack.len() == 1 {
                    Frame::StatementArray
                } else {
                    Frame::Other
                };
                expecting_statement = false;
                stack.push(frame);
            }
            b'}' | b']' => {
                if let Some(Frame::Statement(start)) = stack.pop() {
                    spans.push((start, i + 1));
                }
            }
            b',' if stack.len() == 1 => expecting_statement = false,
            _ => {}
        }
        i += 1;
    }
    spans
}

fn decision_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allowed",
        Verdict::ExplicitDeny => "explicitDeny",
        Verdict::ImplicitDeny => "implicitDeny",
    }
}

/// One evaluation's result member.
struct Evaluated {
    action: String,
    resource: String,
    decision: Decision,
    /// (source index, statement index) of the statements that decided.
    matched: Vec<(usize, usize)>,
    missing: Vec<String>,
    boundary_allows: Option<bool>,
}

impl Call<'_> {
    pub(super) fn get_user(&self) -> Out {
        let mut v = self.query.validator();
        let name = v.str("UserName", &USER_NAME);
        v.finish()?;
        let name = match (name, &self.caller.principal) {
            (Some(n), _) => n,
            (None, Principal::User { arn, .. }) => {
                arn.rsplit('/').next().unwrap_or_default().to_string()
            }
            (None, Principal::Root { account }) => {
                let arn = format!("arn:aws:iam::{account}:root");
                self.authorize(&arn)?;
                let created = self
                    .store()
                    .list_users(account)?
                    .iter()
                    .map(|u| u.created)
                    .min()
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                return self.ok(|r| {
                    r.child("User", |u| {
                        u.text("UserId", account)
                            .text("Arn", &arn)
                            .timestamp("CreateDate", created);
                    });
                });
            }
            (None, _) => {
                return Err(AwsError::validation(
                    "Must specify userName when calling with non-User credentials",
                )
                .into())
            }
        };
        // Authorize on the live user's ARN (or `user/NAME`) before a missing user is reported.
        let (user, arn) = match self.store().get_user(&self.account, &name) {
            Ok(u) => {
                let arn = u.arn.clone();
                (Ok(u), arn)
            }
            Err(e @ StateError::NoSuchEntity(_)) => {
                (Err(e), format!("arn:aws:iam::{}:user/{name}", self.account))
            }
            Err(e) => return Err(e.into()),
        };
        self.authorize(&arn)?;
        let user = user?;
        self.ok(|r| {
            r.child("User", |u| {
                u.text("Path", &user.path)
                    .text("UserName", &user.name)
                    .text("UserId", &user.user_id)
                    .text("Arn", &user.arn)
                    .timestamp("CreateDate", user.created);
            });
        })
    }

    pub(super) fn simulate_principal_policy(&self) -> Out {
        let mut v = self.query.validator();
        let source_arn = v.required_str("PolicySourceArn", &rules::IAM_ARN);
        let req = read_request(&mut v, false);
        let checked = v.finish()?;
        let source_arn = source_arn.get(&checked);
        self.authorize(&source_arn)?;
        let mut identity = Vec::new();
        let mut boundary = None;
        let principal = match source_arn.parse::<IdentityArn>() {
            Ok(IdentityArn::Role { account, name, .. }) => {
                let role = self.store().get_role(&account, &name)?;
                for (policy_name, doc) in &role.inline_policies {
                    identity.push(source(
                        policy_name,
                        Some("role"),
                        doc,
                        PolicyKind::Identity,
                    )?);
                }
                for arn in &role.attached_policies {
                    identity.extend(self.managed_source(arn)?);
                }
                if let Some(arn) = &role.permissions_boundary {
                    boundary = self.managed_source(arn)?;
                }
                Principal::AssumedRole {
                    session_arn: format!(
                        "arn:aws:sts::{account}:assumed-role/{}/SimulatedSession",
                        role.name
                    ),
                    role_arn: role.arn.clone(),
                    account,
                    role_unique_id: Some(role.role_id.clone()),
                }
            }
            Ok(IdentityArn::User { account, name, .. }) => {
                let user = self.store().get_user(&account, &name)?;
                for (policy_name, doc) in &user.inline_policies {
                    identity.push(source(
                        policy_name,
                        Some("user"),
                        doc,
                        PolicyKind::Identity,
                    )?);
                }
                Principal::User {
                    arn: user.arn.clone(),
                    account,
                    unique_id: Some(user.user_id.clone()),
                }
            }
            _ => {
                return Err(AwsError::invalid_input(format!(
                    "Invalid ARN: {source_arn} is not the ARN of a user or role."
                ))
                .into())
            }
        };
        let principal = match req.caller_arn.as_deref().and_then(principal_from_arn) {
            Some(p) => p,
            None => principal,
        };
        self.simulate(principal, identity, boundary, &req, false)
    }

    pub(super) fn simulate_custom_policy(&self) -> Out {
        let mut v = self.query.validator();
        let req = read_request(&mut v, true);
        v.finish()?;
        self.authorize("*")?;
        let (principal, anonymous) = match req.caller_arn.as_deref().and_then(principal_from_arn) {
            Some(p) => (p, false),
            // No caller: an IAM user of the caller's account whose identity keys are unknown.
            None => (
                Principal::User {
                    arn: format!("arn:aws:iam::{}:user/SimulatedUser", self.account),
                    account: self.account.clone(),
                    unique_id: None,
                },
                true,
            ),
        };
        self.simulate(principal, Vec::new(), None, &req, anonymous)
    }

    /// A stored managed policy's default version as a simulation source.
    fn managed_source(&self, arn: &str) -> Result<Option<Source>, AwsError> {
        let p = match self.store().get_policy(arn) {
            Ok(p) => p,
            Err(StateError::NoSuchEntity(_)) => return Ok(None),
            Err(e) => return Err(state_error(e)),
        };
        let Some(v) = p.default_version() else {
            return Ok(None);
        };
        source(
            &p.name,
            Some("user-managed"),
            &v.document,
            PolicyKind::Identity,
        )
        .map(Some)
    }

    fn simulate(
        &self,
        principal: Principal,
        mut identity: Vec<Source>,
        mut boundary: Option<Source>,
        req: &Request,
        hide_identity_keys: bool,
    ) -> Out {
        for (i, doc) in req.input.iter().enumerate() {
            identity.push(source(
                &format!("PolicyInputList.{}", i + 1),
                None,
                doc,
                PolicyKind::Identity,
            )?);
        }
        for (i, doc) in req.boundary_input.iter().enumerate() {
            // One boundary applies; the last given wins, as only one can be attached.
            boundary = Some(source(
                &format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                None,
                doc,
                PolicyKind::Identity,
            )?);
        }
        let resource = match &req.resource_policy {
            Some(doc) => Some(source(
                "ResourcePolicy",
                Some("resource"),
                doc,
                PolicyKind::Resource,
            )?),
            None => None,
        };
        // The order of `Decision::policies`: resource, identity, boundary.
        let mut ordered: Vec<&Source> = Vec::new();
        ordered.extend(resource.as_ref());
        ordered.extend(identity.iter());
        ordered.extend(boundary.as_ref());
        let identity_named: Vec<NamedPolicy> = identity.iter().map(|s| s.named.clone()).collect();
        let set = PolicySet {
            identity: &identity_named,
            resource: resource.as_ref().map(|s| &s.named),
            boundary: boundary.as_ref().map(|s| &s.named),
            session: &[],
        };
        let resources = if req.resources.is_empty() {
            vec!["*".to_string()]
        } else {
            req.resources.clone()
        };
        let owner = req
            .resource_owner
            .as_deref()
            .and_then(|o| match o.parse::<IdentityArn>() {
                Ok(IdentityArn::Root { account, .. }) => Some(account),
                _ => iam::arn::is_account_id(o).then(|| o.to_string()),
            })
            .or_else(|| principal.account().map(str::to_string));
        // Each source's statement spans, scanned once for every result that cites them.
        let spans: Vec<Vec<(usize, usize)>> =
            ordered.iter().map(|s| statement_spans(&s.text)).collect();
        let now = OffsetDateTime::now_utc();
        let mut results = Vec::new();
        for action in &req.actions {
            for resource_arn in &resources {
                let mut ctx = RequestContext::new(principal.clone(), action, resource_arn);
                if hide_identity_keys {
                    ctx.remove("aws:PrincipalArn")
                        .remove("aws:userid")
                        .remove("aws:username");
                }
                ctx.set_time(now);
                if let Some(owner) = &owner {
                    ctx.set_resource_account(owner);
                }
                for (name, values, multi) in &req.context {
                    if *multi || values.len() > 1 {
                        ctx.set_multi(name, values.iter().cloned());
                    } else if let Some(first) = values.first() {
                        ctx.set(name, first);
                    }
                }
                let decision = iam::evaluate(&set, &ctx);
                results.push(summarize(action, resource_arn, decision, &ordered));
            }
        }
        self.ok(|r| {
            r.list("EvaluationResults", &results, |e, res| {
                e.text("EvalActionName", &res.action)
                    .text("EvalResourceName", &res.resource)
                    .text("EvalDecision", decision_name(res.decision.verdict));
                e.list("MatchedStatements", &res.matched, |m, (src, st)| {
                    let source = ordered[*src];
                    m.text("SourcePolicyId", &source.id)
                        .opt_text("SourcePolicyType", source.kind);
                    if let Some(&(start, end)) = spans[*src].get(*st) {
                        let (sl, sc) = position(&source.text, start);
                        let (el, ec) = position(&source.text, end);
                        m.child("StartPosition", |p| {
                            p.display("Line", sl).display("Column", sc);
                        })
                        .child("EndPosition", |p| {
                            p.display("Line", el).display("Column", ec);
                        });
                    }
                });
                e.text_list("MissingContextValues", &res.missing);
                if let Some(allowed) = res.boundary_allows {
                    e.child("PermissionsBoundaryDecisionDetail", |d| {
                        d.bool("AllowedByPermissionsBoundary", allowed);
                    });
                }
            });
            r.bool("IsTruncated", false);
        })
    }
}

fn summarize(action: &str, resource: &str, decision: Decision, ordered: &[&Source]) -> Evaluated {
    let want = match decision.verdict {
        Verdict::Allow => Some(Effect::Allow),
        Verdict::ExplicitDeny => Some(Effect::Deny),
        Verdict::ImplicitDeny => None,
    };
    let mut matched = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut boundary_allows = None;
    for (pi, trace) in decision.policies.iter().enumerate() {
        if pi >= ordered.len() {
            break;
        }
        if trace.role == PolicyRole::Boundary {
            let allows = trace
                .statements
                .iter()
                .any(|s| s.matched && s.effect == Effect::Allow);
            let denies = trace
                .statements
                .iter()
                .any(|s| s.matched && s.effect == Effect::Deny);
            boundary_allows = Some(allows && !denies);
        }
        for st in &trace.statements {
            if st.matched && Some(st.effect) == want {
                matched.push((pi, st.index));
            }
            if let Some(Mismatch::Condition(c)) = &st.failed {
                if c.actual.is_none() && !missing.iter().any(|m| m.eq_ignore_ascii_case(&c.key)) {
                    missing.push(c.key.clone());
                }
            }
        }
    }
    Evaluated {
        action: action.to_string(),
        resource: resource.to_string(),
        decision,
        matched,
        missing,
        boundary_allows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_statements() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"},\n    {\"Effect\": \"Deny\", \"Action\": [\"x:y\"], \"Resource\": \"*\", \"Condition\": {\"Bool\": {\"a:b\": \"true\"}}}\n  ]\n}";
        let spans = statement_spans(doc);
        assert_eq!(spans.len(), 2);
        assert_eq!(position(doc, spans[0].0), (4, 5));
        assert!(doc[spans[1].0..spans[1].1].starts_with("{\"Effect\": \"Deny\""));
        assert!(doc[spans[1].0..spans[1].1].ends_with("}}}"));
        let single = r#"{"Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*"}, "Version": "2012-10-17"}"#;
        let spans = statement_spans(single);
        assert_eq!(spans.len(), 1);
        assert_eq!(position(single, spans[0].0), (1, 15));
        // A "Statement" string value elsewhere is not the element.
        let tricky = r#"{"Id": "Statement", "Statement": [{"Sid": "x\"{", "Effect": "Allow", "Action": "a:b", "Resource": "*"}]}"#;
        assert_eq!(statement_spans(tricky).len(), 1);
    }
}
