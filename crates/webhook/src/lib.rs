//! rolechain's mutating admission webhook: what the Amazon EKS Pod Identity webhook does, on
//! any cluster, with the shared mutation core.
//!
//! - [`server`]: HTTPS (rustls, the certificate reloaded when its files change), `POST
//!   /mutate` taking `admission.k8s.io/v1` AdmissionReview and answering with the mutation
//!   core's JSON patch, `/healthz`, `/readyz`, `/metrics`. A fault of its own never blocks a
//!   pod: the pod is admitted unmutated with a warning and a metric.
//! - [`directory`]: a pod's ServiceAccount and whether the node agent serves it
//!   ([`crd::RoleChainAssociation`]), from the API server through `kube` reflectors that keep
//!   only what mutation reads, with one GET on a miss.
//! - [`review`]: reading the review and writing the answer.
//! - [`crd`]: the `RoleChainAssociation` resource (`rolechain.dev/v1alpha1`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crd;
pub mod directory;
pub mod metrics;
pub mod review;
pub mod server;
pub mod tls;

pub use crd::{crd_yaml, RoleChainAssociation, RoleChainAssociationSpec};
pub use directory::{Directory, KubeDirectory, LookupError, StaticDirectory};
pub use server::{serve, Running, Webhook};
pub use tls::{ReloadingCert, TlsError};
