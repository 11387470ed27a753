//! The pod mutation core: what the Amazon EKS Pod Identity webhook does to a pod, as a pure
//! function, so the webhook server, `rolechain exec` and the tests share one copy.
//!
//! [`mutate`] takes the pod as the API server sent it (raw JSON: every field is kept, including
//! fields newer than this crate's Kubernetes types, such as a native sidecar's
//! `restartPolicy: Always`), its ServiceAccount, whether the node agent has an association for
//! it, and the [`Settings`]; it returns the mutated pod, the JSON patch from the one to the other
//! (per field: an `add` for each variable, mount, volume and label, never a whole container
//! array replaced), and what it did and skipped.
//!
//! Two modes, chosen as the webhook chooses them:
//! - **container credentials** (the agent serves the service account: Pod Identity): the
//!   variables `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`,
//!   the projected volume `eks-pod-identity-token` (audience `pods.eks.amazonaws.com`) and the
//!   label `eks.amazonaws.com/pod-identity: enabled`;
//! - **IRSA** (the ServiceAccount annotation `eks.amazonaws.com/role-arn`): `AWS_ROLE_ARN`,
//!   `AWS_WEB_IDENTITY_TOKEN_FILE`, the projected volume `aws-iam-token` (audience
//!   `sts.amazonaws.com` unless `eks.amazonaws.com/audience` says otherwise).
//!
//! In both, `AWS_STS_REGIONAL_ENDPOINTS=regional` when asked (`sts-regional-endpoints`),
//! `AWS_REGION`/`AWS_DEFAULT_REGION` when a region is set, the token's lifetime from
//! `token-expiration` (ServiceAccount, then pod annotation; at least 600 s), containers named in
//! the pod annotation `skip-containers` left alone, init containers included, Windows pods given
//! a `C:\` path. A pod labelled `eks.amazonaws.com/skip-pod-identity-webhook` is not touched.
//! Only what is missing is added; what the user set is never overridden; mutating a mutated pod
//! changes nothing.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod pod;
mod settings;

pub use pod::{mutate, ContainerOutcome, Mode, Mutation, MutationError, Skip, TokenVolume};
pub use settings::{ContainerCredentials, Settings};
