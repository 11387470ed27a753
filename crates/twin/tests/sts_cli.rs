//! The twin's STS driven by the AWS CLI and boto3, as the seed scenarios drive AWS: `aws sts
//! get-caller-identity`, seed 002's `aws sts assume-role-with-web-identity` with a token file and
//! no credentials, and boto3's `assume_role` refused in AWS's words.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (default `python3`), which must have awscli and
//! boto3. Without them the tests print a notice and pass, unless `ROLECHAIN_REQUIRE_PEERS=1`
//! (see `common::aws_cli`).

mod common;
mod sts_support;

use common::aws_cli::{aws_cli, isolated_python, peers_available, with_credentials, Run};
use sts_support::*;

/// Runs `aws ARGS` against the twin with only the given credentials (key, secret, session
/// token; none: an unsigned pod), isolated from the machine's AWS configuration.
async fn aws(twin: &Twin, creds: Option<(&str, &str, Option<&str>)>, args: &[&str]) -> Run {
    let mut cmd = aws_cli(twin.dir.path());
    cmd.args(["--endpoint-url", &twin.base_url]).args(args);
    if let Some((key, secret, token)) = creds {
        with_credentials(&mut cmd, key, secret, token);
    }
    Run::run(cmd, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_get_caller_identity_and_irsa_debugging_flow() {
    if !peers_available("awscli, boto3") {
        return;
    }
    let twin = start().await;
    let key = twin.dev_admin.access_key_id().to_string();
    let secret = twin.dev_admin.secret_access_key().to_string();

    // Seed 002: account_id=$(aws sts get-caller-identity --query "Account" --output text)
    let id = aws(
        &twin,
        Some((&key, &secret, None)),
        &["sts", "get-caller-identity"],
    )
    .await
    .json();
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
    let creds = aws(
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
    .await
    .json();
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
    let id = aws(
        &twin,
        Some((session_key, session_secret, Some(session_token))),
        &["sts", "get-caller-identity"],
    )
    .await
    .json();
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
    let refused = aws(
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
    let err = refused.failure();
    assert!(
        err.contains("An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_assume_role_chain_and_refusals() {
    if !peers_available("awscli, boto3") {
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
    let mut cmd = isolated_python(twin.dir.path());
    cmd.args([
        "-c",
        script,
        &twin.base_url,
        twin.dev_admin.access_key_id(),
        twin.dev_admin.secret_access_key(),
    ]);
    let v = Run::run(cmd, None).await.json();
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
