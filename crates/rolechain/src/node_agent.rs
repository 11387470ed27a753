//! `rolechain agent`: the node credential agent (wire-compatible with the EKS Pod Identity
//! agent); `rolechain agent init`: the link-local addresses it serves on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::up::{parse_delay, shutdown_signal};

/// Options of `rolechain agent`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentCommand {
    #[command(subcommand)]
    pub init: Option<AgentSubcommand>,
    #[command(flatten)]
    pub run: AgentArgs,
}

/// `rolechain agent init`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AgentSubcommand {
    /// Add the agent's link-local addresses (169.254.170.23/32 and, when possible,
    /// fd00:ec2::23/128) to a dummy link, as the DaemonSet's init container does.
    Init(crate::netlink::InitArgs),
}

/// Options of `rolechain agent` (serving).
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The cluster whose pods this node serves.
    #[arg(long, required = true)]
    pub cluster: Option<String>,
    /// The cluster's ARN, for the eks-cluster-arn session tag (omitted when not given).
    #[arg(long, value_name = "ARN")]
    pub cluster_arn: Option<String>,
    /// The cluster's OIDC issuer: pod tokens are verified against its discovery document and
    /// JWKS.
    #[arg(long, value_name = "URL", required = true)]
    pub issuer: Option<String>,
    /// The CA certificate(s), PEM, of an https:// issuer with a private CA (default: the
    /// system's roots).
    #[arg(long, value_name = "FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    /// The token audience accepted.
    #[arg(long, value_name = "AUD", default_value = "pods.eks.amazonaws.com")]
    pub audience: String,
    /// The chain associations (YAML), reloaded when the file changes.
    #[arg(long, value_name = "FILE")]
    pub associations: Option<PathBuf>,
    /// Resolve service accounts without an entry (or entries without roleArn) through EKS
    /// Auth's AssumeRoleForPodIdentity, signed with the node's credentials.
    #[arg(long)]
    pub eks_auth: bool,
    /// The region of STS and EKS Auth (else the SDK's: AWS_REGION, profile, instance).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// One endpoint for STS and EKS Auth (the twin serves both). AWS_ENDPOINT_URL and the
    /// service-specific variables are honoured too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Where to serve credentials; repeatable. An address that cannot be bound is logged and
    /// skipped, as long as one is served.
    #[arg(long = "bind", value_name = "ADDR", default_values = ["169.254.170.23:80", "[fd00:ec2::23]:80"])]
    pub binds: Vec<SocketAddr>,
    /// Where to serve /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2703")]
    pub probe_bind: SocketAddr,
    /// Where to serve /metrics.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:2705")]
    pub metrics_bind: SocketAddr,
    /// How long one upstream call may take (5s, 1500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_delay)]
    pub upstream_timeout: Duration,
    /// How long a request may wait for upstream before it is answered with an error.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_delay)]
    pub request_timeout: Duration,
    /// Upstream calls per second (0: unlimited); a burst of --upstream-burst is allowed.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50.0)]
    pub upstream_rate: f64,
    /// Upstream calls allowed at once beyond the rate, for cron bursts of new pods.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub upstream_burst: u32,
    /// Credential requests answered per second before 429 (0: unlimited).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 0.0)]
    pub max_requests_per_second: f64,
    /// Most cache entries (sets of credentials) kept.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_cache_entries: usize,
    /// How often the association file is checked for changes.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_delay)]
    pub reload_interval: Duration,
    /// Clock difference tolerated on a token's exp, nbf and iat.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_delay)]
    pub clock_skew: Duration,
    /// Entries nobody asked for within this long stop being renewed and are dropped.
    #[arg(long, value_name = "DURATION", default_value = "50m", value_parser = parse_delay)]
    pub idle_timeout: Duration,
    /// Credentials are handed out only with at least this much lifetime left, and renewed
    /// before that (botocore renews container credentials 15 minutes before expiry, other SDKs
    /// 5 minutes).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_delay)]
    pub refresh_lead: Duration,
    /// Renew up to this much earlier still, at random, so entries fetched together do not all
    /// renew together.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_delay)]
    pub refresh_jitter: Duration,
    /// How often the renewer looks for entries due.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_delay)]
    pub refresh_interval: Duration,
    /// Also serve the cluster's RoleChainAssociations (rolechain.dev/v1alpha1), watched through
    /// the API server (in-cluster configuration, else the kubeconfig), after the association
    /// file's entries; each resource's status says whether the agent accepted it.
    #[arg(long)]
    pub kubernetes: bool,
    /// Rehearsal: treat and hand out credentials as expiring at most this long after they are
    /// fetched (e.g. 4s), so renewals and the SDKs' refreshes happen within seconds. Off by
    /// default; STS's sessions are not shortened.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub max_lifetime: Option<Duration>,
}

/// Runs the agent until SIGTERM or Ctrl-C.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let cluster = args.cluster.context("--cluster is required")?;
    let issuer = args.issuer.context("--issuer is required")?;
    let mut options = agent::AgentOptions::new(cluster, issuer.trim_end_matches('/'));
    options.cluster_arn = args.cluster_arn;
    options.audience = args.audience;
    options.issuer_ca = args.issuer_ca_file;
    options.associations = args.associations;
    options.eks_auth = args.eks_auth;
    options.binds = args.binds;
    options.probe_bind = args.probe_bind;
    options.metrics_bind = args.metrics_bind;
    options.upstream_rate = (args.upstream_rate, args.upstream_burst);
    options.request_rate = (args.max_requests_per_second, 1000);
    options.cache.max_entries = args.max_cache_entries;
    options.cache.idle_ttl = args.idle_timeout;
    options.cache.refresh_lead = args.refresh_lead;
    options.cache.refresh_jitter = args.refresh_jitter;
    options.refresh_interval = args.refresh_interval;
    options.cache.max_lifetime = args.max_lifetime.filter(|d| !d.is_zero());
    options.cache.fetch_timeout = args.request_timeout;
    options.clock_skew = args.clock_skew;
    options.reload_interval = args.reload_interval;
    let upstream = agent::SdkUpstream::new(&agent::SdkSettings {
        region: args.region,
        endpoint_url: args.endpoint_url,
        call_timeout: args.upstream_timeout,
        ..agent::SdkSettings::default()
    })
    .await;
    let running = agent::start(
        options,
        Arc::new(upstream),
        Arc::new(agent::SystemClock),
        shutdown_signal(),
    )
    .await?;
    if args.kubernetes {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API server (in-cluster, or the kubeconfig)")?;
        crate::agent_kubernetes::watch(
            client,
            running.cluster_associations.clone(),
            agent::associations::LoadOptions {
                eks_auth: args.eks_auth,
            },
        );
    }
    for addr in &running.credentials {
        println!("rolechain agent: credentials at http://{addr}/v1/credentials");
    }
    println!(
        "rolechain agent: probes at http://{}/readyz",
        running.probes
    );
    println!(
        "rolechain agent: metrics at http://{}/metrics",
        running.metrics
    );
    running.stopped().await;
    println!("rolechain agent: stopped");
    Ok(())
}
