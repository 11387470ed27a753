//! Trust and resource policy documents as IAM stores them: known principals by unique id,
//! shown back with the ARNs of the entities that still exist.

use iam::IdentityArn;
use redb::ReadableTable;
use serde_json::Value;

use crate::accounts::{EntityKind, IdEntry};
use crate::db::{get1, get2, name_key, Bytes, Store, Tx, K1};
use crate::error::{Result, StateError};
use crate::ids::IdSource;
use crate::model::{Role, User};
use crate::principals::{self, StoredPolicy};
use crate::validate::policy_size_check;

/// Shows a stored policy with live entities' ARNs in place of their unique ids.
pub(crate) fn render(t: &impl ReadableTable<K1, Bytes>, stored: &StoredPolicy) -> Result<String> {
    if stored.unique_ids.is_empty() {
        return Ok(stored.document.clone());
    }
    let mut value: Value =
        serde_json::from_str(&stored.document).map_err(|e| StateError::Corrupt {
            table: "policy document",
            detail: e.to_string(),
        })?;
    let changed = principals::map_aws_principals(&mut value, &mut |s| {
        if !stored.unique_ids.iter().any(|id| id == s) {
            return Ok(None);
        }
        Ok(get1::<IdEntry>(t, "unique_ids", s)?.map(|e| e.arn))
    })?;
    if !changed {
        return Ok(stored.document.clone());
    }
    serde_json::to_string(&value).map_err(|e| StateError::Storage(e.to_string()))
}

impl<'t> Tx<'t> {
    /// Validates a resource or trust policy and stores its known principals by unique id.
    pub(crate) fn store_policy(
        &self,
        text: &str,
        kind: iam::PolicyKind,
        quota: iam::SizeQuota,
    ) -> Result<StoredPolicy> {
        iam::Policy::parse(text, kind)?;
        policy_size_check(text, quota)?;
        let mut value: Value = serde_json::from_str(text)
            .map_err(|e| StateError::MalformedPolicyDocument(e.to_string()))?;
        let changed = principals::map_aws_principals(&mut value, &mut |s| {
            let Ok(arn) = s.parse::<IdentityArn>() else {
                return Ok(None);
            };
            let (table, kind_key, account, path, name) = match &arn {
                IdentityArn::Role {
                    account,
                    path,
                    name,
                    ..
                } => (&self.roles, EntityKind::Role, account, path, name),
                IdentityArn::User {
                    account,
                    path,
                    name,
                    ..
                } => (&self.users, EntityKind::User, account, path, name),
                _ => return Ok(None),
            };
            // Principals in accounts the twin does not simulate cannot be checked: kept as is.
            if self.accounts.get(account.as_str())?.is_none() {
                return Ok(None);
            }
            let found = match kind_key {
                EntityKind::Role => get2::<Role>(table, "roles", account, &name_key(name))?
                    .filter(|r| &r.path == path)
                    .map(|r| r.role_id),
                EntityKind::User => get2::<User>(table, "users", account, &name_key(name))?
                    .filter(|u| &u.path == path)
                    .map(|u| u.user_id),
            };
            found
                .map(Some)
                .ok_or_else(|| principals::invalid_principal(s))
        })?;
        let document = if changed {
            serde_json::to_string(&value).map_err(|e| StateError::Storage(e.to_string()))?
        } else {
            text.to_string()
        };
        Ok(StoredPolicy {
            document,
            unique_ids: principals::unique_ids_in(&mut value),
        })
    }
}

impl Store {
    /// Validates a resource policy (e.g. a bucket policy) and stores its known principals by
    /// unique id, rejecting names of roles and users that do not exist.
    pub fn store_resource_policy(&self, text: &str) -> Result<StoredPolicy> {
        // A write transaction (aborted, nothing written) gives the same view as the mutation
        // that will store the result; callers that need atomicity store it in that mutation.
        let txn = self.db().begin_write()?;
        let tx = Tx::open(&txn, IdSource::Os)?;
        let out = tx.store_policy(
            text,
            iam::PolicyKind::Resource,
            iam::SizeQuota::ManagedPolicy,
        );
        drop(tx);
        txn.abort()?;
        out
    }

    /// The document of a stored policy as IAM shows it: the ARNs of entities that still exist,
    /// the raw unique ids of deleted ones.
    pub fn render_policy(&self, stored: &StoredPolicy) -> Result<String> {
        self.read(|rx| render(rx.unique_ids()?, stored))
    }
}
