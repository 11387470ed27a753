//! `rolechain explain pod` and `rolechain lint`: thin commands over `explain::explain_pod` and
//! `explain::lint`, given a snapshot of the world, read from the running twin
//! (`GET /_rolechain/snapshot`, found from the data directory) or, offline, from a world file
//! seeded into a throwaway store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use twin_state::{Snapshot, Store, World};

use crate::local;
use crate::twin_api::TwinApi;

/// Where the snapshot comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// Read this world file (YAML, as `rolechain up --world`) instead of asking the twin.
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,
    /// The data directory of the `rolechain up` to ask.
    #[arg(
        long,
        value_name = "DIR",
        env = "ROLECHAIN_DATA_DIR",
        default_value = local::DEFAULT_DATA_DIR
    )]
    pub data_dir: PathBuf,
    /// The twin to ask; default: the one `rolechain up` recorded in `--data-dir`.
    #[arg(
        long,
        value_name = "URL",
        env = "ROLECHAIN_ENDPOINT",
        conflicts_with = "world"
    )]
    pub twin: Option<String>,
}

/// `rolechain explain pod`.
#[derive(Debug, Clone, clap::Args)]
pub struct PodArgs {
    /// The cluster (default: the only one).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The pod's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The pod's service account.
    #[arg(long = "service-account", value_name = "NAME")]
    pub service_account: String,
    /// The request the pod makes with its credentials, e.g. s3:GetObject.
    #[arg(long)]
    pub action: String,
    /// The resource ARN of that request (or *).
    #[arg(long)]
    pub resource: String,
    /// Print the steps as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: Source,
}

/// `rolechain lint`.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: Source,
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The world's snapshot: the file seeded into a throwaway store, so it is read exactly as
/// `rolechain up --world` would store it.
fn world_snapshot(path: &Path) -> anyhow::Result<Snapshot> {
    // The world's errors name the file and the cause already.
    let world = World::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = Scratch(
        std::env::temp_dir().join(format!("rolechain-lint-{}-{nanos}", std::process::id())),
    );
    private_fs::create_dir_all(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
    let store = Store::open(&dir.0).context("opening a scratch store")?;
    store
        .seed_if_empty(&world)
        .with_context(|| format!("seeding {}", path.display()))?;
    Ok(store.snapshot()?)
}

async fn twin_snapshot(source: &Source) -> anyhow::Result<Snapshot> {
    let (base, from) = local::twin_endpoint(source.twin.as_deref(), &source.data_dir);
    let api = TwinApi::new(base.clone(), from);
    let answer = api
        .call(http::Method::GET, "/_rolechain/snapshot", None)
        .await?;
    if !answer.status.is_success() {
        anyhow::bail!(
            "the twin at {base} refused the snapshot: {}",
            answer.message()
        );
    }
    serde_json::from_value(answer.body)
        .with_context(|| format!("the twin at {base} sent a snapshot this rolechain cannot read"))
}

/// The snapshot `source` names.
fn snapshot(source: &Source) -> anyhow::Result<Snapshot> {
    if let Some(path) = &source.world {
        return world_snapshot(path);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(twin_snapshot(source))
}

/// Runs `explain pod`: exit 0 when every step holds, 1 when one fails, 2 on invalid input.
pub fn explain_pod(args: &PodArgs) -> ExitCode {
    let snap = match snapshot(&args.source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rolechain explain pod: {e:#}");
            return ExitCode::from(2);
        }
    };
    // As every command that means one cluster: `up`'s examples are not the default.
    let cluster = args.cluster.clone().or_else(|| {
        let others: Vec<&str> = snap
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| *n != crate::local::EXAMPLES_CLUSTER)
            .collect();
        match others.as_slice() {
            [one] if others.len() < snap.clusters.len() => Some((*one).to_string()),
            _ => None,
        }
    });
    let query = explain::PodQuery {
        cluster,
        namespace: args.namespace.clone(),
        service_account: args.service_account.clone(),
        action: Some(args.action.clone()),
        resource: Some(args.resource.clone()),
    };
    match explain::explain_pod(&snap, &query) {
        Ok(e) => {
            if args.json {
                print!("{}", explain::render_pod_json(&e));
            } else {
                print!("{}", explain::render_pod_text(&e));
            }
            if e.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("rolechain explain pod: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `lint`: exit 0 without error-level findings, 1 with, 2 on invalid input.
pub fn lint(args: &LintArgs) -> ExitCode {
    let snap = match snapshot(&args.source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rolechain lint: {e:#}");
            return ExitCode::from(2);
        }
    };
    let findings = explain::lint(&snap);
    if args.json {
        let json = serde_json::json!({
            "findings": findings,
            "errors": findings.iter().filter(|f| f.severity == explain::Severity::Error).count(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", explain::render_lint_text(&findings));
    }
    if explain::has_errors(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
