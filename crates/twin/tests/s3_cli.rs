//! The twin's S3 driven by the real AWS CLI (v1, botocore) over loopback HTTP, with the profile
//! shape `rolechain up` writes (path-style addressing): bucket and object round trips, seed
//! 000's `pics` bucket, and IAM's decisions with bucket policies: same account, cross account,
//! explicit deny, anonymous callers, and refused session credentials.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (with awscli). Without it the test prints a notice and
//! passes, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod sts_support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use sts_support::*;
use twin::{S3Service, VerdictFilter};

fn python() -> String {
    std::env::var("ROLECHAIN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn peers_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import awscli"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() != Ok("1"),
            "awscli not importable by {} and ROLECHAIN_REQUIRE_PEERS=1",
            python()
        );
        eprintln!("NOTICE: skipping: awscli not importable by {}", python());
    }
    ok
}

/// Who runs a command: access key, secret, session token; `None` for `--no-sign-request`.
type Creds = Option<(String, String, Option<String>)>;

struct Run {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    fn expect_ok(self) -> Self {
        assert!(self.ok, "command failed: {}", self.stderr);
        self
    }

    /// The AWS error code the CLI printed, e.g. `AccessDenied`.
    #[track_caller]
    fn error(&self) -> String {
        assert!(!self.ok, "expected a failure, got: {}", self.text());
        let code = self
            .stderr
            .split("An error occurred (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no error code in: {}", self.stderr));
        code.to_string()
    }
}

/// `aws ARGS` with a config file shaped like the one `rolechain up` writes (endpoint, region,
/// path-style S3), the given credentials and optional standard input.
async fn aws(twin: &Twin, creds: &Creds, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let config = twin.dir.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\ns3 =\n    addressing_style = path\n",
            twin.base_url
        ),
    )
    .unwrap();
    let mut cmd = Command::new(python());
    cmd.args(["-m", "awscli", "--output", "json"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", twin.dir.path())
        .env("AWS_CONFIG_FILE", &config)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            twin.dir.path().join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match creds {
        Some((key, secret, token)) => {
            cmd.env("AWS_ACCESS_KEY_ID", key)
                .env("AWS_SECRET_ACCESS_KEY", secret);
            if let Some(token) = token {
                cmd.env("AWS_SESSION_TOKEN", token);
            }
        }
        None => {
            cmd.arg("--no-sign-request");
        }
    }
    let input = stdin.map(<[u8]>::to_vec);
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = input {
            pipe.write_all(&input).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Run {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn admin(c: &aws_credential_types::Credentials) -> Creds {
    Some((
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        None,
    ))
}

/// Session credentials of `role_arn`, assumed with `creds` through the twin's STS.
async fn assume(twin: &Twin, creds: &Creds, role_arn: &str) -> Creds {
    let out = aws(
        twin,
        creds,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "s3-test",
        ],
        None,
    )
    .await
    .expect_ok()
    .json();
    let c = &out["Credentials"];
    Some((
        c["AccessKeyId"].as_str().unwrap().to_string(),
        c["SecretAccessKey"].as_str().unwrap().to_string(),
        Some(c["SessionToken"].as_str().unwrap().to_string()),
    ))
}

async fn start_with_s3() -> Twin {
    start_with(|server, store, _sts| {
        let s3 = S3Service::new(Arc::clone(store), server.decisions().clone());
        server.register_streaming(Arc::new(s3)).unwrap();
    })
    .await
}

const GET_CAT: [&str; 6] = [
    "s3api",
    "get-object",
    "--bucket",
    "pics",
    "--key",
    "indoor-cat.jpg",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_buckets_and_objects_round_trip() {
    if !peers_available() {
        return;
    }
    let twin = start_with_s3().await;
    let dev = admin(&twin.dev_admin);
    let shared = admin(&twin.shared_admin);
    let out_file = twin.dir.path().join("mypic.jpg");
    let out = out_file.to_str().unwrap();

    // Seed 000's object, as its walkthrough downloads it.
    let head = aws(&twin, &shared, &[&GET_CAT[..], &[out]].concat(), None)
        .await
        .expect_ok()
        .json();
    assert_eq!(head["ContentType"], "image/jpeg");
    let picture = std::fs::read(&out_file).unwrap();
    assert_eq!(&picture[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    assert_eq!(head["ContentLength"].as_u64(), Some(picture.len() as u64));

    // The developer account's own bucket.
    aws(
        &twin,
        &dev,
        &["s3api", "create-bucket", "--bucket", "dev-bucket"],
        None,
    )
    .await
    .expect_ok();
    let again = aws(
        &twin,
        &dev,
        &["s3api", "create-bucket", "--bucket", "pics"],
        None,
    )
    .await;
    assert_eq!(again.error(), "BucketAlreadyExists");
    aws(
        &twin,
        &dev,
        &["s3", "cp", "-", "s3://dev-bucket/greetings/hello.txt"],
        Some(b"Hello\n"),
    )
    .await
    .expect_ok();
    let listing = aws(&twin, &dev, &["s3", "ls"], None)
        .await
        .expect_ok()
        .text();
    assert!(listing.contains("dev-bucket"), "{listing}");
    assert!(
        !listing.contains("pics"),
        "another account's bucket: {listing}"
    );
    let listing = aws(&twin, &dev, &["s3", "ls", "s3://dev-bucket/"], None)
        .await
        .expect_ok()
        .text();
    assert!(listing.contains("PRE greetings/"), "{listing}");
    let listing = aws(
        &twin,
        &dev,
        &["s3", "ls", "--recursive", "s3://dev-bucket/"],
        None,
    )
    .await
    .expect_ok()
    .text();
    assert!(listing.contains("6 greetings/hello.txt"), "{listing}");
    let got = aws(
        &twin,
        &dev,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "dev-bucket",
            "--key",
            "greetings/hello.txt",
            "/dev/stdout",
        ],
        None,
    )
    .await
    .expect_ok()
    .text();
    assert!(got.starts_with("Hello\n"), "{got}");
    let head = aws(
        &twin,
        &dev,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "dev-bucket",
            "--key",
            "greetings/hello.txt",
        ],
        None,
    )
    .await
    .expect_ok()
    .json();
    // MD5 of "Hello\n".
    assert_eq!(head["ETag"], "\"09f7e02f1290be211da707a266f153b3\"");
    let missing = aws(
        &twin,
        &dev,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "dev-bucket",
            "--key",
            "nope",
            out,
        ],
        None,
    )
    .await;
    assert_eq!(missing.error(), "NoSuchKey");
    let not_empty = aws(
        &twin,
        &dev,
        &["s3api", "delete-bucket", "--bucket", "dev-bucket"],
        None,
    )
    .await;
    assert_eq!(not_empty.error(), "BucketNotEmpty");
    aws(
        &twin,
        &dev,
        &["s3", "rm", "s3://dev-bucket/greetings/hello.txt"],
        None,
    )
    .await
    .expect_ok();
    aws(
        &twin,
        &dev,
        &["s3api", "delete-bucket", "--bucket", "dev-bucket"],
        None,
    )
    .await
    .expect_ok();
    let gone = aws(&twin, &dev, &["s3", "ls", "s3://dev-bucket/"], None).await;
    assert!(gone.stderr.contains("NoSuchBucket"), "{}", gone.stderr);

    // Bucket policies: validated, and kept.
    let bad = aws(
        &twin,
        &shared,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            "pics",
            "--policy",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::elsewhere/*"}]}"#,
        ],
        None,
    )
    .await;
    assert_eq!(bad.error(), "MalformedPolicy");
    assert!(bad.stderr.contains("Policy has invalid resource"));
    let none = aws(
        &twin,
        &shared,
        &["s3api", "get-bucket-policy", "--bucket", "pics"],
        None,
    )
    .await;
    assert_eq!(none.error(), "NoSuchBucketPolicy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_decides_s3_with_bucket_policies() {
    if !peers_available() {
        return;
    }
    let twin = start_with_s3().await;
    let dev_admin = admin(&twin.dev_admin);
    let shared_admin = admin(&twin.shared_admin);
    let out_file = twin.dir.path().join("out.jpg");
    let out = out_file.to_str().unwrap();
    let get_cat = [&GET_CAT[..], &[out]].concat();
    // The developer account's `dev` role may read pics by its own policy (one side of a
    // cross-account grant); `dev-no-policy` has no S3 permission at all.
    twin.store
        .put_role_policy(
            DEV,
            "dev",
            "read-pics",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
        )
        .unwrap();

    // Same account: the shared account's S3_Pics session reads by its identity policy alone.
    let pics_session = assume(
        &twin,
        &dev_admin,
        &format!("arn:aws:iam::{SHARED}:role/S3_Pics"),
    )
    .await;
    aws(&twin, &pics_session, &get_cat, None).await.expect_ok();
    // ... and nothing its policy does not name.
    let list = aws(&twin, &pics_session, &["s3", "ls", "s3://pics/"], None).await;
    assert!(list.stderr.contains("AccessDenied"), "{}", list.stderr);

    // Cross account: the role's policy alone is not enough ...
    let dev_session = assume(&twin, &dev_admin, &format!("arn:aws:iam::{DEV}:role/dev")).await;
    let denied = aws(&twin, &dev_session, &get_cat, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    assert!(
        denied
            .stderr
            .contains("because no resource-based policy allows the s3:GetObject action"),
        "{}",
        denied.stderr
    );
    // ... the bucket policy must allow too; it names both developer roles, and the one
    // without an identity policy is still refused.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"DevRead","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{DEV}:role/dev","arn:aws:iam::{DEV}:role/dev-no-policy"]}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}},
            {{"Sid":"Public","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/public/*"}},
            {{"Sid":"NoCatForPics","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{SHARED}:role/S3_Pics"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/indoor-cat.jpg"}}]}}"#
    );
    // Another account cannot manage the bucket's policy (its admin has s3:* by identity policy,
    // but no bucket policy grants it): S3's AccessDenied.
    let foreign = aws(
        &twin,
        &dev_admin,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            "pics",
            "--policy",
            &policy,
        ],
        None,
    )
    .await;
    assert_eq!(foreign.error(), "AccessDenied");
    aws(
        &twin,
        &shared_admin,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            "pics",
            "--policy",
            &policy,
        ],
        None,
    )
    .await
    .expect_ok();
    aws(&twin, &dev_session, &get_cat, None).await.expect_ok();
    let no_policy_session = assume(
        &twin,
        &dev_admin,
        &format!("arn:aws:iam::{DEV}:role/dev-no-policy"),
    )
    .await;
    let denied = aws(&twin, &no_policy_session, &get_cat, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    assert!(
        denied
            .stderr
            .contains("because no identity-based policy allows the s3:GetObject action"),
        "{}",
        denied.stderr
    );

    // An explicit deny in the bucket policy wins over the identity policy's allow.
    let denied = aws(&twin, &pics_session, &get_cat, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    assert!(
        denied
            .stderr
            .contains("with an explicit deny in a resource-based policy"),
        "{}",
        denied.stderr
    );

    // Anonymous: refused, except where the bucket policy allows everyone.
    let denied = aws(&twin, &None, &get_cat, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    aws(
        &twin,
        &shared_admin,
        &["s3", "cp", "-", "s3://pics/public/hello.txt"],
        Some(b"Hello\n"),
    )
    .await
    .expect_ok();
    let public = aws(
        &twin,
        &None,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "pics",
            "--key",
            "public/hello.txt",
            out,
        ],
        None,
    )
    .await;
    public.expect_ok();
    assert_eq!(std::fs::read(&out_file).unwrap(), b"Hello\n");

    // Session credentials that are not valid (anymore) are refused before any decision.
    let (key, secret, _) = dev_session.clone().unwrap();
    let forged = Some((key, secret, Some("not-the-token".to_string())));
    assert_eq!(
        aws(&twin, &forged, &get_cat, None).await.error(),
        "InvalidToken"
    );
    let ephemeral = assume(
        &twin,
        &dev_admin,
        &format!("arn:aws:iam::{DEV}:role/ephemeral"),
    )
    .await;
    twin.store.delete_role(DEV, "ephemeral").unwrap();
    let refused = aws(&twin, &ephemeral, &get_cat, None).await;
    assert!(
        ["InvalidAccessKeyId", "ExpiredToken"].contains(&refused.error().as_str()),
        "{}",
        refused.stderr
    );
    let (key, _, token) = dev_session.unwrap();
    let wrong_secret = Some((key, "x".repeat(40), token));
    assert_eq!(
        aws(&twin, &wrong_secret, &get_cat, None).await.error(),
        "SignatureDoesNotMatch"
    );

    // Every decision, allowed or denied, is in the log with its trace.
    let denials = twin.decisions.recent(100, VerdictFilter::Deny);
    let s3_denials: Vec<_> = denials.iter().filter(|d| d.service == "s3").collect();
    assert!(s3_denials
        .iter()
        .any(|d| d.caller == "anonymous" && d.action == "s3:GetObject"));
    assert!(s3_denials
        .iter()
        .any(|d| d.caller.contains(":assumed-role/dev-no-policy/")));
    let allowed = twin.decisions.recent(100, VerdictFilter::Allow);
    assert!(allowed
        .iter()
        .any(|d| d.service == "s3" && d.resource == "arn:aws:s3:::pics/public/hello.txt"));
}
