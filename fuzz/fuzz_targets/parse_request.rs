//! Fuzzes what the twin reads from every request before a key is known: the SigV4 gate
//! (`sigv4::presence`, `sigv4::parse`, then verification with a fixed key and clock) and the
//! Query protocol (`awswire`: form parsing, `Action`/`Version`, and the validator's string,
//! number, boolean and list readers). Any input must end in a value or an AWS-shaped error,
//! never a panic, and the two readers of "is it signed" must agree.
//!
//! Input layout: the first line is `METHOD TARGET`; following lines up to an empty line are
//! `name: value` headers; the rest is the body.

#![no_main]

use awswire::{rules, IntRule, ListRule, Params, QueryRequest, Validator, STS};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = request_line.split_once(' ').unwrap_or(("GET", request_line));
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();

    let mut req = sigv4::Request::new(method, target).body(body.as_bytes());
    for (n, v) in &headers {
        req = req.header(n, v.as_bytes());
    }
    let presence = sigv4::presence(&req);
    match sigv4::parse(&req) {
        Ok(signed) => {
            assert!(
                matches!(presence, sigv4::Presence::SigV4 { .. }),
                "parsed as SigV4 while the gate said {presence:?}"
            );
            let _ = sigv4::RegionRule::Regional.check(&signed.scope().region);
            let secret = sigv4::SigningSecret {
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token: signed.security_token(),
            };
            if let Err(e) = signed.verify(&secret, datetime!(2026-12-01 00:00:00 UTC)) {
                assert!(!e.code().is_empty() && e.http_status() >= 400);
            }
        }
        Err(e) => {
            assert!(!e.code().is_empty() && e.http_status() >= 400);
            if presence == sigv4::Presence::Anonymous {
                assert_eq!(e, sigv4::Error::MissingAuthenticationToken);
            }
        }
    }

    let query = target.split_once('?').map_or("", |(_, q)| q);
    if let Ok(params) = Params::parse(body.as_bytes()) {
        let mut v = Validator::new(&params);
        let _ = v.str("RoleSessionName", &rules::ROLE_SESSION_NAME);
        let _ = v.int("DurationSeconds", &IntRule::range(900, 43_200));
        let _ = v.bool("DisableSessionTags");
        let _ = v.str_list("TransitiveTagKeys", &ListRule::max(50), &rules::TAG_KEY);
        for tag in v.struct_list("Tags", &ListRule::max(50)) {
            let _ = v.str(tag.member("Key"), &rules::TAG_KEY);
            let _ = v.str(tag.member("Value"), &rules::TAG_VALUE);
        }
        if let Err(e) = v.finish() {
            assert!(!e.code.is_empty());
        }
    }
    let _ = QueryRequest::parse(
        &STS,
        query,
        Some(body.as_bytes()),
        &["AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"],
    );
});
