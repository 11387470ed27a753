//! The configuration in use: which chain each service account gets, from the association file
//! (reloaded when it changes), the cluster's RoleChainAssociations (`--kubernetes`, set from
//! outside) and `--eks-auth`, in that order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest as _, Sha256};

use crate::associations::{
    AssociationError, AssociationFile, Chain, LoadOptions, SessionTags, Start,
};

/// The chain of one service account, with the names shared by every cache key of it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The namespace.
    pub namespace: Arc<str>,
    /// The service account.
    pub service_account: Arc<str>,
    /// Its chain.
    pub chain: Arc<Chain>,
}

/// Service accounts to chains, looked up without allocating.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_namespace: HashMap<String, HashMap<String, Route>>,
    count: usize,
}

impl RouteTable {
    /// The table of a validated file.
    pub fn from_file(file: &AssociationFile) -> RouteTable {
        let mut table = RouteTable::default();
        for association in file.associations() {
            let route = Route {
                namespace: Arc::from(association.namespace.as_str()),
                service_account: Arc::from(association.service_account.as_str()),
                chain: Arc::new(association.chain.clone()),
            };
            table
                .by_namespace
                .entry(association.namespace.clone())
                .or_default()
                .insert(association.service_account.clone(), route);
            table.count += 1;
        }
        table
    }

    /// The route of `namespace`/`service_account`, if the file has one.
    pub fn get(&self, namespace: &str, service_account: &str) -> Option<&Route> {
        self.by_namespace.get(namespace)?.get(service_account)
    }

    /// The number of associations.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the file has no associations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The chain of a service account without an entry under `--eks-auth`: EKS Auth alone.
pub fn eks_auth_chain() -> Chain {
    Chain {
        start: Start::EksAuth,
        hops: Vec::new(),
        session_tags: SessionTags::None,
        duration_seconds: None,
    }
}

/// What identifies a version of the file on disk: its content's hash (modification times
/// miss two writes within their granularity, and Kubernetes swaps a ConfigMap's file by
/// symlink, which keeps neither time nor inode).
type Stamp = [u8; 32];

fn stamp(path: &Path) -> Option<Stamp> {
    let content = std::fs::read(path).ok()?;
    Some(Sha256::digest(&content).into())
}

/// The live configuration: the route table in use and where it came from.
#[derive(Debug)]
pub struct Routes {
    path: Option<PathBuf>,
    options: LoadOptions,
    table: RwLock<Arc<RouteTable>>,
    stamp: RwLock<Option<Stamp>>,
    /// The cluster's associations (RoleChainAssociations), after the file's.
    cluster: RwLock<Arc<RouteTable>>,
    eks_auth: Option<Route>,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// The file has not changed since it was last read.
    Unchanged,
    /// A new version was loaded; the old and new tables are given.
    Loaded {
        /// The table before.
        old: Arc<RouteTable>,
        /// The table now in use.
        new: Arc<RouteTable>,
    },
    /// A new version was refused; the last good table stays in use.
    Rejected(AssociationError),
}

impl Routes {
    /// Loads `path` (none: no file, every service account goes to EKS Auth if enabled).
    ///
    /// # Errors
    ///
    /// The file's first problem: the agent refuses to start on a bad file.
    pub fn load(path: Option<PathBuf>, options: LoadOptions) -> Result<Routes, AssociationError> {
        let (table, stamp) = match &path {
            Some(path) => {
                let stamp = stamp(path);
                (
                    RouteTable::from_file(&AssociationFile::load(path, options)?),
                    stamp,
                )
            }
            None => (RouteTable::default(), None),
        };
        Ok(Routes {
            path,
            options,
            table: RwLock::new(Arc::new(table)),
            stamp: RwLock::new(stamp),
            cluster: RwLock::new(Arc::new(RouteTable::default())),
            eks_auth: options.eks_auth.then(|| Route {
                namespace: Arc::from(""),
                service_account: Arc::from(""),
                chain: Arc::new(eks_auth_chain()),
            }),
        })
    }

    /// The table in use.
    pub fn table(&self) -> Arc<RouteTable> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cluster's associations in use.
    pub fn cluster_table(&self) -> Arc<RouteTable> {
        Arc::clone(&self.cluster.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the cluster's associations; answers the table before.
    pub fn set_cluster(&self, associations: &AssociationFile) -> Arc<RouteTable> {
        std::mem::replace(
            &mut *self.cluster.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(RouteTable::from_file(associations)),
        )
    }

    /// The chain for `namespace`/`service_account`: the file's entry, else the cluster's,
    /// else EKS Auth when enabled.
    pub fn route(&self, namespace: &str, service_account: &str) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(route) = table.get(namespace, service_account) {
            return Some(route.clone());
        }
        drop(table);
        let cluster = self.cluster.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(route) = cluster.get(namespace, service_account) {
            return Some(route.clone());
        }
        self.eks_auth.as_ref().map(|fallback| Route {
            namespace: Arc::from(namespace),
            service_account: Arc::from(service_account),
            chain: Arc::clone(&fallback.chain),
        })
    }

    /// Whether `chain` is still what `namespace`/`service_account` gets (after a reload).
    pub fn still_routes(&self, namespace: &str, service_account: &str, chain: &Chain) -> bool {
        self.route(namespace, service_account)
            .is_some_and(|route| *route.chain == *chain)
    }

    /// Reads the file again if it changed on disk.
    pub fn reload_if_changed(&self) -> Reload {
        let Some(path) = &self.path else {
            return Reload::Unchanged;
        };
        let now = stamp(path);
        if *self.stamp.read().unwrap_or_else(PoisonError::into_inner) == now {
            return Reload::Unchanged;
        }
        *self.stamp.write().unwrap_or_else(PoisonError::into_inner) = now;
        match AssociationFile::load(path, self.options) {
            Ok(file) => {
                let new = Arc::new(RouteTable::from_file(&file));
                let old = std::mem::replace(
                    &mut *self.table.write().unwrap_or_else(PoisonError::into_inner),
                    Arc::clone(&new),
                );
                Reload::Loaded { old, new }
            }
            Err(error) => Reload::Rejected(error),
        }
    }
}
