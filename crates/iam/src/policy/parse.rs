//! Parsing a JSON policy document into [`Policy`]: the field-by-field validation, with the
//! messages IAM answers a malformed document with.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    ActionClause, AwsPrincipal, Effect, Policy, PolicyError, PolicyKind, PrincipalClause,
    Principals, ResourceClause, Statement, Version,
};
use crate::arn::{is_account_id, IdentityArn};
use crate::condition::{Condition, Operator};
use crate::pattern::{ArnPattern, Pattern, Syntax};

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
