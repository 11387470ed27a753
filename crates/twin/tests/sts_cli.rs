//! The twin's STS driven by the AWS CLI and boto3, as the seed scenarios drive AWS: `aws sts
//! get-caller-identity`, seed 002's `aws sts assume-role-with-web-identity` with a token file and
//! no credentials, and boto3's `assume_role` refused in AWS's words.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (default `python3`), which must have awscli and
//! boto3. Without them the tests print a notice and pass, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod sts_support;

use std::process::Command;

use serde_json::Value;
use sts_support::*;

fn python() -> String {
    std::env::var("ROLECHAIN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// True when awscli and boto3 are importable; otherwise a notice, or a failure when peers are
/// required.
fn peers_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import awscli, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() != Ok("1"),
            "awscli/boto3 not importable by {} and ROLECHAIN_REQUIRE_PEERS=1",
            python()
        );
        eprintln!(
            "NOTICE: skipping: awscli/boto3 not importable by {} (set ROLECHAIN_PYTHON, or ROLECHAIN_REQUIRE_PEERS=1 to make this a failure)",
            python()
        );
    }
    ok
}

/// Runs `aws ARGS` with only the given credentials (none: an unsigned pod), isolated from the
/// machine's AWS configuration.
async fn aws(twin: &Twin, creds: Option<(&str, &str)>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "awscli",
        "--endpoint-url",
        &twin.base_url,
        "--output",
        "json",
    ])
    .args(args)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", twin.dir.path())
    .env("AWS_CONFIG_FILE", twin.dir.path().join("no-config"))
    .env(
        "AWS_SHARED_CREDENTIALS_FILE",
        twin.dir.path().join("no-credentials"),
    )
    .env("AWS_DEFAULT_REGION", "us-east-1")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("AWS_MAX_ATTEMPTS", "1");
    if let Some((key, secret)) = creds {
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_get_caller_identity_and_irsa_debugging_flow() {
    if !peers_available() {
        return;
    }
    let twin = start().await;
    let key = twin.dev_admin.access_key_id().to_string();
    let secret = twin.dev_admin.secret_access_key().to_string();

    // Seed 002: account_id=$(aws sts get-caller-identity --query "Account" --output text)
    let (ok, out, err) = aws(
        &twin,
        Some((&key, &secret)),
        &["sts", "get-caller-identity"],
    )
    .await;
    assert!(ok, "{err}");
    let id: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(id["Account"], DEV);
    assert_eq!(id["Arn"], "arn:aws:iam::111111111111:user/admin");
    assert!(id["UserId"].as_str().unwrap().starts_with("AIDA"));

    // Seed 000's check from inside the pod: no credentials, the projected token from a file.
    let token_file = twin.dir.path().join("token");
    std::fs::write(
        &token_file,
        token(&twin, "default", "s3-shared-content", "sts.amazonaws.com"),
    )
    .unwrap();
    let token_arg = format!("file://{}", token_file.display());
    let (ok, out, err) = aws(
        &twin,
        None,
        &[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            "arn:aws:iam::222222222222:role/s3-read-object",
            "--role-session-name",
            "x-account",
            "--web-identity-token",
            &token_arg,
            "--duration",
            "1500",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let creds: Value = serde_json::from_str(&out).unwrap();
    assert!(creds["Credentials"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .starts_with("ASIA"));
    assert_eq!(
        creds["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::222222222222:assumed-role/s3-read-object/x-account"
    );
    assert_eq!(creds["SubjectFromWebIdentityToken"], SHARED_SA_SUB);
    assert_eq!(creds["Audience"], "sts.amazonaws.com");

    // export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_SESSION_TOKEN=…; the CLI is now the
    // role.
    let session_key = creds["Credentials"]["AccessKeyId"].as_str().unwrap();
    let session_secret = creds["Credentials"]["SecretAccessKey"].as_str().unwrap();
    let session_token = creds["Credentials"]["SessionToken"].as_str().unwrap();
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "awscli",
        "--endpoint-url",
        &twin.base_url,
        "--output",
        "json",
    ])
    .args(["sts", "get-caller-identity"])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", twin.dir.path())
    .env("AWS_CONFIG_FILE", twin.dir.path().join("no-config"))
    .env(
        "AWS_SHARED_CREDENTIALS_FILE",
        twin.dir.path().join("no-credentials"),
    )
    .env("AWS_DEFAULT_REGION", "us-east-1")
    .env("AWS_ACCESS_KEY_ID", session_key)
    .env("AWS_SECRET_ACCESS_KEY", session_secret)
    .env("AWS_SESSION_TOKEN", session_token);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        id["Arn"],
        "arn:aws:sts::222222222222:assumed-role/s3-read-object/x-account"
    );

    // The wrong service account: the trust policy's sub condition fails.
    std::fs::write(
        &token_file,
        token(&twin, "default", "my-service-account", "sts.amazonaws.com"),
    )
    .unwrap();
    let (ok, _, err) = aws(
        &twin,
        None,
        &[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            "arn:aws:iam::222222222222:role/s3-read-object",
            "--role-session-name",
            "x-account",
            "--web-identity-token",
            &token_arg,
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_assume_role_chain_and_refusals() {
    if !peers_available() {
        return;
    }
    let twin = start().await;
    let script = r#"
import json, sys, boto3, botocore
endpoint, key, secret = sys.argv[1:4]
def client(**creds):
    return boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}), **creds)
out = {}
admin = client(aws_access_key_id=key, aws_secret_access_key=secret)
dev = admin.assume_role(RoleArn="arn:aws:iam::111111111111:role/dev", RoleSessionName="boto")
c = dev["Credentials"]
out["dev"] = dev["AssumedRoleUser"]["Arn"]
out["expiration_type"] = type(c["Expiration"]).__name__
session = client(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                 aws_session_token=c["SessionToken"])
pics = session.assume_role(RoleArn="arn:aws:iam::222222222222:role/S3_Pics", RoleSessionName="chain")
out["pics"] = pics["AssumedRoleUser"]["Arn"]
try:
    session.assume_role(RoleArn="arn:aws:iam::222222222222:role/S3_Pics", RoleSessionName="chain",
                        DurationSeconds=7200)
except botocore.exceptions.ClientError as e:
    out["chain_error"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
try:
    admin.assume_role(RoleArn="arn:aws:iam::111111111111:role/untrusting", RoleSessionName="no")
except botocore.exceptions.ClientError as e:
    out["denied"] = [e.response["Error"]["Code"], e.response["Error"]["Message"],
                     e.response["ResponseMetadata"]["HTTPStatusCode"]]
print(json.dumps(out))
"#;
    let base_url = twin.base_url.clone();
    let key = twin.dev_admin.access_key_id().to_string();
    let secret = twin.dev_admin.secret_access_key().to_string();
    let home = twin.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .args(["-c", script, &base_url, &key, &secret])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dev"], "arn:aws:sts::111111111111:assumed-role/dev/boto");
    assert_eq!(v["expiration_type"], "datetime");
    assert_eq!(
        v["pics"],
        "arn:aws:sts::222222222222:assumed-role/S3_Pics/chain"
    );
    assert_eq!(
        v["chain_error"],
        serde_json::json!([
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        ])
    );
    assert_eq!(
        v["denied"],
        serde_json::json!([
            "AccessDenied",
            "User: arn:aws:iam::111111111111:user/admin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/untrusting",
            403
        ])
    );
}
