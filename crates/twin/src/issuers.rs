//! The OIDC issuers of local clusters, served at EKS-shaped URLs.
//!
//! EKS issuer URLs look like `https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE`,
//! and setup scripts take the id with `cut -d '/' -f 5`. The twin's are
//! `http://127.0.0.1:4555/id/{ID}`: the same shape, so the same scripts work.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use oidc::Issuer;
use sha2::{Digest, Sha256};

/// A registered issuer.
#[derive(Debug)]
pub struct RegisteredIssuer {
    /// The cluster it issues tokens for.
    pub cluster: String,
    /// Its 32-character upper-case hex id.
    pub id: String,
    /// The issuer.
    pub issuer: Arc<Issuer>,
}

/// Why an issuer could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerRegistryError {
    /// The id is not 32 upper-case hex digits.
    #[error("OIDC issuer id {0:?} is not 32 upper-case hex digits")]
    InvalidId(String),
    /// Another cluster already uses the id.
    #[error("OIDC issuer id {id} is already used by cluster {cluster:?}")]
    IdInUse {
        /// The id.
        id: String,
        /// The cluster using it.
        cluster: String,
    },
    /// The issuer's URL does not end in `/id/{id}`: its discovery document would name another
    /// URL than the one it is served at, and verifiers reject that.
    #[error("issuer URL {url:?} does not end in /id/{id}")]
    UrlMismatch {
        /// The issuer's URL.
        url: String,
        /// The id it was registered under.
        id: String,
    },
}

/// True for a 32-character upper-case hex id, the shape of EKS's.
pub fn is_valid_issuer_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
}

/// A stable issuer id derived from `seed` (e.g. `account/region/cluster`): the same world
/// file gives the same issuer URLs across restarts, so trust policies naming them keep
/// working.
pub fn derive_issuer_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    hex::encode_upper(&digest[..16])
}

/// `{base_url}/id/{id}`, e.g. `http://127.0.0.1:4555/id/0123…`.
pub fn issuer_url(base_url: &str, id: &str) -> String {
    format!("{}/id/{id}", base_url.trim_end_matches('/'))
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<String, Arc<RegisteredIssuer>>,
    by_cluster: HashMap<String, Arc<RegisteredIssuer>>,
}

/// The issuers the twin serves discovery documents and JWKS for. Cloning shares the registry;
/// issuers can be added and removed while the server runs (a cluster created by
/// `eks create-cluster`).
#[derive(Clone, Default)]
pub struct IssuerRegistry {
    maps: Arc<RwLock<Maps>>,
}

impl std::fmt::Debug for IssuerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("IssuerRegistry")
            .field("clusters", &maps.by_cluster.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl IssuerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `issuer` as cluster `cluster`'s, served under `/id/{id}`. Registering a
    /// cluster again replaces its issuer (and id).
    ///
    /// # Errors
    ///
    /// [`IssuerRegistryError`] for a malformed id, an id used by another cluster, or an issuer
    /// whose URL does not end in `/id/{id}`.
    pub fn add(
        &self,
        cluster: &str,
        id: &str,
        issuer: Arc<Issuer>,
    ) -> Result<Arc<RegisteredIssuer>, IssuerRegistryError> {
        if !is_valid_issuer_id(id) {
            return Err(IssuerRegistryError::InvalidId(
                id.chars().take(64).collect(),
            ));
        }
        if !issuer.issuer_url().ends_with(&format!("/id/{id}")) {
            return Err(IssuerRegistryError::UrlMismatch {
                url: issuer.issuer_url().to_string(),
                id: id.to_string(),
            });
        }
        let entry = Arc::new(RegisteredIssuer {
            cluster: cluster.to_string(),
            id: id.to_string(),
            issuer,
        });
        let mut maps = self.write();
        if let Some(other) = maps.by_id.get(id) {
            if other.cluster != cluster {
                return Err(IssuerRegistryError::IdInUse {
                    id: id.to_string(),
                    cluster: other.cluster.clone(),
                });
            }
        }
        if let Some(previous) = maps
            .by_cluster
            .insert(cluster.to_string(), Arc::clone(&entry))
        {
            maps.by_id.remove(&previous.id);
        }
        maps.by_id.insert(id.to_string(), Arc::clone(&entry));
        Ok(entry)
    }

    /// Stops serving `cluster`'s issuer; returns it if there was one.
    pub fn remove_cluster(&self, cluster: &str) -> Option<Arc<RegisteredIssuer>> {
        let mut maps = self.write();
        let entry = maps.by_cluster.remove(cluster)?;
        maps.by_id.remove(&entry.id);
        Some(entry)
    }

    /// The issuer served under `/id/{id}`.
    pub fn by_id(&self, id: &str) -> Option<Arc<RegisteredIssuer>> {
        self.read().by_id.get(id).cloned()
    }

    /// Cluster `cluster`'s issuer.
    pub fn by_cluster(&self, cluster: &str) -> Option<Arc<RegisteredIssuer>> {
        self.read().by_cluster.get(cluster).cloned()
    }

    /// Every registered issuer, in no particular order.
    pub fn all(&self) -> Vec<Arc<RegisteredIssuer>> {
        self.read().by_id.values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        // Every mutation leaves both maps consistent before it can panic, so poisoning is
        // harmless.
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = derive_issuer_id("111111111111/us-east-1/dev");
        assert!(is_valid_issuer_id(&id), "{id}");
        assert_eq!(id, derive_issuer_id("111111111111/us-east-1/dev"));
        assert_ne!(id, derive_issuer_id("111111111111/us-east-1/prod"));
        assert!(!is_valid_issuer_id(&id.to_ascii_lowercase()));
        assert!(!is_valid_issuer_id("ABC"));
    }

    #[test]
    fn url_shape_matches_eks_cut_field_5() {
        let id = derive_issuer_id("x");
        let url = issuer_url("http://127.0.0.1:4555/", &id);
        assert_eq!(url.split('/').nth(4), Some(id.as_str()));
    }
}
