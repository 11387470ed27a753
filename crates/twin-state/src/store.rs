//! The durable store: redb tables of JSON records, one write transaction per mutation.
//!
//! Tables (keys are stable and lower-cased where IAM names are case-insensitive, so every lookup
//! is one B-tree search):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `&str` | `&str` (`schema_version`) |
//! | `accounts` | account id | [`Account`] |
//! | `access_keys` | access key id | [`AccessKey`] |
//! | `users` | (account, lower-case name) | [`User`] |
//! | `roles` | (account, lower-case name) | [`Role`] |
//! | `unique_ids` | `AROA…`/`AIDA…` | which live role or user has that id, and its ARN |
//! | `policies` | (account, lower-case name) | [`ManagedPolicy`] with its versions |
//! | `oidc_providers` | (account, URL without `https://`) | [`OidcProvider`] |
//! | `clusters` | (account, region, name) | [`Cluster`] |
//! | `sessions` | `ASIA…` access key id | [`Session`] |
//! | `role_sessions` | (role id, access key id) | `()`: the sessions to end when a role goes |

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iam::IdentityArn;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{Result, StateError};
use crate::group_commit::GroupCommit;
use crate::ids::{self, IdSource};
use crate::model::{
    AccessKey, Account, AttachedPolicy, Cluster, ManagedPolicy, OidcProvider, Page, Paging,
    PolicyVersion, Role, Session, Tag, User,
};
use crate::principals::{self, StoredPolicy};
use crate::propagation::{EntityKey, History, IamTable, PendingChange};
use crate::validate;

mod sessions;

type Bytes = &'static [u8];
type K1 = &'static str;
type K2 = (&'static str, &'static str);
type K3 = (&'static str, &'static str, &'static str);

const META: TableDefinition<K1, K1> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<K1, Bytes> = TableDefinition::new("accounts");
const ACCESS_KEYS: TableDefinition<K1, Bytes> = TableDefinition::new("access_keys");
const USERS: TableDefinition<K2, Bytes> = TableDefinition::new("users");
pub(crate) const ROLES: TableDefinition<K2, Bytes> = TableDefinition::new("roles");
const UNIQUE_IDS: TableDefinition<K1, Bytes> = TableDefinition::new("unique_ids");
const POLICIES: TableDefinition<K2, Bytes> = TableDefinition::new("policies");
const OIDC_PROVIDERS: TableDefinition<K2, Bytes> = TableDefinition::new("oidc_providers");
const CLUSTERS: TableDefinition<K3, Bytes> = TableDefinition::new("clusters");
const SESSIONS: TableDefinition<K1, Bytes> = TableDefinition::new("sessions");
const ROLE_SESSIONS: TableDefinition<K2, ()> = TableDefinition::new("role_sessions");

/// Bumped when the record layout changes incompatibly; `open` refuses other versions rather
/// than misreading them.
const SCHEMA_VERSION: &str = "1";
/// The database file inside the data directory.
const FILE_NAME: &str = "twin-state.redb";

/// IAM's default quota of managed policies attached to one role.
const MAX_ATTACHED_PER_ROLE: usize = 10;
/// IAM's quota of tags per role and per OIDC provider.
const MAX_TAGS: usize = 50;
/// IAM's quota of versions per managed policy.
const MAX_POLICY_VERSIONS: usize = 5;
/// IAM's quota of client ids per OIDC provider.
const MAX_CLIENT_IDS: usize = 100;
/// IAM's quota of thumbprints per OIDC provider.
const MAX_THUMBPRINTS: usize = 5;
/// The administrator policy given to each account's bootstrap `admin` user.
pub(crate) const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// What a unique id names, while it exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdEntry {
    kind: EntityKind,
    account: String,
    arn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum EntityKind {
    Role,
    User,
}

/// Parameters of `CreateRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRole {
    /// The account to create the role in.
    pub account: String,
    /// The role name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The trust policy document (JSON).
    pub assume_role_policy: String,
    /// The description.
    pub description: Option<String>,
    /// Longest session in seconds (default 3600).
    pub max_session_duration: Option<u32>,
    /// A managed policy ARN to use as permissions boundary.
    pub permissions_boundary: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Parameters of `CreatePolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePolicy {
    /// The account to create the policy in.
    pub account: String,
    /// The policy name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The policy document (JSON), which becomes version `v1`.
    pub document: String,
    /// The description.
    pub description: Option<String>,
    /// Tags (at most 50).
    pub tags: Vec<Tag>,
}

/// `ListPolicies`'s `Scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyScope {
    /// AWS managed and customer managed policies (the twin has only the latter).
    #[default]
    All,
    /// AWS managed policies only: always empty in the twin.
    Aws,
    /// Customer managed policies.
    Local,
}

/// Parameters of `ListPolicies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPolicies {
    /// Which policies.
    pub scope: PolicyScope,
    /// Only those attached to at least one role or user.
    pub only_attached: bool,
    /// Only those whose path starts with this.
    pub path_prefix: Option<String>,
    /// Pagination.
    pub paging: Paging,
}

/// Parameters of `CreateOpenIDConnectProvider`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOidcProvider {
    /// The account to register the provider in.
    pub account: String,
    /// The issuer URL, `https://…`.
    pub url: String,
    /// Accepted audiences.
    pub client_ids: Vec<String>,
    /// Certificate thumbprints (optional, as in IAM since 2024).
    pub thumbprints: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A session to issue; the store generates its temporary key, secret and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The role's ARN.
    pub role_arn: String,
    /// The role's unique id, as read when the trust policy was evaluated: if the role has been
    /// deleted (or replaced) since, issuing fails with `NoSuchEntity`.
    pub role_id: String,
    /// The session name.
    pub session_name: String,
    /// When it is issued.
    pub issued: OffsetDateTime,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// The inline session policy.
    pub session_policy: Option<String>,
    /// Managed session policy ARNs.
    pub session_policy_arns: Vec<String>,
    /// Session tags.
    pub session_tags: Vec<Tag>,
    /// Transitive tag keys.
    pub transitive_tag_keys: Vec<String>,
    /// Source identity.
    pub source_identity: Option<String>,
    /// Whether this is a chained session.
    pub chained: bool,
}

/// The twin's durable state. Share it behind an `Arc`; every method is synchronous (use
/// `spawn_blocking` from async code) and every mutation is one redb write transaction, committed
/// with `Durability::Immediate` (fsync) before the method returns.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Batches concurrent `put_session`s (EKS Auth's sessions, through STS's synchronous path)
    /// into shared transactions; STS's async handlers batch theirs for `put_sessions`.
    session_writes: GroupCommit<Session, ()>,
    /// Recent IAM changes, for STS's late view (`propagation`).
    history: History,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

pub(crate) fn name_key(name: &str) -> String {
    // IAM role, user and policy names are unique regardless of case.
    name.to_ascii_lowercase()
}

fn now() -> OffsetDateTime {
    // IAM reports times to the second.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

pub(crate) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StateError::Storage(format!("encoding failed: {e}")))
}

fn get1<T: DeserializeOwned>(
    t: &impl ReadableTable<K1, Bytes>,
    table: &'static str,
    key: &str,
) -> Result<Option<T>> {
    match t.get(key)? {
        None => Ok(None),
        Some(g) => decode(table, g.value()).map(Some),
    }
}

fn get2<T: DeserializeOwned>(
    t: &impl ReadableTable<K2, Bytes>,
    table: &'static str,
    a: &str,
    b: &str,
) -> Result<Option<T>> {
    match t.get((a, b))? {
        None => Ok(None),
        Some(g) => decode(table, g.value()).map(Some),
    }
}

/// All records whose first key part is `a`, from `start` (inclusive) on, in key order, with the
/// second key part.
fn scan2<T: DeserializeOwned>(
    t: &impl ReadableTable<K2, Bytes>,
    table: &'static str,
    a: &str,
    start: &str,
) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for entry in t.range((a, start)..)? {
        let (k, v) = entry?;
        let (ka, kb) = k.value();
        if ka != a {
            break;
        }
        out.push((kb.to_string(), decode(table, v.value())?));
    }
    Ok(out)
}

/// Cuts a key-ordered list into IAM's page: the marker is the next item's key.
pub(crate) fn paginate<T>(items: Vec<(String, T)>, max: usize) -> Page<T> {
    let mut iter = items.into_iter();
    let page: Vec<T> = iter.by_ref().take(max).map(|(_, t)| t).collect();
    let next = iter.next();
    Page {
        items: page,
        is_truncated: next.is_some(),
        marker: next.map(|(k, _)| k),
    }
}

/// Pages an in-memory list whose order is its own: the marker is the next item's index.
///
/// # Errors
///
/// `InvalidInput` for a marker this did not hand out, `ValidationError` for `max_items` out of
/// IAM's range.
pub fn paginate_indexed<T>(items: Vec<T>, paging: &Paging) -> Result<Page<T>> {
    let max = validate::max_items(paging.max_items)?;
    let start = match &paging.marker {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| StateError::InvalidInput(format!("Invalid Marker: {m}")))?,
    };
    let keyed = items
        .into_iter()
        .enumerate()
        .skip(start)
        .map(|(i, t)| (i.to_string(), t))
        .collect();
    Ok(paginate(keyed, max))
}

pub(crate) fn role_not_found(name: &str) -> StateError {
    StateError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

pub(crate) fn policy_not_found(arn: &str) -> StateError {
    StateError::NoSuchEntity(format!("Policy {arn} was not found."))
}

pub(crate) fn oidc_not_found(arn: &str) -> StateError {
    StateError::NoSuchEntity(format!("OpenIDConnect provider not found for arn {arn}"))
}

/// Splits a customer managed policy ARN into (account, path, name).
pub(crate) fn parse_policy_arn(arn: &str) -> Option<(String, String, String)> {
    let parsed: iam::Arn = arn.parse().ok()?;
    let rest = parsed.resource.strip_prefix("policy/")?;
    if parsed.service != "iam" || !iam::arn::is_account_id(&parsed.account) || rest.is_empty() {
        return None;
    }
    let (path, name) = validate::split_path_name(rest);
    Some((parsed.account, path, name))
}

/// Splits an OIDC provider ARN into (account, URL without scheme).
pub(crate) fn parse_oidc_arn(arn: &str) -> Option<(String, String)> {
    match arn.parse::<IdentityArn>().ok()? {
        IdentityArn::OidcProvider { account, url, .. } => Some((account, url)),
        _ => None,
    }
}

pub(crate) fn check_tags(existing: &mut Vec<Tag>, new: &[Tag], quota: &str) -> Result<()> {
    for t in new {
        validate::tag(t)?;
    }
    for t in new {
        // Tag keys are unique regardless of case; a repeated key replaces the value.
        match existing
            .iter_mut()
            .find(|e| e.key.eq_ignore_ascii_case(&t.key))
        {
            Some(e) => *e = t.clone(),
            None => existing.push(t.clone()),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(StateError::LimitExceeded(format!(
            "Cannot exceed quota for {quota}: {MAX_TAGS}."
        )));
    }
    Ok(())
}

fn policy_size_check(doc: &str, quota: iam::SizeQuota) -> Result<()> {
    quota.check(iam::policy_size(doc))?;
    Ok(())
}

/// The tables of one write transaction, opened together so operations can use any of them.
pub(crate) struct Tx<'t> {
    accounts: Table<'t, K1, Bytes>,
    access_keys: Table<'t, K1, Bytes>,
    users: Table<'t, K2, Bytes>,
    roles: Table<'t, K2, Bytes>,
    unique_ids: Table<'t, K1, Bytes>,
    policies: Table<'t, K2, Bytes>,
    oidc: Table<'t, K2, Bytes>,
    clusters: Table<'t, K3, Bytes>,
    sessions: Table<'t, K1, Bytes>,
    role_sessions: Table<'t, K2, ()>,
    ids: IdSource,
    now: OffsetDateTime,
    /// The IAM records changed, with what they were before, when the store keeps a history
    /// for the IAM propagation delay.
    changes: Option<Vec<PendingChange>>,
}

/// The tables of one read transaction.
/// A read transaction whose tables are opened when first used: opening a table costs about as
/// much as a lookup in it, and most reads (a role, an OIDC provider, a session: several per STS
/// call) need one table of the nine.
struct Rx {
    txn: ReadTransaction,
    accounts: OnceCell<ReadOnlyTable<K1, Bytes>>,
    access_keys: OnceCell<ReadOnlyTable<K1, Bytes>>,
    users: OnceCell<ReadOnlyTable<K2, Bytes>>,
    roles: OnceCell<ReadOnlyTable<K2, Bytes>>,
    unique_ids: OnceCell<ReadOnlyTable<K1, Bytes>>,
    policies: OnceCell<ReadOnlyTable<K2, Bytes>>,
    oidc: OnceCell<ReadOnlyTable<K2, Bytes>>,
    clusters: OnceCell<ReadOnlyTable<K3, Bytes>>,
    sessions: OnceCell<ReadOnlyTable<K1, Bytes>>,
}

impl Rx {
    fn new(txn: ReadTransaction) -> Rx {
        Rx {
            txn,
            accounts: OnceCell::new(),
            access_keys: OnceCell::new(),
            users: OnceCell::new(),
            roles: OnceCell::new(),
            unique_ids: OnceCell::new(),
            policies: OnceCell::new(),
            oidc: OnceCell::new(),
            clusters: OnceCell::new(),
            sessions: OnceCell::new(),
        }
    }

    fn accounts(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.accounts, &self.txn, ACCOUNTS)
    }

    fn access_keys(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.access_keys, &self.txn, ACCESS_KEYS)
    }

    fn users(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.users, &self.txn, USERS)
    }

    fn roles(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.roles, &self.txn, ROLES)
    }

    fn unique_ids(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.unique_ids, &self.txn, UNIQUE_IDS)
    }

    fn policies(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.policies, &self.txn, POLICIES)
    }

    fn oidc(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.oidc, &self.txn, OIDC_PROVIDERS)
    }

    fn clusters(&self) -> Result<&ReadOnlyTable<K3, Bytes>> {
        opened(&self.clusters, &self.txn, CLUSTERS)
    }

    fn sessions(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.sessions, &self.txn, SESSIONS)
    }
}

/// The table in `cell`, opened in `txn` the first time.
fn opened<'a, K: redb::Key + 'static>(
    cell: &'a OnceCell<ReadOnlyTable<K, Bytes>>,
    txn: &ReadTransaction,
    definition: TableDefinition<K, Bytes>,
) -> Result<&'a ReadOnlyTable<K, Bytes>> {
    if let Some(table) = cell.get() {
        return Ok(table);
    }
    let table = txn.open_table(definition)?;
    Ok(cell.get_or_init(|| table))
}

pub(crate) fn find_role(
    t: &impl ReadableTable<K2, Bytes>,
    account: &str,
    name: &str,
) -> Result<Role> {
    get2(t, "roles", account, &name_key(name))?.ok_or_else(|| role_not_found(name))
}

fn find_policy(t: &impl ReadableTable<K2, Bytes>, arn: &str) -> Result<ManagedPolicy> {
    let (account, _, name) = parse_policy_arn(arn).ok_or_else(|| policy_not_found(arn))?;
    match get2::<ManagedPolicy>(t, "policies", &account, &name_key(&name))? {
        Some(p) if p.arn == arn => Ok(p),
        _ => Err(policy_not_found(arn)),
    }
}

fn find_oidc(t: &impl ReadableTable<K2, Bytes>, arn: &str) -> Result<OidcProvider> {
    let (account, url) = parse_oidc_arn(arn).ok_or_else(|| oidc_not_found(arn))?;
    get2(t, "oidc_providers", &account, &url)?.ok_or_else(|| oidc_not_found(arn))
}

/// A role's identity policies and boundary as the `iam` engine takes them (see
/// [`Store::role_identity_policies`]), its managed policies looked up with `policy` (`None`:
/// gone, skipped).
pub(crate) fn identity_policies_of(
    role: &Role,
    policy: impl Fn(&str) -> Result<Option<ManagedPolicy>>,
) -> Result<(Vec<iam::NamedPolicy>, Option<iam::NamedPolicy>)> {
    let corrupt = |e: iam::PolicyError| StateError::Corrupt {
        table: "policy document",
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    for (name, doc) in &role.inline_policies {
        let parsed = iam::Policy::parse(doc, iam::PolicyKind::Identity).map_err(corrupt)?;
        out.push(iam::NamedPolicy::new(
            &format!("{} (inline: {name})", role.arn),
            parsed,
        ));
    }
    let default_of = |arn: &str| -> Result<Option<iam::NamedPolicy>> {
        let Some(p) = policy(arn)? else {
            return Ok(None);
        };
        let Some(v) = p.default_version() else {
            return Ok(None);
        };
        let parsed = iam::Policy::parse(&v.document, iam::PolicyKind::Identity).map_err(corrupt)?;
        Ok(Some(iam::NamedPolicy::new(arn, parsed)))
    };
    for arn in &role.attached_policies {
        out.extend(default_of(arn)?);
    }
    let boundary = match &role.permissions_boundary {
        Some(arn) => default_of(arn)?,
        None => None,
    };
    Ok((out, boundary))
}

/// Shows a stored policy with live entities' ARNs in place of their unique ids.
fn render(t: &impl ReadableTable<K1, Bytes>, stored: &StoredPolicy) -> Result<String> {
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
    fn open(txn: &'t redb::WriteTransaction, ids: IdSource) -> Result<Tx<'t>> {
        Ok(Tx {
            accounts: txn.open_table(ACCOUNTS)?,
            access_keys: txn.open_table(ACCESS_KEYS)?,
            users: txn.open_table(USERS)?,
            roles: txn.open_table(ROLES)?,
            unique_ids: txn.open_table(UNIQUE_IDS)?,
            policies: txn.open_table(POLICIES)?,
            oidc: txn.open_table(OIDC_PROVIDERS)?,
            clusters: txn.open_table(CLUSTERS)?,
            sessions: txn.open_table(SESSIONS)?,
            role_sessions: txn.open_table(ROLE_SESSIONS)?,
            ids,
            now: now(),
            changes: None,
        })
    }

    /// Inserts a session: `Ok(Err(_))` when its role (by unique id) is gone or its key is
    /// taken, with nothing written; `Err(_)` when the storage failed.
    fn insert_session(&mut self, session: &Session) -> Result<Result<()>> {
        match get1::<IdEntry>(&self.unique_ids, "unique_ids", &session.role_id)? {
            Some(e) if e.kind == EntityKind::Role && e.arn == session.role_arn => {}
            _ => {
                return Ok(Err(StateError::NoSuchEntity(format!(
                    "The role {} with id {} no longer exists.",
                    session.role_arn, session.role_id
                ))))
            }
        }
        let key = session.access_key_id.as_str();
        if self.sessions.get(key)?.is_some() || self.access_keys.get(key)?.is_some() {
            return Ok(Err(StateError::EntityAlreadyExists(format!(
                "Access key {key} already exists."
            ))));
        }
        let encoded = match encode(session) {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Err(e)),
        };
        self.sessions.insert(key, encoded.as_slice())?;
        self.role_sessions
            .insert((session.role_id.as_str(), key), ())?;
        Ok(Ok(()))
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub(crate) fn is_empty(&self) -> Result<bool> {
        Ok(self.accounts.first()?.is_none())
    }

    fn require_account(&self, account: &str) -> Result<()> {
        if self.accounts.get(account)?.is_none() {
            return Err(StateError::NoSuchEntity(format!(
                "The account {account} does not exist in this twin."
            )));
        }
        Ok(())
    }

    fn put_role(&mut self, role: &Role) -> Result<()> {
        let record = encode(role)?;
        let key = name_key(&role.name);
        self.set_iam_record(IamTable::Roles, &role.account, &key, Some(&record))
    }

    /// Writes (`Some`) or removes (`None`) one role, managed policy or OIDC provider record,
    /// and, when the store keeps a propagation history, records what it was before (copied
    /// only then).
    fn set_iam_record(
        &mut self,
        table: IamTable,
        account: &str,
        key: &str,
        record: Option<&[u8]>,
    ) -> Result<()> {
        let stored = match table {
            IamTable::Roles => &mut self.roles,
            IamTable::Policies => &mut self.policies,
            IamTable::OidcProviders => &mut self.oidc,
        };
        let previous = match record {
            Some(bytes) => stored.insert((account, key), bytes)?,
            None => stored.remove((account, key))?,
        };
        if let Some(changes) = &mut self.changes {
            let previous = previous.map(|v| v.value().to_vec());
            changes.push((EntityKey::new(table, account, key), previous));
        }
        Ok(())
    }

    fn put_policy(&mut self, p: &ManagedPolicy) -> Result<()> {
        let record = encode(p)?;
        let key = name_key(&p.name);
        self.set_iam_record(IamTable::Policies, &p.account, &key, Some(&record))
    }

    fn put_oidc(&mut self, p: &OidcProvider) -> Result<()> {
        let record = encode(p)?;
        let url = p.url.trim_start_matches("https://");
        self.set_iam_record(IamTable::OidcProviders, &p.account, url, Some(&record))
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

    fn boundary_usage(&mut self, arn: &str, delta: i64) -> Result<()> {
        let mut p = find_policy(&self.policies, arn).map_err(|_| {
            StateError::NoSuchEntity(format!(
                "Scope ARN: {arn} does not exist or is not attachable."
            ))
        })?;
        p.permissions_boundary_usage_count =
            (i64::from(p.permissions_boundary_usage_count) + delta).max(0) as u32;
        self.put_policy(&p)
    }

    pub(crate) fn create_role(&mut self, req: &CreateRole) -> Result<Role> {
        self.require_account(&req.account)?;
        validate::entity_name(&req.name, "roleName", 64)?;
        let path = req.path.clone().unwrap_or_else(|| "/".to_string());
        validate::path(&path, "path")?;
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        let max_session_duration = req.max_session_duration.unwrap_or(3600);
        validate::max_session_duration(max_session_duration)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerRole")?;
        let key = name_key(&req.name);
        if self
            .roles
            .get((req.account.as_str(), key.as_str()))?
            .is_some()
        {
            return Err(StateError::EntityAlreadyExists(format!(
                "Role with name {} already exists.",
                req.name
            )));
        }
        let assume_role_policy = self.store_policy(
            &req.assume_role_policy,
            iam::PolicyKind::Trust,
            iam::SizeQuota::TrustPolicy,
        )?;
        // Every check is done before the first write, so a failure leaves nothing behind even
        // inside a larger transaction (world seeding retries failed roles).
        if let Some(b) = &req.permissions_boundary {
            self.boundary_usage(b, 1)?;
        }
        let role = Role {
            account: req.account.clone(),
            name: req.name.clone(),
            arn: format!("arn:aws:iam::{}:role{}{}", req.account, path, req.name),
            path,
            role_id: self.ids.unique_id(ids::ROLE_ID_PREFIX)?,
            created: self.now,
            description: req.description.clone(),
            max_session_duration,
            assume_role_policy,
            tags,
            permissions_boundary: req.permissions_boundary.clone(),
            inline_policies: BTreeMap::new(),
            attached_policies: Vec::new(),
        };
        self.put_role(&role)?;
        self.unique_ids.insert(
            role.role_id.as_str(),
            encode(&IdEntry {
                kind: EntityKind::Role,
                account: role.account.clone(),
                arn: role.arn.clone(),
            })?
            .as_slice(),
        )?;
        Ok(role)
    }

    fn delete_role(&mut self, account: &str, name: &str) -> Result<()> {
        let role = find_role(&self.roles, account, name)?;
        if !role.attached_policies.is_empty() {
            return Err(StateError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(StateError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if let Some(b) = &role.permissions_boundary {
            self.boundary_usage(b, -1)?;
        }
        self.set_iam_record(IamTable::Roles, account, &name_key(name), None)?;
        self.unique_ids.remove(role.role_id.as_str())?;
        // Sessions end with their role: collect this incarnation's session keys, then drop them.
        let mut keys = Vec::new();
        for entry in self.role_sessions.range((role.role_id.as_str(), "")..)? {
            let (k, _) = entry?;
            let (rid, key) = k.value();
            if rid != role.role_id {
                break;
            }
            keys.push(key.to_string());
        }
        for key in keys {
            self.sessions.remove(key.as_str())?;
            self.role_sessions
                .remove((role.role_id.as_str(), key.as_str()))?;
        }
        Ok(())
    }

    pub(crate) fn attach_role_policy(
        &mut self,
        account: &str,
        role_name: &str,
        arn: &str,
    ) -> Result<()> {
        let mut role = find_role(&self.roles, account, role_name)?;
        let mut policy = find_policy(&self.policies, arn).map_err(|_| {
            StateError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
        })?;
        if role.attached_policies.iter().any(|a| a == arn) {
            // AttachRolePolicy is idempotent.
            return Ok(());
        }
        if role.attached_policies.len() >= MAX_ATTACHED_PER_ROLE {
            return Err(StateError::LimitExceeded(format!(
                "Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_PER_ROLE}"
            )));
        }
        role.attached_policies.push(arn.to_string());
        policy.attachment_count += 1;
        self.put_role(&role)?;
        self.put_policy(&policy)
    }

    pub(crate) fn put_role_policy(
        &mut self,
        account: &str,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate::entity_name(policy_name, "policyName", 128)?;
        let mut role = find_role(&self.roles, account, role_name)?;
        iam::Policy::parse(document, iam::PolicyKind::Identity)?;
        role.inline_policies
            .insert(policy_name.to_string(), document.to_string());
        let total: usize = role
            .inline_policies
            .values()
            .map(|d| iam::policy_size(d))
            .sum();
        policy_size_check_total(total)?;
        self.put_role(&role)
    }

    pub(crate) fn create_policy(&mut self, req: &CreatePolicy) -> Result<ManagedPolicy> {
        self.require_account(&req.account)?;
        validate::entity_name(&req.name, "policyName", 128)?;
        let path = req.path.clone().unwrap_or_else(|| "/".to_string());
        validate::path(&path, "path")?;
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        iam::Policy::parse(&req.document, iam::PolicyKind::Identity)?;
        policy_size_check(&req.document, iam::SizeQuota::ManagedPolicy)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerPolicy")?;
        let key = name_key(&req.name);
        if self
            .policies
            .get((req.account.as_str(), key.as_str()))?
            .is_some()
        {
            return Err(StateError::EntityAlreadyExists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                req.name
            )));
        }
        let policy = ManagedPolicy {
            account: req.account.clone(),
            name: req.name.clone(),
            arn: format!("arn:aws:iam::{}:policy{}{}", req.account, path, req.name),
            path,
            policy_id: self.ids.unique_id(ids::POLICY_ID_PREFIX)?,
            default_version_id: "v1".into(),
            versions: vec![PolicyVersion {
                version_id: "v1".into(),
                document: req.document.clone(),
                is_default: true,
                created: self.now,
            }],
            next_version: 2,
            attachment_count: 0,
            permissions_boundary_usage_count: 0,
            created: self.now,
            updated: self.now,
            description: req.description.clone(),
            tags,
        };
        self.put_policy(&policy)?;
        Ok(policy)
    }

    pub(crate) fn create_oidc_provider(
        &mut self,
        req: &CreateOidcProvider,
    ) -> Result<OidcProvider> {
        self.require_account(&req.account)?;
        let Some(host_path) = oidc_provider_host_path(&req.url) else {
            return Err(StateError::InvalidInput(format!(
                "Invalid OpenID Connect provider URL {}: it must begin with https://",
                req.url
            )));
        };
        let host_path = host_path.trim_end_matches('/');
        if host_path.is_empty() || host_path.contains(['?', '#', ' ']) || host_path.len() > 255 {
            return Err(StateError::InvalidInput(format!(
                "Invalid OpenID Connect provider URL {}.",
                req.url
            )));
        }
        if req.client_ids.len() > MAX_CLIENT_IDS {
            return Err(StateError::LimitExceeded(format!(
                "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
            )));
        }
        check_thumbprints(&req.thumbprints)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerOpenIdConnectProvider")?;
        if self.oidc.get((req.account.as_str(), host_path))?.is_some() {
            return Err(StateError::EntityAlreadyExists(format!(
                "Provider with url https://{host_path} already exists."
            )));
        }
        let mut client_ids: Vec<String> = Vec::new();
        for c in &req.client_ids {
            if !client_ids.contains(c) {
                client_ids.push(c.clone());
            }
        }
        let provider = OidcProvider {
            account: req.account.clone(),
            arn: format!("arn:aws:iam::{}:oidc-provider/{host_path}", req.account),
            url: format!("https://{host_path}"),
            client_ids,
            thumbprints: req
                .thumbprints
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            created: self.now,
            tags,
        };
        self.put_oidc(&provider)?;
        Ok(provider)
    }

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

fn policy_size_check_total(total: usize) -> Result<()> {
    iam::SizeQuota::RoleInlinePolicies.check(total)?;
    Ok(())
}

fn check_thumbprints(thumbprints: &[String]) -> Result<()> {
    if thumbprints.len() > MAX_THUMBPRINTS {
        return Err(StateError::LimitExceeded(format!(
            "Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: {MAX_THUMBPRINTS}"
        )));
    }
    for t in thumbprints {
        if t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StateError::Validation(format!(
                "1 validation error detected: Value '{t}' at 'thumbprintList' failed to satisfy constraint: Member must have length 40 and consist of hexadecimal digits"
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, in the file `twin-state.redb`. A store
    /// left by a killed process is recovered to its last committed transaction, and what it
    /// left among the S3 bodies is removed (see [`buckets`](crate::buckets)).
    ///
    /// The directory and all in it are the owner's only (0700 directories, 0600 files),
    /// whatever the umask: the database holds every secret access key. A directory an older
    /// version left more open is closed up here.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref();
        private_fs::create_dir_all(dir)?;
        // One walk per open: cheap beside reading the database, and it leaves nothing of an
        // older layout readable (bodies, parts, the database itself).
        private_fs::tighten_tree(dir)?;
        let path = dir.join(FILE_NAME);
        // Created 0600 before redb opens it (redb would create it by the umask).
        let mut options = private_fs::file_options();
        options.truncate(false);
        drop(options.open(&path)?);
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            // Creating every table up front lets read transactions open them unconditionally.
            Tx::open(&txn, IdSource::Os)?;
            crate::pod_identity::create_tables(&txn)?;
            crate::instance_profiles::create_tables(&txn)?;
            crate::buckets::create_tables(&txn)?;
            crate::service_accounts::create_tables(&txn)?;
            let mut meta = txn.open_table(META)?;
            let existing = meta.get("schema_version")?.map(|v| v.value().to_string());
            match existing.as_deref() {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(other) => {
                    return Err(StateError::Storage(format!(
                        "{} has schema version {other}; this build reads version {SCHEMA_VERSION}",
                        path.display()
                    )))
                }
            }
        }
        txn.commit()?;
        let store = Store {
            db,
            path,
            session_writes: GroupCommit::default(),
            history: History::default(),
        };
        crate::buckets::cleanup::remove_leftovers(&store)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction and commits it; an error aborts everything `f` did.
    pub(crate) fn write<R, E: From<StateError>>(
        &self,
        ids: IdSource,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.write_with_raw(ids, |tx, _| f(tx))
    }

    /// The database, for modules with their own tables and error types (`buckets`).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// [`write`](Self::write) that also hands `f` the raw transaction, so seeding can fill
    /// other modules' tables (`buckets`) in the same transaction.
    pub(crate) fn write_with_raw<R, E: From<StateError>>(
        &self,
        ids: IdSource,
        f: impl FnOnce(&mut Tx<'_>, &redb::WriteTransaction) -> Result<R, E>,
    ) -> Result<R, E> {
        let txn = self.db.begin_write().map_err(StateError::from)?;
        let out = {
            let mut tx = Tx::open(&txn, ids)?;
            tx.changes = self.history.is_recording().then(Vec::new);
            let out = f(&mut tx, &txn)?;
            self.history.record(tx.changes.take().unwrap_or_default());
            out
        };
        // Durability::Immediate is redb's default: commit returns after the fsync, so nothing
        // acknowledged to a client is lost if the process is killed right after.
        txn.commit().map_err(StateError::from)?;
        Ok(out)
    }

    /// Runs `f` in one write transaction on the raw redb transaction and commits it, for
    /// modules that keep their own tables (`pod_identity`); an error aborts everything.
    pub(crate) fn write_raw<R>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R>,
    ) -> Result<R> {
        let txn = self.db.begin_write()?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` in one read transaction on the raw redb transaction.
    pub(crate) fn read_raw<R>(&self, f: impl FnOnce(&ReadTransaction) -> Result<R>) -> Result<R> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    fn read<R>(&self, f: impl FnOnce(&Rx) -> Result<R>) -> Result<R> {
        let rx = Rx::new(self.db.begin_read()?);
        f(&rx)
    }

    fn update<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        self.write(IdSource::Os, f)
    }

    /// Whether the store holds no account yet.
    pub fn is_empty(&self) -> Result<bool> {
        self.read(|rx| Ok(rx.accounts()?.first()?.is_none()))
    }

    // ---- accounts, users and keys ----

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

    // ---- policies with principals ----

    /// Validates a resource policy (e.g. a bucket policy) and stores its known principals by
    /// unique id, rejecting names of roles and users that do not exist.
    pub fn store_resource_policy(&self, text: &str) -> Result<StoredPolicy> {
        // A write transaction (aborted, nothing written) gives the same view as the mutation
        // that will store the result; callers that need atomicity store it in that mutation.
        let txn = self.db.begin_write()?;
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

    // ---- roles ----

    /// `CreateRole`.
    pub fn create_role(&self, req: &CreateRole) -> Result<Role> {
        self.update(|tx| tx.create_role(req))
    }

    /// `GetRole`.
    pub fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        self.read(|rx| find_role(rx.roles()?, account, name))
    }

    /// The live role with that unique id (STS resolving a session's role).
    pub fn get_role_by_id(&self, role_id: &str) -> Result<Option<Role>> {
        self.read(|rx| {
            let Some(entry) = get1::<IdEntry>(rx.unique_ids()?, "unique_ids", role_id)? else {
                return Ok(None);
            };
            if entry.kind != EntityKind::Role {
                return Ok(None);
            }
            let Ok(IdentityArn::Role { name, .. }) = entry.arn.parse::<IdentityArn>() else {
                return Ok(None);
            };
            get2(rx.roles()?, "roles", &entry.account, &name_key(&name))
        })
    }

    /// `GetRole` with the trust policy rendered for display.
    pub fn get_role_rendered(&self, account: &str, name: &str) -> Result<(Role, String)> {
        self.read(|rx| {
            let role = find_role(rx.roles()?, account, name)?;
            let doc = render(rx.unique_ids()?, &role.assume_role_policy)?;
            Ok((role, doc))
        })
    }

    /// `DeleteRole`: fails with `DeleteConflict` while the role is in an instance profile or
    /// has policies attached or inline; ends the role's sessions.
    pub fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        self.write_with_raw(IdSource::Os, |tx, txn| {
            crate::instance_profiles::check_role_not_in_profile(txn, account, name)?;
            tx.delete_role(account, name)
        })
    }

    /// `ListRoles`, by name, filtered by path prefix.
    pub fn list_roles(
        &self,
        account: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<Role>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let max = validate::max_items(paging.max_items)?;
        self.read(|rx| {
            let start = paging.marker.as_deref().unwrap_or("");
            let items = scan2::<Role>(rx.roles()?, "roles", account, start)?
                .into_iter()
                .filter(|(_, r)| path_prefix.is_none_or(|p| r.path.starts_with(p)))
                .collect();
            Ok(paginate(items, max))
        })
    }

    /// `UpdateRole`: the description and/or the maximum session duration.
    pub fn update_role(
        &self,
        account: &str,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<Role> {
        if let Some(d) = description {
            validate::description(d)?;
        }
        if let Some(m) = max_session_duration {
            validate::max_session_duration(m)?;
        }
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            if let Some(d) = description {
                role.description = Some(d.to_string());
            }
            if let Some(m) = max_session_duration {
                role.max_session_duration = m;
            }
            tx.put_role(&role)?;
            Ok(role)
        })
    }

    /// `UpdateAssumeRolePolicy`.
    pub fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<Role> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            role.assume_role_policy = tx.store_policy(
                document,
                iam::PolicyKind::Trust,
                iam::SizeQuota::TrustPolicy,
            )?;
            tx.put_role(&role)?;
            Ok(role)
        })
    }

    /// `PutRolePermissionsBoundary`.
    pub fn put_role_permissions_boundary(
        &self,
        account: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            if role.permissions_boundary.as_deref() == Some(policy_arn) {
                return Ok(());
            }
            tx.boundary_usage(policy_arn, 1)?;
            if let Some(old) = role.permissions_boundary.replace(policy_arn.to_string()) {
                tx.boundary_usage(&old, -1)?;
            }
            tx.put_role(&role)
        })
    }

    /// `DeleteRolePermissionsBoundary`.
    pub fn delete_role_permissions_boundary(&self, account: &str, name: &str) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            let Some(old) = role.permissions_boundary.take() else {
                return Err(StateError::NoSuchEntity(format!(
                    "The role with name {name} does not have a permissions boundary."
                )));
            };
            tx.boundary_usage(&old, -1)?;
            tx.put_role(&role)
        })
    }

    /// `TagRole`: adds or replaces tags (keys compared regardless of case), at most 50.
    pub fn tag_role(&self, account: &str, name: &str, tags: &[Tag]) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            check_tags(&mut role.tags, tags, "TagsPerRole")?;
            tx.put_role(&role)
        })
    }

    /// `UntagRole`: removes the tags with these keys; absent keys are ignored, as in IAM.
    pub fn untag_role(&self, account: &str, name: &str, keys: &[String]) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            role.tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            tx.put_role(&role)
        })
    }

    /// `ListRoleTags`.
    pub fn list_role_tags(&self, account: &str, name: &str, paging: &Paging) -> Result<Page<Tag>> {
        let role = self.get_role(account, name)?;
        paginate_indexed(role.tags, paging)
    }

    // ---- inline role policies ----

    /// `PutRolePolicy`: creates or replaces; all inline policies of the role together must fit
    /// IAM's 10,240-character quota.
    pub fn put_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        self.update(|tx| tx.put_role_policy(account, role_name, policy_name, document))
    }

    /// `GetRolePolicy`: the document.
    pub fn get_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
    ) -> Result<String> {
        let role = self.get_role(account, role_name)?;
        role.inline_policy(policy_name).map(str::to_string)
    }

    /// `DeleteRolePolicy`.
    pub fn delete_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, role_name)?;
            if role.inline_policies.remove(policy_name).is_none() {
                return Err(inline_not_found(policy_name));
            }
            tx.put_role(&role)
        })
    }

    /// `ListRolePolicies`: the names, sorted.
    pub fn list_role_policies(
        &self,
        account: &str,
        role_name: &str,
        paging: &Paging,
    ) -> Result<Page<String>> {
        let max = validate::max_items(paging.max_items)?;
        let role = self.get_role(account, role_name)?;
        let start = paging.marker.as_deref().unwrap_or("");
        let items = role
            .inline_policies
            .into_keys()
            .filter(|n| n.as_str() >= start)
            .map(|n| (n.clone(), n))
            .collect();
        Ok(paginate(items, max))
    }

    // ---- managed policies ----

    /// `CreatePolicy` (version `v1`, default).
    pub fn create_policy(&self, req: &CreatePolicy) -> Result<ManagedPolicy> {
        self.update(|tx| tx.create_policy(req))
    }

    /// `GetPolicy`.
    pub fn get_policy(&self, arn: &str) -> Result<ManagedPolicy> {
        self.read(|rx| find_policy(rx.policies()?, arn))
    }

    /// `DeletePolicy`: fails with `DeleteConflict` while attached, used as a boundary, or with
    /// versions other than the default.
    pub fn delete_policy(&self, arn: &str) -> Result<()> {
        self.update(|tx| {
            let p = find_policy(&tx.policies, arn)?;
            if p.attachment_count > 0 || p.permissions_boundary_usage_count > 0 {
                return Err(StateError::DeleteConflict(
                    "Cannot delete a policy attached to entities.".into(),
                ));
            }
            if p.versions.len() > 1 {
                return Err(StateError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
                ));
            }
            tx.set_iam_record(IamTable::Policies, &p.account, &name_key(&p.name), None)
        })
    }

    /// `ListPolicies` in `account`.
    pub fn list_policies(&self, account: &str, opts: &ListPolicies) -> Result<Page<ManagedPolicy>> {
        if let Some(p) = &opts.path_prefix {
            validate::path_prefix(p)?;
        }
        let max = validate::max_items(opts.paging.max_items)?;
        if opts.scope == PolicyScope::Aws {
            return Ok(Page {
                items: Vec::new(),
                is_truncated: false,
                marker: None,
            });
        }
        self.read(|rx| {
            let start = opts.paging.marker.as_deref().unwrap_or("");
            let items = scan2::<ManagedPolicy>(rx.policies()?, "policies", account, start)?
                .into_iter()
                .filter(|(_, p)| {
                    opts.path_prefix
                        .as_deref()
                        .is_none_or(|pre| p.path.starts_with(pre))
                        && (!opts.only_attached || p.attachment_count > 0)
                })
                .collect();
            Ok(paginate(items, max))
        })
    }

    /// `CreatePolicyVersion`: at most 5 versions (`LimitExceeded`).
    pub fn create_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        iam::Policy::parse(document, iam::PolicyKind::Identity)?;
        policy_size_check(document, iam::SizeQuota::ManagedPolicy)?;
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(StateError::LimitExceeded(
                    "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into(),
                ));
            }
            let version = PolicyVersion {
                version_id: format!("v{}", p.next_version),
                document: document.to_string(),
                is_default: set_as_default,
                created: tx.now,
            };
            p.next_version += 1;
            if set_as_default {
                for v in &mut p.versions {
                    v.is_default = false;
                }
                p.default_version_id = version.version_id.clone();
                p.updated = tx.now;
            }
            p.versions.push(version.clone());
            tx.put_policy(&p)?;
            Ok(version)
        })
    }

    /// `GetPolicyVersion`.
    pub fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<PolicyVersion> {
        let p = self.get_policy(arn)?;
        p.versions
            .into_iter()
            .find(|v| v.version_id == version_id)
            .ok_or_else(|| version_not_found(arn, version_id))
    }

    /// `ListPolicyVersions`, oldest first.
    pub fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>> {
        Ok(self.get_policy(arn)?.versions)
    }

    /// `DeletePolicyVersion`: not the default one (`DeleteConflict`).
    pub fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            let i = p
                .versions
                .iter()
                .position(|v| v.version_id == version_id)
                .ok_or_else(|| version_not_found(arn, version_id))?;
            if p.versions[i].is_default {
                return Err(StateError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            p.versions.remove(i);
            tx.put_policy(&p)
        })
    }

    /// `SetDefaultPolicyVersion`.
    pub fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            if !p.versions.iter().any(|v| v.version_id == version_id) {
                return Err(version_not_found(arn, version_id));
            }
            for v in &mut p.versions {
                v.is_default = v.version_id == version_id;
            }
            p.default_version_id = version_id.to_string();
            p.updated = tx.now;
            tx.put_policy(&p)
        })
    }

    /// `AttachRolePolicy` (idempotent; at most 10 per role).
    pub fn attach_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| tx.attach_role_policy(account, role_name, policy_arn))
    }

    /// `DetachRolePolicy`.
    pub fn detach_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, role_name)?;
            let Some(i) = role.attached_policies.iter().position(|a| a == policy_arn) else {
                return Err(StateError::NoSuchEntity(format!(
                    "Policy {policy_arn} was not found."
                )));
            };
            role.attached_policies.remove(i);
            tx.put_role(&role)?;
            if let Ok(mut p) = find_policy(&tx.policies, policy_arn) {
                p.attachment_count = p.attachment_count.saturating_sub(1);
                tx.put_policy(&p)?;
            }
            Ok(())
        })
    }

    /// `ListAttachedRolePolicies`, in attachment order, filtered by the policies' path prefix.
    pub fn list_attached_role_policies(
        &self,
        account: &str,
        role_name: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<AttachedPolicy>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let role = self.get_role(account, role_name)?;
        let items = role
            .attached_policies
            .iter()
            .filter_map(|arn| {
                let (_, path, name) = parse_policy_arn(arn)?;
                path_prefix
                    .is_none_or(|p| path.starts_with(p))
                    .then(|| AttachedPolicy {
                        name,
                        arn: arn.clone(),
                    })
            })
            .collect();
        paginate_indexed(items, paging)
    }

    /// The identity policies of a role as the `iam` engine takes them: inline policies, then the
    /// default versions of attached managed policies, each named as IAM's explanations name them;
    /// and the permissions boundary's default version, if any.
    pub fn role_identity_policies(
        &self,
        account: &str,
        role_name: &str,
    ) -> Result<(Vec<iam::NamedPolicy>, Option<iam::NamedPolicy>)> {
        self.read(|rx| {
            let role = find_role(rx.roles()?, account, role_name)?;
            identity_policies_of(&role, |arn| Ok(find_policy(rx.policies()?, arn).ok()))
        })
    }

    /// The stored bytes of one IAM record, for the propagation view.
    pub(crate) fn iam_record(&self, key: &EntityKey) -> Result<Option<Vec<u8>>> {
        self.read(|rx| {
            let table = match key.table {
                IamTable::Roles => rx.roles()?,
                IamTable::Policies => rx.policies()?,
                IamTable::OidcProviders => rx.oidc()?,
            };
            Ok(table
                .get((key.account.as_str(), key.key.as_str()))?
                .map(|v| v.value().to_vec()))
        })
    }

    pub(crate) fn history(&self) -> &History {
        &self.history
    }

    // ---- OIDC providers ----

    /// `CreateOpenIDConnectProvider`.
    pub fn create_oidc_provider(&self, req: &CreateOidcProvider) -> Result<OidcProvider> {
        self.update(|tx| tx.create_oidc_provider(req))
    }

    /// `GetOpenIDConnectProvider`.
    pub fn get_oidc_provider(&self, arn: &str) -> Result<OidcProvider> {
        self.read(|rx| find_oidc(rx.oidc()?, arn))
    }

    /// `ListOpenIDConnectProviders` of `account`.
    pub fn list_oidc_providers(&self, account: &str) -> Result<Vec<OidcProvider>> {
        self.read(|rx| {
            Ok(scan2(rx.oidc()?, "oidc_providers", account, "")?
                .into_iter()
                .map(|(_, p)| p)
                .collect())
        })
    }

    /// `DeleteOpenIDConnectProvider`.
    pub fn delete_oidc_provider(&self, arn: &str) -> Result<()> {
        self.update(|tx| {
            let p = find_oidc(&tx.oidc, arn)?;
            let url = p.url.trim_start_matches("https://");
            tx.set_iam_record(IamTable::OidcProviders, &p.account, url, None)
        })
    }

    /// `AddClientIDToOpenIDConnectProvider` (adding one already there does nothing).
    pub fn add_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(StateError::Validation(format!(
                "1 validation error detected: Value '{client_id}' at 'clientID' failed to satisfy constraint: Member must have length between 1 and 255"
            )));
        }
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            if p.client_ids.iter().any(|c| c == client_id) {
                return Ok(());
            }
            if p.client_ids.len() >= MAX_CLIENT_IDS {
                return Err(StateError::LimitExceeded(format!(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                )));
            }
            p.client_ids.push(client_id.to_string());
            tx.put_oidc(&p)
        })
    }

    /// `RemoveClientIDFromOpenIDConnectProvider` (removing one not there does nothing).
    pub fn remove_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            p.client_ids.retain(|c| c != client_id);
            tx.put_oidc(&p)
        })
    }

    /// `UpdateOpenIDConnectProviderThumbprint`: replaces the list.
    pub fn update_thumbprints(&self, arn: &str, thumbprints: &[String]) -> Result<()> {
        check_thumbprints(thumbprints)?;
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            p.thumbprints = thumbprints.iter().map(|t| t.to_ascii_lowercase()).collect();
            tx.put_oidc(&p)
        })
    }

    // ---- clusters ----

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

impl Role {
    /// The inline policy `policy_name` of this role, for `GetRolePolicy` on a role already read.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the role has no inline policy of that name.
    pub fn inline_policy(&self, policy_name: &str) -> Result<&str> {
        self.inline_policies
            .get(policy_name)
            .map(String::as_str)
            .ok_or_else(|| inline_not_found(policy_name))
    }
}

fn inline_not_found(policy_name: &str) -> StateError {
    StateError::NoSuchEntity(format!(
        "The role policy with name {policy_name} cannot be found."
    ))
}

fn version_not_found(arn: &str, version_id: &str) -> StateError {
    StateError::NoSuchEntity(format!(
        "Policy {arn} version {version_id} does not exist or is not deletable."
    ))
}

/// The host and path of an OIDC provider URL: IAM keys providers by it and names them with it
/// (`arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`).
///
/// IAM accepts only `https://`. The twin also accepts `http://` for a loopback host, because
/// the issuers it serves for local clusters (`rolechain up`) are plain HTTP on 127.0.0.1; the
/// provider is then the same as for the `https://` spelling.
pub fn oidc_provider_host_path(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("https://") {
        return Some(rest);
    }
    let rest = url.strip_prefix("http://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(rest)
}

#[cfg(test)]
mod oidc_url_tests {
    use super::oidc_provider_host_path;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(
            oidc_provider_host_path("https://oidc.example.com/id/X"),
            Some("oidc.example.com/id/X")
        );
        assert_eq!(
            oidc_provider_host_path("http://127.0.0.1:4555/id/AB"),
            Some("127.0.0.1:4555/id/AB")
        );
        assert_eq!(
            oidc_provider_host_path("http://localhost/id/AB"),
            Some("localhost/id/AB")
        );
        assert_eq!(
            oidc_provider_host_path("http://[::1]:80/x"),
            Some("[::1]:80/x")
        );
        assert_eq!(
            oidc_provider_host_path("http://oidc.example.com/id/X"),
            None
        );
        assert_eq!(
            oidc_provider_host_path("http://127.0.0.1.example.com/"),
            None
        );
        assert_eq!(oidc_provider_host_path("ftp://127.0.0.1/"), None);
        assert_eq!(oidc_provider_host_path("oidc.example.com"), None);
    }
}
