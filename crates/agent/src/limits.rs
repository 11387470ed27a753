//! Rate limits (token buckets) and retry backoff with jitter.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens a second, at most `burst` saved up. A rate of zero means no
/// limit.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate_per_second.max(0.0),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// True when this bucket limits nothing.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0.0
    }

    /// Takes a token now if one is there.
    pub fn try_acquire(&self) -> bool {
        self.reserve(Duration::ZERO).is_some()
    }

    /// Takes a token, waiting up to `patience` for one; false if none comes in time (and then
    /// nothing is taken).
    pub async fn acquire_within(&self, patience: Duration) -> bool {
        match self.reserve(patience) {
            None => false,
            Some(wait) if wait.is_zero() => true,
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
        }
    }

    /// Reserves a token available within `patience`: how long to wait for it.
    fn reserve(&self, patience: Duration) -> Option<Duration> {
        if self.is_unlimited() {
            return Some(Duration::ZERO);
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            return Some(Duration::ZERO);
        }
        let wait = Duration::from_secs_f64((1.0 - tokens) / self.rate);
        if wait > patience {
            *state = (tokens, now);
            return None;
        }
        // Going into debt: the token is the waiter's, later callers queue behind it.
        *state = (tokens - 1.0, now);
        Some(wait)
    }
}

/// A random fraction in `[0, 1)`.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Exponential backoff with "equal jitter": after `failures` failures in a row, a wait between
/// half and all of `initial · 2^(failures-1)`, capped at `max`.
pub fn backoff(failures: u32, initial: Duration, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = initial.saturating_mul(1 << exponent).min(max);
    full / 2 + full.mul_f64(random_unit() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_serves_its_burst_then_refuses() {
        let bucket = TokenBucket::new(1.0, 3);
        assert!(bucket.try_acquire() && bucket.try_acquire() && bucket.try_acquire());
        assert!(!bucket.try_acquire());
        assert!(TokenBucket::new(0.0, 1).try_acquire());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_next_token_within_its_patience() {
        let bucket = TokenBucket::new(20.0, 1);
        assert!(bucket.try_acquire());
        let start = Instant::now();
        assert!(bucket.acquire_within(Duration::from_secs(1)).await);
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
        assert!(!bucket.acquire_within(Duration::from_millis(1)).await);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let initial = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for _ in 0..100 {
            let first = backoff(1, initial, max);
            assert!(first >= Duration::from_millis(500) && first <= initial);
            let fourth = backoff(4, initial, max);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            assert!(backoff(30, initial, max) <= max);
        }
    }
}
