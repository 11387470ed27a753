//! What `AssumeRole` and `AssumeRoleWithWebIdentity` share: session policies, session tags,
//! durations, the trust decision, issuing the session and the response elements.

use awswire::{rules, AwsError, Element, Path, Validator};
use iam::{
    Decision, Effect, NamedPolicy, PolicyKind, PolicyRole, PolicySet, Principal, Reason,
    RequestContext, Verdict,
};
use time::{Duration, OffsetDateTime};
use twin_state::{NewSession, Role, Session, StateError, Tag};

use super::{Inner, StsConfig};
use crate::authz::CallerPolicies;
use crate::service::{ApiRequest, UNKNOWN_FAILURE};

/// The service failure answer, with the detail logged rather than sent.
pub(crate) fn internal(detail: impl std::fmt::Display) -> AwsError {
    tracing::error!(%detail, "sts could not complete the request");
    AwsError::internal_failure(UNKNOWN_FAILURE)
}

/// A store error during STS work: the store's own failures are 500s, anything else the
/// caller caused is reported by the caller of this function.
pub(crate) fn store_failure(e: StateError) -> AwsError {
    internal(e)
}

/// Session policies as passed: the inline document and managed policy ARNs.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionPolicies {
    pub(crate) inline: Option<String>,
    pub(crate) arns: Vec<String>,
}

impl SessionPolicies {
    /// Reads `PolicyArns` then `Policy`, in the model's member order.
    pub(crate) fn read(v: &mut Validator<'_>, policy_rule: &awswire::StrRule) -> Self {
        let arns = v
            .struct_list("PolicyArns", &awswire::ListRule::ANY)
            .iter()
            .map(|m| v.required_str(m.member("arn"), &rules::STS_ARN))
            .collect();
        let inline = v.str("Policy", policy_rule);
        SessionPolicies { inline, arns }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inline.is_none() && self.arns.is_empty()
    }

    /// Checks the inline policy (IAM's grammar, STS's 2 048-character quota) and that each
    /// managed policy exists in the role's account.
    pub(crate) fn check(
        &self,
        inner: &Inner,
        role_account: &str,
        config: &StsConfig,
    ) -> Result<(), AwsError> {
        if self.arns.len() > config.max_session_policy_arns {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {}",
                config.max_session_policy_arns
            )));
        }
        if let Some(doc) = &self.inline {
            let size = iam::policy_size(doc);
            if size > 2048 {
                return Err(AwsError::packed_policy_too_large(format!(
                    "Packed policy consumes {}% of allotted space, please use smaller policy.",
                    percent(size)
                )));
            }
            iam::Policy::parse(doc, PolicyKind::Identity)
                .map_err(|e| AwsError::malformed_policy_document(e.to_string()))?;
        }
        for arn in &self.arns {
            let in_account = arn
                .parse::<iam::Arn>()
                .is_ok_and(|a| a.service == "iam" && a.account == role_account);
            let exists = in_account
                && match inner.store.propagated().get_policy(arn) {
                    Ok(_) => true,
                    Err(StateError::NoSuchEntity(_)) => false,
                    Err(e) => return Err(store_failure(e)),
                };
            if !exists {
                return Err(AwsError::malformed_policy_document(format!(
                    "Policy {arn} does not exist or is not attachable."
                )));
            }
        }
        Ok(())
    }
}

/// Session tags of the new session: passed ones and the caller's transitive ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionTags {
    /// Tags passed with the request (or from the token's tags claim), in order.
    pub(crate) passed: Vec<Tag>,
    /// Keys of passed tags to make transitive.
    pub(crate) transitive_keys: Vec<String>,
    /// Transitive tags inherited from the calling session.
    pub(crate) inherited: Vec<Tag>,
}

impl SessionTags {
    /// Whether any tag is set on the new session (then `sts:TagSession` must be allowed).
    pub(crate) fn any(&self) -> bool {
        !self.passed.is_empty() || !self.transitive_keys.is_empty()
    }

    /// Checks duplicates, transitive keys, inherited conflicts and the quota.
    pub(crate) fn check(&self, config: &StsConfig) -> Result<(), AwsError> {
        if awswire::has_duplicate_keys(self.passed.iter().map(|t| t.key.as_str())) {
            return Err(AwsError::invalid_parameter_value(
                awswire::DUPLICATE_TAG_KEYS,
            ));
        }
        for key in &self.transitive_keys {
            if !self.passed.iter().any(|t| t.key.eq_ignore_ascii_case(key)) {
                return Err(AwsError::invalid_parameter_value(format!(
                    "The specified transitive tag key {key} must be included in the requested tags."
                )));
            }
        }
        for t in &self.passed {
            if self
                .inherited
                .iter()
                .any(|o| o.key.eq_ignore_ascii_case(&t.key))
            {
                return Err(AwsError::invalid_parameter_value(format!(
                    "One or more of the specified session tags conflict with transitive tags set by the calling session: {}.",
                    t.key
                )));
            }
        }
        let total = self.passed.len() + self.inherited.len();
        if total > config.max_session_tags {
            return Err(AwsError::invalid_parameter_value(format!(
                "The number of session tags ({total}) exceeds the maximum of {}.",
                config.max_session_tags
            )));
        }
        Ok(())
    }

    /// The new session's tags (inherited first) and transitive keys (inherited ones stay
    /// transitive).
    pub(crate) fn for_session(&self) -> (Vec<Tag>, Vec<String>) {
        let mut tags = self.inherited.clone();
        tags.extend(self.passed.iter().cloned());
        let mut keys: Vec<String> = self.inherited.iter().map(|t| t.key.clone()).collect();
        keys.extend(self.transitive_keys.iter().cloned());
        (tags, keys)
    }

    /// `aws:RequestTag/K` and `aws:TagKeys` for the tags of the request, and
    /// `sts:TransitiveTagKeys`.
    pub(crate) fn context(&self, ctx: &mut RequestContext) {
        if self.passed.is_empty() && self.transitive_keys.is_empty() {
            return;
        }
        for t in &self.passed {
            ctx.set(&format!("aws:RequestTag/{}", t.key), &t.value);
        }
        ctx.set_multi("aws:TagKeys", self.passed.iter().map(|t| t.key.as_str()));
        if !self.transitive_keys.is_empty() {
            ctx.set_multi(
                "sts:TransitiveTagKeys",
                self.transitive_keys.iter().map(String::as_str),
            );
        }
    }
}

/// The transitive tags of a calling session.
pub(crate) fn inherited_tags(session: Option<&Session>) -> Vec<Tag> {
    let Some(session) = session else {
        return Vec::new();
    };
    session
        .session_tags
        .iter()
        .filter(|t| {
            session
                .transitive_tag_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&t.key))
        })
        .cloned()
        .collect()
}

/// Reads `Tags` (Key, Value) and `TransitiveTagKeys`.
pub(crate) fn read_tags(v: &mut Validator<'_>) -> (Vec<Tag>, Vec<String>) {
    let members: Vec<Path> = v.struct_list("Tags", &rules::TAG_LIST);
    let tags = members
        .iter()
        .map(|m| {
            Tag::new(
                v.required_str(m.member("Key"), &rules::TAG_KEY),
                v.required_str(m.member("Value"), &rules::TAG_VALUE),
            )
        })
        .collect();
    let keys = v.str_list("TransitiveTagKeys", &rules::TAG_LIST, &rules::TAG_KEY);
    (tags, keys)
}

/// The session length: the request's (already within 900–43 200), then the chaining limit,
/// then the role's maximum — checked in that order, in AWS's words.
pub(crate) fn check_duration(
    requested: Option<i64>,
    chained: bool,
    role: &Role,
    config: &StsConfig,
) -> Result<i64, AwsError> {
    let duration = requested.unwrap_or(i64::from(config.default_duration_seconds));
    if chained && duration > i64::from(config.chained_duration_limit_seconds) {
        return Err(AwsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > i64::from(role.max_session_duration) {
        return Err(AwsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(duration)
}

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

/// What goes into the new session besides its name and role.
/// What an `AssumeRole*` request asks of its session, once its trust decisions allowed it.
pub(crate) struct Issue {
    pub(crate) role: Role,
    pub(crate) session_name: String,
    pub(crate) now: OffsetDateTime,
    /// `DurationSeconds`, when passed.
    pub(crate) requested_duration: Option<i64>,
    /// The duration is the service's own (EKS Pod Identity's 6-hour sessions): the role's
    /// `MaxSessionDuration` does not apply, the role-chaining limit still does.
    pub(crate) fixed_duration: bool,
    pub(crate) policies: SessionPolicies,
    pub(crate) tags: SessionTags,
    pub(crate) source_identity: Option<String>,
    pub(crate) chained: bool,
}

/// A session STS issued, and its packed policy size.
#[derive(Debug, Clone)]
pub(crate) struct Assumed {
    pub(crate) session: Session,
    pub(crate) packed: Option<u32>,
}

/// Checks what the request asks of its session in STS's order (session tags, session
/// policies, duration), then stores the session. A role deleted since the trust decision (its
/// unique id gone) means the caller may no longer assume it: `None`.
pub(crate) fn issue(inner: &Inner, issue: Issue) -> Result<Option<Assumed>, AwsError> {
    let Assumed { session, packed } = mint(inner, issue)?;
    stored(inner.store.put_session(&session).map(|()| session), packed)
}

/// [`issue`] for async handlers: the checks in place, the write through
/// [`SessionWrites`](super::session_writes::SessionWrites), without a thread per request.
pub(crate) async fn issue_async(inner: &Inner, issue: Issue) -> Result<Option<Assumed>, AwsError> {
    let Assumed { session, packed } = mint(inner, issue)?;
    stored(inner.session_writes.put(session).await, packed)
}

/// The checks of [`issue`] and the session they allow, not yet stored.
fn mint(inner: &Inner, issue: Issue) -> Result<Assumed, AwsError> {
    issue.tags.check(&inner.config)?;
    issue
        .policies
        .check(inner, &issue.role.account, &inner.config)?;
    let duration = if issue.fixed_duration && !issue.chained {
        issue
            .requested_duration
            .unwrap_or(i64::from(inner.config.default_duration_seconds))
    } else {
        check_duration(
            issue.requested_duration,
            issue.chained,
            &issue.role,
            &inner.config,
        )?
    };
    let packed = packed_policy_size(&issue.policies, &issue.tags);
    let (session_tags, transitive_tag_keys) = issue.tags.for_session();
    let issued = issue.now.replace_nanosecond(0).unwrap_or(issue.now);
    let new = NewSession {
        role_arn: issue.role.arn.clone(),
        role_id: issue.role.role_id.clone(),
        session_name: issue.session_name,
        issued,
        expires: issued + Duration::seconds(duration),
        session_policy: issue.policies.inline,
        session_policy_arns: issue.policies.arns,
        session_tags,
        transitive_tag_keys,
        source_identity: issue.source_identity,
        chained: issue.chained,
    };
    let session = inner.store.mint_session(&new).map_err(store_failure)?;
    Ok(Assumed { session, packed })
}

/// The outcome of storing a minted session, as [`issue`] answers it.
fn stored(
    result: Result<Session, StateError>,
    packed: Option<u32>,
) -> Result<Option<Assumed>, AwsError> {
    match result {
        Ok(session) => Ok(Some(Assumed { session, packed })),
        Err(StateError::NoSuchEntity(_)) => Ok(None),
        Err(e) => Err(store_failure(e)),
    }
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

/// `PackedPolicySize`: the share of STS's packed limit that the session policies and session
/// tags use, in percent. STS compresses them in a binary format it does not document; the twin
/// counts characters (policy text without white space, ARNs, tag keys and values) against
/// 2 048, which is an upper bound of the real figure for typical documents.
pub(crate) fn packed_policy_size(policies: &SessionPolicies, tags: &SessionTags) -> Option<u32> {
    if policies.is_empty() && !tags.any() && tags.inherited.is_empty() {
        return None;
    }
    let mut chars = policies.inline.as_deref().map_or(0, iam::policy_size);
    chars += policies.arns.iter().map(String::len).sum::<usize>();
    chars += tags
        .passed
        .iter()
        .chain(tags.inherited.iter())
        .map(|t| t.key.chars().count() + t.value.chars().count())
        .sum::<usize>();
    Some(percent(chars))
}

fn percent(chars: usize) -> u32 {
    u32::try_from(chars.saturating_mul(100).div_ceil(2048)).unwrap_or(u32::MAX)
}

/// `<Credentials>` and `<AssumedRoleUser>` of a session.
pub(crate) fn write_session(r: &mut Element<'_>, session: &Session) {
    r.child("Credentials", |c| {
        c.text("AccessKeyId", &session.access_key_id)
            .text("SecretAccessKey", &session.secret_access_key)
            .text("SessionToken", &session.session_token)
            .timestamp("Expiration", session.expires);
    });
}

/// `<AssumedRoleUser>`.
pub(crate) fn write_assumed_role_user(r: &mut Element<'_>, session: &Session) {
    r.child("AssumedRoleUser", |u| {
        u.text("AssumedRoleId", &session.user_id())
            .text("Arn", &session.assumed_role_arn);
    });
}
