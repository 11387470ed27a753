//! `twin-state`: the durable state of rolechain's AWS twin (accounts, access keys, IAM roles,
//! managed and inline policies, OIDC providers, instance profiles, EKS clusters, EKS Pod Identity
//! associations, the local clusters' Kubernetes service accounts, S3 buckets and objects, STS
//! sessions), with no HTTP.
//!
//! Everything lives in one [redb](https://docs.rs/redb) file under a data directory. The API is
//! synchronous (call it from `spawn_blocking`); each mutation is one write transaction committed
//! durably before it returns, so nothing acknowledged is lost when the process is killed.
//! Errors carry IAM's codes and messages ([`StateError::code`], [`StateError::http_status`]).
//!
//! Trust policies are stored as IAM stores them: principals naming roles and users of the
//! twin's accounts become unique ids (see [`principals`]).
//!
//! ```
//! use twin_state::{CreateRole, Store, World};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! store.seed_if_empty(&World::default_world(|c| format!("https://localhost:8443/clusters/{c}")))?;
//! let role = store.create_role(&CreateRole {
//!     account: "111111111111".into(),
//!     name: "builder".into(),
//!     assume_role_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
//!         "Principal":{"AWS":"arn:aws:iam::222222222222:user/admin"},
//!         "Action":"sts:AssumeRole"}]}"#.into(),
//!     ..Default::default()
//! })?;
//! assert!(role.role_id.starts_with("AROA"));
//! // Stored by the admin user's unique id, shown with its ARN while the user exists.
//! assert!(role.assume_role_policy.document.contains("AIDA"));
//! assert!(store.render_policy(&role.assume_role_policy)?.contains("user/admin"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accounts;
pub mod buckets;
pub mod clock;
mod clusters;
mod db;
pub mod error;
mod group_commit;
pub mod ids;
pub mod instance_profiles;
pub mod model;
mod oidc_providers;
pub mod pod_identity;
mod policies;
mod policy_documents;
pub mod principals;
pub mod propagation;
mod roles;
pub mod service_accounts;
mod sessions;
pub mod snapshot;
pub mod store;
mod validate;
pub mod world;

pub use buckets::{
    Bucket, BucketError, NewObject, NewUpload, ObjectBodies, ObjectListing, ObjectMeta,
    PartListing, PartMeta, Upload, UploadListing,
};
pub use clock::{Clock, ClockError};
pub use error::{Result, StateError};
pub use instance_profiles::{CreateInstanceProfile, InstanceProfile, InstanceProfileView};
pub use model::{
    AccessKey, Account, AttachedPolicy, Cluster, ManagedPolicy, NewCluster, OidcProvider, Page,
    Paging, PolicyVersion, Role, Session, Tag, User,
};
pub use pod_identity::{
    AssociationPage, NewPodIdentityAssociation, PodIdentityAssociation,
    PodIdentityAssociationUpdate,
};
pub use principals::StoredPolicy;
pub use propagation::IamView;
pub use service_accounts::{AnnotationChange, Applied, ServiceAccount};
pub use snapshot::Snapshot;
pub use store::{
    oidc_provider_host_path, paginate_indexed, CreateOidcProvider, CreatePolicy, CreateRole,
    ListPolicies, NewSession, OidcAssociation, PolicyScope, Store,
};
pub use world::{World, WorldError};
