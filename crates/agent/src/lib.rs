//! rolechain's node credential agent.
//!
//! The agent gives a pod the final credentials of a chain of roles of any length, across
//! accounts, through the protocol every AWS SDK's container provider speaks (the EKS Pod
//! Identity agent's: `GET /v1/credentials` with the pod's token in `Authorization`). Its parts,
//! from the wire inwards:
//!
//! - [`server`]: listeners (credentials, probes, metrics), the renewer and reloader loops;
//! - [`service`]: one request: `Host` check, rate limit, token, association, cache;
//! - [`token`]: pod tokens verified locally against the cluster's issuer, with a cache of
//!   verified tokens;
//! - [`routes`] and [`associations`]: which chain each service account gets;
//! - [`cache`]: one entry per set of identical credentials, single flight, renewal ahead of
//!   expiry, static stability, bounded;
//! - [`chain`] and [`session`]: resolving a chain hop by hop, session names and tags;
//! - [`upstream`], [`guarded`] and [`sdk`]: the calls to STS and EKS Auth, rate-limited and
//!   measured, through the AWS SDK for Rust;
//! - [`metrics`], [`limits`], [`clock`], [`credentials`]: the pieces they share.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod associations;
pub mod cache;
pub mod chain;
pub mod clock;
pub mod credentials;
pub mod guarded;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod sdk;
pub mod server;
pub mod service;
pub mod session;
pub mod token;
pub mod upstream;

pub use associations::{
    Association, AssociationError, AssociationFile, Chain, Hop, LoadOptions, SessionTags, Start,
    MAX_CHAINED_DURATION_SECS, MAX_HOPS,
};
pub use cache::{CacheConfig, CredentialCache};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::Credentials;
pub use sdk::{SdkSettings, SdkUpstream};
pub use server::{start, AgentOptions, ClusterAssociations, RunningAgent, StartError};
pub use session::{session_name, session_tags, PodIdentity, SessionTag};
pub use upstream::{Operation, Retry, Upstream, UpstreamError};
