//! What other services of the twin call STS with (EKS Auth assuming pod identity roles): one
//! role assumption on a caller's behalf, answered with the session STS issued.

use awswire::AwsError;
use twin_state::{Session, Tag};

use super::{AssumeRoleParams, ServiceCall, SessionPolicies, StsService};
use crate::auth::AuthenticatedCaller;
use crate::service::ApiRequest;

/// An `AssumeRole` another service of the twin makes through STS, and how it differs from a
/// client's.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceAssumeRole {
    /// The role to assume.
    pub(crate) role_arn: String,
    /// The session name.
    pub(crate) session_name: String,
    /// The inline session policy, if any.
    pub(crate) policy: Option<String>,
    /// The session's length in seconds.
    pub(crate) duration_seconds: u32,
    /// Session tags.
    pub(crate) tags: Vec<Tag>,
    /// Which of `tags` are transitive.
    pub(crate) transitive_keys: Vec<String>,
    /// The external id the trust policy may ask for.
    pub(crate) external_id: Option<String>,
    /// Context keys the service adds to the trust decision (`aws:SourceAccount`,
    /// `aws:SourceArn`).
    pub(crate) context: Vec<(String, String)>,
    /// Whether the calling session's transitive tags are inherited (off when the service
    /// passes them again itself).
    pub(crate) inherit_transitive_tags: bool,
    /// The service sets the duration itself: the role's `MaxSessionDuration` does not apply
    /// (the role-chaining limit still does).
    pub(crate) fixed_duration: bool,
}

impl StsService {
    /// `AssumeRole` for another service of the twin (EKS Auth assuming a pod identity role as
    /// `pods.eks.amazonaws.com`, then chaining into the target role): the same trust
    /// decisions, recorded under `sts`, checks and session issuance as a client's
    /// `AssumeRole`. Synchronous store work: call it from the blocking pool.
    pub(crate) fn assume_role_as(
        &self,
        req: &ApiRequest,
        caller: &AuthenticatedCaller,
        call: ServiceAssumeRole,
    ) -> Result<Session, AwsError> {
        let params = AssumeRoleParams {
            role_arn: call.role_arn,
            session_name: call.session_name,
            policies: SessionPolicies {
                inline: call.policy,
                arns: Vec::new(),
            },
            duration: Some(i64::from(call.duration_seconds)),
            tags: call.tags,
            transitive_keys: call.transitive_keys,
            external_id: call.external_id,
            source_identity: None,
            service: Some(ServiceCall {
                context: call.context,
                inherit_transitive_tags: call.inherit_transitive_tags,
                fixed_duration: call.fixed_duration,
            }),
        };
        self.inner
            .assume(req, caller, params)
            .map(|assumed| assumed.session)
    }
}
