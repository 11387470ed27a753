//! A running twin with IAM, STS, EKS and EKS Auth over loopback HTTP, seeded with the default
//! world, the STS scenarios and seed 004's Pod Identity roles (a primary role in the cluster's
//! account, a target role in the shared account), plus a second cluster whose tokens the
//! development cluster must refuse.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_eksauth::config::{BehaviorVersion, Region};
use twin::{
    Authorizer, BoxFuture, ClusterLifecycle, EksAuthConfig, EksAuthService, EksService, IamService,
    IssuerRegistry, StoreAuthenticator,
};
use twin_state::{CreateRole, NewPodIdentityAssociation, PodIdentityAssociation, Store};

#[path = "../sts_support/mod.rs"]
mod sts_support;

pub use sts_support::*;

pub const OTHER_CLUSTER: &str = "other-cluster";
pub const PRIMARY: &str = "eks-pod-identity-primary-role";
pub const TARGET: &str = "s3-reader-target-role";
pub const POD_AUDIENCE: &str = "pods.eks.amazonaws.com";

pub struct EksTwin {
    pub twin: Twin,
    /// The issuer of [`OTHER_CLUSTER`], served by the same twin.
    pub other_issuer: Arc<oidc::Issuer>,
    _keys_dir: tempfile::TempDir,
}

impl std::ops::Deref for EksTwin {
    type Target = Twin;
    fn deref(&self) -> &Twin {
        &self.twin
    }
}

pub fn arn(account: &str, role: &str) -> String {
    format!("arn:aws:iam::{account}:role/{role}")
}

fn trust(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn pods_trust(actions: &str) -> String {
    trust(&format!(
        r#"{{"Effect":"Allow","Principal":{{"Service":"{POD_AUDIENCE}"}},"Action":{actions}}}"#
    ))
}

fn role(store: &Store, account: &str, name: &str, trust_doc: String) {
    store
        .create_role(&CreateRole {
            account: account.into(),
            name: name.into(),
            assume_role_policy: trust_doc,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("role {name}: {e}"));
}

/// Seed 004's roles and the pitfalls' variants.
fn seed_pod_identity(store: &Store) {
    // The primary role trusts the EKS Pod Identity service principal for both actions.
    role(
        store,
        DEV,
        PRIMARY,
        pods_trust(r#"["sts:AssumeRole","sts:TagSession"]"#),
    );
    // Pitfall 3: sts:TagSession missing from the primary role's trust.
    role(
        store,
        DEV,
        "primary-without-tag-session",
        pods_trust(r#""sts:AssumeRole""#),
    );
    for name in [PRIMARY, "primary-without-tag-session"] {
        store
            .put_role_policy(
                DEV,
                name,
                "assume-target",
                &format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::{SHARED}:role/*"}}]}}"#
                ),
            )
            .unwrap();
    }
    let primary = arn(DEV, PRIMARY);
    // Pitfall 4: the target trusts the primary role in two statements.
    role(
        store,
        SHARED,
        TARGET,
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{primary}"}},"Action":["sts:AssumeRole"]}},{{"Effect":"Allow","Principal":{{"AWS":"{primary}"}},"Action":["sts:TagSession"]}}"#
        )),
    );
    // A target trusting the primary role for sts:AssumeRole only.
    role(
        store,
        SHARED,
        "target-without-tag-session",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{primary}"}},"Action":"sts:AssumeRole"}}"#
        )),
    );
    // A target that requires the association's external id (the confused-deputy guard).
    role(
        store,
        SHARED,
        "target-with-external-id",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{primary}"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"us-east-1/{DEV}/{CLUSTER}/ext-ns/ext-sa"}}}}}}"#
        )),
    );
    // The node's role without any EKS Auth permission, assumable by the admin.
    role(
        store,
        DEV,
        "node-without-eks-auth",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{DEV}:user/admin"}},"Action":"sts:AssumeRole"}}"#
        )),
    );
}

/// What serves created clusters' issuers in these tests: keys under a temporary directory, the
/// twin's registry. A cluster whose name starts with `unservable-` fails to be served.
#[derive(Debug)]
struct TestClusters {
    issuers: IssuerRegistry,
    base_url: String,
    keys: std::path::PathBuf,
    next: std::sync::atomic::AtomicU32,
}

impl ClusterLifecycle for TestClusters {
    fn new_issuer_url(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        twin::issuer_url(
            &self.base_url,
            &twin::derive_issuer_id(&format!("created-{n}")),
        )
    }

    fn created(&self, cluster: twin_state::Cluster) -> BoxFuture<'static, Result<(), String>> {
        let issuers = self.issuers.clone();
        let keys = self.keys.join(&cluster.name);
        Box::pin(async move {
            if cluster.name.starts_with("unservable-") {
                return Err("no keys for unservable clusters".into());
            }
            let id = cluster
                .issuer_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let issuer = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
                cluster.issuer_url.clone(),
                keys,
            ))
            .map_err(|e| e.to_string())?;
            issuers
                .add(&cluster.arn, &id, Arc::new(issuer))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn deleted(&self, cluster: twin_state::Cluster) -> BoxFuture<'static, ()> {
        self.issuers.remove_cluster(&cluster.arn);
        Box::pin(async {})
    }
}

pub async fn start() -> EksTwin {
    start_configured(EksAuthConfig::default()).await
}

/// [`start`] with EKS Auth configured as given.
pub async fn start_configured(eks_auth: EksAuthConfig) -> EksTwin {
    let keys_dir = tempfile::tempdir().unwrap();
    let mut other_issuer = None;
    let twin = start_with(|server, store, sts| {
        let decisions = server.decisions().clone();
        server
            .register(Arc::new(IamService::new(
                Arc::clone(store),
                decisions.clone(),
            )))
            .unwrap();
        let lifecycle = TestClusters {
            issuers: server.issuers().clone(),
            base_url: server.base_url().to_string(),
            keys: keys_dir.path().join("created"),
            next: Default::default(),
        };
        server
            .register(Arc::new(EksService::with_cluster_lifecycle(
                Arc::clone(store),
                decisions.clone(),
                Arc::new(lifecycle),
            )))
            .unwrap();
        server
            .register(Arc::new(EksAuthService::new(
                Arc::clone(store),
                Arc::new(StoreAuthenticator::new(Arc::clone(store))),
                Authorizer::new(Arc::clone(store), decisions),
                Arc::new(oidc::Verifier::new(oidc::HttpSource::default())),
                sts.clone(),
                eks_auth.clone(),
            )))
            .unwrap();

        let id = twin::derive_issuer_id(OTHER_CLUSTER);
        let url = server.issuer_url(&id);
        store
            .create_cluster(&twin_state::NewCluster::new(
                DEV,
                "us-east-1",
                OTHER_CLUSTER,
                &url,
            ))
            .unwrap();
        let keys = keys_dir.path().join(OTHER_CLUSTER);
        let issuer =
            Arc::new(oidc::Issuer::load_or_create(oidc::IssuerConfig::new(url, keys)).unwrap());
        server
            .issuers()
            .add(OTHER_CLUSTER, &id, Arc::clone(&issuer))
            .unwrap();
        other_issuer = Some(issuer);
        seed_pod_identity(store);
    })
    .await;
    EksTwin {
        twin,
        other_issuer: other_issuer.expect("hook ran"),
        _keys_dir: keys_dir,
    }
}

/// Creates an association in the development cluster directly in the store.
pub fn associate(
    twin: &Twin,
    namespace: &str,
    service_account: &str,
    role_arn: &str,
    target_role_arn: Option<&str>,
    disable_session_tags: bool,
) -> PodIdentityAssociation {
    let cluster = twin.store.get_cluster(DEV, "us-east-1", CLUSTER).unwrap();
    twin.store
        .create_pod_identity_association(
            &cluster,
            &NewPodIdentityAssociation {
                account: DEV.into(),
                region: "us-east-1".into(),
                cluster_name: CLUSTER.into(),
                namespace: namespace.into(),
                service_account: service_account.into(),
                role_arn: role_arn.into(),
                target_role_arn: target_role_arn.map(str::to_owned),
                disable_session_tags,
                ..Default::default()
            },
        )
        .unwrap()
}

/// A pod-bound token for Pod Identity from `issuer`.
pub fn pod_token_from(
    issuer: &oidc::Issuer,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> String {
    let mut request = oidc::TokenRequest::new(namespace, service_account, "sa-uid-1", audience);
    request.pod = Some(oidc::BoundObject {
        name: "s3-access-test-pod".into(),
        uid: "0b7c3f5e-7a0b-4c8e-9a51-2f3d4e5f6a7b".into(),
    });
    issuer.mint(&request).unwrap()
}

/// A pod-bound token for Pod Identity from the development cluster's issuer.
pub fn pod_token(twin: &Twin, namespace: &str, service_account: &str) -> String {
    pod_token_from(&twin.issuer, namespace, service_account, POD_AUDIENCE)
}

/// A token that expired an hour ago (beyond the verifier's clock skew).
pub fn expired_pod_token(twin: &Twin, namespace: &str, service_account: &str) -> String {
    let mut request = oidc::TokenRequest::new(namespace, service_account, "sa-uid-1", POD_AUDIENCE);
    request.pod = Some(oidc::BoundObject {
        name: "p".into(),
        uid: "u".into(),
    });
    request.lifetime = Some(Duration::from_secs(600));
    twin.issuer
        .mint_at(&request, SystemTime::now() - Duration::from_secs(7200))
        .unwrap()
}

/// An EKS Auth client of the real SDK, over plain HTTP, signing with `creds` (the node's).
pub async fn eks_auth(twin: &Twin, creds: Credentials) -> aws_sdk_eksauth::Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&twin.base_url)
        .http_client(http)
        .credentials_provider(creds)
        .load()
        .await;
    let conf = aws_sdk_eksauth::config::Builder::from(&sdk)
        .retry_config(aws_sdk_eksauth::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_eksauth::Client::from_conf(conf)
}

/// The AWS error code and message of an EKS Auth SDK failure.
pub fn eks_auth_error<R: std::fmt::Debug>(
    result: Result<
        R,
        aws_sdk_eksauth::error::SdkError<
            aws_sdk_eksauth::operation::assume_role_for_pod_identity::AssumeRoleForPodIdentityError,
        >,
    >,
) -> (String, String, u16) {
    match result {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => {
            use aws_sdk_eksauth::error::ProvideErrorMetadata as _;
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            let code = e
                .code()
                .unwrap_or_else(|| panic!("no error code: {e:?}"))
                .to_string();
            (code, e.message().unwrap_or_default().to_string(), status)
        }
    }
}
