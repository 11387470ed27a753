//! Scenarios: a set of policy documents plus a request, as JSON. This is the file format of
//! `rolechain explain --request FILE` and of the evaluation corpus, so that every corpus case
//! can be replayed by hand with the CLI.
//!
//! ```json
//! {
//!   "policies": {
//!     "identity": [{"name": "read-pics", "document": {"Version": "2012-10-17", "Statement": []}}],
//!     "resource": {"name": "pics bucket policy", "kind": "resource", "document": {}},
//!     "boundary": {"name": "boundary", "document": {}},
//!     "session": [{"name": "session", "document": {}}]
//!   },
//!   "request": {
//!     "principal": "arn:aws:sts::111111111111:assumed-role/dev/pod",
//!     "action": "s3:GetObject",
//!     "resource": "arn:aws:s3:::pics/indoor-cat.jpg",
//!     "resource_account": "222222222222",
//!     "context": {"aws:SourceIp": "10.0.0.1", "aws:TagKeys": ["team"]},
//!     "principal_tags": {"team": "web"},
//!     "time": "2026-01-01T00:00:00Z"
//!   }
//! }
//! ```
//!
//! The principal is either a typed object (see [`Principal`]) or a shorthand string: an IAM or
//! STS ARN, a 12-digit account (its root user), `anonymous`, `service:NAME`, or
//! `federated:PROVIDER`. An assumed-role ARN's role is taken to have the path `/`; give the
//! typed form to use another path or a unique id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::arn::{is_account_id, IdentityArn};
use crate::context::{Principal, RequestContext};
use crate::eval::{evaluate, Decision, NamedPolicy, PolicySet};
use crate::policy::{Policy, PolicyError, PolicyKind};

/// Why a scenario cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file is not valid JSON or not of the expected shape.
    #[error("invalid scenario: {0}")]
    Shape(#[from] serde_json::Error),
    /// One of its policies is invalid.
    #[error("policy '{name}' is invalid: {error}")]
    Policy {
        /// The policy's name in the scenario.
        name: String,
        /// The validation error.
        error: PolicyError,
    },
    /// The principal string is not a recognised form.
    #[error("invalid principal '{0}': expected an IAM/STS ARN, a 12-digit account, anonymous, service:NAME or federated:PROVIDER")]
    Principal(String),
    /// The time is not RFC 3339.
    #[error("invalid time '{0}': expected RFC 3339, e.g. 2026-01-01T00:00:00Z")]
    Time(String),
    /// An IP address is malformed.
    #[error("invalid source_ip '{0}'")]
    SourceIp(String),
}

/// One policy document in a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// The name shown in traces.
    pub name: String,
    /// For the resource slot: `resource` (default) or `trust`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ResourceKind>,
    /// The policy JSON, as an object or as a string holding JSON.
    pub document: Value,
}

/// What kind of resource policy the resource slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A resource-based policy such as a bucket policy.
    Resource,
    /// A role trust policy.
    Trust,
}

/// The policies of a scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioPolicies {
    /// Identity-based policies.
    #[serde(default)]
    pub identity: Vec<PolicyDocument>,
    /// The resource-based or trust policy.
    #[serde(default)]
    pub resource: Option<PolicyDocument>,
    /// The permissions boundary.
    #[serde(default)]
    pub boundary: Option<PolicyDocument>,
    /// Session policies.
    #[serde(default)]
    pub session: Vec<PolicyDocument>,
}

/// The principal, typed or as a shorthand string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrincipalSpec {
    /// A shorthand string.
    Short(String),
    /// The typed form.
    Typed(Principal),
}

/// A context value: one string, or a list (multi-valued key). Numbers and booleans are taken
/// as their text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextSpec {
    /// A list: a multi-valued key.
    Many(Vec<Value>),
    /// A single value.
    One(Value),
}

/// The request of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRequest {
    /// The caller.
    pub principal: PrincipalSpec,
    /// The action, e.g. `s3:GetObject`.
    pub action: String,
    /// The resource ARN, or `*`.
    #[serde(default = "star")]
    pub resource: String,
    /// The account owning the resource; omit for same-account requests.
    #[serde(default)]
    pub resource_account: Option<String>,
    /// Extra context keys.
    #[serde(default)]
    pub context: BTreeMap<String, ContextSpec>,
    /// The caller's principal tags (`aws:PrincipalTag/KEY`).
    #[serde(default)]
    pub principal_tags: BTreeMap<String, String>,
    /// `aws:CurrentTime`; defaults to now.
    #[serde(default)]
    pub time: Option<String>,
    /// `aws:SourceIp`.
    #[serde(default)]
    pub source_ip: Option<String>,
    /// The caller's S3 canonical user id.
    #[serde(default)]
    pub canonical_user: Option<String>,
}

fn star() -> String {
    "*".to_string()
}

/// A complete scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// The policies.
    #[serde(default)]
    pub policies: ScenarioPolicies,
    /// The request.
    pub request: ScenarioRequest,
}

/// A scenario with its policies compiled, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    identity: Vec<NamedPolicy>,
    resource: Option<NamedPolicy>,
    boundary: Option<NamedPolicy>,
    session: Vec<NamedPolicy>,
    /// The request context.
    pub context: RequestContext,
}

impl Scenario {
    /// Parses a scenario from JSON text.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Compiles the policies and builds the request context.
    pub fn compile(&self) -> Result<Compiled, ScenarioError> {
        let compile =
            |doc: &PolicyDocument, kind: PolicyKind| -> Result<NamedPolicy, ScenarioError> {
                let policy = match &doc.document {
                    Value::String(text) => Policy::parse(text, kind),
                    other => Policy::from_json(other, kind),
                }
                .map_err(|error| ScenarioError::Policy {
                    name: doc.name.clone(),
                    error,
                })?;
                Ok(NamedPolicy::new(&doc.name, policy))
            };
        let p = &self.policies;
        let identity = p
            .identity
            .iter()
            .map(|d| compile(d, PolicyKind::Identity))
            .collect::<Result<_, _>>()?;
        let resource = p
            .resource
            .as_ref()
            .map(|d| {
                let kind = match d.kind {
                    Some(ResourceKind::Trust) => PolicyKind::Trust,
                    _ => PolicyKind::Resource,
                };
                compile(d, kind)
            })
            .transpose()?;
        let boundary = p
            .boundary
            .as_ref()
            .map(|d| compile(d, PolicyKind::Identity))
            .transpose()?;
        let session = p
            .session
            .iter()
            .map(|d| compile(d, PolicyKind::Identity))
            .collect::<Result<_, _>>()?;
        Ok(Compiled {
            identity,
            resource,
            boundary,
            session,
            context: self.request.context()?,
        })
    }
}

impl ScenarioRequest {
    /// Builds the request context.
    pub fn context(&self) -> Result<RequestContext, ScenarioError> {
        let principal = match &self.principal {
            PrincipalSpec::Typed(p) => p.clone(),
            PrincipalSpec::Short(s) => parse_principal(s)?,
        };
        let mut ctx = RequestContext::new(principal, &self.action, &self.resource);
        let now = match &self.time {
            Some(t) => {
                OffsetDateTime::parse(t, &Rfc3339).map_err(|_| ScenarioError::Time(t.clone()))?
            }
            None => OffsetDateTime::now_utc(),
        };
        ctx.set_time(now);
        if let Some(account) = &self.resource_account {
            ctx.set_resource_account(account);
        }
        ctx.set_principal_tags(&self.principal_tags);
        if let Some(ip) = &self.source_ip {
            let ip = ip
                .parse()
                .map_err(|_| ScenarioError::SourceIp(ip.clone()))?;
            ctx.set_source_ip(ip);
        }
        if let Some(id) = &self.canonical_user {
            ctx.set_canonical_user(id);
        }
        for (key, value) in &self.context {
            match value {
                ContextSpec::One(v) => {
                    ctx.set(key, &value_text(v));
                }
                ContextSpec::Many(vs) => {
                    ctx.set_multi(key, vs.iter().map(value_text));
                }
            }
        }
        Ok(ctx)
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses the shorthand principal forms described in the module docs.
pub fn parse_principal(s: &str) -> Result<Principal, ScenarioError> {
    if s == "anonymous" || s == "*" {
        return Ok(Principal::Anonymous);
    }
    if is_account_id(s) {
        return Ok(Principal::Root {
            account: s.to_string(),
        });
    }
    if let Some(name) = s.strip_prefix("service:") {
        return Ok(Principal::Service {
            name: name.to_string(),
        });
    }
    if let Some(provider) = s.strip_prefix("federated:") {
        return Ok(Principal::WebIdentity {
            provider: provider.to_string(),
        });
    }
    let identity: IdentityArn = s
        .parse()
        .map_err(|_| ScenarioError::Principal(s.to_string()))?;
    Ok(match identity {
        IdentityArn::Root { account, .. } => Principal::Root { account },
        IdentityArn::User { account, .. } => Principal::User {
            arn: s.to_string(),
            account,
            unique_id: None,
        },
        IdentityArn::AssumedRole {
            partition,
            account,
            role_name,
            ..
        } => Principal::AssumedRole {
            session_arn: s.to_string(),
            role_arn: format!("arn:{partition}:iam::{account}:role/{role_name}"),
            account,
            role_unique_id: None,
        },
        IdentityArn::FederatedUser { account, .. } => Principal::FederatedUser {
            arn: s.to_string(),
            account,
        },
        IdentityArn::Role { .. } | IdentityArn::OidcProvider { .. } => {
            return Err(ScenarioError::Principal(s.to_string()))
        }
    })
}

impl Compiled {
    /// Evaluates the request against the policies.
    pub fn evaluate(&self) -> Decision {
        let set = PolicySet {
            identity: &self.identity,
            resource: self.resource.as_ref(),
            boundary: self.boundary.as_ref(),
            session: &self.session,
        };
        evaluate(&set, &self.context)
    }

    /// The compiled policies in evaluation order, for printing statements in explanations.
    pub fn policies(&self) -> impl Iterator<Item = &NamedPolicy> {
        self.resource
            .iter()
            .chain(&self.identity)
            .chain(&self.boundary)
            .chain(&self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_principals() {
        assert_eq!(parse_principal("anonymous").unwrap(), Principal::Anonymous);
        assert!(matches!(
            parse_principal("111111111111").unwrap(),
            Principal::Root { .. }
        ));
        assert!(matches!(
            parse_principal("arn:aws:sts::111111111111:assumed-role/r/s").unwrap(),
            Principal::AssumedRole { ref role_arn, .. } if role_arn == "arn:aws:iam::111111111111:role/r"
        ));
        assert!(parse_principal("arn:aws:iam::111111111111:role/r").is_err());
        assert!(parse_principal("bob").is_err());
    }

    #[test]
    fn evaluates_a_scenario() {
        let text = r#"{
          "policies": {"identity": [{"name": "p", "document":
            {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::pics/${aws:username}/*"}}}]},
          "request": {"principal": "arn:aws:iam::111111111111:user/alice",
                      "action": "s3:GetObject", "resource": "arn:aws:s3:::pics/alice/cat.jpg"}
        }"#;
        let decision = Scenario::from_json(text)
            .unwrap()
            .compile()
            .unwrap()
            .evaluate();
        assert!(decision.is_allowed(), "{decision:?}");
    }

    #[test]
    fn invalid_policy_is_named() {
        let text = r#"{"policies": {"identity": [{"name": "broken", "document": {"Statement": 3}}]},
                       "request": {"principal": "anonymous", "action": "s3:GetObject"}}"#;
        let err = Scenario::from_json(text).unwrap().compile().unwrap_err();
        assert!(
            err.to_string().contains("policy 'broken' is invalid"),
            "{err}"
        );
    }
}
