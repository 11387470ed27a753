//! The `rolechain` command: one binary for every part.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cluster;
mod local;
mod services;
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
    /// Serve the offline AWS twin (IAM, STS, OIDC issuers) with the default world from the seeds.
    Up(up::UpArgs),
    /// Explain why a request is allowed or denied. Exit code: 0 allow, 1 deny, 2 invalid input.
    Explain(Box<explain::ExplainArgs>),
    /// Local clusters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Print a projected service-account token signed by a local cluster's issuer.
    Token(cluster::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => {
            init_logging();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rolechain up: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(up::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rolechain up: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
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
        Command::Cluster(ClusterCommand::Token(args)) => match cluster::token(&args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rolechain cluster token: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Structured logs on stderr; `RUST_LOG` overrides the default level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
