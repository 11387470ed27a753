//! The request context: who asks, for what action on which resource, with which context keys.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pattern::VariableSource;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Principal {
    /// An unauthenticated request (only resource policies naming `*` can allow it).
    Anonymous,
    /// The account's root user.
    Root {
        /// Account ID.
        account: String,
    },
    /// An IAM user.
    User {
        /// `arn:aws:iam::ACCOUNT:user/PATH/NAME`.
        arn: String,
        /// Account ID.
        account: String,
        /// The user's unique id (`AIDA…`), if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unique_id: Option<String>,
    },
    /// A role session, created by AssumeRole, AssumeRoleWithWebIdentity, or EKS Pod Identity.
    AssumedRole {
        /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
        session_arn: String,
        /// `arn:aws:iam::ACCOUNT:role/PATH/ROLE`: a policy naming the role matches its sessions.
        role_arn: String,
        /// Account ID.
        account: String,
        /// The role's unique id (`AROA…`), if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_unique_id: Option<String>,
    },
    /// A federated user session from GetFederationToken.
    FederatedUser {
        /// `arn:aws:sts::ACCOUNT:federated-user/NAME`.
        arn: String,
        /// Account ID.
        account: String,
    },
    /// A web-identity caller (AssumeRoleWithWebIdentity): matched by `Federated` principals.
    WebIdentity {
        /// The IAM OIDC provider ARN, or a well-known provider such as `accounts.google.com`.
        provider: String,
    },
    /// An AWS service principal, e.g. `pods.eks.amazonaws.com`.
    Service {
        /// The service principal name.
        name: String,
    },
}

impl Principal {
    /// The account the caller belongs to, for IAM principals.
    pub fn account(&self) -> Option<&str> {
        match self {
            Principal::Root { account }
            | Principal::User { account, .. }
            | Principal::AssumedRole { account, .. }
            | Principal::FederatedUser { account, .. } => Some(account),
            Principal::Anonymous | Principal::WebIdentity { .. } | Principal::Service { .. } => {
                None
            }
        }
    }

    /// True for callers that are IAM entities with identity-based policies of their own.
    pub fn is_iam_entity(&self) -> bool {
        self.account().is_some()
    }

    /// The ARN that identifies the caller, when it has one.
    pub fn arn(&self) -> Option<String> {
        match self {
            Principal::Root { account } => Some(format!("arn:aws:iam::{account}:root")),
            Principal::User { arn, .. } | Principal::FederatedUser { arn, .. } => Some(arn.clone()),
            Principal::AssumedRole { session_arn, .. } => Some(session_arn.clone()),
            Principal::Anonymous | Principal::WebIdentity { .. } | Principal::Service { .. } => {
                None
            }
        }
    }
}

/// One context key's values. Keys given as a list are multi-valued (for `ForAllValues:` and
/// `ForAnyValue:`), even with a single element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextValue {
    /// The key as the caller wrote it (for explanations).
    pub name: String,
    /// The values.
    pub values: Vec<String>,
    /// True when the key is multi-valued.
    pub multi: bool,
}

/// Everything a policy may be evaluated against.
#[derive(Debug, Clone)]
pub struct RequestContext {
    principal: Principal,
    action: String,
    action_lower: String,
    resource: String,
    resource_account: Option<String>,
    canonical_user: Option<String>,
    keys: HashMap<String, ContextValue>,
}

impl RequestContext {
    /// A context for `principal` calling `action` (e.g. `s3:GetObject`) on `resource` (an ARN,
    /// or `*`). The principal's global condition keys (`aws:PrincipalArn`, `aws:PrincipalAccount`,
    /// `aws:PrincipalType`, `aws:userid`, `aws:username`, …) are filled in from the principal.
    pub fn new(principal: Principal, action: &str, resource: &str) -> Self {
        let mut ctx = RequestContext {
            action: action.to_string(),
            action_lower: action.to_ascii_lowercase(),
            resource: resource.to_string(),
            resource_account: None,
            canonical_user: None,
            keys: HashMap::new(),
            principal: Principal::Anonymous,
        };
        ctx.derive_principal_keys(&principal);
        ctx.principal = principal;
        ctx
    }

    fn derive_principal_keys(&mut self, principal: &Principal) {
        let (kind, principal_arn, userid, username) = match principal {
            Principal::Anonymous => ("Anonymous", None, Some("anonymous".to_string()), None),
            Principal::Root { account } => (
                "Account",
                Some(format!("arn:aws:iam::{account}:root")),
                Some(account.clone()),
                None,
            ),
            Principal::User { arn, unique_id, .. } => (
                "User",
                Some(arn.clone()),
                unique_id.clone(),
                arn.rsplit('/').next().map(str::to_string),
            ),
            Principal::AssumedRole {
                session_arn,
                role_arn,
                role_unique_id,
                ..
            } => {
                let session = session_arn.rsplit('/').next().unwrap_or_default();
                (
                    "AssumedRole",
                    Some(role_arn.clone()),
                    role_unique_id.as_ref().map(|id| format!("{id}:{session}")),
                    None,
                )
            }
            Principal::FederatedUser { arn, account } => {
                let name = arn.rsplit('/').next().unwrap_or_default();
                (
                    "FederatedUser",
                    Some(arn.clone()),
                    Some(format!("{account}:{name}")),
                    None,
                )
            }
            Principal::WebIdentity { .. } => ("WebIdentityUser", None, None, None),
            Principal::Service { name } => {
                self.set("aws:PrincipalServiceName", name);
                ("Service", None, None, None)
            }
        };
        self.set("aws:PrincipalType", kind);
        self.set(
            "aws:PrincipalIsAWSService",
            if matches!(principal, Principal::Service { .. }) {
                "true"
            } else {
                "false"
            },
        );
        if let Some(arn) = principal_arn {
            self.set("aws:PrincipalArn", &arn);
        }
        if let Some(account) = principal.account() {
            self.set("aws:PrincipalAccount", account);
        }
        if let Some(userid) = userid {
            self.set("aws:userid", &userid);
        }
        if let Some(username) = username {
            self.set("aws:username", &username);
        }
    }

    /// Sets a single-valued key (replacing any earlier value).
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.keys.insert(
            key.to_ascii_lowercase(),
            ContextValue {
                name: key.to_string(),
                values: vec![value.to_string()],
                multi: false,
            },
        );
        self
    }

    /// Sets a multi-valued key (replacing any earlier value).
    pub fn set_multi<I, S>(&mut self, key: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.insert(
            key.to_ascii_lowercase(),
            ContextValue {
                name: key.to_string(),
                values: values.into_iter().map(Into::into).collect(),
                multi: true,
            },
        );
        self
    }

    /// Removes a key, e.g. a derived one a test wants absent.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.keys.remove(&key.to_ascii_lowercase());
        self
    }

    /// Sets `aws:CurrentTime` and `aws:EpochTime`.
    pub fn set_time(&mut self, now: OffsetDateTime) -> &mut Self {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        if let Ok(text) = now.format(&Rfc3339) {
            self.set("aws:CurrentTime", &text);
        }
        self.set("aws:EpochTime", &now.unix_timestamp().to_string());
        self
    }

    /// Sets `aws:SourceIp`.
    pub fn set_source_ip(&mut self, ip: std::net::IpAddr) -> &mut Self {
        self.set("aws:SourceIp", &ip.to_string())
    }

    /// Adds the principal's tags (role or user tags merged with session tags by the caller) as
    /// `aws:PrincipalTag/KEY`.
    pub fn set_principal_tags(&mut self, tags: &BTreeMap<String, String>) -> &mut Self {
        for (key, value) in tags {
            self.set(&format!("aws:PrincipalTag/{key}"), value);
        }
        self
    }

    /// The account that owns the resource (`aws:ResourceAccount`). When set and different from
    /// the caller's account, the request is cross-account.
    pub fn set_resource_account(&mut self, account: &str) -> &mut Self {
        self.resource_account = Some(account.to_string());
        self.set("aws:ResourceAccount", account)
    }

    /// The caller's S3 canonical user id, matched by `CanonicalUser` principals.
    pub fn set_canonical_user(&mut self, id: &str) -> &mut Self {
        self.canonical_user = Some(id.to_string());
        self
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The action as given, e.g. `s3:GetObject`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The action lower-cased (actions match case-insensitively).
    pub fn action_lower(&self) -> &str {
        &self.action_lower
    }

    /// The resource ARN (or `*`).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The account owning the resource, if known.
    pub fn resource_account(&self) -> Option<&str> {
        self.resource_account.as_deref()
    }

    /// The caller's canonical user id, if known.
    pub fn canonical_user(&self) -> Option<&str> {
        self.canonical_user.as_deref()
    }

    /// The values of a key (case-insensitive lookup).
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.keys.get(&key.to_ascii_lowercase())
        } else {
            self.keys.get(key)
        }
    }

    /// All keys, for explanations.
    pub fn keys(&self) -> impl Iterator<Item = &ContextValue> {
        self.keys.values()
    }

    /// True when the caller's account differs from the resource's.
    pub fn is_cross_account(&self) -> bool {
        match (self.principal.account(), self.resource_account.as_deref()) {
            (Some(caller), Some(owner)) => caller != owner,
            _ => false,
        }
    }
}

impl VariableSource for RequestContext {
    fn variable(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(v) if !v.multi && v.values.len() == 1 => Some(&v.values[0]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_principal_keys() {
        let ctx = RequestContext::new(
            Principal::AssumedRole {
                session_arn: "arn:aws:sts::222222222222:assumed-role/S3_Pics/pod".into(),
                role_arn: "arn:aws:iam::222222222222:role/S3_Pics".into(),
                account: "222222222222".into(),
                role_unique_id: Some("AROAEXAMPLE".into()),
            },
            "S3:GetObject",
            "arn:aws:s3:::pics/indoor-cat.jpg",
        );
        assert_eq!(ctx.action_lower(), "s3:getobject");
        assert_eq!(
            ctx.variable("aws:principalarn"),
            Some("arn:aws:iam::222222222222:role/S3_Pics")
        );
        assert_eq!(ctx.variable("aws:userid"), Some("AROAEXAMPLE:pod"));
        assert_eq!(ctx.variable("AWS:PrincipalType"), Some("AssumedRole"));
        assert_eq!(ctx.variable("aws:username"), None);
    }

    #[test]
    fn multi_valued_keys_are_not_variables() {
        let mut ctx = RequestContext::new(Principal::Anonymous, "s3:ListBucket", "*");
        ctx.set_multi("aws:TagKeys", ["a"]);
        assert_eq!(ctx.variable("aws:tagkeys"), None);
        assert!(ctx.get("AWS:TAGKEYS").unwrap().multi);
    }
}
