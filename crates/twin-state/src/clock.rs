//! The twin's clock: real time plus an offset that only moves forward
//! (`POST /_rolechain/clock`, `rolechain clock advance 55m`), so expiry can be rehearsed in
//! seconds. Sessions, the tokens the twin verifies, `aws:CurrentTime` and IAM propagation
//! delays follow it; SigV4's signing window does not (real clients sign with real time). The
//! offset lives in memory: a restarted twin is back on real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

/// The longest total advance: ten years, far beyond any credential's life, so no arithmetic
/// on an advanced time can overflow.
pub const MAX_OFFSET: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Real time plus an offset (see the module documentation).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicU64,
}

/// Why an advance was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The total would pass [`MAX_OFFSET`].
    #[error(
        "the clock can be advanced by at most 10 years in all; it is already {already:?} ahead"
    )]
    TooFar {
        /// The offset already in place.
        already: Duration,
    },
}

impl Clock {
    /// How far ahead of real time the clock is.
    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `by` (to the millisecond); returns the new offset.
    ///
    /// # Errors
    ///
    /// [`ClockError::TooFar`] when the total offset would pass [`MAX_OFFSET`]; nothing moves.
    pub fn advance(&self, by: Duration) -> Result<Duration, ClockError> {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let max = u64::try_from(MAX_OFFSET.as_millis()).unwrap_or(u64::MAX);
        let mut current = self.offset_ms.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(by);
            if next > max {
                return Err(ClockError::TooFar {
                    already: Duration::from_millis(current),
                });
            }
            match self.offset_ms.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Duration::from_millis(next)),
                Err(seen) => current = seen,
            }
        }
    }

    /// The twin's now.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset()
    }

    /// The twin's now as a [`SystemTime`] (for the OIDC verifier).
    pub fn system_now(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }

    /// The twin's monotonic now (for IAM propagation).
    pub fn instant(&self) -> Instant {
        Instant::now() + self.offset()
    }
}

/// A duration as people write it: a number with `ms`, `s`, `m` or `h`, or a number of
/// seconds (`55m`, `1500ms`, `10`). The error names the text and the forms accepted.
///
/// # Errors
///
/// When `text` is none of those forms, negative, or too large.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("invalid duration '{text}': expected a number of seconds or a number with ms, s, m or h (10s, 1500ms, 2m)")
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_the_units_people_write() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "ten", "10x", "-1s", "1e400"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("invalid duration '{bad}'")), "{err}");
        }
    }

    #[test]
    fn advances_forward_only_and_within_bounds() {
        let clock = Clock::default();
        assert_eq!(clock.offset(), Duration::ZERO);
        let before = clock.now();
        assert_eq!(
            clock.advance(Duration::from_secs(55 * 60)).unwrap(),
            Duration::from_secs(3300)
        );
        assert!(clock.now() - before >= time::Duration::minutes(55));
        assert!(clock.instant() >= Instant::now() + Duration::from_secs(3299));
        assert_eq!(
            clock.advance(MAX_OFFSET),
            Err(ClockError::TooFar {
                already: Duration::from_secs(3300)
            })
        );
        assert_eq!(clock.offset(), Duration::from_secs(3300));
    }
}
