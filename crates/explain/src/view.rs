//! Lookups over a [`Snapshot`] and the policy evaluations `explain pod` and `lint` share: every
//! decision goes through the `iam` engine.

use iam::{evaluate, Decision, NamedPolicy, Policy, PolicyKind, PolicySet, Principal};
use iam::{RequestContext, Verdict};
use twin_state::snapshot::{
    Snapshot, SnapshotAssociation, SnapshotCluster, SnapshotOidcProvider, SnapshotRole,
    SnapshotServiceAccount,
};

/// The service principal of EKS Pod Identity.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";
/// The annotation naming an IRSA role.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The annotation naming an IRSA token's audience.
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// The audience of IRSA tokens unless annotated otherwise.
pub const IRSA_AUDIENCE: &str = "sts.amazonaws.com";

/// A snapshot with the lookups the chain needs.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The snapshot.
    pub snap: &'a Snapshot,
}

/// `https://HOST/PATH` (or loopback `http://`) without its scheme: the prefix of an issuer's
/// condition keys and the tail of its provider's ARN.
pub fn issuer_host_path(url: &str) -> &str {
    twin_state::oidc_provider_host_path(url)
        .unwrap_or(url)
        .trim_end_matches('/')
}

/// The account of an IAM ARN (`arn:aws:iam::ACCOUNT:…`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

impl<'a> View<'a> {
    /// The cluster named `name_or_arn` (its name or its ARN).
    pub fn cluster(&self, name_or_arn: &str) -> Option<&'a SnapshotCluster> {
        self.snap
            .clusters
            .iter()
            .find(|c| c.name == name_or_arn || c.arn == name_or_arn)
    }

    /// The role with this ARN.
    pub fn role(&self, arn: &str) -> Option<&'a SnapshotRole> {
        self.snap.roles.iter().find(|r| r.arn == arn)
    }

    /// The IAM OIDC provider for `issuer` in `account`.
    pub fn provider(&self, account: &str, issuer: &str) -> Option<&'a SnapshotOidcProvider> {
        let want = issuer_host_path(issuer);
        self.snap
            .oidc_providers
            .iter()
            .find(|p| p.account == account && issuer_host_path(&p.url) == want)
    }

    /// The provider with this ARN.
    pub fn provider_by_arn(&self, arn: &str) -> Option<&'a SnapshotOidcProvider> {
        self.snap.oidc_providers.iter().find(|p| p.arn == arn)
    }

    /// The stored service account, if any.
    pub fn service_account(
        &self,
        cluster: &SnapshotCluster,
        namespace: &str,
        name: &str,
    ) -> Option<&'a SnapshotServiceAccount> {
        self.snap
            .service_accounts
            .iter()
            .find(|s| s.cluster_arn == cluster.arn && s.namespace == namespace && s.name == name)
    }

    /// The Pod Identity association of a service account, if any.
    pub fn association(
        &self,
        cluster: &SnapshotCluster,
        namespace: &str,
        name: &str,
    ) -> Option<&'a SnapshotAssociation> {
        self.snap.associations.iter().find(|a| {
            a.cluster_arn == cluster.arn && a.namespace == namespace && a.service_account == name
        })
    }

    /// The bucket an S3 ARN names, with its owner and policy.
    pub fn bucket_of(&self, resource: &str) -> Option<&'a twin_state::snapshot::SnapshotBucket> {
        let name = resource.strip_prefix("arn:aws:s3:::")?.split('/').next()?;
        self.snap.buckets.iter().find(|b| b.name == name)
    }
}

/// A policy of the snapshot that the engine refused to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPolicy {
    /// Which policy.
    pub name: String,
    /// The parser's message.
    pub error: String,
}

fn compile(name: &str, text: &str, kind: PolicyKind) -> Result<NamedPolicy, BadPolicy> {
    Policy::parse(text, kind)
        .map(|p| NamedPolicy::new(name, p))
        .map_err(|e| BadPolicy {
            name: name.to_string(),
            error: e.to_string(),
        })
}

/// A role's policies, compiled.
#[derive(Debug, Clone)]
pub struct RolePolicies {
    /// The trust policy.
    pub trust: NamedPolicy,
    /// Inline and managed identity policies.
    pub identity: Vec<NamedPolicy>,
    /// The permissions boundary.
    pub boundary: Option<NamedPolicy>,
}

impl RolePolicies {
    /// Compiles a role's trust policy.
    pub fn trust_of(role: &SnapshotRole) -> Result<NamedPolicy, BadPolicy> {
        compile(
            &format!("trust policy of {}", role.name),
            &role.trust_policy,
            PolicyKind::Trust,
        )
    }

    /// Compiles a role's documents.
    pub fn of(role: &SnapshotRole) -> Result<RolePolicies, BadPolicy> {
        let trust = RolePolicies::trust_of(role)?;
        let identity = role
            .identity_policies
            .iter()
            .map(|p| compile(&p.name, &p.document, PolicyKind::Identity))
            .collect::<Result<_, _>>()?;
        let boundary = role
            .permissions_boundary
            .as_ref()
            .map(|p| compile(&p.name, &p.document, PolicyKind::Identity))
            .transpose()?;
        Ok(RolePolicies {
            trust,
            identity,
            boundary,
        })
    }

    /// The identity side alone: what the role's own policies allow a session of it.
    pub fn identity_decision(&self, ctx: &RequestContext, session: &[NamedPolicy]) -> Decision {
        evaluate(
            &PolicySet {
                identity: &self.identity,
                resource: None,
                boundary: self.boundary.as_ref(),
                session,
            },
            ctx,
        )
    }
}

/// The trust side alone: whether `trust` lets the caller in, with the caller's own account
/// assumed to allow (so a cross-account denial is the trust policy's).
pub fn trust_decision(trust: &NamedPolicy, ctx: &RequestContext) -> Decision {
    let allow_all = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .map(|p| vec![NamedPolicy::new("(the caller's side, assumed to allow)", p)])
    .unwrap_or_default();
    let identity: &[NamedPolicy] = if ctx.principal().is_iam_entity() {
        &allow_all
    } else {
        &[]
    };
    let decision = evaluate(
        &PolicySet {
            identity,
            resource: Some(trust),
            boundary: None,
            session: &[],
        },
        ctx,
    );
    // Show only the trust policy's own trace.
    Decision {
        policies: decision
            .policies
            .into_iter()
            .filter(|p| p.name == trust.name)
            .collect(),
        ..decision
    }
}

/// The whole decision: the caller's identity policies and the trust (or resource) policy.
pub fn full_decision(
    identity: &[NamedPolicy],
    boundary: Option<&NamedPolicy>,
    session: &[NamedPolicy],
    resource: Option<&NamedPolicy>,
    ctx: &RequestContext,
) -> Decision {
    evaluate(
        &PolicySet {
            identity,
            resource,
            boundary,
            session,
        },
        ctx,
    )
}

/// Whether the engine allowed.
pub fn allowed(d: &Decision) -> bool {
    d.verdict == Verdict::Allow
}

/// The role session principal of `role`.
pub fn session_principal(role: &SnapshotRole, session_name: &str) -> Principal {
    Principal::AssumedRole {
        session_arn: format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            role.account, role.name
        ),
        role_arn: role.arn.clone(),
        account: role.account.clone(),
        role_unique_id: None,
    }
}
