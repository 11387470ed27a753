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

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{self, EntityKey, IamTable, Store};
use crate::error::{Result, StateError};
use crate::model::{ManagedPolicy, OidcProvider, Role};
use crate::oidc_providers::{oidc_not_found, parse_oidc_arn};
use crate::policies::{parse_policy_arn, policy_not_found};
use crate::roles::{identity_policies_of, role_not_found};

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
            as_of: Some(self.clock().instant().checked_sub(delay)),
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
        let key = EntityKey::new(IamTable::Roles, account, &db::name_key(name));
        match self.bytes(&key)? {
            Some(bytes) => db::decode("roles", &bytes),
            None => Err(role_not_found(name)),
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
        let (account, _, name) = parse_policy_arn(arn).ok_or_else(|| policy_not_found(arn))?;
        let key = EntityKey::new(IamTable::Policies, &account, &db::name_key(&name));
        match self.bytes(&key)? {
            Some(bytes) => {
                let policy: ManagedPolicy = db::decode("policies", &bytes)?;
                if policy.arn == arn {
                    Ok(policy)
                } else {
                    Err(policy_not_found(arn))
                }
            }
            None => Err(policy_not_found(arn)),
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
        let (account, url) = parse_oidc_arn(arn).ok_or_else(|| oidc_not_found(arn))?;
        let key = EntityKey::new(IamTable::OidcProviders, &account, &url);
        match self.bytes(&key)? {
            Some(bytes) => db::decode("oidc_providers", &bytes),
            None => Err(oidc_not_found(arn)),
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
        identity_policies_of(&role, |arn| match self.get_policy(arn) {
            Ok(p) => Ok(Some(p)),
            Err(StateError::NoSuchEntity(_)) => Ok(None),
            Err(e) => Err(e),
        })
    }
}
