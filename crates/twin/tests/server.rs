//! The twin's endpoint over real HTTP on 127.0.0.1: internal routes, OIDC discovery and JWKS
//! verified by `oidc::Verifier`, the SigV4 front door with requests signed by `aws-sigv4`, and
//! graceful shutdown.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::SignatureLocation;
use common::wire::{get, send, Signer};
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Bytes;
use iam::{evaluate, NamedPolicy, Policy, PolicyKind, PolicySet, Principal, RequestContext};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use twin::{
    ApiAction, ApiRequest, AuthFailure, Authenticator, AwsService, BoxFuture, CallerKey,
    DecisionRecord, Response, TwinConfig, TwinServer, VerdictFilter,
};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CALLER_ARN: &str = "arn:aws:iam::111111111111:user/dev";

// ---------------------------------------------------------------------------------------------
// helpers

struct Running {
    addr: SocketAddr,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), twin::TwinError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("serve result");
    }
}

fn test_config() -> TwinConfig {
    let mut config = TwinConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config
}

async fn start(server: TwinServer) -> Running {
    let addr = server.local_addr();
    let base_url = server.base_url().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        base_url,
        stop: Some(stop),
        task,
    }
}

/// A request signed by `aws-sigv4`, the real SDK signer, for `service`, with the test key.
fn signed(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    service: &str,
    secret: &str,
    location: SignatureLocation,
) -> http::Request<Full<Bytes>> {
    let credentials = Credentials::new(AKID, secret, None, None, "test");
    let signer = Signer {
        service,
        credentials: &credentials,
        location,
        content_type: "application/x-www-form-urlencoded; charset=utf-8",
    };
    signer.request(addr, method, path_and_query, body)
}

/// Raw bytes in, raw response text out: for requests no well-behaved client would send.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_code(text: &str) -> &str {
    let start = text.find("<Code>").map(|i| i + 6).unwrap_or(0);
    let end = text.find("</Code>").unwrap_or(start);
    &text[start..end]
}

struct TestAuth {
    keys: HashMap<&'static str, CallerKey>,
}

impl TestAuth {
    fn new() -> Arc<TestAuth> {
        let mut keys = HashMap::new();
        keys.insert(
            AKID,
            CallerKey {
                secret_access_key: SECRET.to_string(),
                session_token: None,
                expires_at: None,
                principal: Principal::User {
                    arn: CALLER_ARN.to_string(),
                    account: "111111111111".to_string(),
                    unique_id: None,
                },
                user_id: "AIDAEXAMPLE".to_string(),
            },
        );
        Arc::new(TestAuth { keys })
    }
}

impl Authenticator for TestAuth {
    fn secret_for(
        &self,
        access_key_id: &str,
        _security_token: Option<&str>,
    ) -> Result<CallerKey, AuthFailure> {
        self.keys
            .get(access_key_id)
            .cloned()
            .ok_or(AuthFailure::UnknownAccessKey)
    }
}

/// Authenticates, then echoes the caller's ARN.
struct Echo {
    auth: Arc<dyn Authenticator>,
}

impl AwsService for Echo {
    fn signing_name(&self) -> &'static str {
        "sts"
    }

    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let caller = match req.authenticate(&*self.auth, time::OffsetDateTime::now_utc()) {
                Ok(caller) => caller,
                Err(e) => return req.error_response(&e),
            };
            let mut resp = Response::new(format!("{} {}", caller.arn(), req.body.len()).into());
            resp.extensions_mut().insert(ApiAction("GetCallerIdentity"));
            resp
        })
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(64 * 1024)
    }
}

/// Takes its time, and says when it has started.
struct Slow {
    started: Arc<Notify>,
    delay: Duration,
}

impl AwsService for Slow {
    fn signing_name(&self) -> &'static str {
        "slow"
    }

    fn handle(&self, _req: ApiRequest) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            self.started.notify_one();
            tokio::time::sleep(self.delay).await;
            Response::new("done".into())
        })
    }
}

fn decision(resource: &str) -> iam::Decision {
    let allow = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"},
            {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/secret"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    let identity = [NamedPolicy::new("read-pics", allow)];
    let ctx = RequestContext::new(
        Principal::User {
            arn: CALLER_ARN.into(),
            account: "111111111111".into(),
            unique_id: None,
        },
        "s3:GetObject",
        resource,
    );
    evaluate(
        &PolicySet {
            identity: &identity,
            ..Default::default()
        },
        &ctx,
    )
}

fn record(log: &twin::DecisionLog, resource: &str) -> u64 {
    log.record(DecisionRecord {
        service: "s3".into(),
        action: "s3:GetObject".into(),
        caller: CALLER_ARN.into(),
        resource: resource.into(),
        decision: decision(resource),
    })
}

// ---------------------------------------------------------------------------------------------
// internal routes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_waits_for_readiness_holds() {
    let server = TwinServer::bind(test_config()).await.unwrap();
    let hold = server.readiness().hold();
    let readiness = server.readiness().clone();
    let running = start(server).await;

    let reply = get(running.addr, "/_rolechain/health").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json(), serde_json::json!({"status": "starting"}));

    hold.release();
    assert!(readiness.is_ready());
    let reply = get(running.addr, "/_rolechain/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(
        reply.headers["content-type"], "application/json",
        "health is JSON"
    );
    assert!(reply.headers.contains_key("x-amzn-requestid"));
    running.stop().await;
    assert!(readiness.is_stopping() && !readiness.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_newest_first_filtered_and_bounded() {
    let mut config = test_config();
    config.decision_log_capacity = 4;
    let server = TwinServer::bind(config).await.unwrap();
    let log = server.decisions().clone();
    let running = start(server).await;

    // Six decisions into a log of four: ids 1 and 2 fall out.
    let resources = [
        "arn:aws:s3:::pics/a",      // 1 allow
        "arn:aws:s3:::other/b",     // 2 implicit deny
        "arn:aws:s3:::pics/secret", // 3 explicit deny
        "arn:aws:s3:::pics/c",      // 4 allow
        "arn:aws:s3:::other/d",     // 5 implicit deny
        "arn:aws:s3:::pics/e",      // 6 allow
    ];
    let ids: Vec<u64> = resources.iter().map(|r| record(&log, r)).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(log.len(), 4);
    assert_eq!(log.last_denied().map(|e| e.id), Some(5));
    assert_eq!(
        log.recent(10, VerdictFilter::ExplicitDeny)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![3]
    );

    let all = get(running.addr, "/_rolechain/decisions").await;
    assert_eq!(all.status, StatusCode::OK);
    let all = all.json();
    let ids: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![6, 5, 4, 3],
        "newest first, bounded by the capacity"
    );

    let first = &all[0];
    assert_eq!(first["service"], "s3");
    assert_eq!(first["action"], "s3:GetObject");
    assert_eq!(first["caller"], CALLER_ARN);
    assert_eq!(first["resource"], "arn:aws:s3:::pics/e");
    assert_eq!(first["verdict"], "allow");
    assert_eq!(first["reason"]["rule"], "identity-policy-allows");
    assert_eq!(first["decision"]["verdict"], "Allow");
    assert!(first["decision"]["policies"][0]["statements"].is_array());
    let time = first["time"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).is_ok(),
        "{time}"
    );

    // Clients read entries back as they were logged, traces included.
    let served: Vec<twin::DecisionEntry> = serde_json::from_value(all.clone()).unwrap();
    let logged = log.recent(10, VerdictFilter::Any);
    assert_eq!(served.len(), logged.len());
    for (back, entry) in served.iter().zip(&logged) {
        assert_eq!(back.id, entry.id);
        assert_eq!(back.resource, entry.resource);
        assert_eq!(back.outcome, entry.outcome);
        assert_eq!(back.time.unix_timestamp(), entry.time.unix_timestamp());
    }

    let limited = get(running.addr, "/_rolechain/decisions?limit=2")
        .await
        .json();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert_eq!(limited[0]["id"], 6);
    assert_eq!(limited[1]["id"], 5);

    let denied = get(running.addr, "/_rolechain/decisions?verdict=deny")
        .await
        .json();
    let denied: Vec<(u64, String)> = denied
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        denied,
        vec![
            (5, "implicit-deny".to_string()),
            (3, "explicit-deny".to_string())
        ]
    );
    assert_eq!(
        get(running.addr, "/_rolechain/decisions?verdict=deny&limit=1")
            .await
            .json()[0]["reason"]["rule"],
        "no-allow"
    );
    let allowed = get(running.addr, "/_rolechain/decisions?verdict=allow")
        .await
        .json();
    assert_eq!(allowed.as_array().unwrap().len(), 2);

    let bad = get(running.addr, "/_rolechain/decisions?verdict=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("verdict"));
    let bad = get(running.addr, "/_rolechain/decisions?limit=-1").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Metrics: the decisions counted by verdict, the requests above by route and status.
    let metrics = get(running.addr, "/_rolechain/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = metrics.text();
    for needle in [
        "rolechain_twin_decisions_total{verdict=\"allow\"} 3",
        "rolechain_twin_decisions_total{verdict=\"implicit-deny\"} 2",
        "rolechain_twin_decisions_total{verdict=\"explicit-deny\"} 1",
        "rolechain_twin_requests_total{service=\"rolechain\",action=\"decisions\",code=\"200\"} 5",
        "rolechain_twin_requests_total{service=\"rolechain\",action=\"decisions\",code=\"400\"} 2",
        "# TYPE rolechain_twin_request_duration_seconds histogram",
        "rolechain_twin_request_duration_seconds_count{service=\"rolechain\"} 7",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_served_and_read_back_beside_decisions() {
    let server = TwinServer::bind(test_config()).await.unwrap();
    let log = server.decisions().clone();
    let running = start(server).await;

    record(&log, "arn:aws:s3:::pics/a"); // 1 allow
    let id = log.refuse(twin::RefusalRecord {
        service: "sts".into(),
        action: "sts:AssumeRoleWithWebIdentity".into(),
        caller: "web identity token from http://issuer.test/id/X".into(),
        resource: "arn:aws:iam::111111111111:role/r".into(),
        refusal: twin::Refusal {
            code: "InvalidIdentityToken".into(),
            message: "Incorrect token audience".into(),
            details: vec![twin::Detail::new("token aud", "sts.amazonaws.com")],
        },
    });
    assert_eq!(id, 2);
    record(&log, "arn:aws:s3:::other/b"); // 3 implicit deny

    let refused = get(running.addr, "/_rolechain/decisions?verdict=refused")
        .await
        .json();
    let refused = refused.as_array().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["id"], 2);
    assert_eq!(refused[0]["verdict"], "refused");
    assert_eq!(refused[0]["reason"]["rule"], "refused");
    assert_eq!(refused[0]["refusal"]["code"], "InvalidIdentityToken");
    assert!(refused[0].get("decision").is_none());

    // `deny` takes refusals and policy denials; both read back as they were logged.
    let denied = get(running.addr, "/_rolechain/decisions?verdict=deny")
        .await
        .json();
    let back: Vec<twin::DecisionEntry> = serde_json::from_value(denied).unwrap();
    let ids: Vec<u64> = back.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![3, 2]);
    assert!(back.iter().all(|e| e.is_denied()));
    assert_eq!(
        back[1].refusal().unwrap().message,
        "Incorrect token audience"
    );
    assert!(back[0].decision().is_some());
    assert_eq!(log.last_denied().unwrap().id, 3);

    // An entry with neither, or both, is not an entry.
    let neither = serde_json::json!({"id": 1, "time": "2026-01-01T00:00:00Z", "service": "s",
        "action": "a", "caller": "c", "resource": "r"});
    assert!(serde_json::from_value::<twin::DecisionEntry>(neither).is_err());

    let text = get(running.addr, "/_rolechain/metrics").await.text();
    assert!(
        text.contains("rolechain_twin_decisions_total{verdict=\"refused\"} 1"),
        "{text}"
    );
    running.stop().await;
}

// ---------------------------------------------------------------------------------------------
// OIDC

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_and_jwks_verify_a_minted_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = TwinServer::bind(test_config()).await.unwrap();
    let id = twin::derive_issuer_id("111111111111/us-east-1/dev");
    let issuer_url = server.issuer_url(&id);
    assert_eq!(
        issuer_url,
        format!("http://{}/id/{id}", server.local_addr())
    );
    // The seed scripts' `cut -d '/' -f 5` takes the id.
    assert_eq!(issuer_url.split('/').nth(4), Some(id.as_str()));

    let config = oidc::IssuerConfig::new(issuer_url.clone(), dir.path().join("keys"));
    let issuer = Arc::new(
        tokio::task::spawn_blocking(move || oidc::Issuer::load_or_create(config))
            .await
            .unwrap()
            .unwrap(),
    );
    let registry = server.issuers().clone();
    registry.add("dev", &id, Arc::clone(&issuer)).unwrap();
    assert_eq!(registry.by_cluster("dev").unwrap().id, id);
    assert_eq!(registry.by_id(&id).unwrap().cluster, "dev");

    // Misregistrations are refused, not served wrong.
    let other = twin::derive_issuer_id("other");
    assert!(matches!(
        registry.add("other", &other, Arc::clone(&issuer)),
        Err(twin::IssuerRegistryError::UrlMismatch { .. })
    ));
    assert!(matches!(
        registry.add("dev2", &id, Arc::clone(&issuer)),
        Err(twin::IssuerRegistryError::IdInUse { .. })
    ));
    assert!(matches!(
        registry.add("dev", "abc", Arc::clone(&issuer)),
        Err(twin::IssuerRegistryError::InvalidId(_))
    ));

    let running = start(server).await;

    let discovery = get(
        running.addr,
        &format!("/id/{id}/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(discovery.status, StatusCode::OK);
    let doc = discovery.json();
    assert_eq!(doc["issuer"], issuer_url);
    assert_eq!(doc["jwks_uri"], format!("{issuer_url}/keys"));

    let token = issuer
        .mint(&oidc::TokenRequest::new(
            "default",
            "app",
            "uid-1",
            "sts.amazonaws.com",
        ))
        .unwrap();
    let verifier = oidc::Verifier::new(oidc::HttpSource::default());
    let verified = verifier
        .verify(&token, &issuer_url, |aud| aud == "sts.amazonaws.com")
        .await
        .expect("verified through the twin's discovery and JWKS");
    assert_eq!(verified.subject, "system:serviceaccount:default:app");
    assert_eq!(verified.kid, issuer.active_kid());

    let unknown = twin::derive_issuer_id("nobody");
    for path in [
        format!("/id/{unknown}/.well-known/openid-configuration"),
        format!("/id/{unknown}/keys"),
    ] {
        let reply = get(running.addr, &path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["error"], "no such OIDC issuer");
    }

    // Removing the cluster stops serving its issuer.
    registry.remove_cluster("dev");
    assert_eq!(
        get(running.addr, &format!("/id/{id}/keys")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(running.base_url.starts_with("http://127.0.0.1:"));
    running.stop().await;
}

// ---------------------------------------------------------------------------------------------
// the front door

async fn front_door_server() -> Running {
    let mut server = TwinServer::bind(test_config()).await.unwrap();
    server
        .register(Arc::new(Echo {
            auth: TestAuth::new(),
        }))
        .unwrap();
    assert!(matches!(
        server.register(Arc::new(Echo {
            auth: TestAuth::new()
        })),
        Err(twin::TwinError::DuplicateService("sts"))
    ));
    start(server).await
}

const BODY: &[u8] = b"Action=GetCallerIdentity&Version=2011-06-15";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_door_routes_signed_requests_and_answers_like_aws() {
    let running = front_door_server().await;
    let addr = running.addr;

    // Signed by the SDK signer, in the header and presigned.
    let ok = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            BODY,
            "sts",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.text(), format!("{CALLER_ARN} {}", BODY.len()));
    assert_eq!(ok.headers["x-amzn-requestid"].len(), 36);

    let presigned = send(
        addr,
        signed(
            addr,
            "GET",
            "/?Action=GetCallerIdentity&Version=2011-06-15",
            b"",
            "sts",
            SECRET,
            SignatureLocation::QueryParams,
        ),
    )
    .await;
    assert_eq!(presigned.status, StatusCode::OK, "{}", presigned.text());

    // Wrong secret.
    let wrong = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            BODY,
            "sts",
            "not-the-secret",
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let text = wrong.text();
    assert_eq!(xml_code(&text), "SignatureDoesNotMatch", "{text}");
    assert!(text.contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"));
    assert!(text.contains("<Type>Sender</Type>"));
    let request_id = wrong.headers["x-amzn-requestid"].to_str().unwrap();
    assert!(text.contains(&format!("<RequestId>{request_id}</RequestId>")));
    assert_eq!(wrong.headers["content-type"], "text/xml");
    assert_eq!(wrong.headers["x-amzn-errortype"], "SignatureDoesNotMatch");

    // A body changed after signing.
    let mut tampered = signed(
        addr,
        "POST",
        "/",
        BODY,
        "sts",
        SECRET,
        SignatureLocation::Headers,
    );
    *tampered.body_mut() = Full::new(Bytes::from_static(
        b"Action=GetCallerIdentity&Version=2011-06-16",
    ));
    let tampered = send(addr, tampered).await;
    assert_eq!(xml_code(&tampered.text()), "SignatureDoesNotMatch");

    // No authentication at all.
    let req = http::Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    let missing = send(addr, req).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert_eq!(xml_code(&missing.text()), "MissingAuthenticationToken");

    // A service no handler serves.
    let unknown = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            BODY,
            "lambda",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let text = unknown.text();
    assert_eq!(xml_code(&text), "InvalidAction");
    assert!(
        text.contains("'lambda'") && text.contains("serves: sts"),
        "{text}"
    );

    // Garbage in the Authorization header.
    let req = http::Request::post("/")
        .header("host", addr.to_string())
        .header("authorization", "AWS4-HMAC-SHA256 garbage")
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    let garbage = send(addr, req).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(xml_code(&garbage.text()), "IncompleteSignature");

    // Signed requests reach the front door even on an internal path.
    let on_internal = send(
        addr,
        signed(
            addr,
            "POST",
            "/_rolechain/health",
            BODY,
            "sts",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(on_internal.status, StatusCode::OK, "{}", on_internal.text());

    // Metrics name the service and the action the handler reported.
    let text = get(addr, "/_rolechain/metrics").await.text();
    for needle in [
        "rolechain_twin_requests_total{service=\"sts\",action=\"GetCallerIdentity\",code=\"200\"} 3",
        "rolechain_twin_requests_total{service=\"sts\",action=\"unknown\",code=\"403\"} 2",
        "rolechain_twin_requests_total{service=\"unknown\",action=\"unknown\",code=\"403\"} 1",
        "rolechain_twin_requests_total{service=\"unknown\",action=\"unknown\",code=\"400\"} 2",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_door_refuses_oversized_and_malformed_requests_without_falling_over() {
    let running = front_door_server().await;
    let addr = running.addr;

    // Declared too large (the service allows 64 KiB).
    let big = vec![b'a'; 64 * 1024 + 1];
    let reply = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            &big,
            "sts",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(xml_code(&reply.text()), "RequestEntityTooLarge");

    // Far too large: the client is still sending when the answer comes.
    let huge = vec![b'a'; 4 * 1024 * 1024];
    let reply = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            &huge,
            "sts",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Exactly at the limit is fine.
    let at_limit = vec![b'a'; 64 * 1024];
    let reply = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            &at_limit,
            "sts",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // Too large without a Content-Length: chunked, caught while reading.
    let auth = signed(
        addr,
        "POST",
        "/",
        BODY,
        "sts",
        SECRET,
        SignatureLocation::Headers,
    );
    let mut head = format!("POST / HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\n");
    for (name, value) in auth.headers() {
        if name != "host" && name != "content-length" {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    let mut request = head.into_bytes();
    for _ in 0..5 {
        let chunk = vec![b'a'; 16 * 1024];
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let text = raw(addr, &request).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("<Code>RequestEntityTooLarge</Code>"),
        "{text}"
    );

    // Not HTTP at all, a bad Content-Length, a presigned URL with a broken credential.
    let text = raw(addr, b"\x00\x01garbage\r\n\r\n").await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    let text = raw(
        addr,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: nope\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    let reply = get(
        addr,
        "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%FF%FE&X-Amz-Signature=zz",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(xml_code(&reply.text()), "IncompleteSignature");

    // Still serving.
    assert_eq!(get(addr, "/_rolechain/health").await.status, StatusCode::OK);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_answers_service_unavailable() {
    let mut config = test_config();
    config.request_timeout = Duration::from_millis(200);
    let mut server = TwinServer::bind(config).await.unwrap();
    server
        .register(Arc::new(Slow {
            started: Arc::new(Notify::new()),
            delay: Duration::from_secs(5),
        }))
        .unwrap();
    let running = start(server).await;
    let addr = running.addr;
    let reply = send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            BODY,
            "slow",
            SECRET,
            SignatureLocation::Headers,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(xml_code(&reply.text()), "ServiceUnavailable");
    assert!(reply.text().contains("<Type>Receiver</Type>"));
    running.stop().await;
}

// ---------------------------------------------------------------------------------------------
// shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let started = Arc::new(Notify::new());
    let mut server = TwinServer::bind(test_config()).await.unwrap();
    server
        .register(Arc::new(Slow {
            started: Arc::clone(&started),
            delay: Duration::from_millis(1500),
        }))
        .unwrap();
    let mut running = start(server).await;
    let addr = running.addr;

    let in_flight = tokio::spawn(send(
        addr,
        signed(
            addr,
            "POST",
            "/",
            BODY,
            "slow",
            SECRET,
            SignatureLocation::Headers,
        ),
    ));
    started.notified().await;

    let _ = running.stop.take().unwrap().send(());

    // The listening socket closes promptly: new connections are refused while the slow
    // request is still running.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // A connection that reached the backlog just before the socket closed is reset.
            result => {
                assert!(
                    result.is_ok()
                        || matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                    "{result:?}"
                );
                assert!(tokio::time::Instant::now() < deadline, "still accepting");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert!(
        !in_flight.is_finished(),
        "the slow request should still be running"
    );

    let reply = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("in-flight request completes")
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "done");

    tokio::time::timeout(Duration::from_secs(5), running.task)
        .await
        .expect("serve resolves after the last request")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_reports_an_address_in_use() {
    let server = TwinServer::bind(test_config()).await.unwrap();
    let mut config = test_config();
    config.listen = server.local_addr();
    let err = TwinServer::bind(config).await.unwrap_err();
    assert!(matches!(err, twin::TwinError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&server.local_addr().to_string()));
}
