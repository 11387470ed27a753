//! Identifiers and secrets in AWS's shapes: unique ids (`AROA…`), access key ids (`AKIA…`),
//! secret keys and session tokens, from the OS's random source or, for reproducible worlds and
//! tests, from a seed.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Result, StateError};

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The same 36 characters in byte order, for the parts of an id that must sort as numbers do.
const ORDERED_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Where random bytes come from.
#[derive(Debug, Clone)]
pub enum IdSource {
    /// The operating system's CSPRNG: what the running twin uses.
    Os,
    /// SHA-256 in counter mode over a seed: the same seed gives the same ids and keys, for
    /// reproducible worlds and tests. Not secret if the seed is known.
    Seeded {
        /// The seed's digest.
        key: [u8; 32],
        /// Blocks produced so far.
        counter: u64,
    },
}

impl IdSource {
    /// A deterministic source from a seed string.
    pub fn seeded(seed: &str) -> Self {
        IdSource::Seeded {
            key: Sha256::digest(seed.as_bytes()).into(),
            counter: 0,
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        match self {
            IdSource::Os => getrandom::fill(buf)
                .map_err(|e| StateError::Storage(format!("OS random source failed: {e}"))),
            IdSource::Seeded { key, counter } => {
                for chunk in buf.chunks_mut(32) {
                    let mut h = Sha256::new();
                    h.update(*key);
                    h.update(counter.to_le_bytes());
                    *counter += 1;
                    let block = h.finalize();
                    chunk.copy_from_slice(&block[..chunk.len()]);
                }
                Ok(())
            }
        }
    }

    /// `n` characters drawn uniformly from `alphabet` (rejection sampling, so no bias).
    fn chars(&mut self, alphabet: &[u8], n: usize) -> Result<String> {
        // Largest multiple of the alphabet size that fits a byte: bytes at or above it are
        // redrawn so every character is equally likely.
        let limit = 256 - (256 % alphabet.len());
        let mut out = String::with_capacity(n);
        let mut buf = [0u8; 64];
        while out.len() < n {
            self.fill(&mut buf)?;
            for &b in &buf {
                if (b as usize) < limit && out.len() < n {
                    out.push(char::from(alphabet[b as usize % alphabet.len()]));
                }
            }
        }
        Ok(out)
    }

    /// A unique id with the given prefix, 21 characters like IAM's (`AROA` + 17).
    pub fn unique_id(&mut self, prefix: &str) -> Result<String> {
        Ok(format!(
            "{prefix}{}",
            self.chars(UPPER_ALNUM, 21 - prefix.len())?
        ))
    }

    /// `prefix` followed by `n` lowercase letters and digits: EKS's resource ids (pod identity
    /// associations are `a-` + 17).
    pub fn lowercase_id(&mut self, prefix: &str, n: usize) -> Result<String> {
        Ok(format!("{prefix}{}", self.chars(LOWER_ALNUM, n)?))
    }

    /// An access key id with the given prefix (`AKIA` long-term, `ASIA` temporary), 20 chars.
    pub fn access_key_id(&mut self, prefix: &str) -> Result<String> {
        Ok(format!(
            "{prefix}{}",
            self.chars(UPPER_ALNUM, 20 - prefix.len())?
        ))
    }

    /// A temporary (`ASIA…`) access key id that sorts by when it was issued: 9 characters of
    /// the issue time in milliseconds, 3 of a per-process counter, 4 random. 20 characters of
    /// `A–Z0–9`, like STS's.
    ///
    /// Why ordered: sessions are stored by key id, and the twin writes thousands a second.
    /// Random keys land each new session on its own B-tree leaf, so every commit rewrote (and
    /// synced) about four pages per session; keys in issue order fill the rightmost leaves
    /// together. Key ids are not secrets (AWS logs them; the secret and token are what
    /// authenticate), and a session's key is still checked to be unused before it is stored.
    pub fn temporary_key_id(&mut self, issued: time::OffsetDateTime) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let millis = u64::try_from(issued.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(20);
        out.push_str(TEMPORARY_KEY_PREFIX);
        push_ordered(&mut out, millis, 9);
        push_ordered(&mut out, count, 3);
        out.push_str(&self.chars(UPPER_ALNUM, 4)?);
        Ok(out)
    }

    /// A 40-character secret access key.
    pub fn secret(&mut self) -> Result<String> {
        self.chars(SECRET_ALPHABET, 40)
    }

    /// An opaque session token: 192 random bytes, base64 (256 characters), as long as real
    /// STS tokens are in the same order of magnitude so clients' buffers are exercised.
    pub fn session_token(&mut self) -> Result<String> {
        let mut raw = [0u8; 192];
        self.fill(&mut raw)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// Appends the low `width` base-36 digits of `value` ([`ORDERED_ALNUM`], most significant
/// first), so equal-width strings sort as the numbers do; higher digits are dropped.
fn push_ordered(out: &mut String, value: u64, width: u32) {
    let base = ORDERED_ALNUM.len() as u64;
    for place in (0..width).rev() {
        let digit = (value / base.pow(place)) % base;
        out.push(char::from(ORDERED_ALNUM[digit as usize]));
    }
}

/// The prefix IAM gives role ids.
pub const ROLE_ID_PREFIX: &str = "AROA";
/// The prefix IAM gives user ids.
pub const USER_ID_PREFIX: &str = "AIDA";
/// The prefix IAM gives managed policy ids.
pub const POLICY_ID_PREFIX: &str = "ANPA";
/// The prefix of long-term access key ids.
pub const LONG_TERM_KEY_PREFIX: &str = "AKIA";
/// The prefix of temporary (STS) access key ids.
pub const TEMPORARY_KEY_PREFIX: &str = "ASIA";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut s = IdSource::Os;
        let id = s.unique_id(ROLE_ID_PREFIX).unwrap();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        let key = s.access_key_id(LONG_TERM_KEY_PREFIX).unwrap();
        assert_eq!(key.len(), 20);
        assert_eq!(s.secret().unwrap().len(), 40);
        assert!(s.session_token().unwrap().len() >= 200);
    }

    #[test]
    fn temporary_key_ids_sort_by_issue_time() {
        let mut s = IdSource::Os;
        let t0 = time::OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
        let mut keys = Vec::new();
        for ms in [0, 0, 0, 1, 999, 1_000, 3_600_000, 86_400_000] {
            keys.push(
                s.temporary_key_id(t0 + time::Duration::milliseconds(ms))
                    .unwrap(),
            );
        }
        for key in &keys {
            assert_eq!(key.len(), 20, "{key}");
            assert!(key.starts_with("ASIA"), "{key}");
            assert!(key[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "issue order is key order");
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            keys.len(),
            "the same millisecond still gives distinct keys"
        );
        let mut digits = String::new();
        push_ordered(&mut digits, 35 * 36 + 1, 3);
        assert_eq!(digits, "0Z1");
    }

    #[test]
    fn seeded_is_deterministic() {
        let a = IdSource::seeded("x").secret().unwrap();
        let b = IdSource::seeded("x").secret().unwrap();
        let c = IdSource::seeded("y").secret().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
