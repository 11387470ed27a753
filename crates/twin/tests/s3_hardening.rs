//! The twin's S3 against what broke it: keys XML cannot carry (boto3 and the AWS CLI listing
//! them, `encoding-type=url` as S3 answers it), and uploads slower than the request timeout
//! (raw HTTP over loopback, sent steadily or stalled).
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (with awscli and boto3). Without it the boto3 test
//! prints a notice and passes, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod common;
mod sts_support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use common::aws_cli::{aws_cli, isolated_python, peers_available, with_credentials, Run};
use serde_json::Value;
use sts_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use twin::{S3Service, TwinConfig};
use twin_state::BucketError;

async fn start_s3(config: TwinConfig) -> Twin {
    start_configured(config, |server, store, _sts| {
        let s3 = S3Service::new(Arc::clone(store), server.decisions().clone());
        server.register_streaming(Arc::new(s3)).unwrap();
    })
    .await
}

/// Keys with control characters, a carriage return, and characters URL encoding changes, put
/// and listed by boto3. Prints JSON lines for the Rust side to check.
const ODD_KEYS: &str = r#"
import json, os, boto3
from botocore.config import Config
from botocore.handlers import set_list_objects_encoding_type_url

config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], config=config)
keys = json.loads(os.environ["KEYS"])
s3.create_bucket(Bucket="odd-keys")
for k in keys:
    s3.put_object(Bucket="odd-keys", Key=k, Body=k.encode())

def show(**kw):
    print(json.dumps(kw))

# botocore asks for encoding-type=url and decodes the answer itself.
listed = s3.list_objects_v2(Bucket="odd-keys")
show(case="plain", keys=[o["Key"] for o in listed["Contents"]], encoding=listed.get("EncodingType"))
for k in [o["Key"] for o in listed["Contents"]]:
    assert s3.get_object(Bucket="odd-keys", Key=k)["Body"].read() == k.encode(), repr(k)

# Rolled up at a delimiter, under a prefix with a control character, page by page.
pages = s3.get_paginator("list_objects_v2").paginate(
    Bucket="odd-keys", Delimiter="/", PaginationConfig={"PageSize": 2})
seen, prefixes = [], []
for page in pages:
    seen += [o["Key"] for o in page.get("Contents", [])]
    prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    delimiter = page["Delimiter"]
show(case="delimited", keys=seen, prefixes=prefixes, delimiter=delimiter)
under = s3.list_objects_v2(Bucket="odd-keys", Prefix="esc\x1b", StartAfter="esc\x1b")
show(case="prefixed", keys=[o["Key"] for o in under["Contents"]], prefix=under["Prefix"],
     start_after=under["StartAfter"])

# A client that asked for no encoding: the listing says it is encoded rather than be invalid XML.
s3.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", set_list_objects_encoding_type_url)
raw = s3.list_objects_v2(Bucket="odd-keys", Prefix="ctl")
show(case="unasked", keys=[o["Key"] for o in raw["Contents"]], encoding=raw.get("EncodingType"))
tame = s3.list_objects_v2(Bucket="odd-keys", Prefix="plain")
show(case="unasked-plain", keys=[o["Key"] for o in tame["Contents"]], encoding=tame.get("EncodingType"))

# ListMultipartUploads takes EncodingType too (botocore does not decode it).
s3.create_multipart_upload(Bucket="odd-keys", Key="up\x01load a+b")
uploads = s3.list_multipart_uploads(Bucket="odd-keys", EncodingType="url")
show(case="uploads", keys=[u["Key"] for u in uploads["Uploads"]], encoding=uploads["EncodingType"])
# Completing it: the Location is a URL, the Key (no EncodingType here) left out.
upload_id = uploads["Uploads"][0]["UploadId"]
etag = s3.upload_part(Bucket="odd-keys", Key="up\x01load a+b", UploadId=upload_id, PartNumber=1,
                      Body=b"part")["ETag"]
done = s3.complete_multipart_upload(Bucket="odd-keys", Key="up\x01load a+b", UploadId=upload_id,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
show(case="completed", location=done["Location"], key=done.get("Key"))
try:
    s3.list_multipart_uploads(Bucket="odd-keys", EncodingType="base64")
    show(case="bad-encoding", code=None)
except s3.exceptions.ClientError as e:
    show(case="bad-encoding", code=e.response["Error"]["Code"],
         status=e.response["ResponseMetadata"]["HTTPStatusCode"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_control_characters_list_through_boto3_and_the_cli() {
    if !peers_available("awscli, boto3") {
        return;
    }
    let twin = start_s3(TwinConfig::default()).await;
    let keys = [
        "ctl\u{1}key",
        "esc\u{1b}[0m",
        "esc\u{1b}/inner",
        "cr\rand\nlf",
        "a b+c%/d(3)",
        "dir/é ü",
        "plain.txt",
    ];
    let mut cmd = isolated_python(twin.dir.path());
    cmd.args(["-c", ODD_KEYS])
        .env("ENDPOINT", &twin.base_url)
        .env("KEYS", serde_json::to_string(&keys).unwrap());
    let creds = &twin.dev_admin;
    with_credentials(
        &mut cmd,
        creds.access_key_id(),
        creds.secret_access_key(),
        None,
    );
    let out = Run::run(cmd, None).await.expect_ok().text();
    let cases: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c["case"] == name)
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .clone()
    };
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    assert_eq!(case("plain")["keys"], serde_json::json!(sorted), "{out}");
    assert_eq!(case("plain")["encoding"], "url");

    let delimited = case("delimited");
    assert_eq!(delimited["delimiter"], "/");
    assert_eq!(
        delimited["prefixes"],
        serde_json::json!(["a b+c%/", "dir/", "esc\u{1b}/"]),
        "{out}"
    );
    assert_eq!(
        delimited["keys"],
        serde_json::json!(["cr\rand\nlf", "ctl\u{1}key", "esc\u{1b}[0m", "plain.txt"]),
        "{out}"
    );
    let prefixed = case("prefixed");
    assert_eq!(
        prefixed["keys"],
        serde_json::json!(["esc\u{1b}/inner", "esc\u{1b}[0m"])
    );
    assert_eq!(prefixed["prefix"], "esc\u{1b}");
    assert_eq!(prefixed["start_after"], "esc\u{1b}");

    // Not asked for, encoded only when a key needs it, and then declared.
    let unasked = case("unasked");
    assert_eq!(unasked["encoding"], "url");
    assert_eq!(unasked["keys"], serde_json::json!(["ctl%01key"]));
    let tame = case("unasked-plain");
    assert_eq!(tame["encoding"], Value::Null);
    assert_eq!(tame["keys"], serde_json::json!(["plain.txt"]));

    let uploads = case("uploads");
    assert_eq!(uploads["encoding"], "url");
    assert_eq!(uploads["keys"], serde_json::json!(["up%01load+a%2Bb"]));
    let completed = case("completed");
    assert_eq!(completed["location"], "/odd-keys/up%01load%20a%2Bb");
    assert_eq!(completed["key"], Value::Null);
    let bad = case("bad-encoding");
    assert_eq!(
        (bad["code"].as_str(), bad["status"].as_u64()),
        (Some("InvalidArgument"), Some(400))
    );

    // The CLI lists the bucket, control characters and all.
    let config = twin.dir.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\ns3 =\n    addressing_style = path\n",
            twin.base_url
        ),
    )
    .unwrap();
    let mut cli = aws_cli(twin.dir.path());
    cli.args(["s3", "ls", "--recursive", "s3://odd-keys/"])
        .env("AWS_CONFIG_FILE", &config);
    with_credentials(
        &mut cli,
        creds.access_key_id(),
        creds.secret_access_key(),
        None,
    );
    let listing = Run::run(cli, None).await.expect_ok().text();
    for key in [
        "ctl\u{1}key",
        "esc\u{1b}/inner",
        "a b+c%/d(3)",
        "dir/é ü",
        "plain.txt",
    ] {
        assert!(listing.contains(key), "{key:?} missing from {listing:?}");
    }
}

/// The head of a `PUT` of `len` bytes to `path`, signed with `UNSIGNED-PAYLOAD` (so the body
/// can be sent as it is produced), asking the twin to close the connection after answering.
fn signed_put_head(twin: &Twin, path: &str, len: usize) -> String {
    let url = format!("http://{}{path}", twin.addr);
    let host = twin.addr.to_string();
    let length = len.to_string();
    let headers = [
        ("host", host.as_str()),
        ("content-length", length.as_str()),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    let identity: Identity = twin.dev_admin.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "PUT",
        &url,
        headers.iter().copied(),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method("PUT").uri(path);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    let mut req = req.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("connection: close\r\n\r\n");
    head
}

/// Sends `head`, then `pieces` pieces of `piece` bytes `every` apart (stopping early after
/// `stall_after` pieces, when given, and waiting), and reads the answer: status line and body.
async fn upload(
    twin: &Twin,
    head: &str,
    pieces: usize,
    piece: &[u8],
    every: Duration,
    stall_after: Option<usize>,
) -> String {
    let mut stream = tokio::net::TcpStream::connect(twin.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for i in 0..pieces {
        if stall_after == Some(i) {
            break;
        }
        tokio::time::sleep(every).await;
        stream.write_all(piece).await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn receiving_area_is_empty(twin: &Twin) -> bool {
    let dir = twin.store.object_bodies().temp_path().unwrap();
    let dir = dir.parent().unwrap();
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_steady_uploads_outlive_the_request_timeout_and_stalls_get_s3s_timeout() {
    let mut config = TwinConfig::default();
    config.request_timeout = Duration::from_secs(2);
    config.body_idle_timeout = Duration::from_secs(1);
    let twin = start_s3(config).await;
    twin.store.create_bucket("slow", DEV, "us-east-1").unwrap();

    // 25 pieces of 4 KiB, 200 ms apart: 5 s, over twice the request timeout, never idle 1 s.
    let piece: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    let head = signed_put_head(&twin, "/slow/steady.bin", 25 * piece.len());
    let answer = upload(&twin, &head, 25, &piece, Duration::from_millis(200), None).await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let meta = twin.store.get_object("slow", "steady.bin").unwrap();
    let stored =
        std::fs::read(twin.store.object_bodies().body_path("slow", &meta.body_id)).unwrap();
    assert_eq!(stored, piece.repeat(25), "stored intact");

    // Three pieces, then nothing: S3's RequestTimeout after the idle second, and nothing kept.
    let head = signed_put_head(&twin, "/slow/stalled.bin", 25 * piece.len());
    let started = Instant::now();
    let answer = upload(
        &twin,
        &head,
        25,
        &piece,
        Duration::from_millis(100),
        Some(3),
    )
    .await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(
        answer.contains("<Message>Your socket connection"),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("x-amz-request-id"),
        "{answer}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "answered after the idle timeout: {waited:?}"
    );
    assert!(matches!(
        twin.store.get_object("slow", "stalled.bin"),
        Err(BucketError::NoSuchKey)
    ));
    assert!(receiving_area_is_empty(&twin), "a temporary file is left");

    // A body `s3s` reads whole itself (a bucket policy) is answered the same way.
    let head = signed_put_head(&twin, "/slow?policy", 400);
    let answer = upload(
        &twin,
        &head,
        4,
        b"{\"Version\"",
        Duration::from_millis(50),
        Some(1),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(twin
        .store
        .get_bucket("slow")
        .unwrap()
        .unwrap()
        .policy
        .is_none());
}
