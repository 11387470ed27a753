//! Temporary credentials as the agent holds and serves them.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One set of temporary credentials: what a hop of a chain returns and what a pod is given.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret_access_key: String,
    /// `SessionToken` (`Token` on the wire to the pod).
    pub session_token: String,
    /// When they stop working.
    pub expiration: SystemTime,
    /// The account of the role they belong to (from the assumed role's ARN).
    pub account_id: String,
}

// Never print a secret: Debug shows the key id and expiry only.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("expiration", &rfc3339(self.expiration))
            .finish_non_exhaustive()
    }
}

/// The body the container credential providers of the AWS SDKs read (the EKS Pod Identity
/// agent's shape).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    account_id: &'a str,
    expiration: String,
}

impl Credentials {
    /// The same credentials for the AWS SDK (signing a call with them), named `provider`.
    pub fn to_sdk(&self, provider: &'static str) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            Some(self.session_token.clone()),
            Some(self.expiration),
            provider,
        )
    }

    /// The JSON body of a `/v1/credentials` answer.
    pub fn to_wire_json(&self) -> Vec<u8> {
        let wire = WireCredentials {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            token: &self.session_token,
            account_id: &self.account_id,
            expiration: rfc3339(self.expiration),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// `at` in RFC 3339 (UTC, whole seconds), as the SDKs parse `Expiration`.
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// The account id in a role or assumed-role ARN (`arn:PARTITION:SERVICE::ACCOUNT:…`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_wire_shape_is_the_eks_agents() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            account_id: "222222222222".into(),
        };
        let body: serde_json::Value = serde_json::from_slice(&creds.to_wire_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "AccessKeyId": "ASIAEXAMPLE",
                "SecretAccessKey": "secret",
                "Token": "token",
                "AccountId": "222222222222",
                "Expiration": "2027-01-15T08:00:00Z",
            })
        );
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("token"),
            "{debug}"
        );
    }

    #[test]
    fn accounts_come_from_arns() {
        assert_eq!(
            account_of_arn("arn:aws:sts::222222222222:assumed-role/r/s"),
            Some("222222222222")
        );
        assert_eq!(account_of_arn("arn:aws:iam::22:role/r"), None);
        assert_eq!(account_of_arn("nonsense"), None);
    }
}
