//! The node agents `rolechain up` runs on loopback, one per local cluster it serves: the same
//! agent as `rolechain agent`, in the same process, in front of the twin, so pods run by
//! `rolechain exec` get their chain's final credentials without anything else to start.
//!
//! Each agent reads `<data-dir>/associations/<cluster>.yaml` (created with a commented example
//! when missing, reloaded when it changes), resolves service accounts without an entry through
//! the twin's EKS Auth (signed with the cluster account's admin key, as a node signs with its
//! instance role), and records its credentials URL in the cluster's issuer directory for
//! `exec` ([`agent_file`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use twin_state::Store;

use crate::local::{self, IssuerRecord};

/// The association file a local cluster's agent reads.
pub fn associations_file(data_dir: &Path, cluster: &str) -> PathBuf {
    data_dir
        .join("associations")
        .join(format!("{cluster}.yaml"))
}

/// Where `up` records the URL of a cluster's agent (in its issuer directory).
pub fn agent_file(issuer_dir: &Path) -> PathBuf {
    issuer_dir.join("agent")
}

const TEMPLATE: &str = "\
# Chains the local agent of this cluster serves (`rolechain agent --associations`), reloaded
# when this file changes. Service accounts without an entry are resolved through the twin's
# EKS Pod Identity associations (`aws eks create-pod-identity-association`).
#
# associations:
#   - namespace: my-app-namespace
#     serviceAccount: my-app-sa
#     roleArn: arn:aws:iam::111111111111:role/first
#     targetRoleArns:
#       - arn: arn:aws:iam::222222222222:role/second
#         externalId: optional-external-id
associations: []
";

/// One agent `up` started.
pub struct LocalAgent {
    /// The cluster it serves.
    pub cluster: String,
    /// Its credentials URL, `http://127.0.0.1:PORT/v1/credentials`.
    pub url: String,
    /// Its association file.
    pub associations: PathBuf,
}

/// Starts the agent of one cluster, which stops when `stop` completes.
///
/// # Errors
///
/// When the association file cannot be created, the cluster's account has no admin key, or
/// the agent cannot start (its loopback ports, a bad association file).
pub async fn start_one(
    store: &Store,
    data_dir: &Path,
    base_url: &str,
    record: &IssuerRecord,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<LocalAgent> {
    let associations = associations_file(data_dir, &record.cluster);
    if !associations.exists() {
        local::write_private(&associations, TEMPLATE)?;
    }
    let key = store
        .list_access_keys(&record.account)?
        .into_iter()
        .find(|k| k.principal != "root")
        .with_context(|| {
            format!(
                "account {} has no admin key for the agent of cluster {}",
                record.account, record.cluster
            )
        })?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut options = agent::AgentOptions::new(&record.cluster, &record.issuer_url);
    options.cluster_arn = Some(record.cluster_arn());
    options.associations = Some(associations.clone());
    options.eks_auth = true;
    options.binds = vec![loopback];
    options.probe_bind = loopback;
    options.metrics_bind = loopback;
    let upstream = agent::SdkUpstream::new(&agent::SdkSettings {
        region: Some(record.region.clone()),
        endpoint_url: Some(base_url.to_string()),
        node_credentials: Some(aws_credential_types::Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            None,
            None,
            "rolechain-up",
        )),
        ..agent::SdkSettings::default()
    })
    .await;
    let running = agent::start(
        options,
        Arc::new(upstream),
        Arc::new(agent::SystemClock),
        stop,
    )
    .await
    .with_context(|| format!("starting the agent of cluster {}", record.cluster))?;
    let addr = running
        .credentials
        .first()
        .copied()
        .context("the agent serves no address")?;
    let url = format!("http://{addr}/v1/credentials");
    local::write_private(&agent_file(&local::issuer_dir(data_dir, record)), &url)?;
    // The agent runs until `stop`; its handle is not needed to keep it running.
    tokio::spawn(running.stopped());
    Ok(LocalAgent {
        cluster: record.cluster.clone(),
        url,
        associations,
    })
}
