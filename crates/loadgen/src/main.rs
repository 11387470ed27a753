//! `loadgen`: the load generator behind `scripts/load`.
//!
//! Starts `rolechain up` as a separate process (a new data directory, a free loopback port),
//! creates an OIDC provider and two roles through the twin's IAM API, then loads its STS over
//! many keep-alive connections with AssumeRoleWithWebIdentity (unsigned, a token of the
//! development cluster's issuer, a trust policy with `:aud` and `:sub` conditions as in seed
//! 002) and AssumeRole (SigV4-signed by the account's admin). Every answer is checked: a 200
//! with the role's session, a fresh access key each time. Any failure makes the exit status 1.
//!
//! In the same run it measures how many RS256 tokens one thread verifies per second
//! (`oidc::Verifier`, the token the load uses): the cost floor of AssumeRoleWithWebIdentity, so
//! requests/s are also reported as a ratio of it. With `--moto-server`, moto's server gets the
//! same two scenarios as a baseline (it checks neither signatures nor tokens).
//!
//! Last, a crash check: the twin is killed with SIGKILL in the middle of AssumeRole load and
//! restarted on the same data directory; every session it acknowledged must still be there.

mod agent;
mod load;
mod targets;
mod webhook;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;

use crate::load::Outcome;
use crate::targets::{Prepared, Server};

/// Load the twin's STS (and moto's, as a baseline) over loopback HTTP; or, with `agent`, the
/// node agent beside a minimal server.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    sts: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// The node agent's cache-hit requests/s and latency beside a minimal hyper server
    /// answering a body of the same size, and its memory with 10,000 cached entries.
    Agent(agent::AgentArgs),
    /// A minimal HTTP server answering every request with one body (the agent's ceiling).
    Ceiling(agent::CeilingArgs),
    /// The webhook's memory with 50,000 service accounts listed from a fake API server, beside
    /// the same webhook with none.
    Webhook(webhook::WebhookArgs),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// The `rolechain` binary to start (`rolechain up`).
    #[arg(long, value_name = "PATH", required = true)]
    rolechain: Option<PathBuf>,
    /// moto's `moto_server` script: load it too, as a baseline.
    #[arg(long, value_name = "PATH")]
    moto_server: Option<PathBuf>,
    /// A short run (for the test command): 3 s per scenario instead of 10 s.
    #[arg(long)]
    quick: bool,
    /// Seconds measured per scenario (overrides the --quick default).
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    connections: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    cpus: usize,
    /// RS256 tokens one thread verifies per second (`oidc::Verifier`, keys cached).
    rs256_verifies_per_second: f64,
    outcomes: Vec<Outcome>,
    /// Sessions acknowledged by a twin killed with SIGKILL under load, checked after restart.
    crash: CrashCheck,
    /// Whether every request succeeded, every session was new, and the twin stopped cleanly.
    ok: bool,
    problems: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = match cli.mode {
        Some(Mode::Ceiling(ceiling)) => {
            return match runtime.block_on(agent::ceiling(&ceiling)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen ceiling: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Mode::Agent(agent_args)) => return run_agent(&runtime, &agent_args),
        Some(Mode::Webhook(webhook_args)) => {
            return finish(
                "loadgen webhook",
                runtime.block_on(webhook::run(&webhook_args)),
                webhook_args.json,
                webhook::table,
            )
        }
        None => cli.sts,
    };
    let json = args.json;
    finish("loadgen", runtime.block_on(run(&args)), json, table)
}

fn run_agent(runtime: &tokio::runtime::Runtime, args: &agent::AgentArgs) -> ExitCode {
    finish(
        "loadgen agent",
        runtime.block_on(agent::run(args)),
        args.json,
        agent::table,
    )
}

/// A report's verdict: whether every check held, and what failed.
trait Verdict {
    fn problems(&self) -> &[String];
}

impl Verdict for webhook::WebhookReport {
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl Verdict for Report {
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl Verdict for agent::AgentReport {
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// Prints `result` (as JSON, or as `table` renders it) and exits 0 only when it has no
/// problem.
fn finish<R: Serialize + Verdict>(
    what: &str,
    result: anyhow::Result<R>,
    json: bool,
    table: fn(&R) -> String,
) -> ExitCode {
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{what}: FAILED: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("{what}: {e}"),
        }
    } else {
        print!("{}", table(&report));
    }
    if report.problems().is_empty() {
        return ExitCode::SUCCESS;
    }
    for p in report.problems() {
        eprintln!("{what}: FAILED: {p}");
    }
    ExitCode::FAILURE
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let rolechain = args
        .rolechain
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--rolechain is required"))?;
    let seconds = args.seconds.unwrap_or(if args.quick { 3.0 } else { 10.0 });
    let duration = Duration::from_secs_f64(seconds);
    let warmup = Duration::from_secs_f64((seconds / 5.0).min(1.0));
    let dir = tempfile::tempdir()?;
    let mut outcomes = Vec::new();
    let mut problems = Vec::new();

    let twin = targets::start_twin(rolechain, dir.path(), "127.0.0.1:0").await?;
    let (signer, issuer) = targets::twin_identity(dir.path())?;
    let prepared = targets::prepare(&twin.endpoint, signer, &issuer)
        .await
        .with_context(|| format!("preparing the twin; its log:\n{}", twin.log_tail()))?;
    // Measured while the twin is idle, so the figure is one thread's alone.
    let rs256 = rs256_rate(Arc::clone(&issuer), prepared.token.clone(), duration)?;
    load_target(&twin, &prepared, args, warmup, duration, &mut outcomes).await;
    let (twin, crash) = crash_check(args, dir.path(), twin, &prepared).await?;
    let twin_log = twin.log.clone();
    if !twin.stop().await? {
        problems.push(format!(
            "rolechain up did not stop cleanly on SIGTERM (log: {})",
            twin_log.display()
        ));
    }

    if let Some(moto_server) = &args.moto_server {
        let moto = targets::start_moto(moto_server, dir.path()).await?;
        // moto takes any key and does not verify tokens; a throwaway issuer mints the token.
        let local = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
            format!("http://{}/id/loadgen", moto.endpoint.host),
            dir.path().join("moto-issuer-keys"),
        ))?;
        let signer = wire::Signer::new("testing", "testing");
        let mut prepared = targets::prepare(&moto.endpoint, signer, &local)
            .await
            .with_context(|| format!("preparing moto; its log:\n{}", moto.log_tail()))?;
        // moto's AssumeRoleWithWebIdentityResult has no SubjectFromWebIdentityToken.
        prepared.subject = None;
        load_target(&moto, &prepared, args, warmup, duration, &mut outcomes).await;
        drop(moto);
    }

    for o in &outcomes {
        if o.errors > 0 {
            problems.push(format!(
                "{} {}: {} failed requests, e.g. {}",
                o.target,
                o.scenario,
                o.errors,
                o.error_samples.join(" | ")
            ));
        }
        if o.duplicate_keys > 0 {
            problems.push(format!(
                "{} {}: {} access key ids were handed out twice",
                o.target, o.scenario, o.duplicate_keys
            ));
        }
        if o.requests == 0 {
            problems.push(format!("{} {}: no request completed", o.target, o.scenario));
        }
    }
    if crash.acknowledged == 0 {
        problems.push("crash check: no session was acknowledged before the kill".into());
    }
    if crash.lost > 0 || !crash.failures.is_empty() {
        problems.push(format!(
            "crash check: {} of {} acknowledged sessions lost after SIGKILL, {} failed requests before it; e.g. {}",
            crash.lost,
            crash.acknowledged,
            crash.failures.len(),
            crash.failures.join(" | ")
        ));
    }
    Ok(Report {
        crash,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        rs256_verifies_per_second: rs256,
        ok: problems.is_empty(),
        outcomes,
        problems,
    })
}

/// What the crash check found.
#[derive(Debug, Serialize)]
struct CrashCheck {
    /// Sessions the twin answered 200 for before it was killed.
    acknowledged: usize,
    /// Of those, how many the restarted twin does not know.
    lost: usize,
    /// Failures other than the kill's (a few), and of the check itself.
    failures: Vec<String>,
}

/// Kills the twin with SIGKILL in the middle of AssumeRole load, restarts `rolechain up` on the
/// same data directory and address, and checks that every session acknowledged before the kill
/// is there: its credentials must pass GetCallerIdentity as the role's session.
async fn crash_check(
    args: &Args,
    dir: &std::path::Path,
    mut twin: Server,
    p: &Prepared,
) -> anyhow::Result<(Server, CrashCheck)> {
    let listen = twin.endpoint.host.clone();
    let (acknowledged, mut failures) = load::run_until_killed(
        p,
        load::assume_role(p),
        args.connections,
        Duration::from_millis(700),
        || twin.kill_hard(),
    )
    .await?;
    failures.truncate(5);
    let rolechain = args
        .rolechain
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--rolechain is required"))?;
    let twin = targets::start_twin(rolechain, dir, &listen)
        .await
        .context("restarting rolechain up after SIGKILL")?;
    let role_name = p.assume_role_arn.rsplit('/').next().unwrap_or_default();
    let want = format!(
        "arn:aws:sts::{}:assumed-role/{role_name}/{}",
        p.account,
        load::SESSION_NAME
    );
    let total = acknowledged.len();
    let acknowledged = Arc::new(acknowledged);
    let mut checkers = Vec::new();
    const CHECKERS: usize = 8;
    for start in 0..CHECKERS {
        let acknowledged = Arc::clone(&acknowledged);
        let endpoint = twin.endpoint.clone();
        let want = want.clone();
        checkers.push(tokio::spawn(async move {
            let mut lost = Vec::new();
            for s in acknowledged.iter().skip(start).step_by(CHECKERS) {
                let signer = wire::Signer::with_token(
                    &s.access_key_id,
                    &s.secret_access_key,
                    Some(&s.session_token),
                );
                let body =
                    wire::form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]);
                let found = match wire::signed(&endpoint, &signer, "sts", body) {
                    Ok(req) => wire::call(&endpoint, req, "GetCallerIdentity", &["Arn"]).await,
                    Err(e) => Err(e),
                };
                match found {
                    Ok(f) if f["Arn"] == want => {}
                    Ok(f) => lost.push(format!("{}: Arn {}", s.access_key_id, f["Arn"])),
                    Err(e) => lost.push(format!("{}: {e:#}", s.access_key_id)),
                }
            }
            lost
        }));
    }
    let mut lost = 0;
    for checker in checkers {
        let missing = checker.await?;
        lost += missing.len();
        failures.extend(missing.into_iter().take(3));
    }
    Ok((
        twin,
        CrashCheck {
            acknowledged: total,
            lost,
            failures,
        },
    ))
}

async fn load_target(
    server: &Server,
    prepared: &Prepared,
    args: &Args,
    warmup: Duration,
    duration: Duration,
    outcomes: &mut Vec<Outcome>,
) {
    for scenario in [load::web_identity(prepared), load::assume_role(prepared)] {
        outcomes.push(
            load::run(
                server,
                prepared.endpoint.addr,
                scenario,
                args.connections,
                warmup,
                duration,
            )
            .await,
        );
    }
}

/// RS256 verifications per second on one thread: `oidc::Verifier` (with the issuer's keys as
/// its JWKS source, so after the first call only the signature and claims are checked) on the
/// token the load uses.
fn rs256_rate(issuer: Arc<oidc::Issuer>, token: String, duration: Duration) -> anyhow::Result<f64> {
    std::thread::spawn(move || -> anyhow::Result<f64> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        runtime.block_on(async {
            let issuer_url = issuer.issuer_url().to_string();
            let verifier = oidc::Verifier::new(Arc::clone(&issuer));
            let audience_ok = |aud: &str| aud == targets::AUDIENCE;
            verifier.verify(&token, &issuer_url, audience_ok).await?;
            let start = Instant::now();
            let mut count = 0u64;
            while start.elapsed() < duration {
                for _ in 0..64 {
                    let verified = verifier.verify(&token, &issuer_url, audience_ok).await?;
                    std::hint::black_box(verified);
                }
                count += 64;
            }
            Ok(count as f64 / start.elapsed().as_secs_f64())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the RS256 measurement thread panicked"))?
}

fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nSTS load over loopback ({} CPUs, load generator on the same machine)",
        r.cpus
    );
    let _ = writeln!(
        out,
        "RS256 verification, one thread (oidc::Verifier): {:>10.0} /s\n",
        r.rs256_verifies_per_second
    );
    let _ = writeln!(
        out,
        "{:<6} {:<27} {:>6} {:>11} {:>8} {:>8} {:>7} {:>9} {:>12}",
        "target",
        "scenario",
        "conns",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "÷ RS256/s",
        "server µs/req"
    );
    for o in &r.outcomes {
        let _ = writeln!(
            out,
            "{:<6} {:<27} {:>6} {:>11.0} {:>8.2} {:>8.2} {:>7} {:>9.2} {:>12}",
            o.target,
            o.scenario,
            o.connections,
            o.requests_per_second,
            o.p50_ms,
            o.p99_ms,
            o.errors,
            o.requests_per_second / r.rs256_verifies_per_second,
            o.server_cpu_us_per_request
                .map_or_else(|| "-".to_string(), |c| format!("{c:.0}"))
        );
    }
    let _ = writeln!(
        out,
        "crash check: twin killed (SIGKILL) under AssumeRole load and restarted: {} acknowledged sessions, {} lost",
        r.crash.acknowledged, r.crash.lost
    );
    for o in r.outcomes.iter().filter(|o| o.target == "twin") {
        if let Some(m) = r
            .outcomes
            .iter()
            .find(|m| m.target == "moto" && m.scenario == o.scenario)
        {
            if m.requests_per_second > 0.0 {
                let _ = writeln!(
                    out,
                    "twin ÷ moto, {}: {:.1}",
                    o.scenario,
                    o.requests_per_second / m.requests_per_second
                );
            }
        }
    }
    out
}
