//! The twin's S3 driven by the real AWS CLI (v1, botocore) over loopback HTTP, with the profile
//! shape `rolechain up` writes (path-style addressing): bucket and object round trips, seed
//! 000's `pics` bucket, and IAM's decisions with bucket policies: same account, cross account,
//! explicit deny, anonymous callers, and refused session credentials. Multipart uploads (`aws s3
//! cp` of a 20 MB file), copies between buckets, `sync`, batch deletes, their errors and their
//! decisions; malformed XML bodies sent by boto3.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (with awscli). Without it the test prints a notice and
//! passes, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod common;
mod sts_support;

use std::sync::Arc;

use common::aws_cli::{aws_cli, peers_available, with_credentials, Run};

use serde_json::Value;
use sts_support::*;
use twin::{S3Service, VerdictFilter};

/// Who runs a command: access key, secret, session token; `None` for `--no-sign-request`.
type Creds = Option<(String, String, Option<String>)>;

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
    let mut cmd = aws_cli(twin.dir.path());
    cmd.args(args).env("AWS_CONFIG_FILE", &config);
    match creds {
        Some((key, secret, token)) => {
            with_credentials(&mut cmd, key, secret, token.as_deref());
        }
        None => {
            cmd.arg("--no-sign-request");
        }
    }
    Run::run(cmd, stdin.map(<[u8]>::to_vec)).await
}

/// [`aws`] without input, asserting success.
async fn aws_ok(twin: &Twin, creds: &Creds, args: &[&str]) -> Run {
    aws(twin, creds, args, None).await.expect_ok()
}

/// `aws` with the words of `line` as arguments (none of which has a space) and no input.
async fn run(twin: &Twin, creds: &Creds, line: &str) -> Run {
    aws(
        twin,
        creds,
        &line.split_whitespace().collect::<Vec<_>>(),
        None,
    )
    .await
}

/// [`run`], asserting success.
async fn run_ok(twin: &Twin, creds: &Creds, line: &str) -> Run {
    run(twin, creds, line).await.expect_ok()
}

/// `aws s3 cp - URL` with `body` as standard input, asserting success.
async fn put_body(twin: &Twin, creds: &Creds, url: &str, body: &[u8]) {
    aws(twin, creds, &["s3", "cp", "-", url], Some(body))
        .await
        .expect_ok();
}

/// Asserts that `run` failed with error `code` and a message containing `says`.
#[track_caller]
fn expect_error(run: &Run, code: &str, says: &str) {
    assert_eq!(run.error(), code, "{}", run.stderr);
    assert!(run.stderr.contains(says), "{}", run.stderr);
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
    let out = aws_ok(
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
    )
    .await
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

/// The twin with S3 for a test that drives the AWS CLI, and the developer and shared accounts'
/// admin credentials; `None` when the CLI is missing (see the module documentation).
async fn twin_for_cli() -> Option<(Twin, Creds, Creds)> {
    if !peers_available("awscli") {
        return None;
    }
    let twin = start_with_s3().await;
    let (dev_admin, shared_admin) = (admin(&twin.dev_admin), admin(&twin.shared_admin));
    Some((twin, dev_admin, shared_admin))
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
    let Some((twin, dev, shared)) = twin_for_cli().await else {
        return;
    };
    let out_file = twin.dir.path().join("mypic.jpg");
    let out = out_file.to_str().unwrap();

    // Seed 000's object, as its walkthrough downloads it.
    let head = aws_ok(&twin, &shared, &[&GET_CAT[..], &[out]].concat())
        .await
        .json();
    assert_eq!(head["ContentType"], "image/jpeg");
    let picture = std::fs::read(&out_file).unwrap();
    assert_eq!(&picture[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    assert_eq!(head["ContentLength"].as_u64(), Some(picture.len() as u64));

    // The developer account's own bucket.
    run_ok(&twin, &dev, "s3api create-bucket --bucket dev-bucket").await;
    let again = run(&twin, &dev, "s3api create-bucket --bucket pics").await;
    assert_eq!(again.error(), "BucketAlreadyExists");
    put_body(
        &twin,
        &dev,
        "s3://dev-bucket/greetings/hello.txt",
        b"Hello\n",
    )
    .await;
    let listing = run_ok(&twin, &dev, "s3 ls").await.text();
    assert!(listing.contains("dev-bucket"), "{listing}");
    assert!(
        !listing.contains("pics"),
        "another account's bucket: {listing}"
    );
    let listing = run_ok(&twin, &dev, "s3 ls s3://dev-bucket/").await.text();
    assert!(listing.contains("PRE greetings/"), "{listing}");
    let listing = run_ok(&twin, &dev, "s3 ls --recursive s3://dev-bucket/")
        .await
        .text();
    assert!(listing.contains("6 greetings/hello.txt"), "{listing}");
    let got = run_ok(
        &twin,
        &dev,
        "s3api get-object --bucket dev-bucket --key greetings/hello.txt /dev/stdout",
    )
    .await
    .text();
    assert!(got.starts_with("Hello\n"), "{got}");
    let head = run_ok(
        &twin,
        &dev,
        "s3api head-object --bucket dev-bucket --key greetings/hello.txt",
    )
    .await
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
    let not_empty = run(&twin, &dev, "s3api delete-bucket --bucket dev-bucket").await;
    assert_eq!(not_empty.error(), "BucketNotEmpty");
    run_ok(&twin, &dev, "s3 rm s3://dev-bucket/greetings/hello.txt").await;
    run_ok(&twin, &dev, "s3api delete-bucket --bucket dev-bucket").await;
    let gone = run(&twin, &dev, "s3 ls s3://dev-bucket/").await;
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
    expect_error(&bad, "MalformedPolicy", "Policy has invalid resource");
    let none = run(&twin, &shared, "s3api get-bucket-policy --bucket pics").await;
    assert_eq!(none.error(), "NoSuchBucketPolicy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_decides_s3_with_bucket_policies() {
    let Some((twin, dev_admin, shared_admin)) = twin_for_cli().await else {
        return;
    };
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
    aws_ok(&twin, &pics_session, &get_cat).await;
    // ... and nothing its policy does not name.
    let list = run(&twin, &pics_session, "s3 ls s3://pics/").await;
    assert!(list.stderr.contains("AccessDenied"), "{}", list.stderr);

    // Cross account: the role's policy alone is not enough ...
    let dev_session = assume(&twin, &dev_admin, &format!("arn:aws:iam::{DEV}:role/dev")).await;
    let denied = aws(&twin, &dev_session, &get_cat, None).await;
    expect_error(
        &denied,
        "AccessDenied",
        "because no resource-based policy allows the s3:GetObject action",
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
    let put_policy = [
        "s3api",
        "put-bucket-policy",
        "--bucket",
        "pics",
        "--policy",
        &policy,
    ];
    let foreign = aws(&twin, &dev_admin, &put_policy, None).await;
    assert_eq!(foreign.error(), "AccessDenied");
    aws_ok(&twin, &shared_admin, &put_policy).await;
    aws_ok(&twin, &dev_session, &get_cat).await;
    let no_policy_session = assume(
        &twin,
        &dev_admin,
        &format!("arn:aws:iam::{DEV}:role/dev-no-policy"),
    )
    .await;
    let denied = aws(&twin, &no_policy_session, &get_cat, None).await;
    expect_error(
        &denied,
        "AccessDenied",
        "because no identity-based policy allows the s3:GetObject action",
    );

    // An explicit deny in the bucket policy wins over the identity policy's allow.
    let denied = aws(&twin, &pics_session, &get_cat, None).await;
    expect_error(
        &denied,
        "AccessDenied",
        "with an explicit deny in a resource-based policy",
    );

    // Anonymous: refused, except where the bucket policy allows everyone.
    let denied = aws(&twin, &None, &get_cat, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    put_body(
        &twin,
        &shared_admin,
        "s3://pics/public/hello.txt",
        b"Hello\n",
    )
    .await;
    aws_ok(
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
    )
    .await;
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
    let mismatch = aws(&twin, &wrong_secret, &get_cat, None).await;
    // s3s's own refusals get S3's message, not the CLI's "Unknown".
    expect_error(
        &mismatch,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
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

/// `len` bytes that do not repeat in any short period (so a part put in the wrong place shows).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// S3's ETag of a multipart upload of `body` in parts of `part_size`, computed here.
fn multipart_etag(body: &[u8], part_size: usize) -> String {
    use md5::Digest as _;
    let chunks: Vec<&[u8]> = body.chunks(part_size).collect();
    let mut digests = Vec::new();
    for chunk in &chunks {
        digests.extend_from_slice(&md5::Md5::digest(chunk));
    }
    format!(
        "\"{}-{}\"",
        hex::encode(md5::Md5::digest(&digests)),
        chunks.len()
    )
}

/// The keys `aws s3api list-objects-v2` lists in `bucket`.
async fn keys_in(twin: &Twin, creds: &Creds, bucket: &str) -> Vec<String> {
    let out = aws_ok(
        twin,
        creds,
        &["s3api", "list-objects-v2", "--bucket", bucket],
    )
    .await;
    let listing = if out.stdout.is_empty() {
        Value::Null
    } else {
        out.json()
    };
    listing["Contents"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .filter_map(|o| o["Key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The CLI's multipart threshold and part size (8 MiB).
const CLI_PART_SIZE: usize = 8 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_multipart_copy_sync_and_recursive_rm() {
    let Some((twin, dev, _)) = twin_for_cli().await else {
        return;
    };
    let path = |name: &str| twin.dir.path().join(name);
    let arg = |p: &std::path::Path| p.to_str().unwrap().to_string();
    for bucket in ["dev-src", "dev-dst", "dev-mirror"] {
        aws_ok(&twin, &dev, &["s3api", "create-bucket", "--bucket", bucket]).await;
    }

    // ~20 MB: over the CLI's 8 MB threshold, so three parts (8 + 8 + 4 MiB).
    let big = pseudo_random(20 * 1024 * 1024 + 12_345);
    std::fs::write(path("big.bin"), &big).unwrap();
    aws_ok(
        &twin,
        &dev,
        &[
            "s3",
            "cp",
            &arg(&path("big.bin")),
            "s3://dev-src/data/big.bin",
        ],
    )
    .await;
    let head = run_ok(
        &twin,
        &dev,
        "s3api head-object --bucket dev-src --key data/big.bin",
    )
    .await
    .json();
    assert_eq!(head["ETag"], multipart_etag(&big, CLI_PART_SIZE));
    assert!(head["ETag"].as_str().unwrap().ends_with("-3\""));
    assert_eq!(head["ContentLength"].as_u64(), Some(big.len() as u64));
    aws_ok(
        &twin,
        &dev,
        &[
            "s3",
            "cp",
            "s3://dev-src/data/big.bin",
            &arg(&path("back.bin")),
        ],
    )
    .await;
    assert!(
        std::fs::read(path("back.bin")).unwrap() == big,
        "download differs"
    );
    // The completed upload is gone, parts and all.
    let uploads = run_ok(&twin, &dev, "s3api list-multipart-uploads --bucket dev-src").await;
    assert!(
        uploads.stdout.is_empty() || uploads.json().get("Uploads").is_none(),
        "{}",
        uploads.text()
    );
    let bodies_dir = twin.store.path().parent().unwrap().join("s3");
    let part_dirs = bodies_dir.join(".multipart");
    let left = std::fs::read_dir(&part_dirs).map_or(0, |d| d.count());
    assert_eq!(left, 0, "part files left in {}", part_dirs.display());

    // Between buckets: the big object by multipart copy (UploadPartCopy), a small one by
    // CopyObject, which keeps the source's metadata.
    std::fs::write(path("small.txt"), b"small object\n").unwrap();
    aws_ok(
        &twin,
        &dev,
        &[
            "s3api",
            "put-object",
            "--bucket",
            "dev-src",
            "--key",
            "data/small.txt",
            "--content-type",
            "text/x-small",
            "--metadata",
            "colour=blue",
            "--body",
            &arg(&path("small.txt")),
        ],
    )
    .await;
    put_body(&twin, &dev, "s3://dev-src/data/hello.txt", b"Hello\n").await;
    run_ok(
        &twin,
        &dev,
        "s3 cp s3://dev-src/data/big.bin s3://dev-dst/copied/big.bin",
    )
    .await;
    aws_ok(
        &twin,
        &dev,
        &[
            "s3",
            "cp",
            "s3://dev-dst/copied/big.bin",
            &arg(&path("copied.bin")),
        ],
    )
    .await;
    assert!(
        std::fs::read(path("copied.bin")).unwrap() == big,
        "copy differs"
    );
    let copied_head = run_ok(
        &twin,
        &dev,
        "s3api head-object --bucket dev-dst --key copied/big.bin",
    )
    .await
    .json();
    assert_eq!(
        copied_head["ETag"],
        multipart_etag(&big, CLI_PART_SIZE),
        "copied in parts"
    );
    run_ok(&twin, &dev, "s3api copy-object --bucket dev-dst --key copied/hello.txt --copy-source dev-src/data/hello.txt")
    .await;
    let copied = run_ok(&twin, &dev, "s3api copy-object --bucket dev-dst --key copied/small.txt --copy-source dev-src/data/small.txt")
    .await
    .json();
    // A single-request copy is one body: its ETag is its MD5.
    assert_eq!(
        copied["CopyObjectResult"]["ETag"],
        format!("\"{}\"", twin_state::buckets::md5_hex(b"small object\n"))
    );
    let head = |key: &'static str| {
        let twin = &twin;
        let dev = &dev;
        async move {
            run_ok(
                twin,
                dev,
                &format!("s3api head-object --bucket dev-dst --key {key}"),
            )
            .await
            .json()
        }
    };
    let small = head("copied/small.txt").await;
    assert_eq!(small["ContentType"], "text/x-small");
    assert_eq!(small["Metadata"]["colour"], "blue");
    // REPLACE takes the request's metadata instead.
    run_ok(&twin, &dev, "s3api copy-object --bucket dev-dst --key copied/small.txt --copy-source dev-dst/copied/small.txt --metadata-directive REPLACE --content-type text/plain --metadata colour=red")
    .await;
    let small = head("copied/small.txt").await;
    assert_eq!(small["ContentType"], "text/plain");
    assert_eq!(small["Metadata"]["colour"], "red");
    let got = run_ok(&twin, &dev, "s3 cp s3://dev-dst/copied/hello.txt -").await;
    assert_eq!(got.stdout, b"Hello\n");

    // sync between buckets, then again with nothing to do.
    run_ok(&twin, &dev, "s3 sync s3://dev-src/ s3://dev-mirror/").await;
    let mut mirrored = keys_in(&twin, &dev, "dev-mirror").await;
    mirrored.sort();
    assert_eq!(
        mirrored,
        ["data/big.bin", "data/hello.txt", "data/small.txt"]
    );
    let again = run_ok(&twin, &dev, "s3 sync s3://dev-src/ s3://dev-mirror/").await;
    assert!(!again.text().contains("copy:"), "{}", again.text());
    // ... and from a local directory.
    std::fs::create_dir(path("local")).unwrap();
    std::fs::write(path("local").join("a.txt"), b"a").unwrap();
    std::fs::write(path("local").join("b.txt"), b"bb").unwrap();
    aws_ok(
        &twin,
        &dev,
        &["s3", "sync", &arg(&path("local")), "s3://dev-mirror/local/"],
    )
    .await;
    assert_eq!(keys_in(&twin, &dev, "dev-mirror").await.len(), 5);

    // DeleteObjects (what boto3's `bucket.objects.delete()` sends) lists what it deleted,
    // including keys that were not there, as S3 does.
    let mut mirrored = keys_in(&twin, &dev, "dev-mirror").await;
    mirrored.push("never-there".to_string());
    let objects: Vec<Value> = mirrored
        .iter()
        .map(|k| serde_json::json!({"Key": k}))
        .collect();
    let deleted = aws_ok(
        &twin,
        &dev,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "dev-mirror",
            "--delete",
            &serde_json::json!({ "Objects": objects }).to_string(),
        ],
    )
    .await
    .json();
    let mut keys: Vec<&str> = deleted["Deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["Key"].as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        mirrored.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(deleted.get("Errors").is_none(), "{deleted}");
    assert!(keys_in(&twin, &dev, "dev-mirror").await.is_empty());
    run_ok(&twin, &dev, "s3api delete-bucket --bucket dev-mirror").await;
    // `aws s3 rm --recursive` (DeleteObject key by key in CLI v1), and the buckets can go.
    for bucket in ["dev-src", "dev-dst"] {
        let removed = run_ok(&twin, &dev, &format!("s3 rm --recursive s3://{bucket}/")).await;
        assert!(
            removed.text().contains("delete: s3://"),
            "{}",
            removed.text()
        );
        assert!(keys_in(&twin, &dev, bucket).await.is_empty());
        run_ok(
            &twin,
            &dev,
            &format!("s3api delete-bucket --bucket {bucket}"),
        )
        .await;
    }
    let bodies = std::fs::read_dir(&bodies_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("dev-"))
        .count();
    assert_eq!(bodies, 0, "bucket directories left behind");
}

/// `s3api upload-part` of `body` as part `number`; the part's ETag.
async fn upload_part(
    twin: &Twin,
    creds: &Creds,
    key: &str,
    upload_id: &str,
    number: u32,
    body: &std::path::Path,
) -> Run {
    aws(
        twin,
        creds,
        &[
            "s3api",
            "upload-part",
            "--bucket",
            "parts",
            "--key",
            key,
            "--upload-id",
            upload_id,
            "--part-number",
            &number.to_string(),
            "--body",
            body.to_str().unwrap(),
        ],
        None,
    )
    .await
}

/// `s3api complete-multipart-upload` with `parts` as `--multipart-upload`.
async fn complete(twin: &Twin, creds: &Creds, key: &str, upload_id: &str, parts: &Value) -> Run {
    aws(
        twin,
        creds,
        &[
            "s3api",
            "complete-multipart-upload",
            "--bucket",
            "parts",
            "--key",
            key,
            "--upload-id",
            upload_id,
            "--multipart-upload",
            &parts.to_string(),
        ],
        None,
    )
    .await
}

async fn create_upload(twin: &Twin, creds: &Creds, bucket: &str, key: &str) -> Run {
    aws(
        twin,
        creds,
        &[
            "s3api",
            "create-multipart-upload",
            "--bucket",
            bucket,
            "--key",
            key,
        ],
        None,
    )
    .await
}

/// A new multipart upload of `key` into `bucket`; its upload id.
async fn new_upload(twin: &Twin, creds: &Creds, bucket: &str, key: &str) -> String {
    create_upload(twin, creds, bucket, key)
        .await
        .expect_ok()
        .json()["UploadId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The ETag of part `number` of `body`, uploaded with [`upload_part`].
async fn part_etag(
    twin: &Twin,
    creds: &Creds,
    key: &str,
    upload_id: &str,
    number: u32,
    body: &std::path::Path,
) -> Value {
    upload_part(twin, creds, key, upload_id, number, body)
        .await
        .expect_ok()
        .json()["ETag"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_multipart_errors_abort_and_malformed_input() {
    let Some((twin, dev, _)) = twin_for_cli().await else {
        return;
    };
    run_ok(&twin, &dev, "s3api create-bucket --bucket parts").await;
    let small = twin.dir.path().join("small.bin");
    std::fs::write(&small, b"a small part").unwrap();
    let five_mib = twin.dir.path().join("five.bin");
    std::fs::write(&five_mib, pseudo_random(5 * 1024 * 1024)).unwrap();

    let created = create_upload(&twin, &dev, "parts", "k")
        .await
        .expect_ok()
        .json();
    let id = created["UploadId"].as_str().unwrap().to_string();
    assert_eq!(created["Key"], "k");
    let etag1 = part_etag(&twin, &dev, "k", &id, 1, &small).await;
    let etag2 = part_etag(&twin, &dev, "k", &id, 2, &small).await;
    assert_eq!(
        etag1,
        format!("\"{}\"", twin_state::buckets::md5_hex(b"a small part"))
    );
    let parts = |list: &[(u32, &Value)]| serde_json::json!({"Parts": list.iter().map(|(n, e)| serde_json::json!({"PartNumber": n, "ETag": e})).collect::<Vec<_>>()});

    // ListParts and ListMultipartUploads show the upload in progress.
    let listed = run_ok(
        &twin,
        &dev,
        &format!("s3api list-parts --bucket parts --key k --upload-id {id}"),
    )
    .await
    .json();
    let numbers: Vec<_> = listed["Parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PartNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(listed["Parts"][0]["Size"], 12);
    assert!(listed["Initiator"]["ID"]
        .as_str()
        .unwrap()
        .ends_with(":user/admin"));
    let uploads = run_ok(&twin, &dev, "s3api list-multipart-uploads --bucket parts")
        .await
        .json();
    assert_eq!(uploads["Uploads"][0]["UploadId"], id.as_str());
    assert_eq!(uploads["Uploads"][0]["Key"], "k");

    // Completion's checks.
    assert_eq!(
        complete(&twin, &dev, "k", &id, &parts(&[(1, &etag1), (2, &etag2)]))
            .await
            .error(),
        "EntityTooSmall"
    );
    assert_eq!(
        complete(&twin, &dev, "k", &id, &parts(&[(2, &etag2), (1, &etag1)]))
            .await
            .error(),
        "InvalidPartOrder"
    );
    let wrong = Value::String("\"00000000000000000000000000000000\"".into());
    assert_eq!(
        complete(&twin, &dev, "k", &id, &parts(&[(1, &wrong)]))
            .await
            .error(),
        "InvalidPart"
    );
    assert_eq!(
        complete(&twin, &dev, "k", &id, &parts(&[(1, &etag1), (7, &etag1)]))
            .await
            .error(),
        "InvalidPart"
    );
    let empty = complete(&twin, &dev, "k", &id, &serde_json::json!({"Parts": []})).await;
    assert_eq!(empty.error(), "MalformedXML");
    // A part number out of range, a listing limit below zero.
    let zero = upload_part(&twin, &dev, "k", &id, 0, &small).await;
    expect_error(
        &zero,
        "InvalidArgument",
        "Part number must be an integer between 1 and 10000",
    );
    let negative = run(
        &twin,
        &dev,
        &format!("s3api list-parts --bucket parts --key k --upload-id {id} --max-parts -1"),
    )
    .await;
    expect_error(&negative, "InvalidArgument", "max-parts");

    // An upload id that is not one (or belongs to another key).
    assert_eq!(
        upload_part(&twin, &dev, "k", "no-such-upload", 1, &small)
            .await
            .error(),
        "NoSuchUpload"
    );
    assert_eq!(
        upload_part(&twin, &dev, "other-key", &id, 1, &small)
            .await
            .error(),
        "NoSuchUpload"
    );
    assert_eq!(
        complete(&twin, &dev, "k", "no-such-upload", &parts(&[(1, &etag1)]))
            .await
            .error(),
        "NoSuchUpload"
    );
    let no_bucket = create_upload(&twin, &dev, "no-such-bucket", "k").await;
    assert_eq!(no_bucket.error(), "NoSuchBucket");

    // Part 1 re-uploaded at 5 MiB makes the pair acceptable.
    let etag1 = part_etag(&twin, &dev, "k", &id, 1, &five_mib).await;
    let done = complete(&twin, &dev, "k", &id, &parts(&[(1, &etag1), (2, &etag2)]))
        .await
        .expect_ok()
        .json();
    assert!(done["ETag"].as_str().unwrap().ends_with("-2\""), "{done}");
    let head = run_ok(&twin, &dev, "s3api head-object --bucket parts --key k")
        .await
        .json();
    assert_eq!(head["ContentLength"].as_u64(), Some(5 * 1024 * 1024 + 12));
    assert_eq!(
        complete(&twin, &dev, "k", &id, &parts(&[(1, &etag1), (2, &etag2)]))
            .await
            .error(),
        "NoSuchUpload"
    );

    // Abort: the upload and its parts are gone.
    let id = new_upload(&twin, &dev, "parts", "aborted").await;
    upload_part(&twin, &dev, "aborted", &id, 1, &small)
        .await
        .expect_ok();
    let abort = [
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        "parts",
        "--key",
        "aborted",
        "--upload-id",
        &id,
    ];
    aws_ok(&twin, &dev, &abort).await;
    assert_eq!(aws(&twin, &dev, &abort, None).await.error(), "NoSuchUpload");
    let gone = run(
        &twin,
        &dev,
        &format!("s3api list-parts --bucket parts --key aborted --upload-id {id}"),
    )
    .await;
    assert_eq!(gone.error(), "NoSuchUpload");
    let part_dir = twin
        .store
        .path()
        .parent()
        .unwrap()
        .join("s3")
        .join(".multipart")
        .join(&id);
    assert!(!part_dir.exists(), "parts of an aborted upload remain");

    // Copies and batch deletes refused as S3 refuses them.
    let to_itself = run(
        &twin,
        &dev,
        "s3api copy-object --bucket parts --key k --copy-source parts/k",
    )
    .await;
    assert_eq!(to_itself.error(), "InvalidRequest");
    let directive = run(&twin, &dev, "s3api copy-object --bucket parts --key k2 --copy-source parts/k --metadata-directive MERGE")
    .await;
    assert_eq!(directive.error(), "InvalidArgument");
    let missing = run(
        &twin,
        &dev,
        "s3api copy-object --bucket parts --key k2 --copy-source parts/nope",
    )
    .await;
    assert_eq!(missing.error(), "NoSuchKey");
    let id = new_upload(&twin, &dev, "parts", "ranged").await;
    let ranged = |range: &'static str| {
        let (twin, dev, id) = (&twin, &dev, id.clone());
        async move {
            aws(
                twin,
                dev,
                &[
                    "s3api",
                    "upload-part-copy",
                    "--bucket",
                    "parts",
                    "--key",
                    "ranged",
                    "--upload-id",
                    &id,
                    "--part-number",
                    "1",
                    "--copy-source",
                    "parts/k",
                    "--copy-source-range",
                    range,
                ],
                None,
            )
            .await
        }
    };
    assert_eq!(ranged("bytes=10-5").await.error(), "InvalidArgument");
    assert_eq!(ranged("bytes=0-99999999").await.error(), "InvalidArgument");
    assert_eq!(ranged("lines=1-2").await.error(), "InvalidArgument");
    let part = ranged("bytes=5242880-5242891").await.expect_ok().json();
    assert_eq!(
        part["CopyPartResult"]["ETag"],
        format!("\"{}\"", twin_state::buckets::md5_hex(b"a small part"))
    );
    let batch = aws(
        &twin,
        &dev,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "parts",
            "--delete",
            r#"{"Objects": []}"#,
        ],
        None,
    )
    .await;
    assert_eq!(batch.error(), "MalformedXML");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_decides_multipart_batch_delete_and_copy() {
    let Some((twin, dev_admin, shared_admin)) = twin_for_cli().await else {
        return;
    };
    // The `dev` role may write, read and list its account's `dev-work`, delete only under
    // `public/`, and read pics and write shared-drop (the shared account's buckets, whose
    // policies must allow too). No multipart listing or abort permission.
    twin.store
        .put_role_policy(
            DEV,
            "dev",
            "s3-work",
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:ListBucket"],
                 "Resource":["arn:aws:s3:::dev-work","arn:aws:s3:::dev-work/*","arn:aws:s3:::pics/*","arn:aws:s3:::shared-drop/*"]},
                {"Effect":"Allow","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::dev-work/public/*"}]}"#,
        )
        .unwrap();
    for bucket in ["dev-work", "dev-other"] {
        aws_ok(
            &twin,
            &dev_admin,
            &["s3api", "create-bucket", "--bucket", bucket],
        )
        .await;
    }
    let dev = assume(&twin, &dev_admin, &format!("arn:aws:iam::{DEV}:role/dev")).await;

    // Multipart: s3:PutObject creates; listing and aborting need their own actions.
    let id = new_upload(&twin, &dev, "dev-work", "up/k").await;
    let denied = create_upload(&twin, &dev, "dev-other", "k").await;
    expect_error(&denied, "AccessDenied", "s3:PutObject");
    let list_parts = [
        "s3api",
        "list-parts",
        "--bucket",
        "dev-work",
        "--key",
        "up/k",
        "--upload-id",
        &id,
    ];
    let list_uploads = ["s3api", "list-multipart-uploads", "--bucket", "dev-work"];
    let abort = [
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        "dev-work",
        "--key",
        "up/k",
        "--upload-id",
        &id,
    ];
    for (args, action) in [
        (&list_parts[..], "s3:ListMultipartUploadParts"),
        (&list_uploads[..], "s3:ListBucketMultipartUploads"),
        (&abort[..], "s3:AbortMultipartUpload"),
    ] {
        let denied = aws(&twin, &dev, args, None).await;
        assert_eq!(denied.error(), "AccessDenied", "{action}");
        assert!(denied.stderr.contains(action), "{}", denied.stderr);
    }
    aws_ok(&twin, &dev_admin, &list_parts).await;
    let uploads = aws_ok(&twin, &dev_admin, &list_uploads).await.json();
    assert_eq!(uploads["Uploads"][0]["UploadId"], id.as_str());
    assert!(
        uploads["Uploads"][0]["Initiator"]["ID"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/dev/"),
        "{uploads}"
    );
    aws_ok(&twin, &dev_admin, &abort).await;

    // Each key is its own s3:DeleteObject decision: `aws s3 rm --recursive` (DeleteObject per
    // key) fails for the denied key only ...
    for key in ["public/a.txt", "public/b.txt", "private/c.txt"] {
        put_body(&twin, &dev_admin, &format!("s3://dev-work/{key}"), b"x").await;
    }
    let rm = run(&twin, &dev, "s3 rm --recursive s3://dev-work/").await;
    assert!(!rm.ok, "a partly denied rm succeeded: {}", rm.text());
    assert!(
        rm.text().contains("delete: s3://dev-work/public/a.txt"),
        "{}",
        rm.text()
    );
    assert!(
        rm.stderr
            .contains("delete failed: s3://dev-work/private/c.txt")
            && rm.stderr.contains("AccessDenied"),
        "{}",
        rm.stderr
    );
    assert_eq!(
        keys_in(&twin, &dev_admin, "dev-work").await,
        ["private/c.txt"]
    );
    put_body(&twin, &dev_admin, "s3://dev-work/public/d.txt", b"x").await;
    // ... and so does DeleteObjects, which reports the denied key and deletes the others.
    let quiet = aws_ok(
        &twin,
        &dev,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "dev-work",
            "--delete",
            r#"{"Objects":[{"Key":"private/c.txt"},{"Key":"public/d.txt"}],"Quiet":true}"#,
        ],
    )
    .await
    .json();
    assert!(
        quiet.get("Deleted").is_none(),
        "quiet mode lists deletions: {quiet}"
    );
    assert_eq!(quiet["Errors"][0]["Key"], "private/c.txt");
    assert_eq!(quiet["Errors"][0]["Code"], "AccessDenied");
    assert_eq!(quiet["Errors"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys_in(&twin, &dev_admin, "dev-work").await,
        ["private/c.txt"]
    );

    // The bucket policy takes part in every key's decision: its explicit deny refuses its key
    // alone, while the role's policy still deletes the other.
    twin.store
        .set_bucket_policy(
            "dev-work",
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::dev-work/public/kept*"}]}"#,
            ),
        )
        .unwrap();
    put_body(&twin, &dev_admin, "s3://dev-work/public/kept.txt", b"x").await;
    put_body(&twin, &dev_admin, "s3://dev-work/public/gone.txt", b"x").await;
    let result = aws_ok(
        &twin,
        &dev,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "dev-work",
            "--delete",
            r#"{"Objects":[{"Key":"public/kept.txt"},{"Key":"public/gone.txt"}]}"#,
        ],
    )
    .await
    .json();
    assert_eq!(result["Errors"][0]["Key"], "public/kept.txt", "{result}");
    assert_eq!(result["Errors"][0]["Code"], "AccessDenied", "{result}");
    assert_eq!(result["Errors"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(result["Deleted"][0]["Key"], "public/gone.txt", "{result}");
    assert_eq!(result["Deleted"].as_array().unwrap().len(), 1, "{result}");
    let denied = twin.decisions.last_denied().unwrap();
    assert_eq!(
        denied.resource, "arn:aws:s3:::dev-work/public/kept.txt",
        "{denied:?}"
    );
    twin.store.set_bucket_policy("dev-work", None).unwrap();
    assert_eq!(
        keys_in(&twin, &dev_admin, "dev-work").await,
        ["private/c.txt", "public/kept.txt"]
    );

    // A copy across accounts: reading pics needs pics' policy, writing shared-drop needs
    // shared-drop's, on top of the role's own policy.
    run_ok(
        &twin,
        &shared_admin,
        "s3api create-bucket --bucket shared-drop",
    )
    .await;
    let copy = [
        "s3api",
        "copy-object",
        "--bucket",
        "shared-drop",
        "--key",
        "cat.jpg",
        "--copy-source",
        "pics/indoor-cat.jpg",
    ];
    let grant = |bucket: &str, action: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{DEV}:role/dev"}},"Action":"{action}","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        )
    };
    let set_policy = |bucket: &'static str, policy: Option<String>| {
        let (twin, shared_admin) = (&twin, &shared_admin);
        async move {
            let args: Vec<String> = match &policy {
                Some(p) => [
                    "s3api",
                    "put-bucket-policy",
                    "--bucket",
                    bucket,
                    "--policy",
                    p,
                ]
                .map(String::from)
                .to_vec(),
                None => ["s3api", "delete-bucket-policy", "--bucket", bucket]
                    .map(String::from)
                    .to_vec(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            aws_ok(twin, shared_admin, &args).await;
        }
    };
    let denied = aws(&twin, &dev, &copy, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    // The source's policy alone: the destination refuses the write.
    set_policy("pics", Some(grant("pics", "s3:GetObject"))).await;
    let denied = aws(&twin, &dev, &copy, None).await;
    expect_error(&denied, "AccessDenied", "s3:PutObject");
    // The destination's policy alone: the source refuses the read.
    set_policy("pics", None).await;
    set_policy("shared-drop", Some(grant("shared-drop", "s3:PutObject"))).await;
    let denied = aws(&twin, &dev, &copy, None).await;
    assert_eq!(denied.error(), "AccessDenied");
    assert!(
        denied.stderr.contains("s3:GetObject") && denied.stderr.contains("pics/indoor-cat.jpg"),
        "{}",
        denied.stderr
    );
    // So is a part copied from it.
    let id = new_upload(&twin, &dev, "dev-work", "from-pics").await;
    let part_copy = run(&twin, &dev, &format!("s3api upload-part-copy --bucket dev-work --key from-pics --upload-id {id} --part-number 1 --copy-source pics/indoor-cat.jpg"))
    .await;
    assert_eq!(part_copy.error(), "AccessDenied");
    // Both: the copy goes through, with the CLI too.
    set_policy("pics", Some(grant("pics", "s3:GetObject"))).await;
    aws_ok(&twin, &dev, &copy).await;
    run_ok(
        &twin,
        &dev,
        "s3 cp s3://pics/indoor-cat.jpg s3://shared-drop/cat2.jpg",
    )
    .await;
    let cat = twin.store.get_object("pics", "indoor-cat.jpg").unwrap();
    let copied = twin.store.get_object("shared-drop", "cat2.jpg").unwrap();
    assert_eq!(
        (copied.size, copied.etag.as_str()),
        (cat.size, cat.etag.as_str())
    );
    assert_eq!(copied.content_type.as_deref(), Some("image/jpeg"));

    // Every decision is in the log.
    let denials = twin.decisions.recent(200, VerdictFilter::Deny);
    for (action, resource) in [
        ("s3:AbortMultipartUpload", "arn:aws:s3:::dev-work/up/k"),
        ("s3:ListMultipartUploadParts", "arn:aws:s3:::dev-work/up/k"),
        ("s3:ListBucketMultipartUploads", "arn:aws:s3:::dev-work"),
        ("s3:DeleteObject", "arn:aws:s3:::dev-work/private/c.txt"),
        ("s3:GetObject", "arn:aws:s3:::pics/indoor-cat.jpg"),
        ("s3:PutObject", "arn:aws:s3:::shared-drop/cat.jpg"),
    ] {
        assert!(
            denials
                .iter()
                .any(|d| d.service == "s3" && d.action == action && d.resource == resource),
            "no denial of {action} on {resource}"
        );
    }
    let allowed = twin.decisions.recent(200, VerdictFilter::Allow);
    assert!(allowed.iter().any(|d| d.action == "s3:DeleteObject"
        && d.resource == "arn:aws:s3:::dev-work/public/a.txt"
        && d.caller.contains(":assumed-role/dev/")));
}

/// boto3 sending bodies S3 must refuse: the XML is replaced after serialization and before
/// signing, so the request is signed as sent. Prints one line per case: its name, HTTP
/// status and S3 error code.
const MALFORMED_BODIES: &str = r#"
import os, boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
replacement = {}

def mangle(request, **kwargs):
    body = replacement.pop("body", None)
    if body is None:
        return
    for name in list(request.headers.keys()):
        if name.lower() in ("content-md5", "content-length") or name.lower().startswith("x-amz-checksum"):
            del request.headers[name]
    request.data = body

s3.meta.events.register("before-sign.s3", mangle)
s3.create_bucket(Bucket="malformed")
upload = s3.create_multipart_upload(Bucket="malformed", Key="k")["UploadId"]
part = s3.upload_part(Bucket="malformed", Key="k", UploadId=upload, PartNumber=1, Body=b"x")["ETag"]
s3.put_object(Bucket="malformed", Key="kept", Body=b"kept")

def case(name, body, call):
    replacement["body"] = body
    try:
        call()
        print(name, 200, "ok")
    except ClientError as e:
        print(name, e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])

complete = lambda: s3.complete_multipart_upload(
    Bucket="malformed", Key="k", UploadId=upload,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]})
delete = lambda: s3.delete_objects(Bucket="malformed", Delete={"Objects": [{"Key": "kept"}]})
case("complete-truncated", b"<CompleteMultipartUpload><Part><PartNumber>1</Part", complete)
case("complete-not-a-number", b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>" + part.encode() + b"</ETag></Part></CompleteMultipartUpload>", complete)
case("complete-no-etag", b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", complete)
case("delete-truncated", b"<Delete><Object><Key>kept</Key></Obj", delete)
case("delete-too-many", None, lambda: s3.delete_objects(
    Bucket="malformed", Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]}))
case("complete-valid", None, complete)
print("kept", len(s3.list_objects_v2(Bucket="malformed").get("Contents", [])))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_multipart_and_delete_bodies_are_refused() {
    if !peers_available("boto3") {
        return;
    }
    let twin = start_with_s3().await;
    let mut cmd = common::aws_cli::isolated_python(twin.dir.path());
    cmd.args(["-c", MALFORMED_BODIES])
        .env("ENDPOINT", &twin.base_url);
    with_credentials(
        &mut cmd,
        twin.dev_admin.access_key_id(),
        twin.dev_admin.secret_access_key(),
        None,
    );
    let out = Run::run(cmd, None).await.expect_ok().text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "complete-truncated 400 MalformedXML",
            "complete-not-a-number 400 MalformedXML",
            "complete-no-etag 400 MalformedXML",
            "delete-truncated 400 MalformedXML",
            "delete-too-many 400 MalformedXML",
            // The upload is intact after the refusals, and nothing was deleted.
            "complete-valid 200 ok",
            "kept 2",
        ],
        "{out}"
    );
}
