//! The `rolechain` command: one binary for every part.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod up;

/// Pod-level AWS credentials across accounts, and an offline twin of AWS's identity plane.
#[derive(Debug, Parser)]
#[command(name = "rolechain", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local story: today, check the default world's trust chains with the IAM engine.
    Up,
    /// Explain why a request is allowed or denied. Exit code: 0 allow, 1 deny, 2 invalid input.
    Explain(Box<explain::ExplainArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Up => match up::run() {
            Ok(report) => {
                print!("{}", report.text);
                if report.all_as_expected {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("rolechain up: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Explain(args) => match explain::explain(&args) {
            Ok(explanation) => {
                print!("{}", explanation.output);
                if explanation.decision.is_allowed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("rolechain explain: {e}");
                ExitCode::from(2)
            }
        },
    }
}
