//! JWKS parsing and the key/algorithm compatibility rules.
//!
//! Parsing is lenient per key and strict per use: a JWKS may legitimately carry keys this
//! verifier cannot use (encryption keys, OKP, symmetric keys, future types), and one odd key
//! must not make the whole issuer unverifiable. Such keys are kept only as "present but
//! unusable" so a token naming one gets a precise error instead of a refresh.

use std::sync::Arc;

use aws_lc_rs::signature::{self as lc, ParsedPublicKey, RsaPublicKeyComponents};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::error::{sanitize, VerifyError};
use crate::jwt::{b64_decode, Algorithm};

/// Smallest RSA modulus accepted, in bytes (2048 bits), matching what AWS and aws-lc accept.
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Keys beyond this many are ignored: an issuer publishing more is misbehaving, and each key
/// costs memory in a cache that lives as long as the process.
const MAX_KEYS: usize = 100;

/// What kind of public key a JWK holds, as far as verification cares.
#[derive(Debug, Clone)]
enum Material {
    Rsa {
        decoding: DecodingKey,
        /// The key built once for each RS algorithm, so a verification costs the signature
        /// check alone: building it from `n` and `e` (an RSA object and its Montgomery
        /// context, which aws-lc then caches on it) cost a tenth of each RS256 check when it
        /// was redone per token. `None` when aws-lc refuses the components; `decoding` then
        /// answers, as before.
        parsed: Option<Arc<RsaKeys>>,
    },
    Ec {
        curve: String,
        decoding: DecodingKey,
    },
    /// A key type or encoding this verifier cannot use; kept so its `kid` is "known".
    Unusable(&'static str),
}

/// An RSA key parsed for RS256, RS384 and RS512 (aws-lc binds a parsed key to one algorithm).
struct RsaKeys([ParsedPublicKey; 3]);

impl std::fmt::Debug for RsaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKeys")
    }
}

impl RsaKeys {
    /// The parameters jsonwebtoken verifies RS256/384/512 with (its `Rsa256Verifier` and
    /// siblings), so a parsed key accepts exactly the signatures `DecodingKey` accepts.
    fn parse(n: &[u8], e: &[u8]) -> Option<RsaKeys> {
        let components = RsaPublicKeyComponents { n, e };
        let parse = |params| components.to_parsed_public_key(params).ok();
        Some(RsaKeys([
            parse(&lc::RSA_PKCS1_2048_8192_SHA256)?,
            parse(&lc::RSA_PKCS1_2048_8192_SHA384)?,
            parse(&lc::RSA_PKCS1_2048_8192_SHA512)?,
        ]))
    }

    fn for_alg(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        match alg {
            Algorithm::RS256 => Some(&self.0[0]),
            Algorithm::RS384 => Some(&self.0[1]),
            Algorithm::RS512 => Some(&self.0[2]),
            Algorithm::ES256 | Algorithm::ES384 => None,
        }
    }
}

/// One published key.
#[derive(Debug, Clone)]
pub(crate) struct PublishedKey {
    kid: Option<String>,
    alg: Option<String>,
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    material: Material,
}

/// An issuer's key set, as fetched.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<PublishedKey>,
}

fn string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    obj.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn parse_key(value: &Value) -> Option<PublishedKey> {
    let obj = value.as_object()?;
    let kty = obj.get("kty").and_then(Value::as_str)?;
    let material = match kty {
        "RSA" => match (obj.get("n"), obj.get("e")) {
            (Some(Value::String(n)), Some(Value::String(e))) => {
                match (b64_decode(n), b64_decode(e)) {
                    (Some(n), Some(e)) => {
                        let significant = n.iter().skip_while(|b| **b == 0).count();
                        if significant < MIN_RSA_MODULUS_BYTES {
                            Material::Unusable("RSA modulus shorter than 2048 bits")
                        } else {
                            Material::Rsa {
                                decoding: DecodingKey::from_rsa_raw_components(&n, &e),
                                parsed: RsaKeys::parse(&n, &e).map(Arc::new),
                            }
                        }
                    }
                    _ => Material::Unusable("RSA n or e is not base64url"),
                }
            }
            _ => Material::Unusable("RSA key without n and e"),
        },
        "EC" => {
            let curve = string_field(obj, "crv").unwrap_or_default();
            let coord_len = match curve.as_str() {
                "P-256" => Some(32),
                "P-384" => Some(48),
                _ => None,
            };
            match (coord_len, obj.get("x"), obj.get("y")) {
                (Some(len), Some(Value::String(x)), Some(Value::String(y))) => {
                    match (b64_decode(x), b64_decode(y)) {
                        // RFC 7518 §6.2.1.2: coordinates are the full field size, so a length
                        // mismatch means a broken or hostile key, not a formatting variant.
                        (Some(xb), Some(yb)) if xb.len() == len && yb.len() == len => {
                            let mut point = Vec::with_capacity(1 + 2 * len);
                            point.push(0x04);
                            point.extend_from_slice(&xb);
                            point.extend_from_slice(&yb);
                            Material::Ec {
                                curve,
                                decoding: DecodingKey::from_ec_der(&point),
                            }
                        }
                        _ => Material::Unusable("EC coordinates have the wrong length"),
                    }
                }
                (None, _, _) => Material::Unusable("EC curve is not P-256 or P-384"),
                _ => Material::Unusable("EC key without x and y"),
            }
        }
        _ => Material::Unusable("key type is not RSA or EC"),
    };
    Some(PublishedKey {
        kid: string_field(obj, "kid"),
        alg: string_field(obj, "alg"),
        use_: string_field(obj, "use"),
        key_ops: obj.get("key_ops").and_then(Value::as_array).map(|ops| {
            ops.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }),
        material,
    })
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`); fails only if the document itself is not one.
    pub(crate) fn parse(document: &[u8]) -> Result<KeySet, String> {
        let value: Value =
            serde_json::from_slice(document).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "JWKS has no \"keys\" array".to_string())?;
        Ok(KeySet {
            keys: keys.iter().take(MAX_KEYS).filter_map(parse_key).collect(),
        })
    }

    /// Whether any key is published under `kid`.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Verifies the signature over `signing_input` with the keys published under `kid`.
    ///
    /// Several keys may share a `kid` (it happens during sloppy rotations); all are published by
    /// the issuer, so the token is accepted if any compatible one verifies it.
    pub(crate) fn verify(
        &self,
        kid: &str,
        alg: Algorithm,
        signing_input: &str,
        signature_b64: &str,
    ) -> Result<(), VerifyError> {
        let mut incompatible = None;
        let mut tried = false;
        for key in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
            let decoding = match compatible(key, alg) {
                Ok(decoding) => decoding,
                Err(reason) => {
                    incompatible.get_or_insert(reason);
                    continue;
                }
            };
            tried = true;
            if let Material::Rsa {
                parsed: Some(parsed),
                ..
            } = &key.material
            {
                if let Some(parsed) = parsed.for_alg(alg) {
                    // The same check as jsonwebtoken's below (same padding, digest and key
                    // sizes; the signature decoded as it decodes it), on the key parsed once.
                    let verified = b64_decode(signature_b64).is_some_and(|sig| {
                        parsed.verify_sig(signing_input.as_bytes(), &sig).is_ok()
                    });
                    if verified {
                        return Ok(());
                    }
                    continue;
                }
            }
            // Err (an undecodable signature or a key aws-lc rejects) is a failed verification
            // too: either way this key did not sign this token.
            if let Ok(true) = jsonwebtoken::crypto::verify(
                signature_b64,
                signing_input.as_bytes(),
                decoding,
                alg.to_jsonwebtoken(),
            ) {
                return Ok(());
            }
        }
        match (tried, incompatible) {
            (true, _) => Err(VerifyError::BadSignature),
            (false, Some(reason)) => Err(VerifyError::IncompatibleKey {
                kid: sanitize(kid),
                alg: alg.as_str(),
                reason,
            }),
            (false, None) => Err(VerifyError::UnknownKey(sanitize(kid))),
        }
    }
}

/// Checks that `key` may verify `alg` tokens (RFC 7517 §4.2–4.4, RFC 7518 §3) and returns the
/// key material if so.
fn compatible(key: &PublishedKey, alg: Algorithm) -> Result<&DecodingKey, &'static str> {
    // Key type first: it is the most fundamental mismatch and the clearest one to report.
    let decoding = match (&key.material, alg.key_type()) {
        (Material::Rsa { decoding, .. }, "RSA") => decoding,
        (Material::Ec { curve, decoding }, "EC") => {
            if Some(curve.as_str()) != alg.curve() {
                return Err("key curve does not match the token's alg");
            }
            decoding
        }
        (Material::Unusable(reason), _) => return Err(reason),
        _ => return Err("key type (kty) does not match the token's alg"),
    };
    if let Some(key_alg) = &key.alg {
        if key_alg != alg.as_str() {
            return Err("key alg differs from the token's alg");
        }
    }
    if let Some(use_) = &key.use_ {
        if use_ != "sig" {
            return Err("key use is not \"sig\"");
        }
    }
    if let Some(ops) = &key.key_ops {
        if !ops.iter().any(|op| op == "verify") {
            return Err("key_ops does not include \"verify\"");
        }
    }
    Ok(decoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_keys_do_not_spoil_the_set() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"OKP","kid":"ed","crv":"Ed25519","x":"AAAA"},
            {"kty":"RSA","kid":"short","n":"AQAB","e":"AQAB"},
            {"kty":"EC","kid":"bad-ec","crv":"P-256","x":"AAAA","y":"AAAA"},
            "not an object",
            {"no":"kty"}
        ]}"#;
        let set = KeySet::parse(doc).expect("parses");
        assert!(set.has_kid("h"));
        for kid in ["h", "ed", "short", "bad-ec"] {
            let err = set
                .verify(kid, Algorithm::RS256, "a.b", "c2ln")
                .expect_err("unusable");
            assert!(
                matches!(err, VerifyError::IncompatibleKey { .. }),
                "{kid}: {err:?}"
            );
        }
        assert_eq!(
            set.verify("nope", Algorithm::RS256, "a.b", "c2ln"),
            Err(VerifyError::UnknownKey("nope".into()))
        );
    }

    #[test]
    fn not_a_jwks() {
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(b"{}").is_err());
        assert!(KeySet::parse(b"<html>").is_err());
    }
}
