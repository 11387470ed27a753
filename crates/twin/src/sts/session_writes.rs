//! Storing STS sessions from async request handlers: concurrent requests share one durable
//! transaction (group commit), and no request holds a thread while it waits.
//!
//! [`Store::put_session`] batches concurrent writers too, but each of its callers is a thread
//! that sleeps until its batch commits; from async code that means a hop to the blocking pool
//! per request and two thread switches more while it waits, which cost more CPU than the rest
//! of an `AssumeRole*` call. Here a request queues its session and awaits a oneshot; one task on
//! the blocking pool commits whatever is queued, batch after batch, while anything is queued,
//! and answers each request once the transaction holding its session has committed
//! (redb's `Durability::Immediate`: acknowledged means durable). Under load that task never
//! sleeps and requests pay no thread switch; a lone request pays the one hop it paid before.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use twin_state::{Session, StateError, Store};

/// The most sessions one transaction takes (as `Store::put_session`'s group commit); the rest
/// wait for the next.
const MAX_BATCH: usize = 512;

type Done = oneshot::Sender<Result<Session, StateError>>;

#[derive(Default)]
struct Queue {
    waiting: Vec<(Session, Done)>,
    /// True while a task is committing queued sessions; it ends only once the queue is empty.
    draining: bool,
}

/// See the [module documentation](self).
pub(crate) struct SessionWrites {
    store: Arc<Store>,
    queue: Arc<Mutex<Queue>>,
}

impl SessionWrites {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        SessionWrites {
            store,
            queue: Arc::default(),
        }
    }

    /// Stores `session` (its role, by `role_id`, must still exist: `NoSuchEntity` otherwise)
    /// and hands it back once the transaction holding it has committed.
    pub(crate) async fn put(&self, session: Session) -> Result<Session, StateError> {
        let (done, answer) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiting.push((session, done));
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let store = Arc::clone(&self.store);
            let mut guard = Draining {
                queue: Arc::clone(&self.queue),
                finished: false,
            };
            tokio::task::spawn_blocking(move || drain(&store, &mut guard));
        }
        // The sender is dropped unanswered only when the commit panicked.
        answer.await.unwrap_or_else(|_| Err(unfinished()))
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // The queue is consistent between statements; a panic elsewhere does not corrupt it.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unfinished() -> StateError {
    StateError::Storage("the transaction writing this session did not finish".into())
}

/// Commits queued sessions until none is left.
fn drain(store: &Store, guard: &mut Draining) {
    loop {
        let batch: Vec<(Session, Done)> = {
            let mut queue = lock(&guard.queue);
            if queue.waiting.is_empty() {
                queue.draining = false;
                guard.finished = true;
                return;
            }
            let take = queue.waiting.len().min(MAX_BATCH);
            queue.waiting.drain(..take).collect()
        };
        let (sessions, dones): (Vec<Session>, Vec<Done>) = batch.into_iter().unzip();
        match store.put_sessions(&sessions) {
            Ok(results) => {
                for ((result, session), done) in results.into_iter().zip(sessions).zip(dones) {
                    // A request that gave up waiting (its connection closed) drops its receiver;
                    // its session is stored all the same, as a synchronous write would be.
                    let _ = done.send(result.map(|()| session));
                }
            }
            Err(e) => {
                let detail = e.to_string();
                for done in dones {
                    let _ = done.send(Err(StateError::Storage(detail.clone())));
                }
            }
        }
    }
}

/// Ends a drain that did not finish (it panicked, or the runtime shut down before it ran): the
/// sessions still queued are answered with an error (their senders dropped) and the next write
/// starts a new drain, rather than every later write waiting for one that will never come.
struct Draining {
    queue: Arc<Mutex<Queue>>,
    finished: bool,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut queue = lock(&self.queue);
        queue.waiting.clear();
        queue.draining = false;
    }
}
