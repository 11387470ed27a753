//! Resolving a chain: the start (the pod's token through `AssumeRoleWithWebIdentity`, or EKS
//! Auth), then one `AssumeRole` per hop, each signed with the previous hop's credentials.

use crate::associations::{Chain, SessionTags, Start};
use crate::credentials::Credentials;
use crate::session::{session_name, session_tags};
use crate::token::PodClaims;
use crate::upstream::{
    AssumeRoleRequest, PodIdentityRequest, Upstream, UpstreamError, WebIdentityRequest,
};

/// STS's shortest session: what intermediate hops ask for, since their credentials are used
/// once, at once, to assume the next role.
const INTERMEDIATE_DURATION_SECS: u32 = 900;

/// Who the chain is resolved for.
#[derive(Debug, Clone, Copy)]
pub struct ChainRequest<'a> {
    /// The cluster's name.
    pub cluster_name: &'a str,
    /// The cluster's ARN (for the `eks-cluster-arn` session tag), when known.
    pub cluster_arn: Option<&'a str>,
    /// The pod, from its verified token.
    pub claims: &'a PodClaims,
    /// A valid token of the pod (or, for shared credentials, of any pod of the service
    /// account).
    pub token: &'a str,
}

/// A failed link of a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link {link} of the chain ({role}) failed: {error}")]
pub struct ChainError {
    /// Which link: 0 is the start.
    pub link: usize,
    /// The role that link assumes (`EKS Auth` for EKS Auth's start).
    pub role: String,
    /// What upstream said.
    pub error: UpstreamError,
}

/// Resolves `chain` for `request`, returning the last link's credentials.
///
/// Session tags go on the first `AssumeRole` only, marked transitive: STS carries them to
/// every later session of the chain, and refuses a hop that sets a key it inherits. After EKS
/// Auth, whose sessions already carry the EKS tags (transitive), no hop sets any.
pub async fn resolve(
    upstream: &dyn Upstream,
    chain: &Chain,
    request: ChainRequest<'_>,
) -> Result<Credentials, ChainError> {
    let claims = request.claims;
    let pod_name = (chain.session_tags == SessionTags::Pod).then_some(claims.pod.name.as_str());
    let name = session_name(&claims.namespace, &claims.service_account, pod_name);
    let last = chain.hops.len();
    let duration = |link: usize| {
        if link == last {
            chain.duration_seconds
        } else {
            Some(INTERMEDIATE_DURATION_SECS)
        }
    };
    let mut credentials = match &chain.start {
        Start::WebIdentity { role_arn } => upstream
            .assume_role_with_web_identity(WebIdentityRequest {
                role_arn,
                session_name: &name,
                token: request.token,
                duration_seconds: duration(0),
            })
            .await
            .map_err(|error| ChainError {
                link: 0,
                role: role_arn.clone(),
                error,
            })?,
        Start::EksAuth => upstream
            .assume_role_for_pod_identity(PodIdentityRequest {
                cluster_name: request.cluster_name,
                token: request.token,
            })
            .await
            .map_err(|error| ChainError {
                link: 0,
                role: "EKS Auth".to_string(),
                error,
            })?,
    };
    let tags = match chain.start {
        Start::WebIdentity { .. } => session_tags(
            chain.session_tags,
            request.cluster_name,
            request.cluster_arn,
            &claims.namespace,
            &claims.service_account,
            Some(&claims.pod),
        ),
        Start::EksAuth => Vec::new(),
    };
    for (index, hop) in chain.hops.iter().enumerate() {
        let link = index + 1;
        credentials = upstream
            .assume_role(AssumeRoleRequest {
                caller: &credentials,
                role_arn: &hop.role_arn,
                session_name: &name,
                external_id: hop.external_id.as_deref(),
                tags: if index == 0 { &tags } else { &[] },
                duration_seconds: duration(link),
            })
            .await
            .map_err(|error| ChainError {
                link,
                role: hop.role_arn.clone(),
                error,
            })?;
    }
    Ok(credentials)
}
