//! Where the webhook learns what mutation needs: a pod's ServiceAccount (its annotations) and
//! whether the node agent serves it (a `RoleChainAssociation` for it).
//!
//! [`KubeDirectory`] keeps both from the API server with `kube` reflectors, holding only what
//! mutation reads: a service account's namespace, name and the annotations of
//! `eks.amazonaws.com/` (no managed fields, labels or secrets), and the associations' namespace
//! and service account. A pod created right after its service account can arrive before the
//! watch delivers it: on a miss the webhook asks the API server once, with a short timeout,
//! rather than admit the pod unmutated as the EKS webhook does.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, WatchStreamExt as _};

use crate::crd::RoleChainAssociation;

/// A boxed future, as the trait's methods return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a lookup failed (the pod is then admitted unmutated, with a warning).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// What the webhook asks about a pod's service account.
pub trait Directory: Send + Sync {
    /// The service account, `None` when it does not exist.
    fn service_account<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceAccount>, LookupError>>;

    /// Whether a `RoleChainAssociation` names the service account (its pods then get their
    /// credentials from the node agent).
    fn has_association(&self, namespace: &str, service_account: &str) -> bool;

    /// How many service accounts and associations are held (the `cache size` metric).
    fn size(&self) -> usize;
}

/// The annotations mutation reads: those of `eks.amazonaws.com/`.
fn kept(meta: &ObjectMeta) -> ServiceAccount {
    let annotations: BTreeMap<String, String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("eks.amazonaws.com/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ServiceAccount {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    }
}

/// A fixed directory (tests, and a webhook run without an API server).
#[derive(Debug, Default)]
pub struct StaticDirectory {
    accounts: RwLock<BTreeMap<(String, String), ServiceAccount>>,
    associations: RwLock<HashSet<(String, String)>>,
}

impl StaticDirectory {
    /// Adds (or replaces) a service account.
    pub fn put_service_account(&self, account: &ServiceAccount) {
        let key = (
            account.metadata.namespace.clone().unwrap_or_default(),
            account.metadata.name.clone().unwrap_or_default(),
        );
        self.accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, kept(&account.metadata));
    }

    /// Marks `namespace/service_account` as served by the agent.
    pub fn put_association(&self, namespace: &str, service_account: &str) {
        self.associations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((namespace.to_string(), service_account.to_string()));
    }
}

impl Directory for StaticDirectory {
    fn service_account<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceAccount>, LookupError>> {
        let found = self
            .accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn has_association(&self, namespace: &str, service_account: &str) -> bool {
        self.associations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(namespace.to_string(), service_account.to_string()))
    }

    fn size(&self) -> usize {
        let accounts = self
            .accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        accounts
            + self
                .associations
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
    }
}

/// Service accounts and associations from the API server, kept by reflectors.
#[derive(Clone)]
pub struct KubeDirectory {
    client: kube::Client,
    accounts: reflector::Store<PartialObjectMeta<ServiceAccount>>,
    associations: reflector::Store<RoleChainAssociation>,
    miss_timeout: Duration,
}

impl std::fmt::Debug for KubeDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeDirectory")
            .field("service_accounts", &self.accounts.len())
            .field("associations", &self.associations.len())
            .finish_non_exhaustive()
    }
}

impl KubeDirectory {
    /// Starts watching every namespace's service accounts (their metadata only) and
    /// associations through `client`; a miss asks the API server, waiting at most
    /// `miss_timeout`.
    pub fn start(client: kube::Client, miss_timeout: Duration) -> KubeDirectory {
        let (accounts, writer) = reflector::store::<PartialObjectMeta<ServiceAccount>>();
        // Metadata only: the API server sends no spec or secrets.
        let api: Api<PartialObjectMeta<ServiceAccount>> = Api::all(client.clone());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            // Keep only what mutation reads, whatever else the objects carry.
            .modify(|meta| {
                let kept = kept(&meta.metadata);
                meta.metadata = kept.metadata;
            });
        tokio::spawn(
            reflector::reflector(writer, stream)
                .applied_objects()
                .for_each(|_| std::future::ready(())),
        );
        let (associations, writer) = reflector::store::<RoleChainAssociation>();
        let api: Api<RoleChainAssociation> = Api::all(client.clone());
        tokio::spawn(
            reflector::reflector(
                writer,
                watcher(api, watcher::Config::default()).default_backoff(),
            )
            .applied_objects()
            .for_each(|_| std::future::ready(())),
        );
        KubeDirectory {
            client,
            accounts,
            associations,
            miss_timeout,
        }
    }

    /// Resolves once both reflectors have listed everything once.
    pub async fn ready(&self) {
        let _ = self.accounts.wait_until_ready().await;
        let _ = self.associations.wait_until_ready().await;
    }
}

impl Directory for KubeDirectory {
    fn service_account<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceAccount>, LookupError>> {
        Box::pin(async move {
            let key = ObjectRef::new(name).within(namespace);
            if let Some(found) = self.accounts.get(&key) {
                return Ok(Some(kept(&found.metadata)));
            }
            // Not watched yet (created a moment ago) or not there: ask once.
            let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
            match tokio::time::timeout(self.miss_timeout, api.get_metadata_opt(name)).await {
                Ok(Ok(found)) => Ok(found.map(|meta| kept(&meta.metadata))),
                Ok(Err(e)) => Err(LookupError(format!(
                    "reading service account {namespace}/{name}: {e}"
                ))),
                Err(_) => Err(LookupError(format!(
                    "reading service account {namespace}/{name}: no answer within {:?}",
                    self.miss_timeout
                ))),
            }
        })
    }

    fn has_association(&self, namespace: &str, service_account: &str) -> bool {
        self.associations.state().iter().any(|a| {
            a.metadata.namespace.as_deref() == Some(namespace)
                && a.spec.service_account == service_account
        })
    }

    fn size(&self) -> usize {
        self.accounts.len() + self.associations.len()
    }
}

/// A shared directory.
pub type SharedDirectory = Arc<dyn Directory>;
