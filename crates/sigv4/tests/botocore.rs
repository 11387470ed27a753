//! Requests signed by botocore (the AWS CLI's and boto3's signer) verify.
//!
//! `tests/botocore/sign_requests.py` signs real SDK calls without sending them. When `python3`
//! or botocore is missing the test says so and passes: the project's test script provides a
//! pinned botocore in a virtualenv and sets `ROLECHAIN_REQUIRE_PEERS=1` to make its absence a
//! failure.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use sigv4::{parse, SigningSecret};
use time::Duration;

#[test]
fn botocore_signed_requests_verify() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore/sign_requests.py");
    if !peers::available("botocore") {
        return;
    }
    let output = Command::new(peers::python())
        .arg(&script)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "the botocore signer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let requests = json["requests"].as_array().unwrap();
    assert!(requests.len() >= 16, "{} requests", requests.len());
    eprintln!("botocore {}: {} requests", json["botocore"], requests.len());

    let mut verified = 0;
    for r in requests {
        let name = r["name"].as_str().unwrap();
        let url = r["url"].as_str().unwrap();
        let after_scheme = url.split_once("://").unwrap().1;
        let target = &after_scheme[after_scheme.find('/').unwrap_or(after_scheme.len())..];
        let target = if target.is_empty() { "/" } else { target };
        let method = r["method"].as_str().unwrap();
        let body = base64::engine::general_purpose::STANDARD
            .decode(r["body_b64"].as_str().unwrap())
            .unwrap();
        let headers: Vec<(String, String)> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut req = sigv4::Request::new(method, target).body(&body);
        for (n, v) in &headers {
            req = req.header(n, v.as_str());
        }
        let secret = SigningSecret {
            secret_access_key: r["secret"].as_str().unwrap(),
            session_token: r["token"].as_str(),
        };
        let signed = parse(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
        let now = signed.request_time() + Duration::seconds(1);
        signed
            .verify(&secret, now)
            .unwrap_or_else(|e| panic!("{name} ({url}): {e:?}"));

        // And a one-character change to the path is caught.
        let tampered_target = format!("{}x", req.path);
        let mut bad = req.clone();
        bad.path = &tampered_target;
        let err = parse(&bad).unwrap().verify(&secret, now).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch", "{name}");
        verified += 1;
    }
    eprintln!("verified {verified} botocore-signed requests");
}
