//! A refused web identity token, explained: `rolechain explain --last-denied` shows what the
//! twin saw (the token's claims against its clock, the provider it looked for, the providers
//! the account has and their audiences), and never the token itself.

mod support;

use std::process::Command;

use support::*;

const ROLE: &str = "arn:aws:iam::111111111111:role/pod-role";

fn last_denied(up: &Up) -> String {
    let out = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn token_refusals_say_what_the_twin_saw() {
    let dir = TempDir::new("token-refusals");
    let data = dir.path().join("data");
    // No examples: the account starts without any OIDC provider.
    let up = Up::start(&data, &["--no-examples"]);
    if python().is_none() {
        return;
    }
    let token = up.pod_token("my-service-account");
    let file = dir.file("token", &token);
    let uri = format!("file://{file}");

    // No provider for the cluster's issuer in the role's account.
    let refused = up.assume_role_with_web_identity(ROLE, "pod", &uri).unwrap();
    assert!(
        stderr(&refused).contains("No OpenIDConnect provider found"),
        "{}",
        stderr(&refused)
    );
    let text = last_denied(&up);
    for expected in [
        "What the twin saw:",
        "token iss:",
        "/id/",
        "token aud:",
        "sts.amazonaws.com",
        "token sub:",
        "system:serviceaccount:default:my-service-account",
        "token exp:",
        "(in ",
        "token kid:",
        "provider looked for:",
        "arn:aws:iam::111111111111:oidc-provider/127.0.0.1:",
        "providers in 111111111111:",
        "none: create one for the token's issuer (rolechain cluster associate-oidc-provider)",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains(&token), "the token itself is shown:\n{text}");

    // A provider that accepts another audience only: its audiences are shown.
    let out = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args([
            "cluster",
            "associate-oidc-provider",
            "--audience",
            "pods.eks.amazonaws.com",
        ])
        .env("ROLECHAIN_DATA_DIR", &data)
        .env_remove("ROLECHAIN_ENDPOINT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = up.assume_role_with_web_identity(ROLE, "pod", &uri).unwrap();
    assert!(
        stderr(&refused).contains("Incorrect token audience"),
        "{}",
        stderr(&refused)
    );
    let text = last_denied(&up);
    assert!(
        text.contains("(audiences: pods.eks.amazonaws.com)"),
        "{text}"
    );
    assert!(!text.contains("[not yet visible to STS"), "{text}");
    assert!(
        text.contains("the provider accepts none of the token's audiences: add one (aws iam add-client-id-to-open-id-connect-provider"),
        "{text}"
    );
    let json = stdout(&rolechain(&[
        "explain",
        "--last-denied",
        "--json",
        "--twin",
        &up.base_url,
    ]));
    assert!(json.contains("\"name\": \"token aud\""), "{json}");
    assert!(
        !json.contains(&token),
        "the token itself is in the JSON:\n{json}"
    );

    // Not a token at all: said so, and still nothing of it echoed.
    let junk = dir.file("junk", "not-a-jwt-but-long-enough-to-pass-the-length-check");
    let refused = up
        .assume_role_with_web_identity(ROLE, "pod", &format!("file://{junk}"))
        .unwrap();
    assert!(!refused.status.success());
    let text = last_denied(&up);
    assert!(
        text.contains("token:") && text.contains("not readable"),
        "{text}"
    );
    assert!(!text.contains("not-a-jwt-but"), "{text}");
}

#[test]
fn a_provider_not_yet_propagated_is_named() {
    let dir = TempDir::new("token-propagation");
    let data = dir.path().join("data");
    let up = Up::start(&data, &["--iam-propagation-delay", "1h"]);
    if python().is_none() {
        return;
    }
    let token = up.pod_token("my-service-account");
    let uri = format!("file://{}", dir.file("token", &token));
    let out = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(["cluster", "associate-oidc-provider"])
        .env("ROLECHAIN_DATA_DIR", &data)
        .env_remove("ROLECHAIN_ENDPOINT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = up.assume_role_with_web_identity(ROLE, "pod", &uri).unwrap();
    assert!(
        stderr(&refused).contains("No OpenIDConnect provider found"),
        "{}",
        stderr(&refused)
    );
    let text = last_denied(&up);
    assert!(
        text.contains("(audiences: sts.amazonaws.com) [not yet visible to STS: IAM propagation]"),
        "{text}"
    );
}
