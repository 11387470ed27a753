//! `loadgen webhook`: the webhook's memory with many service accounts. A fake API server on
//! loopback lists N service accounts (as a real cluster's look: a role annotation, kubectl's
//! last-applied configuration, managed fields), in pages of the size the client asks for, and
//! holds the watch open; `rolechain webhook` runs against it (a kubeconfig naming it) until it
//! has listed them all, and its RSS is read. The baseline is the same webhook with no service
//! account, in the same run. The webhook runs with the allocator settings `deploy/` gives it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};

/// Options of `loadgen webhook`.
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// The `rolechain` binary (`rolechain webhook`).
    #[arg(long, value_name = "PATH")]
    pub rolechain: PathBuf,
    /// Service accounts in the fake cluster.
    #[arg(long, default_value_t = 50_000)]
    pub service_accounts: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `loadgen webhook` measured.
#[derive(Debug, Serialize)]
pub struct WebhookReport {
    service_accounts: usize,
    /// RSS once listed, with no service account (the baseline) and with `service_accounts`.
    rss_kib_empty: u64,
    rss_kib_full: u64,
    /// How long listing them all took.
    list_seconds: f64,
    /// What the webhook holds per service account, from the two.
    bytes_per_service_account: f64,
    #[serde(skip)]
    pub problems: Vec<String>,
}

/// The table of a report.
pub fn table(r: &WebhookReport) -> String {
    format!(
        "webhook memory: {:.1} MiB with {} service accounts listed (in {:.1} s), {:.1} MiB with none: {:.0} bytes each\n",
        r.rss_kib_full as f64 / 1024.0,
        r.service_accounts,
        r.list_seconds,
        r.rss_kib_empty as f64 / 1024.0,
        r.bytes_per_service_account,
    )
}

type Body = BoxBody<Bytes, Infallible>;

/// One service account as the API server's metadata list carries it.
fn service_account(i: usize) -> Value {
    let name = format!("app-{i:06}");
    let namespace = format!("team-{:03}", i % 500);
    let role = format!("arn:aws:iam::111111111111:role/{name}");
    let applied = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"eks.amazonaws.com/role-arn": role}}})
    .to_string();
    json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name, "namespace": namespace,
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "resourceVersion": (1000 + i).to_string(),
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "labels": {"app.kubernetes.io/name": name, "team": namespace},
            "annotations": {
                "eks.amazonaws.com/role-arn": role,
                "kubectl.kubernetes.io/last-applied-configuration": applied
            },
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                               "apiVersion": "v1", "time": "2026-12-01T00:00:00Z",
                               "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:eks.amazonaws.com/role-arn": {}}}}}]
        }
    })
}

/// The fake API server: its URL, and a count of service-account watches (a watch follows a
/// complete list).
async fn api_server(count: usize) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let watches = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&watches);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move { Ok::<_, Infallible>(answer(&req, count, &seen)) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}"), watches))
}

fn answer(
    req: &http::Request<hyper::body::Incoming>,
    count: usize,
    watches: &AtomicUsize,
) -> http::Response<Body> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let body: Body = if param("watch") == Some("true") {
        if req.uri().path() == "/api/v1/serviceaccounts" {
            watches.fetch_add(1, Ordering::SeqCst);
        }
        // A watch with nothing new: a body that never ends.
        StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, Infallible>,
        >())
        .boxed()
    } else if req.uri().path() == "/api/v1/serviceaccounts" {
        let limit = param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(count)
            .max(1);
        let start: usize = param("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = (start + limit).min(count);
        let mut meta = json!({"resourceVersion": "999999"});
        if end < count {
            meta["continue"] = json!(end.to_string());
        }
        let items: Vec<Value> = (start..end).map(service_account).collect();
        Full::new(Bytes::from(
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                   "metadata": meta, "items": items})
            .to_string(),
        ))
        .boxed()
    } else {
        Full::new(Bytes::from(
            json!({"apiVersion": "rolechain.dev/v1alpha1", "kind": "RoleChainAssociationList",
                   "metadata": {"resourceVersion": "1"}, "items": []})
            .to_string(),
        ))
        .boxed()
    };
    let mut resp = http::Response::new(body);
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Runs the webhook against a cluster of `count` service accounts: its RSS once listed, and
/// how long listing took.
async fn measure(rolechain: &Path, dir: &Path, count: usize) -> anyhow::Result<(u64, f64)> {
    let (url, watches) = api_server(count).await?;
    let kubeconfig = dir.join(format!("kubeconfig-{count}"));
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\ncurrent-context: fake\n"),
    )?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
    std::fs::write(dir.join("tls.crt"), cert.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    let log = std::fs::File::create(dir.join(format!("webhook-{count}.log")))?;
    let mut child = tokio::process::Command::new(rolechain)
        .args(["webhook", "--listen", "127.0.0.1:0", "--tls-cert-file"])
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        // As deploy/base's Deployment runs it (crates/webhook/tests/deploy.rs checks it does).
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env("MIMALLOC_PURGE_DELAY", "0")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting rolechain webhook")?;
    let started = Instant::now();
    while watches.load(Ordering::SeqCst) == 0 {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the webhook did not list {count} service accounts within 120 s");
        }
        if let Some(status) = child.try_wait()? {
            bail!("rolechain webhook exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = started.elapsed().as_secs_f64();
    // Let the allocator settle after the last page.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().context("the webhook's pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    child.kill().await.ok();
    Ok((rss, listed))
}

/// `loadgen webhook`.
pub async fn run(args: &WebhookArgs) -> anyhow::Result<WebhookReport> {
    let dir = tempfile::tempdir()?;
    let (rss_kib_empty, _) = measure(&args.rolechain, dir.path(), 0).await?;
    let (rss_kib_full, list_seconds) =
        measure(&args.rolechain, dir.path(), args.service_accounts).await?;
    let bytes_per_service_account = (rss_kib_full.saturating_sub(rss_kib_empty) * 1024) as f64
        / args.service_accounts.max(1) as f64;
    let mut problems = Vec::new();
    if rss_kib_full > 50 * 1024 {
        problems.push(format!(
            "the webhook holds {:.1} MiB with {} service accounts (aim: under 50 MiB)",
            rss_kib_full as f64 / 1024.0,
            args.service_accounts
        ));
    }
    Ok(WebhookReport {
        service_accounts: args.service_accounts,
        rss_kib_empty,
        rss_kib_full,
        list_seconds,
        bytes_per_service_account,
        problems,
    })
}
