//! `rolechain cluster associate-oidc-provider`: what seeds 000 and 002 do with `eksctl utils
//! associate-iam-oidc-provider --cluster C --approve`. The running twin makes sure the account
//! has an IAM OIDC provider for the cluster's issuer that accepts the audience, creating it or
//! adding the audience; run twice, it changes nothing the second time.

use std::path::PathBuf;

use anyhow::bail;
use http::Method;
use serde_json::{json, Value};

use crate::local;
use crate::twin_api::TwinApi;

/// Options of `rolechain cluster associate-oidc-provider`.
#[derive(Debug, Clone, clap::Args)]
pub struct AssociateArgs {
    /// The local cluster whose issuer to register (default: the only one there is).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The account to register the provider in (default: the cluster's); another account's
    /// provider is how its roles trust this cluster's pods (seed 000, seed 003's first method).
    #[arg(long)]
    pub account: Option<String>,
    /// The audience the provider accepts: IRSA's `sts.amazonaws.com`, or
    /// `pods.eks.amazonaws.com` for the node agent's web-identity links.
    #[arg(long, default_value = "sts.amazonaws.com")]
    pub audience: String,
    /// The data directory `rolechain up` uses.
    #[arg(long, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The running twin's URL (default: the one `up` recorded in the data directory).
    #[arg(long, value_name = "URL", env = "ROLECHAIN_ENDPOINT")]
    pub twin: Option<String>,
}

/// Associates the issuer and returns what to print: one line, as eksctl says it.
///
/// # Errors
///
/// When the cluster is not known, the twin cannot be asked, or it refuses (an unknown account,
/// a full client-id list).
pub async fn associate(args: &AssociateArgs) -> anyhow::Result<String> {
    let (_, record) = local::find_cluster(&args.data_dir, args.cluster.as_deref(), None)?;
    let (base, from) = local::twin_endpoint(args.twin.as_deref(), &args.data_dir);
    let api = TwinApi::new(base, from);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("cluster", &record.cluster_arn());
    let path = format!("/_rolechain/oidc-provider?{}", query.finish());
    let mut body = json!({"audience": args.audience});
    if let Some(account) = &args.account {
        body["account"] = Value::String(account.clone());
    }
    let answer = api.call(Method::POST, &path, Some(&body)).await?;
    let answer = answer.ok()?;
    let field = |name: &str| answer.text(name);
    let (arn, cluster) = (field("arn"), &record.cluster);
    let audience = &args.audience;
    Ok(match field("outcome").as_str() {
        "created" => format!(
            "created IAM Open ID Connect provider {arn} for cluster \"{cluster}\" (audience {audience})\n"
        ),
        "audience-added" => format!(
            "IAM Open ID Connect provider {arn} for cluster \"{cluster}\" now accepts audience {audience}\n"
        ),
        "already-associated" => format!(
            "IAM Open ID Connect provider {arn} is already associated with cluster \"{cluster}\" (audience {audience})\n"
        ),
        other => bail!("the twin answered an unknown outcome {other:?}"),
    })
}
