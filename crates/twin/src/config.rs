//! Settings of the twin's HTTP endpoint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Where the twin listens unless told otherwise (`rolechain up --listen`): loopback only, so a
/// twin holding test credentials is never reachable from the network by accident.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4555);

/// Largest API request body accepted by default: 1 MiB. STS and IAM Query calls are a few KiB
/// (the largest, a managed policy document, is capped by IAM at 6 144 characters before
/// encoding); a service that needs more (S3 uploads) raises it with
/// [`AwsService::max_body_bytes`](crate::AwsService::max_body_bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of a [`TwinServer`](crate::TwinServer). Build with `TwinConfig::default()` and
/// change fields; new fields will get defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TwinConfig {
    /// Address to listen on (`--listen`). Default [`DEFAULT_LISTEN`], `127.0.0.1:4555`. Port 0
    /// picks a free port; [`TwinServer::local_addr`](crate::TwinServer::local_addr) tells which.
    pub listen: SocketAddr,
    /// The base URL clients reach the twin at, used in OIDC issuer URLs
    /// (`{public_url}/id/{ID}`). Default: `http://{bound address}`, with `127.0.0.1` in place
    /// of an unspecified address (`0.0.0.0`), which clients cannot connect to.
    pub public_url: Option<String>,
    /// Largest API request body, unless the service says otherwise. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Longest time one request to a buffered service (IAM, STS, EKS) may take, reading its
    /// body included. Default 30 s. Streamed requests (S3) are not bound by it: an upload may
    /// take as long as its bytes keep coming (see [`body_idle_timeout`](Self::body_idle_timeout)).
    pub request_timeout: Duration,
    /// Longest pause between the bytes of a streamed request body (S3 uploads and parts); a
    /// longer one ends the request with the service's timeout error (S3's `400
    /// RequestTimeout`), leaving nothing stored. Default 30 s.
    pub body_idle_timeout: Duration,
    /// Longest time a client may take to send a request's headers, so idle or slow-loris
    /// connections do not pin tasks. Default 10 s.
    pub header_read_timeout: Duration,
    /// After shutdown begins, how long in-flight requests get to finish before the server
    /// stops waiting for them. Default 30 s.
    pub shutdown_grace: Duration,
    /// Entries kept by the decision log. Default 1000.
    pub decision_log_capacity: usize,
}

impl Default for TwinConfig {
    fn default() -> Self {
        TwinConfig {
            listen: DEFAULT_LISTEN,
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            decision_log_capacity: 1000,
        }
    }
}
