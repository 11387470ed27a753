//! Compact JWS parsing, before any key is touched.
//!
//! The header's `alg` is checked against the allow-list here, so an `alg: none` or HMAC token
//! never reaches key selection: the classic "HS256 with the RSA public key as secret" confusion
//! is impossible by construction, not by a later check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{sanitize, VerifyError};

/// The signature algorithms a token may use: RSA PKCS#1 v1.5 and ECDSA on P-256/P-384, the
/// set AWS STS accepts from OIDC identity providers. `none` and HMAC are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ];

    /// The JOSE name (`"RS256"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
        }
    }

    /// Parses a JOSE name; names are case-sensitive (RFC 7515 §4.1.1), so `"rs256"` is not one.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The JWK `kty` a key must have to verify this algorithm.
    pub(crate) fn key_type(self) -> &'static str {
        match self {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => "RSA",
            Algorithm::ES256 | Algorithm::ES384 => "EC",
        }
    }

    /// The JWK `crv` an EC key must have for this algorithm (RFC 7518 §3.4 binds each ES
    /// algorithm to one curve).
    pub(crate) fn curve(self) -> Option<&'static str> {
        match self {
            Algorithm::ES256 => Some("P-256"),
            Algorithm::ES384 => Some("P-384"),
            _ => None,
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compact JWS split and decoded, signature not yet checked.
pub(crate) struct RawJwt<'a> {
    /// `base64url(header) || '.' || base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature_b64: &'a str,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
}

/// Decodes one base64url segment; padding and non-canonical trailing bits are rejected so each
/// token has exactly one encoding.
pub(crate) fn b64_decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_json_object(
    segment: &str,
    what: &'static str,
) -> Result<Map<String, Value>, VerifyError> {
    let bytes = b64_decode(segment).ok_or(VerifyError::Malformed(what))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed(what)),
    }
}

/// Splits and decodes `token`, enforcing the size limit and the algorithm allow-list.
pub(crate) fn parse<'a>(
    token: &'a str,
    max_len: usize,
    allowed: &[Algorithm],
) -> Result<RawJwt<'a>, VerifyError> {
    if token.is_empty() {
        return Err(VerifyError::Malformed("empty token"));
    }
    // Checked before any decoding so a multi-megabyte input costs nothing but this comparison.
    if token.len() > max_len {
        return Err(VerifyError::Malformed("token exceeds the size limit"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "not a compact JWS (expected three dot-separated parts)",
        ));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];

    let header = decode_json_object(header, "header is not base64url-encoded JSON object")?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            match Algorithm::from_name(name).filter(|a| allowed.contains(a)) {
                Some(alg) => alg,
                None => return Err(VerifyError::UnsupportedAlgorithm(sanitize(name))),
            }
        }
        Some(_) => return Err(VerifyError::Malformed("header alg is not a string")),
        None => return Err(VerifyError::Malformed("header has no alg")),
    };
    // RFC 7515 §4.1.11: a recipient must reject a token whose critical extensions it does not
    // understand, and this verifier understands none.
    if header.contains_key("crit") {
        return Err(VerifyError::Malformed("header has critical extensions"));
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::Malformed("header kid is not a string")),
        None => None,
    };
    if signature.is_empty() {
        return Err(VerifyError::Malformed("token has no signature"));
    }
    let claims = decode_json_object(payload, "payload is not base64url-encoded JSON object")?;
    Ok(RawJwt {
        signing_input,
        signature_b64: signature,
        alg,
        kid,
        claims,
    })
}

/// A short, stable identifier of a token for correlating log lines: the first 12 hex digits of
/// its SHA-256. It reveals nothing usable about the token.
pub fn token_fingerprint(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64_encode(json.as_bytes())
    }

    #[test]
    fn rejects_shapes_without_panicking() {
        let all = &Algorithm::ALL;
        for bad in [
            "",
            ".",
            "..",
            "...",
            "a.b",
            "a.b.c.d",
            "a.b.c",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert!(parse(bad, 20_000, all).is_err(), "{bad:?}");
        }
        let huge = "a".repeat(1 << 20);
        assert_eq!(
            parse(&huge, 20_000, all).err(),
            Some(VerifyError::Malformed("token exceeds the size limit"))
        );
    }

    #[test]
    fn algorithm_names_are_case_sensitive_and_allow_listed() {
        for name in ["none", "None", "HS256", "rs256", "PS256", "EdDSA", ""] {
            let token = format!(
                "{}.{}.c2ln",
                seg(&format!(r#"{{"alg":"{name}"}}"#)),
                seg("{}")
            );
            assert_eq!(
                parse(&token, 20_000, &Algorithm::ALL).err(),
                Some(VerifyError::UnsupportedAlgorithm(name.to_string()))
            );
        }
        let es = format!("{}.{}.c2ln", seg(r#"{"alg":"ES256"}"#), seg("{}"));
        assert!(parse(&es, 20_000, &[Algorithm::RS256]).is_err());
        assert!(parse(&es, 20_000, &Algorithm::ALL).is_ok());
    }

    #[test]
    fn padding_and_crit_are_rejected() {
        let padded = format!("{}=.{}.c2ln", seg(r#"{"alg":"RS256"}"#), seg("{}"));
        assert!(parse(&padded, 20_000, &Algorithm::ALL).is_err());
        let crit = format!(
            "{}.{}.c2ln",
            seg(r#"{"alg":"RS256","crit":["x"]}"#),
            seg("{}")
        );
        assert!(parse(&crit, 20_000, &Algorithm::ALL).is_err());
    }

    #[test]
    fn fingerprint_is_short_hex() {
        let fp = token_fingerprint("abc");
        assert_eq!(fp, "ba7816bf8f01");
    }
}
