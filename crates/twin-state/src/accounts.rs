//! Accounts, their users and long-term access keys, and the unique ids (`AIDA…`, `AROA…`)
//! that name live users and roles.

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::db::{decode, encode, get1, get2, name_key, scan2, Store, Tx};
use crate::error::{Result, StateError};
use crate::ids;
use crate::model::{AccessKey, Account, User};
use crate::validate::{self};

/// The administrator policy given to each account's bootstrap `admin` user.
pub(crate) const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// What a unique id names, while it exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdEntry {
    pub(crate) kind: EntityKind,
    pub(crate) account: String,
    pub(crate) arn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntityKind {
    Role,
    User,
}

impl<'t> Tx<'t> {
    pub(crate) fn require_account(&self, account: &str) -> Result<()> {
        if self.accounts.get(account)?.is_none() {
            return Err(StateError::NoSuchEntity(format!(
                "The account {account} does not exist in this twin."
            )));
        }
        Ok(())
    }

    pub(crate) fn create_account(&mut self, id: &str, alias: &str) -> Result<Account> {
        validate::account_id(id)?;
        if self.accounts.get(id)?.is_some() {
            return Err(StateError::EntityAlreadyExists(format!(
                "Account {id} already exists."
            )));
        }
        let account = Account {
            id: id.to_string(),
            alias: alias.to_string(),
        };
        self.accounts.insert(id, encode(&account)?.as_slice())?;
        Ok(account)
    }

    /// Creates a user with an inline policy set.
    pub(crate) fn create_user(
        &mut self,
        account: &str,
        name: &str,
        inline_policies: BTreeMap<String, String>,
    ) -> Result<User> {
        self.require_account(account)?;
        validate::entity_name(name, "userName", 64)?;
        let key = name_key(name);
        if self.users.get((account, key.as_str()))?.is_some() {
            return Err(StateError::EntityAlreadyExists(format!(
                "User with name {name} already exists."
            )));
        }
        let user = User {
            account: account.to_string(),
            name: name.to_string(),
            path: "/".to_string(),
            user_id: self.ids.unique_id(ids::USER_ID_PREFIX)?,
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            created: self.now,
            inline_policies,
        };
        self.users
            .insert((account, key.as_str()), encode(&user)?.as_slice())?;
        self.unique_ids.insert(
            user.user_id.as_str(),
            encode(&IdEntry {
                kind: EntityKind::User,
                account: account.to_string(),
                arn: user.arn.clone(),
            })?
            .as_slice(),
        )?;
        Ok(user)
    }

    pub(crate) fn add_access_key(&mut self, key: AccessKey) -> Result<AccessKey> {
        self.require_account(&key.account)?;
        if key.principal != "root"
            && self
                .users
                .get((key.account.as_str(), name_key(&key.principal).as_str()))?
                .is_none()
        {
            return Err(StateError::NoSuchEntity(format!(
                "The user with name {} cannot be found.",
                key.principal
            )));
        }
        let id_ok = key.access_key_id.len() == 20
            && key.access_key_id.starts_with(ids::LONG_TERM_KEY_PREFIX)
            && key
                .access_key_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !id_ok || key.secret_access_key.len() != 40 {
            return Err(StateError::InvalidInput(format!(
                "Access key {} must be AKIA followed by 16 uppercase letters or digits, with a 40-character secret.",
                key.access_key_id
            )));
        }
        if self.access_keys.get(key.access_key_id.as_str())?.is_some()
            || self.sessions.get(key.access_key_id.as_str())?.is_some()
        {
            return Err(StateError::EntityAlreadyExists(format!(
                "Access key {} already exists.",
                key.access_key_id
            )));
        }
        self.access_keys
            .insert(key.access_key_id.as_str(), encode(&key)?.as_slice())?;
        Ok(key)
    }

    pub(crate) fn create_access_key(
        &mut self,
        account: &str,
        principal: &str,
    ) -> Result<AccessKey> {
        let key = AccessKey {
            access_key_id: self.ids.access_key_id(ids::LONG_TERM_KEY_PREFIX)?,
            secret_access_key: self.ids.secret()?,
            account: account.to_string(),
            principal: principal.to_string(),
            created: self.now,
        };
        self.add_access_key(key)
    }
}

impl Store {
    /// Adds an account.
    pub fn create_account(&self, id: &str, alias: &str) -> Result<Account> {
        self.update(|tx| tx.create_account(id, alias))
    }

    /// The account with that id.
    pub fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.read(|rx| get1(rx.accounts()?, "accounts", id))
    }

    /// Every account, by id.
    pub fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(|rx| {
            let mut out = Vec::new();
            for entry in rx.accounts()?.iter()? {
                let (_, v) = entry?;
                out.push(decode("accounts", v.value())?);
            }
            Ok(out)
        })
    }

    /// Creates the bootstrap `admin`-style user with an administrator inline policy.
    pub fn create_admin_user(&self, account: &str, name: &str) -> Result<User> {
        self.update(|tx| {
            tx.create_user(
                account,
                name,
                BTreeMap::from([("AdministratorAccess".to_string(), ADMIN_POLICY.to_string())]),
            )
        })
    }

    /// The user `name` in `account`.
    pub fn get_user(&self, account: &str, name: &str) -> Result<User> {
        self.read(|rx| {
            get2(rx.users()?, "users", account, &name_key(name))?.ok_or_else(|| {
                StateError::NoSuchEntity(format!("The user with name {name} cannot be found."))
            })
        })
    }

    /// The users of `account`, by name.
    pub fn list_users(&self, account: &str) -> Result<Vec<User>> {
        self.read(|rx| {
            Ok(scan2(rx.users()?, "users", account, "")?
                .into_iter()
                .map(|(_, u)| u)
                .collect())
        })
    }

    /// Generates a long-term access key for `principal` (a user name or `root`) of `account`.
    pub fn create_access_key(&self, account: &str, principal: &str) -> Result<AccessKey> {
        self.update(|tx| tx.create_access_key(account, principal))
    }

    /// The long-term key with that id, with its secret: the caller compares the signature (in
    /// constant time) and resolves the principal from `account` and `principal`.
    pub fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        self.read(|rx| get1(rx.access_keys()?, "access_keys", access_key_id))
    }

    /// The long-term keys of `account`.
    pub fn list_access_keys(&self, account: &str) -> Result<Vec<AccessKey>> {
        self.read(|rx| {
            let mut out = Vec::new();
            for entry in rx.access_keys()?.iter()? {
                let (_, v) = entry?;
                let key: AccessKey = decode("access_keys", v.value())?;
                if key.account == account {
                    out.push(key);
                }
            }
            Ok(out)
        })
    }
}
