//! `rolechain up --iam-propagation-delay`: a role created with the AWS CLI cannot be assumed
//! until the delay has passed (seed 004's eventual-consistency failure), while IAM shows it at
//! once.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Long enough for AWS CLI calls (each a Python start-up) on a loaded machine to fit in it.
const DELAY: Duration = Duration::from_secs(10);

#[test]
fn a_bad_delay_is_a_usage_error() {
    let out = rolechain(&["up", "--iam-propagation-delay", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid duration 'soon'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_zero_eks_auth_rate_limit_is_a_usage_error() {
    let out = rolechain(&["up", "--eks-auth-rate-limit", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--eks-auth-rate-limit"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn up_shows_iam_changes_to_sts_only_after_the_delay() {
    let dir = TempDir::new("propagation");
    let up = Up::start(
        &dir.path().join("data"),
        &["--iam-propagation-delay", "10s"],
    );
    assert!(
        up.banner
            .iter()
            .any(|l| l.contains("IAM changes reach STS 10s after they are made")),
        "{:?}",
        up.banner
    );
    if python().is_none() {
        return;
    }
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/admin"},"Action":"sts:AssumeRole"}]}"#;
    let began = Instant::now();
    let created = up
        .aws(
            Some("default"),
            &[
                "iam",
                "create-role",
                "--role-name",
                "fresh",
                "--assume-role-policy-document",
                trust,
            ],
        )
        .unwrap();
    let returned = Instant::now();
    assert!(created.status.success(), "{}", stderr(&created));
    let mut refused = 0;
    loop {
        let asked = Instant::now();
        let out = up
            .aws(
                Some("default"),
                &[
                    "sts",
                    "assume-role",
                    "--role-arn",
                    "arn:aws:iam::111111111111:role/fresh",
                    "--role-session-name",
                    "pod",
                ],
            )
            .unwrap();
        if began.elapsed() < DELAY {
            // What AWS answers for a role STS cannot see yet.
            assert!(!out.status.success(), "assumed before the delay passed");
            assert!(
                stderr(&out).contains("(AccessDenied) when calling the AssumeRole operation: User: arn:aws:iam::111111111111:user/admin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/fresh"),
                "{}",
                stderr(&out)
            );
            refused += 1;
        }
        if asked.duration_since(returned) >= DELAY {
            assert!(out.status.success(), "{}", stderr(&out));
            break;
        }
        if refused == 1 {
            // IAM reads its own write at once, while STS does not see it yet.
            let got = up
                .aws(
                    Some("default"),
                    &["iam", "get-role", "--role-name", "fresh"],
                )
                .unwrap();
            assert!(got.status.success(), "{}", stderr(&got));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(refused > 0, "never asked before the delay passed");
}

#[test]
fn up_throttles_eks_auth_beyond_the_rate_limit() {
    let dir = TempDir::new("eks-auth-rate");
    // No examples: their start-up check would spend this second's EKS Auth call.
    let up = Up::start(
        &dir.path().join("data"),
        &["--eks-auth-rate-limit", "1", "--no-examples"],
    );
    let Some(python) = python() else {
        return;
    };
    // One process, so the calls come faster than one a second; no retries, so each answer is
    // the twin's own. The throttle is checked before the token, so a bogus token will do.
    let script = r#"
import boto3, botocore.config, botocore.exceptions
client = boto3.Session(profile_name="developer").client(
    "eks-auth", config=botocore.config.Config(retries={"total_max_attempts": 1}))
for _ in range(5):
    try:
        client.assume_role_for_pod_identity(clusterName="development-cluster", token="x")
        print("OK")
    except botocore.exceptions.ClientError as e:
        print(e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .env("HOME", &up.data_dir)
        .env("AWS_CONFIG_FILE", up.data_dir.join("aws/config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            up.data_dir.join("aws/credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let answers = stdout(&out);
    let codes: Vec<&str> = answers.lines().collect();
    assert_eq!(codes.len(), 5, "{answers}");
    assert_ne!(codes[0], "ThrottlingException 429", "{answers}");
    assert!(
        codes.contains(&"ThrottlingException 429"),
        "no call was throttled: {answers}"
    );
}
