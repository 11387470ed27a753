//! A running twin with STS over loopback HTTP, seeded with the default world and the roles and
//! OIDC providers of the seed scenarios (cross-account IRSA, chained AssumeRole).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use twin::{
    Authorizer, DecisionLog, StoreAuthenticator, StsConfig, StsService, TwinConfig, TwinServer,
};
use twin_state::{CreateOidcProvider, CreateRole, Store, World};

pub const DEV: &str = "111111111111";
pub const SHARED: &str = "222222222222";
pub const THIRD: &str = "333333333333";
pub const CLUSTER: &str = "development-cluster";
pub const SA_SUB: &str = "system:serviceaccount:default:my-service-account";
pub const SHARED_SA_SUB: &str = "system:serviceaccount:default:s3-shared-content";

pub struct Twin {
    pub addr: SocketAddr,
    pub base_url: String,
    pub store: Arc<Store>,
    pub decisions: DecisionLog,
    /// The development cluster's issuer (the one the twin serves).
    pub issuer: Arc<oidc::Issuer>,
    /// Its URL, `http://127.0.0.1:PORT/id/ID`.
    pub issuer_url: String,
    /// The issuer URL without scheme: the OIDC provider's ARN suffix and the condition-key
    /// prefix.
    pub host_path: String,
    pub dev_admin: Credentials,
    pub shared_admin: Credentials,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), twin::TwinError>>>,
}

impl Drop for Twin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn admin_credentials(store: &Store, account: &str) -> Credentials {
    let key = store
        .list_access_keys(account)
        .unwrap()
        .into_iter()
        .find(|k| k.principal == "admin")
        .expect("admin key");
    Credentials::new(
        key.access_key_id,
        key.secret_access_key,
        None,
        None,
        "rolechain-test",
    )
}

fn trust(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn role(store: &Store, account: &str, name: &str, trust_doc: String, max: Option<u32>) {
    store
        .create_role(&CreateRole {
            account: account.into(),
            name: name.into(),
            assume_role_policy: trust_doc,
            max_session_duration: max,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("role {name}: {e}"));
}

pub async fn start() -> Twin {
    start_with(|_, _, _| {}).await
}

/// [`start`], with `more` registering further services (IAM, EKS, EKS Auth) on the server
/// before it serves, given the store and the STS service.
pub async fn start_with(more: impl FnOnce(&mut TwinServer, &Arc<Store>, &StsService)) -> Twin {
    start_configured(TwinConfig::default(), more).await
}

/// [`start_with`] on a server with `config` (its listen address replaced by a free loopback
/// port).
pub async fn start_configured(
    mut config: TwinConfig,
    more: impl FnOnce(&mut TwinServer, &Arc<Store>, &StsService),
) -> Twin {
    let dir = tempfile::tempdir().unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let mut server = TwinServer::bind(config).await.unwrap();
    let store = Arc::new(Store::open(dir.path().join("state")).unwrap());
    let world = World::default_world(|c| server.issuer_url(&twin::derive_issuer_id(c)));
    store.seed_if_empty(&world).unwrap();

    let mut dev_issuer = None;
    for cluster in store.all_clusters().unwrap() {
        let keys: PathBuf = dir.path().join("keys").join(&cluster.name);
        let issuer = Arc::new(
            oidc::Issuer::load_or_create(oidc::IssuerConfig::new(cluster.issuer_url.clone(), keys))
                .unwrap(),
        );
        server
            .issuers()
            .add(
                &cluster.name,
                &twin::derive_issuer_id(&cluster.name),
                Arc::clone(&issuer),
            )
            .unwrap();
        if cluster.name == CLUSTER {
            dev_issuer = Some(issuer);
        }
    }
    let issuer = dev_issuer.expect("the default world has the development cluster");
    let issuer_url = issuer.issuer_url().to_string();
    let host_path = issuer_url.trim_start_matches("http://").to_string();

    seed_scenario(&store, &host_path);

    let authenticator = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let authorizer = Authorizer::new(Arc::clone(&store), server.decisions().clone());
    let verifier = Arc::new(oidc::Verifier::new(oidc::HttpSource::default()));
    let sts = StsService::new(
        Arc::clone(&store),
        authenticator,
        authorizer,
        verifier,
        StsConfig::default(),
    );
    more(&mut server, &store, &sts);
    server.register(Arc::new(sts)).unwrap();

    let addr = server.local_addr();
    let base_url = server.base_url().to_string();
    let decisions = server.decisions().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Twin {
        addr,
        base_url,
        dev_admin: admin_credentials(&store, DEV),
        shared_admin: admin_credentials(&store, SHARED),
        store,
        decisions,
        issuer,
        issuer_url,
        host_path,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

/// The roles, policies and OIDC providers of the seed scenarios.
fn seed_scenario(store: &Store, hp: &str) {
    let dev_admin = format!("arn:aws:iam::{DEV}:user/admin");
    // Same account: the admin user may assume `dev` (and tag its sessions).
    role(
        store,
        DEV,
        "dev",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{dev_admin}"}},"Action":["sts:AssumeRole","sts:TagSession"]}}"#
        )),
        Some(7200),
    );
    // `dev` may assume S3_Pics in the shared account (seed 000's earlier procedure, and seed
    // 001's cross-account chain).
    store
        .put_role_policy(
            DEV,
            "dev",
            "assume-shared",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::{SHARED}:role/*"}}]}}"#
            ),
        )
        .unwrap();
    // A role without that identity policy, trusted by S3_Pics all the same.
    role(
        store,
        DEV,
        "dev-no-policy",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{dev_admin}"}},"Action":"sts:AssumeRole"}}"#
        )),
        None,
    );
    // Trusts the admin for sts:AssumeRole but not for sts:TagSession.
    role(
        store,
        DEV,
        "no-tags",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{dev_admin}"}},"Action":"sts:AssumeRole"}}"#
        )),
        None,
    );
    // Trusts nobody the tests call with.
    role(
        store,
        DEV,
        "untrusting",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SHARED}:root"}},"Action":"sts:AssumeRole"}}"#
        )),
        None,
    );
    // Deleted by a test while one of its sessions is in use.
    role(
        store,
        DEV,
        "ephemeral",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{dev_admin}"}},"Action":"sts:AssumeRole"}}"#
        )),
        None,
    );
    role(
        store,
        SHARED,
        "S3_Pics",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{DEV}:role/dev","arn:aws:iam::{DEV}:role/dev-no-policy","{dev_admin}"]}},"Action":["sts:AssumeRole","sts:TagSession"]}}"#
        )),
        Some(43200),
    );
    store
        .put_role_policy(
            SHARED,
            "S3_Pics",
            "read-pics",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"S3Bucket","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
        )
        .unwrap();

    // IRSA in the cluster's own account.
    let dev_provider = store
        .create_oidc_provider(&CreateOidcProvider {
            account: DEV.into(),
            url: format!("https://{hp}"),
            client_ids: vec!["sts.amazonaws.com".into()],
            ..Default::default()
        })
        .unwrap();
    role(
        store,
        DEV,
        "my-test-role",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Federated":"{}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{hp}:aud":"sts.amazonaws.com","{hp}:sub":"{SA_SUB}"}}}}}}"#,
            dev_provider.arn
        )),
        None,
    );
    // Seed 000: an OIDC provider for the same issuer in the shared account, and a role there
    // trusting it for the s3-shared-content service account.
    let shared_provider = store
        .create_oidc_provider(&CreateOidcProvider {
            account: SHARED.into(),
            url: format!("https://{hp}"),
            client_ids: vec!["sts.amazonaws.com".into()],
            ..Default::default()
        })
        .unwrap();
    role(
        store,
        SHARED,
        "s3-read-object",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Federated":"{}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{hp}:sub":"{SHARED_SA_SUB}"}}}}}}"#,
            shared_provider.arn
        )),
        None,
    );
    // An account without an OIDC provider for the issuer.
    store.create_account(THIRD, "third").unwrap();
    role(
        store,
        THIRD,
        "irsa-without-provider",
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{THIRD}:oidc-provider/{hp}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}"#
        )),
        None,
    );
}

/// An STS client of the real SDK pointed at the twin over plain HTTP, signing with `creds`
/// (or not signing at all with `None`, as a pod with only a web identity token).
pub async fn sts(twin: &Twin, creds: Option<Credentials>) -> aws_sdk_sts::Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&twin.base_url)
        .http_client(http);
    loader = match creds {
        Some(c) => loader.credentials_provider(c),
        None => loader.no_credentials(),
    };
    let sdk = loader.load().await;
    let conf = aws_sdk_sts::config::Builder::from(&sdk)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The session credentials of an STS response.
pub fn session_credentials(c: &aws_sdk_sts::types::Credentials) -> Credentials {
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "sts",
    )
}

/// A service-account token from the development cluster's issuer.
pub fn token(twin: &Twin, namespace: &str, sa: &str, audience: &str) -> String {
    twin.issuer
        .mint(&oidc::TokenRequest::new(namespace, sa, "uid-1", audience))
        .unwrap()
}

/// The AWS error code and message of an SDK failure.
pub fn error_of<E, R>(result: Result<R, aws_sdk_sts::error::SdkError<E>>) -> (String, String)
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => {
            use aws_sdk_sts::error::ProvideErrorMetadata as _;
            let code = e.code().unwrap_or_else(|| panic!("no error code: {e:?}"));
            (
                code.to_string(),
                e.message().unwrap_or_default().to_string(),
            )
        }
    }
}

/// Why the newest denial in the twin's decision log was denied.
pub fn last_denied_reason(twin: &Twin) -> iam::Reason {
    let last = twin.decisions.last_denied().expect("a denied decision");
    last.decision().expect("a policy decision").reason.clone()
}
