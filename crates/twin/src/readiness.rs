//! Whether the twin reports ready (`Readiness`) and what holds it back (`ReadinessHold`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct ReadinessInner {
    serving: AtomicBool,
    stopping: AtomicBool,
    holds: AtomicUsize,
}

/// Whether `/_rolechain/health` answers 200: the server is accepting connections, nothing
/// holds readiness back (state still loading), and shutdown has not begun. Cloning shares it.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

impl Readiness {
    pub(crate) fn new() -> Self {
        Readiness {
            inner: Arc::new(ReadinessInner {
                serving: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                holds: AtomicUsize::new(0),
            }),
        }
    }

    /// Marks the server as accepting connections (the accept loop has started).
    pub(crate) fn set_serving(&self) {
        self.inner.serving.store(true, Ordering::SeqCst);
    }

    /// Marks shutdown as begun: health answers `stopping` from now on.
    pub(crate) fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Holds readiness back until the returned guard is dropped (or
    /// [released](ReadinessHold::release)): take one before serving, load the state, drop it.
    /// The OIDC routes answer meanwhile; only health says `starting`.
    pub fn hold(&self) -> ReadinessHold {
        self.inner.holds.fetch_add(1, Ordering::SeqCst);
        ReadinessHold {
            inner: Arc::clone(&self.inner),
        }
    }

    /// True when health answers 200.
    pub fn is_ready(&self) -> bool {
        self.inner.serving.load(Ordering::SeqCst)
            && !self.inner.stopping.load(Ordering::SeqCst)
            && self.inner.holds.load(Ordering::SeqCst) == 0
    }

    /// True once shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }
}

/// Keeps the twin from reporting ready while it exists. See [`Readiness::hold`].
#[must_use = "readiness is released as soon as the hold is dropped"]
pub struct ReadinessHold {
    inner: Arc<ReadinessInner>,
}

impl ReadinessHold {
    /// Releases the hold (the same as dropping it, said out loud).
    pub fn release(self) {}
}

impl Drop for ReadinessHold {
    fn drop(&mut self) {
        self.inner.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for ReadinessHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadinessHold")
    }
}
