//! Rendering a [`PodExplanation`] for a person (✓/✗ per step) or as JSON.

use std::fmt::Write as _;

use crate::pod::PodExplanation;

fn mechanism(m: &str) -> &'static str {
    match m {
        "pod-identity" => "EKS Pod Identity",
        "irsa" => "IRSA (web identity)",
        _ => "no AWS credentials",
    }
}

/// The steps as text: one ✓/✗ line each, facts indented below, and on ✗ the cause and the fix.
pub fn render_pod_text(e: &PodExplanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pod with service account {}/{} in cluster {}: {}",
        e.namespace,
        e.service_account,
        e.cluster,
        mechanism(e.mechanism)
    );
    if let (Some(a), Some(r)) = (&e.action, &e.resource) {
        let _ = writeln!(out, "Request: {a} on {r}");
    }
    out.push('\n');
    for (i, step) in e.steps.iter().enumerate() {
        let mark = if step.ok { '✓' } else { '✗' };
        let _ = writeln!(out, "{mark} {}. {}", i + 1, step.title);
        for d in &step.details {
            let _ = writeln!(out, "      {d}");
        }
        if let Some(cause) = &step.cause {
            let _ = writeln!(out, "      why: {cause}");
        }
        if let Some(fix) = &step.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    out.push('\n');
    match e.steps.iter().position(|s| !s.ok) {
        None if e.action.is_some() => {
            out.push_str(
                "Result: every step holds; the pod gets credentials and the request is allowed.\n",
            );
        }
        None => out.push_str("Result: every step holds; the pod gets credentials.\n"),
        Some(i) => {
            let failed = e.steps.iter().filter(|s| !s.ok).count();
            let _ = writeln!(
                out,
                "Result: the chain fails at step {} ({}){}.",
                i + 1,
                e.steps[i].check,
                if failed > 1 {
                    format!("; {failed} steps fail in all")
                } else {
                    String::new()
                }
            );
        }
    }
    out
}

/// The explanation as pretty JSON, with a trailing newline.
pub fn render_pod_json(e: &PodExplanation) -> String {
    // Serializing plain data structures to a String cannot fail.
    serde_json::to_string_pretty(e).unwrap_or_default() + "\n"
}
