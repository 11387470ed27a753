//! Amazon Resource Names: parsing, printing, and the typed IAM/STS identities rolechain uses.

use std::fmt;
use std::str::FromStr;

/// An AWS partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Partition {
    /// `aws`: the commercial regions.
    #[serde(rename = "aws")]
    Aws,
    /// `aws-cn`: the China regions.
    #[serde(rename = "aws-cn")]
    AwsCn,
    /// `aws-us-gov`: AWS GovCloud (US).
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
}

impl Partition {
    /// The partition's name as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Partition {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        match s {
            "aws" => Ok(Partition::Aws),
            "aws-cn" => Ok(Partition::AwsCn),
            "aws-us-gov" => Ok(Partition::AwsUsGov),
            other => Err(ArnError::UnknownPartition(other.to_string())),
        }
    }
}

/// Why a string is not an acceptable ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// Fewer than six colon-separated parts, or no `arn:` prefix.
    #[error("'{0}' is not an ARN: expected arn:partition:service:region:account-id:resource")]
    NotAnArn(String),
    /// The partition is not one of aws, aws-cn, aws-us-gov.
    #[error("unknown partition '{0}' (expected aws, aws-cn or aws-us-gov)")]
    UnknownPartition(String),
    /// The service part is empty.
    #[error("the ARN '{0}' has an empty service")]
    EmptyService(String),
    /// The account part is present but not 12 digits.
    #[error("'{0}' is not a 12-digit AWS account ID")]
    BadAccount(String),
    /// The ARN is well formed but is not the kind of identity expected.
    #[error("'{arn}' is not {expected}")]
    UnexpectedKind {
        /// The ARN.
        arn: String,
        /// What was expected, e.g. "an IAM role ARN".
        expected: &'static str,
    },
}

/// A parsed ARN: `arn:partition:service:region:account-id:resource`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    /// The partition.
    pub partition: Partition,
    /// The service namespace, e.g. `iam`, `sts`, `s3`.
    pub service: String,
    /// The region; empty for global services.
    pub region: String,
    /// The 12-digit account; empty for S3 buckets.
    pub account: String,
    /// Everything after the fifth colon; may itself contain colons.
    pub resource: String,
}

/// True for a 12-digit AWS account ID.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(ArnError::NotAnArn(s.to_string()));
        };
        let partition = partition.parse()?;
        if service.is_empty() {
            return Err(ArnError::EmptyService(s.to_string()));
        }
        if !account.is_empty() && !is_account_id(account) {
            return Err(ArnError::BadAccount(account.to_string()));
        }
        Ok(Arn {
            partition,
            service: service.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            resource: resource.to_string(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// An IAM or STS identity named by an ARN, as it may appear in a `Principal` element or as the
/// caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityArn {
    /// `arn:P:iam::ACCOUNT:root`: the account (in a policy) or its root user (as a caller).
    Root {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
    },
    /// `arn:P:iam::ACCOUNT:user/PATH/NAME`.
    User {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
        /// Path, `/` or `/a/b/`.
        path: String,
        /// User name.
        name: String,
    },
    /// `arn:P:iam::ACCOUNT:role/PATH/NAME`.
    Role {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
        /// Path, `/` or `/a/b/`.
        path: String,
        /// Role name.
        name: String,
    },
    /// `arn:P:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION-NAME` (no role path, as STS prints it).
    AssumedRole {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
        /// Role name.
        role_name: String,
        /// Session name.
        session_name: String,
    },
    /// `arn:P:sts::ACCOUNT:federated-user/NAME`.
    FederatedUser {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
        /// Federated user name.
        name: String,
    },
    /// `arn:P:iam::ACCOUNT:oidc-provider/HOST/PATH`.
    OidcProvider {
        /// Partition.
        partition: Partition,
        /// Account ID.
        account: String,
        /// Issuer URL without `https://`.
        url: String,
    },
}

impl IdentityArn {
    /// The account the identity belongs to.
    pub fn account(&self) -> &str {
        match self {
            IdentityArn::Root { account, .. }
            | IdentityArn::User { account, .. }
            | IdentityArn::Role { account, .. }
            | IdentityArn::AssumedRole { account, .. }
            | IdentityArn::FederatedUser { account, .. }
            | IdentityArn::OidcProvider { account, .. } => account,
        }
    }

    /// The partition.
    pub fn partition(&self) -> Partition {
        match self {
            IdentityArn::Root { partition, .. }
            | IdentityArn::User { partition, .. }
            | IdentityArn::Role { partition, .. }
            | IdentityArn::AssumedRole { partition, .. }
            | IdentityArn::FederatedUser { partition, .. }
            | IdentityArn::OidcProvider { partition, .. } => *partition,
        }
    }
}

/// Splits `path/name` resources (`role/a/b/name`) into (`/a/b/`, `name`).
fn split_path(rest: &str) -> Option<(String, String)> {
    let (path, name) = match rest.rsplit_once('/') {
        Some((dirs, name)) => (format!("/{dirs}/"), name),
        None => ("/".to_string(), rest),
    };
    if name.is_empty() || path.contains("//") {
        return None;
    }
    Some((path, name.to_string()))
}

impl FromStr for IdentityArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let arn: Arn = s.parse()?;
        let unexpected = || ArnError::UnexpectedKind {
            arn: s.to_string(),
            expected: "an IAM or STS identity ARN",
        };
        if arn.account.is_empty() || !arn.region.is_empty() {
            return Err(unexpected());
        }
        let Arn {
            partition,
            service,
            account,
            resource,
            ..
        } = arn;
        let (kind, rest) = resource.split_once('/').unwrap_or((resource.as_str(), ""));
        let identity = match (service.as_str(), kind) {
            ("iam", "root") if rest.is_empty() => IdentityArn::Root { partition, account },
            ("iam", "user") => {
                let (path, name) = split_path(rest).ok_or_else(unexpected)?;
                IdentityArn::User {
                    partition,
                    account,
                    path,
                    name,
                }
            }
            ("iam", "role") => {
                let (path, name) = split_path(rest).ok_or_else(unexpected)?;
                IdentityArn::Role {
                    partition,
                    account,
                    path,
                    name,
                }
            }
            ("iam", "oidc-provider") if !rest.is_empty() => IdentityArn::OidcProvider {
                partition,
                account,
                url: rest.to_string(),
            },
            ("sts", "assumed-role") => {
                let (role_name, session_name) = rest.split_once('/').ok_or_else(unexpected)?;
                if role_name.is_empty() || session_name.is_empty() {
                    return Err(unexpected());
                }
                IdentityArn::AssumedRole {
                    partition,
                    account,
                    role_name: role_name.to_string(),
                    session_name: session_name.to_string(),
                }
            }
            ("sts", "federated-user") if !rest.is_empty() && !rest.contains('/') => {
                IdentityArn::FederatedUser {
                    partition,
                    account,
                    name: rest.to_string(),
                }
            }
            _ => return Err(unexpected()),
        };
        Ok(identity)
    }
}

impl fmt::Display for IdentityArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityArn::Root { partition, account } => {
                write!(f, "arn:{partition}:iam::{account}:root")
            }
            IdentityArn::User {
                partition,
                account,
                path,
                name,
            } => write!(f, "arn:{partition}:iam::{account}:user{path}{name}"),
            IdentityArn::Role {
                partition,
                account,
                path,
                name,
            } => write!(f, "arn:{partition}:iam::{account}:role{path}{name}"),
            IdentityArn::AssumedRole {
                partition,
                account,
                role_name,
                session_name,
            } => write!(
                f,
                "arn:{partition}:sts::{account}:assumed-role/{role_name}/{session_name}"
            ),
            IdentityArn::FederatedUser {
                partition,
                account,
                name,
            } => write!(f, "arn:{partition}:sts::{account}:federated-user/{name}"),
            IdentityArn::OidcProvider {
                partition,
                account,
                url,
            } => write!(f, "arn:{partition}:iam::{account}:oidc-provider/{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "arn:aws:iam::111111111111:root",
            "arn:aws:iam::111111111111:user/alice",
            "arn:aws-cn:iam::111111111111:user/dev/ops/alice",
            "arn:aws:iam::222222222222:role/S3_Pics",
            "arn:aws-us-gov:iam::222222222222:role/team/a/reader",
            "arn:aws:sts::222222222222:assumed-role/S3_Pics/pod-1",
            "arn:aws:sts::222222222222:federated-user/bob",
            "arn:aws:iam::111111111111:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
        ] {
            let id: IdentityArn = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
            let arn: Arn = s.parse().unwrap();
            assert_eq!(arn.to_string(), s);
        }
    }

    #[test]
    fn role_path_and_name() {
        let id: IdentityArn = "arn:aws:iam::222222222222:role/a/b/reader".parse().unwrap();
        assert!(
            matches!(id, IdentityArn::Role { ref path, ref name, .. } if path == "/a/b/" && name == "reader")
        );
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            "arn:aws:iam".parse::<Arn>(),
            Err(ArnError::NotAnArn(_))
        ));
        assert!(matches!(
            "arn:aws-mars:iam::111111111111:root".parse::<Arn>(),
            Err(ArnError::UnknownPartition(_))
        ));
        assert!(matches!(
            "arn:aws:iam::1111:root".parse::<Arn>(),
            Err(ArnError::BadAccount(_))
        ));
        assert!("arn:aws:s3:::bucket".parse::<IdentityArn>().is_err());
        assert!("arn:aws:iam::111111111111:role/"
            .parse::<IdentityArn>()
            .is_err());
        assert!("arn:aws:sts::111111111111:assumed-role/r"
            .parse::<IdentityArn>()
            .is_err());
        assert!("arn:aws:iam:us-east-1:111111111111:root"
            .parse::<IdentityArn>()
            .is_err());
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901a"));
    }
}
