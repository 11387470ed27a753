//! Seed 000 replayed with the AWS CLI against `rolechain up`: the development cluster's issuer
//! (`aws eks describe-cluster`) becomes an OIDC provider in the shared_content account, a role
//! there trusts the pod's service account, and the pod — with nothing but its token — assumes
//! it across accounts and reads `pics/indoor-cat.jpg`. What the role does not allow is refused,
//! and `rolechain explain --last-denied` says why.

mod support;

use support::*;

const SHARED: &str = "222222222222";

#[test]
fn seed_000_cross_account_irsa_reads_the_shared_picture() {
    let dir = TempDir::new("seed-000");
    let up = Up::start(&dir.path().join("data"), &[]);
    if python().is_none() {
        return;
    }
    let files = dir.path();

    // Step 2: the provider URL, captured as the seed does.
    let issuer = up
        .aws(
            Some("developer"),
            &[
                "eks",
                "describe-cluster",
                "--name",
                "development-cluster",
                "--query",
                "cluster.identity.oidc.issuer",
                "--output",
                "text",
            ],
        )
        .unwrap();
    assert!(issuer.status.success(), "{}", stderr(&issuer));
    let issuer = stdout(&issuer).trim().to_string();
    assert!(issuer.starts_with(&up.base_url), "{issuer}");
    let host_path = issuer.trim_start_matches("http://").to_string();
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
        ],
    ));

    // Step 3: the role in shared_content, trusting the pod's service account.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
  "Principal":{{"Federated":"arn:aws:iam::{SHARED}:oidc-provider/{host_path}"}},
  "Action":"sts:AssumeRoleWithWebIdentity",
  "Condition":{{"StringEquals":{{"{host_path}:sub":"system:serviceaccount:default:s3-shared-content"}}}}}}]}}"#
    );
    let trust_file = file_arg(files, "trust.json", &trust);
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "create-role",
            "--role-name",
            "s3-read-object",
            "--assume-role-policy-document",
            &trust_file,
        ],
    ));
    let read_pics = r#"{"Version":"2012-10-17","Statement":[{"Sid":"s3bucket","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
    let put = up
        .aws(
            Some("shared_content"),
            &[
                "iam",
                "put-role-policy",
                "--role-name",
                "s3-read-object",
                "--policy-name",
                "s3-bucket",
                "--policy-document",
                read_pics,
            ],
        )
        .unwrap();
    assert!(put.status.success(), "{}", stderr(&put));

    // The pod: its token only, assuming the role in the other account for 1500 s.
    let token_file = file_arg(files, "token", &up.pod_token("s3-shared-content"));
    let role_arn = format!("arn:aws:iam::{SHARED}:role/s3-read-object");
    let before = time_now();
    let creds = ok_json(up.aws(
        None,
        &[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            &role_arn,
            "--role-session-name",
            "x-account",
            "--web-identity-token",
            &token_file,
            "--duration-seconds",
            "1500",
        ],
    ));
    assert_eq!(
        creds["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{SHARED}:assumed-role/s3-read-object/x-account").as_str()
    );
    let expiration = creds["Credentials"]["Expiration"].as_str().unwrap();
    let expires =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let lifetime = (expires - before).whole_seconds();
    assert!((1495..=1505).contains(&lifetime), "{lifetime}");
    let session = (
        creds["Credentials"]["AccessKeyId"].as_str().unwrap(),
        creds["Credentials"]["SecretAccessKey"].as_str().unwrap(),
        creds["Credentials"]["SessionToken"].as_str().unwrap(),
    );

    // "Perform a get object operation."
    let picture = files.join("mypic.jpg");
    let got = ok_json(up.aws_with_session(
        session,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "pics",
            "--key",
            "indoor-cat.jpg",
            &picture.display().to_string(),
        ],
    ));
    assert_eq!(got["ContentType"], "image/jpeg");
    let bytes = std::fs::read(&picture).unwrap();
    assert_eq!(got["ContentLength"], bytes.len() as u64);
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");
    assert!(got["ETag"].as_str().unwrap().starts_with('"'));

    // Reading is all the role allows: a write is refused and explained.
    std::fs::write(files.join("hello.txt"), "Hello\n").unwrap();
    let body = files.join("hello.txt").display().to_string();
    let refused = up
        .aws_with_session(
            session,
            &[
                "s3api",
                "put-object",
                "--bucket",
                "pics",
                "--key",
                "graffiti.txt",
                "--body",
                &body,
            ],
        )
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("AccessDenied"),
        "{}",
        stderr(&refused)
    );
    let explained = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
    assert_eq!(explained.status.code(), Some(1), "{}", stderr(&explained));
    let text = stdout(&explained);
    assert!(
        text.contains("s3:PutObject on arn:aws:s3:::pics/graffiti.txt")
            && text.contains("assumed-role/s3-read-object/x-account")
            && text.contains("the action s3:PutObject is not in its Action"),
        "{text}"
    );

    // Another service account of the same cluster cannot assume the role.
    let other_file = file_arg(files, "other", &up.pod_token("default"));
    let other = up
        .assume_role_with_web_identity(&role_arn, "x-account", &other_file)
        .unwrap();
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("AccessDenied"),
        "{}",
        stderr(&other)
    );
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
