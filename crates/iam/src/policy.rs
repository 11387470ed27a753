//! The policy language: parsing JSON policy documents into a compiled form, with IAM's
//! validation messages and size quotas.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::arn::{is_account_id, IdentityArn};
use crate::condition::{Condition, Operator};
use crate::pattern::{ArnPattern, Pattern, Syntax};

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

impl Policy {
    /// Parses and validates a policy document for the given attachment kind.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            detail: format!(
                "The document is not valid JSON: {} at line {} column {}.",
                json_error_kind(&e),
                e.line(),
                e.column()
            ),
        })?;
        Policy::from_json(&value, kind)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_json(value: &Value, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let Value::Object(top) = value else {
            return Err(PolicyError::Syntax {
                detail: "The policy document must be a JSON object.".into(),
            });
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::Syntax {
                    detail: format!(
                        "Unknown field {key} at the top level (expected Version, Id, Statement)."
                    ),
                });
            }
        }
        let version = match top.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(other) => {
                return Err(PolicyError::at(
                    "Version",
                    format!("The policy failed legacy parsing: Version must be \"2012-10-17\" or \"2008-10-17\", not {other}"),
                ))
            }
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::at("Id", "Id must be a string")),
        };
        let statements = match top.get("Statement") {
            None => {
                return Err(PolicyError::at(
                    "Statement",
                    "Missing required field Statement",
                ))
            }
            Some(Value::Object(one)) => vec![one],
            Some(Value::Array(many)) => many
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    Value::Object(o) => Ok(o),
                    _ => Err(PolicyError::at(
                        format!("Statement[{i}]"),
                        "Each statement must be a JSON object",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(PolicyError::at(
                    "Statement",
                    "Statement must be an object or an array of objects",
                ))
            }
        };
        if statements.is_empty() {
            return Err(PolicyError::at(
                "Statement",
                "Policy document must contain at least one statement",
            ));
        }
        let mut sids = HashSet::new();
        let parsed = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let st = parse_statement(s, &format!("Statement[{i}]"), kind, version)?;
                if let Some(sid) = &st.sid {
                    if !sids.insert(sid.clone()) {
                        return Err(PolicyError::at(
                            format!("Statement[{i}].Sid"),
                            format!("Statement IDs (SID) in a single policy must be unique: \"{sid}\" is repeated"),
                        ));
                    }
                }
                Ok(st)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            version,
            id,
            statements: parsed,
        })
    }
}

fn json_error_kind(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the caller reports position itself.
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// One string or a non-empty list of strings; numbers and booleans are taken as their text,
/// as IAM does for condition values.
fn string_list(
    value: &Value,
    element: &str,
    allow_scalars: bool,
) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| -> Result<String, PolicyError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if allow_scalars => Ok(n.to_string()),
            Value::Bool(b) if allow_scalars => Ok(b.to_string()),
            other => Err(PolicyError::at(
                element,
                format!(
                    "Expected a string or a list of strings, found {}",
                    json_type(other)
                ),
            )),
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError::at(element, "The list must not be empty"))
        }
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn parse_statement(
    s: &Map<String, Value>,
    at: &str,
    kind: PolicyKind,
    version: Version,
) -> Result<Statement, PolicyError> {
    for key in s.keys() {
        if !STATEMENT_FIELDS.contains(&key.as_str()) {
            return Err(PolicyError::Syntax {
                detail: format!("Unknown field {key} in {at}."),
            });
        }
    }
    let variables = version == Version::V2012_10_17;
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(sid)) => {
            if kind == PolicyKind::Identity && !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PolicyError::at(
                    format!("{at}.Sid"),
                    format!("Statement IDs (SID) must be alpha-numeric: \"{sid}\""),
                ));
            }
            Some(Arc::from(sid.as_str()))
        }
        Some(_) => return Err(PolicyError::at(format!("{at}.Sid"), "Sid must be a string")),
    };
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::at(
                format!("{at}.Effect"),
                format!("Invalid effect: {other} (expected \"Allow\" or \"Deny\")"),
            ))
        }
        None => return Err(PolicyError::at(at, "Missing required field Effect")),
    };
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::at(
                at,
                "A statement cannot contain both Principal and NotPrincipal",
            ))
        }
        (Some(p), None) => Some(PrincipalClause::Principal(parse_principals(
            p,
            &format!("{at}.Principal"),
        )?)),
        (None, Some(p)) => Some(PrincipalClause::NotPrincipal(parse_principals(
            p,
            &format!("{at}.NotPrincipal"),
        )?)),
        (None, None) => None,
    };
    match (kind, &principal) {
        (PolicyKind::Identity, Some(_)) => {
            return Err(PolicyError::at(
                at,
                "Policy document should not specify a principal.",
            ))
        }
        (PolicyKind::Resource | PolicyKind::Trust, None) => {
            return Err(PolicyError::at(at, "Missing required field Principal"))
        }
        _ => {}
    }
    let action = match (s.get("Action"), s.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::at(
                at,
                "A statement cannot contain both Action and NotAction",
            ))
        }
        (Some(a), None) => ActionClause::Action(parse_actions(a, &format!("{at}.Action"))?),
        (None, Some(a)) => ActionClause::NotAction(parse_actions(a, &format!("{at}.NotAction"))?),
        (None, None) => {
            return Err(PolicyError::at(
                at,
                "Policy statement must contain actions.",
            ))
        }
    };
    let syntax = Syntax {
        wildcards: true,
        variables,
    };
    let resource = match (s.get("Resource"), s.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::at(
                at,
                "A statement cannot contain both Resource and NotResource",
            ))
        }
        (Some(r), None) => Some(ResourceClause::Resource(parse_resources(
            r,
            &format!("{at}.Resource"),
            syntax,
        )?)),
        (None, Some(r)) => Some(ResourceClause::NotResource(parse_resources(
            r,
            &format!("{at}.NotResource"),
            syntax,
        )?)),
        (None, None) => None,
    };
    match (kind, &resource) {
        (PolicyKind::Trust, Some(_)) => {
            return Err(PolicyError::at(at, "Has prohibited field Resource"))
        }
        (PolicyKind::Identity | PolicyKind::Resource, None) => {
            return Err(PolicyError::at(
                at,
                "Policy statement must contain resources.",
            ))
        }
        _ => {}
    }
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c, &format!("{at}.Condition"), variables)?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

fn parse_actions(value: &Value, at: &str) -> Result<Vec<Pattern>, PolicyError> {
    let syntax = Syntax {
        wildcards: true,
        variables: false,
    };
    string_list(value, at, false)?
        .iter()
        .map(|a| {
            if a != "*" {
                // Action names are ASCII; refusing others keeps case-insensitive matching
                // to ASCII folding on both sides.
                if !a.is_ascii() {
                    return Err(PolicyError::at(
                        at,
                        format!("Action \"{a}\" contains characters that are not ASCII"),
                    ));
                }
                let valid_vendor = a.split_once(':').is_some_and(|(vendor, name)| {
                    !vendor.is_empty()
                        && !name.is_empty()
                        && vendor
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !valid_vendor {
                    return Err(PolicyError::at(
                        at,
                        format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Found \"{a}\""),
                    ));
                }
            }
            Pattern::compile(a, syntax, true).map_err(|e| PolicyError::at(at, e.0))
        })
        .collect()
}

fn parse_resources(
    value: &Value,
    at: &str,
    syntax: Syntax,
) -> Result<Vec<ArnPattern>, PolicyError> {
    string_list(value, at, false)?
        .iter()
        .map(|r| {
            if r != "*" && !r.starts_with("arn:") {
                return Err(PolicyError::at(
                    at,
                    format!("Resource {r} must be in ARN format or \"*\"."),
                ));
            }
            ArnPattern::compile(r, syntax).map_err(|e| PolicyError::at(at, e.0))
        })
        .collect()
}

fn invalid_principal(at: &str, kind: &str, value: &str) -> PolicyError {
    PolicyError::at(
        at,
        format!("Invalid principal in policy: \"{kind}\":\"{value}\""),
    )
}

fn is_unique_id(s: &str) -> bool {
    let known_prefix = ["AIDA", "AROA", "AGPA", "ANPA", "AIPA"]
        .iter()
        .any(|p| s.starts_with(p));
    known_prefix
        && (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn parse_principals(value: &Value, at: &str) -> Result<Principals, PolicyError> {
    let mut out = Principals::default();
    let map = match value {
        Value::String(s) if s == "*" => {
            out.everyone = true;
            return Ok(out);
        }
        Value::Object(map) if !map.is_empty() => map,
        other => {
            return Err(PolicyError::at(
                at,
                format!("Invalid principal in policy: expected \"*\" or an object with AWS, Federated, Service or CanonicalUser, found {}", json_type(other)),
            ))
        }
    };
    for (kind, values) in map {
        let values = string_list(values, &format!("{at}.{kind}"), false)?;
        for v in values {
            match kind.as_str() {
                "AWS" => {
                    if v == "*" {
                        out.everyone = true;
                    } else {
                        out.aws.push(parse_aws_principal(&v).ok_or_else(|| {
                            invalid_principal(at, kind, &v)
                        })?);
                    }
                }
                "Federated" => {
                    let ok = if v.starts_with("arn:") {
                        matches!(v.parse::<IdentityArn>(), Ok(IdentityArn::OidcProvider { .. }))
                            || v.contains(":saml-provider/")
                    } else {
                        !v.is_empty() && !v.contains(['*', '?']) && v.contains('.')
                    };
                    if !ok {
                        return Err(invalid_principal(at, kind, &v));
                    }
                    out.federated.push(v);
                }
                "Service" => {
                    if v.is_empty() || v.contains(['*', '?', ' ']) {
                        return Err(invalid_principal(at, kind, &v));
                    }
                    out.service.push(v);
                }
                "CanonicalUser" => {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid_principal(at, kind, &v));
                    }
                    out.canonical_user.push(v.to_ascii_lowercase());
                }
                other => {
                    return Err(PolicyError::at(
                        at,
                        format!("Invalid principal in policy: unknown principal type \"{other}\" (expected AWS, Federated, Service or CanonicalUser)"),
                    ))
                }
            }
        }
    }
    Ok(out)
}

fn parse_aws_principal(v: &str) -> Option<AwsPrincipal> {
    // IAM User Guide, Principal element: "You cannot use a wildcard to match part of a
    // principal name or ARN" (a bare "*" is handled by the caller).
    if v.contains(['*', '?']) {
        return None;
    }
    if is_account_id(v) {
        return Some(AwsPrincipal::Account(v.to_string()));
    }
    if is_unique_id(v) {
        return Some(AwsPrincipal::UniqueId(v.to_string()));
    }
    match v.parse::<IdentityArn>().ok()? {
        IdentityArn::Root { account, .. } => Some(AwsPrincipal::Account(account)),
        IdentityArn::User { .. } => Some(AwsPrincipal::User(v.to_string())),
        IdentityArn::Role { .. } => Some(AwsPrincipal::Role(v.to_string())),
        IdentityArn::AssumedRole { .. } => Some(AwsPrincipal::AssumedRole(v.to_string())),
        IdentityArn::FederatedUser { .. } => Some(AwsPrincipal::FederatedUser(v.to_string())),
        IdentityArn::OidcProvider { .. } => None,
    }
}

fn parse_conditions(
    value: &Value,
    at: &str,
    variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(PolicyError::at(
            at,
            "Condition must be an object of operators",
        ));
    };
    let mut out = Vec::new();
    for (name, block) in operators {
        let here = format!("{at}.{name}");
        let operator = Operator::parse(name)
            .ok_or_else(|| PolicyError::at(&here, format!("Invalid Condition type : {name}")))?;
        let Value::Object(keys) = block else {
            return Err(PolicyError::at(
                &here,
                format!("Condition operator {name} must map condition keys to values"),
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::at(
                &here,
                format!("Condition operator {name} has no keys"),
            ));
        }
        for (key, values) in keys {
            if key.is_empty() {
                return Err(PolicyError::at(&here, "Condition key must not be empty"));
            }
            let key_at = format!("{here}.{key}");
            let values = string_list(values, &key_at, true)?;
            let condition = Condition::new(operator, key, values, variables)
                .map_err(|e| PolicyError::at(&key_at, e.0))?;
            out.push(condition);
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, kind: PolicyKind) -> String {
        Policy::parse(text, kind).unwrap_err().to_string()
    }

    #[test]
    fn statement_object_or_array() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        let many = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["*"]}]}"#;
        assert_eq!(
            Policy::parse(one, PolicyKind::Identity)
                .unwrap()
                .statements
                .len(),
            1
        );
        assert_eq!(
            Policy::parse(many, PolicyKind::Identity)
                .unwrap()
                .statements
                .len(),
            1
        );
    }

    #[test]
    fn errors_name_the_element() {
        assert!(err("{", PolicyKind::Identity).starts_with("Syntax errors in policy."));
        assert!(err(
            r#"{"Statement":[{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#,
            PolicyKind::Identity
        )
        .contains("Statement[0].Effect"));
        assert!(err(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}"#,
            PolicyKind::Identity
        )
        .contains("should not specify a principal"));
        assert!(err(
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust
        )
        .contains("Missing required field Principal"));
        assert!(err(
            r#"{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
            PolicyKind::Identity
        )
        .contains("prefaced by a vendor"));
        assert!(err(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
            PolicyKind::Identity
        )
        .contains("must be in ARN format"));
        let bad_op = err(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqual":{"a:b":"c"}}}]}"#,
            PolicyKind::Identity,
        );
        assert!(
            bad_op.contains("Invalid Condition type : StringEqual"),
            "{bad_op}"
        );
        assert!(
            bad_op.contains("Statement[0].Condition.StringEqual"),
            "{bad_op}"
        );
        assert!(err(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}]}"#, PolicyKind::Trust)
            .contains(r#"Invalid principal in policy: "AWS":"bob""#));
    }

    #[test]
    fn non_ascii_actions_are_refused() {
        // The Kelvin sign lower-cases to 'k' under Unicode rules; it must not grant kms:ListKeys.
        let kelvin = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"kms:List\u{212A}eys\",\"Resource\":\"*\"}}";
        assert!(err(kelvin, PolicyKind::Identity).contains("not ASCII"));
    }

    #[test]
    fn size_quota() {
        assert_eq!(policy_size(" { \"a\" :\n 1 } "), 7);
        let e = SizeQuota::ManagedPolicy.check(6145).unwrap_err();
        assert_eq!(e.code(), "LimitExceeded");
        assert_eq!(e.to_string(), "Cannot exceed quota for PolicySize: 6144");
        assert!(SizeQuota::TrustPolicy.check(2048).is_ok());
    }
}
