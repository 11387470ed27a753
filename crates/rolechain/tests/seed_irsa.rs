//! Seed 002's IRSA set-up replayed with the AWS CLI against `rolechain up`, as a user would after
//! exporting the lines `up` prints: an OIDC provider for the local cluster's issuer, the policy,
//! the role trusting `:aud` and `:sub`, then the pod's `assume-role-with-web-identity` with a
//! token from `rolechain cluster token`. A token for another service account is refused, and
//! `rolechain explain --last-denied` names the `:sub` condition that failed.

mod support;

use serde_json::Value;
use support::*;

const ACCOUNT: &str = "111111111111";

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "aws failed: {}\n{}",
        stderr(out),
        stdout(out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn token(up: &Up, service_account: &str) -> String {
    let out = rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        &up.data_dir.display().to_string(),
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        service_account,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn issuer_of(token: &str) -> String {
    use base64::Engine as _;
    let claims = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    claims["iss"].as_str().unwrap().to_string()
}

#[test]
fn seed_002_irsa_with_the_aws_cli_and_the_last_denial_explained() {
    let dir = TempDir::new("seed-irsa");
    let up = Up::start(&dir.path().join("data"), &[]);
    if python().is_none() {
        return;
    }

    // Nothing denied yet.
    let none = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(stdout(&none).contains("has recorded no denial"));

    let pod_token = token(&up, "my-service-account");
    let issuer = issuer_of(&pod_token);
    let oidc_provider = issuer.trim_start_matches("http://").to_string();
    let files = dir.path();

    // The cluster's OIDC provider (seed 002 uses eksctl; this is its AWS CLI equivalent).
    let created = json(
        &up.aws(
            Some("developer"),
            &[
                "iam",
                "create-open-id-connect-provider",
                "--url",
                &issuer,
                "--client-id-list",
                "sts.amazonaws.com",
            ],
        )
        .unwrap(),
    );
    let provider_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc_provider}");
    assert_eq!(created["OpenIDConnectProviderArn"], provider_arn.as_str());
    let listed = json(
        &up.aws(
            Some("developer"),
            &["iam", "list-open-id-connect-providers"],
        )
        .unwrap(),
    );
    assert!(listed.to_string().contains(&provider_arn), "{listed}");

    std::fs::write(
        files.join("my-test-policy.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::my-test-bucket","arn:aws:s3:::my-test-bucket/*"]}]}"#,
    )
    .unwrap();
    let policy_file = format!("file://{}", files.join("my-test-policy.json").display());
    json(
        &up.aws(
            Some("developer"),
            &[
                "iam",
                "create-policy",
                "--policy-name",
                "my-test-policy",
                "--policy-document",
                &policy_file,
            ],
        )
        .unwrap(),
    );
    let account = up
        .aws(
            Some("developer"),
            &[
                "sts",
                "get-caller-identity",
                "--query",
                "Account",
                "--output",
                "text",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&account).trim(), ACCOUNT, "{}", stderr(&account));

    let trust = format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
      "Principal": {{ "Federated": "arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc_provider}" }},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {{
        "StringEquals": {{
          "{oidc_provider}:aud": "sts.amazonaws.com",
          "{oidc_provider}:sub": "system:serviceaccount:default:my-service-account"
        }}
      }}
    }}
  ]
}}"#
    );
    std::fs::write(files.join("trust-relationship.json"), &trust).unwrap();
    let trust_file = format!("file://{}", files.join("trust-relationship.json").display());
    json(
        &up.aws(
            Some("developer"),
            &[
                "iam",
                "create-role",
                "--role-name",
                "my-test-role",
                "--assume-role-policy-document",
                &trust_file,
                "--description",
                "my-irsa-role",
            ],
        )
        .unwrap(),
    );
    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/my-test-policy");
    let attach_arg = format!("--policy-arn={policy_arn}");
    let attached = up
        .aws(
            Some("developer"),
            &[
                "iam",
                "attach-role-policy",
                "--role-name",
                "my-test-role",
                &attach_arg,
            ],
        )
        .unwrap();
    assert!(attached.status.success(), "{}", stderr(&attached));
    let listed = up
        .aws(
            Some("developer"),
            &[
                "iam",
                "list-attached-role-policies",
                "--role-name",
                "my-test-role",
                "--query",
                "AttachedPolicies[].PolicyArn",
                "--output",
                "text",
            ],
        )
        .unwrap();
    assert_eq!(stdout(&listed).trim(), policy_arn);
    let stored_trust = json(
        &up.aws(
            Some("developer"),
            &[
                "iam",
                "get-role",
                "--role-name",
                "my-test-role",
                "--query",
                "Role.AssumeRolePolicyDocument",
            ],
        )
        .unwrap(),
    );
    let written: Value = serde_json::from_str(&trust).unwrap();
    assert_eq!(stored_trust, written);

    // The pod: no credentials, only its projected token.
    std::fs::write(files.join("token"), &pod_token).unwrap();
    let token_file = format!("file://{}", files.join("token").display());
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/my-test-role");
    let assumed = json(
        &up.aws(
            None,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &role_arn,
                "--role-session-name",
                "awscli-pod",
                "--web-identity-token",
                &token_file,
            ],
        )
        .unwrap(),
    );
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/my-test-role/awscli-pod").as_str()
    );
    assert_eq!(
        assumed["SubjectFromWebIdentityToken"],
        "system:serviceaccount:default:my-service-account"
    );
    assert!(assumed["Credentials"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .starts_with("ASIA"));

    // Another service account's token: refused, and the refusal explained.
    std::fs::write(files.join("other-token"), token(&up, "other")).unwrap();
    let other_file = format!("file://{}", files.join("other-token").display());
    let refused = up
        .aws(
            None,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &role_arn,
                "--role-session-name",
                "awscli-pod",
                "--web-identity-token",
                &other_file,
            ],
        )
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("AccessDenied")
            && stderr(&refused).contains("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{}",
        stderr(&refused)
    );

    let explained = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
    assert_eq!(explained.status.code(), Some(1), "{}", stderr(&explained));
    let text = stdout(&explained);
    assert!(
        text.contains("DENY (implicit): sts:AssumeRoleWithWebIdentity on arn:aws:iam::111111111111:role/my-test-role"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{oidc_provider}:sub"))
            && text.contains("system:serviceaccount:default:other")
            && text.contains("Closest to allowing"),
        "{text}"
    );

    let as_json = rolechain(&["explain", "--last-denied", "--json", "--twin", &up.base_url]);
    assert_eq!(as_json.status.code(), Some(1));
    let entry: Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(entry["verdict"], "implicit-deny");
    assert_eq!(entry["action"], "sts:AssumeRoleWithWebIdentity");

    // A token for another audience never reaches the trust policy: the refusal is logged and
    // explained as the step that failed.
    let out = rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        &up.data_dir.display().to_string(),
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        "my-service-account",
        "--audience",
        "pods.eks.amazonaws.com",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(files.join("pod-identity-token"), stdout(&out).trim()).unwrap();
    let wrong_file = format!("file://{}", files.join("pod-identity-token").display());
    let refused = up
        .aws(
            None,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &role_arn,
                "--role-session-name",
                "awscli-pod",
                "--web-identity-token",
                &wrong_file,
            ],
        )
        .unwrap();
    assert!(
        stderr(&refused).contains("InvalidIdentityToken")
            && stderr(&refused).contains("Incorrect token audience"),
        "{}",
        stderr(&refused)
    );
    let explained = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
    assert_eq!(explained.status.code(), Some(1));
    let text = stdout(&explained);
    assert!(
        text.contains(
            "REFUSED: sts:AssumeRoleWithWebIdentity on arn:aws:iam::111111111111:role/my-test-role"
        ) && text.contains("Why: InvalidIdentityToken: Incorrect token audience")
            && text.contains(&format!("caller: web identity token from {issuer}")),
        "{text}"
    );
}

#[test]
fn last_denied_without_a_twin_says_where_it_looked() {
    // Port 9 (discard) on loopback: nothing listens there.
    let out = rolechain(&["explain", "--last-denied", "--twin", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("http://127.0.0.1:9") && err.contains("rolechain up"),
        "{err}"
    );
    let conflicting = rolechain(&["explain", "--last-denied", "--action", "s3:GetObject"]);
    assert_eq!(conflicting.status.code(), Some(2));
    assert!(stderr(&conflicting).contains("cannot be used with"));
}
