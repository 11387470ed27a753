//! The S3 state of `rolechain up` on disk: private whatever the umask, closed up when an older
//! data directory is reopened, and rid of what a SIGKILL left mid-upload, while a multipart
//! upload begun before the kill completes after the restart.
//!
//! Objects go in through the AWS CLI (profiles `up` wrote) and, for uploads that must be in
//! flight at the kill, over raw HTTP signed with `aws-sigv4` (`UNSIGNED-PAYLOAD`, so the body is
//! sent as it is produced). Skipped (passing) without the AWS CLI unless
//! `ROLECHAIN_REQUIRE_PEERS=1`.

#![cfg(unix)]

mod support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use support::{ok_json, python, TempDir, Up};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `root` (and `root`): path, whether a directory, mode.
fn walk(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = vec![(root.to_path_buf(), true, mode(root))];
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_dir = path.is_dir();
            out.push((path.clone(), is_dir, mode(&path)));
            if is_dir {
                pending.push(path);
            }
        }
    }
    out
}

/// Asserts every directory under `data` is 0700 and every file 0600, and that the files worth
/// protecting are among them. `$HOME/.aws`, the AWS CLI's own cache (its `HOME` is the data
/// directory in these tests), is not `up`'s.
fn assert_private(data: &Path) {
    let entries: Vec<_> = walk(data)
        .into_iter()
        .filter(|(p, _, _)| !p.starts_with(data.join(".aws")))
        .collect();
    for must in [
        "state/twin-state.redb",
        "aws/credentials",
        "aws/config",
        "state/s3/.multipart",
        "state/s3/.receiving",
        "state/s3/private-bucket",
    ] {
        assert!(
            entries.iter().any(|(p, _, _)| p.ends_with(must)),
            "{must} missing from {entries:?}"
        );
    }
    assert!(entries
        .iter()
        .any(|(p, _, _)| p.to_string_lossy().contains("/oidc/")));
    for (path, is_dir, mode) in entries {
        let wanted = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, wanted, "{} is {mode:o}", path.display());
    }
}

fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

#[test]
fn state_is_private_under_umask_022_and_older_directories_are_closed_up() {
    if python().is_none() {
        return;
    }
    let dir = TempDir::new("s3-modes");
    let data = dir.path().join("data");
    let listen = free_listen();
    let up = Up::start_with_umask(&data, &listen, "022");
    let body = dir.path().join("body.txt");
    std::fs::write(&body, b"private\n").unwrap();
    let body = body.display().to_string();
    ok_json(up.aws(
        Some("default"),
        &["s3api", "create-bucket", "--bucket", "private-bucket"],
    ));
    ok_json(up.aws(
        Some("default"),
        &["s3", "cp", &body, "s3://private-bucket/a/b.txt"],
    ));
    let upload = ok_json(up.aws(
        Some("default"),
        &[
            "s3api",
            "create-multipart-upload",
            "--bucket",
            "private-bucket",
            "--key",
            "big",
        ],
    ));
    let upload_id = upload["UploadId"].as_str().unwrap();
    ok_json(up.aws(
        Some("default"),
        &[
            "s3api",
            "upload-part",
            "--bucket",
            "private-bucket",
            "--key",
            "big",
            "--upload-id",
            upload_id,
            "--part-number",
            "1",
            "--body",
            &body,
        ],
    ));
    assert_private(&data);
    drop(up);

    // What an older version left: everything open to the group and others but the signing
    // keys, which were always 0600 (the issuer refuses a loose one rather than trust it).
    for (path, is_dir, _) in walk(&data) {
        if !is_dir && path.parent().is_some_and(|p| p.ends_with("keys")) {
            continue;
        }
        let loose = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let up = Up::start_with_umask(&data, &listen, "022");
    assert_private(&data);
    let got = dir.path().join("got.txt");
    ok_json(up.aws(
        Some("default"),
        &[
            "s3",
            "cp",
            "s3://private-bucket/a/b.txt",
            &got.display().to_string(),
        ],
    ));
    assert_eq!(std::fs::read(&got).unwrap(), b"private\n");
}

/// Opens a signed `PUT` of `len` bytes to `path_and_query` and sends `sent` of them, leaving
/// the rest unsent: an upload in flight.
fn start_upload(up: &Up, path_and_query: &str, len: usize, sent: &[u8]) -> std::net::TcpStream {
    let identity: Identity = support::default_credentials(&up.data_dir).into();
    let addr = up.addr();
    let url = format!("http://{addr}{path_and_query}");
    let length = len.to_string();
    let headers = [
        ("host", addr),
        ("content-length", length.as_str()),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
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
    let mut head = format!("PUT {path_and_query} HTTP/1.1\r\n");
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_sigkill_mid_upload_leaves_nothing_and_earlier_multipart_uploads_complete() {
    if python().is_none() {
        return;
    }
    let dir = TempDir::new("s3-crash");
    let data = dir.path().join("data");
    let listen = free_listen();
    let mut up = Up::start_on(&data, &listen, &[]);
    let part_file = dir.path().join("part.bin");
    let part: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&part_file, &part).unwrap();
    let part_arg = part_file.display().to_string();
    ok_json(up.aws(
        Some("default"),
        &["s3api", "create-bucket", "--bucket", "crash-bucket"],
    ));
    let upload = ok_json(up.aws(
        Some("default"),
        &[
            "s3api",
            "create-multipart-upload",
            "--bucket",
            "crash-bucket",
            "--key",
            "big.bin",
        ],
    ));
    let upload_id = upload["UploadId"].as_str().unwrap().to_string();
    let etag = ok_json(up.aws(
        Some("default"),
        &[
            "s3api",
            "upload-part",
            "--bucket",
            "crash-bucket",
            "--key",
            "big.bin",
            "--upload-id",
            &upload_id,
            "--part-number",
            "1",
            "--body",
            &part_arg,
        ],
    ))["ETag"]
        .as_str()
        .unwrap()
        .to_string();

    // Two uploads in flight at the kill: an object and a second part.
    let s3 = data.join("state/s3");
    let _object = start_upload(&up, "/crash-bucket/half.bin", 1_000_000, &[7u8; 65_536]);
    let _part = start_upload(
        &up,
        &format!("/crash-bucket/big.bin?partNumber=2&uploadId={upload_id}"),
        1_000_000,
        &[9u8; 65_536],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while names_in(&s3.join(".receiving")).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the uploads never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded_parts = names_in(&s3.join(".multipart").join(&upload_id));
    assert_eq!(recorded_parts.len(), 1);
    up.child.kill().unwrap(); // SIGKILL
    up.child.wait().unwrap();
    assert_eq!(
        names_in(&s3.join(".receiving")).len(),
        2,
        "the kill left them"
    );
    // And an upload directory of an upload that was never recorded, as a kill between the
    // part's rename and its transaction would leave.
    std::fs::create_dir_all(s3.join(".multipart/00000000unrecorded")).unwrap();
    std::fs::write(s3.join(".multipart/00000000unrecorded/p-x"), b"x").unwrap();

    let up = Up::start_on(&data, &listen, &[]);
    assert_eq!(names_in(&s3.join(".receiving")), Vec::<String>::new());
    assert_eq!(names_in(&s3.join(".multipart")), vec![upload_id.clone()]);
    assert_eq!(
        names_in(&s3.join(".multipart").join(&upload_id)),
        recorded_parts
    );
    let listed = ok_json(up.aws(
        Some("default"),
        &["s3api", "list-objects-v2", "--bucket", "crash-bucket"],
    ));
    // The CLI pages the listing and prints no `KeyCount`: no `Contents` is no object.
    assert_eq!(listed["Contents"], serde_json::Value::Null, "{listed}");

    // The upload begun before the kill completes with the part it had.
    let parts = dir.path().join("parts.json");
    std::fs::write(
        &parts,
        serde_json::json!({"Parts": [{"PartNumber": 1, "ETag": etag}]}).to_string(),
    )
    .unwrap();
    ok_json(up.aws(
        Some("default"),
        &[
            "s3api",
            "complete-multipart-upload",
            "--bucket",
            "crash-bucket",
            "--key",
            "big.bin",
            "--upload-id",
            &upload_id,
            "--multipart-upload",
            &format!("file://{}", parts.display()),
        ],
    ));
    let got = dir.path().join("got.bin");
    ok_json(up.aws(
        Some("default"),
        &[
            "s3",
            "cp",
            "s3://crash-bucket/big.bin",
            &got.display().to_string(),
        ],
    ));
    assert_eq!(std::fs::read(&got).unwrap(), part);
}
