//! The canonical request of SigV4, rebuilt from the request as it arrived on the wire.
//!
//! Everything here works on the raw, still percent-encoded path and query: that is what the
//! client signed over (it encodes once to send, and the canonical form is derived from that),
//! so decoding first would lose the difference between `/` and `%2F`.

use sha2::{Digest, Sha256};

use crate::{Request, ServiceRules};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
}

/// URI-encodes per SigV4: everything but `A-Za-z0-9-_.~` (and `/` when `keep_slash`).
pub(crate) fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            push_escaped(out, b);
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays literal (as lenient URL
/// parsers do), and `+` stays `+`: SigV4 clients encode a space as `%20`.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 dot-segment removal plus the collapsing of empty segments that AWS services (and
/// botocore and aws-sigv4) apply, keeping a trailing slash.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical URI of a raw request path.
pub(crate) fn canonical_uri(path: &str, rules: ServiceRules) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut out = String::with_capacity(path.len() * 2);
    match rules {
        // The client encoded each segment once to send it; SigV4 encodes the result again,
        // which on a well-formed wire path only turns `%` into `%25`.
        ServiceRules::Standard => uri_encode(normalize_path(path).as_bytes(), true, &mut out),
        // S3 signs the path as sent. Existing escapes are kept as they are (a client that sent
        // `%2f` signed `%2f`); only bytes that were sent raw but need escaping are escaped.
        ServiceRules::S3 => {
            if !path.starts_with('/') {
                out.push('/');
            }
            let b = path.as_bytes();
            for (i, &c) in b.iter().enumerate() {
                let escape_start = c == b'%'
                    && b.get(i + 1).copied().and_then(hex_val).is_some()
                    && b.get(i + 2).copied().and_then(hex_val).is_some();
                if escape_start || is_unreserved(c) || c == b'/' {
                    out.push(char::from(c));
                } else {
                    push_escaped(&mut out, c);
                }
            }
        }
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs, skipping empty pieces.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// The canonical query string: every pair decoded, re-encoded with SigV4's unreserved set,
/// sorted by encoded name then value. `X-Amz-Signature` is left out of presigned requests:
/// it cannot sign itself.
pub(crate) fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(k, _)| !(presigned && k.as_slice() == b"X-Amz-Signature"))
        .map(|(k, v)| {
            let mut ek = String::with_capacity(k.len());
            uri_encode(&k, false, &mut ek);
            let mut ev = String::with_capacity(v.len());
            uri_encode(&v, false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// How header values are trimmed and their inner whitespace folded. Signers disagree on
/// whitespace other than the space character, so the verifier may have to try both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Every ASCII whitespace run becomes one space (botocore: `' '.join(value.split())`; the
    /// AWS CRT signer does the same for line folds).
    AllWhitespace,
    /// Only space characters are trimmed and folded, tabs are kept (the SigV4 documentation's
    /// wording, and the `aws-sigv4` crate).
    SpacesOnly,
}

/// True when a value contains whitespace the two [`Fold`]s treat differently.
pub(crate) fn folds_differ(value: &[u8]) -> bool {
    value.iter().any(|&b| b != b' ' && b.is_ascii_whitespace())
}

/// All values of one header, each trimmed with inner whitespace runs folded to one space,
/// joined by commas: what SigV4 signs for a header that occurs several times.
pub(crate) fn canonical_header_value(req: &Request<'_>, name: &str, fold: Fold) -> Vec<u8> {
    let is_ws = |b: &u8| match fold {
        Fold::AllWhitespace => b.is_ascii_whitespace(),
        Fold::SpacesOnly => *b == b' ',
    };
    let mut out = Vec::new();
    let mut first = true;
    for (_, value) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        if !first {
            out.push(b',');
        }
        first = false;
        let mut first_word = true;
        for word in value.split(is_ws).filter(|w| !w.is_empty()) {
            if !first_word {
                out.push(b' ');
            }
            first_word = false;
            out.extend_from_slice(word);
        }
    }
    out
}

/// The inputs of a canonical request beyond the request itself.
pub(crate) struct CanonicalInputs<'s> {
    pub rules: ServiceRules,
    pub presigned: bool,
    /// The `SignedHeaders` list exactly as the client sent it.
    pub signed_headers_raw: &'s str,
    pub signed_headers: &'s [String],
    pub payload_hash: &'s str,
    pub fold: Fold,
}

/// Builds the canonical request as bytes: a signed header value may legally hold non-UTF-8
/// bytes, and the client hashed those bytes, not a decoding of them.
pub(crate) fn canonical_request(req: &Request<'_>, inputs: &CanonicalInputs<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + req.query.len() + req.path.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path, inputs.rules).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query, inputs.presigned).as_bytes());
    out.push(b'\n');
    for name in inputs.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&canonical_header_value(req, name, inputs.fold));
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(inputs.signed_headers_raw.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(inputs.payload_hash.as_bytes());
    out
}

/// Lower-case hex of SHA-256, as SigV4 writes every hash.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Decodes hex of either case; `None` on any other character or an odd length.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_botocore() {
        for (input, expected) in [
            ("/", "/"),
            ("//", "/"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/", "/a/b/"),
            ("//example//", "/example/"),
            ("/../..", "/"),
            ("/a/..", "/"),
            ("/a/b/.", "/a/b/"),
            ("/a%2Fb/../c", "/c"),
        ] {
            assert_eq!(normalize_path(input), expected, "{input}");
        }
    }

    #[test]
    fn encodes_paths_per_service() {
        let p = "/a%20b/%E2%82%AC/~x/a%2Fb/@c";
        assert_eq!(
            canonical_uri(p, ServiceRules::Standard),
            "/a%2520b/%25E2%2582%25AC/~x/a%252Fb/%40c"
        );
        assert_eq!(
            canonical_uri(p, ServiceRules::S3),
            "/a%20b/%E2%82%AC/~x/a%2Fb/%40c"
        );
        assert_eq!(canonical_uri("", ServiceRules::S3), "/");
        assert_eq!(canonical_uri("/a b%", ServiceRules::S3), "/a%20b%25");
        assert_eq!(canonical_uri("//k//", ServiceRules::S3), "//k//");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query("b=2&a=%7e&a=1&c&X-Amz-Signature=ff&sp=%20+", true),
            "a=1&a=~&b=2&c=&sp=%20%2B"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=ff", false),
            "X-Amz-Signature=ff"
        );
        assert_eq!(canonical_query("&&", false), "");
    }

    #[test]
    fn decode_handles_truncated_escapes() {
        assert_eq!(percent_decode("%"), b"%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%41%zz"), b"A%zz");
        assert_eq!(hex_decode("0aF"), None);
        assert_eq!(hex_decode("0aFf"), Some(vec![0x0a, 0xff]));
    }
}
