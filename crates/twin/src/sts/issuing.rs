//! Issuing a session once the trust decisions allowed it: STS's checks of what the request
//! asks (duration first by chaining, then by role), storing the session, its response
//! elements, and the service-failure answer the STS handlers share.

use awswire::{AwsError, Element};
use time::{Duration, OffsetDateTime};
use twin_state::{NewSession, Role, Session, StateError};

use super::session_policies::{packed_policy_size, SessionPolicies};
use super::session_tags::SessionTags;
use super::{Inner, StsConfig};
use crate::service::UNKNOWN_FAILURE;

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
