//! Request ids.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh request id in the form AWS uses: a random (version 4) UUID,
/// `xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx` in lower-case hex with `N` one of `8 9 a b`.
pub fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        fallback_fill(&mut bytes);
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3F) | 0x80; // RFC 4122 variant
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0F)]));
    }
    out
}

/// Used only if the OS refuses randomness (getrandom cannot fail on the platforms the twin
/// runs on, but a request id must never be an error): SipHash under the process's random
/// `RandomState` keys over a counter gives distinct, unpredictable-enough ids. Request ids are
/// for correlation, not secrets.
fn fallback_fill(bytes: &mut [u8; 16]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_v4(id: &str) -> bool {
        let b = id.as_bytes();
        id.len() == 36
            && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
            && b[14] == b'4'
            && matches!(b[19], b'8' | b'9' | b'a' | b'b')
            && id
                .bytes()
                .filter(|&c| c != b'-')
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    }

    #[test]
    fn uuid_v4_format_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert!(is_v4(&a), "{a}");
        assert_ne!(a, b);
        let mut bytes = [0u8; 16];
        fallback_fill(&mut bytes);
        let mut again = [0u8; 16];
        fallback_fill(&mut again);
        assert_ne!(bytes, again);
    }
}
