//! Checking a parsed request against the secret key: the clock, the session token, the
//! payload hash, and the signature itself.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::auth::{incomplete, AuthLocation, CredentialScope, SignedRequest, ALGORITHM};
use crate::canonical::{
    canonical_request, folds_differ, hex_decode, sha256_hex, uri_encode, CanonicalInputs, Fold,
};
use crate::error::MismatchDetail;
use crate::timefmt::format_amz_date;
use crate::Error;

type HmacSha256 = Hmac<Sha256>;

/// The payload hash S3 clients send when the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The secret half of the credentials the caller looked up by access key id.
#[derive(Clone, Copy)]
pub struct SigningSecret<'a> {
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token issued with session (`ASIA…`) keys; `None` for long-term (`AKIA…`)
    /// keys. A request must carry exactly this token, or none when this is `None`.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for SigningSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecret")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// How a service canonicalizes the path and hashes the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceRules {
    /// Every AWS service but S3 (STS, IAM, EKS, EKS Auth): the path is normalized (dot
    /// segments and empty segments removed) and each segment URI-encoded twice; the payload
    /// hash is always the SHA-256 of the body.
    #[default]
    Standard,
    /// S3: the path is signed as sent (encoded once, not normalized); the payload hash is the
    /// `x-amz-content-sha256` header (which may be `UNSIGNED-PAYLOAD`), or `UNSIGNED-PAYLOAD`
    /// for presigned URLs.
    S3,
}

impl ServiceRules {
    /// The rules for a credential scope's service name.
    pub fn for_service(service: &str) -> Self {
        match service {
            "s3" | "s3-object-lambda" | "s3express" => ServiceRules::S3,
            _ => ServiceRules::Standard,
        }
    }
}

/// How long a presigned URL is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresignedValidity {
    /// Until `X-Amz-Date + X-Amz-Expires` (S3). `X-Amz-Expires` is required.
    Expires,
    /// Within the same clock window as a header-signed request, whatever `X-Amz-Expires`
    /// says (which is still checked for shape). This is what STS does: the EKS bearer token is
    /// a presigned `GetCallerIdentity` URL with `X-Amz-Expires=60` that clients use for up to
    /// 15 minutes.
    ClockWindow,
}

/// The knobs of [`SignedRequest::verify_with`]; [`VerifyOptions::for_service`] gives AWS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyOptions {
    /// Canonicalization and payload-hash rules.
    pub rules: ServiceRules,
    /// How far the request time may be from `now`, either way. AWS: 15 minutes.
    pub max_skew: Duration,
    /// How long presigned URLs are valid.
    pub presigned: PresignedValidity,
}

/// AWS's clock window for signed requests.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

impl VerifyOptions {
    /// AWS's behaviour for the service a credential is scoped to.
    pub fn for_service(service: &str) -> Self {
        let rules = ServiceRules::for_service(service);
        VerifyOptions {
            rules,
            max_skew: DEFAULT_MAX_SKEW,
            presigned: match rules {
                ServiceRules::S3 => PresignedValidity::Expires,
                ServiceRules::Standard => PresignedValidity::ClockWindow,
            },
        }
    }
}

/// What a successful verification established beyond "the key holder signed this".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The payload hash that was signed: the body's SHA-256, or `UNSIGNED-PAYLOAD` /
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (S3 only).
    pub payload_hash: String,
    /// True when the body is not covered by the signature (S3 unsigned payloads and
    /// presigned URLs): the caller must not trust it as signed.
    pub unsigned_payload: bool,
}

impl SignedRequest<'_> {
    /// Verifies with AWS's rules for the scope's service ([`VerifyOptions::for_service`]).
    ///
    /// `now` is the caller's clock; nothing here reads the system time.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but [`Error::MissingAuthenticationToken`], [`Error::InvalidAccessKeyId`]
    /// and [`Error::ExpiredToken`], which are the caller's to give.
    pub fn verify(
        &self,
        secret: &SigningSecret<'_>,
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        self.verify_with(
            secret,
            now,
            &VerifyOptions::for_service(&self.scope.service),
        )
    }

    /// Verifies with explicit options.
    ///
    /// The checks run in this order, so the error names the first thing wrong: the scope date
    /// against the request date, the clock, the session token, the signature, and last (S3)
    /// the body against the signed `x-amz-content-sha256`.
    ///
    /// # Errors
    ///
    /// As [`SignedRequest::verify`].
    pub fn verify_with(
        &self,
        secret: &SigningSecret<'_>,
        now: OffsetDateTime,
        opts: &VerifyOptions,
    ) -> Result<Verified, Error> {
        let s3 = opts.rules == ServiceRules::S3;
        let amz_date = format_amz_date(self.request_time);

        if self.scope.date != amz_date[..8] {
            return Err(Error::CredentialScopeMismatch(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                self.scope.date,
                &amz_date[..8],
                amz_date
            )));
        }

        self.check_clock(now, opts)?;

        let token_ok = match (secret.session_token, self.security_token.as_deref()) {
            (None, None) => true,
            (Some(expected), Some(got)) => bool::from(expected.as_bytes().ct_eq(got.as_bytes())),
            _ => false,
        };
        if !token_ok {
            return Err(if s3 {
                Error::InvalidToken
            } else {
                Error::InvalidClientTokenId
            });
        }

        let payload = self.payload_hash(opts.rules)?;
        let mut folds = vec![Fold::AllWhitespace];
        if self.signed_headers.iter().any(|name| {
            self.request
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && folds_differ(v))
        }) {
            // Only when a signed value holds a tab or similar does the choice matter; trying
            // the other reading then is no weaker, since both are of the same signed bytes.
            folds.push(Fold::SpacesOnly);
        }
        let signing_key = signing_key(secret.secret_access_key, &self.scope);
        // AWS compares the hex text it computed with the one sent: lower-case only, so an
        // upper-case spelling of the right signature does not match.
        let lower_hex = self
            .signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let provided = hex_decode(&self.signature).filter(|sig| lower_hex && sig.len() == 32);
        let mut first_failure = None;
        let mut matched = false;
        for fold in folds {
            let creq = canonical_request(
                self.request,
                &CanonicalInputs {
                    rules: opts.rules,
                    presigned: self.location == AuthLocation::Query,
                    signed_headers_raw: &self.signed_headers_raw,
                    signed_headers: &self.signed_headers,
                    payload_hash: &payload.hash,
                    fold,
                },
            );
            let string_to_sign = format!(
                "{ALGORITHM}\n{amz_date}\n{}\n{}",
                self.scope.scope_string(),
                sha256_hex(&creq)
            );
            let mut mac = keyed(&signing_key);
            mac.update(string_to_sign.as_bytes());
            // `verify_slice` compares in constant time; a signature that is not 32 bytes of
            // hex cannot match and needs no comparison.
            matched = provided
                .as_ref()
                .is_some_and(|sig| mac.verify_slice(sig).is_ok());
            if matched {
                break;
            }
            // The diagnosis shows the primary reading, the one most clients use.
            first_failure.get_or_insert((creq, string_to_sign));
        }
        if !matched {
            let (creq, string_to_sign) = first_failure.unwrap_or_default();
            return Err(Error::SignatureDoesNotMatch {
                s3,
                detail: Some(Box::new(MismatchDetail {
                    canonical_request: self
                        .redact_token(String::from_utf8_lossy(&creq).into_owned()),
                    string_to_sign,
                })),
            });
        }

        if let Some(expected) = payload.check_body {
            let computed = sha256_hex(self.request.body);
            if !computed.eq_ignore_ascii_case(&expected) {
                return Err(Error::ContentSha256Mismatch {
                    client: expected,
                    computed,
                });
            }
        }
        Ok(Verified {
            payload_hash: payload.hash,
            unsigned_payload: payload.unsigned,
        })
    }

    fn check_clock(&self, now: OffsetDateTime, opts: &VerifyOptions) -> Result<(), Error> {
        let s3 = opts.rules == ServiceRules::S3;
        let skew_secs = opts.max_skew.as_secs();
        let skew = time::Duration::seconds(i64::try_from(skew_secs).unwrap_or(i64::MAX / 2));
        let t = self.request_time;
        let too_skewed = || Error::RequestTimeTooSkewed {
            request_time: t,
            server_time: now,
            max_allowed_skew_ms: skew_secs.saturating_mul(1000),
        };

        if t > now + skew {
            return Err(if s3 {
                too_skewed()
            } else {
                Error::not_yet_current(t, now, skew_secs)
            });
        }
        let window_start_check = |t: OffsetDateTime| {
            if t < now - skew {
                Err(if s3 {
                    too_skewed()
                } else {
                    Error::expired(t, now, skew_secs)
                })
            } else {
                Ok(())
            }
        };
        match (self.location, opts.presigned) {
            (AuthLocation::Header, _) | (AuthLocation::Query, PresignedValidity::ClockWindow) => {
                window_start_check(t)
            }
            (AuthLocation::Query, PresignedValidity::Expires) => {
                let Some(expires_in) = self.expires_in else {
                    return Err(incomplete(
                        "AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters.",
                    ));
                };
                let expired_at = t + time::Duration::seconds(i64::from(expires_in));
                if now > expired_at {
                    return Err(if s3 {
                        Error::RequestExpired {
                            expires_in,
                            expired_at,
                            server_time: now,
                        }
                    } else {
                        Error::expired(t, now, u64::from(expires_in))
                    });
                }
                Ok(())
            }
        }
    }

    fn payload_hash(&self, rules: ServiceRules) -> Result<Payload, Error> {
        let body_hash = || Payload {
            hash: sha256_hex(self.request.body),
            unsigned: false,
            check_body: None,
        };
        if rules == ServiceRules::Standard {
            // Other services always sign the body; honouring a client-chosen
            // `x-amz-content-sha256: UNSIGNED-PAYLOAD` here would let an STS or IAM call go
            // through with an unsigned action.
            return Ok(body_hash());
        }
        let mut values = self
            .request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
            .map(|(_, v)| String::from_utf8_lossy(v.trim_ascii()).into_owned());
        let value = values.next();
        if values.next().is_some() {
            return Err(incomplete(
                "Only one x-amz-content-sha256 header is allowed.",
            ));
        }
        Ok(match value {
            None if self.location == AuthLocation::Query => Payload {
                hash: UNSIGNED_PAYLOAD.to_owned(),
                unsigned: true,
                check_body: None,
            },
            None => body_hash(),
            Some(v) if v == UNSIGNED_PAYLOAD || v == STREAMING_UNSIGNED_TRAILER => Payload {
                hash: v,
                unsigned: true,
                check_body: None,
            },
            Some(v) if v.starts_with("STREAMING-") => {
                return Err(Error::NotImplemented {
                    header: format!("x-amz-content-sha256: {}", crate::auth::printable(&v, 64)),
                })
            }
            Some(v) => Payload {
                check_body: Some(v.clone()),
                hash: v,
                unsigned: false,
            },
        })
    }

    /// Keeps the session token out of error details, which end up in responses and logs.
    fn redact_token(&self, text: String) -> String {
        match self.security_token.as_deref() {
            Some(token) if !token.is_empty() => {
                let mut encoded = String::new();
                uri_encode(token.as_bytes(), false, &mut encoded);
                text.replace(&encoded, "<session-token>")
                    .replace(token, "<session-token>")
            }
            _ => text,
        }
    }
}

struct Payload {
    hash: String,
    unsigned: bool,
    /// The hex hash the body must have, checked after the signature.
    check_body: Option<String>,
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, scope: &CredentialScope) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from AWS's SigV4 documentation ("Derive a signing key").
    #[test]
    fn derives_the_documented_signing_key() {
        let scope = CredentialScope {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        assert_eq!(
            hex::encode(signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                &scope
            )),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }
}
