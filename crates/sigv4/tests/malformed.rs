//! Malformed authentication of every shape gets an AWS error, never a panic, and error
//! messages never carry the signature in full.

use proptest::prelude::*;
use sigv4::{parse, Error, Request, SigningSecret};
use time::macros::datetime;

const SIG: &str = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";
const CRED: &str = "AKIDEXAMPLE/20240101/us-east-1/sts/aws4_request";

fn with_auth(value: &[u8]) -> Result<(), Error> {
    let req = Request::new("POST", "/")
        .header("host", "sts.amazonaws.com")
        .header("x-amz-date", "20240101T000000Z")
        .header("authorization", value);
    let signed = parse(&req)?;
    let secret = SigningSecret {
        secret_access_key: "s",
        session_token: None,
    };
    signed
        .verify(&secret, datetime!(2024-01-01 00:00:00 UTC))
        .map(|_| ())
}

fn incomplete(value: &str) -> String {
    match with_auth(value.as_bytes()) {
        Err(e @ Error::IncompleteSignature(_)) => {
            assert_eq!(e.http_status(), 400);
            assert!(!e.to_string().contains(SIG), "signature echoed: {e}");
            e.to_string()
        }
        other => panic!("{value:?}: expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn no_authentication_at_all() {
    for req in [
        Request::new("GET", "/"),
        Request::new(
            "GET",
            "/?Action=GetCallerIdentity&X-Amz-Date=20240101T000000Z",
        ),
        Request::new("GET", "/").header("authorization", ""),
        Request::new("GET", "/").header("Authorization", "   "),
    ] {
        let err = parse(&req).unwrap_err();
        assert_eq!(err, Error::MissingAuthenticationToken);
        assert_eq!(
            (err.code(), err.http_status()),
            ("MissingAuthenticationToken", 403)
        );
        assert_eq!(err.to_string(), "Request is missing Authentication Token");
    }
}

#[test]
fn missing_components_are_named_like_aws() {
    let msg = incomplete(&format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x-amz-date"
    ));
    assert!(msg.starts_with("Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential="), "{msg}");
    let msg = incomplete(&format!(
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature={SIG}"
    ));
    assert!(
        msg.starts_with("Authorization header requires 'Credential' parameter. Authorization="),
        "{msg}"
    );
    assert!(msg.contains("Signature=fe5f..."), "{msg}");
    let msg = incomplete(&format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, Signature={SIG}"
    ));
    assert!(
        msg.starts_with("Authorization header requires 'SignedHeaders' parameter."),
        "{msg}"
    );
    let msg = incomplete("AWS4-HMAC-SHA256");
    assert!(msg.starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"), "{msg}");
    let msg = incomplete(&format!(
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature={SIG}"
    ));
    assert!(
        msg.starts_with("Authorization header requires 'Credential' parameter."),
        "{msg}"
    );

    // No date header either.
    let req = Request::new("POST", "/").header("host", "h").header(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
    );
    let msg = parse(&req).unwrap_err().to_string();
    assert!(
        msg.starts_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ),
        "{msg}"
    );
}

#[test]
fn bad_credential_scopes() {
    let auth = |cred: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date, Signature={SIG}"
        )
    };
    for (cred, expected) in [
        ("AKID/20240101/us-east-1/sts", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/20240101/us-east-1/sts'"),
        ("AKID/20240101/us-east-1/sts/aws4_request/x", "Credential must have exactly 5 slash-delimited elements"),
        ("AKID", "Credential must have exactly 5 slash-delimited elements"),
        ("AKID/20240101/us-east-1/sts/aws4_reques", "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'."),
        ("AKID/2024-01-01/us-east-1/sts/aws4_request", "Credential should be scoped to a valid date"),
        ("AKID/20240101//sts/aws4_request", "Credential should be scoped to a valid region."),
        ("AKID/20240101/us-east-1//aws4_request", "Credential should be scoped to a valid service."),
        ("/20240101/us-east-1/sts/aws4_request", "Credential must name a valid access key id."),
        ("AK ID/20240101/us-east-1/sts/aws4_request", "Credential must name a valid access key id."),
    ] {
        let result = with_auth(auth(cred).as_bytes());
        let err = result.unwrap_err();
        assert!(err.to_string().starts_with(expected), "{cred}: {err}");
        assert!(matches!(err.code(), "IncompleteSignature" | "SignatureDoesNotMatch"), "{cred}");
    }
}

#[test]
fn scope_date_must_be_the_request_date() {
    let err = with_auth(format!("AWS4-HMAC-SHA256 Credential=AKID/20231231/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}").as_bytes()).unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(err.to_string(), "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231231' != '20240101', from '20240101T000000Z'.");
}

#[test]
fn unsupported_algorithms_and_shapes() {
    for (value, expected) in [
        ("AWS4-HMAC-SHA512 Credential=x", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."),
        ("AWS4-ECDSA-P256-SHA256 Credential=x", "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'."),
        ("Bearer eyJhbGciOi", "Unsupported AWS 'algorithm': 'Bearer'."),
        ("aws4-hmac-sha256 Credential=x", "Unsupported AWS 'algorithm': 'aws4-hmac-sha256'."),
        ("AWS4-HMAC-SHA256Credential=x", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA256Credential=x'."),
        ("AWS4-HMAC-SHA256 Credential", "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '"),
        ("AWS4-HMAC-SHA256 Credential=a, garbage, Signature=b", "Invalid key=value pair (missing equal-sign)"),
        ("AWS4-HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host, Signature=c", "Authorization header has a duplicate 'Credential' parameter."),
        (&format!("AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=x-amz-date, Signature={SIG}"), "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        (&format!("AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;;x-amz-date, Signature={SIG}"), "SignedHeaders must be a ';'-separated list of header names"),
        (&format!("AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x amz, Signature={SIG}"), "SignedHeaders must be a ';'-separated list of header names"),
    ] {
        let msg = incomplete(value);
        assert!(msg.starts_with(expected), "{value}: {msg}");
    }
}

#[test]
fn signature_version_2_is_refused_in_the_header_and_the_query() {
    let refused = |req: Request<'_>| {
        assert_eq!(sigv4::presence(&req), sigv4::Presence::SigV2, "{req:?}");
        let err = parse(&req).unwrap_err();
        assert_eq!(err, Error::UnsupportedAuthMechanism, "{req:?}");
        assert_eq!((err.code(), err.http_status()), ("InvalidRequest", 400));
        assert_eq!(
            err.to_string(),
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
        );
    };
    refused(
        Request::new("GET", "/pics/a.jpg").header("authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl"),
    );
    // S3's SigV2 presigned URL, with a 100-year expiry: refused whatever it says.
    refused(Request::new(
        "GET",
        "/pics/a.jpg?AWSAccessKeyId=AKIDEXAMPLE&Expires=4102444800&Signature=c2lnbmF0dXJl",
    ));
    refused(Request::new(
        "PUT",
        "/pics/a.jpg?AWSAccessKeyId=AKIDEXAMPLE&Expires=4102444800&Signature=x%3D",
    ));
    // Percent-encoded names are the same names.
    refused(Request::new(
        "GET",
        "/pics/a.jpg?AWSAccessKeyId=AKID&Expires=1&%53ignature=x",
    ));
    // The Query APIs' SigV2.
    refused(Request::new(
        "GET",
        "/?Action=GetCallerIdentity&SignatureVersion=2&SignatureMethod=HmacSHA256&AWSAccessKeyId=AKID&Signature=x",
    ));
    // Both versions at once: still SigV2, still refused.
    refused(Request::new(
        "GET",
        &format!("/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CRED}&Signature=x"),
    ));
}

#[test]
fn percent_encoded_presign_names_are_presigned() {
    // `X-Amz%2DSignature` is `X-Amz-Signature`: the request is signed, and parsed as such.
    let query = format!(
        "X-Amz%2DAlgorithm=AWS4-HMAC-SHA256&X-Amz%2DCredential={}&X-Amz%2DDate=20240101T000000Z&X-Amz%2DExpires=315360000&X-Amz%2DSignedHeaders=host&X-Amz%2DSignature={SIG}",
        CRED.replace('/', "%2F")
    );
    let target = format!("/pics/a.jpg?{query}");
    let req = Request::new("GET", &target).header("host", "localhost");
    assert_eq!(
        sigv4::presence(&req),
        sigv4::Presence::SigV4 {
            header: false,
            query: true
        }
    );
    // Parsed with the decoded names, so the 10-year expiry is refused as AWS refuses it.
    let err = parse(&req).unwrap_err();
    assert_eq!(err.code(), "IncompleteSignature", "{err}");
    assert!(
        err.to_string()
            .starts_with("X-Amz-Expires must be less than a week"),
        "{err}"
    );
    for anonymous in [
        "/pics/a.jpg",
        "/pics/a.jpg?list-type=2&prefix=X-Amz-Signature",
        "/?Action=AssumeRoleWithWebIdentity",
    ] {
        assert_eq!(
            sigv4::presence(&Request::new("GET", anonymous)),
            sigv4::Presence::Anonymous,
            "{anonymous}"
        );
    }
}

#[test]
fn binary_garbage_and_huge_headers() {
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert_eq!(
        with_auth(&garbage).unwrap_err().code(),
        "IncompleteSignature"
    );
    let mut prefixed = b"AWS4-HMAC-SHA256 Credential=\xff\xfe".to_vec();
    prefixed.extend_from_slice(&garbage);
    assert_eq!(
        with_auth(&prefixed).unwrap_err().code(),
        "IncompleteSignature"
    );

    let huge = format!(
        "AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/sts/aws4_request, SignedHeaders={}, Signature={}",
        "A".repeat(1 << 20),
        "h;".repeat(1 << 18),
        "f".repeat(1 << 20)
    );
    let err = with_auth(huge.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "IncompleteSignature");
    assert!(err.to_string().len() < 1024, "message is bounded");

    let huge_sig = format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x-amz-date, Signature={}",
        "f".repeat(1 << 20)
    );
    assert_eq!(
        with_auth(huge_sig.as_bytes()).unwrap_err().code(),
        "SignatureDoesNotMatch"
    );
    let bad_hex = format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x-amz-date, Signature=zz{}",
        &SIG[2..]
    );
    assert_eq!(
        with_auth(bad_hex.as_bytes()).unwrap_err().code(),
        "SignatureDoesNotMatch"
    );
}

#[test]
fn bad_dates() {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x-amz-date, Signature={SIG}"
    );
    for date in [
        "2024-01-01T00:00:00Z",
        "20240101",
        "",
        "20241301T000000Z",
        "tomorrow",
    ] {
        let req = Request::new("POST", "/")
            .header("host", "h")
            .header("x-amz-date", date)
            .header("authorization", auth.as_str());
        let err = parse(&req).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Date must be in ISO-8601 'basic format'. Got '"),
            "{date}: {err}"
        );
    }
    // The HTTP Date header is accepted when X-Amz-Date is absent.
    let req = Request::new("POST", "/")
        .header("host", "h")
        .header("date", "Mon, 01 Jan 2024 00:00:00 GMT")
        .header("authorization", auth.as_str());
    assert_eq!(
        parse(&req).unwrap().request_time(),
        datetime!(2024-01-01 00:00:00 UTC)
    );
    let two = Request::new("POST", "/")
        .header("host", "h")
        .header("x-amz-date", "20240101T000000Z")
        .header("x-amz-date", "20240101T000000Z")
        .header("authorization", auth.as_str());
    assert_eq!(parse(&two).unwrap_err().code(), "IncompleteSignature");
}

#[test]
fn malformed_presigned_queries() {
    let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let check = |query: &str| -> String {
        let target = format!("/k?{query}");
        let req = Request::new("GET", &target).header("host", "h");
        let err = match parse(&req) {
            Err(e) => e,
            Ok(signed) => signed
                .verify(
                    &SigningSecret {
                        secret_access_key: "s",
                        session_token: None,
                    },
                    datetime!(2024-01-01 00:00:00 UTC),
                )
                .unwrap_err(),
        };
        err.to_string()
    };
    for (name, message) in [
        (
            "X-Amz-Algorithm",
            "AWS query-string parameters must include 'X-Amz-Algorithm'.",
        ),
        (
            "X-Amz-Credential",
            "AWS query-string parameters must include 'X-Amz-Credential'.",
        ),
        (
            "X-Amz-Date",
            "AWS query-string parameters must include 'X-Amz-Date'.",
        ),
        (
            "X-Amz-SignedHeaders",
            "AWS query-string parameters must include 'X-Amz-SignedHeaders'.",
        ),
        (
            "X-Amz-Signature",
            "AWS query-string parameters must include 'X-Amz-Signature'.",
        ),
        (
            "X-Amz-Expires",
            "AWS query-string parameters must include 'X-Amz-Expires'.",
        ),
    ] {
        let query: Vec<&str> = base
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect();
        let msg = check(&query.join("&"));
        assert!(msg.starts_with(message), "{name}: {msg}");
    }
    for (replace, message) in [
        (
            ("X-Amz-Expires=60", "X-Amz-Expires=604801"),
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ),
        (
            ("X-Amz-Expires=60", "X-Amz-Expires=-1"),
            "X-Amz-Expires should be a number",
        ),
        (
            ("X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999999"),
            "X-Amz-Expires must be less than a week",
        ),
        (
            ("X-Amz-Expires=60", "X-Amz-Expires=0"),
            "X-Amz-Expires must be non-negative and non-zero",
        ),
        (
            (
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256",
            ),
            "Unsupported AWS 'algorithm'",
        ),
        (
            ("X-Amz-Date=20240101T000000Z", "X-Amz-Date=2024"),
            "Date must be in ISO-8601 'basic format'. Got '2024'.",
        ),
        (
            ("X-Amz-Credential=AKID%2F", "X-Amz-Credential=AKID%2Fxx%2F"),
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            (
                "X-Amz-Signature=00",
                "X-Amz-Signature=00&X-Amz-Signature=01",
            ),
            "AWS query-string parameter 'X-Amz-Signature' must appear only once.",
        ),
        (
            ("X-Amz-Credential=AKID", "X-Amz-Credential=%FF%FE"),
            "Query-string parameter 'X-Amz-Credential' is not valid UTF-8.",
        ),
    ] {
        let msg = check(&base.replace(replace.0, replace.1));
        assert!(msg.starts_with(message), "{replace:?}: {msg}");
    }
    // Header and query authentication together.
    let target = format!("/k?{base}");
    let req = Request::new("GET", &target)
        .header("host", "h")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x");
    assert!(parse(&req)
        .unwrap_err()
        .to_string()
        .starts_with("Only one auth mechanism allowed"));
    // A well-formed presigned URL with a wrong signature.
    assert!(
        check(base).starts_with("The request signature we calculated does not match"),
        "{}",
        check(base)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_authorization_headers_never_panic(value in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = with_auth(&value);
    }

    #[test]
    fn random_sigv4_like_headers_never_panic(
        alg in prop_oneof![Just("AWS4-HMAC-SHA256".to_string()), "[A-Z0-9-]{0,20}"],
        parts in proptest::collection::vec("(Credential|SignedHeaders|Signature|X)?=?[ -~]{0,40}", 0..6),
        sep in prop_oneof![Just(", "), Just(","), Just(" "), Just(";")],
    ) {
        let value = format!("{alg} {}", parts.join(sep));
        let _ = with_auth(value.as_bytes());
    }

    #[test]
    fn random_queries_and_paths_never_panic(
        path in "[ -~]{0,60}",
        query in "((X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token))|[a-z%0-9]{0,5})=[ -~]{0,30}(&[ -~]{0,20}){0,4}",
        date in "[0-9TZ]{0,17}",
    ) {
        let target = format!("/{path}?{query}");
        let req = Request::new("GET", &target).header("host", "h").header("x-amz-date", date.as_str());
        if let Ok(signed) = parse(&req) {
            for service in ["s3", "sts"] {
                let _ = signed.verify_with(
                    &SigningSecret { secret_access_key: "s", session_token: Some("t") },
                    datetime!(2024-01-01 00:00:00 UTC),
                    &sigv4::VerifyOptions::for_service(service),
                );
            }
        }
    }
}
