//! `rolechain agent` end to end, in front of `rolechain up`: real SDKs (boto3's container
//! provider, the AWS CLI, aws-sdk-rust's ECS provider) get the final credentials of a two-hop
//! cross-account chain from it and read seed 000's picture; a burst of 200 pods of 10 service
//! accounts costs 10 chains; hostile requests get nothing; cached credentials outlive the
//! twin; SIGTERM stops it gracefully.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::agent::*;
use support::*;

struct World {
    _dir: TempDir,
    up: Up,
    issuer: String,
    python: String,
    files: std::path::PathBuf,
}

/// `up` with the chain created, or `None` (said loudly) without the AWS CLI.
fn world(name: &str) -> Option<World> {
    let dir = TempDir::new(name);
    let up = Up::start(&dir.path().join("data"), &[]);
    let python = python()?;
    let files = dir.path().to_path_buf();
    let issuer = create_chain(&up, &files);
    Some(World {
        _dir: dir,
        up,
        issuer,
        python,
        files,
    })
}

const BOTO3_POD: &str = r#"
import json, boto3
ident = boto3.client("sts").get_caller_identity()
body = boto3.client("s3").get_object(Bucket="pics", Key="indoor-cat.jpg")["Body"].read()
creds = boto3.Session().get_credentials()
print(json.dumps({"arn": ident["Arn"], "account": ident["Account"], "bytes": len(body),
                  "method": creds.method}))
"#;

#[test]
fn sdks_get_the_chains_final_credentials_from_the_agent() {
    let Some(w) = world("agent-sdks") else { return };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    let agent = Agent::start(&w.up, &w.issuer, &assoc, &[]);
    let token = w.files.join("token");
    std::fs::write(&token, pod_token(&w.up, "reader", "reader-7d9f", &[])).unwrap();

    // boto3, through its own container credential provider.
    let out = as_pod(&w.python, &w.up, &agent, &token, &["-c", BOTO3_POD]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen["arn"],
        format!("arn:aws:sts::{SHARED}:assumed-role/{PICS}/default.reader").as_str()
    );
    assert_eq!(seen["account"], SHARED);
    assert_eq!(seen["bytes"], 517);
    assert_eq!(seen["method"], "container-role");

    // The AWS CLI, the same way.
    let cli = |args: &[&str]| {
        let mut full = vec!["-m", "awscli", "--output", "json"];
        full.extend_from_slice(args);
        as_pod(&w.python, &w.up, &agent, &token, &full)
    };
    let out = cli(&["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ident: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ident["Account"], SHARED);
    let picture = w.files.join("cat.jpg");
    let out = cli(&[
        "s3api",
        "get-object",
        "--bucket",
        "pics",
        "--key",
        "indoor-cat.jpg",
        &picture.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&picture).unwrap().len(), 517);

    // aws-sdk-rust's ECS (container) provider.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let creds = runtime.block_on(async {
        use aws_credential_types::provider::ProvideCredentials as _;
        // nextest runs each test in its own process, so the provider can read the
        // variables from this process's environment as it would in a pod.
        std::env::set_var(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{}/v1/credentials", agent.addr),
        );
        std::env::set_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token);
        let config = aws_config::provider_config::ProviderConfig::default()
            .with_http_client(aws_smithy_http_client::Builder::new().build_http());
        aws_config::ecs::EcsCredentialsProvider::builder()
            .configure(&config)
            .build()
            .provide_credentials()
            .await
    });
    let creds = creds.expect("the ECS provider gets credentials from the agent");
    let (_, raw) = agent.credentials(&std::fs::read_to_string(&token).unwrap());
    assert_eq!(creds.access_key_id(), raw["AccessKeyId"].as_str().unwrap());
    let left = creds
        .expiry()
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(left >= Duration::from_secs(15 * 60), "{left:?}");

    // Three clients, one chain: everything after the first request came from the cache.
    assert_eq!(sts_calls(&w.up, "AssumeRoleWithWebIdentity"), 1.0);
    assert_eq!(sts_calls(&w.up, "AssumeRole"), 1.0);
    assert!(agent.metric("rolechain_agent_cache_hits_total") >= 3.0);
}

#[test]
fn a_burst_of_200_pods_of_10_service_accounts_costs_10_chains() {
    let Some(w) = world("agent-burst") else {
        return;
    };
    let accounts: Vec<String> = (0..10).map(|i| format!("burst-{i}")).collect();
    let names: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&names)).unwrap();
    let agent = Agent::start(&w.up, &w.issuer, &assoc, &[]);
    let pods: Vec<(String, String)> = (0..200)
        .map(|i| {
            let sa = &accounts[i % 10];
            (
                sa.clone(),
                pod_token(&w.up, sa, &format!("{sa}-pod-{i}"), &[]),
            )
        })
        .collect();
    let before = (
        sts_calls(&w.up, "AssumeRoleWithWebIdentity"),
        sts_calls(&w.up, "AssumeRole"),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = agent.addr.clone();
    let pods = Arc::new(pods);
    let started = Instant::now();
    let answers = runtime.block_on(async move {
        let gate = Arc::new(tokio::sync::Barrier::new(2000));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..2000 {
            let (addr, pods, gate) = (addr.clone(), Arc::clone(&pods), Arc::clone(&gate));
            tasks.spawn(async move {
                let (sa, token) = &pods[i % 200];
                let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                gate.wait().await;
                let request = format!(
                    "GET /v1/credentials HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
                );
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).await.unwrap();
                (sa.clone(), response)
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = tasks.join_next().await {
            answers.push(done.unwrap());
        }
        answers
    });
    let took = started.elapsed();
    let mut keys = std::collections::HashMap::new();
    for (sa, response) in &answers {
        assert!(response.starts_with("HTTP/1.1 200"), "{sa}: {response}");
        let body: serde_json::Value =
            serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["AccountId"], SHARED);
        let key = body["AccessKeyId"].as_str().unwrap().to_string();
        let first = keys.entry(sa.clone()).or_insert_with(|| key.clone());
        assert_eq!(
            *first, key,
            "{sa}: every pod of a service account shares its credentials"
        );
    }
    assert_eq!(answers.len(), 2000);
    let distinct: std::collections::HashSet<&String> = keys.values().collect();
    assert_eq!(distinct.len(), 10, "one set per service account");
    assert_eq!(
        sts_calls(&w.up, "AssumeRoleWithWebIdentity") - before.0,
        10.0
    );
    assert_eq!(sts_calls(&w.up, "AssumeRole") - before.1, 10.0);
    assert_eq!(agent.metric("rolechain_agent_cache_entries"), 10.0);
    eprintln!("2000 concurrent requests of 200 pods answered in {took:?}");
}

#[test]
fn hostile_and_mistaken_requests_get_nothing() {
    let Some(w) = world("agent-hostile") else {
        return;
    };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    let agent = Agent::start(&w.up, &w.issuer, &assoc, &["--clock-skew", "0s"]);
    let good = pod_token(&w.up, "reader", "reader-1", &[]);
    let (status, body) = agent.credentials(&good);
    assert_eq!(status, 200, "{body}");

    let code = |(status, body): (u16, serde_json::Value)| {
        (
            status,
            body["code"].as_str().unwrap_or_default().to_string(),
            body,
        )
    };
    // A name for the node instead of its address (DNS rebinding), before the token is read.
    let (status, c, body) = code(agent.get(Some("node.example:80"), Some(&good)));
    assert_eq!((status, c.as_str()), (403, "AccessDenied"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("invalid address"),
        "{body}"
    );
    let (status, ..) = code(agent.get(None, Some(&good)));
    assert_eq!(status, 403);
    // No token, an empty one, not a JWT.
    for auth in [None, Some(""), Some("   ")] {
        let (status, c, body) = code(agent.get(Some(&agent.addr), auth));
        assert_eq!(
            (status, c.as_str()),
            (400, "InvalidRequest"),
            "{auth:?}: {body}"
        );
    }
    let (status, c, _) = code(agent.credentials("not-a-jwt"));
    assert_eq!((status, c.as_str()), (400, "InvalidRequest"));
    // A forged signature.
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (status, c, body) = code(agent.credentials(&forged));
    assert_eq!(
        (status, c.as_str()),
        (403, "InvalidTokenException"),
        "{body}"
    );
    // The wrong audience, a token bound to no pod, an expired token.
    let sts_audience = pod_token(
        &w.up,
        "reader",
        "reader-1",
        &["--audience", "sts.amazonaws.com"],
    );
    let (status, c, body) = code(agent.credentials(&sts_audience));
    assert_eq!(
        (status, c.as_str()),
        (403, "InvalidTokenException"),
        "{body}"
    );
    let unbound = cluster_token(&w.up.data_dir, "reader", &["--audience", POD_AUDIENCE]);
    let (status, _, body) = code(agent.credentials(&unbound));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not bound to a pod"),
        "{body}"
    );
    let short = pod_token(&w.up, "reader", "reader-1", &["--duration", "1"]);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, c, body) = code(agent.credentials(&short));
    assert_eq!(
        (status, c.as_str()),
        (403, "ExpiredTokenException"),
        "{body}"
    );
    // A service account with no association (and no --eks-auth).
    let stranger = pod_token(&w.up, "stranger", "stranger-1", &[]);
    let (status, c, body) = code(agent.credentials(&stranger));
    assert_eq!(
        (status, c.as_str()),
        (404, "ResourceNotFoundException"),
        "{body}"
    );
    // Unknown paths.
    let (status, c, _) =
        code(agent.request("/v1/credentials/../../etc", Some(&agent.addr), Some(&good)));
    assert_eq!((status, c.as_str()), (404, "NotFound"));
    // None of the refused requests reached STS beyond the one good chain, and no token or
    // secret is in the metrics.
    assert_eq!(sts_calls(&w.up, "AssumeRoleWithWebIdentity"), 1.0);
    let page = http_get(&agent.metrics, "/metrics");
    assert!(
        !page.contains(&good[..40]) && !page.contains("Secret"),
        "{page}"
    );
    assert!(agent.metric(r#"rolechain_agent_requests_total{status="403"}"#) >= 5.0);
}

#[test]
fn cached_credentials_outlive_the_twin_and_an_uncached_request_fails_in_time() {
    let Some(w) = world("agent-outage") else {
        return;
    };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader", "latecomer"])).unwrap();
    let agent = Agent::start(
        &w.up,
        &w.issuer,
        &assoc,
        &["--request-timeout", "3s", "--upstream-timeout", "1s"],
    );
    let token = pod_token(&w.up, "reader", "reader-1", &[]);
    let (status, before) = agent.credentials(&token);
    assert_eq!(status, 200);
    let late = pod_token(&w.up, "latecomer", "late-1", &[]);

    // The twin goes away.
    let World { up, _dir, .. } = w;
    let data_dir = up.data_dir.clone();
    drop(up);
    let (status, during) = agent.credentials(&token);
    assert_eq!(status, 200, "{during}");
    assert_eq!(during["AccessKeyId"], before["AccessKeyId"]);
    let started = Instant::now();
    let (status, body) = agent.credentials(&late);
    assert!((500..600).contains(&status), "{status} {body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(body["code"], "ConnectionFailed", "{body}");
    let _ = data_dir;
}

#[test]
fn sigterm_stops_the_agent_gracefully() {
    let Some(w) = world("agent-sigterm") else {
        return;
    };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    let mut agent = Agent::start(&w.up, &w.issuer, &assoc, &[]);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = agent.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_association_file_reloads_without_dropping_unchanged_chains() {
    let Some(w) = world("agent-reload") else {
        return;
    };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    let agent = Agent::start(&w.up, &w.issuer, &assoc, &["--reload-interval", "100ms"]);
    let reader = pod_token(&w.up, "reader", "reader-1", &[]);
    let newcomer = pod_token(&w.up, "newcomer", "newcomer-1", &[]);
    let (status, first) = agent.credentials(&reader);
    assert_eq!(status, 200);
    assert_eq!(agent.credentials(&newcomer).0, 404);
    let wait_for = |sample: &str, value: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while agent.metric(sample) < value {
            assert!(Instant::now() < deadline, "{sample} never reached {value}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // Added: the newcomer is served, the reader keeps its credentials without a new chain.
    std::fs::write(&assoc, associations(&["reader", "newcomer"])).unwrap();
    wait_for(r#"rolechain_agent_config_reloads_total{outcome="ok"}"#, 2.0);
    assert_eq!(agent.metric("rolechain_agent_associations"), 2.0);
    let (status, again) = agent.credentials(&reader);
    assert_eq!(status, 200);
    assert_eq!(again["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(agent.credentials(&newcomer).0, 200);
    assert_eq!(sts_calls(&w.up, "AssumeRoleWithWebIdentity"), 2.0);

    // A bad file is refused; the last good one stays in use.
    std::fs::write(&assoc, "associations:\n  - namespace: default\n    serviceAccount: reader\n    roleArn: not-an-arn\n").unwrap();
    wait_for(
        r#"rolechain_agent_config_reloads_total{outcome="rejected"}"#,
        1.0,
    );
    assert_eq!(agent.credentials(&newcomer).0, 200);
    assert_eq!(agent.metric("rolechain_agent_associations"), 2.0);

    // Removed: the newcomer's entry goes, the reader's stays.
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    wait_for(r#"rolechain_agent_config_reloads_total{outcome="ok"}"#, 3.0);
    assert_eq!(agent.credentials(&newcomer).0, 404);
    let (_, still) = agent.credentials(&reader);
    assert_eq!(still["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(
        agent.metric(r#"rolechain_agent_cache_evictions_total{reason="Reconfigured"}"#),
        1.0
    );
    assert_eq!(sts_calls(&w.up, "AssumeRoleWithWebIdentity"), 2.0);
}

#[test]
fn eks_auth_starts_a_chain_for_service_accounts_without_a_role() {
    let Some(w) = world("agent-eks-auth") else {
        return;
    };
    let up = &w.up;
    // Seed 004's primary role, trusted by the EKS Pod Identity service principal, and the
    // cluster's pod identity associations of default/pods-sa and default/chained-sa.
    let pods_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-role",
            "--role-name",
            "eks-primary",
            "--assume-role-policy-document",
            pods_trust,
        ],
    ));
    let primary = format!("arn:aws:iam::{DEV}:role/eks-primary");
    for service_account in ["pods-sa", "chained-sa"] {
        ok_json(up.aws(
            Some("developer"),
            &[
                "eks",
                "create-pod-identity-association",
                "--cluster-name",
                "development-cluster",
                "--namespace",
                "default",
                "--service-account",
                service_account,
                "--role-arn",
                &primary,
            ],
        ));
    }
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam", "put-role-policy", "--role-name", "eks-primary", "--policy-name", "assume-pics",
            "--policy-document",
            &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::{SHARED}:role/{PICS}"}}]}}"#),
        ],
    ));
    let pics_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{DEV}:role/{FIRST}","arn:aws:iam::{DEV}:role/eks-primary"]}},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{{"StringEquals":{{"sts:ExternalId":"{EXTERNAL_ID}"}}}}}}]}}"#
    );
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "update-assume-role-policy",
            "--role-name",
            PICS,
            "--policy-document",
            &pics_trust,
        ],
    ));
    // chained-sa: EKS Auth first, then the hop into shared_content.
    let assoc = w.files.join("associations.yaml");
    std::fs::write(
        &assoc,
        format!(
            "associations:\n  - namespace: default\n    serviceAccount: chained-sa\n    targetRoleArns:\n      - arn: arn:aws:iam::{SHARED}:role/{PICS}\n        externalId: {EXTERNAL_ID}\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(up, &w.issuer, &assoc, &["--eks-auth"]);

    let token = w.files.join("pods-token");
    std::fs::write(&token, pod_token(up, "pods-sa", "pods-sa-1", &[])).unwrap();
    let whoami = "import boto3, json; print(json.dumps(boto3.client('sts').get_caller_identity()))";
    let out = as_pod(&w.python, up, &agent, &token, &["-c", whoami]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ident: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ident["Account"], DEV);
    assert!(
        ident["Arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/eks-primary/"),
        "{ident}"
    );

    std::fs::write(&token, pod_token(up, "chained-sa", "chained-sa-1", &[])).unwrap();
    let out = as_pod(&w.python, up, &agent, &token, &["-c", BOTO3_POD]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["account"], SHARED);
    assert_eq!(seen["bytes"], 517);
    // EKS Auth answers per pod: a second pod of the service account makes its own call.
    let second = pod_token(up, "chained-sa", "chained-sa-2", &[]);
    assert_eq!(agent.credentials(&second).0, 200);
    assert_eq!(
        agent.metric(r#"rolechain_agent_upstream_calls_total{operation="AssumeRoleForPodIdentity",outcome="ok"}"#),
        3.0
    );
}

/// Replaces the twin's fault rules (`[]` clears them).
fn faults(up: &Up, rules: &str) {
    let (status, body) = http(
        up.addr(),
        "POST",
        "/_rolechain/faults",
        &[("Content-Type", "application/json")],
        rules,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn upstream_faults_are_ridden_out_and_refusals_are_not_cached() {
    let Some(w) = world("agent-faults") else {
        return;
    };
    let up = &w.up;
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader", "latecomer"])).unwrap();
    let agent = Agent::start(
        up,
        &w.issuer,
        &assoc,
        &["--request-timeout", "2s", "--upstream-timeout", "1s"],
    );
    let reader = pod_token(up, "reader", "reader-1", &[]);
    let latecomer = pod_token(up, "latecomer", "late-1", &[]);
    let (status, cached) = agent.credentials(&reader);
    assert_eq!(status, 200);
    let injected = || {
        let page = http_get(up.addr(), "/_rolechain/metrics");
        page.lines()
            .filter(|l| l.starts_with("rolechain_twin_faults_injected_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>()
    };

    // STS unavailable: the cached pod is served, the new one gets STS's code as a 503, and
    // a forged token of the cached service account gets nothing.
    faults(
        up,
        r#"[{"service":"sts","error":{"statusCode":503,"code":"ServiceUnavailable"}}]"#,
    );
    let (status, during) = agent.credentials(&reader);
    assert_eq!(status, 200);
    assert_eq!(during["AccessKeyId"], cached["AccessKeyId"]);
    let (status, body) = agent.credentials(&latecomer);
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("ServiceUnavailable")),
        "{body}"
    );
    let mut forged = reader.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(agent.credentials(&forged).0, 403);
    let expired_audience = pod_token(
        up,
        "reader",
        "reader-2",
        &["--audience", "sts.amazonaws.com"],
    );
    assert_eq!(agent.credentials(&expired_audience).0, 403);

    // Throttled: the same, with STS's throttling code.
    faults(
        up,
        r#"[{"service":"sts","operation":"AssumeRoleWithWebIdentity","error":{"statusCode":400,"code":"Throttling"}}]"#,
    );
    let (status, body) = agent.credentials(&latecomer);
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("Throttling")),
        "{body}"
    );
    assert_eq!(agent.credentials(&reader).0, 200);

    // A refusal: answered with STS's own status and code, never cached, so each request asks
    // again (and the first fix is seen at once).
    faults(
        up,
        r#"[{"service":"sts","operation":"AssumeRole","error":{"statusCode":403,"code":"AccessDenied"}}]"#,
    );
    let before = injected();
    for _ in 0..3 {
        let (status, body) = agent.credentials(&latecomer);
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("AccessDenied")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("link 1"),
            "{body}"
        );
    }
    assert_eq!(injected() - before, 3.0);

    // Slow: an uncached request ends within the agent's request timeout.
    faults(up, r#"[{"service":"sts","latencyMs":8000}]"#);
    let started = Instant::now();
    let (status, body) = agent.credentials(&latecomer);
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("Timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Recovery: once the call in flight has timed out (1 s), the next try gets credentials,
    // as an SDK's retry would.
    faults(up, "[]");
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, body) = agent.credentials(&latecomer);
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no recovery: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body["AccountId"], SHARED);
}

#[test]
fn the_endpoint_can_come_from_the_sdks_own_variables() {
    let Some(w) = world("agent-endpoint-env") else {
        return;
    };
    let assoc = w.files.join("associations.yaml");
    std::fs::write(&assoc, associations(&["reader"])).unwrap();
    // No --endpoint-url and no profile naming one: only AWS_ENDPOINT_URL_STS says where STS is.
    let nowhere = w.files.join("no-config");
    let agent = Agent::start_with_env(
        &w.up,
        &w.issuer,
        &assoc,
        &[],
        &[
            ("AWS_CONFIG_FILE", nowhere.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", &w.up.base_url),
        ],
    );
    let (status, body) = agent.credentials(&pod_token(&w.up, "reader", "reader-1", &[]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["AccountId"], SHARED);
}
