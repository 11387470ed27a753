//! The storage underneath every module: the redb file and its tables of JSON records, read and
//! write transactions, encoding and decoding, table helpers and paging. It knows no module
//! built on it; each module keeps its operations (and its own tables, if any) to itself.
//!
//! Tables (keys are stable and lower-cased where IAM names are case-insensitive, so every lookup
//! is one B-tree search):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `&str` | `&str` (`schema_version`) |
//! | `accounts` | account id | [`Account`](crate::Account) |
//! | `access_keys` | access key id | [`AccessKey`](crate::AccessKey) |
//! | `users` | (account, lower-case name) | [`User`](crate::User) |
//! | `roles` | (account, lower-case name) | [`Role`](crate::Role) |
//! | `unique_ids` | `AROA…`/`AIDA…` | which live role or user has that id, and its ARN |
//! | `policies` | (account, lower-case name) | [`ManagedPolicy`](crate::ManagedPolicy) with its versions |
//! | `oidc_providers` | (account, URL without `https://`) | [`OidcProvider`](crate::OidcProvider) |
//! | `clusters` | (account, region, name) | [`Cluster`](crate::Cluster) |
//! | `sessions` | `ASIA…` access key id | [`Session`] |
//! | `role_sessions` | (role id, access key id) | `()`: the sessions to end when a role goes |

mod history;

pub(crate) use history::{EntityKey, History, IamTable, PendingChange};

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Result, StateError};
use crate::group_commit::GroupCommit;
use crate::ids::IdSource;
use crate::model::{Page, Paging, Session};
use crate::validate;

pub(crate) type Bytes = &'static [u8];
pub(crate) type K1 = &'static str;
pub(crate) type K2 = (&'static str, &'static str);
pub(crate) type K3 = (&'static str, &'static str, &'static str);

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

/// The twin's durable state. Share it behind an `Arc`; every method is synchronous (use
/// `spawn_blocking` from async code) and every mutation is one redb write transaction, committed
/// with `Durability::Immediate` (fsync) before the method returns.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Batches concurrent `put_session`s (EKS Auth's sessions, through STS's synchronous path)
    /// into shared transactions; STS's async handlers batch theirs for `put_sessions`.
    pub(crate) session_writes: GroupCommit<Session, ()>,
    /// Recent IAM changes, for STS's late view (`propagation`).
    history: History,
    /// The twin's clock (real time plus an offset).
    clock: crate::clock::Clock,
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

pub(crate) fn now() -> OffsetDateTime {
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

pub(crate) fn get1<T: DeserializeOwned>(
    t: &impl ReadableTable<K1, Bytes>,
    table: &'static str,
    key: &str,
) -> Result<Option<T>> {
    match t.get(key)? {
        None => Ok(None),
        Some(g) => decode(table, g.value()).map(Some),
    }
}

pub(crate) fn get2<T: DeserializeOwned>(
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
pub(crate) fn scan2<T: DeserializeOwned>(
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

/// Removes the entries of a two-part-key table whose first part is `first` (a deleted
/// cluster's associations and service accounts); answers how many.
pub(crate) fn remove_by_first<V: redb::Value + 'static>(
    table: &mut redb::Table<'_, K2, V>,
    first: &str,
) -> Result<usize> {
    let mut keys = Vec::new();
    for entry in table.range((first, "")..)? {
        let (k, _) = entry?;
        let (arn, second) = k.value();
        if arn != first {
            break;
        }
        keys.push(second.to_string());
    }
    for key in &keys {
        table.remove((first, key.as_str()))?;
    }
    Ok(keys.len())
}

/// The tables of one write transaction, opened together so operations can use any of them.
pub(crate) struct Tx<'t> {
    pub(crate) accounts: Table<'t, K1, Bytes>,
    pub(crate) access_keys: Table<'t, K1, Bytes>,
    pub(crate) users: Table<'t, K2, Bytes>,
    pub(crate) roles: Table<'t, K2, Bytes>,
    pub(crate) unique_ids: Table<'t, K1, Bytes>,
    pub(crate) policies: Table<'t, K2, Bytes>,
    pub(crate) oidc: Table<'t, K2, Bytes>,
    pub(crate) clusters: Table<'t, K3, Bytes>,
    pub(crate) sessions: Table<'t, K1, Bytes>,
    pub(crate) role_sessions: Table<'t, K2, ()>,
    pub(crate) ids: IdSource,
    pub(crate) now: OffsetDateTime,
    /// The IAM records changed, with what they were before, when the store keeps a history
    /// for the IAM propagation delay.
    changes: Option<Vec<PendingChange>>,
}

/// The tables of one read transaction.
/// A read transaction whose tables are opened when first used: opening a table costs about as
/// much as a lookup in it, and most reads (a role, an OIDC provider, a session: several per STS
/// call) need one table of the nine.
pub(crate) struct Rx {
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
    pub(crate) fn new(txn: ReadTransaction) -> Rx {
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

    pub(crate) fn accounts(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.accounts, &self.txn, ACCOUNTS)
    }

    pub(crate) fn access_keys(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.access_keys, &self.txn, ACCESS_KEYS)
    }

    pub(crate) fn users(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.users, &self.txn, USERS)
    }

    pub(crate) fn roles(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.roles, &self.txn, ROLES)
    }

    pub(crate) fn unique_ids(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
        opened(&self.unique_ids, &self.txn, UNIQUE_IDS)
    }

    pub(crate) fn policies(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.policies, &self.txn, POLICIES)
    }

    pub(crate) fn oidc(&self) -> Result<&ReadOnlyTable<K2, Bytes>> {
        opened(&self.oidc, &self.txn, OIDC_PROVIDERS)
    }

    pub(crate) fn clusters(&self) -> Result<&ReadOnlyTable<K3, Bytes>> {
        opened(&self.clusters, &self.txn, CLUSTERS)
    }

    pub(crate) fn sessions(&self) -> Result<&ReadOnlyTable<K1, Bytes>> {
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

impl<'t> Tx<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction, ids: IdSource) -> Result<Tx<'t>> {
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

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub(crate) fn is_empty(&self) -> Result<bool> {
        Ok(self.accounts.first()?.is_none())
    }

    /// Writes (`Some`) or removes (`None`) one role, managed policy or OIDC provider record,
    /// and, when the store keeps a propagation history, records what it was before (copied
    /// only then).
    pub(crate) fn set_iam_record(
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
}

impl Store {
    /// Opens (creating if needed) the database in `dir`, in the file `twin-state.redb`, with
    /// this module's tables and those `module_tables` create, all in one transaction. See
    /// [`Store::open`] for what opening also does.
    pub(crate) fn open_with_tables(
        dir: &Path,
        module_tables: &[fn(&redb::WriteTransaction) -> Result<()>],
    ) -> Result<Store> {
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
            for create_tables in module_tables {
                create_tables(&txn)?;
            }
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
        Ok(Store {
            db,
            path,
            session_writes: GroupCommit::default(),
            history: History::default(),
            clock: crate::clock::Clock::default(),
        })
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
            self.history
                .record(tx.changes.take().unwrap_or_default(), self.clock.instant());
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

    pub(crate) fn read<R>(&self, f: impl FnOnce(&Rx) -> Result<R>) -> Result<R> {
        let rx = Rx::new(self.db.begin_read()?);
        f(&rx)
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        self.write(IdSource::Os, f)
    }

    /// Whether the store holds no account yet.
    pub fn is_empty(&self) -> Result<bool> {
        self.read(|rx| Ok(rx.accounts()?.first()?.is_none()))
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

    /// The twin's clock: what sessions, token checks and IAM propagation take as now.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }
}
