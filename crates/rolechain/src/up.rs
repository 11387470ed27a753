//! `rolechain up`. The twin's HTTP services are not built yet; until they are, `up` evaluates
//! the default world's trust chains (from the seed documents) with the `iam` engine and says so.

use std::fmt::Write as _;

use anyhow::Context as _;
use iam::scenario::Scenario;
use iam::Verdict;
use serde::Deserialize;

/// The default world's chains, each with the verdict AWS gives.
const SEED_CHAINS: &str = include_str!("world/seed-chains.json");

#[derive(Deserialize)]
struct Chain {
    name: String,
    expect: Verdict,
    scenario: Scenario,
}

pub struct Report {
    pub text: String,
    pub all_as_expected: bool,
}

pub fn run() -> anyhow::Result<Report> {
    let chains: Vec<Chain> =
        serde_json::from_str(SEED_CHAINS).context("the embedded seed chains are malformed")?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "rolechain up: the AWS twin (STS, IAM, EKS, S3 over HTTP) is not built yet, so nothing is served."
    );
    let _ = writeln!(
        text,
        "Evaluated the default world's trust chains (accounts 111111111111 developer, 222222222222 shared_content) with the IAM engine:\n"
    );
    let mut all_as_expected = true;
    for chain in &chains {
        let compiled = chain
            .scenario
            .compile()
            .with_context(|| format!("seed chain '{}' does not compile", chain.name))?;
        let decision = compiled.evaluate();
        let ok = decision.verdict == chain.expect;
        all_as_expected &= ok;
        let _ = writeln!(
            text,
            "[{}] {:?}: {}\n      {}",
            if ok { "ok" } else { "UNEXPECTED" },
            decision.verdict,
            chain.name,
            explain::reason_text(&decision.reason)
        );
        if decision.verdict == Verdict::ImplicitDeny {
            if let Some((policy, statement)) = decision.closest_allow() {
                if let Some(failed) = &statement.failed {
                    let _ = writeln!(
                        text,
                        "      closest: statement {} of '{}': {}",
                        statement.index,
                        policy.name,
                        explain::mismatch_text(failed, &compiled.context)
                    );
                }
            }
        }
    }
    let _ = writeln!(
        text,
        "\n{} chains evaluated; run `rolechain explain --help` to evaluate your own policies.",
        chains.len()
    );
    Ok(Report {
        text,
        all_as_expected,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_chains_decide_as_aws_does() {
        let report = super::run().unwrap();
        assert!(report.all_as_expected, "{}", report.text);
        assert!(report.text.contains("[ok] ImplicitDeny"));
    }
}
