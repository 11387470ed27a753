//! The `rolechain` binary as users run it: real processes, real files, exit codes.

mod support;

use std::process::Command;

use support::*;

const PICS_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadPics","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
const BUCKET_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"DevAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/dev"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/dev/pod";

#[test]
fn up_serves_the_twin_and_cluster_token_signs_for_its_issuer() {
    use std::io::{BufRead as _, BufReader};
    let dir = TempDir::new("up");
    let data = dir.0.join("data");
    let data_arg = data.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(["up", "--data-dir", &data_arg, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.rsplit(' ').next().unwrap().to_string();
    let addr = base.trim_start_matches("http://").to_string();
    let rest: Vec<String> = lines.by_ref().take(8).map(|l| l.unwrap()).collect();
    let text = rest.join("\n");
    assert!(text.contains("new, seeded with the world"), "{text}");
    assert!(text.contains("profiles: default (111111111111), developer (111111111111), shared_content (222222222222)"), "{text}");
    assert!(text.contains("export AWS_CONFIG_FILE="), "{text}");

    assert!(http_get(&addr, "/_rolechain/health").contains(r#"{"status":"ok"}"#));
    let config = std::fs::read_to_string(data.join("aws/config")).unwrap();
    assert!(
        config.contains(&format!("endpoint_url = {base}")),
        "{config}"
    );
    assert!(config.contains("addressing_style = path"), "{config}");
    let credentials = std::fs::read_to_string(data.join("aws/credentials")).unwrap();
    assert!(
        credentials.contains("[shared_content]\naws_access_key_id = AKIA"),
        "{credentials}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("aws/credentials"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "credentials must be private");
    }

    // A token minted by another process while `up` runs, for the issuer `up` serves.
    let token = cluster_token(&data, "my-service-account", &[]);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["sub"],
        "system:serviceaccount:default:my-service-account"
    );
    assert_eq!(claims["aud"][0], "sts.amazonaws.com");
    let issuer = claims["iss"].as_str().unwrap();
    assert!(issuer.starts_with(&format!("{base}/id/")), "{issuer}");
    let path = issuer.trim_start_matches(&base);
    let discovery = http_get(&addr, &format!("{path}/.well-known/openid-configuration"));
    assert!(
        discovery.contains(&format!("\"issuer\":\"{issuer}\"")),
        "{discovery}"
    );
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    assert!(http_get(&addr, &format!("{path}/keys")).contains(kid));

    let unknown = rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        &data_arg,
        "--cluster",
        "nope",
        "--namespace",
        "default",
        "--service-account",
        "x",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no local cluster named nope"));

    // SIGTERM stops it gracefully.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("rolechain up: stopped")),
        "{rest:?}"
    );
}

#[test]
fn cluster_token_without_a_data_dir_says_what_to_do() {
    let out = rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        "/nonexistent/rolechain",
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `rolechain up --data-dir /nonexistent/rolechain` once"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_allow_exits_zero() {
    let dir = TempDir::new("allow");
    let identity = dir.file("identity.json", PICS_READ);
    let out = rolechain(&[
        "explain",
        "--identity-policy",
        &identity,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::pics/indoor-cat.jpg",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("ALLOW: s3:GetObject"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_cross_account_deny_names_the_missing_side() {
    let dir = TempDir::new("cross");
    let bucket = dir.file("bucket.json", BUCKET_POLICY);
    // The bucket policy allows, but the caller's own account has no identity policy.
    let out = rolechain(&[
        "explain",
        "--resource-policy",
        &bucket,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::pics/indoor-cat.jpg",
        "--resource-account",
        "222222222222",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("DENY (implicit)"), "{text}");
    assert!(
        text.contains("no identity policy in the caller's own account"),
        "{text}"
    );
    assert!(text.contains("cross-account"), "{text}");
}

#[test]
fn explain_json_carries_the_trace() {
    let dir = TempDir::new("json");
    let identity = dir.file("identity.json", PICS_READ);
    let out = rolechain(&[
        "explain",
        "--json",
        "--identity-policy",
        &identity,
        "--principal",
        SESSION,
        "--action",
        "s3:PutObject",
        "--resource",
        "arn:aws:s3:::pics/indoor-cat.jpg",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "ImplicitDeny");
    assert_eq!(json["reason"]["rule"], "no-allow");
    assert_eq!(
        json["policies"][0]["statements"][0]["failed"]["element"],
        "action"
    );
    assert_eq!(json["request"]["action"], "s3:PutObject");
    // The only Allow names another action: nothing is close, and the JSON says so.
    assert!(json["closest_allow"].is_null(), "{json}");

    // An Allow for the action that fails on the resource is the closest.
    let out = rolechain(&[
        "explain",
        "--json",
        "--identity-policy",
        &identity,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::other/indoor-cat.jpg",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["closest_allow"]["statement"], 0, "{json}");
}

#[test]
fn explain_cross_account_without_bucket_policy_points_at_the_bucket() {
    // Seed 003's shape: a role in 111111111111 reads `pics` in 222222222222. Its identity
    // policy allows the read but also holds an unrelated sts:AssumeRole statement; the bucket
    // has no bucket policy. The fix is on the bucket, not on the AssumeRole statement.
    let dir = TempDir::new("nobucketpolicy");
    let identity = dir.file(
        "identity.json",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::222222222222:role/reader"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
    );
    let out = rolechain(&[
        "explain",
        "--identity-policy",
        &identity,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::pics/indoor-cat.jpg",
        "--resource-account",
        "222222222222",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("DENY (implicit)"), "{text}");
    assert!(!text.contains("sts:AssumeRole"), "{text}");
    assert!(
        text.contains("The bucket has no bucket policy: 'pics' in account 222222222222"),
        "{text}"
    );
    assert!(text.contains("222222222222"), "{text}");
}

#[test]
fn explain_multi_valued_context_from_the_command_line() {
    let dir = TempDir::new("multi");
    let identity = dir.file(
        "identity.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:TagRole","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}]}"#,
    );
    let run = |keys: &str| {
        rolechain(&[
            "explain",
            "--identity-policy",
            &identity,
            "--principal",
            SESSION,
            "--action",
            "iam:TagRole",
            "--context",
            &format!("aws:TagKeys={keys}"),
        ])
        .status
        .code()
    };
    assert_eq!(run(r#"["team","env"]"#), Some(0));
    assert_eq!(run(r#"["team","owner"]"#), Some(1));
}

#[test]
fn explain_malformed_policy_exits_two_naming_the_element() {
    let dir = TempDir::new("malformed");
    let bad = dir.file(
        "bad.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEqualz":{"aws:username":"a"}}}]}"#,
    );
    let out = rolechain(&[
        "explain",
        "--identity-policy",
        &bad,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("Invalid Condition type : StringEqualz"),
        "{err}"
    );
    assert!(err.contains("Statement[0].Condition.StringEqualz"), "{err}");
}

#[test]
fn explain_bad_input_exits_two() {
    let dir = TempDir::new("input");
    let identity = dir.file("identity.json", PICS_READ);
    let no_action = rolechain(&[
        "explain",
        "--identity-policy",
        &identity,
        "--principal",
        SESSION,
    ]);
    assert_eq!(no_action.status.code(), Some(2));
    assert!(stderr(&no_action).contains("missing --action"));
    let bad_principal = rolechain(&["explain", "--principal", "bob", "--action", "s3:GetObject"]);
    assert_eq!(bad_principal.status.code(), Some(2));
    assert!(stderr(&bad_principal).contains("invalid principal 'bob'"));
    let missing_file = rolechain(&[
        "explain",
        "--identity-policy",
        "/nonexistent/p.json",
        "--principal",
        SESSION,
        "--action",
        "a:b",
    ]);
    assert_eq!(missing_file.status.code(), Some(2));
    assert!(stderr(&missing_file).contains("cannot read /nonexistent/p.json"));
    let bad_kv = rolechain(&[
        "explain",
        "--principal",
        SESSION,
        "--action",
        "a:b",
        "--context",
        "novalue",
    ]);
    assert_eq!(bad_kv.status.code(), Some(2));
    assert!(stderr(&bad_kv).contains("--context expects KEY=VALUE"));
}

#[test]
fn explain_replays_a_scenario_file() {
    let dir = TempDir::new("scenario");
    let scenario = dir.file(
        "scenario.json",
        &format!(
            r#"{{"policies":{{"identity":[{{"name":"read","document":{PICS_READ}}}],
                "boundary":{{"name":"boundary","document":{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}}]}}}}}},
               "request":{{"principal":"{SESSION}","action":"s3:GetObject","resource":"arn:aws:s3:::pics/a.jpg"}}}}"#
        ),
    );
    let out = rolechain(&["explain", "--request", &scenario]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("but the permissions boundary does not"),
        "{}",
        stdout(&out)
    );
    // Options override the file: with the boundary's action the boundary allows, but then the
    // identity policy does not.
    let out = rolechain(&[
        "explain",
        "--request",
        &scenario,
        "--action",
        "s3:ListBucket",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("No statement allows"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn rotate_keys_while_up_serves_publishes_the_new_key_beside_the_old() {
    use base64::Engine as _;
    let dir = TempDir::new("rotate");
    let up = Up::start(&dir.path().join("data"), &[]);
    let data = up.data_dir.display().to_string();
    let kid_of = |token: &str| -> String {
        let header: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_string()
    };
    let mint = || up.pod_token("app");
    let before = kid_of(&mint());

    let out = rolechain(&[
        "cluster",
        "rotate-keys",
        "--data-dir",
        &data,
        "--cluster",
        "development-cluster",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated = stdout(&out).trim().to_string();
    assert_ne!(rotated, before);
    assert_eq!(
        kid_of(&mint()),
        rotated,
        "new tokens are signed with the new key"
    );

    // The running twin publishes both keys, newest first.
    let token = mint();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let path = claims["iss"]
        .as_str()
        .unwrap()
        .trim_start_matches(&up.base_url)
        .to_string();
    let jwks = http_get(up.addr(), &format!("{path}/keys"));
    let body = jwks.split("\r\n\r\n").nth(1).unwrap_or_default();
    let jwks: serde_json::Value = serde_json::from_str(body).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![rotated.as_str(), before.as_str()]);

    // Up to three keys stay published: two more rotations drop the first key.
    let mut newest = rotated.clone();
    for _ in 0..2 {
        let out = rolechain(&[
            "cluster",
            "rotate-keys",
            "--data-dir",
            &data,
            "--cluster",
            "development-cluster",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        newest = stdout(&out).trim().to_string();
    }
    let jwks = http_get(up.addr(), &format!("{path}/keys"));
    let body = jwks.split("\r\n\r\n").nth(1).unwrap_or_default();
    let jwks: serde_json::Value = serde_json::from_str(body).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 3, "{kids:?}");
    assert_eq!(kids[0], newest);
    assert!(kids.contains(&rotated.as_str()), "{kids:?}");
    assert!(!kids.contains(&before.as_str()), "{kids:?}");

    let unknown = rolechain(&[
        "cluster",
        "rotate-keys",
        "--data-dir",
        &data,
        "--cluster",
        "nope",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no local cluster named nope"));
}

/// The offline example of README.md ("Explain a decision offline"), as written there.
#[test]
fn explain_prints_the_readme_example() {
    let dir = TempDir::new("readme");
    dir.file(
        "trust.json",
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Irsa", "Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::222222222222:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {
    "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub": "system:serviceaccount:default:my-service-account"}}}]}"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .current_dir(dir.path())
        .args([
            "explain",
            "--trust-policy",
            "trust.json",
            "--principal",
            "federated:arn:aws:iam::222222222222:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
            "--action",
            "sts:AssumeRoleWithWebIdentity",
            "--resource",
            "arn:aws:iam::222222222222:role/S3_Pics",
            "--context",
            "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub=system:serviceaccount:default:other",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## Explain a decision offline")
        .nth(1)
        .expect("README has the offline section");
    let shown = section
        .split("prints\n\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("...\n```").next())
        .expect("README shows the output");
    assert!(shown.starts_with("DENY (implicit): "), "{shown}");
    assert!(
        stdout(&out).starts_with(shown),
        "README shows:\n{shown}\nrolechain printed:\n{}",
        stdout(&out)
    );
}

/// `rolechain cluster token > token`, as the README and the seeds write it, then the token file
/// used as the AWS CLI uses it: the file holds exactly the token (botocore refuses a container
/// token file with a newline, and STS a web identity token with one). `--output` does the same
/// into a private file.
#[test]
fn cluster_token_writes_exactly_the_token_into_files_and_pipes() {
    let dir = TempDir::new("token-file");
    let up = Up::start(&dir.path().join("data"), &[]);
    let data = up.data_dir.display().to_string();
    let token_file = dir.path().join("token");
    let status = Command::new("sh")
        .args([
            "-c",
            "\"$0\" cluster token --data-dir \"$1\" --cluster development-cluster --namespace default --service-account my-service-account > \"$2\"",
            env!("CARGO_BIN_EXE_rolechain"),
            &data,
            &token_file.display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let written = std::fs::read(&token_file).unwrap();
    assert_eq!(written.split(|b| *b == b'.').count(), 3);
    assert!(
        !written.iter().any(|b| b.is_ascii_whitespace()),
        "a redirected token is exactly the token"
    );

    let out_file = dir.path().join("out-token");
    let out = rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        &data,
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        "my-service-account",
        "--output",
        &out_file.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let written = std::fs::read(&out_file).unwrap();
    assert!(!written.is_empty() && !written.iter().any(|b| b.is_ascii_whitespace()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a token file is private");
    }
}

/// A data directory elsewhere, a port of its own: `up` records where it serves, and the other
/// commands find the twin and the clusters from `--data-dir` or `ROLECHAIN_DATA_DIR` alone.
#[test]
fn commands_find_the_twin_from_the_data_directory() {
    let dir = TempDir::new("find-twin");
    let data = dir.path().join("elsewhere");
    let up = Up::start(&data, &[]);
    let data_arg = data.display().to_string();
    assert_eq!(
        std::fs::read_to_string(data.join("endpoint")).unwrap(),
        up.base_url
    );

    let out = rolechain(&["explain", "--last-denied", "--data-dir", &data_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "The twin at {} has recorded no denial",
            up.base_url
        )),
        "{}",
        stdout(&out)
    );

    let by_env = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rolechain"))
            .args(args)
            .env("ROLECHAIN_DATA_DIR", &data)
            .env_remove("ROLECHAIN_ENDPOINT")
            .output()
            .unwrap()
    };
    let out = by_env(&["explain", "--last-denied"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = by_env(&[
        "cluster",
        "token",
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        "app",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).split('.').count(), 3);

    // An explicit endpoint wins, and a failure says where the address came from.
    let out = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(["explain", "--last-denied", "--data-dir", &data_arg])
        .env("ROLECHAIN_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("http://127.0.0.1:9, from --twin / ROLECHAIN_ENDPOINT"),
        "{}",
        stderr(&out)
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args([
            "explain",
            "--last-denied",
            "--data-dir",
            &empty.display().to_string(),
        ])
        .env_remove("ROLECHAIN_ENDPOINT")
        .output()
        .unwrap();
    if out.status.code() == Some(2) {
        assert!(
            stderr(&out).contains("has no endpoint file"),
            "{}",
            stderr(&out)
        );
    }
}

/// A new data directory while the AWS CLI's credential cache holds entries (from an older twin,
/// whose keys this one refuses): `up` says so and how to clear it.
#[test]
fn up_warns_of_the_aws_cli_cache_when_it_seeds_a_new_directory() {
    use std::io::{BufRead as _, BufReader};
    let dir = TempDir::new("cli-cache");
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws/cli/cache")).unwrap();
    std::fs::write(home.join(".aws/cli/cache/0123abcd.json"), "{}").unwrap();
    let banner = |data: &std::path::Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rolechain"))
            .args([
                "up",
                "--data-dir",
                &data.display().to_string(),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("HOME", &home)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("Stop with Ctrl-C"))
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        lines.join("\n")
    };
    let data = dir.path().join("data");
    let first = banner(&data);
    assert!(
        first.contains("the AWS CLI caches assumed-role credentials"),
        "{first}"
    );
    assert!(first.contains(".aws/cli/cache"), "{first}");
    // An existing directory: no note (its keys are the ones the cache was made with).
    let again = banner(&data);
    assert!(
        !again.contains("caches assumed-role credentials"),
        "{again}"
    );
}
