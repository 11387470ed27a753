//! IAM's eventual consistency, reproduced on demand: IAM state as STS sees it, some time late.
//!
//! In AWS, a change to IAM (a role created, its trust policy replaced, a policy attached, an
//! OIDC provider registered, a role deleted) is visible to IAM's own API at once but reaches
//! STS and the services' authorization only after a while; a pod that starts right after its
//! role was created can be refused (seed 004: "A pod may start before IAM permissions have
//! fully propagated, causing initial authentication failures"). With
//! [`Store::set_iam_propagation_delay`] the store reproduces that:
//!
//! - every write transaction records, for each role, managed policy and OIDC provider it
//!   changes, when and what the record was before (nothing when it did not exist), in memory;
//! - [`Store::propagated`] is a read view as of *now − delay*: for each record, the version
//!   that was current then, i.e. the one before the first change made after that instant;
//! - IAM's own reads use the store directly and see every write at once, as IAM does.
//!
//! The history only holds changes younger than the delay (older ones have propagated) and is
//! not persisted: after a restart everything written before counts as propagated. With the
//! default delay of zero nothing is recorded and the view is the store itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Result, StateError};
use crate::model::{ManagedPolicy, OidcProvider, Role};
use crate::store::{self, Store};

/// The IAM tables whose changes propagate late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IamTable {
    Roles,
    Policies,
    OidcProviders,
}

/// One record of an [`IamTable`], by its table key (account, then the lower-case name or the
/// provider URL without `https://`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EntityKey {
    pub(crate) table: IamTable,
    pub(crate) account: String,
    pub(crate) key: String,
}

impl EntityKey {
    pub(crate) fn new(table: IamTable, account: &str, key: &str) -> EntityKey {
        EntityKey {
            table,
            account: account.to_string(),
            key: key.to_string(),
        }
    }
}

/// A change recorded by a write transaction: the key and the record's bytes before it.
pub(crate) type PendingChange = (EntityKey, Option<Vec<u8>>);

/// One change of a record: when, and the record before it (`None`: it did not exist).
#[derive(Debug)]
struct Change {
    at: Instant,
    previous: Option<Arc<[u8]>>,
}

/// How many recorded changes between sweeps of the whole history for propagated ones.
const SWEEP_EVERY: u64 = 1024;

/// The recent changes of IAM records, oldest first per record.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The delay in nanoseconds; 0 turns recording off.
    delay_nanos: AtomicU64,
    changes: Mutex<HashMap<EntityKey, Vec<Change>>>,
    recorded: AtomicU64,
}

impl History {
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.delay_nanos.store(nanos, Ordering::Relaxed);
        if nanos == 0 {
            self.lock().clear();
        }
    }

    /// Whether write transactions should collect their changes.
    pub(crate) fn is_recording(&self) -> bool {
        self.delay_nanos.load(Ordering::Relaxed) != 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EntityKey, Vec<Change>>> {
        // The map is consistent after any panic (pushes and retains only), so a poisoned lock
        // is still usable.
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the changes of a write transaction, made now. Called before the commit, under
    /// redb's write lock, so changes of one record are recorded in commit order; a transaction
    /// that then fails to commit leaves entries whose "previous" is still current, which no
    /// view can tell from no change.
    pub(crate) fn record(&self, pending: Vec<PendingChange>) {
        if pending.is_empty() {
            return;
        }
        let at = Instant::now();
        let cutoff = at.checked_sub(self.delay());
        let mut changes = self.lock();
        for (key, previous) in pending {
            let entry = changes.entry(key).or_default();
            if let Some(cutoff) = cutoff {
                entry.retain(|c| c.at > cutoff);
            }
            entry.push(Change {
                at,
                previous: previous.map(Arc::from),
            });
        }
        let recorded = self.recorded.fetch_add(1, Ordering::Relaxed) + 1;
        if recorded.is_multiple_of(SWEEP_EVERY) {
            if let Some(cutoff) = cutoff {
                changes.retain(|_, entry| {
                    entry.retain(|c| c.at > cutoff);
                    !entry.is_empty()
                });
            }
        }
    }

    /// The record's bytes as of `as_of` (`None`: before every recorded change), given its
    /// bytes now: the record before the first change made after that instant, or the current
    /// one when nothing changed since.
    fn as_of(
        &self,
        key: &EntityKey,
        as_of: Option<Instant>,
        current: Option<Vec<u8>>,
    ) -> Option<Arc<[u8]>> {
        let changes = self.lock();
        let later = changes
            .get(key)
            .and_then(|entry| entry.iter().find(|c| as_of.is_none_or(|t| c.at > t)));
        match later {
            Some(change) => change.previous.clone(),
            None => current.map(Arc::from),
        }
    }
}

/// IAM's roles, managed policies and OIDC providers as STS sees them: as they were a while
/// ago (see the [module documentation](self)). Get one with [`Store::propagated`] or
/// [`Store::iam_as_of`].
#[derive(Debug, Clone, Copy)]
pub struct IamView<'s> {
    store: &'s Store,
    /// `None`: the store as it is now. `Some(None)`: before every recorded change.
    as_of: Option<Option<Instant>>,
}

impl Store {
    /// Makes IAM changes visible to [`propagated`](Self::propagated) readers (STS, the
    /// authorization of sessions) only `delay` after they are made; zero (the default) turns
    /// it off. Changes made before it is set count as propagated.
    pub fn set_iam_propagation_delay(&self, delay: Duration) {
        self.history().set_delay(delay);
    }

    /// The delay set with [`set_iam_propagation_delay`](Self::set_iam_propagation_delay).
    pub fn iam_propagation_delay(&self) -> Duration {
        self.history().delay()
    }

    /// IAM state as STS sees it now: as of now minus the propagation delay, or the store
    /// itself when there is none.
    pub fn propagated(&self) -> IamView<'_> {
        let delay = self.history().delay();
        if delay.is_zero() {
            return IamView {
                store: self,
                as_of: None,
            };
        }
        IamView {
            store: self,
            as_of: Some(Instant::now().checked_sub(delay)),
        }
    }

    /// IAM state as of `at`, as far as the history reaches (changes older than the propagation
    /// delay are forgotten). For tests of the view itself; services use
    /// [`propagated`](Self::propagated).
    pub fn iam_as_of(&self, at: Instant) -> IamView<'_> {
        IamView {
            store: self,
            as_of: Some(Some(at)),
        }
    }
}

impl IamView<'_> {
    /// The record's bytes in this view; `None` when it does not exist in it.
    fn bytes(&self, key: &EntityKey) -> Result<Option<Arc<[u8]>>> {
        let current = self.store.iam_record(key)?;
        Ok(match self.as_of {
            None => current.map(Arc::from),
            Some(at) => self.store.history().as_of(key, at, current),
        })
    }

    /// `GetRole` in this view.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the role does not exist in this view; the store's errors.
    pub fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        if self.as_of.is_none() {
            return self.store.get_role(account, name);
        }
        let key = EntityKey::new(IamTable::Roles, account, &store::name_key(name));
        match self.bytes(&key)? {
            Some(bytes) => store::decode("roles", &bytes),
            None => Err(store::role_not_found(name)),
        }
    }

    /// `GetPolicy` in this view.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the policy does not exist in this view; the store's errors.
    pub fn get_policy(&self, arn: &str) -> Result<ManagedPolicy> {
        if self.as_of.is_none() {
            return self.store.get_policy(arn);
        }
        let (account, _, name) =
            store::parse_policy_arn(arn).ok_or_else(|| store::policy_not_found(arn))?;
        let key = EntityKey::new(IamTable::Policies, &account, &store::name_key(&name));
        match self.bytes(&key)? {
            Some(bytes) => {
                let policy: ManagedPolicy = store::decode("policies", &bytes)?;
                if policy.arn == arn {
                    Ok(policy)
                } else {
                    Err(store::policy_not_found(arn))
                }
            }
            None => Err(store::policy_not_found(arn)),
        }
    }

    /// `GetOpenIDConnectProvider` in this view.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the provider does not exist in this view; the store's errors.
    pub fn get_oidc_provider(&self, arn: &str) -> Result<OidcProvider> {
        if self.as_of.is_none() {
            return self.store.get_oidc_provider(arn);
        }
        let (account, url) =
            store::parse_oidc_arn(arn).ok_or_else(|| store::oidc_not_found(arn))?;
        let key = EntityKey::new(IamTable::OidcProviders, &account, &url);
        match self.bytes(&key)? {
            Some(bytes) => store::decode("oidc_providers", &bytes),
            None => Err(store::oidc_not_found(arn)),
        }
    }

    /// [`Store::role_identity_policies`] in this view: the role's inline policies and
    /// attached managed policies, and its boundary, each as it was then.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the role does not exist in this view; the store's errors.
    pub fn role_identity_policies(
        &self,
        account: &str,
        role_name: &str,
    ) -> Result<(Vec<iam::NamedPolicy>, Option<iam::NamedPolicy>)> {
        if self.as_of.is_none() {
            return self.store.role_identity_policies(account, role_name);
        }
        let role = self.get_role(account, role_name)?;
        store::identity_policies_of(&role, |arn| match self.get_policy(arn) {
            Ok(p) => Ok(Some(p)),
            Err(StateError::NoSuchEntity(_)) => Ok(None),
            Err(e) => Err(e),
        })
    }
}
