//! The HTTPS server: `POST /mutate` (AdmissionReview), `/healthz`, `/readyz`, `/metrics`.
//!
//! It never blocks a pod by its own fault: a lookup that fails, a mutation that errs or panics,
//! an answer that takes too long are all answered "allowed, unmutated" with a warning the user
//! sees in `kubectl`'s output and a metric. Malformed reviews get 400 with what was wrong. The
//! body is capped; handshakes, headers and requests have timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;

use crate::directory::SharedDirectory;
use crate::metrics::{Label, Metrics};
use crate::review::{self, PodReview};
use crate::tls::ReloadingCert;

/// The API server sends pods of at most ~1.5 MiB (etcd's object limit) inside the review.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// The API server waits 10 s by default: answer well before.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the webhook mutates with.
pub struct Webhook {
    directory: SharedDirectory,
    settings: mutation::Settings,
    metrics: Metrics,
    ready: AtomicBool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook over `directory`, mutating with `settings`; not ready until
    /// [`set_ready`](Self::set_ready).
    pub fn new(directory: SharedDirectory, settings: mutation::Settings) -> Arc<Webhook> {
        Arc::new(Webhook {
            directory,
            settings,
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
        })
    }

    /// Marks the webhook ready (its directory has listed everything once).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one AdmissionReview body: the review to send back.
    ///
    /// # Errors
    ///
    /// [`review::MalformedReview`] for a body that is not a review (answered 400).
    pub async fn review(&self, body: &[u8]) -> Result<Value, review::MalformedReview> {
        let review = review::read(body)?;
        if !review.applies {
            self.metrics
                .skips
                .get_or_create(&Label {
                    value: "not_a_pod_create",
                })
                .inc();
            return Ok(review::allow(&review, None, &[]));
        }
        let answer = std::panic::AssertUnwindSafe(tokio::time::timeout(
            REVIEW_TIMEOUT,
            self.mutate(&review),
        ))
        .catch_unwind()
        .await;
        Ok(match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => self.unmutated(&review, "the review took too long"),
            Err(_) => self.unmutated(&review, "an internal error"),
        })
    }

    async fn mutate(&self, review: &PodReview) -> Value {
        let (ns, sa) = (&review.namespace, &review.service_account);
        let account = match self.directory.service_account(ns, sa).await {
            Ok(found) => found,
            Err(e) => return self.unmutated(review, &e.to_string()),
        };
        let pod_identity = self.directory.has_association(ns, sa);
        let mutated =
            match mutation::mutate(&review.pod, account.as_ref(), pod_identity, &self.settings) {
                Ok(m) => m,
                Err(e) => return self.unmutated(review, &e.to_string()),
            };
        let mut warnings: Vec<String> = mutated
            .containers
            .iter()
            .filter_map(|c| {
                c.skipped_because
                    .as_ref()
                    .map(|why| format!("rolechain: container {} not mutated: {why}", c.name))
            })
            .collect();
        match &mutated.mode {
            mutation::Mode::Untouched(skip) => {
                let reason = match skip {
                    mutation::Skip::OptedOut => "opted_out",
                    mutation::Skip::NoRole => "no_role",
                };
                self.metrics
                    .skips
                    .get_or_create(&Label { value: reason })
                    .inc();
                if account.is_none() && *skip == mutation::Skip::NoRole {
                    warnings.push(format!(
                        "rolechain: service account {ns}/{sa} was not found; the pod gets no AWS credentials"
                    ));
                }
            }
            // A pod that already has everything (a reinvocation) is not mutated again.
            _ if mutated.patch.0.is_empty() => {
                self.metrics
                    .skips
                    .get_or_create(&Label {
                        value: "already_mutated",
                    })
                    .inc();
            }
            mutation::Mode::WebIdentity { .. } => {
                self.metrics
                    .mutations
                    .get_or_create(&Label { value: "irsa" })
                    .inc();
            }
            mutation::Mode::ContainerCredentials => {
                self.metrics
                    .mutations
                    .get_or_create(&Label {
                        value: "container_credentials",
                    })
                    .inc();
            }
        }
        tracing::info!(
            namespace = %ns,
            pod = %review.pod_name,
            service_account = %sa,
            operations = mutated.patch.0.len(),
            "pod reviewed"
        );
        review::allow(review, Some(&mutated.patch), &warnings)
    }

    /// Allowed, unmutated, with a warning and a metric: the webhook's own fault never blocks
    /// a pod.
    fn unmutated(&self, review: &PodReview, why: &str) -> Value {
        self.metrics.unmutated.inc();
        tracing::warn!(namespace = %review.namespace, pod = %review.pod_name, %why, "pod admitted unmutated");
        review::allow(
            review,
            None,
            &[format!(
                "rolechain webhook: pod admitted without AWS credentials mutation: {why}"
            )],
        )
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let response = match (req.method(), req.uri().path()) {
            (&Method::POST, "/mutate") => self.mutate_route(req).await,
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
            (&Method::GET, "/readyz") if self.ready.load(Ordering::SeqCst) => {
                text(StatusCode::OK, "ready")
            }
            (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
            (&Method::GET, "/metrics") => {
                self.metrics
                    .cache_entries
                    .set(i64::try_from(self.directory.size()).unwrap_or(i64::MAX));
                let mut resp = text(StatusCode::OK, &self.metrics.encode());
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                resp
            }
            (_, "/mutate" | "/healthz" | "/readyz" | "/metrics") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        };
        let status = response.status();
        self.metrics
            .requests
            .get_or_create(&Label {
                value: status_label(status),
            })
            .inc();
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        response
    }

    async fn mutate_route(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let json = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json",
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the review is larger than {MAX_BODY_BYTES} bytes"),
                )
            }
        };
        match self.review(&body).await {
            Ok(answer) => {
                let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                resp
            }
            Err(e) => text(StatusCode::BAD_REQUEST, &e.0),
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        503 => "503",
        _ => "other",
    }
}

/// A running webhook server.
#[derive(Debug)]
pub struct Running {
    /// Where it serves.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Waits until it has stopped.
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Serves `webhook` over HTTPS on `listen` with `cert` until `shutdown` completes, then
/// finishes the requests in flight.
///
/// # Errors
///
/// When the address cannot be bound or the TLS configuration cannot be built.
pub async fn serve(
    webhook: Arc<Webhook>,
    cert: &Arc<ReloadingCert>,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    let config = cert
        .server_config()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let acceptor = acceptor.clone();
            let webhook = Arc::clone(&webhook);
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper::service::service_fn(move |req| {
                    let webhook = Arc::clone(&webhook);
                    async move { Ok::<_, Infallible>(webhook.route(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), service);
                let _ = watcher.watch(conn).await;
            });
        }
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    });
    Ok(Running { addr, task })
}
