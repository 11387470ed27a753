//! The listener, the accept loop, graceful shutdown, and the per-request wrapper (request id,
//! timeout, span, metrics).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use http::header::HeaderValue;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service as _;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::admin;
use crate::admin_hosts::AdminHosts;
use crate::clock;
use crate::config::TwinConfig;
use crate::decisions::DecisionLog;
use crate::faults::Faults;
use crate::front_door;
use crate::ids::new_request_id;
use crate::issuers::{issuer_url, IssuerRegistry};
use crate::metrics::{Metrics, UNKNOWN};
use crate::readiness::Readiness;
use crate::service::{AwsService, StreamingService};
use crate::service_accounts;
use crate::shared::{RequestMeta, RouteInfo, Shared};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Two handlers for one signing name.
    #[error("a handler for service {0:?} is already registered")]
    DuplicateService(&'static str),
}

/// The twin's HTTP server: bound by [`bind`](Self::bind), given its service handlers and
/// issuers, then run by [`serve`](Self::serve) until a shutdown future resolves.
pub struct TwinServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    base_url: String,
    config: TwinConfig,
    services: HashMap<&'static str, Arc<dyn AwsService>>,
    streaming: HashMap<&'static str, Arc<dyn StreamingService>>,
    issuers: IssuerRegistry,
    decisions: DecisionLog,
    metrics: Metrics,
    readiness: Readiness,
    local_clusters: Option<Arc<twin_state::Store>>,
    clock: Option<Arc<twin_state::Store>>,
}

impl std::fmt::Debug for TwinServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut services: Vec<_> = self.services.keys().chain(self.streaming.keys()).collect();
        services.sort_unstable();
        f.debug_struct("TwinServer")
            .field("local_addr", &self.local_addr)
            .field("base_url", &self.base_url)
            .field("services", &services)
            .finish_non_exhaustive()
    }
}

impl TwinServer {
    /// Binds `config.listen`. Nothing is answered until [`serve`](Self::serve); connections
    /// made before then wait in the listen backlog.
    ///
    /// # Errors
    ///
    /// [`TwinError::Bind`] when the address cannot be bound.
    pub async fn bind(config: TwinConfig) -> Result<TwinServer, TwinError> {
        let bind_error = |source| TwinError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let base_url = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let mut shown = local_addr;
                if shown.ip().is_unspecified() {
                    shown.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                format!("http://{shown}")
            }
        };
        let decisions = DecisionLog::new(config.decision_log_capacity);
        let metrics = Metrics::new(&decisions);
        Ok(TwinServer {
            listener,
            local_addr,
            base_url,
            config,
            services: HashMap::new(),
            streaming: HashMap::new(),
            issuers: IssuerRegistry::new(),
            decisions,
            metrics,
            readiness: Readiness::new(),
            local_clusters: None,
            clock: None,
        })
    }

    /// The bound address (with the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients use, e.g. `http://127.0.0.1:4555` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The issuer URL for id `id`: `{base_url}/id/{id}`.
    pub fn issuer_url(&self, id: &str) -> String {
        issuer_url(&self.base_url, id)
    }

    /// Adds a service handler, keyed by its [`signing_name`](AwsService::signing_name).
    ///
    /// # Errors
    ///
    /// [`TwinError::DuplicateService`] when one is already registered for that name.
    pub fn register(&mut self, service: Arc<dyn AwsService>) -> Result<&mut Self, TwinError> {
        let name = service.signing_name();
        if self.services.contains_key(name) || self.streaming.contains_key(name) {
            return Err(TwinError::DuplicateService(name));
        }
        self.services.insert(name, service);
        Ok(self)
    }

    /// Adds a service that reads request bodies itself (S3), keyed by its
    /// [`signing_name`](StreamingService::signing_name).
    ///
    /// # Errors
    ///
    /// [`TwinError::DuplicateService`] when a handler is already registered for that name.
    pub fn register_streaming(
        &mut self,
        service: Arc<dyn StreamingService>,
    ) -> Result<&mut Self, TwinError> {
        let name = service.signing_name();
        if self.services.contains_key(name) || self.streaming.contains_key(name) {
            return Err(TwinError::DuplicateService(name));
        }
        self.streaming.insert(name, service);
        Ok(self)
    }

    /// Serves the service accounts of `store`'s clusters under `/_rolechain/serviceaccounts`
    /// (the local clusters' stand-in for an API server: what `rolechain cluster apply` writes
    /// and pod mutation reads).
    pub fn serve_service_accounts(&mut self, store: Arc<twin_state::Store>) -> &mut Self {
        self.local_clusters = Some(store);
        self
    }

    /// Takes `store`'s clock as the twin's now (each request's `received_at`: sessions issued,
    /// `aws:CurrentTime`) and serves it under `/_rolechain/clock`, so time can be made to pass
    /// ([`twin_state::Clock`]). Without it the twin runs on real time.
    pub fn serve_clock(&mut self, store: Arc<twin_state::Store>) -> &mut Self {
        self.clock = Some(store);
        self
    }

    /// The OIDC issuers served under `/id/{ID}` (shared: add issuers while serving too).
    pub fn issuers(&self) -> &IssuerRegistry {
        &self.issuers
    }

    /// The decision log (shared: give clones to the handlers).
    pub fn decisions(&self) -> &DecisionLog {
        &self.decisions
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The readiness health reports (shared).
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Serves until `shutdown` resolves, then stops accepting (the listening socket is closed,
    /// so new connections are refused), lets in-flight requests finish for up to
    /// [`TwinConfig::shutdown_grace`], and returns.
    ///
    /// # Errors
    ///
    /// None today: accept errors (such as running out of file descriptors) are logged and
    /// retried rather than ending the server. The `Result` leaves room for failures a future
    /// listener kind may have.
    pub async fn serve<F>(self, shutdown: F) -> Result<(), TwinError>
    where
        F: Future<Output = ()> + Send,
    {
        let TwinServer {
            listener,
            local_addr,
            base_url,
            config,
            services,
            streaming,
            issuers,
            decisions,
            metrics,
            readiness,
            local_clusters,
            clock,
        } = self;
        let header_read_timeout = config.header_read_timeout;
        let grace = config.shutdown_grace;
        let admin_hosts = AdminHosts::new(local_addr, &base_url);
        let shared = Arc::new(Shared {
            admin_hosts,
            config,
            services,
            streaming,
            issuers,
            decisions,
            metrics,
            readiness: readiness.clone(),
            faults: Faults::default(),
            local_clusters,
            clock,
        });
        let router = build_router(Arc::clone(&shared));
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .keep_alive(true);

        readiness.set_serving();
        tracing::info!(%local_addr, %base_url, "twin listening");

        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends are transient; pausing keeps a full fd table from
                    // turning the loop into a busy spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small AWS responses must not wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            let shared = Arc::clone(&shared);
            let router = router.clone();
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                dispatch(Arc::clone(&shared), router.clone(), peer, req)
            });
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }

        // Closing the socket first is what refuses new connections while the old ones drain.
        drop(listener);
        readiness.set_stopping();
        tracing::info!("twin shutting down; waiting for in-flight requests");
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "connections still open after the shutdown grace period; abandoning them"
            );
        } else {
            tracing::info!("twin stopped");
        }
        Ok(())
    }
}

fn build_router(shared: Arc<Shared>) -> Router {
    // What a web page must not read through DNS rebinding: answered only under the twin's own
    // names. Health stays open to probes, whatever name they use.
    let admin = Router::new()
        .route("/_rolechain/metrics", get(admin::metrics))
        .route("/_rolechain/decisions", get(admin::decisions))
        .route("/_rolechain/faults", faults_routes())
        .route("/_rolechain/snapshot", get(crate::snapshot::get))
        .route("/_rolechain/serviceaccounts", get(service_accounts::list))
        .route(
            "/_rolechain/serviceaccounts/{namespace}/{name}",
            get(service_accounts::get)
                .put(service_accounts::apply)
                .patch(service_accounts::annotate)
                .delete(service_accounts::delete),
        )
        .route(
            "/_rolechain/serviceaccounts/{namespace}/{name}/association",
            get(service_accounts::association),
        )
        .route(
            "/_rolechain/oidc-provider",
            post(service_accounts::associate_oidc_provider),
        )
        .route("/_rolechain/clock", get(clock::show).post(clock::advance))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            admin::require_own_host,
        ));
    Router::new()
        .merge(admin)
        .route("/_rolechain/health", get(admin::health))
        .route(
            "/id/{id}/.well-known/openid-configuration",
            get(admin::discovery),
        )
        .route("/id/{id}/keys", get(admin::jwks))
        .fallback(front_door::unsigned)
        .with_state(shared)
}

/// `/_rolechain/faults`: list, replace, append, remove.
fn faults_routes() -> MethodRouter<Arc<Shared>> {
    get(admin::faults_list)
        .post(admin::faults_replace)
        .patch(admin::faults_append)
        .delete(admin::faults_remove)
}

/// True when the request carries authentication (SigV4, or SigV2 to be refused), decided by
/// the `sigv4` crate on decoded parameter names, as every later reader decides it. Such
/// requests always go to the front door, whatever the path: an S3 object key may look like an
/// internal route.
fn carries_auth(req: &http::Request<Incoming>) -> bool {
    sigv4::presence(&sigv4::Request::from_http(req, &[])).is_signed()
}

/// Longest path shown in logs: S3 keys can be long, and a log line should stay a line.
const MAX_LOGGED_PATH: usize = 256;

async fn dispatch(
    shared: Arc<Shared>,
    mut router: Router,
    peer: SocketAddr,
    req: http::Request<Incoming>,
) -> Result<Response, Infallible> {
    let started = Instant::now();
    let request_id = new_request_id();
    let path = req.uri().path();
    // Only the path: the query of a presigned URL holds its signature and session token.
    let logged_path = match path.char_indices().nth(MAX_LOGGED_PATH) {
        Some((cut, _)) => format!("{}...", &path[..cut]),
        None => path.to_string(),
    };
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %logged_path,
        %peer,
        access_key_id = Empty,
        service = Empty,
        action = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let signed = carries_auth(&req);
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(RequestMeta {
        request_id: request_id.clone(),
        peer,
        received_at: shared.now(),
    });

    let streamed = front_door::Streamed::default();
    req.extensions_mut().insert(streamed.clone());
    let timeout = shared.config.request_timeout;
    let work = async {
        if signed {
            front_door::handle(&shared, req).await
        } else {
            match router.call(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    };
    // A request handed to a streaming service (an S3 upload) runs as long as its body keeps
    // coming; the service's body idle timeout bounds it instead.
    let bounded = async {
        tokio::pin!(work);
        tokio::select! {
            resp = &mut work => resp,
            () = tokio::time::sleep(timeout) => {
                if streamed.0.load(Ordering::SeqCst) {
                    work.await
                } else {
                    front_door::timed_out(&request_id, timeout)
                }
            }
        }
    };
    let mut resp = bounded.instrument(span.clone()).await;

    let route = resp
        .extensions()
        .get::<RouteInfo>()
        .copied()
        .unwrap_or(RouteInfo {
            service: UNKNOWN,
            action: UNKNOWN,
        });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        if route.service == "s3" {
            resp.headers_mut().insert("x-amz-request-id", value.clone());
        }
        resp.headers_mut().insert("x-amzn-requestid", value);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    shared
        .metrics
        .observe(route.service, route.action, status, elapsed);

    span.record("service", route.service);
    span.record("action", route.action);
    span.record("status", status);
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    let _entered = span.enter();
    if status >= 500 {
        tracing::warn!("request failed");
    } else {
        tracing::info!("request done");
    }
    Ok(resp)
}
