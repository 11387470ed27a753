//! `rolechain up`: the twin of AWS's identity plane, with the default world from the seeds.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use twin::{TwinConfig, TwinServer};
use twin_state::{Store, World};

use crate::local::{self, IssuerRecord};
use crate::local_clusters::LocalClusters;

/// Options of `rolechain up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where state, issuer keys and the AWS config files live.
    #[arg(long, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to serve the twin on.
    #[arg(long, value_name = "ADDR", default_value_t = twin::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The URL clients reach the twin at when it is not the listen address (behind a proxy,
    /// or listening on 0.0.0.0): issuer URLs use it, and the admin endpoints answer its host.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// A world file (YAML) to seed a new data directory with, instead of the default world.
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,
    /// Make IAM changes (roles, trust and permission policies, OIDC providers) visible to STS
    /// only this long after they are made, as AWS's eventual consistency does: `10s`,
    /// `1500ms`, `2m`, or seconds. IAM's own API sees them at once. 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_delay)]
    pub iam_propagation_delay: Duration,
    /// Answer EKS Auth's `AssumeRoleForPodIdentity` with `ThrottlingException` beyond this many
    /// requests per second per calling account, to rehearse throttling. Off by default.
    #[arg(long, value_name = "PER_SECOND", value_parser = clap::value_parser!(u32).range(1..))]
    pub eks_auth_rate_limit: Option<u32>,
    /// Do not run a node agent on loopback for each local cluster.
    #[arg(long)]
    pub no_agent: bool,
    /// Seed a new data directory without the examples (the `rolechain-examples` cluster, its
    /// providers, `example-…` roles and service accounts). A `--world` file has none anyway.
    #[arg(long)]
    pub no_examples: bool,
}

/// `--public-url`: an `http://` or `https://` URL with a host.
fn parse_public_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("invalid URL '{text}': it must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid URL '{text}': it has no host"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A duration as the command line takes it (`10s`, `1500ms`, `2m`, `1h`, or seconds): the
/// clock's parser, so `rolechain clock advance` and the twin's route read the same.
pub(crate) use twin_state::clock::parse_duration as parse_delay;

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    local::prepare_data_dir(&args.data_dir)?;
    let store = Arc::new(
        Store::open(local::state_dir(&args.data_dir)).with_context(|| {
            format!(
                "opening the twin's state in {} (is another `rolechain up` using it?)",
                args.data_dir.display()
            )
        })?,
    );
    store.set_iam_propagation_delay(args.iam_propagation_delay);
    let mut config = TwinConfig::default();
    config.listen = args.listen;
    config.public_url.clone_from(&args.public_url);
    let mut server = TwinServer::bind(config).await?;
    let base_url = server.base_url().to_string();

    let world = match &args.world {
        Some(path) => World::load(path)?,
        None => World::default_world(|cluster| {
            twin::issuer_url(&base_url, &twin::derive_issuer_id(cluster))
        }),
    };
    let seeded = store.seed_if_empty(&world)?;
    if seeded && args.world.is_none() && !args.no_examples {
        if let Err(e) = crate::world_examples::seed(&store, &args.data_dir, &base_url) {
            eprintln!("rolechain up: the examples were not seeded: {e:#}");
        }
    }
    // The agents start before the twin serves; they load the issuers' keys once it does.
    let (stop_agents, agents_stop) = tokio::sync::watch::channel(false);
    let local_clusters = LocalClusters::new(
        server.issuers().clone(),
        Arc::clone(&store),
        &args.data_dir,
        &base_url,
        (!args.no_agent).then_some(agents_stop),
    );
    let clusters = local_clusters.serve_stored()?;
    let profiles = write_aws_files(&store, &args.data_dir, &base_url)?;
    local::write_endpoint(&args.data_dir, &base_url)?;
    let mut eks_auth = twin::EksAuthConfig::default();
    eks_auth.max_requests_per_second = args.eks_auth_rate_limit;
    crate::services::register(
        &mut server,
        &store,
        eks_auth,
        Arc::new(local_clusters.clone()),
    )?;
    server.serve_service_accounts(Arc::clone(&store));
    server.serve_clock(Arc::clone(&store));
    let agents = local_clusters.start_agents(&clusters).await?;

    print!(
        "{}",
        summary(
            &args.data_dir,
            &base_url,
            seeded,
            &clusters,
            &profiles,
            args.iam_propagation_delay,
            &agents,
        )
    );
    // The examples' chains are checked through the twin once it serves (its listener is
    // bound: the requests wait for it).
    let examples_agent = agents
        .iter()
        .find(|a| a.cluster == crate::world_examples::CLUSTER)
        .map(|a| a.url.clone());
    let checking = Arc::clone(&store);
    let (data_dir, checked_url) = (args.data_dir.clone(), base_url.clone());
    tokio::spawn(async move {
        let lines = crate::world_examples::check(
            &checking,
            &data_dir,
            &checked_url,
            examples_agent.as_deref(),
        )
        .await;
        if let Some(lines) = lines {
            print!("{lines}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    });
    server
        .serve(async move {
            shutdown_signal().await;
            let _ = stop_agents.send(true);
        })
        .await?;
    println!("rolechain up: stopped");
    Ok(())
}

/// Writes `aws/config` and `aws/credentials`: one profile per account alias (and `default`,
/// the first account), each with the account's admin key and the twin as endpoint.
fn write_aws_files(store: &Store, data_dir: &Path, base_url: &str) -> anyhow::Result<Vec<String>> {
    let mut config = String::new();
    let mut credentials = String::new();
    let mut profiles = Vec::new();
    for (index, account) in store.list_accounts()?.iter().enumerate() {
        let Some(key) = store
            .list_access_keys(&account.id)?
            .into_iter()
            .find(|k| k.principal != "root")
        else {
            continue;
        };
        let mut names = vec![account.alias.clone()];
        if index == 0 {
            names.insert(0, "default".to_string());
        }
        for name in names {
            let section = if name == "default" {
                "[default]".to_string()
            } else {
                format!("[profile {name}]")
            };
            let _ = writeln!(
                config,
                "{section}\n# account {} ({})\nregion = us-east-1\nendpoint_url = {base_url}\ns3 =\n    addressing_style = path\n",
                account.id, account.alias
            );
            let _ = writeln!(
                credentials,
                "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                key.access_key_id, key.secret_access_key
            );
            profiles.push(format!("{name} ({})", account.id));
        }
    }
    let aws = data_dir.join("aws");
    local::write_private(&aws.join("config"), &config)?;
    local::write_private(&aws.join("credentials"), &credentials)?;
    Ok(profiles)
}

fn summary(
    data_dir: &Path,
    base_url: &str,
    seeded: bool,
    clusters: &[IssuerRecord],
    profiles: &[String],
    iam_propagation_delay: Duration,
    agents: &[crate::local_agents::LocalAgent],
) -> String {
    let aws = std::path::absolute(data_dir.join("aws")).unwrap_or_else(|_| data_dir.join("aws"));
    let mut out = String::new();
    let _ = writeln!(out, "rolechain up: the AWS twin is serving on {base_url}");
    let _ = writeln!(
        out,
        "  state: {} ({})",
        data_dir.display(),
        if seeded {
            "new, seeded with the world"
        } else {
            "existing"
        }
    );
    for c in clusters {
        let _ = writeln!(
            out,
            "  cluster {} (account {}, {}): OIDC issuer {}",
            c.cluster, c.account, c.region, c.issuer_url
        );
    }
    let _ = writeln!(out, "  profiles: {}", profiles.join(", "));
    let _ = writeln!(out, "  health: {base_url}/_rolechain/health");
    if !iam_propagation_delay.is_zero() {
        let _ = writeln!(
            out,
            "  IAM changes reach STS {iam_propagation_delay:?} after they are made (--iam-propagation-delay)"
        );
    }
    let _ = writeln!(out, "\nTo use it from this shell:");
    let _ = writeln!(out, "  export AWS_CONFIG_FILE={}/config", aws.display());
    let _ = writeln!(
        out,
        "  export AWS_SHARED_CREDENTIALS_FILE={}/credentials",
        aws.display()
    );
    for a in agents {
        let _ = writeln!(
            out,
            "  agent of {}: {} (chains: {}; `rolechain exec` uses it)",
            a.cluster,
            a.url,
            a.associations.display()
        );
    }
    if seeded {
        if let Some(cache) = stale_cli_cache() {
            let _ = writeln!(
                out,
                "\nNote: the AWS CLI caches assumed-role credentials in {} and it has entries.\n  \
                 Those of an older twin are refused by this one (InvalidClientTokenId): remove them\n  \
                 (rm -r {}) if a profile that assumes a role fails that way.",
                cache.display(),
                cache.display()
            );
        }
    }
    let _ = writeln!(
        out,
        "Each seed, command for command: {} (run one in an empty directory after the exports).",
        examples_dir()
    );
    let _ = writeln!(out, "Stop with Ctrl-C.");
    out
}

/// Where the seeds' scripts are: the checkout this binary was built from when it is still
/// there, else where they are in the source tree.
fn examples_dir() -> String {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    match std::fs::canonicalize(&built_from) {
        Ok(dir) if dir.join("seed-000/run.sh").is_file() => {
            format!("{}/seed-000/run.sh … seed-004/run.sh", dir.display())
        }
        _ => "examples/seed-000/run.sh … seed-004/run.sh in rolechain's source tree".to_string(),
    }
}

/// `~/.aws/cli/cache` when it holds files: credentials the AWS CLI cached from some earlier
/// endpoint, which a new twin's keys do not match.
fn stale_cli_cache() -> Option<PathBuf> {
    let cache = PathBuf::from(std::env::var_os("HOME")?).join(".aws/cli/cache");
    let mut entries = std::fs::read_dir(&cache).ok()?;
    entries.next().is_some().then_some(cache)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
