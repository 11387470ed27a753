//! Resource and trust policies whose `AWS` principals are stored by unique id, as IAM does.
//!
//! IAM resolves a principal such as `arn:aws:iam::111111111111:role/X` to the role's unique id
//! (`AROA…`) when the policy is saved. While the role exists the policy reads back with its ARN;
//! once it is deleted the raw id shows, and a new role with the same name (a new id) is not
//! matched: the grant was for the old principal. The twin reproduces this for the accounts it
//! knows; principals in other accounts are stored as written.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StateError};

/// A resource or trust policy as stored: the document with `AWS` principals of known roles and
/// users replaced by their unique ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// The document. When no principal was substituted it is the text as submitted; otherwise
    /// it is re-serialized JSON with unique ids in place of ARNs.
    pub document: String,
    /// The unique ids among the `AWS` principals (substituted or written as ids): rendering
    /// looks only these up, and a document without any is shown verbatim.
    #[serde(default)]
    pub unique_ids: Vec<String>,
}

impl StoredPolicy {
    /// The compiled policy for evaluation. Principals stay unique ids, so they match only callers
    /// whose `role_unique_id`/`unique_id` is that id (see `iam::Principal`).
    pub fn to_policy(&self, kind: iam::PolicyKind) -> Result<iam::Policy> {
        iam::Policy::parse(&self.document, kind).map_err(|e| StateError::Corrupt {
            table: "policy document",
            detail: e.to_string(),
        })
    }
}

/// The message IAM gives for a principal that names no existing entity.
pub(crate) fn invalid_principal(value: &str) -> StateError {
    StateError::MalformedPolicyDocument(format!("Invalid principal in policy: \"AWS\":\"{value}\""))
}

/// Whether `s` has the shape of an IAM unique id of a user or role.
pub(crate) fn is_principal_unique_id(s: &str) -> bool {
    (s.starts_with("AROA") || s.starts_with("AIDA"))
        && (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Calls `f` on every `AWS` principal string of every statement's `Principal` and
/// `NotPrincipal`, replacing it with `f`'s answer when that is `Some`. Returns whether anything
/// was replaced.
pub(crate) fn map_aws_principals(
    doc: &mut Value,
    f: &mut dyn FnMut(&str) -> Result<Option<String>>,
) -> Result<bool> {
    let mut changed = false;
    let statements: Vec<&mut Value> = match doc.get_mut("Statement") {
        Some(Value::Array(list)) => list.iter_mut().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Ok(false),
    };
    for statement in statements {
        for element in ["Principal", "NotPrincipal"] {
            let Some(aws) = statement
                .get_mut(element)
                .and_then(|p| p.as_object_mut())
                .and_then(|p| p.get_mut("AWS"))
            else {
                continue;
            };
            let values: Vec<&mut Value> = match aws {
                Value::Array(list) => list.iter_mut().collect(),
                one => vec![one],
            };
            for v in values {
                if let Value::String(s) = v {
                    if let Some(new) = f(s)? {
                        if *s != new {
                            *s = new;
                            changed = true;
                        }
                    }
                }
            }
        }
    }
    Ok(changed)
}

/// The unique ids among a document's `AWS` principals.
pub(crate) fn unique_ids_in(doc: &mut Value) -> Vec<String> {
    let mut ids = Vec::new();
    // The closure never fails and never replaces: this is a read-only walk.
    let _ = map_aws_principals(doc, &mut |s| {
        if is_principal_unique_id(s) && !ids.iter().any(|i| i == s) {
            ids.push(s.to_string());
        }
        Ok(None)
    });
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_object_and_array_forms() {
        let mut doc: Value = serde_json::from_str(
            r#"{"Statement":[{"Principal":{"AWS":"a"}},{"NotPrincipal":{"AWS":["b","c"]}},{"Principal":"*"}]}"#,
        )
        .unwrap();
        let mut seen = Vec::new();
        let changed = map_aws_principals(&mut doc, &mut |s| {
            seen.push(s.to_string());
            Ok((s == "b").then(|| "B".to_string()))
        })
        .unwrap();
        assert!(changed);
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!(doc["Statement"][1]["NotPrincipal"]["AWS"][0], "B");
        let mut single: Value =
            serde_json::from_str(r#"{"Statement":{"Principal":{"AWS":"AROAAAAAAAAAAAAAAAAAA"}}}"#)
                .unwrap();
        assert_eq!(unique_ids_in(&mut single), ["AROAAAAAAAAAAAAAAAAAA"]);
    }
}
