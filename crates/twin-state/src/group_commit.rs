//! Group commit: concurrent writers of independent items share one write transaction, and so
//! one fsync, without giving up "acknowledged means durable".
//!
//! Each caller of [`GroupCommit::submit`] queues its item and waits. When no batch is being
//! committed, one waiting caller becomes the leader: it takes the queued items (at most
//! [`MAX_BATCH`]), runs the commit function on them (one transaction, committed durably), and
//! hands every caller of the batch its own result. A caller returns only once the transaction
//! holding its item has committed, or with the error that kept it out. Callers arriving while a
//! batch commits queue up for the next one, so the batch grows with the load and a lone caller
//! pays no more than a direct write.
//!
//! Waiters sleep on one of two condition variables, by the parity of the batch their item is in
//! or will be in: a finished batch wakes its own callers and one queued caller to lead the next
//! batch, not every caller queued behind it (each needless wake-up is a context switch).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::{Result, StateError};

/// The most items one transaction takes; the rest wait for the next.
pub(crate) const MAX_BATCH: usize = 512;

/// The outcome of committing a batch: `Err` when the transaction itself failed (no item was
/// written), otherwise each item's own result, in the batch's order.
pub(crate) type BatchOutcome<R> = Result<Vec<Result<R>>>;

struct State<T, R> {
    next_ticket: u64,
    queued: Vec<(u64, T)>,
    committing: bool,
    /// The number of the batch committing (or last committed); batches count from 1.
    batch: u64,
    /// Tickets below this were taken into a batch (the committing one or an earlier one).
    taken_below: u64,
    results: HashMap<u64, Result<R>>,
}

/// See the [module documentation](self).
pub(crate) struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
    /// Waiters whose item is in (or will be in) an even-numbered batch, and odd-numbered.
    by_parity: [Condvar; 2],
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                next_ticket: 0,
                queued: Vec::new(),
                committing: false,
                batch: 0,
                taken_below: 0,
                results: HashMap::new(),
            }),
            by_parity: [Condvar::new(), Condvar::new()],
        }
    }
}

fn parity(batch: u64) -> usize {
    usize::from(batch % 2 == 1)
}

/// Posts a failure for every ticket of a batch whose commit did not finish (it panicked), so
/// that its callers do not wait forever and the next batch can start.
struct Unfinished<'a, T, R> {
    group: &'a GroupCommit<T, R>,
    tickets: Vec<u64>,
}

impl<T, R> Drop for Unfinished<'_, T, R> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut state = self.group.lock();
        for ticket in self.tickets.drain(..) {
            state.results.insert(
                ticket,
                Err(StateError::Storage(
                    "the transaction writing this item failed".into(),
                )),
            );
        }
        state.committing = false;
        drop(state);
        // Rare: wake everyone and let them sort it out.
        for condvar in &self.group.by_parity {
            condvar.notify_all();
        }
    }
}

impl<T, R> GroupCommit<T, R> {
    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        // The state is consistent between statements; a panic elsewhere does not corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, and returns its result once the transaction holding it has committed.
    /// `commit` writes a batch in one durable transaction (see [`BatchOutcome`]); it is run by
    /// whichever caller leads that batch, so every caller must pass an equivalent function.
    pub(crate) fn submit(&self, item: T, commit: impl Fn(Vec<T>) -> BatchOutcome<R>) -> Result<R> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.push((ticket, item));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if !state.committing {
                // No result and no commit running: this caller's item is still queued (items
                // leave the queue only for a commit, which posts their results before it
                // ends). Lead the next batch.
                state = self.lead(state, &commit);
                continue;
            }
            // In the committing batch, or queued for a later one (normally the next).
            let batch = if ticket < state.taken_below {
                state.batch
            } else {
                state.batch + 1
            };
            state = self.by_parity[parity(batch)]
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Commits the queued items (at most [`MAX_BATCH`]) as the next batch, posts their
    /// results, and wakes the batch's callers and one caller to lead the batch after it.
    fn lead<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<T, R>>,
        commit: &impl Fn(Vec<T>) -> BatchOutcome<R>,
    ) -> MutexGuard<'a, State<T, R>> {
        let take = state.queued.len().min(MAX_BATCH);
        let batch: Vec<(u64, T)> = state.queued.drain(..take).collect();
        state.committing = true;
        state.batch += 1;
        let number = state.batch;
        if let Some((last, _)) = batch.last() {
            state.taken_below = last + 1;
        }
        drop(state);
        let (tickets, items): (Vec<u64>, Vec<T>) = batch.into_iter().unzip();
        let mut unfinished = Unfinished {
            group: self,
            tickets: tickets.clone(),
        };
        let outcome = commit(items);
        unfinished.tickets.clear();
        let mut state = self.lock();
        match outcome {
            Ok(results) if results.len() == tickets.len() => {
                for (ticket, result) in tickets.into_iter().zip(results) {
                    state.results.insert(ticket, result);
                }
            }
            Ok(results) => {
                let detail = format!(
                    "a batch of {} items produced {} results",
                    tickets.len(),
                    results.len()
                );
                for ticket in tickets {
                    state
                        .results
                        .insert(ticket, Err(StateError::Storage(detail.clone())));
                }
            }
            Err(e) => {
                let detail = e.to_string();
                for ticket in tickets {
                    state
                        .results
                        .insert(ticket, Err(StateError::Storage(detail.clone())));
                }
            }
        }
        state.committing = false;
        self.by_parity[parity(number)].notify_all();
        if !state.queued.is_empty() {
            self.by_parity[parity(number + 1)].notify_one();
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_lone_caller_commits_its_own_item() {
        let group = GroupCommit::<u32, u32>::default();
        let r = group.submit(7, |items| {
            Ok(items.into_iter().map(|i| Ok(i * 2)).collect())
        });
        assert_eq!(r.unwrap(), 14);
    }

    #[test]
    fn concurrent_callers_share_batches_and_get_their_own_results() {
        let group = Arc::new(GroupCommit::<u64, u64>::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..32u64)
            .map(|n| {
                let group = Arc::clone(&group);
                let commits = Arc::clone(&commits);
                std::thread::spawn(move || {
                    (0..50u64)
                        .map(|i| {
                            let item = n * 1000 + i;
                            let r = group.submit(item, |items| {
                                commits.fetch_add(1, Ordering::SeqCst);
                                // A slow fsync lets the queue fill up.
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok(items
                                    .into_iter()
                                    .map(|i| {
                                        if i % 7 == 0 {
                                            Err(StateError::NoSuchEntity(format!("{i}")))
                                        } else {
                                            Ok(i + 1)
                                        }
                                    })
                                    .collect())
                            });
                            match r {
                                Ok(v) => assert_eq!(v, item + 1),
                                Err(StateError::NoSuchEntity(s)) => {
                                    assert_eq!(s, item.to_string());
                                    assert_eq!(item % 7, 0);
                                }
                                Err(e) => panic!("{e}"),
                            }
                        })
                        .count()
                })
            })
            .collect();
        let done: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(done, 32 * 50);
        // 1 600 items in far fewer transactions.
        assert!(commits.load(Ordering::SeqCst) < 32 * 50 / 2);
    }

    #[test]
    fn more_callers_than_a_batch_takes_all_finish() {
        // More waiters than MAX_BATCH: some are left behind by a batch and must still be woken
        // to lead or join the next one.
        let group = Arc::new(GroupCommit::<usize, usize>::default());
        let largest = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..MAX_BATCH + 200)
            .map(|n| {
                let group = Arc::clone(&group);
                let largest = Arc::clone(&largest);
                std::thread::spawn(move || {
                    group.submit(n, |items| {
                        largest.fetch_max(items.len(), Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(items.into_iter().map(Ok).collect())
                    })
                })
            })
            .collect();
        for (n, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().unwrap().unwrap(), n);
        }
        assert!(largest.load(Ordering::SeqCst) <= MAX_BATCH);
    }

    #[test]
    fn a_failed_transaction_fails_each_of_its_items() {
        let group = GroupCommit::<u32, u32>::default();
        let r = group.submit(1, |_| Err(StateError::Storage("disk full".into())));
        assert!(matches!(r, Err(StateError::Storage(m)) if m.contains("disk full")));
        // The next caller is not stuck behind the failure.
        assert_eq!(
            group
                .submit(2, |items| Ok(items.into_iter().map(Ok).collect()))
                .unwrap(),
            2
        );
    }

    #[test]
    fn a_panicking_commit_releases_its_callers_and_the_next_batch() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let g = Arc::clone(&group);
        let panicked =
            std::thread::spawn(move || g.submit(1, |_| panic!("commit panicked"))).join();
        assert!(panicked.is_err());
        assert_eq!(
            group
                .submit(2, |items| Ok(items.into_iter().map(Ok).collect()))
                .unwrap(),
            2
        );
    }
}
