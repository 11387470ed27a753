//! `rolechain webhook`: the mutating admission webhook (what the Amazon EKS Pod Identity
//! webhook does, on any cluster); `rolechain webhook crd`: the `RoleChainAssociation` CRD.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::up::{parse_delay, shutdown_signal};

/// Options of `rolechain webhook`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookCommand {
    #[command(subcommand)]
    pub sub: Option<WebhookSubcommand>,
    #[command(flatten)]
    pub run: WebhookArgs,
}

/// `rolechain webhook crd`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WebhookSubcommand {
    /// Print the RoleChainAssociation CRD (rolechain.dev/v1alpha1) as YAML, as deploy/base/crd.yaml holds it.
    Crd,
}

/// Options of the webhook server.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Where to serve HTTPS (`/mutate`, `/healthz`, `/readyz`, `/metrics`).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// The serving certificate (PEM chain), reloaded when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM), reloaded with it.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_key_file: Option<PathBuf>,
    /// How often the certificate files are checked for a renewal.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_delay)]
    pub tls_reload_interval: Duration,
    /// `AWS_REGION`/`AWS_DEFAULT_REGION` for mutated pods (none by default).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Set `AWS_STS_REGIONAL_ENDPOINTS=regional` in IRSA pods.
    #[arg(long)]
    pub sts_regional_endpoints: bool,
    /// The default lifetime of IRSA tokens, in seconds (at least 600).
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub token_expiration: i64,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` of agent-served pods: where the node agent listens
    /// (another address than EKS's agent when both run, for a migration).
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://169.254.170.23/v1/credentials"
    )]
    pub agent_url: String,
    /// How long a service account the watch has not delivered yet may take to read.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_delay)]
    pub miss_timeout: Duration,
}

/// Runs the webhook until SIGTERM or Ctrl-C: service accounts and associations from the API
/// server (in-cluster configuration, else the kubeconfig).
pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let cert_file = args.tls_cert_file.context("--tls-cert-file is required")?;
    let key_file = args.tls_key_file.context("--tls-key-file is required")?;
    let cert = webhook::ReloadingCert::load(&cert_file, &key_file)?;
    cert.watch(args.tls_reload_interval);
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API server (in-cluster, or the kubeconfig)")?;
    let directory = webhook::KubeDirectory::start(client, args.miss_timeout);
    let container_credentials = mutation::ContainerCredentials {
        full_uri: args.agent_url,
        ..mutation::ContainerCredentials::default()
    };
    let settings = mutation::Settings {
        container_credentials,
        region: args.region,
        regional_sts: args.sts_regional_endpoints,
        token_expiration: args.token_expiration.max(600),
        ..mutation::Settings::default()
    };
    let hook = webhook::Webhook::new(Arc::new(directory.clone()), settings);
    let running = webhook::serve(Arc::clone(&hook), &cert, args.listen, shutdown_signal()).await?;
    println!(
        "rolechain webhook: serving on https://{}/mutate",
        running.addr
    );
    // Ready once the service accounts and associations are listed: until then a pod would be
    // looked up one GET at a time.
    let ready = Arc::clone(&hook);
    tokio::spawn(async move {
        directory.ready().await;
        ready.set_ready();
        tracing::info!("service accounts and associations listed; ready");
    });
    running.stopped().await;
    println!("rolechain webhook: stopped");
    Ok(())
}
