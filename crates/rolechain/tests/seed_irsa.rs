//! Seed 002's IRSA set-up replayed with the AWS CLI against `rolechain up`, as a user would after
//! exporting the lines `up` prints: an OIDC provider for the local cluster's issuer, the policy,
//! the role trusting `:aud` and `:sub`, then the pod's `assume-role-with-web-identity` with a
//! token from `rolechain cluster token`. A token for another service account is refused, and
//! `rolechain explain --last-denied` names the `:sub` condition that failed.

mod support;

use serde_json::Value;
use support::*;

const ACCOUNT: &str = "111111111111";

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

    let pod_token = up.pod_token("my-service-account");
    let issuer = issuer_of(&pod_token);
    let oidc_provider = issuer.trim_start_matches("http://").to_string();
    let files = dir.path();

    // The cluster's OIDC provider (seed 002 uses eksctl; this is its AWS CLI equivalent).
    let created = ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
        ],
    ));
    let provider_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc_provider}");
    assert_eq!(created["OpenIDConnectProviderArn"], provider_arn.as_str());
    let listed = ok_json(up.aws(
        Some("developer"),
        &["iam", "list-open-id-connect-providers"],
    ));
    assert!(listed.to_string().contains(&provider_arn), "{listed}");

    let policy_file = file_arg(
        files,
        "my-test-policy.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::my-test-bucket","arn:aws:s3:::my-test-bucket/*"]}]}"#,
    );
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "my-test-policy",
            "--policy-document",
            &policy_file,
        ],
    ));
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
    let trust_file = file_arg(files, "trust-relationship.json", &trust);
    ok_json(up.aws(
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
    ));
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
    let stored_trust = ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "get-role",
            "--role-name",
            "my-test-role",
            "--query",
            "Role.AssumeRolePolicyDocument",
        ],
    ));
    let written: Value = serde_json::from_str(&trust).unwrap();
    assert_eq!(stored_trust, written);

    // The pod: no credentials, only its projected token.
    let token_file = file_arg(files, "token", &pod_token);
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/my-test-role");
    let assumed = ok_json(up.assume_role_with_web_identity(&role_arn, "awscli-pod", &token_file));
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
    let other_file = file_arg(files, "other-token", &up.pod_token("other"));
    let refused = up
        .assume_role_with_web_identity(&role_arn, "awscli-pod", &other_file)
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
    // The lines README.md shows for this denial.
    assert!(
        text.starts_with("Decision #") && text.contains(" by the twin's sts at "),
        "{text}"
    );
    assert!(
        text.contains(&format!("  caller: web identity from {provider_arn}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Closest to allowing: statement 0 of resource policy '{role_arn} (trust policy)': condition StringEquals on {oidc_provider}:sub expects [\"system:serviceaccount:default:my-service-account\"] but the request has [\"system:serviceaccount:default:other\"]."
        )),
        "{text}"
    );

    let as_json = rolechain(&["explain", "--last-denied", "--json", "--twin", &up.base_url]);
    assert_eq!(as_json.status.code(), Some(1));
    let entry: Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(entry["verdict"], "implicit-deny");
    assert_eq!(entry["action"], "sts:AssumeRoleWithWebIdentity");

    // A token for another audience never reaches the trust policy: the refusal is logged and
    // explained as the step that failed.
    let pod_identity_token = cluster_token(
        &up.data_dir,
        "my-service-account",
        &["--audience", "pods.eks.amazonaws.com"],
    );
    let wrong_file = file_arg(files, "pod-identity-token", &pod_identity_token);
    let refused = up
        .assume_role_with_web_identity(&role_arn, "awscli-pod", &wrong_file)
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
