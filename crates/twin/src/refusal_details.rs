//! What a refusal's decision-log entry shows a user (`rolechain explain --last-denied`): the
//! facts of a refused token, read **without verifying anything** and never trusted, only shown;
//! never the token itself (a SHA-256 prefix names it). Computed on refusals only, so the
//! request path pays nothing for it.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Detail;

/// A refused token's facts.
pub(crate) struct TokenFacts {
    /// `token sha256`, `token iss`/`aud`/`sub`, `exp`/`nbf`/`iat` against the twin's now, `kid`,
    /// then `twin's now`.
    pub details: Vec<Detail>,
    /// The unverified `iss`, when the token could be read.
    pub issuer: Option<String>,
    /// The unverified audiences.
    pub audiences: Vec<String>,
    /// The unverified `sub`.
    pub subject: Option<String>,
}

/// The facts of `token`, as of the twin's `now`.
pub(crate) fn token_facts(token: &str, now: OffsetDateTime) -> TokenFacts {
    let at = |secs: i64| {
        let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
            return format!("{secs} (not a time)");
        };
        let shown = t.format(&Rfc3339).unwrap_or_else(|_| secs.to_string());
        match (t - now).whole_seconds() {
            d if d < 0 => format!("{shown} ({}s ago)", -d),
            d => format!("{shown} (in {d}s)"),
        }
    };
    let mut facts = TokenFacts {
        details: vec![Detail::new("token sha256", oidc::token_fingerprint(token))],
        issuer: None,
        audiences: Vec::new(),
        subject: None,
    };
    match oidc::peek(token) {
        Ok(peeked) => {
            let claims = peeked.claims();
            facts.audiences = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            facts.subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
            let text = |name: &str| match claims.get(name) {
                Some(Value::String(s)) => oidc::sanitize(s),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), oidc::sanitize))
                    .collect::<Vec<_>>()
                    .join(", "),
                Some(other) => oidc::sanitize(&other.to_string()),
                None => "(none)".to_owned(),
            };
            for name in ["iss", "aud", "sub"] {
                facts
                    .details
                    .push(Detail::new(format!("token {name}"), text(name)));
            }
            for name in ["exp", "nbf", "iat"] {
                if let Some(secs) = claims.get(name).and_then(Value::as_i64) {
                    facts
                        .details
                        .push(Detail::new(format!("token {name}"), at(secs)));
                }
            }
            facts.details.push(Detail::new(
                "token kid",
                peeked
                    .key_id()
                    .map_or_else(|| "(none)".to_owned(), oidc::sanitize),
            ));
            facts.issuer = Some(peeked.issuer().to_owned());
        }
        Err(e) => facts
            .details
            .push(Detail::new("token", format!("not readable: {e}"))),
    }
    facts.details.push(Detail::new(
        "twin's now",
        now.format(&Rfc3339).unwrap_or_default(),
    ));
    facts
}
