//! Requests signed by the `aws-sigv4` crate (the AWS SDK for Rust's signer) verify; any change
//! to a signed element does not.

mod common;

use std::time::Duration;

use aws_sigv4::http_request::SignatureLocation;
use common::*;
use sigv4::{
    parse, AuthLocation, Error, PresignedValidity, ServiceRules, SigningSecret, VerifyOptions,
};
use time::OffsetDateTime;

const LOCATIONS: [SignatureLocation; 2] =
    [SignatureLocation::Headers, SignatureLocation::QueryParams];

fn minutes(m: i64) -> time::Duration {
    time::Duration::minutes(m)
}

fn check(
    req: &Owned,
    secret: &SigningSecret<'_>,
    now: OffsetDateTime,
) -> Result<sigv4::Verified, Error> {
    let view = req.view();
    parse(&view)?.verify(secret, now)
}

#[test]
fn every_case_verifies_in_both_forms_with_and_without_session_token() {
    for case in cases() {
        for location in LOCATIONS {
            for session in [false, true] {
                let req = sign_case(&case, location, session, t0(), Duration::from_secs(900));
                let what = format!("{} / {location:?} / session={session}", case.name);
                let view = req.view();
                let signed = parse(&view).unwrap_or_else(|e| panic!("{what}: parse: {e}"));
                let scope = signed.scope();
                assert_eq!(scope.service, case.service, "{what}");
                assert_eq!(scope.region, case.region, "{what}");
                assert_eq!(scope.date, "20240101", "{what}");
                assert_eq!(
                    signed.access_key_id(),
                    if session { SESSION_AKID } else { AKID }
                );
                assert_eq!(signed.security_token(), session.then_some(TOKEN), "{what}");
                let expected_location = match location {
                    SignatureLocation::Headers => AuthLocation::Header,
                    _ => AuthLocation::Query,
                };
                assert_eq!(signed.location(), expected_location, "{what}");
                assert_eq!(signed.request_time(), t0());

                let verified = signed
                    .verify(&secret(session), t0() + time::Duration::seconds(30))
                    .unwrap_or_else(|e| panic!("{what}: {e} {e:?}"));
                let unsigned = case.s3()
                    && (location == SignatureLocation::QueryParams
                        || case.payload == Payload::S3Unsigned);
                assert_eq!(verified.unsigned_payload, unsigned, "{what}");
            }
        }
    }
}

type Tamper = (&'static str, fn(&mut Owned));

fn tampers() -> Vec<Tamper> {
    vec![
        ("method", |r| {
            r.method = if r.method == "GET" { "POST" } else { "GET" }.into()
        }),
        ("path", |r| r.path.push('x')),
        // The same path, spelled with one more escape: clients sign what they send.
        ("path encoding", |r| {
            let cut = r.path.rfind('/').unwrap() + 1;
            r.path = match r.path[cut..].chars().next() {
                Some(c) if c.is_ascii_alphanumeric() => {
                    format!("{}%{:02X}{}", &r.path[..cut], c as u32, &r.path[cut + 1..])
                }
                _ => format!("{}%2F", r.path),
            }
        }),
        ("query added", |r| {
            if !r.query.is_empty() {
                r.query.push('&');
            }
            r.query.push_str("extra=1")
        }),
        ("query value", |r| {
            r.query = if r.query.is_empty() {
                "a=".into()
            } else if let Some(date) = r.query_param("X-Amz-Expires") {
                let changed = (date.parse::<u32>().unwrap() + 1).to_string();
                let mut c = r.clone();
                c.set_query_param("X-Amz-Expires", &changed);
                c.query
            } else {
                format!("{}1", r.query)
            }
        }),
        ("signed header host", |r| {
            let host = r.header("host").unwrap();
            r.set_header("host", &format!("{host}.evil"))
        }),
        ("body", |r| r.body.extend_from_slice(b"&Extra=1")),
        ("date by one second", |r| {
            if let Some(d) = r.header("x-amz-date") {
                r.set_header("x-amz-date", &d.replace("000000Z", "000001Z"))
            } else {
                r.set_query_param("X-Amz-Date", "20240101T000001Z")
            }
        }),
        ("date to another day", |r| {
            if r.header("x-amz-date").is_some() {
                r.set_header("x-amz-date", "20240102T000000Z")
            } else {
                r.set_query_param("X-Amz-Date", "20240102T000000Z")
            }
        }),
        ("region", |r| {
            r.edit_credential(|p| p[2] = "ap-south-1".into())
        }),
        ("service", |r| {
            r.edit_credential(|p| p[3] = if p[3] == "sts" { "iam" } else { "sts" }.into())
        }),
        ("signature last digit", |r| {
            let flip = |s: &str| {
                let mut s = s.to_owned();
                let last = s.pop().unwrap();
                s.push(if last == '0' { '1' } else { '0' });
                s
            };
            if let Some(auth) = r.header("authorization") {
                r.set_header("authorization", &flip(&auth))
            } else {
                let sig = r.query_param("X-Amz-Signature").unwrap();
                r.set_query_param("X-Amz-Signature", &flip(&sig))
            }
        }),
        // AWS compares hex text: the right signature in upper case is not the signature.
        ("signature upper-cased", |r| {
            if let Some(auth) = r.header("authorization") {
                let (head, sig) = auth.rsplit_once("Signature=").unwrap();
                r.set_header(
                    "authorization",
                    &format!("{head}Signature={}", sig.to_ascii_uppercase()),
                )
            } else {
                let sig = r.query_param("X-Amz-Signature").unwrap();
                r.set_query_param("X-Amz-Signature", &sig.to_ascii_uppercase())
            }
        }),
        ("signature truncated", |r| {
            if let Some(auth) = r.header("authorization") {
                r.set_header("authorization", &auth[..auth.len() - 2])
            } else {
                let sig = r.query_param("X-Amz-Signature").unwrap();
                r.set_query_param("X-Amz-Signature", &sig[..sig.len() - 2])
            }
        }),
    ]
}

#[test]
fn tampering_with_any_signed_element_fails() {
    let now = t0() + time::Duration::seconds(30);
    for case in cases() {
        for location in LOCATIONS {
            for session in [false, true] {
                let req = sign_case(&case, location, session, t0(), Duration::from_secs(900));
                for (what, tamper) in tampers() {
                    let mut bad = req.clone();
                    tamper(&mut bad);
                    let label = format!("{} / {location:?} / session={session}: {what}", case.name);
                    let result = check(&bad, &secret(session), now);
                    if what == "body" && case.s3() {
                        // S3 signs the x-amz-content-sha256 value, not the body: a changed body
                        // is caught by the hash check, or not at all for an unsigned payload.
                        match result {
                            Err(e) => assert_eq!(e.code(), "XAmzContentSHA256Mismatch", "{label}"),
                            Ok(v) => assert!(v.unsigned_payload, "{label}"),
                        }
                        continue;
                    }
                    let err = result.expect_err(&label);
                    assert_eq!(err.code(), "SignatureDoesNotMatch", "{label}: {err}");
                    assert_eq!(err.http_status(), 403, "{label}");
                }

                let wrong = SigningSecret {
                    secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEz",
                    session_token: session.then_some(TOKEN),
                };
                let err = check(&req, &wrong, now).expect_err("wrong secret");
                assert_eq!(err.code(), "SignatureDoesNotMatch");

                let other_token = SigningSecret {
                    secret_access_key: SECRET,
                    session_token: Some("another-token"),
                };
                let err = check(&req, &other_token, now).expect_err("wrong token");
                let expected = if case.s3() {
                    "InvalidToken"
                } else {
                    "InvalidClientTokenId"
                };
                assert_eq!(err.code(), expected, "{}", case.name);
            }
        }
    }
}

#[test]
fn mismatch_detail_shows_what_was_signed_without_the_token() {
    let case = &cases()[2];
    let mut req = sign_case(
        case,
        SignatureLocation::QueryParams,
        true,
        t0(),
        Duration::from_secs(900),
    );
    req.path.push('x');
    let err = check(&req, &secret(true), t0()).unwrap_err();
    let Error::SignatureDoesNotMatch {
        detail: Some(detail),
        s3: false,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(detail
        .canonical_request
        .starts_with("GET\n/clusters/my%2520cluster/~%25E2%2582%25AC%252Fx/addonsx\n"));
    assert!(detail
        .canonical_request
        .contains("X-Amz-Security-Token=<session-token>"));
    assert!(!detail.canonical_request.contains("FwoG"));
    assert!(detail
        .string_to_sign
        .starts_with("AWS4-HMAC-SHA256\n20240101T000000Z\n20240101/us-west-2/eks/aws4_request\n"));
    let sig = req.query_param("X-Amz-Signature").unwrap();
    assert!(!format!("{err} {err:?}").contains(&sig));
}

#[test]
fn clock_window_is_fifteen_minutes_either_way() {
    for case in cases() {
        let req = sign_case(
            &case,
            SignatureLocation::Headers,
            false,
            t0(),
            Duration::from_secs(900),
        );
        for ok in [-15, -14, 0, 14, 15] {
            check(&req, &secret(false), t0() + minutes(ok))
                .unwrap_or_else(|e| panic!("{} at {ok} min: {e}", case.name));
        }
        for (off, dir) in [(16, "past"), (-16, "future")] {
            let err = check(&req, &secret(false), t0() + minutes(off)).unwrap_err();
            if case.s3() {
                assert_eq!(err.code(), "RequestTimeTooSkewed", "{}", case.name);
                assert_eq!(
                    err.to_string(),
                    "The difference between the request time and the current time is too large."
                );
                let Error::RequestTimeTooSkewed {
                    max_allowed_skew_ms,
                    ..
                } = err
                else {
                    unreachable!()
                };
                assert_eq!(max_allowed_skew_ms, 900_000);
            } else {
                assert_eq!(err.code(), "SignatureDoesNotMatch");
                assert_eq!(err.http_status(), 403);
                let expected = if dir == "past" {
                    "Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z (20240101T001600Z - 15 min.)"
                } else {
                    "Signature not yet current: 20240101T000000Z is still later than 20231231T235900Z (20231231T234400Z + 15 min.)"
                };
                assert_eq!(err.to_string(), expected, "{}", case.name);
            }
        }
    }
}

#[test]
fn presigned_expiry() {
    let s3 = cases().into_iter().find(|c| c.s3()).unwrap();
    let req = sign_case(
        &s3,
        SignatureLocation::QueryParams,
        true,
        t0(),
        Duration::from_secs(3600),
    );
    check(&req, &secret(true), t0() + time::Duration::seconds(3600)).unwrap();
    let err = check(&req, &secret(true), t0() + time::Duration::seconds(3601)).unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("AccessDenied", 403));
    assert_eq!(err.to_string(), "Request has expired");
    // S3 presigned URLs are not bound to the 15-minute window in the past...
    check(&req, &secret(true), t0() + minutes(59)).unwrap();
    // ...but one dated in the future is still refused.
    let err = check(&req, &secret(true), t0() - minutes(16)).unwrap_err();
    assert_eq!(err.code(), "RequestTimeTooSkewed");

    // A 7-day URL is valid for 7 days.
    let week = sign_case(
        &s3,
        SignatureLocation::QueryParams,
        false,
        t0(),
        Duration::from_secs(604_800),
    );
    check(&week, &secret(false), t0() + time::Duration::days(7)).unwrap();
    assert_eq!(
        check(
            &week,
            &secret(false),
            t0() + time::Duration::days(7) + time::Duration::seconds(1)
        )
        .unwrap_err()
        .code(),
        "AccessDenied"
    );

    // The EKS token: STS presigned with X-Amz-Expires=60, used for up to 15 minutes.
    let token_case = cases()
        .into_iter()
        .find(|c| c.name.contains("EKS token"))
        .unwrap();
    let token = sign_case(
        &token_case,
        SignatureLocation::QueryParams,
        false,
        t0(),
        Duration::from_secs(60),
    );
    check(&token, &secret(false), t0() + minutes(14)).unwrap();
    let err = check(&token, &secret(false), t0() + minutes(16)).unwrap_err();
    assert!(err.to_string().starts_with("Signature expired: "), "{err}");

    // Honouring X-Amz-Expires for a non-S3 service is an option.
    let view = token.view();
    let signed = parse(&view).unwrap();
    let strict = VerifyOptions {
        presigned: PresignedValidity::Expires,
        ..VerifyOptions::for_service("sts")
    };
    signed
        .verify_with(&secret(false), t0() + time::Duration::seconds(60), &strict)
        .unwrap();
    let err = signed
        .verify_with(&secret(false), t0() + time::Duration::seconds(61), &strict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000001Z (20240101T000101Z - 1 min.)"
    );
    assert_eq!(err.code(), "SignatureDoesNotMatch");
}

#[test]
fn s3_body_is_checked_against_the_signed_hash() {
    let put = cases()
        .into_iter()
        .find(|c| c.name.contains("PutObject"))
        .unwrap();
    let mut req = sign_case(
        &put,
        SignatureLocation::Headers,
        false,
        t0(),
        Duration::from_secs(900),
    );
    let v = check(&req, &secret(false), t0()).unwrap();
    assert_eq!(
        v.payload_hash,
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    req.body = b"hello worle".to_vec();
    let err = check(&req, &secret(false), t0()).unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("XAmzContentSHA256Mismatch", 400)
    );

    // Signed streaming uploads are refused, not accepted with unchecked chunks.
    let mut streaming = sign_case(
        &put,
        SignatureLocation::Headers,
        false,
        t0(),
        Duration::from_secs(900),
    );
    streaming.set_header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let err = check(&streaming, &secret(false), t0()).unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("NotImplemented", 501));
}

#[test]
fn a_non_s3_client_cannot_opt_out_of_body_signing() {
    // Signed as if S3 with UNSIGNED-PAYLOAD, but scoped to STS: the verifier hashes the body.
    let mut case = cases()[0].clone();
    case.payload = Payload::S3Unsigned;
    case.service = "s3";
    let req = sign_case(
        &case,
        SignatureLocation::Headers,
        false,
        t0(),
        Duration::from_secs(900),
    );
    let view = req.view();
    let signed = parse(&view).unwrap();
    assert_eq!(
        req.header("x-amz-content-sha256").as_deref(),
        Some("UNSIGNED-PAYLOAD")
    );
    // Verified as S3 it passes; under STS's rules the same signature does not.
    signed.verify(&secret(false), t0()).unwrap();
    let sts_rules = VerifyOptions {
        rules: ServiceRules::Standard,
        ..VerifyOptions::for_service("s3")
    };
    let err = signed
        .verify_with(&secret(false), t0(), &sts_rules)
        .unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
}

#[test]
fn session_token_must_match_the_key_kind() {
    let case = &cases()[0];
    let long_term = sign_case(
        case,
        SignatureLocation::Headers,
        false,
        t0(),
        Duration::from_secs(900),
    );
    let session = sign_case(
        case,
        SignatureLocation::Headers,
        true,
        t0(),
        Duration::from_secs(900),
    );
    // A session key used without its token, and a long-term key sent with a token.
    assert_eq!(
        check(&long_term, &secret(true), t0()).unwrap_err().code(),
        "InvalidClientTokenId"
    );
    assert_eq!(
        check(&session, &secret(false), t0()).unwrap_err().code(),
        "InvalidClientTokenId"
    );
    assert_eq!(
        Error::InvalidClientTokenId.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn wrong_region_and_service_helpers_read_like_aws() {
    let e = Error::wrong_region();
    assert_eq!((e.code(), e.http_status()), ("SignatureDoesNotMatch", 403));
    assert_eq!(
        e.to_string(),
        "Credential should be scoped to a valid region. "
    );
    let e = Error::wrong_service("sts");
    assert_eq!(
        e.to_string(),
        "Credential should be scoped to correct service: 'sts'. "
    );
}
