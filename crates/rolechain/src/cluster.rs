//! `rolechain cluster token`: a projected service-account token from a local cluster's issuer;
//! `rolechain cluster rotate-keys`: a new signing key for it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::local;

/// Options of `rolechain cluster token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The cluster, e.g. development-cluster.
    #[arg(long)]
    pub cluster: String,
    /// The pod's namespace.
    #[arg(long)]
    pub namespace: String,
    /// The pod's service account.
    #[arg(long = "service-account")]
    pub service_account: String,
    /// The token's audience (IRSA: sts.amazonaws.com; EKS Pod Identity: pods.eks.amazonaws.com).
    #[arg(long, default_value = "sts.amazonaws.com")]
    pub audience: String,
    /// The cluster's account, when clusters of the same name exist in several accounts.
    #[arg(long)]
    pub account: Option<String>,
    /// Bind the token to a pod of this name (its uid is derived from the name).
    #[arg(long = "pod-name")]
    pub pod_name: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub duration: u64,
    /// The data directory `rolechain up` uses.
    #[arg(long, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Write the token to FILE (0600, exactly the token, as kubelet writes a projected token)
    /// instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A stable uid shaped like a Kubernetes one, so repeated tokens for the same object agree.
pub(crate) fn derived_uid(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("/").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Options of `rolechain cluster rotate-keys`.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    /// The cluster, e.g. development-cluster.
    #[arg(long)]
    pub cluster: String,
    /// The cluster's account, when clusters of the same name exist in several accounts.
    #[arg(long)]
    pub account: Option<String>,
    /// The data directory `rolechain up` uses.
    #[arg(long, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// The issuer of one local cluster, with its keys loaded from the data directory.
fn load_issuer(
    data_dir: &std::path::Path,
    cluster: &str,
    account: Option<&str>,
) -> anyhow::Result<(oidc::Issuer, local::IssuerRecord)> {
    let (dir, record) = local::find_cluster(data_dir, Some(cluster), account)?;
    let issuer = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
        record.issuer_url.clone(),
        local::key_dir(&dir),
    ))
    .with_context(|| format!("loading the issuer keys of cluster {}", record.cluster))?;
    Ok((issuer, record.clone()))
}

/// Makes a new signing key the cluster's active one; the previous keys stay published (up to
/// the issuer's limit) so tokens they signed keep verifying. A running `rolechain up` publishes
/// the new key at the next JWKS fetch. Returns the new key id.
pub fn rotate_keys(args: &RotateArgs) -> anyhow::Result<String> {
    let (issuer, record) = load_issuer(&args.data_dir, &args.cluster, args.account.as_deref())?;
    issuer
        .rotate()
        .with_context(|| format!("rotating the issuer keys of cluster {}", record.cluster))
}

pub fn token(args: &TokenArgs) -> anyhow::Result<String> {
    let (issuer, record) = load_issuer(&args.data_dir, &args.cluster, args.account.as_deref())?;
    let sa_uid = derived_uid(&[
        &record.account,
        &record.cluster,
        &args.namespace,
        &args.service_account,
    ]);
    let mut request = oidc::TokenRequest::new(
        &args.namespace,
        &args.service_account,
        &sa_uid,
        &args.audience,
    );
    request.lifetime = Some(Duration::from_secs(args.duration));
    request.pod = args.pod_name.as_ref().map(|name| oidc::BoundObject {
        name: name.clone(),
        uid: derived_uid(&[&record.account, &record.cluster, &args.namespace, name]),
    });
    Ok(issuer.mint(&request)?)
}
