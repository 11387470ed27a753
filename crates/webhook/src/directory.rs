//! Where the webhook learns what mutation needs: a pod's ServiceAccount (its annotations) and
//! whether the node agent serves it (a `RoleChainAssociation` for it).
//!
//! [`KubeDirectory`] keeps both from the API server with `kube` reflectors, holding only what
//! mutation reads: a service account's namespace, name and the annotations of
//! `eks.amazonaws.com/` (no managed fields, labels or secrets), and the associations' namespace
//! and service account. A pod created right after its service account can arrive before the
//! watch delivers it: on a miss the webhook asks the API server once, with a short timeout,
//! rather than admit the pod unmutated as the EKS webhook does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector;
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

/// A service account as the webhook holds it: its `eks.amazonaws.com/` annotations, boxed
/// (most are one role ARN); about a hundred bytes each.
type Held = Box<[(Box<str>, Box<str>)]>;

/// `namespace/name`.
fn account_key(namespace: &str, name: &str) -> Box<str> {
    format!("{namespace}/{name}").into_boxed_str()
}

fn held(meta: &ObjectMeta) -> Held {
    meta.annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("eks.amazonaws.com/"))
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

fn account_of(namespace: &str, name: &str, held: &Held) -> ServiceAccount {
    let annotations: BTreeMap<String, String> = held
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    }
}

/// A fixed directory (tests, and a webhook run without an API server).
#[derive(Debug, Default)]
pub struct StaticDirectory {
    accounts: RwLock<HashMap<Box<str>, Held>>,
    associations: RwLock<HashSet<(String, String)>>,
}

impl StaticDirectory {
    /// Adds (or replaces) a service account.
    pub fn put_service_account(&self, account: &ServiceAccount) {
        let key = account_key(
            account.metadata.namespace.as_deref().unwrap_or_default(),
            account.metadata.name.as_deref().unwrap_or_default(),
        );
        self.accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, held(&account.metadata));
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
            .get(&account_key(namespace, name))
            .map(|h| account_of(namespace, name, h));
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

/// Service accounts and associations from the API server.
///
/// Service accounts are watched metadata-only and held in a map of their own (not a
/// `kube` reflector store, which keeps whole objects): 50,000 cost a few MiB.
#[derive(Clone)]
pub struct KubeDirectory {
    client: kube::Client,
    accounts: Arc<RwLock<HashMap<Box<str>, Held>>>,
    listed: tokio::sync::watch::Receiver<bool>,
    associations: reflector::Store<RoleChainAssociation>,
    miss_timeout: Duration,
}

impl std::fmt::Debug for KubeDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeDirectory")
            .field("service_accounts", &self.accounts_len())
            .field("associations", &self.associations.len())
            .finish_non_exhaustive()
    }
}

impl KubeDirectory {
    /// Starts watching every namespace's service accounts (their metadata only) and
    /// associations through `client`; a miss asks the API server, waiting at most
    /// `miss_timeout`.
    pub fn start(client: kube::Client, miss_timeout: Duration) -> KubeDirectory {
        let accounts: Arc<RwLock<HashMap<Box<str>, Held>>> = Arc::default();
        let (listed_tx, listed) = tokio::sync::watch::channel(false);
        // Metadata only: the API server sends no spec or secrets.
        let api: Api<PartialObjectMeta<ServiceAccount>> = Api::all(client.clone());
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let map = Arc::clone(&accounts);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            // A (re)list is built aside and swapped in whole, so lookups never see half of it.
            let mut building: Option<HashMap<Box<str>, Held>> = None;
            while let Some(event) = events.next().await {
                let key_of = |meta: &PartialObjectMeta<ServiceAccount>| {
                    account_key(
                        meta.metadata.namespace.as_deref().unwrap_or_default(),
                        meta.metadata.name.as_deref().unwrap_or_default(),
                    )
                };
                match event {
                    Ok(watcher::Event::Init) => building = Some(HashMap::new()),
                    Ok(watcher::Event::InitApply(meta)) => {
                        if let Some(b) = building.as_mut() {
                            b.insert(key_of(&meta), held(&meta.metadata));
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(mut b) = building.take() {
                            b.shrink_to_fit();
                            *map.write()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = b;
                        }
                        let _ = listed_tx.send(true);
                    }
                    Ok(watcher::Event::Apply(meta)) => {
                        map.write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(key_of(&meta), held(&meta.metadata));
                    }
                    Ok(watcher::Event::Delete(meta)) => {
                        map.write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&key_of(&meta));
                    }
                    Err(e) => tracing::warn!(error = %e, "watching service accounts"),
                }
            }
        });
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
            listed,
            associations,
            miss_timeout,
        }
    }

    /// Resolves once service accounts and associations have been listed once.
    pub async fn ready(&self) {
        let mut listed = self.listed.clone();
        let _ = listed.wait_for(|done| *done).await;
        let _ = self.associations.wait_until_ready().await;
    }

    fn accounts_len(&self) -> usize {
        self.accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl Directory for KubeDirectory {
    fn service_account<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceAccount>, LookupError>> {
        Box::pin(async move {
            let found = self
                .accounts
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&account_key(namespace, name))
                .map(|h| account_of(namespace, name, h));
            if found.is_some() {
                return Ok(found);
            }
            // Not watched yet (created a moment ago) or not there: ask once.
            let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
            match tokio::time::timeout(self.miss_timeout, api.get_metadata_opt(name)).await {
                Ok(Ok(found)) => {
                    Ok(found.map(|meta| account_of(namespace, name, &held(&meta.metadata))))
                }
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
        self.accounts_len() + self.associations.len()
    }
}

/// A shared directory.
pub type SharedDirectory = Arc<dyn Directory>;
