//! Request ids and log-safe fingerprints.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// A request id in AWS's shape (a lower-case UUID v4, as in `x-amzn-RequestId`).
pub(crate) fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS random source is unavailable only in broken sandboxes; ids need uniqueness,
        // not secrecy, so a process counter mixed with the time still serves.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&t.to_be_bytes());
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The first 12 hex digits of the SHA-256 of `secret`: enough to correlate log lines about the
/// same session token, JWT or signature, useless for replaying it. Log this, never the value.
pub fn log_fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    hex::encode(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        assert_eq!(log_fingerprint("token"), log_fingerprint("token"));
        assert_eq!(log_fingerprint("token").len(), 12);
        assert_ne!(log_fingerprint("token"), log_fingerprint("token2"));
    }
}
