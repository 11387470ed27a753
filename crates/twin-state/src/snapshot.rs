//! A read-only snapshot of what decides a pod's credential chain: roles with their trust and
//! identity policies, OIDC providers, clusters, service accounts, EKS Pod Identity associations
//! and bucket policies. `rolechain explain pod` and `rolechain lint` reason over it, offline (a
//! store seeded from a world file) or online (the running twin's `GET /_rolechain/snapshot`).
//!
//! It holds no secret: no access keys, no session credentials, no object contents.

use serde::{Deserialize, Serialize};

use crate::db::Store;
use crate::error::Result;
use crate::model::Paging;

/// Everything `explain pod` and `lint` read, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The account ids.
    pub accounts: Vec<String>,
    /// Every role of every account.
    pub roles: Vec<SnapshotRole>,
    /// Every IAM OIDC identity provider.
    pub oidc_providers: Vec<SnapshotOidcProvider>,
    /// Every EKS cluster.
    pub clusters: Vec<SnapshotCluster>,
    /// Every stored service account (a namespace's implicit `default` is not listed).
    pub service_accounts: Vec<SnapshotServiceAccount>,
    /// Every EKS Pod Identity association.
    pub associations: Vec<SnapshotAssociation>,
    /// Every S3 bucket, with its policy.
    pub buckets: Vec<SnapshotBucket>,
}

/// A named policy document (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPolicy {
    /// The name shown in explanations: the inline policy's name or the managed policy's ARN.
    pub name: String,
    /// The document, JSON.
    pub document: String,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRole {
    /// The account.
    pub account: String,
    /// The name.
    pub name: String,
    /// The ARN.
    pub arn: String,
    /// Longest session in seconds.
    pub max_session_duration: u32,
    /// The trust policy, rendered with ARNs as IAM shows it.
    pub trust_policy: String,
    /// Inline and attached managed policies.
    pub identity_policies: Vec<SnapshotPolicy>,
    /// The permissions boundary, if any.
    #[serde(default)]
    pub permissions_boundary: Option<SnapshotPolicy>,
}

/// An IAM OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOidcProvider {
    /// The account it is registered in.
    pub account: String,
    /// Its ARN.
    pub arn: String,
    /// The issuer URL.
    pub url: String,
    /// Accepted audiences.
    pub client_ids: Vec<String>,
}

/// An EKS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotCluster {
    /// The name.
    pub name: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The ARN.
    pub arn: String,
    /// The OIDC issuer URL.
    pub issuer: String,
}

/// A Kubernetes service account of a local cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotServiceAccount {
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// Its annotations (`eks.amazonaws.com/role-arn`, …).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// An EKS Pod Identity association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotAssociation {
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The role in the cluster's account.
    pub role_arn: String,
    /// The target role, for a cross-account association.
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// Whether EKS leaves out its session tags.
    pub disable_session_tags: bool,
    /// The session policy of the last session, if any.
    #[serde(default)]
    pub policy: Option<String>,
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBucket {
    /// The name.
    pub name: String,
    /// The owning account.
    pub owner: String,
    /// The bucket policy, JSON.
    #[serde(default)]
    pub policy: Option<String>,
}

impl Store {
    /// The snapshot of the whole store (see the module docs); no secrets.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        let policy_doc = |arn: &str| -> Result<Option<String>> {
            Ok(self
                .get_policy(arn)
                .ok()
                .and_then(|p| p.default_version().map(|v| v.document.clone())))
        };
        for account in self.list_accounts()? {
            let mut paging = Paging {
                marker: None,
                max_items: Some(1000),
            };
            loop {
                let page = self.list_roles(&account.id, None, &paging)?;
                for role in page.items {
                    let mut identity_policies: Vec<SnapshotPolicy> = role
                        .inline_policies
                        .iter()
                        .map(|(name, document)| SnapshotPolicy {
                            name: name.clone(),
                            document: document.clone(),
                        })
                        .collect();
                    for arn in &role.attached_policies {
                        if let Some(document) = policy_doc(arn)? {
                            identity_policies.push(SnapshotPolicy {
                                name: arn.clone(),
                                document,
                            });
                        }
                    }
                    let permissions_boundary = match &role.permissions_boundary {
                        Some(arn) => policy_doc(arn)?.map(|document| SnapshotPolicy {
                            name: arn.clone(),
                            document,
                        }),
                        None => None,
                    };
                    snap.roles.push(SnapshotRole {
                        trust_policy: self.render_policy(&role.assume_role_policy)?,
                        account: role.account,
                        name: role.name,
                        arn: role.arn,
                        max_session_duration: role.max_session_duration,
                        identity_policies,
                        permissions_boundary,
                    });
                }
                match page.marker {
                    Some(m) if page.is_truncated => paging.marker = Some(m),
                    _ => break,
                }
            }
            for p in self.list_oidc_providers(&account.id)? {
                snap.oidc_providers.push(SnapshotOidcProvider {
                    account: p.account,
                    arn: p.arn,
                    url: p.url,
                    client_ids: p.client_ids,
                });
            }
            for b in self.list_buckets(&account.id).map_err(|e| match e {
                crate::BucketError::State(s) => s,
                other => crate::StateError::Storage(other.to_string()),
            })? {
                snap.buckets.push(SnapshotBucket {
                    name: b.name,
                    owner: b.owner,
                    policy: b.policy,
                });
            }
            snap.accounts.push(account.id);
        }
        for cluster in self.all_clusters()? {
            for sa in self.list_service_accounts(&cluster, None)? {
                snap.service_accounts.push(SnapshotServiceAccount {
                    cluster_arn: sa.cluster_arn,
                    namespace: sa.namespace,
                    name: sa.name,
                    annotations: sa.annotations,
                });
            }
            let mut token: Option<String> = None;
            loop {
                let page = self.list_pod_identity_associations(
                    &cluster,
                    None,
                    None,
                    100,
                    token.as_deref(),
                )?;
                for a in page.associations {
                    snap.associations.push(SnapshotAssociation {
                        cluster_arn: a.cluster_arn,
                        namespace: a.namespace,
                        service_account: a.service_account,
                        role_arn: a.role_arn,
                        target_role_arn: a.target_role_arn,
                        disable_session_tags: a.disable_session_tags,
                        policy: a.policy,
                    });
                }
                match page.next_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            snap.clusters.push(SnapshotCluster {
                name: cluster.name,
                account: cluster.account,
                region: cluster.region,
                arn: cluster.arn,
                issuer: cluster.issuer_url,
            });
        }
        Ok(snap)
    }
}
