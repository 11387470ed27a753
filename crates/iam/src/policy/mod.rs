//! The policy language: the compiled form of a JSON policy document, with IAM's validation
//! messages and size quotas. Parsing and validation live in [`parse`], so this module holds
//! only the types the evaluator and callers see.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::condition::Condition;
use crate::pattern::{ArnPattern, Pattern};

mod parse;
#[cfg(test)]
mod tests;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Denies, overriding any allow.
    Deny,
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Version {
    /// `2008-10-17` (also the default when `Version` is absent): no policy variables.
    #[serde(rename = "2008-10-17")]
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    #[serde(rename = "2012-10-17")]
    V2012_10_17,
}

/// Where a policy is attached, which decides the elements it must and must not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Identity-based: attached to a user or role, also permissions boundaries and session
    /// policies. No `Principal`; `Resource` required.
    Identity,
    /// Resource-based, e.g. an S3 bucket policy: `Principal` and `Resource` required.
    Resource,
    /// A role trust policy: `Principal` required, `Resource` prohibited.
    Trust,
}

/// A validation failure, in IAM's words, naming the element at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not valid JSON or not shaped like a policy.
    #[error("Syntax errors in policy. {detail}")]
    Syntax {
        /// What is wrong and where.
        detail: String,
    },
    /// An element is present but not acceptable (`MalformedPolicyDocument`).
    #[error("{message} (at {element})")]
    Malformed {
        /// JSON path of the element, e.g. `Statement[1].Condition`.
        element: String,
        /// IAM's message.
        message: String,
    },
    /// The document exceeds an IAM size quota (`LimitExceeded`).
    #[error("Cannot exceed quota for {quota}: {limit}")]
    LimitExceeded {
        /// The quota's name as IAM reports it, e.g. `PolicySize`, `ACLSizePerRole`.
        quota: &'static str,
        /// The limit in characters (white space not counted).
        limit: usize,
        /// The document's size in the same unit.
        size: usize,
    },
}

impl PolicyError {
    /// The AWS error code this failure is reported under.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Syntax { .. } | PolicyError::Malformed { .. } => "MalformedPolicyDocument",
            PolicyError::LimitExceeded { .. } => "LimitExceeded",
        }
    }

    fn at(element: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Malformed {
            element: element.into(),
            message: message.into(),
        }
    }
}

/// IAM's policy size quotas, in characters with white space not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeQuota {
    /// A role's trust policy (`ACLSizePerRole`, default 2,048).
    TrustPolicy,
    /// A customer managed policy (`PolicySize`, 6,144).
    ManagedPolicy,
    /// All inline policies of one role together (10,240).
    RoleInlinePolicies,
    /// All inline policies of one user together (2,048).
    UserInlinePolicies,
    /// All inline policies of one group together (5,120).
    GroupInlinePolicies,
    /// An inline session policy passed to STS (2,048).
    SessionPolicy,
}

impl SizeQuota {
    /// The quota's name and limit.
    pub fn limit(self) -> (&'static str, usize) {
        match self {
            SizeQuota::TrustPolicy => ("ACLSizePerRole", 2048),
            SizeQuota::ManagedPolicy => ("PolicySize", 6144),
            SizeQuota::RoleInlinePolicies => ("RolePolicySize", 10240),
            SizeQuota::UserInlinePolicies => ("UserPolicySize", 2048),
            SizeQuota::GroupInlinePolicies => ("GroupPolicySize", 5120),
            SizeQuota::SessionPolicy => ("SessionPolicySize", 2048),
        }
    }

    /// Checks a total size against the quota.
    pub fn check(self, size: usize) -> Result<(), PolicyError> {
        let (quota, limit) = self.limit();
        if size > limit {
            return Err(PolicyError::LimitExceeded { quota, limit, size });
        }
        Ok(())
    }
}

/// A policy's size as IAM counts it: characters, not counting white space.
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// A parsed, compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The language version.
    pub version: Version,
    /// The optional `Id`.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The optional `Sid` (shared cheaply with traces).
    pub sid: Option<Arc<str>>,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    /// `Principal` or `NotPrincipal` (resource and trust policies only).
    pub principal: Option<PrincipalClause>,
    /// `Action` or `NotAction`.
    pub action: ActionClause,
    /// `Resource` or `NotResource` (absent in trust policies).
    pub resource: Option<ResourceClause>,
    /// All conditions; every one must hold.
    pub conditions: Vec<Condition>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalClause {
    /// The statement applies to the listed principals.
    Principal(Principals),
    /// The statement applies to everyone except the listed principals.
    NotPrincipal(Principals),
}

/// The principals named in a `Principal`/`NotPrincipal` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    /// `"*"` (or `{"AWS": "*"}`): everyone, including anonymous callers.
    pub everyone: bool,
    /// `AWS` entries.
    pub aws: Vec<AwsPrincipal>,
    /// `Federated` entries: OIDC/SAML provider ARNs or well-known providers.
    pub federated: Vec<String>,
    /// `Service` entries, e.g. `pods.eks.amazonaws.com`.
    pub service: Vec<String>,
    /// `CanonicalUser` entries.
    pub canonical_user: Vec<String>,
}

/// One `AWS` principal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// A 12-digit account id or `arn:…:iam::ACCOUNT:root`: the whole account (delegation).
    Account(String),
    /// An IAM user ARN.
    User(String),
    /// An IAM role ARN: matches every session of the role.
    Role(String),
    /// An assumed-role session ARN.
    AssumedRole(String),
    /// A federated user ARN.
    FederatedUser(String),
    /// A unique id (`AIDA…` for users, `AROA…` for roles), as IAM stores principals and shows
    /// them once the named entity is deleted.
    UniqueId(String),
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionClause {
    /// Applies to the listed actions.
    Action(Vec<Pattern>),
    /// Applies to every action except the listed ones.
    NotAction(Vec<Pattern>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceClause {
    /// Applies to the listed resources.
    Resource(Vec<ArnPattern>),
    /// Applies to every resource except the listed ones.
    NotResource(Vec<ArnPattern>),
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

impl Principals {
    /// The entries as written, for explanations (`AWS:arn…`, `Service:…`).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.everyone {
            out.push("*".to_string());
        }
        for a in &self.aws {
            out.push(format!(
                "AWS:{}",
                match a {
                    AwsPrincipal::Account(id) => id,
                    AwsPrincipal::User(s)
                    | AwsPrincipal::Role(s)
                    | AwsPrincipal::AssumedRole(s)
                    | AwsPrincipal::FederatedUser(s)
                    | AwsPrincipal::UniqueId(s) => s,
                }
            ));
        }
        out.extend(self.federated.iter().map(|f| format!("Federated:{f}")));
        out.extend(self.service.iter().map(|s| format!("Service:{s}")));
        out.extend(
            self.canonical_user
                .iter()
                .map(|c| format!("CanonicalUser:{c}")),
        );
        out
    }
}
