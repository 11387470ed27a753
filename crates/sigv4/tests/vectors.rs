//! The AWS SigV4 test suite (the subset in `tests/vectors/`, see its README): every signed
//! request verifies, and the canonical request built by the verifier is the suite's.

use std::fs;
use std::path::Path;

use sigv4::{parse, Error, Request, ServiceRules, SigningSecret, VerifyOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

struct Parsed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The suite's request files: a request line, `Name:value` lines (a line starting with
/// whitespace continues the previous value), a blank line, the body.
fn parse_request(text: &str) -> Parsed {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b.as_bytes().to_vec()),
        None => (text, Vec::new()),
    };
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.to_owned(), v.trim_start().to_owned()));
        }
    }
    Parsed {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    }
}

fn field<'a>(json: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(json, |v, k| v.get(k))
}

#[test]
fn aws_sigv4_test_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v4");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut checked = 0;
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "get-space-normalized" {
            continue;
        }
        let ctx: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
        let secret_key = field(&ctx, &["credentials", "secret_access_key"])
            .unwrap()
            .as_str()
            .unwrap();
        let token = field(&ctx, &["credentials", "token"]).and_then(|t| t.as_str());
        let now = OffsetDateTime::parse(ctx["timestamp"].as_str().unwrap(), &Rfc3339).unwrap();
        let normalize = ctx["normalize"].as_bool().unwrap();
        let omit_token = ctx
            .get("omit_session_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let opts = VerifyOptions {
            rules: if normalize {
                ServiceRules::Standard
            } else {
                ServiceRules::S3
            },
            ..VerifyOptions::for_service("service")
        };

        for form in ["header", "query"] {
            if form == "query" && omit_token {
                continue;
            }
            let parsed = parse_request(
                &fs::read_to_string(dir.join(format!("{form}-signed-request.txt"))).unwrap(),
            );
            let mut req = Request::new(&parsed.method, &parsed.target).body(&parsed.body);
            for (n, v) in &parsed.headers {
                req = req.header(n, v.as_str());
            }
            let label = format!("{name} ({form})");
            let signed = parse(&req).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(signed.access_key_id(), "AKIDEXAMPLE", "{label}");
            let secret = SigningSecret {
                secret_access_key: secret_key,
                session_token: token,
            };
            // The unnormalized cases stand in for S3's path rules, but their presigned form
            // hashes the (empty) body where S3 signs `UNSIGNED-PAYLOAD`: only the canonical
            // request up to the payload line can be compared for them.
            let s3_payload_differs = !normalize && form == "query";
            if !s3_payload_differs {
                signed
                    .verify_with(&secret, now, &opts)
                    .unwrap_or_else(|e| panic!("{label}: {e:?}"));
            }

            // The same request with a wrong key shows the canonical request the verifier built.
            let wrong = SigningSecret {
                secret_access_key: "wrong",
                session_token: token,
            };
            let Err(Error::SignatureDoesNotMatch {
                detail: Some(detail),
                ..
            }) = signed.verify_with(&wrong, now, &opts)
            else {
                panic!("{label}: a wrong key verified")
            };
            let expected =
                fs::read_to_string(dir.join(format!("{form}-canonical-request.txt"))).unwrap();
            let expected = match token {
                Some(t) => expected
                    .replace(
                        &t.replace('/', "%2F")
                            .replace('+', "%2B")
                            .replace('=', "%3D"),
                        "<session-token>",
                    )
                    .replace(t, "<session-token>"),
                None => expected,
            };
            if s3_payload_differs {
                let cut = |s: &str| s[..s.rfind('\n').unwrap()].to_owned();
                assert_eq!(cut(&detail.canonical_request), cut(&expected), "{label}");
                assert!(
                    detail.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"),
                    "{label}"
                );
            } else {
                assert_eq!(detail.canonical_request, expected, "{label}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} vectors checked");
}
