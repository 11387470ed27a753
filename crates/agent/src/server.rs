//! The agent's listeners and loops: credentials on every `--bind` that could be bound, probes
//! and metrics on their own listeners, the renewer, the association file's reloader, and a
//! graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::associations::{AssociationError, LoadOptions};
use crate::cache::{CacheConfig, ClusterIdentity, CredentialCache};
use crate::clock::Clock;
use crate::guarded::GuardedUpstream;
use crate::limits::TokenBucket;
use crate::metrics::Metrics;
use crate::routes::{Reload, Routes};
use crate::service::{AllowedHosts, Answer, CredentialService};
use crate::token::TokenVerifier;
use crate::upstream::Upstream;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `--cluster`.
    pub cluster_name: String,
    /// `--cluster-arn`: for the `eks-cluster-arn` session tag (omitted when unknown).
    pub cluster_arn: Option<String>,
    /// `--issuer`.
    pub issuer: String,
    /// `--audience`.
    pub audience: String,
    /// `--issuer-ca-file`: the CA (PEM) of an `https://` issuer, instead of the system's roots.
    pub issuer_ca: Option<PathBuf>,
    /// `--associations`.
    pub associations: Option<PathBuf>,
    /// `--eks-auth`.
    pub eks_auth: bool,
    /// `--bind`, in order.
    pub binds: Vec<SocketAddr>,
    /// `--probe-bind`.
    pub probe_bind: SocketAddr,
    /// `--metrics-bind`.
    pub metrics_bind: SocketAddr,
    /// The cache's tunables.
    pub cache: CacheConfig,
    /// Upstream calls allowed per second (0: no limit) and the burst saved up.
    pub upstream_rate: (f64, u32),
    /// Credential requests answered per second (0: no limit) and the burst; beyond: 429.
    pub request_rate: (f64, u32),
    /// How often the association file is checked for changes.
    pub reload_interval: Duration,
    /// How often the renewer looks for entries to renew or drop.
    pub refresh_interval: Duration,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub clock_skew: Duration,
    /// Most verified tokens remembered.
    pub max_verified_tokens: usize,
}

impl AgentOptions {
    /// The defaults, for `cluster` and `issuer`.
    pub fn new(cluster_name: impl Into<String>, issuer: impl Into<String>) -> AgentOptions {
        AgentOptions {
            cluster_name: cluster_name.into(),
            cluster_arn: None,
            issuer: issuer.into(),
            audience: "pods.eks.amazonaws.com".to_string(),
            issuer_ca: None,
            associations: None,
            eks_auth: false,
            binds: vec![
                SocketAddr::from(([169, 254, 170, 23], 80)),
                "[fd00:ec2::23]:80"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0; 16], 80))),
            ],
            probe_bind: SocketAddr::from(([127, 0, 0, 1], 2703)),
            metrics_bind: SocketAddr::from(([0, 0, 0, 0], 2705)),
            cache: CacheConfig::default(),
            upstream_rate: (50.0, 200),
            request_rate: (0.0, 1),
            reload_interval: Duration::from_secs(2),
            refresh_interval: Duration::from_secs(5),
            clock_skew: Duration::from_secs(60),
            max_verified_tokens: 50_000,
        }
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The association file is unreadable or invalid.
    #[error(transparent)]
    Associations(#[from] AssociationError),
    /// No `--bind` address could be bound.
    #[error("none of the credential addresses could be bound: {0}")]
    NoBind(String),
    /// The issuer's TLS trust cannot be set up (no system roots, an unreadable CA file).
    #[error("trusting the issuer's TLS certificate: {0}")]
    IssuerTls(String),
    /// The probe or metrics listener could not be bound.
    #[error("binding {what} on {addr}: {source}")]
    Listener {
        /// `probes` or `metrics`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started agent: where it serves, and its task.
#[derive(Debug)]
pub struct RunningAgent {
    /// The credential listeners that were bound.
    pub credentials: Vec<SocketAddr>,
    /// The probes' listener.
    pub probes: SocketAddr,
    /// The metrics listener.
    pub metrics: SocketAddr,
    /// The cache, for tests and diagnostics.
    pub cache: Arc<CredentialCache>,
    /// The metrics.
    pub registry: Metrics,
    /// Where the cluster's associations are set ([`ClusterAssociations`]).
    pub cluster_associations: ClusterAssociations,
    task: tokio::task::JoinHandle<()>,
}

/// Sets the chains the cluster holds (RoleChainAssociations) while the agent runs: the cache
/// drops what no longer routes, as after a file reload.
#[derive(Debug, Clone)]
pub struct ClusterAssociations {
    routes: Arc<Routes>,
    cache: Arc<CredentialCache>,
}

impl ClusterAssociations {
    /// Tells `hook` what each resolution of a chain ends with.
    pub fn on_resolved(&self, hook: crate::cache::ResolutionHook) {
        self.cache.on_resolved(hook);
    }

    /// Makes `associations` the cluster's chains; answers how many cache entries were dropped.
    pub fn set(&self, associations: &crate::associations::AssociationFile) -> usize {
        let old = self.routes.set_cluster(associations);
        let dropped = self.cache.retain_chains(|key| {
            self.routes
                .still_routes(&key.namespace, &key.service_account, &key.chain)
        });
        tracing::info!(
            before = old.len(),
            after = associations.len(),
            entries_dropped = dropped,
            "cluster associations set"
        );
        dropped
    }
}

impl RunningAgent {
    /// Waits until the agent has stopped (after the shutdown future given to [`start`]
    /// completes and in-flight requests are answered).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

struct Shared {
    service: Arc<CredentialService>,
    ready: Arc<AtomicBool>,
    metrics: Metrics,
}

/// Binds every listener and starts serving; returns once bound. The agent stops when
/// `shutdown` completes: listeners stop accepting, requests in flight are answered.
///
/// # Errors
///
/// A bad association file, no credential address bindable, or the probe or metrics address
/// not bindable.
pub async fn start(
    options: AgentOptions,
    upstream: Arc<dyn Upstream>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningAgent, StartError> {
    let metrics = Metrics::new();
    let routes = Arc::new(Routes::load(
        options.associations.clone(),
        LoadOptions {
            eks_auth: options.eks_auth,
        },
    )?);
    metrics.associations.set(routes.table().len() as i64);
    metrics.reload(true);

    let mut listeners = Vec::new();
    let mut failures = Vec::new();
    for addr in &options.binds {
        match TcpListener::bind(addr).await {
            Ok(listener) => listeners.push(listener),
            Err(error) => {
                // The EKS agent crash-loops when the IPv6 address is missing; one address
                // serving is enough.
                tracing::warn!(%addr, %error, "cannot bind a credential address; skipping it");
                failures.push(format!("{addr}: {error}"));
            }
        }
    }
    if listeners.is_empty() {
        return Err(StartError::NoBind(failures.join("; ")));
    }
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let bind_side = |what: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listener { what, addr, source })
    };
    let probe_listener = bind_side("probes", options.probe_bind).await?;
    let metrics_listener = bind_side("metrics", options.metrics_bind).await?;
    let probes = probe_listener.local_addr().unwrap_or(options.probe_bind);
    let metrics_addr = metrics_listener
        .local_addr()
        .unwrap_or(options.metrics_bind);

    let source = oidc::HttpSource::try_new(oidc::HttpSourceConfig {
        tls: issuer_trust(&options)?,
        ..oidc::HttpSourceConfig::default()
    })
    .map_err(|e| StartError::IssuerTls(e.to_string()))?;
    let verifier = oidc::Verifier::with_config(
        Arc::new(source),
        oidc::VerifierConfig {
            clock_skew: options.clock_skew,
            // What Kubernetes signs service-account tokens with; nothing else is accepted.
            algorithms: vec![oidc::Algorithm::RS256, oidc::Algorithm::ES256],
            ..oidc::VerifierConfig::default()
        },
    );
    let tokens = TokenVerifier::new(
        verifier,
        options.issuer.clone(),
        options.audience.clone(),
        Arc::clone(&clock),
        options.max_verified_tokens,
    );
    let guarded: Arc<dyn Upstream> = Arc::new(GuardedUpstream::new(
        upstream,
        options.upstream_rate.0,
        options.upstream_rate.1,
        options.cache.fetch_timeout,
        metrics.clone(),
    ));
    let cache = Arc::new(CredentialCache::new(
        options.cache.clone(),
        ClusterIdentity {
            name: options.cluster_name.clone(),
            arn: options.cluster_arn.clone(),
        },
        guarded,
        Arc::clone(&clock),
        metrics.clone(),
    ));
    let service = Arc::new(CredentialService {
        tokens,
        routes: Arc::clone(&routes),
        cache: Arc::clone(&cache),
        limiter: TokenBucket::new(options.request_rate.0, options.request_rate.1),
        hosts: AllowedHosts::new(bound.iter().map(SocketAddr::ip)),
        metrics: metrics.clone(),
        clock,
        request_timeout: options.cache.fetch_timeout + Duration::from_secs(1),
    });
    // Behind one Arc: axum clones the state for every request.
    let shared = Arc::new(Shared {
        service,
        ready: Arc::new(AtomicBool::new(false)),
        metrics: metrics.clone(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let credentials_app = Router::new()
        .route("/v1/credentials", get(credentials))
        .fallback(not_found)
        .with_state(shared.clone());
    for listener in listeners {
        tasks.spawn(serve(listener, credentials_app.clone(), stop_rx.clone()));
    }
    let probe_app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(shared.clone());
    tasks.spawn(serve(probe_listener, probe_app, stop_rx.clone()));
    let metrics_app = Router::new()
        .route("/metrics", get(metrics_page))
        .fallback(not_found)
        .with_state(shared.clone());
    tasks.spawn(serve(metrics_listener, metrics_app, stop_rx.clone()));
    tasks.spawn(preload(shared.clone(), stop_rx.clone()));
    tasks.spawn(renew(
        Arc::clone(&cache),
        options.refresh_interval,
        stop_rx.clone(),
    ));
    let cluster_associations = ClusterAssociations {
        routes: Arc::clone(&routes),
        cache: Arc::clone(&cache),
    };
    tasks.spawn(reload(
        routes,
        Arc::clone(&cache),
        metrics.clone(),
        options.reload_interval,
        stop_rx.clone(),
    ));
    tracing::info!(
        cluster = %options.cluster_name,
        issuer = %options.issuer,
        credentials = ?bound,
        %probes,
        metrics = %metrics_addr,
        "agent serving"
    );

    let task = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("stopping: answering requests in flight");
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        tracing::info!("stopped");
    });
    Ok(RunningAgent {
        credentials: bound,
        probes,
        metrics: metrics_addr,
        cache,
        registry: metrics,
        cluster_associations,
        task,
    })
}

/// How an `https://` issuer's certificate is checked: against `--issuer-ca-file`, else the
/// system's roots. A plain `http://` issuer (the twin's) needs neither.
fn issuer_trust(options: &AgentOptions) -> Result<oidc::TlsTrust, StartError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    match &options.issuer_ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StartError::IssuerTls(format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(StartError::IssuerTls(format!(
                    "{}: no PEM certificate in it",
                    path.display()
                )));
            }
            Ok(oidc::TlsTrust::Roots(
                certs.into_iter().map(|c| c.to_vec()).collect(),
            ))
        }
        None if options.issuer.starts_with("https://") => Ok(oidc::TlsTrust::System),
        None => Ok(oidc::TlsTrust::Disabled),
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn serve(listener: TcpListener, app: Router, stop: watch::Receiver<bool>) {
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stopped(stop))
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "listener failed");
    }
}

/// Fetches the issuer's keys until it succeeds; the agent is ready from then on.
async fn preload(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut wait = Duration::from_millis(500);
    loop {
        match shared.service.tokens.preload().await {
            Ok(keys) => {
                tracing::info!(keys, issuer = %shared.service.tokens.issuer(), "issuer keys loaded; ready");
                shared.ready.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, issuer = %shared.service.tokens.issuer(), "issuer keys not loaded yet");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(stop.clone()) => return,
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

async fn renew(cache: Arc<CredentialCache>, every: Duration, stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopped(stop.clone()) => return,
        }
        let report = cache.refresh_pass().await;
        if report != Default::default() {
            tracing::debug!(?report, "renewal pass");
        }
    }
}

async fn reload(
    routes: Arc<Routes>,
    cache: Arc<CredentialCache>,
    metrics: Metrics,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopped(stop.clone()) => return,
        }
        match routes.reload_if_changed() {
            Reload::Unchanged => {}
            Reload::Loaded { old, new } => {
                metrics.reload(true);
                metrics.associations.set(new.len() as i64);
                let dropped = cache.retain_chains(|key| {
                    routes.still_routes(&key.namespace, &key.service_account, &key.chain)
                });
                tracing::info!(
                    before = old.len(),
                    after = new.len(),
                    entries_dropped = dropped,
                    "association file reloaded"
                );
            }
            Reload::Rejected(error) => {
                metrics.reload(false);
                tracing::error!(%error, "association file refused; keeping the last good one");
            }
        }
    }
}

fn json(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response()
}

async fn credentials(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authorization = headers.get(header::AUTHORIZATION).map(|h| h.as_bytes());
    json(shared.service.answer(host, authorization).await)
}

async fn not_found() -> Response {
    json(Answer {
        status: 404,
        body: bytes::Bytes::from_static(br#"{"code":"NotFound","message":"no such path: the agent serves GET /v1/credentials"}"#),
    })
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok").into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the issuer's keys are not loaded yet",
        )
            .into_response()
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}
