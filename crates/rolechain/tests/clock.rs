//! The twin's clock (`rolechain clock advance`, `/_rolechain/clock`) with seed 001's question,
//! "does my app survive its credentials expiring?", answered in seconds: a session's static
//! keys fail with `ExpiredToken` once the clock passes their expiry, a boto3 process using
//! botocore's `DeferredRefreshableCredentials` keeps reading across two expiries, and a pod
//! token expires on the twin's time too.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use support::*;

const READER: &str = "arn:aws:iam::222222222222:role/pics-reader";

fn clock(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .arg("clock")
        .args(args)
        .env("ROLECHAIN_DATA_DIR", data)
        .env_remove("ROLECHAIN_ENDPOINT")
        .output()
        .unwrap()
}

fn advance(data: &std::path::Path, by: &str) {
    let out = clock(data, &["advance", by]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A role in shared_content the developer account's admin may assume, reading `pics`.
fn reader_role(up: &Up) {
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "create-role",
            "--role-name",
            "pics-reader",
            "--assume-role-policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}]}"#,
        ],
    ));
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "pics-reader",
            "--policy-name",
            "pics",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
        ],
    ));
}

#[test]
fn time_passes_for_sessions_refreshing_clients_and_tokens() {
    let dir = TempDir::new("clock");
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    let Some(python) = python() else {
        return;
    };
    let shown = clock(&data, &[]);
    assert!(
        stdout(&shown).contains("(0s ahead of real time"),
        "{}",
        stdout(&shown)
    );
    reader_role(&up);

    // Static keys from one session, as the seed's entrypoint script exports them.
    let creds = ok_json(up.aws(
        Some("developer"),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            READER,
            "--role-session-name",
            "entrypoint",
            "--duration-seconds",
            "900",
        ],
    ))["Credentials"]
        .clone();
    let keys = (
        creds["AccessKeyId"].as_str().unwrap(),
        creds["SecretAccessKey"].as_str().unwrap(),
        creds["SessionToken"].as_str().unwrap(),
    );
    let head = [
        "s3api",
        "head-object",
        "--bucket",
        "pics",
        "--key",
        "indoor-cat.jpg",
    ];
    assert!(up.aws_with_session(keys, &head).unwrap().status.success());

    // The app that renews its own credentials, started before time passes.
    // botocore judges expiry by its own clock: the app's clock is the twin's here, read from
    // `/_rolechain/clock`, as a pod's would be if time really passed.
    let script = r#"
import datetime, json, sys, urllib.request
def twin_now():
    with urllib.request.urlopen(sys.argv[2] + "/_rolechain/clock") as r:
        offset = json.load(r)["offsetSeconds"]
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
from boto3 import Session
from botocore.credentials import create_assume_role_refresher, DeferredRefreshableCredentials
session = Session(profile_name="developer")
session._session._credentials = DeferredRefreshableCredentials(
    method="sts-assume-role",
    time_fetcher=twin_now,
    refresh_using=create_assume_role_refresher(
        session.client("sts"),
        {"RoleSessionName": "refreshing", "RoleArn": sys.argv[1], "DurationSeconds": 900},
    ),
)
s3 = session.client("s3")
for line in sys.stdin:
    s3.get_object(Bucket="pics", Key="indoor-cat.jpg")
    print(session.get_credentials().get_frozen_credentials().access_key, flush=True)
"#;
    let mut app = Command::new(&python)
        .args(["-c", script, READER, &up.base_url])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &data)
        .env("AWS_CONFIG_FILE", data.join("aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("aws/credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_app = app.stdin.take().unwrap();
    let mut from_app = BufReader::new(app.stdout.take().unwrap());
    let mut read = || {
        writeln!(to_app, "read").unwrap();
        let mut key = String::new();
        from_app.read_line(&mut key).unwrap();
        key.trim().to_owned()
    };
    let mut sessions = vec![read()];
    for _ in 0..2 {
        // Past the 15-minute session's expiry, each time.
        advance(&data, "16m");
        let key = read();
        assert!(key.starts_with("ASIA"), "the app stopped: {key:?}");
        sessions.push(key);
    }
    let shown = stdout(&clock(&data, &[]));
    assert!(shown.contains("(1920s ahead of real time"), "{shown}");
    drop(to_app);
    assert!(app.wait().unwrap().success(), "the refreshing app failed");
    sessions.dedup();
    assert_eq!(
        sessions.len(),
        3,
        "a new session after each expiry: {sessions:?}"
    );

    // The static keys expired on the twin's time.
    let expired = up.aws_with_session(keys, &head).unwrap();
    assert!(!expired.status.success());
    let expired = up
        .aws_with_session(keys, &["sts", "get-caller-identity"])
        .unwrap();
    assert!(
        stderr(&expired).contains("ExpiredToken"),
        "{}",
        stderr(&expired)
    );

    // A pod token minted now (an hour's life) is refused after two more hours.
    let associated = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(["cluster", "associate-oidc-provider"])
        .env("ROLECHAIN_DATA_DIR", &data)
        .env_remove("ROLECHAIN_ENDPOINT")
        .output()
        .unwrap();
    assert!(associated.status.success(), "{}", stderr(&associated));
    let token = up.pod_token("my-service-account");
    let file = dir.file("token", &token);
    advance(&data, "2h");
    let refused = up
        .assume_role_with_web_identity(
            "arn:aws:iam::111111111111:role/any",
            "pod",
            &format!("file://{file}"),
        )
        .unwrap();
    assert!(
        stderr(&refused).contains("Token expired"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn the_clock_route_refuses_bad_input() {
    let dir = TempDir::new("clock-bad");
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    for (body, says) in [
        (r#"{"advance":"soon"}"#, "invalid duration 'soon'"),
        (r#"{"advance":"-5m"}"#, "invalid duration"),
        (r#"{"advnce":"5m"}"#, "unknown field `advnce`"),
        (r#"["5m"]"#, "must be a JSON object"),
        (r#"{"advance":"90000000h"}"#, "at most 10 years"),
    ] {
        let (status, text) = http(
            up.addr(),
            "POST",
            "/_rolechain/clock",
            &[("Content-Type", "application/json")],
            body,
        );
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    let shown = stdout(&clock(&data, &[]));
    assert!(
        shown.contains("(0s ahead of real time"),
        "nothing moved: {shown}"
    );
    let bad = clock(&data, &["advance", "tomorrow"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}
