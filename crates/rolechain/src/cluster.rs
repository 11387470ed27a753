//! `rolechain cluster token`: a projected service-account token from a local cluster's issuer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
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
    #[arg(long, value_name = "DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// A stable uid shaped like a Kubernetes one, so repeated tokens for the same object agree.
fn derived_uid(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("/").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub fn token(args: &TokenArgs) -> anyhow::Result<String> {
    let found = local::find_issuers(&args.data_dir, &args.cluster, args.account.as_deref())?;
    let (dir, record) = match found.as_slice() {
        [] => bail!(
            "no local cluster named {} in {}",
            args.cluster,
            args.data_dir.display()
        ),
        [one] => one,
        _ => bail!(
            "clusters named {} exist in several accounts; choose one with --account",
            args.cluster
        ),
    };
    let issuer = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
        record.issuer_url.clone(),
        local::key_dir(dir),
    ))
    .with_context(|| format!("loading the issuer keys of cluster {}", record.cluster))?;
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
