//! A stable, deterministic stand-in for the `cargo fuzz` target `parse_policy` (see
//! `scripts/fuzz`): every seed policy under `fuzz/seeds/parse_policy/` and a few hundred
//! mutations of them (bit flips, truncations, deletions, duplications, insertions of JSON
//! punctuation, `${`, and awkward Unicode) are parsed as each kind of policy. Parsing must
//! return, never panic; every error must have a message; every accepted policy must evaluate.

use std::fs;
use std::path::{Path, PathBuf};

use iam::{evaluate, NamedPolicy, Policy, PolicyKind, PolicySet, Principal, RequestContext};

const KINDS: [PolicyKind; 3] = [
    PolicyKind::Identity,
    PolicyKind::Resource,
    PolicyKind::Trust,
];
const MUTATIONS_PER_SEED: usize = 60;

/// What insertions pick from: JSON structure, policy-variable syntax, and Unicode that is
/// multi-byte, changes length when lower-cased, or is otherwise unusual.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "\\",
    "${",
    "${*}",
    "${?}",
    "${$}",
    "${aws:username",
    "${a, 'd'}",
    "${,}",
    "*",
    "?",
    "arn:",
    ":::",
    "\\u0000",
    "\\ud800",
    "\\ud83d\\ude00",
    "é",
    "😀",
    "İ",
    "Σ",
    "ß",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{301}",
    "1e400",
    "-0",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"Statement\":",
    "\"Condition\":{\"StringLike\":{\"k\":\"${",
];

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/parse_policy")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir();
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).expect("readable seed"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "expected ~10 seeds in {}", dir.display());
    out
}

/// SplitMix64: small, deterministic, good enough to pick positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len();
        match rng.below(6) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => bytes.truncate(rng.below(len)),
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let at = rng.below(len + 1);
                bytes.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                bytes.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = bytes[start..end].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, chunk);
            }
            _ => bytes.push(b'}'),
        }
    }
    bytes
}

fn context() -> RequestContext {
    let mut ctx = RequestContext::new(
        Principal::User {
            arn: "arn:aws:iam::111122223333:user/ops/alice".into(),
            account: "111122223333".into(),
            unique_id: Some("AIDAEXAMPLEUSERID0001".into()),
        },
        "s3:GetObject",
        "arn:aws:s3:::pics/über/a:b/cat.jpg",
    );
    ctx.set("aws:PrincipalTag/team", "platform")
        .set("aws:SourceIp", "10.1.2.3")
        .set("aws:CurrentTime", "2026-05-01T12:00:00Z")
        .set("aws:SecureTransport", "true")
        .set_multi("aws:TagKeys", ["team", "env"])
        .set_resource_account("444455556666");
    ctx
}

/// Parses `text` as every kind; returns how many kinds accepted it.
fn check(label: &str, text: &str, ctx: &RequestContext) -> usize {
    let mut accepted = 0;
    for kind in KINDS {
        match Policy::parse(text, kind) {
            Ok(policy) => {
                accepted += 1;
                let named = [NamedPolicy::new("mutant", policy)];
                let set = match kind {
                    PolicyKind::Identity => PolicySet {
                        identity: &named,
                        ..Default::default()
                    },
                    PolicyKind::Resource | PolicyKind::Trust => PolicySet {
                        resource: Some(&named[0]),
                        ..Default::default()
                    },
                };
                let _ = evaluate(&set, ctx);
            }
            Err(e) => {
                assert!(
                    !e.to_string().trim().is_empty(),
                    "{label} as {kind:?}: empty error message for {e:?}"
                );
                assert!(!e.code().is_empty());
            }
        }
    }
    accepted
}

#[test]
fn seeds_parse_as_their_kind() {
    let ctx = context();
    for (name, bytes) in seeds() {
        let text = std::str::from_utf8(&bytes).expect("seeds are UTF-8");
        assert!(
            check(&name, text, &ctx) >= 1,
            "seed {name} parses as no kind"
        );
    }
}

#[test]
fn mutated_seeds_never_panic() {
    let ctx = context();
    let mut rng = Rng(0x5eed_0f1a_77ed);
    let (mut total, mut accepted) = (0, 0);
    for (name, bytes) in seeds() {
        for i in 0..MUTATIONS_PER_SEED {
            let mutant = mutate(&bytes, &mut rng);
            let text = String::from_utf8_lossy(&mutant);
            let label = format!("{name} mutation {i}");
            let outcome = std::panic::catch_unwind(|| check(&label, &text, &ctx));
            match outcome {
                Ok(n) => accepted += n,
                Err(_) => panic!("{label} panicked; input: {text:?}"),
            }
            total += 1;
        }
    }
    assert!(total >= 400, "only {total} mutations");
    // Some mutations must survive validation, or the evaluation half is never exercised.
    assert!(accepted > 0, "no mutant was a valid policy");
}
