//! `explain`: the front end that says why a request is allowed or denied.
//!
//! It turns command-line options and policy files into an [`iam::scenario::Scenario`], asks the
//! `iam` engine, and renders the decision and its trace for a person (or as JSON). Exit codes
//! are part of the interface: 0 allow, 1 deny, 2 invalid input.
//!
//! Over a [`twin_state::Snapshot`] of the world it also walks a pod's whole credential chain
//! ([`explain_pod`]) and lints every chain and trust policy for known pitfalls ([`lint`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod final_action;
#[cfg(test)]
mod fixtures;
pub mod lint;
#[cfg(test)]
mod lint_tests;
pub mod pod;
mod pod_render;
#[cfg(test)]
mod pod_tests;
mod render;
mod request;
pub mod view;

pub use lint::{has_errors, lint, render_lint_text, Finding, Severity};
pub use pod::{explain_pod, PodError, PodExplanation, PodQuery, Step};
pub use pod_render::{render_pod_json, render_pod_text};
pub use render::{mismatch_text, reason_text, render_asked, render_text, Asked};
pub use request::{ExplainArgs, InputError, DEFAULT_TWIN_URL};

use iam::Decision;
use serde::Serialize;

/// The outcome of an offline explanation.
#[derive(Debug)]
pub struct Explanation {
    /// The decision with its trace.
    pub decision: Decision,
    /// The rendered output (text or JSON, per `--json`).
    pub output: String,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    request: JsonRequest<'a>,
    #[serde(flatten)]
    decision: &'a Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    closest_allow: Option<JsonClosest<'a>>,
}

#[derive(Serialize)]
struct JsonRequest<'a> {
    principal: &'a iam::Principal,
    action: &'a str,
    resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_account: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonClosest<'a> {
    policy: &'a str,
    statement: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'a iam::Mismatch>,
}

/// Evaluates the scenario the options describe and renders the answer.
pub fn explain(args: &ExplainArgs) -> Result<Explanation, InputError> {
    let scenario = args.scenario()?;
    let compiled = scenario.compile()?;
    let decision = compiled.evaluate();
    let ctx = &compiled.context;
    let output = if args.json {
        let closest = (decision.verdict == iam::Verdict::ImplicitDeny)
            .then(|| decision.closest_allow())
            .flatten()
            .map(|(p, s)| JsonClosest {
                policy: &p.name,
                statement: s.index,
                failed: s.failed.as_ref(),
            });
        let json = JsonOutput {
            request: JsonRequest {
                principal: ctx.principal(),
                action: ctx.action(),
                resource: ctx.resource(),
                resource_account: ctx.resource_account(),
            },
            decision: &decision,
            closest_allow: closest,
        };
        // Serializing plain data structures to a String cannot fail.
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
    } else {
        render_text(&decision, ctx)
    };
    Ok(Explanation { decision, output })
}
