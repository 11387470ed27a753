//! Condition operators: parsing of `"Operator": {"key": values}` and evaluation with AWS's
//! rules for missing keys, negation, `…IfExists`, and the `ForAllValues:`/`ForAnyValue:` set
//! qualifiers.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use serde::Serialize;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::context::RequestContext;
use crate::pattern::{ArnPattern, Pattern, Syntax, Unresolved};

/// The comparison a condition operator performs, before negation and modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    /// Exact, case-sensitive string equality.
    StringEquals,
    /// Case-insensitive string equality.
    StringEqualsIgnoreCase,
    /// String glob with `*` and `?`.
    StringLike,
    /// Numeric equality.
    NumericEquals,
    /// `<`.
    NumericLessThan,
    /// `<=`.
    NumericLessThanEquals,
    /// `>`.
    NumericGreaterThan,
    /// `>=`.
    NumericGreaterThanEquals,
    /// Date equality.
    DateEquals,
    /// Request date earlier than the policy's.
    DateLessThan,
    /// Request date earlier than or equal to the policy's.
    DateLessThanEquals,
    /// Request date later than the policy's.
    DateGreaterThan,
    /// Request date later than or equal to the policy's.
    DateGreaterThanEquals,
    /// Boolean equality (`true`/`false`).
    Bool,
    /// Base64-decoded byte equality.
    BinaryEquals,
    /// Address within a CIDR range.
    IpAddress,
    /// ARN equality (with per-part wildcards, like `ArnLike`).
    ArnEquals,
    /// ARN glob matched per part.
    ArnLike,
    /// Presence check.
    Null,
}

/// `ForAllValues:` or `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SetQualifier {
    /// Every request value must match.
    ForAllValues,
    /// At least one request value must match.
    ForAnyValue,
}

/// A full condition operator, e.g. `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// The underlying comparison.
    pub comparison: Comparison,
    /// True for the `Not` forms (`StringNotEquals`, `NotIpAddress`, `ArnNotLike`, …).
    pub negated: bool,
    /// True with the `IfExists` suffix.
    pub if_exists: bool,
    /// The set qualifier, if any.
    pub qualifier: Option<SetQualifier>,
}

const OPERATORS: &[(&str, Comparison, bool)] = &[
    ("StringEquals", Comparison::StringEquals, false),
    ("StringNotEquals", Comparison::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Comparison::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Comparison::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Comparison::StringLike, false),
    ("StringNotLike", Comparison::StringLike, true),
    ("NumericEquals", Comparison::NumericEquals, false),
    ("NumericNotEquals", Comparison::NumericEquals, true),
    ("NumericLessThan", Comparison::NumericLessThan, false),
    (
        "NumericLessThanEquals",
        Comparison::NumericLessThanEquals,
        false,
    ),
    ("NumericGreaterThan", Comparison::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Comparison::NumericGreaterThanEquals,
        false,
    ),
    ("DateEquals", Comparison::DateEquals, false),
    ("DateNotEquals", Comparison::DateEquals, true),
    ("DateLessThan", Comparison::DateLessThan, false),
    ("DateLessThanEquals", Comparison::DateLessThanEquals, false),
    ("DateGreaterThan", Comparison::DateGreaterThan, false),
    (
        "DateGreaterThanEquals",
        Comparison::DateGreaterThanEquals,
        false,
    ),
    ("Bool", Comparison::Bool, false),
    ("BinaryEquals", Comparison::BinaryEquals, false),
    ("IpAddress", Comparison::IpAddress, false),
    ("NotIpAddress", Comparison::IpAddress, true),
    ("ArnEquals", Comparison::ArnEquals, false),
    ("ArnNotEquals", Comparison::ArnEquals, true),
    ("ArnLike", Comparison::ArnLike, false),
    ("ArnNotLike", Comparison::ArnLike, true),
    ("Null", Comparison::Null, false),
];

impl Operator {
    /// Parses an operator name. Operator names are case-sensitive in IAM, as here.
    pub fn parse(name: &str) -> Option<Operator> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else {
            (None, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let &(_, comparison, negated) = OPERATORS.iter().find(|(n, _, _)| *n == base)?;
        if comparison == Comparison::Null && (if_exists || qualifier.is_some()) {
            return None;
        }
        Some(Operator {
            comparison,
            negated,
            if_exists,
            qualifier,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        let name = OPERATORS
            .iter()
            .find(|(_, c, n)| *c == self.comparison && *n == self.negated)
            .map(|(name, _, _)| *name)
            .unwrap_or("?");
        f.write_str(name)?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

impl Serialize for Operator {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Operator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Operator::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown condition operator {name}")))
    }
}

/// A number as IAM compares them: integers exactly, anything else as a float.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn parse(s: &str) -> Option<Number> {
        let s = s.trim();
        if let Ok(i) = s.parse::<i128>() {
            return Some(Number::Int(i));
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    }

    fn cmp(self, other: Number) -> std::cmp::Ordering {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (a, b) => a
                .as_f64()
                .partial_cmp(&b.as_f64())
                .unwrap_or(std::cmp::Ordering::Equal),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Parses a date as IAM accepts them: ISO 8601 date-times (with zone), plain dates, or epoch
/// seconds. Returns Unix nanoseconds.
pub fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .map(|secs| i128::from(secs) * 1_000_000_000);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &date_only) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// Parses an IPv4/IPv6 address or CIDR block.
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// One policy value, compiled for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Compiled {
    Text(Pattern),
    TextIgnoreCase(Pattern),
    Glob(Pattern),
    Number(Number),
    Date(i128),
    Bool(bool),
    Binary(Vec<u8>),
    Net(IpNet),
    Arn(ArnPattern),
    Null(bool),
}

/// One `"key": values` entry under an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator.
    pub operator: Operator,
    /// The key as written (for explanations).
    pub key: String,
    key_lower: String,
    /// The values as written.
    pub values: Vec<String>,
    compiled: Vec<Compiled>,
}

/// Why a condition's values could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(pub String);

impl Condition {
    /// Compiles a condition. `variables` is true under `Version: 2012-10-17`.
    pub fn new(
        operator: Operator,
        key: &str,
        values: Vec<String>,
        variables: bool,
    ) -> Result<Condition, ConditionError> {
        let text = Syntax {
            wildcards: false,
            variables,
        };
        let glob = Syntax {
            wildcards: true,
            variables,
        };
        let bad = |value: &str, what: &str| {
            ConditionError(format!(
                "Invalid value '{value}' for condition operator {operator} on key '{key}': expected {what}"
            ))
        };
        let pattern_err = |e: crate::pattern::PatternError| ConditionError(e.0);
        let mut compiled = Vec::with_capacity(values.len());
        for value in &values {
            let c = match operator.comparison {
                Comparison::StringEquals => {
                    Compiled::Text(Pattern::compile(value, text, false).map_err(pattern_err)?)
                }
                Comparison::StringEqualsIgnoreCase => Compiled::TextIgnoreCase(
                    Pattern::compile(value, text, true).map_err(pattern_err)?,
                ),
                Comparison::StringLike => {
                    Compiled::Glob(Pattern::compile(value, glob, false).map_err(pattern_err)?)
                }
                Comparison::NumericEquals
                | Comparison::NumericLessThan
                | Comparison::NumericLessThanEquals
                | Comparison::NumericGreaterThan
                | Comparison::NumericGreaterThanEquals => {
                    Compiled::Number(Number::parse(value).ok_or_else(|| bad(value, "a number"))?)
                }
                Comparison::DateEquals
                | Comparison::DateLessThan
                | Comparison::DateLessThanEquals
                | Comparison::DateGreaterThan
                | Comparison::DateGreaterThanEquals => Compiled::Date(
                    parse_date(value)
                        .ok_or_else(|| bad(value, "an ISO 8601 date or epoch seconds"))?,
                ),
                Comparison::Bool => {
                    Compiled::Bool(parse_bool(value).ok_or_else(|| bad(value, "true or false"))?)
                }
                Comparison::Null => {
                    Compiled::Null(parse_bool(value).ok_or_else(|| bad(value, "true or false"))?)
                }
                Comparison::BinaryEquals => Compiled::Binary(
                    base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .map_err(|_| bad(value, "base64"))?,
                ),
                Comparison::IpAddress => Compiled::Net(
                    parse_net(value).ok_or_else(|| bad(value, "an IP address or CIDR block"))?,
                ),
                Comparison::ArnEquals | Comparison::ArnLike => {
                    Compiled::Arn(ArnPattern::compile(value, glob).map_err(pattern_err)?)
                }
            };
            compiled.push(c);
        }
        Ok(Condition {
            operator,
            key_lower: key.to_ascii_lowercase(),
            key: key.to_string(),
            values,
            compiled,
        })
    }

    /// The key lower-cased, as context lookups want it.
    pub fn key_lower(&self) -> &str {
        &self.key_lower
    }

    /// Evaluates the condition against the request.
    pub fn evaluate(&self, ctx: &RequestContext) -> ConditionOutcome {
        let present = ctx.get(&self.key_lower);
        let op = self.operator;
        if op.comparison == Comparison::Null {
            let absent = present.is_none_or(|v| v.values.is_empty());
            let ok = self
                .compiled
                .iter()
                .any(|c| matches!(c, Compiled::Null(want) if *want == absent));
            return ConditionOutcome::from_bool(ok);
        }
        let values: &[String] = match present {
            Some(v) => &v.values,
            None => {
                // AWS: a missing key fails positive operators and satisfies negated ones;
                // IfExists and ForAllValues treat it as satisfied; ForAnyValue fails.
                let ok = op.if_exists
                    || match op.qualifier {
                        Some(SetQualifier::ForAllValues) => true,
                        Some(SetQualifier::ForAnyValue) => false,
                        None => op.negated,
                    };
                return if ok {
                    ConditionOutcome::Satisfied
                } else {
                    ConditionOutcome::KeyMissing
                };
            }
        };
        // One request value matches when it equals any policy value; negated operators
        // require that it matches none.
        let mut first_unresolved = None;
        let mut value_ok = |request: &str| -> bool {
            let mut any = false;
            for compiled in &self.compiled {
                match compare(compiled, op.comparison, request, ctx) {
                    Ok(true) => {
                        any = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(u) => {
                        first_unresolved.get_or_insert(u);
                    }
                }
            }
            any != op.negated
        };
        let ok = match op.qualifier {
            None if op.negated => values.iter().all(|v| value_ok(v)),
            None => values.iter().any(|v| value_ok(v)),
            Some(SetQualifier::ForAnyValue) => values.iter().any(|v| value_ok(v)),
            Some(SetQualifier::ForAllValues) => values.iter().all(|v| value_ok(v)),
        };
        if ok {
            ConditionOutcome::Satisfied
        } else if let Some(u) = first_unresolved {
            ConditionOutcome::Unresolved(u)
        } else {
            ConditionOutcome::NotSatisfied
        }
    }
}

/// The result of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionOutcome {
    /// The condition holds.
    Satisfied,
    /// The request's values did not satisfy the operator.
    NotSatisfied,
    /// The key is absent from the request and the operator needs it.
    KeyMissing,
    /// A policy variable in the values had no value, so no value could match.
    Unresolved(Unresolved),
}

impl ConditionOutcome {
    fn from_bool(ok: bool) -> Self {
        if ok {
            ConditionOutcome::Satisfied
        } else {
            ConditionOutcome::NotSatisfied
        }
    }
}

/// Compares one request value with one compiled policy value (the positive form).
fn compare(
    policy: &Compiled,
    comparison: Comparison,
    request: &str,
    ctx: &RequestContext,
) -> Result<bool, Unresolved> {
    Ok(match policy {
        Compiled::Text(p) | Compiled::Glob(p) => p.matches(request, ctx)?,
        Compiled::TextIgnoreCase(p) => p.matches(&crate::pattern::fold_case(request), ctx)?,
        Compiled::Arn(p) => request.starts_with("arn:") && p.matches(request, ctx)?,
        Compiled::Number(want) => match Number::parse(request) {
            Some(got) => {
                let ord = got.cmp(*want);
                use std::cmp::Ordering::*;
                match comparison {
                    Comparison::NumericEquals => ord == Equal,
                    Comparison::NumericLessThan => ord == Less,
                    Comparison::NumericLessThanEquals => ord != Greater,
                    Comparison::NumericGreaterThan => ord == Greater,
                    Comparison::NumericGreaterThanEquals => ord != Less,
                    _ => false,
                }
            }
            None => false,
        },
        Compiled::Date(want) => match parse_date(request) {
            Some(got) => match comparison {
                Comparison::DateEquals => got == *want,
                Comparison::DateLessThan => got < *want,
                Comparison::DateLessThanEquals => got <= *want,
                Comparison::DateGreaterThan => got > *want,
                Comparison::DateGreaterThanEquals => got >= *want,
                _ => false,
            },
            None => false,
        },
        Compiled::Bool(want) => parse_bool(request) == Some(*want),
        Compiled::Binary(want) => base64::engine::general_purpose::STANDARD
            .decode(request.trim())
            .is_ok_and(|got| got == *want),
        Compiled::Net(net) => request
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| net.contains(&ip)),
        Compiled::Null(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_round_trip() {
        for (name, _, _) in OPERATORS {
            for full in [
                name.to_string(),
                format!("{name}IfExists"),
                format!("ForAllValues:{name}"),
                format!("ForAnyValue:{name}IfExists"),
            ] {
                if *name == "Null" && full != "Null" {
                    assert!(Operator::parse(&full).is_none(), "{full}");
                    continue;
                }
                let op = Operator::parse(&full).unwrap_or_else(|| panic!("{full}"));
                assert_eq!(op.to_string(), full);
            }
        }
        assert!(Operator::parse("StringEqual").is_none());
        assert!(Operator::parse("stringequals").is_none());
    }

    #[test]
    fn dates() {
        let a = parse_date("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("2020-01-01"), Some(a));
        assert_eq!(parse_date("1577836800"), Some(a));
        assert_eq!(parse_date("2020-01-01T01:00:00+01:00"), Some(a));
        assert!(parse_date("yesterday").is_none());
    }
}
