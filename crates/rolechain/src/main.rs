//! The `rolechain` command: one binary for every part.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent_kubernetes;
mod clock;
mod cluster;
mod diagnose;
mod exec;
mod last_denied;
mod local;
mod local_agents;
mod local_clusters;
mod netlink;
mod node_agent;
mod oidc_provider;
mod service_accounts;
mod services;
mod twin_api;
mod up;
mod webhook_cmd;
mod world_examples;

/// mimalloc, not the system allocator: under the twin's STS load glibc's malloc and free were
/// ~14% of server CPU, partly waiting on arena locks; the binary's servers allocate per request
/// from many threads, which is mimalloc's case.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pod-level AWS credentials across accounts, and an offline twin of AWS's identity plane.
#[derive(Debug, Parser)]
#[command(name = "rolechain", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the offline AWS twin (IAM, STS, EKS, EKS Auth, S3, OIDC issuers, the local clusters' service accounts) and a node agent per local cluster, seeded with the default world from the seeds and one example chain per seed, each checked at start.
    Up(up::UpArgs),
    /// Show the running twin's clock, or move it forward (`clock advance 55m`) to watch credentials expire and refresh.
    Clock(clock::ClockArgs),
    /// Explain why a request is allowed or denied (`explain pod`: a pod's whole credential
    /// chain). Exit code: 0 allow, 1 deny, 2 invalid input.
    Explain(Box<ExplainCommand>),
    /// Find the pitfalls of every pod credential chain and trust policy. Exit code: 0 no error
    /// finding, 1 an error finding, 2 invalid input.
    Lint(Box<diagnose::LintArgs>),
    /// Local clusters: tokens, keys, ServiceAccounts.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run a command as a pod of a local cluster: its token, its variables, no AWS settings of
    /// yours; exits with the command's status.
    Exec(Box<exec::ExecArgs>),
    /// The node credential agent: pods get the final credentials of their chain through the
    /// EKS Pod Identity agent's protocol (`agent init` sets up its link-local addresses).
    Agent(Box<node_agent::AgentCommand>),
    /// The mutating admission webhook: pods get the IRSA or node-agent variables and projected token, as the EKS Pod Identity webhook gives them, on any cluster (`webhook crd`: the RoleChainAssociation CRD).
    Webhook(Box<webhook_cmd::WebhookCommand>),
}

/// `rolechain explain`: one decision from its options, or `explain pod`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ExplainCommand {
    #[command(subcommand)]
    what: Option<ExplainWhat>,
    #[command(flatten)]
    args: explain::ExplainArgs,
}

#[derive(Debug, Subcommand)]
enum ExplainWhat {
    /// Walk the whole chain a pod's credentials take (service account, token, OIDC provider or
    /// Pod Identity association, each role's trust and identity policies, durations, the final
    /// request), with ✓/✗ and the fix for each failed step. Exit code: 0 every step holds,
    /// 1 a step fails, 2 invalid input.
    Pod(diagnose::PodArgs),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Print a projected service-account token signed by a local cluster's issuer.
    Token(cluster::TokenArgs),
    /// Give a local cluster's issuer a new signing key (older keys stay published); prints its kid.
    RotateKeys(cluster::RotateArgs),
    /// Create or update ServiceAccounts from YAML or JSON files, as `kubectl apply -f`.
    Apply(service_accounts::ApplyArgs),
    /// Set (KEY=VALUE) or remove (KEY-) a ServiceAccount's annotations, as `kubectl annotate`.
    Annotate(service_accounts::AnnotateArgs),
    /// List or show ServiceAccounts, as `kubectl get serviceaccounts`.
    Get(service_accounts::GetArgs),
    /// Register the cluster's issuer as an IAM OIDC provider in an account (eksctl's `utils associate-iam-oidc-provider --approve`), idempotently.
    AssociateOidcProvider(oidc_provider::AssociateArgs),
}

/// Exit codes as for an offline explanation: 1 when a denial was printed, 0 when there is
/// none, 2 when the twin could not be asked.
fn explain_last_denied(args: &explain::ExplainArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rolechain explain: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (twin, from) = local::twin_endpoint(args.twin.as_deref(), &args.data_dir);
    match runtime.block_on(last_denied::fetch(&twin, &from, args.json)) {
        Ok(last_denied::LastDenied::Found(text)) => {
            print!("{text}");
            ExitCode::from(1)
        }
        Ok(last_denied::LastDenied::None) => {
            println!("The twin at {twin} has recorded no denial.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rolechain explain --last-denied: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `rolechain explain` with options or `--last-denied`.
fn explain_one(args: &explain::ExplainArgs) -> ExitCode {
    if args.last_denied {
        return explain_last_denied(args);
    }
    match explain::explain(args) {
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
    }
}

/// Runs `work` on a multi-threaded runtime; errors are printed after `what`.
fn run_async(what: &str, work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{what}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(command) => match command.init {
            Some(node_agent::AgentSubcommand::Init(args)) => {
                run_async("rolechain agent init", async move {
                    for line in netlink::init(&args).await? {
                        println!("rolechain agent init: {line}");
                    }
                    Ok(())
                })
            }
            None => {
                init_logging();
                run_async("rolechain agent", node_agent::run(command.run))
            }
        },
        Command::Webhook(command) => match command.sub {
            Some(webhook_cmd::WebhookSubcommand::Crd) => {
                print!("{}", webhook::crd_yaml());
                ExitCode::SUCCESS
            }
            None => {
                init_logging();
                run_async("rolechain webhook", webhook_cmd::run(command.run))
            }
        },
        Command::Exec(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rolechain exec: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(exec::run(&args)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("rolechain exec: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Up(args) => {
            init_logging();
            run_async("rolechain up", up::run(args))
        }
        Command::Lint(args) => diagnose::lint(&args),
        Command::Explain(command) => match command.what {
            Some(ExplainWhat::Pod(args)) => diagnose::explain_pod(&args),
            None => explain_one(&command.args),
        },
        Command::Cluster(ClusterCommand::Token(args)) => match cluster::token(&args) {
            Ok(token) => match write_token(&token, args.output.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rolechain cluster token: {e:#}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("rolechain cluster token: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Cluster(ClusterCommand::Apply(args)) => {
            run_async("rolechain cluster apply", async move {
                for line in service_accounts::apply(&args).await? {
                    println!("{line}");
                }
                Ok(())
            })
        }
        Command::Cluster(ClusterCommand::Annotate(args)) => {
            run_async("rolechain cluster annotate", async move {
                println!("{}", service_accounts::annotate(&args).await?);
                Ok(())
            })
        }
        Command::Clock(args) => run_async("rolechain clock", async move {
            print!("{}", clock::run(&args).await?);
            Ok(())
        }),
        Command::Cluster(ClusterCommand::AssociateOidcProvider(args)) => {
            run_async("rolechain cluster associate-oidc-provider", async move {
                print!("{}", oidc_provider::associate(&args).await?);
                Ok(())
            })
        }
        Command::Cluster(ClusterCommand::Get(args)) => {
            run_async("rolechain cluster get", async move {
                print!("{}", service_accounts::get(&args).await?);
                Ok(())
            })
        }
        Command::Cluster(ClusterCommand::RotateKeys(args)) => match cluster::rotate_keys(&args) {
            Ok(kid) => {
                println!("{kid}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rolechain cluster rotate-keys: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Writes a token where `cluster token` was told: a file holds exactly the token, and so does
/// standard output when it is a file or a pipe (`> token`), since SDKs refuse a token file
/// with a newline (botocore: "not a legal header value"); a terminal gets a line.
fn write_token(token: &str, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    if let Some(path) = output {
        use anyhow::Context as _;
        return private_fs::write_atomic(path, token.as_bytes())
            .with_context(|| format!("writing {}", path.display()));
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.is_terminal() {
        writeln!(stdout, "{token}")?;
    } else {
        write!(stdout, "{token}")?;
    }
    stdout.flush()?;
    Ok(())
}

/// Structured logs on stderr; `RUST_LOG` overrides the default level.
fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // s3s logs whole requests (session tokens among the headers) at debug level and every S3
    // error answer at error level; the twin's own request log says what happened.
    if let Ok(quiet) = "s3s=off".parse() {
        filter = filter.add_directive(quiet);
    }
    // Colour only for a person at a terminal, never into log files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
