//! `loadgen agent`: the node agent's cache-hit path beside a minimal hyper server answering a
//! body of the same size (the ceiling on this machine), and the agent's memory with 10,000
//! cached entries.
//!
//! Starts `rolechain up`, prepares the web identity role as the STS load does, starts
//! `rolechain agent` in front of it (one association, pod-level session tags so that every pod
//! is its own cache entry), and `loadgen ceiling` with the agent's own answer as its body.
//! Both get the same keep-alive load of `GET /v1/credentials`; every answer is checked.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use http::Request;
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Serialize;
use tokio::process::Command;

use crate::load::{self, Outcome, Scenario, SessionKey};
use crate::targets::{self, NAMESPACE, SERVICE_ACCOUNT};
use crate::wire::Connection;

/// Options of `loadgen agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The `rolechain` binary (`rolechain up` and `rolechain agent`).
    #[arg(long, value_name = "PATH")]
    pub rolechain: PathBuf,
    /// A short run: two rounds of 3 s per target instead of three of 10 s.
    #[arg(long)]
    pub quick: bool,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Cache entries to fill before measuring memory.
    #[arg(long, default_value_t = 10_000)]
    pub entries: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `loadgen agent` measured.
#[derive(Debug, Serialize)]
pub struct AgentReport {
    cpus: usize,
    /// The agent's cache hits, then the ceiling, same load.
    outcomes: Vec<Outcome>,
    /// Agent requests/s over the ceiling's.
    ratio: f64,
    /// The agent's RSS when ready, with one entry, and with `entries` entries.
    rss_kib_started: u64,
    rss_kib_filled: u64,
    entries: usize,
    /// How long filling took (each entry is one AssumeRoleWithWebIdentity at the twin).
    fill_seconds: f64,
    pub ok: bool,
    pub problems: Vec<String>,
}

/// Runs the agent's load and returns its report.
pub async fn run(args: &AgentArgs) -> anyhow::Result<AgentReport> {
    let seconds = if args.quick { 3.0 } else { 10.0 };
    let duration = Duration::from_secs_f64(seconds);
    let warmup = Duration::from_secs_f64((seconds / 5.0).min(1.0));
    let dir = tempfile::tempdir()?;
    let mut problems = Vec::new();

    let twin = targets::start_twin(&args.rolechain, dir.path(), "127.0.0.1:0").await?;
    let (signer, issuer) = targets::twin_identity(dir.path())?;
    let prepared = targets::prepare(&twin.endpoint, signer, &issuer)
        .await
        .with_context(|| format!("preparing the twin; its log:\n{}", twin.log_tail()))?;
    let associations = dir.path().join("associations.yaml");
    std::fs::write(
        &associations,
        format!(
            "associations:\n  - namespace: {NAMESPACE}\n    serviceAccount: {SERVICE_ACCOUNT}\n    roleArn: {}\n    sessionTags: pod\n",
            prepared.web_identity_role_arn
        ),
    )?;
    let mut command = Command::new(&args.rolechain);
    command
        .args(["agent", "--cluster", "development-cluster", "--issuer"])
        .arg(issuer.issuer_url())
        .args(["--audience", targets::AUDIENCE, "--associations"])
        .arg(&associations)
        .args(["--endpoint-url", &format!("http://{}", twin.endpoint.host)])
        .args(["--region", "us-east-1", "--bind", "127.0.0.1:0"])
        .args([
            "--probe-bind",
            "127.0.0.1:0",
            "--metrics-bind",
            "127.0.0.1:0",
        ])
        // Filling 10,000 entries is 10,000 upstream chains: no upstream rate limit here.
        .args(["--upstream-rate", "0", "--max-cache-entries"])
        .arg((args.entries + 1000).to_string())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn");
    let (agent, printed) =
        targets::start_process("agent", command, dir.path().join("agent.log"), "metrics at")
            .await?;
    let metrics_addr = printed
        .iter()
        .find_map(|l| l.strip_prefix("rolechain agent: metrics at http://"))
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| anyhow!("the agent printed no metrics address: {printed:?}"))?
        .to_string();
    let rss_kib_started = agent.rss_kib().unwrap_or_default();

    let pod_token = |i: usize| -> anyhow::Result<String> {
        let mut request = oidc::TokenRequest::new(
            NAMESPACE,
            SERVICE_ACCOUNT,
            "6a0c3b4e-7d1f-4e2a-9b3c-000000000001",
            targets::AUDIENCE,
        );
        request.pod = Some(oidc::BoundObject {
            name: format!("loadgen-pod-{i}"),
            uid: format!("00000000-0000-4000-8000-{i:012}"),
        });
        Ok(issuer.mint(&request)?)
    };
    let token = pod_token(0)?;
    let credentials = Arc::new(agent.endpoint.clone());
    let first = get_credentials(
        &mut Connection::new(credentials.addr),
        &credentials.host,
        &token,
    )
    .await
    .with_context(|| format!("the agent's first answer; its log:\n{}", agent.log_tail()))?;

    let ceiling_body = dir.path().join("ceiling-body.json");
    std::fs::write(&ceiling_body, &first)?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("ceiling").arg("--body-file").arg(&ceiling_body);
    let (ceiling, _) = targets::start_process(
        "ceiling",
        command,
        dir.path().join("ceiling.log"),
        "listening",
    )
    .await?;

    // Interleaved rounds (agent, ceiling, agent, ceiling, …), each target's median kept: other
    // work on the machine then weighs on both alike instead of on whichever ran first.
    let rounds = if args.quick { 2 } else { 3 };
    let mut runs: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, (server, name)) in [(&agent, "cache hit"), (&ceiling, "same body")]
            .into_iter()
            .enumerate()
        {
            let scenario = credentials_scenario(name, &server.endpoint.host, &token);
            runs[i].push(
                load::run(
                    server,
                    server.endpoint.addr,
                    scenario,
                    args.connections,
                    warmup,
                    duration,
                )
                .await,
            );
        }
    }
    let outcomes: Vec<Outcome> = runs.into_iter().map(median).collect();
    let ratio = outcomes[0].requests_per_second / outcomes[1].requests_per_second.max(1.0);

    // Fill: one entry per pod, `entries` pods, 16 at a time.
    let started = Instant::now();
    let tokens: Vec<String> = (1..args.entries)
        .map(pod_token)
        .collect::<anyhow::Result<_>>()?;
    let tokens = Arc::new(tokens);
    let mut fillers = Vec::new();
    for lane in 0..16 {
        let (tokens, credentials) = (Arc::clone(&tokens), Arc::clone(&credentials));
        fillers.push(tokio::spawn(async move {
            let mut conn = Connection::new(credentials.addr);
            let mut failures = Vec::new();
            for token in tokens.iter().skip(lane).step_by(16) {
                if let Err(e) = get_credentials(&mut conn, &credentials.host, token).await {
                    failures.push(format!("{e:#}"));
                }
            }
            failures
        }));
    }
    let mut fill_failures = Vec::new();
    for filler in fillers {
        fill_failures.extend(filler.await?);
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    if !fill_failures.is_empty() {
        problems.push(format!(
            "filling the cache: {} requests failed, e.g. {}",
            fill_failures.len(),
            fill_failures[0]
        ));
    }
    let page =
        String::from_utf8_lossy(&crate::wire::get(&metrics_addr, "/metrics").await?).into_owned();
    let entries = page
        .lines()
        .find_map(|l| l.strip_prefix("rolechain_agent_cache_entries "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_default() as usize;
    if entries != args.entries {
        problems.push(format!(
            "the agent holds {entries} entries, not {}",
            args.entries
        ));
    }
    let rss_kib_filled = agent.rss_kib().unwrap_or_default();

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
        if o.requests == 0 {
            problems.push(format!("{} {}: no request completed", o.target, o.scenario));
        }
    }
    drop(ceiling);
    if !agent.stop().await? {
        problems.push("the agent did not stop cleanly on SIGTERM".into());
    }
    drop(twin);
    Ok(AgentReport {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        outcomes,
        ratio,
        rss_kib_started,
        rss_kib_filled,
        entries,
        fill_seconds,
        ok: problems.is_empty(),
        problems,
    })
}

/// The run with the median requests/s (errors of every run summed, so none is hidden).
fn median(mut runs: Vec<Outcome>) -> Outcome {
    let errors: u64 = runs.iter().map(|o| o.errors).sum();
    let samples: Vec<String> = runs
        .iter()
        .flat_map(|o| o.error_samples.clone())
        .take(5)
        .collect();
    runs.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    let mut middle = runs.swap_remove(runs.len() / 2);
    middle.errors = errors;
    middle.error_samples = samples;
    middle
}

fn credentials_request(host: &str, token: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    Ok(Request::get("/v1/credentials")
        .header("Host", host)
        .header("Authorization", token)
        .body(Full::new(Bytes::new()))?)
}

/// A checked `/v1/credentials` answer's body.
async fn get_credentials(conn: &mut Connection, host: &str, token: &str) -> anyhow::Result<Bytes> {
    let (status, body) = conn.send(credentials_request(host, token)?).await?;
    if status != http::StatusCode::OK {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    check_credentials(&body).map_err(|e| anyhow!(e))?;
    Ok(body)
}

fn check_credentials(body: &[u8]) -> Result<SessionKey, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| {
        v[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name}"))
    };
    field("Expiration")?;
    Ok(SessionKey {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("Token")?,
    })
}

fn credentials_scenario(name: &'static str, host: &str, token: &str) -> Scenario {
    let (host, token) = (host.to_string(), token.to_string());
    Scenario {
        name,
        unique_sessions: false,
        make: Box::new(move || credentials_request(&host, &token)),
        check: Box::new(check_credentials),
    }
}

/// The human-readable report.
pub fn table(r: &AgentReport) -> String {
    let mut out = format!(
        "agent load: {} cpus, GET /v1/credentials with the pod's token\n{:<10} {:<10} {:>6} {:>10} {:>8} {:>8} {:>12}\n",
        r.cpus, "target", "scenario", "conns", "req/s", "p50 ms", "p99 ms", "cpu us/req"
    );
    for o in &r.outcomes {
        out.push_str(&format!(
            "{:<10} {:<10} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>12}\n",
            o.target,
            o.scenario,
            o.connections,
            o.requests_per_second,
            o.p50_ms,
            o.p99_ms,
            o.server_cpu_us_per_request
                .map_or("-".to_string(), |c| format!("{c:.1}"))
        ));
    }
    out.push_str(&format!(
        "agent/ceiling requests/s: {:.2}\nagent RSS: {:.1} MiB when ready, {:.1} MiB with {} entries (filled in {:.1} s)\n",
        r.ratio,
        r.rss_kib_started as f64 / 1024.0,
        r.rss_kib_filled as f64 / 1024.0,
        r.entries,
        r.fill_seconds
    ));
    out
}

/// Options of `loadgen ceiling`.
#[derive(Debug, Clone, clap::Args)]
pub struct CeilingArgs {
    /// The body every answer carries.
    #[arg(long, value_name = "FILE")]
    pub body_file: PathBuf,
}

/// `loadgen ceiling`: a minimal hyper HTTP/1.1 server on a free loopback port answering every
/// request with 200, `application/json` and the given body: what a server does at the least.
pub async fn ceiling(args: &CeilingArgs) -> anyhow::Result<()> {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let body = Bytes::from(std::fs::read(&args.body_file)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "loadgen ceiling: listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    http::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(body))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
