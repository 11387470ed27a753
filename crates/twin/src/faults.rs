//! Fault injection: the rules `/_rolechain/faults` sets, their validation, and what they do to
//! a request, so that a client (a credential agent) can rehearse an upstream that is slow or
//! failing.
//!
//! A rule has the shape of LocalStack's chaos API (`/_localstack/chaos/faults`):
//!
//! ```json
//! {"service": "sts", "operation": "AssumeRoleWithWebIdentity", "probability": 0.5,
//!  "error": {"statusCode": 503, "code": "ServiceUnavailable"}, "latencyMs": 300}
//! ```
//!
//! | member | meaning | default |
//! | --- | --- | --- |
//! | `service` | the twin's service, by its signing name: `sts`, `iam`, `eks`, `eks-auth`, `s3` | any service |
//! | `operation` | the AWS operation, as the service names it (`AssumeRole`, `GetObject`); exact, case-sensitive | any operation |
//! | `probability` | the chance, from 0 to 1, that the rule fires for a matching request | 1 |
//! | `error.statusCode` | the HTTP status, 400 to 599 | 503 |
//! | `error.code` | the AWS error code | `ServiceUnavailable` |
//! | `latencyMs` | how long to wait before answering, 0 to [`MAX_LATENCY_MS`] | none |
//!
//! A rule must do something: have an `error` (`"error": {}` is a 503 `ServiceUnavailable`) or a
//! `latencyMs` above 0. The rules are tried in order ([`plan`]): each matching rule fires with
//! its probability; a rule that fires adds its latency, and the first one that fires with an
//! error ends the request with that error once the latency has passed. Rules live in memory
//! only: a restart starts with none.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use awswire::AwsError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::metrics::Metrics;

/// Most rules set at once.
pub(crate) const MAX_RULES: usize = 100;
/// Largest body the fault routes read.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest latency a rule may add, and the most all the rules together add to one request.
pub(crate) const MAX_LATENCY_MS: u64 = 60_000;
/// Longest `operation` or `error.code`.
const MAX_NAME_LEN: usize = 128;
/// The members of a rule, for the unknown-member error.
const RULE_MEMBERS: &str = "service, operation, probability, error, latencyMs";
/// What an injected error says.
const INJECTED_MESSAGE: &str =
    "This error was injected by the rolechain twin: a fault rule set through /_rolechain/faults matched the request.";

/// One rule, validated, with its defaults filled in; serialized as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultRule {
    /// The service's signing name; `None` for any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<String>,
    /// The operation; `None` for any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) operation: Option<String>,
    /// From 0 to 1.
    pub(crate) probability: f64,
    /// What to fail with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<FaultError>,
    /// What to wait first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<u64>,
}

/// The error a rule answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultError {
    /// 400 to 599.
    pub(crate) status_code: u16,
    /// The AWS error code.
    pub(crate) code: String,
}

impl FaultRule {
    /// True when the rule applies to a request for `operation` of `service`. A request whose
    /// operation the service could not name (`None`) meets only rules without an operation.
    fn matches(&self, service: &str, operation: Option<&str>) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| operation == Some(o))
    }
}

/// Why a body of rules was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuleError {
    /// The body is not JSON, or not a rule or an array of rules.
    #[error("{0}")]
    Body(String),
    /// One member of one rule (`field` is its path: `[2].error.statusCode`, or
    /// `error.statusCode` in a body of one rule).
    #[error("{field}: {message}")]
    Field {
        /// Where.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl RuleError {
    /// The path of the member at fault, when one is.
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            RuleError::Body(_) => None,
            RuleError::Field { field, .. } => Some(field),
        }
    }
}

fn field_error(field: String, message: impl Into<String>) -> RuleError {
    RuleError::Field {
        field,
        message: message.into(),
    }
}

/// `prefix.name`, or `name` at the top of a body of one rule.
fn path(prefix: &str, name: &str) -> String {
    // A hostile member name is shown, but not at any length.
    let name: String = name.chars().take(64).collect();
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}.{name}")
    }
}

/// Parses a body of rules: a JSON array of rules, or one rule object. `services` are the
/// signing names the twin serves, the only values `service` may take.
pub(crate) fn parse_rules(body: &[u8], services: &[&str]) -> Result<Vec<FaultRule>, RuleError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RuleError::Body(format!("the body is not valid JSON: {e}")))?;
    match &value {
        Value::Array(items) => {
            if items.len() > MAX_RULES {
                return Err(field_error(
                    format!("[{MAX_RULES}]"),
                    format!("at most {MAX_RULES} rules may be set"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_rule(item, &format!("[{i}]"), services))
                .collect()
        }
        Value::Object(_) => Ok(vec![parse_rule(&value, "", services)?]),
        _ => Err(no_rules()),
    }
}

/// The error for a POST or PATCH without a body.
pub(crate) fn no_rules() -> RuleError {
    RuleError::Body("the body must be a JSON array of rules or one rule object".into())
}

/// One rule at `prefix` (`[i]`, or empty for a body of one rule).
fn parse_rule(value: &Value, prefix: &str, services: &[&str]) -> Result<FaultRule, RuleError> {
    let Value::Object(map) = value else {
        return Err(field_error(
            prefix.to_owned(),
            "a rule must be a JSON object",
        ));
    };
    reject_unknown(
        map,
        &["service", "operation", "probability", "error", "latencyMs"],
    )
    .map_err(|name| {
        field_error(
            path(prefix, &name),
            format!("unknown member; a rule has {RULE_MEMBERS}"),
        )
    })?;
    let service = match member(map, "service") {
        None => None,
        Some(Value::String(s)) if services.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => {
            return Err(field_error(
                path(prefix, "service"),
                format!(
                    "must be one of the services the twin serves: {}",
                    services.join(", ")
                ),
            ))
        }
    };
    let operation = match member(map, "operation") {
        None => None,
        Some(Value::String(s)) if is_name(s, |c| c.is_ascii_alphanumeric()) => Some(s.clone()),
        Some(_) => {
            return Err(field_error(
                path(prefix, "operation"),
                format!("must be an AWS operation name (1 to {MAX_NAME_LEN} letters and digits, such as AssumeRoleWithWebIdentity)"),
            ))
        }
    };
    let probability = match member(map, "probability") {
        None => 1.0,
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=1.0).contains(&p) => p,
            _ => {
                return Err(field_error(
                    path(prefix, "probability"),
                    "must be a number from 0 to 1",
                ))
            }
        },
    };
    let error = match member(map, "error") {
        None => None,
        Some(v) => Some(parse_error(v, &path(prefix, "error"))?),
    };
    let latency_ms = match member(map, "latencyMs") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= MAX_LATENCY_MS => Some(ms),
            _ => {
                return Err(field_error(
                    path(prefix, "latencyMs"),
                    format!("must be a whole number of milliseconds from 0 to {MAX_LATENCY_MS}"),
                ))
            }
        },
    };
    if error.is_none() && latency_ms.unwrap_or(0) == 0 {
        return Err(field_error(
            path(prefix, "error"),
            "a rule must do something: give an error (\"error\": {} is 503 ServiceUnavailable) or a latencyMs above 0",
        ));
    }
    Ok(FaultRule {
        service,
        operation,
        probability,
        error,
        latency_ms,
    })
}

/// A rule's `error` at `at`.
fn parse_error(value: &Value, at: &str) -> Result<FaultError, RuleError> {
    let Value::Object(map) = value else {
        return Err(field_error(
            at.to_owned(),
            "must be an object: {\"statusCode\": 503, \"code\": \"ServiceUnavailable\"}",
        ));
    };
    reject_unknown(map, &["statusCode", "code"]).map_err(|name| {
        field_error(
            path(at, &name),
            "unknown member; an error has statusCode and code",
        )
    })?;
    let status_code = match member(map, "statusCode") {
        None => 503,
        Some(v) => match v.as_u64().and_then(|s| u16::try_from(s).ok()) {
            Some(s) if (400..=599).contains(&s) => s,
            _ => {
                return Err(field_error(
                    path(at, "statusCode"),
                    "must be an HTTP error status from 400 to 599",
                ))
            }
        },
    };
    let code = match member(map, "code") {
        None => "ServiceUnavailable".to_owned(),
        Some(Value::String(s))
            if is_name(s, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            s.clone()
        }
        Some(_) => {
            return Err(field_error(
                path(at, "code"),
                format!("must be an AWS error code (1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-', such as Throttling)"),
            ))
        }
    };
    Ok(FaultError { status_code, code })
}

/// The first member of `map` not in `known`, if any.
fn reject_unknown(map: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(name) => Err(name.clone()),
        None => Ok(()),
    }
}

/// A member's value; `null` is the same as absent.
fn member<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

/// 1 to [`MAX_NAME_LEN`] characters, each allowed by `ok`.
fn is_name(s: &str, ok: impl Fn(char) -> bool) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len()) && s.chars().all(ok)
}

/// `existing` followed by `added` (PATCH), unless that makes more than [`MAX_RULES`].
pub(crate) fn appended(
    existing: &[FaultRule],
    added: Vec<FaultRule>,
) -> Result<Vec<FaultRule>, RuleError> {
    if existing.len() + added.len() > MAX_RULES {
        let room = MAX_RULES - existing.len().min(MAX_RULES);
        return Err(field_error(
            format!("[{room}]"),
            format!(
                "at most {MAX_RULES} rules may be set, and {} are set already",
                existing.len()
            ),
        ));
    }
    let mut all = existing.to_vec();
    all.extend(added);
    Ok(all)
}

/// `existing` without every rule equal to one of `removed` (DELETE with a body), compared
/// with their defaults filled in, so a rule is removed by the body that added it.
pub(crate) fn without(existing: &[FaultRule], removed: &[FaultRule]) -> Vec<FaultRule> {
    existing
        .iter()
        .filter(|r| !removed.contains(r))
        .cloned()
        .collect()
}

/// What the rules do to one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// How long to wait before answering (at most [`MAX_LATENCY_MS`]).
    pub(crate) delay: Duration,
    /// The error to answer with, if a rule that fired has one.
    pub(crate) error: Option<FaultError>,
}

/// Tries `rules` in order on a request for `operation` of `service`: each matching rule fires
/// when `draw` (uniform in `[0, 1)`; not called for probabilities 0 and 1) is below its
/// probability; a rule that fires adds its latency, and the first one that fires with an
/// error ends the plan with that error.
pub(crate) fn plan(
    rules: &[FaultRule],
    service: &str,
    operation: Option<&str>,
    mut draw: impl FnMut() -> f64,
) -> Plan {
    let mut plan = Plan::default();
    for rule in rules.iter().filter(|r| r.matches(service, operation)) {
        let fires = match rule.probability {
            p if p >= 1.0 => true,
            p if p <= 0.0 => false,
            p => draw() < p,
        };
        if !fires {
            continue;
        }
        plan.delay += Duration::from_millis(rule.latency_ms.unwrap_or(0));
        if let Some(error) = &rule.error {
            plan.error = Some(error.clone());
            break;
        }
    }
    plan.delay = plan.delay.min(Duration::from_millis(MAX_LATENCY_MS));
    plan
}

/// A uniform draw in `[0, 1)` from the operating system's generator.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Not seen on the platforms the twin runs on; the clock still varies between draws.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    // The top 53 bits: every value exactly representable, below 1.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The rules in force, shared by the admin routes and every request. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    rules: Arc<RwLock<Arc<[FaultRule]>>>,
}

impl Faults {
    /// The rules now (a snapshot: later changes do not touch it).
    pub(crate) fn rules(&self) -> Arc<[FaultRule]> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the rules with what `change` makes of the current ones, atomically.
    pub(crate) fn update(
        &self,
        change: impl FnOnce(&[FaultRule]) -> Result<Vec<FaultRule>, RuleError>,
    ) -> Result<Arc<[FaultRule]>, RuleError> {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let new: Arc<[FaultRule]> = change(&rules)?.into();
        *rules = Arc::clone(&new);
        Ok(new)
    }
}

/// Where one service's requests meet the fault rules set through `POST /_rolechain/faults`.
///
/// The front door applies them to the buffered services ([`AwsService`](crate::AwsService))
/// itself, before the handler runs; a [`StreamingService`](crate::StreamingService) gets one in
/// [`StreamRequest::faults`](crate::StreamRequest::faults) and calls
/// [`inject`](Self::inject) once it knows the request's operation.
#[derive(Clone)]
pub struct FaultPoint {
    faults: Faults,
    metrics: Metrics,
    service: &'static str,
}

impl std::fmt::Debug for FaultPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultPoint")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl FaultPoint {
    pub(crate) fn new(faults: Faults, metrics: Metrics, service: &'static str) -> FaultPoint {
        FaultPoint {
            faults,
            metrics,
            service,
        }
    }

    /// True when any rule is set (a request may then be delayed or failed).
    pub(crate) fn armed(&self) -> bool {
        !self.faults.rules().is_empty()
    }

    /// Applies the rules to a request for `operation` of this point's service (`None` when
    /// the service cannot name it: only rules without an operation apply). Waits the latency
    /// of the rules that fire, then returns the error to answer with when one of them has one;
    /// the caller renders it in its own protocol with the request's id. What is injected is
    /// logged and counted in `rolechain_twin_faults_injected_total`.
    pub async fn inject(&self, operation: Option<&'static str>) -> Option<AwsError> {
        let rules = self.faults.rules();
        if rules.is_empty() {
            return None;
        }
        let plan = plan(&rules, self.service, operation, random_unit);
        let service = self.service;
        let action = operation.unwrap_or(crate::metrics::UNKNOWN);
        if !plan.delay.is_zero() {
            let latency_ms = u64::try_from(plan.delay.as_millis()).unwrap_or(u64::MAX);
            tracing::info!(service, action, latency_ms, "fault injected: latency");
            self.metrics.fault_injected(service, action, "latency");
            tokio::time::sleep(plan.delay).await;
        }
        let error = plan.error?;
        tracing::info!(
            service,
            action,
            status = error.status_code,
            code = %error.code,
            "fault injected: error"
        );
        self.metrics.fault_injected(service, action, "error");
        Some(AwsError::new(
            error.code,
            INJECTED_MESSAGE,
            error.status_code,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: &[&str] = &["eks", "eks-auth", "iam", "s3", "sts"];

    fn rules(json: &str) -> Vec<FaultRule> {
        parse_rules(json.as_bytes(), SERVED).unwrap()
    }

    fn refused(json: &str) -> RuleError {
        parse_rules(json.as_bytes(), SERVED).unwrap_err()
    }

    #[test]
    fn defaults_are_filled_in_and_shown() {
        let parsed = rules(r#"{"service":"sts","error":{}}"#);
        assert_eq!(
            parsed,
            vec![FaultRule {
                service: Some("sts".into()),
                operation: None,
                probability: 1.0,
                error: Some(FaultError {
                    status_code: 503,
                    code: "ServiceUnavailable".into()
                }),
                latency_ms: None,
            }]
        );
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"[{"service":"sts","probability":1.0,"error":{"statusCode":503,"code":"ServiceUnavailable"}}]"#
        );
        let full = rules(
            r#"[{"service":"eks-auth","operation":"AssumeRoleForPodIdentity","probability":0.25,
                 "error":{"statusCode":429,"code":"ThrottlingException"},"latencyMs":300},
                {"latencyMs":5,"probability":0,"service":null}]"#,
        );
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].latency_ms, Some(300));
        assert_eq!(full[0].error.as_ref().unwrap().status_code, 429);
        assert_eq!(full[1].service, None);
        assert_eq!(full[1].probability, 0.0);
        assert!(rules("[]").is_empty());
    }

    #[test]
    fn hostile_bodies_are_refused_naming_the_member() {
        let cases = [
            (r#"[{"error":{},"region":"us-east-1"}]"#, Some("[0].region")),
            (
                r#"{"error":{"statusCode":503,"message":"x"}}"#,
                Some("error.message"),
            ),
            (r#"{"error":{},"probability":1.5}"#, Some("probability")),
            (r#"{"error":{},"probability":-0.1}"#, Some("probability")),
            (r#"{"error":{},"probability":"1"}"#, Some("probability")),
            (r#"{"error":{"statusCode":200}}"#, Some("error.statusCode")),
            (r#"{"error":{"statusCode":600}}"#, Some("error.statusCode")),
            (
                r#"{"error":{"statusCode":70000}}"#,
                Some("error.statusCode"),
            ),
            (
                r#"{"error":{"statusCode":503.5}}"#,
                Some("error.statusCode"),
            ),
            (r#"{"error":{"code":"Bad Code"}}"#, Some("error.code")),
            (r#"{"error":{"code":"<x>"}}"#, Some("error.code")),
            (r#"{"error":{"code":""}}"#, Some("error.code")),
            (r#"{"error":"503"}"#, Some("error")),
            (r#"{"error":{},"service":"STS"}"#, Some("service")),
            (r#"{"error":{},"service":"dynamodb"}"#, Some("service")),
            (
                r#"{"error":{},"operation":"Assume Role"}"#,
                Some("operation"),
            ),
            (r#"{"error":{},"operation":5}"#, Some("operation")),
            (r#"{"latencyMs":-1}"#, Some("latencyMs")),
            (r#"{"latencyMs":60001}"#, Some("latencyMs")),
            (r#"{"latencyMs":1.5}"#, Some("latencyMs")),
            (r#"{"latencyMs":0}"#, Some("error")),
            (r#"{"service":"sts"}"#, Some("error")),
            (r#"[{"error":{}},7]"#, Some("[1]")),
            ("not json", None),
            ("[{\"error\":{}}", None),
            ("\"sts\"", None),
            ("", None),
        ];
        for (body, field) in cases {
            let e = refused(body);
            assert_eq!(e.field(), field, "{body}: {e}");
        }
        let too_many = format!("[{}]", vec![r#"{"error":{}}"#; MAX_RULES + 1].join(","));
        assert_eq!(refused(&too_many).field(), Some("[100]"));
        let at_cap = format!("[{}]", vec![r#"{"error":{}}"#; MAX_RULES].join(","));
        assert_eq!(rules(&at_cap).len(), MAX_RULES);
        // A long hostile member name is cut in the error.
        let long = format!(r#"{{"{}":1}}"#, "x".repeat(10_000));
        assert_eq!(refused(&long).field().unwrap().len(), 64);
    }

    #[test]
    fn patch_appends_within_the_cap_and_delete_removes_equal_rules() {
        let one = rules(r#"{"service":"sts","error":{}}"#);
        let two = rules(r#"{"service":"iam","latencyMs":10}"#);
        let both = appended(&one, two.clone()).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(without(&both, &one), two);
        // The body that added a rule removes it, defaults or not.
        let spelled = rules(
            r#"{"service":"sts","probability":1,"error":{"statusCode":503,"code":"ServiceUnavailable"}}"#,
        );
        assert_eq!(without(&both, &spelled), two);
        assert_eq!(
            without(&both, &rules(r#"{"service":"s3","error":{}}"#)),
            both
        );

        let full = vec![one[0].clone(); MAX_RULES];
        let e = appended(&full, two).unwrap_err();
        assert_eq!(e.field(), Some("[0]"));
        let e = appended(&full[..99], vec![one[0].clone(); 2]).unwrap_err();
        assert_eq!(e.field(), Some("[1]"));
    }

    fn never() -> f64 {
        panic!("no draw for probabilities 0 and 1")
    }

    #[test]
    fn rules_match_service_and_operation() {
        let set = rules(
            r#"[{"service":"sts","operation":"AssumeRole","error":{"code":"Throttling","statusCode":400}},
                {"service":"s3","error":{}}]"#,
        );
        let p = plan(&set, "sts", Some("AssumeRole"), never);
        assert_eq!(p.error.unwrap().code, "Throttling");
        assert_eq!(
            plan(&set, "sts", Some("GetCallerIdentity"), never),
            Plan::default()
        );
        assert_eq!(plan(&set, "sts", None, never), Plan::default());
        assert_eq!(
            plan(&set, "iam", Some("AssumeRole"), never),
            Plan::default()
        );
        assert_eq!(
            plan(&set, "s3", None, never).error.unwrap().status_code,
            503
        );
        assert_eq!(
            plan(&set, "s3", Some("GetObject"), never)
                .error
                .unwrap()
                .status_code,
            503
        );
    }

    #[test]
    fn latencies_add_up_until_the_first_error_and_are_capped() {
        let set = rules(
            r#"[{"latencyMs":100},{"probability":0,"error":{"code":"Never"}},
                {"latencyMs":20,"error":{"code":"First"}},{"latencyMs":1000,"error":{"code":"Second"}}]"#,
        );
        let p = plan(&set, "iam", None, never);
        assert_eq!(p.delay, Duration::from_millis(120));
        assert_eq!(p.error.unwrap().code, "First");
        let slow = vec![rules(r#"{"latencyMs":60000}"#)[0].clone(); 3];
        assert_eq!(
            plan(&slow, "sts", None, never).delay,
            Duration::from_millis(MAX_LATENCY_MS)
        );
    }

    #[test]
    fn probability_is_compared_with_the_draw() {
        let set = rules(r#"{"probability":0.3,"error":{}}"#);
        assert!(plan(&set, "sts", None, || 0.29).error.is_some());
        assert!(plan(&set, "sts", None, || 0.3).error.is_none());
        assert!(plan(&set, "sts", None, || 0.99).error.is_none());
    }

    #[test]
    fn the_system_draw_is_uniform_enough() {
        let set = rules(r#"{"probability":0.5,"error":{}}"#);
        let n = 2000;
        let hits = (0..n)
            .filter(|_| plan(&set, "sts", None, random_unit).error.is_some())
            .count();
        // Mean 1000, standard deviation ~22: a bound 10 deviations wide never fails by chance.
        assert!((780..=1220).contains(&hits), "{hits} of {n}");
        assert!((0..1000)
            .map(|_| random_unit())
            .all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn updates_are_atomic_and_snapshots_stay_as_taken() {
        let faults = Faults::default();
        let before = faults.rules();
        faults.update(|_| Ok(rules(r#"{"error":{}}"#))).unwrap();
        assert!(before.is_empty());
        assert_eq!(faults.rules().len(), 1);
        let e = faults
            .update(|_| Err(field_error("x".into(), "no")))
            .unwrap_err();
        assert_eq!(e.field(), Some("x"));
        assert_eq!(faults.rules().len(), 1, "a failed update changes nothing");
    }
}
