//! The evaluation corpus: data files under `tests/corpus/`, each case citing the AWS
//! documentation rule it checks.
//!
//! * Every `*.json` file except `invalid.json` is an array of evaluation cases: a scenario
//!   (`policies` + `request`, exactly the format of `iam::scenario`) with the expected verdict,
//!   and optionally the expected `Reason` rule tag and the `Mismatch` element of the first
//!   statement of the first policy in the trace.
//! * `invalid.json` is an array of policy-validation cases: a document, the kind it is
//!   attached as, and the expected error code and a substring of the message.
//!
//! Both tests report every failing case before failing.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use iam::scenario::Scenario;
use iam::{Policy, PolicyKind};
use serde_json::{json, Value};

const DOC_PREFIX: &str = "https://docs.aws.amazon.com/";
const MIN_EVALUATION_CASES: usize = 200;
const MIN_INVALID_CASES: usize = 25;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every `(file name, case)` of the corpus files selected by `want`.
fn load(want: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name")
            .to_string();
        if !want(&file) {
            continue;
        }
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
        let Value::Array(cases) = value else {
            panic!("{file} must hold a JSON array of cases");
        };
        out.extend(cases.into_iter().map(|c| (file.clone(), c)));
    }
    out
}

/// Checks the fields every case has: a unique name and a doc link. Returns the name.
fn common_checks(
    file: &str,
    index: usize,
    case: &Value,
    allowed: &[&str],
    names: &mut HashSet<String>,
    problems: &mut Vec<String>,
) -> String {
    let name = case
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let label = format!("{file}[{index}] '{name}'");
    if name.trim().is_empty() {
        problems.push(format!("{label}: missing or empty \"name\""));
    } else if !names.insert(name.clone()) {
        problems.push(format!("{label}: duplicate name"));
    }
    match case.get("doc").and_then(Value::as_str) {
        Some(doc) if doc.starts_with(DOC_PREFIX) && doc.len() > DOC_PREFIX.len() => {}
        _ => problems.push(format!(
            "{label}: \"doc\" must be a non-empty string starting with {DOC_PREFIX}"
        )),
    }
    match case.as_object() {
        Some(fields) => {
            for key in fields.keys() {
                if !allowed.contains(&key.as_str()) {
                    problems.push(format!("{label}: unknown field \"{key}\""));
                }
            }
        }
        None => problems.push(format!("{label}: a case must be a JSON object")),
    }
    name
}

/// The tag of the first statement's mismatch in the first policy of the trace, or `none` when
/// that statement matched.
fn first_failed_element(decision: &Value) -> Option<String> {
    let statement = decision.pointer("/policies/0/statements/0")?;
    Some(
        statement
            .pointer("/failed/element")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_string(),
    )
}

#[test]
fn evaluation_corpus() {
    let cases = load(|file| file != "invalid.json");
    let mut names = HashSet::new();
    let mut problems = Vec::new();
    let mut failures = Vec::new();
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for (index, (file, case)) in cases.iter().enumerate() {
        *per_file.entry(file.clone()).or_default() += 1;
        let name = common_checks(
            file,
            index,
            case,
            &["name", "doc", "policies", "request", "expect"],
            &mut names,
            &mut problems,
        );
        let expect = case.get("expect").cloned().unwrap_or(Value::Null);
        let want_verdict = expect.get("verdict").and_then(Value::as_str);
        if !matches!(
            want_verdict,
            Some("Allow" | "ExplicitDeny" | "ImplicitDeny")
        ) {
            problems.push(format!(
                "{file} '{name}': expect.verdict must be Allow, ExplicitDeny or ImplicitDeny"
            ));
            continue;
        }
        if let Some(fields) = expect.as_object() {
            for key in fields.keys() {
                if !["verdict", "rule", "failed"].contains(&key.as_str()) {
                    problems.push(format!("{file} '{name}': unknown expect field \"{key}\""));
                }
            }
        }
        let scenario_json = json!({
            "policies": case.get("policies").cloned().unwrap_or_else(|| json!({})),
            "request": case.get("request").cloned().unwrap_or(Value::Null),
        });
        let scenario: Scenario = match serde_json::from_value(scenario_json) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{file} '{name}': scenario does not parse: {e}"));
                continue;
            }
        };
        let compiled = match scenario.compile() {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{file} '{name}': scenario does not compile: {e}"));
                continue;
            }
        };
        let decision = compiled.evaluate();
        let decision_json = serde_json::to_value(&decision).expect("decision serializes");
        // The decision log ships decisions as JSON to `rolechain explain --last-denied`, which
        // reads them back: every trace must survive the trip unchanged.
        match serde_json::from_value::<iam::Decision>(decision_json.clone()) {
            Ok(back) if back == decision => {}
            Ok(_) => failures.push(format!("{file} '{name}': decision changes through JSON")),
            Err(e) => failures.push(format!(
                "{file} '{name}': decision JSON does not read back: {e}"
            )),
        }
        let got_verdict = decision_json
            .get("verdict")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let got_rule = decision_json
            .pointer("/reason/rule")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let got_failed = first_failed_element(&decision_json);
        let mut diffs = Vec::new();
        if want_verdict != Some(got_verdict.as_str()) {
            diffs.push(format!(
                "verdict: expected {}, got {got_verdict}",
                want_verdict.unwrap_or_default()
            ));
        }
        if let Some(rule) = expect.get("rule").and_then(Value::as_str) {
            if rule != got_rule {
                diffs.push(format!("rule: expected {rule}, got {got_rule}"));
            }
        }
        if let Some(failed) = expect.get("failed").and_then(Value::as_str) {
            if Some(failed) != got_failed.as_deref() {
                diffs.push(format!(
                    "failed: expected {failed}, got {}",
                    got_failed.as_deref().unwrap_or("(no statement)")
                ));
            }
        }
        if !diffs.is_empty() {
            failures.push(format!(
                "{file} '{name}':\n    {}\n    decision: {}",
                diffs.join("\n    "),
                serde_json::to_string(&decision_json).unwrap_or_default()
            ));
        }
    }
    if cases.len() < MIN_EVALUATION_CASES {
        problems.push(format!(
            "the evaluation corpus has {} cases; at least {MIN_EVALUATION_CASES} are required",
            cases.len()
        ));
    }
    eprintln!(
        "evaluation corpus: {} cases in {} files: {per_file:?}",
        cases.len(),
        per_file.len()
    );
    let all: Vec<String> = problems.into_iter().chain(failures).collect();
    assert!(
        all.is_empty(),
        "{} corpus problem(s):\n\n{}",
        all.len(),
        all.join("\n\n")
    );
}

#[test]
fn invalid_policy_corpus() {
    let cases = load(|file| file == "invalid.json");
    let mut names = HashSet::new();
    let mut problems = Vec::new();
    for (index, (file, case)) in cases.iter().enumerate() {
        let name = common_checks(
            file,
            index,
            case,
            &["name", "doc", "kind", "document", "expect_error"],
            &mut names,
            &mut problems,
        );
        let kind = match case.get("kind").and_then(Value::as_str) {
            Some("identity") => PolicyKind::Identity,
            Some("resource") => PolicyKind::Resource,
            Some("trust") => PolicyKind::Trust,
            other => {
                problems.push(format!(
                    "{file} '{name}': kind must be identity, resource or trust, not {other:?}"
                ));
                continue;
            }
        };
        let result = match case.get("document") {
            Some(Value::String(text)) => Policy::parse(text, kind),
            Some(other) => Policy::from_json(other, kind),
            None => {
                problems.push(format!("{file} '{name}': missing \"document\""));
                continue;
            }
        };
        let want_code = case
            .pointer("/expect_error/code")
            .and_then(Value::as_str)
            .unwrap_or("MalformedPolicyDocument");
        let want_text = case
            .pointer("/expect_error/contains")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match result {
            Ok(policy) => problems.push(format!(
                "{file} '{name}': expected {want_code} containing {want_text:?}, but the policy was accepted: {policy:?}"
            )),
            Err(error) => {
                let message = error.to_string();
                if error.code() != want_code || !message.contains(want_text) {
                    problems.push(format!(
                        "{file} '{name}': expected {want_code} containing {want_text:?}, got {}: {message}",
                        error.code()
                    ));
                }
            }
        }
    }
    if cases.len() < MIN_INVALID_CASES {
        problems.push(format!(
            "invalid.json has {} cases; at least {MIN_INVALID_CASES} are required",
            cases.len()
        ));
    }
    eprintln!("invalid-policy corpus: {} cases", cases.len());
    assert!(
        problems.is_empty(),
        "{} invalid-policy problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
