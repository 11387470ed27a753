//! The recent changes of IAM records that write transactions record for the IAM propagation
//! delay (read back by `propagation`'s late view).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

    /// Records the changes of a write transaction, made at `at` (the twin clock's instant). Called before the commit, under
    /// redb's write lock, so changes of one record are recorded in commit order; a transaction
    /// that then fails to commit leaves entries whose "previous" is still current, which no
    /// view can tell from no change.
    pub(crate) fn record(&self, pending: Vec<PendingChange>, at: Instant) {
        if pending.is_empty() {
            return;
        }
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
    pub(crate) fn as_of(
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
