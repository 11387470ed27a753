//! Fault injection through `/_rolechain/faults`, driven over loopback HTTP: the rules' round
//! trip (POST replaces, PATCH appends, DELETE removes or clears), injected errors as the real
//! SDKs read them in each service's protocol (STS's Query XML, EKS Auth's rest-json, S3's XML),
//! latency, probability, the operation filter, metrics, the `Host` check and hostile bodies.

mod common;
mod eks_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sigv4::http_request::SignatureLocation;
use common::wire::{send, Reply, Signer};
use eks_support::*;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{json, Value};
use twin::{
    Authorizer, EksAuthConfig, EksAuthService, EksService, IamService, S3Service,
    StoreAuthenticator,
};

const WEB_IDENTITY_ROLE: &str = "arn:aws:iam::111111111111:role/my-test-role";

/// A twin serving STS, IAM, EKS, EKS Auth and S3.
async fn start_all() -> Twin {
    start_with(|server, store, sts| {
        let decisions = server.decisions().clone();
        server
            .register(Arc::new(IamService::new(
                Arc::clone(store),
                decisions.clone(),
            )))
            .unwrap();
        server
            .register(Arc::new(EksService::new(
                Arc::clone(store),
                decisions.clone(),
            )))
            .unwrap();
        server
            .register(Arc::new(EksAuthService::new(
                Arc::clone(store),
                Arc::new(StoreAuthenticator::new(Arc::clone(store))),
                Authorizer::new(Arc::clone(store), decisions.clone()),
                Arc::new(oidc::Verifier::new(oidc::HttpSource::default())),
                sts.clone(),
                EksAuthConfig::default(),
            )))
            .unwrap();
        server
            .register_streaming(Arc::new(S3Service::new(Arc::clone(store), decisions)))
            .unwrap();
    })
    .await
}

/// `METHOD /_rolechain/faults` with `body` as JSON, under `host`.
async fn faults_as(twin: &Twin, host: &str, method: &str, body: Option<&str>) -> Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri("/_rolechain/faults")
        .header("host", host);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
    send(twin.addr, req.body(body).unwrap()).await
}

/// [`faults_as`] under the twin's own address; asserts 200 and returns the rules answered.
async fn faults(twin: &Twin, method: &str, body: Option<&str>) -> Value {
    let reply = faults_as(twin, &twin.addr.to_string(), method, body).await;
    assert_eq!(reply.status, 200, "{method}: {}", reply.text());
    assert_eq!(reply.header("content-type"), "application/json");
    reply.json()
}

/// The value of the counter `name{labels}` in the twin's metrics, 0 when it has no series.
async fn counter(twin: &Twin, name: &str, labels: &str) -> u64 {
    let req = http::Request::builder()
        .uri("/_rolechain/metrics")
        .header("host", twin.addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let text = send(twin.addr, req).await.text();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// The code, message and HTTP status of an SDK failure.
fn failure<E, R>(result: Result<R, SdkError<E>>) -> (String, String, u16)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let e = result.expect_err("an error");
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let code = e.code().unwrap_or_else(|| panic!("no code: {e:?}"));
    (
        code.to_owned(),
        e.message().unwrap_or_default().to_owned(),
        status,
    )
}

async fn web_identity(
    twin: &Twin,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    SdkError<aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError>,
> {
    let token = token(twin, "default", "my-service-account", "sts.amazonaws.com");
    sts(twin, None)
        .await
        .assume_role_with_web_identity()
        .role_arn(WEB_IDENTITY_ROLE)
        .role_session_name("agent")
        .web_identity_token(token)
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_replaced_appended_listed_removed_and_cleared() {
    let twin = start_all().await;
    assert_eq!(faults(&twin, "GET", None).await, json!([]));

    // POST takes an array (or one rule) and answers with the rules, defaults filled in.
    let set = faults(
        &twin,
        "POST",
        Some(r#"[{"service":"sts","operation":"AssumeRole","error":{}}]"#),
    )
    .await;
    let sts_rule = json!({"service":"sts","operation":"AssumeRole","probability":1.0,
        "error":{"statusCode":503,"code":"ServiceUnavailable"}});
    assert_eq!(set, json!([sts_rule]));
    // POST replaces, as LocalStack's does.
    let iam_rule = json!({"service":"iam","probability":0.5,"latencyMs":20});
    let set = faults(&twin, "POST", Some(&iam_rule.to_string())).await;
    assert_eq!(set, json!([iam_rule]));
    // PATCH appends.
    let set = faults(
        &twin,
        "PATCH",
        Some(r#"{"service":"sts","operation":"AssumeRole","error":{}}"#),
    )
    .await;
    assert_eq!(set, json!([iam_rule, sts_rule]));
    assert_eq!(faults(&twin, "GET", None).await, set);
    // DELETE with a body removes the rules equal to it (as sent, or as listed).
    let set = faults(
        &twin,
        "DELETE",
        Some(r#"[{"service":"sts","operation":"AssumeRole","error":{}}]"#),
    )
    .await;
    assert_eq!(set, json!([iam_rule]));
    let set = faults(&twin, "DELETE", Some(&json!([iam_rule]).to_string())).await;
    assert_eq!(set, json!([]));
    // DELETE without a body clears them all; so does POST [].
    faults(
        &twin,
        "PATCH",
        Some(&json!([iam_rule, sts_rule]).to_string()),
    )
    .await;
    assert_eq!(faults(&twin, "DELETE", None).await, json!([]));
    faults(&twin, "PATCH", Some(&json!([iam_rule]).to_string())).await;
    assert_eq!(faults(&twin, "POST", Some("[]")).await, json!([]));
    assert_eq!(faults(&twin, "GET", None).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_503_fails_unsigned_web_identity_as_sts_answers() {
    let twin = start_all().await;
    faults(
        &twin,
        "POST",
        Some(r#"[{"service":"sts","operation":"AssumeRoleWithWebIdentity","error":{"statusCode":503,"code":"ServiceUnavailable"}}]"#),
    )
    .await;

    let (code, message, status) = failure(web_identity(&twin).await);
    assert_eq!((code.as_str(), status), ("ServiceUnavailable", 503));
    assert!(message.contains("injected"), "{message}");
    // The handler never ran: no decision was made.
    assert_eq!(twin.decisions.recent(10, twin::VerdictFilter::Any).len(), 0);

    // On the wire: STS's own error envelope, with the request id.
    let raw = send(
        twin.addr,
        http::Request::post("/")
            .header("host", twin.addr.to_string())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={WEB_IDENTITY_ROLE}&RoleSessionName=s&WebIdentityToken=junk"
            ))))
            .unwrap(),
    )
    .await;
    assert_eq!(raw.status, 503);
    let id = raw.header("x-amzn-requestid");
    assert!(!id.is_empty());
    let body = raw.text();
    assert!(
        body.contains(r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>This error was injected by the rolechain twin"#),
        "{body}"
    );
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{body}"
    );

    let labels = r#"service="sts",action="AssumeRoleWithWebIdentity",code="503""#;
    assert_eq!(
        counter(&twin, "rolechain_twin_requests_total", labels).await,
        2
    );
    let labels = r#"service="sts",action="AssumeRoleWithWebIdentity",kind="error""#;
    assert_eq!(
        counter(&twin, "rolechain_twin_faults_injected_total", labels).await,
        2
    );

    // Cleared, the same call succeeds.
    faults(&twin, "DELETE", None).await;
    let out = web_identity(&twin).await.unwrap();
    assert!(out.credentials().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_on_assume_role_leaves_other_operations_alone() {
    let twin = start_all().await;
    faults(
        &twin,
        "POST",
        Some(r#"{"service":"sts","operation":"AssumeRole","error":{"statusCode":400,"code":"Throttling"}}"#),
    )
    .await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    let (code, message, status) = failure(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("s")
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("Throttling", 400));
    assert!(message.contains("injected"), "{message}");
    // GetCallerIdentity, and other services, are not affected.
    let id = admin.get_caller_identity().send().await.unwrap();
    assert_eq!(id.account(), Some(DEV));
    assert_eq!(
        counter(
            &twin,
            "rolechain_twin_requests_total",
            r#"service="sts",action="AssumeRole",code="400""#
        )
        .await,
        1
    );
    assert_eq!(
        counter(
            &twin,
            "rolechain_twin_requests_total",
            r#"service="sts",action="GetCallerIdentity",code="200""#
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_auth_faults_are_rest_json() {
    let twin = start_all().await;
    faults(
        &twin,
        "POST",
        Some(r#"{"service":"eks-auth","error":{"statusCode":429,"code":"ThrottlingException"}}"#),
    )
    .await;
    let client = eks_auth(&twin, twin.dev_admin.clone()).await;
    let (code, message, status) = eks_auth_error(
        client
            .assume_role_for_pod_identity()
            .cluster_name(CLUSTER)
            .token("a.b.c")
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("ThrottlingException", 429));
    assert!(message.contains("injected"), "{message}");

    let signer = Signer {
        service: "eks-auth",
        credentials: &twin.dev_admin,
        location: SignatureLocation::Headers,
        content_type: "application/json",
    };
    let reply = send(
        twin.addr,
        signer.request(
            twin.addr,
            "POST",
            &format!("/clusters/{CLUSTER}/assume-role-for-pod-identity"),
            br#"{"token":"a.b.c"}"#,
        ),
    )
    .await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("x-amzn-errortype"), "ThrottlingException");
    assert_eq!(reply.header("content-type"), "application/json");
    assert!(!reply.header("x-amzn-requestid").is_empty());
    let body = reply.json();
    assert!(
        body["message"].as_str().unwrap().contains("injected"),
        "{body}"
    );
    let labels = r#"service="eks-auth",action="AssumeRoleForPodIdentity",code="429""#;
    assert_eq!(
        counter(&twin, "rolechain_twin_requests_total", labels).await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_faults_are_s3_xml_and_follow_the_operation() {
    let twin = start_all().await;
    faults(
        &twin,
        "POST",
        Some(r#"{"service":"s3","operation":"GetObject","error":{"statusCode":503,"code":"SlowDown"}}"#),
    )
    .await;
    let signer = Signer {
        service: "s3",
        credentials: &twin.shared_admin,
        location: SignatureLocation::Headers,
        content_type: "application/octet-stream",
    };
    let reply = send(
        twin.addr,
        signer.request(twin.addr, "GET", "/pics/indoor-cat.jpg", b""),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    let id = reply.header("x-amz-request-id");
    assert!(!id.is_empty());
    let body = reply.text();
    assert!(
        body.contains(
            "<Error><Code>SlowDown</Code><Message>This error was injected by the rolechain twin"
        ),
        "{body}"
    );
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{body}"
    );

    // Another S3 operation is answered as usual.
    let listed = send(twin.addr, signer.request(twin.addr, "GET", "/", b"")).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.text().contains("<Name>pics</Name>"));
    let labels = r#"service="s3",action="GetObject",code="503""#;
    assert_eq!(
        counter(&twin, "rolechain_twin_requests_total", labels).await,
        1
    );

    // Cleared, the object comes back.
    faults(&twin, "DELETE", None).await;
    let got = send(
        twin.addr,
        signer.request(twin.addr, "GET", "/pics/indoor-cat.jpg", b""),
    )
    .await;
    assert_eq!(got.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_waited_before_the_answer() {
    let twin = start_all().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    faults(
        &twin,
        "POST",
        Some(
            r#"[{"service":"sts","operation":"GetCallerIdentity","latencyMs":300},
                 {"service":"sts","probability":0,"latencyMs":20000}]"#,
        ),
    )
    .await;
    let started = Instant::now();
    admin.get_caller_identity().send().await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_secs(10),
        "{took:?}: a rule of probability 0 fired"
    );

    // Latency, then the error.
    faults(
        &twin,
        "POST",
        Some(r#"{"service":"sts","latencyMs":300,"error":{}}"#),
    )
    .await;
    let started = Instant::now();
    let (code, _, _) = failure(admin.get_caller_identity().send().await);
    assert_eq!(code, "ServiceUnavailable");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let labels = r#"service="sts",action="GetCallerIdentity",kind="latency""#;
    assert_eq!(
        counter(&twin, "rolechain_twin_faults_injected_total", labels).await,
        2
    );
}

/// How many of `n` GetCallerIdentity calls fail with `rule` set.
async fn failures(twin: &Twin, admin: &aws_sdk_sts::Client, n: usize, rule: &str) -> usize {
    faults(twin, "POST", Some(rule)).await;
    let mut count = 0;
    for _ in 0..n {
        count += usize::from(admin.get_caller_identity().send().await.is_err());
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probability_decides_how_often_a_rule_fires() {
    let twin = start_all().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    let failed = |n: usize, rule: &'static str| failures(&twin, &admin, n, rule);
    assert_eq!(failed(20, r#"{"probability":0,"error":{}}"#).await, 0);
    assert_eq!(failed(20, r#"{"probability":1,"error":{}}"#).await, 20);
    // Mean 50, standard deviation 5: a bound 6 deviations wide.
    let half = failed(100, r#"{"probability":0.5,"error":{}}"#).await;
    assert!((20..=80).contains(&half), "{half} of 100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_routes_answer_only_under_the_twins_own_host() {
    let twin = start_all().await;
    let port = twin.addr.port();
    let rule = Some(r#"{"error":{}}"#);
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            let reply = faults_as(&twin, &host, method, rule).await;
            assert_eq!(reply.status, 421, "{method} as {host}: {}", reply.text());
        }
    }
    // Nor does a second Host behind the twin's own.
    let twice = http::Request::post("/_rolechain/faults")
        .header("host", twin.addr.to_string())
        .header("host", format!("evil.example:{port}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"error":{}}"#)))
        .unwrap();
    let reply = send(twin.addr, twice).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(faults(&twin, "GET", None).await, json!([]));
    // The loopback names with the port are the twin's own.
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let reply = faults_as(&twin, &host, "GET", None).await;
        assert_eq!(reply.status, 200, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_naming_the_field() {
    let twin = start_all().await;
    let host = twin.addr.to_string();
    faults(&twin, "POST", Some(r#"{"service":"iam","latencyMs":1}"#)).await;
    let before = faults(&twin, "GET", None).await;

    let many = format!("[{}]", vec![r#"{"error":{}}"#; 101].join(","));
    let cases: [(&str, &str, Option<&str>); 10] = [
        ("POST", "{not json", None),
        (
            "POST",
            r#"{"error":{},"region":"us-east-1"}"#,
            Some("region"),
        ),
        (
            "POST",
            r#"[{"error":{}},{"error":{},"probability":1.01}]"#,
            Some("[1].probability"),
        ),
        (
            "POST",
            r#"{"error":{"statusCode":302}}"#,
            Some("error.statusCode"),
        ),
        (
            "POST",
            r#"{"error":{"statusCode":503,"code":"<b>"}}"#,
            Some("error.code"),
        ),
        (
            "POST",
            r#"{"service":"dynamodb","error":{}}"#,
            Some("service"),
        ),
        ("POST", r#"{"service":"sts"}"#, Some("error")),
        ("PATCH", &many, Some("[100]")),
        ("POST", "", None),
        ("PATCH", "42", None),
    ];
    for (method, body, field) in cases {
        let reply = faults_as(&twin, &host, method, Some(body)).await;
        assert_eq!(reply.status, 400, "{method} {body}: {}", reply.text());
        let answer = reply.json();
        assert!(answer["error"].is_string(), "{answer}");
        assert_eq!(answer["field"].as_str(), field, "{method} {body}: {answer}");
    }
    // PATCH past the cap names the first rule that does not fit (one is set already).
    let hundred = format!("[{}]", vec![r#"{"error":{}}"#; 100].join(","));
    let reply = faults_as(&twin, &host, "PATCH", Some(&hundred)).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["field"], "[99]");

    // A body over the cap, and a body that is not sent as JSON.
    let huge = format!(
        r#"[{{"error":{{}},"service":"{}"}}]"#,
        "s".repeat(100 * 1024)
    );
    let reply = faults_as(&twin, &host, "POST", Some(&huge)).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    let form = http::Request::post("/_rolechain/faults")
        .header("host", &host)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(br#"[{"error":{}}]"#)))
        .unwrap();
    let reply = send(twin.addr, form).await;
    assert_eq!(reply.status, 415, "{}", reply.text());

    // Nothing refused changed the rules.
    assert_eq!(faults(&twin, "GET", None).await, before);
}
