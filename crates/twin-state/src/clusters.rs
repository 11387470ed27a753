//! EKS clusters: name, region and OIDC issuer URL, by account.
//!
//! Deleting a cluster deletes what lives in it, in the same transaction: its Pod Identity
//! associations (as EKS does) and the service accounts the twin keeps for it.

use redb::ReadableTable;

use crate::db::{decode, encode, Store, Tx};
use crate::error::{Result, StateError};
use crate::ids::IdSource;
use crate::model::{Cluster, NewCluster};

impl<'t> Tx<'t> {
    pub(crate) fn create_cluster(&mut self, new: &NewCluster) -> Result<Cluster> {
        let NewCluster {
            account,
            region,
            name,
            issuer_url,
            ..
        } = new;
        let (account, region, name) = (account.as_str(), region.as_str(), name.as_str());
        self.require_account(account)?;
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(StateError::InvalidInput(format!(
                "Invalid cluster name {name}: 1 to 100 letters, digits, hyphens and underscores, starting with a letter or digit."
            )));
        }
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(StateError::InvalidInput(format!(
                "Invalid region {region}."
            )));
        }
        if !issuer_url.starts_with("https://") && !issuer_url.starts_with("http://") {
            return Err(StateError::InvalidInput(format!(
                "Invalid issuer URL {issuer_url}: it must be an http(s) URL."
            )));
        }
        if self.clusters.get((account, region, name))?.is_some() {
            return Err(StateError::ResourceInUse(format!(
                "Cluster already exists with name: {name}"
            )));
        }
        let cluster = Cluster {
            name: name.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            issuer_url: issuer_url.to_string(),
            created: self.now,
            arn: format!("arn:aws:eks:{region}:{account}:cluster/{name}"),
            role_arn: new.role_arn.clone(),
            version: new.version.clone(),
            tags: new.tags.clone(),
        };
        self.clusters
            .insert((account, region, name), encode(&cluster)?.as_slice())?;
        Ok(cluster)
    }
}

impl Store {
    /// Registers an EKS cluster (EKS `CreateCluster`, or a world file's).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name, region or issuer URL; `ResourceInUse` when the account
    /// has a cluster of that name in the region; `NoSuchEntity` for an unknown account.
    pub fn create_cluster(&self, new: &NewCluster) -> Result<Cluster> {
        self.update(|tx| tx.create_cluster(new))
    }

    /// EKS `DeleteCluster`: removes the cluster with its Pod Identity associations and the
    /// service accounts kept for it, in one transaction, and answers what it was.
    ///
    /// # Errors
    ///
    /// `ResourceNotFound` when there is no such cluster.
    pub fn delete_cluster(&self, account: &str, region: &str, name: &str) -> Result<Cluster> {
        self.write_with_raw(IdSource::Os, |tx, txn| {
            let cluster: Cluster = match tx.clusters.remove((account, region, name))? {
                Some(g) => decode("clusters", g.value())?,
                None => return Err(not_found(name)),
            };
            crate::pod_identity::remove_cluster(txn, &cluster.arn)?;
            crate::service_accounts::remove_cluster(txn, &cluster.arn)?;
            Ok(cluster)
        })
    }

    /// EKS `DescribeCluster`.
    pub fn get_cluster(&self, account: &str, region: &str, name: &str) -> Result<Cluster> {
        self.read(|rx| match rx.clusters()?.get((account, region, name))? {
            Some(g) => decode("clusters", g.value()),
            None => Err(not_found(name)),
        })
    }

    /// EKS `ListClusters` in one account and region, by name.
    pub fn list_clusters(&self, account: &str, region: &str) -> Result<Vec<Cluster>> {
        self.read(|rx| {
            let mut out = Vec::new();
            for entry in rx.clusters()?.range((account, region, "")..)? {
                let (k, v) = entry?;
                let (a, r, _) = k.value();
                if a != account || r != region {
                    break;
                }
                out.push(decode("clusters", v.value())?);
            }
            Ok(out)
        })
    }

    /// Every cluster of every account (the OIDC issuer serves them all).
    pub fn all_clusters(&self) -> Result<Vec<Cluster>> {
        self.read(|rx| {
            let mut out = Vec::new();
            for entry in rx.clusters()?.iter()? {
                let (_, v) = entry?;
                out.push(decode("clusters", v.value())?);
            }
            Ok(out)
        })
    }
}

/// EKS's answer for a cluster that does not exist.
fn not_found(name: &str) -> StateError {
    StateError::ResourceNotFound(format!("No cluster found for name: {name}."))
}
