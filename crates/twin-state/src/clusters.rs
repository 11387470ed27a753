//! EKS clusters: name, region and OIDC issuer URL, by account.

use redb::ReadableTable;

use crate::db::{decode, encode, Store, Tx};
use crate::error::{Result, StateError};
use crate::model::Cluster;

impl<'t> Tx<'t> {
    pub(crate) fn create_cluster(
        &mut self,
        account: &str,
        region: &str,
        name: &str,
        issuer_url: &str,
    ) -> Result<Cluster> {
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
        };
        self.clusters
            .insert((account, region, name), encode(&cluster)?.as_slice())?;
        Ok(cluster)
    }
}

impl Store {
    /// Registers an EKS cluster.
    pub fn create_cluster(
        &self,
        account: &str,
        region: &str,
        name: &str,
        issuer_url: &str,
    ) -> Result<Cluster> {
        self.update(|tx| tx.create_cluster(account, region, name, issuer_url))
    }

    /// EKS `DescribeCluster`.
    pub fn get_cluster(&self, account: &str, region: &str, name: &str) -> Result<Cluster> {
        self.read(|rx| match rx.clusters()?.get((account, region, name))? {
            Some(g) => decode("clusters", g.value()),
            None => Err(StateError::ResourceNotFound(format!(
                "No cluster found for name: {name}."
            ))),
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
