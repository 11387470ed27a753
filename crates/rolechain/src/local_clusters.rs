//! The clusters `rolechain up` serves: for each, its OIDC issuer (signing keys in the data
//! directory, the record `cluster token` and `exec` read) and its node agent. The world's
//! clusters are served at start ([`LocalClusters::serve_stored`]); clusters EKS `CreateCluster`
//! makes while `up` runs are served before the call answers, and stop being served when
//! `DeleteCluster` removes them ([`LocalClusters`] is the twin's [`twin::ClusterLifecycle`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context as _};
use tokio::sync::watch;
use twin::{BoxFuture, IssuerRegistry};
use twin_state::{Cluster, Store};

use crate::local::{self, IssuerRecord};

/// Serves local clusters' issuers and agents. Cloning shares it.
#[derive(Clone)]
pub struct LocalClusters {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: IssuerRegistry,
    store: Arc<Store>,
    data_dir: PathBuf,
    base_url: String,
    /// What stops every agent (`up` shutting down); `None` with `--no-agent`.
    agents: Option<watch::Receiver<bool>>,
    /// The stop switch of each cluster's agent, by cluster ARN.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl std::fmt::Debug for LocalClusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClusters")
            .field("data_dir", &self.inner.data_dir)
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl LocalClusters {
    /// Clusters served by `issuers` at `base_url`, with keys and records under `data_dir`;
    /// agents for created clusters stop when `agents` changes (none are started without it).
    pub fn new(
        issuers: IssuerRegistry,
        store: Arc<Store>,
        data_dir: &Path,
        base_url: &str,
        agents: Option<watch::Receiver<bool>>,
    ) -> LocalClusters {
        LocalClusters {
            inner: Arc::new(Inner {
                issuers,
                store,
                data_dir: data_dir.to_path_buf(),
                base_url: base_url.to_string(),
                agents,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Serves the issuer of every stored cluster whose issuer URL the twin serves, and records
    /// it for `rolechain cluster token`.
    ///
    /// # Errors
    ///
    /// A cluster whose issuer was served from another address (another `--listen`), keys that
    /// cannot be loaded or created, a record that cannot be written.
    pub fn serve_stored(&self) -> anyhow::Result<Vec<IssuerRecord>> {
        let mut served = Vec::new();
        for cluster in self.inner.store.all_clusters()? {
            if let Some(record) = self.serve_issuer(&cluster)? {
                served.push(record);
            }
        }
        Ok(served)
    }

    /// Serves `cluster`'s issuer; `None` for an issuer outside the twin (a real cluster's).
    fn serve_issuer(&self, cluster: &Cluster) -> anyhow::Result<Option<IssuerRecord>> {
        let prefix = format!("{}/id/", self.inner.base_url);
        let record = IssuerRecord {
            cluster: cluster.name.clone(),
            account: cluster.account.clone(),
            region: cluster.region.clone(),
            issuer_url: cluster.issuer_url.clone(),
        };
        let Some(id) = cluster.issuer_url.strip_prefix(&prefix) else {
            if cluster.issuer_url.contains("/id/") && cluster.issuer_url.starts_with("http://127.")
            {
                bail!(
                    "cluster {} has the issuer {}, which was served from another address; run with the --listen it was created with, or use a new --data-dir",
                    cluster.name,
                    cluster.issuer_url
                );
            }
            return Ok(None);
        };
        let dir = local::issuer_dir(&self.inner.data_dir, &record);
        let issuer = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
            cluster.issuer_url.clone(),
            local::key_dir(&dir),
        ))
        .with_context(|| format!("loading the issuer keys of cluster {}", cluster.name))?;
        // By ARN: clusters of two accounts may share a name.
        self.inner
            .issuers
            .add(&cluster.arn, id, Arc::new(issuer))
            .with_context(|| format!("serving the issuer of cluster {}", cluster.name))?;
        local::write_issuer_record(&dir, &record)?;
        Ok(Some(record))
    }

    /// What `CreateCluster` runs once the cluster is stored: its issuer, then its agent. On
    /// failure, what was started is stopped again (the twin removes the cluster).
    async fn create(&self, cluster: Cluster) -> anyhow::Result<()> {
        let result = self.start_serving(&cluster).await;
        if result.is_err() {
            self.delete(&cluster);
        }
        result
    }

    async fn start_serving(&self, cluster: &Cluster) -> anyhow::Result<()> {
        let this = self.clone();
        let to_serve = cluster.clone();
        // Generating the signing key takes a moment of CPU: off the async workers.
        let record = tokio::task::spawn_blocking(move || this.serve_issuer(&to_serve))
            .await
            .context("serving the issuer")??
            .with_context(|| {
                format!(
                    "the issuer URL {} is not one this twin serves",
                    cluster.issuer_url
                )
            })?;
        if let Some(started) = self.start_agent(&record).await? {
            tracing::info!(cluster = %cluster.arn, agent = %started.url, "serving the new cluster's issuer and agent");
        }
        Ok(())
    }

    /// Starts the agents of `records` (the stored clusters `up` serves), or with `--no-agent`
    /// removes the agent URLs an earlier `up` recorded for them, so `exec` does not ask a dead
    /// agent.
    ///
    /// # Errors
    ///
    /// An agent that cannot start ([`crate::local_agents::start_one`]).
    pub async fn start_agents(
        &self,
        records: &[IssuerRecord],
    ) -> anyhow::Result<Vec<crate::local_agents::LocalAgent>> {
        let mut started = Vec::new();
        for record in records {
            match self.start_agent(record).await? {
                Some(agent) => started.push(agent),
                None => {
                    let dir = local::issuer_dir(&self.inner.data_dir, record);
                    let _ = std::fs::remove_file(crate::local_agents::agent_file(&dir));
                }
            }
        }
        Ok(started)
    }

    /// Starts the agent of one cluster, stopping with `up` or when the cluster is deleted;
    /// `None` with `--no-agent`.
    async fn start_agent(
        &self,
        record: &IssuerRecord,
    ) -> anyhow::Result<Option<crate::local_agents::LocalAgent>> {
        let Some(all_stop) = self.inner.agents.clone() else {
            return Ok(None);
        };
        let (stop_this, this_stop) = watch::channel(false);
        let stopped = async move {
            let (mut all, mut this) = (all_stop, this_stop);
            tokio::select! {
                _ = all.changed() => {}
                _ = this.changed() => {}
            }
        };
        let started = crate::local_agents::start_one(
            &self.inner.store,
            &self.inner.data_dir,
            &self.inner.base_url,
            record,
            stopped,
        )
        .await?;
        self.running().insert(record.cluster_arn(), stop_this);
        Ok(Some(started))
    }

    /// What `DeleteCluster` runs once the cluster is removed: its agent stops, its issuer is
    /// no longer served, and its keys and records leave the data directory.
    fn delete(&self, cluster: &Cluster) {
        if let Some(stop) = self.running().remove(&cluster.arn) {
            let _ = stop.send(true);
        }
        self.inner.issuers.remove_cluster(&cluster.arn);
        let dir = local::issuer_dir(
            &self.inner.data_dir,
            &IssuerRecord {
                cluster: cluster.name.clone(),
                account: cluster.account.clone(),
                region: cluster.region.clone(),
                issuer_url: cluster.issuer_url.clone(),
            },
        );
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "the deleted cluster's issuer directory could not be removed");
            }
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<bool>>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl twin::ClusterLifecycle for LocalClusters {
    fn new_issuer_url(&self) -> String {
        let mut bytes = [0u8; 16];
        // The OS's random source does not fail on the systems the twin runs on; if it ever
        // did, the issuer would still be new, only less random (the time's bytes).
        if twin_state::ids::IdSource::Os.fill(&mut bytes).is_err() {
            let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
            bytes = nanos.to_le_bytes();
        }
        let id = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        twin::issuer_url(&self.inner.base_url, &id)
    }

    fn created(&self, cluster: Cluster) -> BoxFuture<'static, Result<(), String>> {
        let this = self.clone();
        Box::pin(async move { this.create(cluster).await.map_err(|e| format!("{e:#}")) })
    }

    fn deleted(&self, cluster: Cluster) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.delete(&cluster) })
    }
}
