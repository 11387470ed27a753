//! `rolechain exec`: runs a command as a pod of a local cluster would run it.
//!
//! The pod (given with `-f`, or built for `--service-account`) goes through the mutation core
//! as the webhook would mutate it, with the service account the running twin keeps and its
//! Pod Identity association. The projected token is minted by the cluster's issuer into a
//! private temporary directory (0700, files 0600, exactly the token) and re-minted at 80 % of
//! its lifetime, as kubelet does, while the command runs. Paths and the agent's address are
//! rewritten to local ones, and the SDKs are pointed at the twin (`AWS_ENDPOINT_URL`).
//!
//! The command's environment is a pod's, not the caller's: no AWS variable, profile, config or
//! credential file of the user's passes (`HOME` is the private directory, IMDS is off), so the
//! SDK's credential chain lands on exactly the provider the mutation set, and a user's real
//! AWS keys are never used or sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use http::StatusCode;
use serde_json::{json, Value};

use crate::local;
use crate::service_accounts::{Accounts, Target};
use crate::twin_api::TwinApi;

/// Variables a pod's environment keeps from the caller's: what finding and running programs
/// needs, nothing that configures AWS.
const PASSED_THROUGH: &[&str] = &["PATH", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// Options of `rolechain exec`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub target: Target,
    /// The pod's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The pod's service account (a pod of that service account is built).
    #[arg(
        long = "service-account",
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    pub service_account: Option<String>,
    /// The pod's manifest (YAML or JSON), as `kubectl apply -f` would take it.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The container whose environment the command gets (default: the first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The node agent that serves this pod (a rolechain chain, or a Pod Identity association),
    /// by its credentials URL, e.g. `http://127.0.0.1:8090/v1/credentials`: the pod then gets
    /// container credentials from it, as the webhook prefers them to IRSA.
    #[arg(long, value_name = "URL", env = "ROLECHAIN_AGENT")]
    pub agent: Option<String>,
    /// Re-mint the pod's token this often (default: at 80% of its lifetime, as kubelet does);
    /// `1s` rehearses a long-running pod's token rotations in seconds.
    #[arg(long, value_name = "DURATION", value_parser = crate::up::parse_delay)]
    pub token_refresh: Option<Duration>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The pod: from the file, or one container running as the service account.
fn build_pod(args: &ExecArgs) -> anyhow::Result<Value> {
    if let Some(file) = &args.file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("{} is not YAML or JSON", file.display()))?;
        let mut pods = docs
            .into_iter()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Pod"));
        let (Some(mut pod), None) = (pods.next(), pods.next()) else {
            bail!("{} must hold exactly one Pod", file.display());
        };
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&args.namespace)
            .to_string();
        pod["metadata"]["namespace"] = Value::String(namespace);
        return Ok(pod);
    }
    let sa = args.service_account.as_deref().unwrap_or("default");
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("exec-{sa}"), "namespace": args.namespace},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "main", "image": "local"}]}
    }))
}

/// A projected token kept fresh in the private directory.
struct Token {
    path: PathBuf,
    request: oidc::TokenRequest,
    lifetime: Duration,
}

fn write_token(issuer: &oidc::Issuer, token: &Token) -> anyhow::Result<()> {
    let jwt = issuer.mint(&token.request)?;
    private_fs::write_atomic(&token.path, jwt.as_bytes())
        .with_context(|| format!("writing {}", token.path.display()))
}

/// Re-mints the token at 80 % of its lifetime until `stop`, as kubelet refreshes projected
/// tokens.
fn keep_fresh(
    issuer: Arc<oidc::Issuer>,
    token: Token,
    every: Option<Duration>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let every = every
            .unwrap_or_else(|| token.lifetime.mul_f64(0.8))
            .max(Duration::from_secs(1));
        let tick = Duration::from_millis(200);
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(tick);
            waited += tick;
            if waited >= every {
                waited = Duration::ZERO;
                if let Err(e) = write_token(&issuer, &token) {
                    eprintln!("rolechain exec: refreshing the pod's token failed: {e:#}");
                }
            }
        }
    });
}

/// Removes the private directory when the command is done, whatever happened.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn private_dir() -> anyhow::Result<PrivateDir> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("rolechain-exec-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                private_fs::create_dir_all(&dir)
                    .with_context(|| format!("closing up {}", dir.display()))?;
                return Ok(PrivateDir(dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating a private directory in {}", base.display()))
            }
        }
    }
    bail!("no free private directory name in {}", base.display())
}

/// Runs the command as the pod; its exit status is returned as it is.
pub async fn run(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let (issuer_dir, record) = local::find_cluster(
        &args.target.data_dir,
        args.target.cluster.as_deref(),
        args.target.account.as_deref(),
    )?;
    let (base, from) = local::twin_endpoint(args.target.twin.as_deref(), &args.target.data_dir);
    let accounts = Accounts::of(TwinApi::new(base.clone(), from), &record);

    let pod = build_pod(args)?;
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or("pod")
        .to_string();
    let sa_name = pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .unwrap_or("default")
        .to_string();

    let sa = accounts.read(&namespace, &sa_name, "").await?;
    if sa.status != StatusCode::OK {
        // As the API server refuses a pod whose service account does not exist.
        bail!(
            "pods \"{pod_name}\" is forbidden: error looking up service account {namespace}/{sa_name}: {}",
            sa.message()
        );
    }
    let service_account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(sa.body).context("the twin's service account")?;
    let association = accounts.read(&namespace, &sa_name, "/association").await?;
    let associated = association.status == StatusCode::OK;
    let chain_file = crate::local_agents::associations_file(&args.target.data_dir, &record.cluster);
    let in_chain_file = chained(&chain_file, &namespace, &sa_name);
    // The agent `up` runs for this cluster, unless one is named.
    let agent_url = args.agent.clone().or_else(|| {
        std::fs::read_to_string(crate::local_agents::agent_file(&issuer_dir))
            .ok()
            .map(|u| u.trim().to_string())
            .filter(|u| u.starts_with("http"))
    });
    let pod_identity = associated || in_chain_file || args.agent.is_some();

    let settings = mutation::Settings {
        region: Some(record.region.clone()),
        ..mutation::Settings::default()
    };
    let mutated = mutation::mutate(&pod, Some(&service_account), pod_identity, &settings)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &mutated.mode {
        mutation::Mode::Untouched(mutation::Skip::NoRole) => eprintln!(
            "rolechain exec: pod {namespace}/{pod_name} gets no AWS credentials: service account {sa_name} has no eks.amazonaws.com/role-arn annotation and no Pod Identity association"
        ),
        mutation::Mode::Untouched(mutation::Skip::OptedOut) => eprintln!(
            "rolechain exec: pod {namespace}/{pod_name} opted out of mutation (eks.amazonaws.com/skip-pod-identity-webhook): it gets no AWS credentials"
        ),
        _ => {}
    }

    let container = pick_container(&mutated.pod, args.container.as_deref())?;
    let mut env = container_env(&container)?;

    let dir = private_dir()?;
    let home = dir.0.join("home");
    private_fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(volume) = &mutated.token {
        let issuer = Arc::new(
            oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
                record.issuer_url.clone(),
                local::key_dir(&issuer_dir),
            ))
            .with_context(|| format!("loading the issuer keys of cluster {}", record.cluster))?,
        );
        let file_name = Path::new(&volume.token_file)
            .file_name()
            .map_or_else(|| "token".into(), |n| n.to_string_lossy().into_owned());
        let volume_dir = dir.0.join(&volume.volume);
        private_fs::create_dir_all(&volume_dir)
            .with_context(|| format!("creating {}", volume_dir.display()))?;
        let path = volume_dir.join(file_name);
        let sa_uid = service_account.metadata.uid.clone().unwrap_or_default();
        let mut request =
            oidc::TokenRequest::new(&namespace, &sa_name, sa_uid, volume.audience.clone());
        let lifetime = Duration::from_secs(volume.expiration_seconds.max(600).unsigned_abs());
        request.lifetime = Some(lifetime);
        request.pod = Some(oidc::BoundObject {
            name: pod_name.clone(),
            uid: crate::cluster::derived_uid(&[
                &record.account,
                &record.cluster,
                &namespace,
                &pod_name,
                &format!("{:?}", std::time::SystemTime::now()),
            ]),
        });
        let token = Token {
            path,
            request,
            lifetime,
        };
        write_token(&issuer, &token)?;
        let local_path = token.path.display().to_string();
        for value in env.values_mut() {
            if *value == volume.token_file {
                value.clone_from(&local_path);
            }
        }
        keep_fresh(issuer, token, args.token_refresh, Arc::clone(&stop));
    }
    if let Some(uri) = env.get_mut("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let Some(agent) = &agent_url else {
            bail!(
                "service account {namespace}/{sa_name} has a Pod Identity association or a chain, so its pods get credentials from the node agent, and none is known: run `rolechain up` without --no-agent, or start `rolechain agent` and pass its URL with --agent (or ROLECHAIN_AGENT)"
            );
        };
        uri.clone_from(agent);
    }

    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]).env_clear();
    for name in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.env("HOME", &home)
        .env("HOSTNAME", &pod_name)
        .env("AWS_ENDPOINT_URL", &base)
        // A laptop on EC2 must not hand the pod the instance's role.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(&env);
    let status = cmd
        .status()
        .with_context(|| format!("running {}", args.command[0]))?;
    stop.store(true, Ordering::SeqCst);
    drop(dir);
    Ok(exit_code(status))
}

/// Whether the chain file of `up`'s agent has an entry for the service account. A file that
/// does not parse serves nothing (the agent keeps its last good version), so it is reported.
fn chained(file: &Path, namespace: &str, service_account: &str) -> bool {
    if !file.exists() {
        return false;
    }
    match agent::AssociationFile::load(file, agent::LoadOptions { eks_auth: true }) {
        Ok(chains) => chains.get(namespace, service_account).is_some(),
        Err(e) => {
            eprintln!("rolechain exec: {} is not used: {e}", file.display());
            false
        }
    }
}

/// The container the command runs as: named, or the first.
fn pick_container(pod: &Value, name: Option<&str>) -> anyhow::Result<Value> {
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match name {
        None => containers
            .into_iter()
            .next()
            .context("the pod has no containers"),
        Some(name) => {
            let names: Vec<String> = containers
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect();
            containers
                .into_iter()
                .find(|c| c["name"] == name)
                .with_context(|| {
                    format!(
                        "container {name} is not valid for the pod; its containers are: {}",
                        names.join(", ")
                    )
                })
        }
    }
}

/// The container's `env` as plain values; `valueFrom` needs an API server a local cluster
/// does not have, so it is refused by name.
fn container_env(container: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(name) = var["name"].as_str() else {
            bail!("a container env entry has no name");
        };
        if var.get("valueFrom").is_some() {
            bail!("env {name}: valueFrom is not supported by local clusters; give a value");
        }
        env.insert(
            name.to_string(),
            var["value"].as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(env)
}

/// The command's exit status; a signal `n` as the shell reports it, `128 + n`.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(255));
        }
    }
    ExitCode::FAILURE
}
