//! The agent's listeners: an address that cannot be bound is skipped as long as one serves
//! (the EKS agent crash-loops on a missing IPv6 address), none bindable is an error, and it is
//! not ready until the issuer's keys are loaded.

use std::sync::Arc;
use std::time::Duration;

use agent::upstream::{
    AssumeRoleRequest, BoxFuture, PodIdentityRequest, Upstream, UpstreamError, WebIdentityRequest,
};
use agent::{AgentOptions, Credentials, StartError, SystemClock};

/// An upstream that is never reached in these tests.
struct Unreachable;

impl Upstream for Unreachable {
    fn assume_role_with_web_identity<'a>(
        &'a self,
        _: WebIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        unreachable!("no token reaches upstream here")
    }
    fn assume_role<'a>(
        &'a self,
        _: AssumeRoleRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        unreachable!("no token reaches upstream here")
    }
    fn assume_role_for_pod_identity<'a>(
        &'a self,
        _: PodIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        unreachable!("no token reaches upstream here")
    }
}

/// Options on loopback, with an issuer nothing listens on.
async fn options(binds: &[&str]) -> AgentOptions {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/id/NONE", closed.local_addr().unwrap());
    drop(closed);
    let mut options = AgentOptions::new("development-cluster", issuer);
    options.binds = binds.iter().map(|b| b.parse().unwrap()).collect();
    options.probe_bind = "127.0.0.1:0".parse().unwrap();
    options.metrics_bind = "127.0.0.1:0".parse().unwrap();
    options
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

#[tokio::test]
async fn an_unbindable_address_is_skipped_and_readiness_waits_for_the_issuer() {
    // fd00:ec2::23 is not on this machine (nor on an IPv4-only node).
    let options = options(&["[fd00:ec2::23]:0", "127.0.0.1:0"]).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = agent::start(
        options,
        Arc::new(Unreachable),
        Arc::new(SystemClock),
        async {
            let _ = stopped.await;
        },
    )
    .await
    .expect("one address is enough");
    assert_eq!(running.credentials.len(), 1);
    assert!(running.credentials[0].ip().is_loopback());

    assert_eq!(get(running.probes, "/healthz").await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = get(running.probes, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not loaded"), "{body}");
    let (status, page) = get(running.metrics, "/metrics").await;
    assert_eq!(status, 200);
    assert!(page.contains("rolechain_agent_cache_entries 0"), "{page}");
    // Without a token: refused before anything else, never a hang.
    let (status, body) = get(running.credentials[0], "/v1/credentials").await;
    assert_eq!(status, 400, "{body}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running.stopped())
        .await
        .expect("stops promptly");
}

#[tokio::test]
async fn no_bindable_address_is_an_error() {
    let options = options(&["[fd00:ec2::23]:0", "192.0.2.1:0"]).await;
    let error = agent::start(
        options,
        Arc::new(Unreachable),
        Arc::new(SystemClock),
        async {},
    )
    .await
    .unwrap_err();
    assert!(matches!(error, StartError::NoBind(_)), "{error}");
    assert!(error.to_string().contains("fd00:ec2::23"), "{error}");
}

#[tokio::test]
async fn a_bad_association_file_stops_the_start_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("associations.yaml");
    std::fs::write(
        &file,
        "associations:\n  - namespace: a\n    serviceAccount: b\n    roleArn: arn:aws:iam::111111111111:role/r\n    durationSeconds: 99999\n",
    )
    .unwrap();
    let mut options = options(&["127.0.0.1:0"]).await;
    options.associations = Some(file);
    let error = agent::start(
        options,
        Arc::new(Unreachable),
        Arc::new(SystemClock),
        async {},
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("durationSeconds"), "{error}");
}
