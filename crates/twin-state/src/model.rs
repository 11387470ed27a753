//! The data model, mirroring IAM's, STS's and EKS's resources. Every type is serde-serializable:
//! the store keeps them as JSON records, and the HTTP layers render them in AWS's shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::principals::StoredPolicy;

/// An AWS account the twin simulates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The account alias (`developer`, `shared_content`).
    pub alias: String,
}

/// A long-term access key (`AKIA…`) of an account's user or root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA` + 16 uppercase letters and digits.
    pub access_key_id: String,
    /// The 40-character secret. Callers compare it in constant time.
    pub secret_access_key: String,
    /// The account the key belongs to.
    pub account: String,
    /// The user name the key belongs to, or `root`.
    pub principal: String,
    /// When the key was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// An IAM user. The twin creates one per account: `admin`, with an administrator inline policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The account the user is in.
    pub account: String,
    /// The user name.
    pub name: String,
    /// The path, `/` by default.
    pub path: String,
    /// The unique id, `AIDA…`.
    pub user_id: String,
    /// `arn:aws:iam::ACCOUNT:user/PATHNAME`.
    pub arn: String,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Inline policies, name → document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The key (1 to 128 characters).
    pub key: String,
    /// The value (0 to 256 characters).
    pub value: String,
}

impl Tag {
    /// A tag from a key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The account the role is in.
    pub account: String,
    /// The role name (unique in its account regardless of case).
    pub name: String,
    /// The path, `/` by default.
    pub path: String,
    /// The unique id, `AROA…`, new on every creation: a recreated role is another principal.
    pub role_id: String,
    /// `arn:aws:iam::ACCOUNT:role/PATHNAME`.
    pub arn: String,
    /// When the role was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The description, if any.
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session in seconds (3600 to 43200).
    pub max_session_duration: u32,
    /// The trust policy, with principals stored by unique id (render with
    /// [`crate::Store::render_policy`]).
    pub assume_role_policy: StoredPolicy,
    /// Tags, in the order they were added (at most 50).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The managed policy ARN used as permissions boundary.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Inline policies, name → document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `v1`, `v2`, …: never reused within a policy.
    pub version_id: String,
    /// The policy document as submitted.
    pub document: String,
    /// Whether this is the version in force.
    pub is_default: bool,
    /// When the version was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// A customer managed policy (scope `Local`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    /// The account the policy is in.
    pub account: String,
    /// The policy name (unique in its account regardless of case).
    pub name: String,
    /// The path, `/` by default.
    pub path: String,
    /// The unique id, `ANPA…`.
    pub policy_id: String,
    /// `arn:aws:iam::ACCOUNT:policy/PATHNAME`.
    pub arn: String,
    /// The version in force.
    pub default_version_id: String,
    /// The versions (at most 5), oldest first.
    pub versions: Vec<PolicyVersion>,
    /// The number the next version gets.
    pub next_version: u32,
    /// How many roles and users it is attached to.
    pub attachment_count: u32,
    /// How many roles and users use it as permissions boundary.
    #[serde(default)]
    pub permissions_boundary_usage_count: u32,
    /// When the policy was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When a version was last created or made default.
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
    /// The description, if any.
    #[serde(default)]
    pub description: Option<String>,
    /// The tags given at creation.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ManagedPolicy {
    /// The default version (every policy has one).
    pub fn default_version(&self) -> Option<&PolicyVersion> {
        self.versions.iter().find(|v| v.is_default)
    }
}

/// A managed policy as listed by `ListAttachedRolePolicies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedPolicy {
    /// The policy name.
    pub name: String,
    /// The policy ARN.
    pub arn: String,
}

/// An IAM OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// The account the provider is registered in.
    pub account: String,
    /// `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`.
    pub arn: String,
    /// The issuer URL as registered (`https://HOST/PATH`).
    pub url: String,
    /// Accepted audiences (at most 100).
    pub client_ids: Vec<String>,
    /// Certificate thumbprints, 40 hex digits each (at most 5).
    pub thumbprints: Vec<String>,
    /// When the provider was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// An EKS cluster: what EKS's `DescribeCluster` and EKS Auth need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The cluster name.
    pub name: String,
    /// The account the cluster is in.
    pub account: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The cluster's OIDC issuer URL (service-account tokens' `iss`).
    pub issuer_url: String,
    /// When the cluster was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub arn: String,
    /// The cluster's IAM role (`roleArn` of `CreateCluster`); `None` for a world file's.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The Kubernetes version it was created with, if one was named.
    #[serde(default)]
    pub version: Option<String>,
    /// The cluster's tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// A cluster to create: [`Store::create_cluster`](crate::Store::create_cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCluster {
    /// The account it is in.
    pub account: String,
    /// Its region.
    pub region: String,
    /// Its name: 1 to 100 letters, digits, hyphens and underscores, starting with a letter or
    /// digit.
    pub name: String,
    /// Its OIDC issuer URL (http or https).
    pub issuer_url: String,
    /// Its IAM role, when EKS's `CreateCluster` named one.
    pub role_arn: Option<String>,
    /// Its Kubernetes version, when one was named.
    pub version: Option<String>,
    /// Its tags.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl NewCluster {
    /// A cluster with only the members a world file gives.
    pub fn new(account: &str, region: &str, name: &str, issuer_url: &str) -> NewCluster {
        NewCluster {
            account: account.to_string(),
            region: region.to_string(),
            name: name.to_string(),
            issuer_url: issuer_url.to_string(),
            ..NewCluster::default()
        }
    }
}

/// A role session issued by STS (AssumeRole, AssumeRoleWithWebIdentity, EKS Pod Identity), kept
/// so later requests signed with its temporary key can be resolved to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `ASIA` + 16 uppercase letters and digits.
    pub access_key_id: String,
    /// The 40-character secret.
    pub secret_access_key: String,
    /// The opaque session token the client sends as `X-Amz-Security-Token`.
    pub session_token: String,
    /// The role's account.
    pub account: String,
    /// The role's ARN.
    pub role_arn: String,
    /// The role's unique id at issue time: the session belongs to that incarnation only.
    pub role_id: String,
    /// The session name.
    pub session_name: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub assumed_role_arn: String,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// The inline session policy document, if one was passed.
    #[serde(default)]
    pub session_policy: Option<String>,
    /// Managed policy ARNs passed as session policies.
    #[serde(default)]
    pub session_policy_arns: Vec<String>,
    /// Session tags (principal tags of the session).
    #[serde(default)]
    pub session_tags: Vec<Tag>,
    /// Keys of session tags that pass on to chained sessions.
    #[serde(default)]
    pub transitive_tag_keys: Vec<String>,
    /// The source identity, once set it stays for chained sessions.
    #[serde(default)]
    pub source_identity: Option<String>,
    /// Whether the session was assumed by another role session (role chaining: at most 1 hour).
    #[serde(default)]
    pub chained: bool,
}

impl Session {
    /// The caller's `aws:userid`: `ROLEID:SESSIONNAME`.
    pub fn user_id(&self) -> String {
        format!("{}:{}", self.role_id, self.session_name)
    }

    /// The `iam` engine's principal for a request signed with this session.
    pub fn principal(&self) -> iam::Principal {
        iam::Principal::AssumedRole {
            session_arn: self.assumed_role_arn.clone(),
            role_arn: self.role_arn.clone(),
            account: self.account.clone(),
            role_unique_id: Some(self.role_id.clone()),
        }
    }

    /// Whether the session has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires
    }
}

/// One page of a listing, with IAM's `Marker`/`IsTruncated` pagination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Whether more items follow.
    pub is_truncated: bool,
    /// Pass as `marker` to get the next page (present when truncated).
    pub marker: Option<String>,
}

/// IAM's `Marker`/`MaxItems` request parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// Where to continue, from the previous page's `marker`.
    pub marker: Option<String>,
    /// Items per page, 1 to 1000 (IAM's default: 100).
    pub max_items: Option<u32>,
}
