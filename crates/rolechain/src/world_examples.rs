//! The working examples `rolechain up` puts into a new data directory, one per seed document
//! plus a chain only rolechain serves, and checks through the real path at every start.
//!
//! They live in a cluster of their own, [`CLUSTER`] (developer account), namespace
//! [`NAMESPACE`], with roles named `example-…`, so the seeds' own scripts (which create
//! providers for `development-cluster`'s issuer and roles such as `s3-read-object`) run beside
//! them unchanged. Commands that default to the only cluster do not count this one.
//!
//! | service account | seed | the chain |
//! | --- | --- | --- |
//! | `irsa-same-account` | 002 | IRSA into `example-002-irsa` (developer), reads `rolechain-examples/hello.txt` |
//! | `irsa-other-account` | 000, 003 (first method) | IRSA through shared_content's provider for the cluster into `example-000-irsa`, reads `pics/indoor-cat.jpg` |
//! | `irsa-then-assume-role` | 001, 003 (second method) | IRSA into `example-001-first`, then the app's `AssumeRole` into shared_content's `example-001-second` |
//! | `pod-identity` | 004 | EKS Pod Identity association: `example-004-primary`, target `example-004-target` |
//! | `three-hops` | rolechain | the agent's chain file: `example-chain-first` → `example-chain-second` → `example-chain-third` |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use twin_state::{CreateOidcProvider, CreateRole, NewCluster, NewPodIdentityAssociation, Store};

use http_body_util::Full;
use hyper::body::Bytes;

use crate::local;
use crate::twin_api::TwinApi;

/// The examples' cluster.
pub const CLUSTER: &str = local::EXAMPLES_CLUSTER;
/// The examples' namespace.
pub const NAMESPACE: &str = "rolechain-examples";
const DEVELOPER: &str = "111111111111";
const SHARED: &str = "222222222222";
const REGION: &str = "us-east-1";
const POD_IDENTITY: &str = "pods.eks.amazonaws.com";
const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// How an example's pod gets its credentials.
enum Via {
    /// The service account's `eks.amazonaws.com/role-arn`, then the app's own `AssumeRole`
    /// into each of `then`.
    Irsa { role: String, then: Vec<String> },
    /// `up`'s node agent for the cluster (a Pod Identity association, or the chain file),
    /// whose chain ends in `last`.
    Agent { last: String },
}

/// One example chain.
struct Example {
    seed: &'static str,
    what: &'static str,
    service_account: &'static str,
    path: Via,
    /// The object its final credentials read: (bucket, key).
    reads: (&'static str, &'static str),
}

fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

fn examples() -> Vec<Example> {
    vec![
        Example {
            seed: "002",
            what: "IRSA in one account",
            service_account: "irsa-same-account",
            path: Via::Irsa {
                role: role_arn(DEVELOPER, "example-002-irsa"),
                then: vec![],
            },
            reads: ("rolechain-examples", "hello.txt"),
        },
        Example {
            seed: "000, 003",
            what: "IRSA into the other account through its OIDC provider",
            service_account: "irsa-other-account",
            path: Via::Irsa {
                role: role_arn(SHARED, "example-000-irsa"),
                then: vec![],
            },
            reads: ("pics", "indoor-cat.jpg"),
        },
        Example {
            seed: "001, 003",
            what: "IRSA, then a chained AssumeRole into the other account",
            service_account: "irsa-then-assume-role",
            path: Via::Irsa {
                role: role_arn(DEVELOPER, "example-001-first"),
                then: vec![role_arn(SHARED, "example-001-second")],
            },
            reads: ("pics", "indoor-cat.jpg"),
        },
        Example {
            seed: "004",
            what: "EKS Pod Identity with a target role, through the agent",
            service_account: "pod-identity",
            path: Via::Agent {
                last: role_arn(SHARED, "example-004-target"),
            },
            reads: ("pics", "indoor-cat.jpg"),
        },
        Example {
            seed: "rolechain",
            what: "a three-hop chain, through the agent",
            service_account: "three-hops",
            path: Via::Agent {
                last: role_arn(SHARED, "example-chain-third"),
            },
            reads: ("pics", "indoor-cat.jpg"),
        },
    ]
}

/// The examples' issuer URL at `base_url`.
pub fn issuer_url(base_url: &str) -> String {
    twin::issuer_url(base_url, &twin::derive_issuer_id(CLUSTER))
}

fn doc(statements: &serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A trust for the pods of `service_account`, federated by `account`'s provider for `host`.
fn irsa_trust(account: &str, host: &str, service_account: &str, audience: &str) -> String {
    doc(&serde_json::json!([{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{host}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{host}:sub"): format!("system:serviceaccount:{NAMESPACE}:{service_account}"),
            format!("{host}:aud"): audience,
        }}
    }]))
}

/// A trust for `principal` (a role): `sts:AssumeRole` and `sts:TagSession` in two statements,
/// as seed 004 recommends.
fn role_trust(principal: &str) -> String {
    doc(&serde_json::json!([
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:TagSession"},
    ]))
}

fn may_assume(next: &str) -> String {
    doc(&serde_json::json!([{
        "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": next
    }]))
}

fn may_read(bucket: &str) -> String {
    doc(&serde_json::json!([{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")
    }]))
}

/// Creates the examples in a newly seeded store: the cluster, its issuer's OIDC provider in
/// both accounts, the roles, the service accounts, the Pod Identity association, and the
/// agent's chain file for the cluster. Call it before the clusters are served.
///
/// # Errors
///
/// An issuer URL IAM does not accept for a provider (http:// off loopback: nothing is
/// created then), a store failure, or a chain file that cannot be written.
pub fn seed(store: &Store, data_dir: &Path, base_url: &str) -> anyhow::Result<()> {
    let url = issuer_url(base_url);
    let host = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .to_string();
    // The providers first: IAM refuses an http:// issuer that is not on loopback (a
    // --public-url), and then nothing else is created.
    for (account, client_ids) in [
        (DEVELOPER, vec![STS_AUDIENCE, POD_IDENTITY]),
        (SHARED, vec![STS_AUDIENCE]),
    ] {
        store.create_oidc_provider(&CreateOidcProvider {
            account: account.into(),
            url: url.clone(),
            client_ids: client_ids.into_iter().map(str::to_string).collect(),
            thumbprints: vec![],
            tags: vec![],
        })?;
    }
    let cluster = store.create_cluster(&NewCluster::new(DEVELOPER, REGION, CLUSTER, &url))?;
    let pics = may_read("pics");
    let roles: Vec<(&str, &str, String, String)> = vec![
        (
            DEVELOPER,
            "example-002-irsa",
            irsa_trust(DEVELOPER, &host, "irsa-same-account", STS_AUDIENCE),
            may_read("rolechain-examples"),
        ),
        (
            SHARED,
            "example-000-irsa",
            irsa_trust(SHARED, &host, "irsa-other-account", STS_AUDIENCE),
            pics.clone(),
        ),
        (
            DEVELOPER,
            "example-001-first",
            irsa_trust(DEVELOPER, &host, "irsa-then-assume-role", STS_AUDIENCE),
            may_assume(&role_arn(SHARED, "example-001-second")),
        ),
        (
            SHARED,
            "example-001-second",
            role_trust(&role_arn(DEVELOPER, "example-001-first")),
            pics.clone(),
        ),
        (
            DEVELOPER,
            "example-004-primary",
            doc(&serde_json::json!([{
                "Effect": "Allow", "Principal": {"Service": POD_IDENTITY},
                "Action": ["sts:AssumeRole", "sts:TagSession"]
            }])),
            may_assume(&role_arn(SHARED, "example-004-target")),
        ),
        (
            SHARED,
            "example-004-target",
            role_trust(&role_arn(DEVELOPER, "example-004-primary")),
            pics.clone(),
        ),
        (
            DEVELOPER,
            "example-chain-first",
            irsa_trust(DEVELOPER, &host, "three-hops", POD_IDENTITY),
            may_assume(&role_arn(SHARED, "example-chain-second")),
        ),
        (
            SHARED,
            "example-chain-second",
            role_trust(&role_arn(DEVELOPER, "example-chain-first")),
            may_assume(&role_arn(SHARED, "example-chain-third")),
        ),
        (
            SHARED,
            "example-chain-third",
            role_trust(&role_arn(SHARED, "example-chain-second")),
            pics,
        ),
    ];
    for (account, name, trust, policy) in roles {
        store.create_role(&CreateRole {
            account: account.into(),
            name: name.into(),
            assume_role_policy: trust,
            description: Some("a rolechain up example (rolechain-examples cluster)".into()),
            ..CreateRole::default()
        })?;
        store.put_role_policy(account, name, "example", &policy)?;
    }
    for example in examples() {
        let mut annotations = BTreeMap::new();
        if let Via::Irsa { role, .. } = &example.path {
            annotations.insert("eks.amazonaws.com/role-arn".to_string(), role.clone());
        }
        store.apply_service_account(
            &cluster,
            NAMESPACE,
            example.service_account,
            annotations,
            BTreeMap::new(),
        )?;
    }
    store.create_pod_identity_association(
        &cluster,
        &NewPodIdentityAssociation {
            account: DEVELOPER.into(),
            region: REGION.into(),
            cluster_name: CLUSTER.into(),
            namespace: NAMESPACE.into(),
            service_account: "pod-identity".into(),
            role_arn: role_arn(DEVELOPER, "example-004-primary"),
            target_role_arn: Some(role_arn(SHARED, "example-004-target")),
            ..NewPodIdentityAssociation::default()
        },
    )?;
    let chains = format!(
        "# The three-hop example of `rolechain up` (see `rolechain up`'s start-up lines); add your own.\n\
         associations:\n  \
         - namespace: {NAMESPACE}\n    \
           serviceAccount: three-hops\n    \
           roleArn: {}\n    \
           targetRoleArns:\n      \
             - arn: {}\n      \
             - arn: {}\n",
        role_arn(DEVELOPER, "example-chain-first"),
        role_arn(SHARED, "example-chain-second"),
        role_arn(SHARED, "example-chain-third"),
    );
    local::write_private(
        &crate::local_agents::associations_file(data_dir, CLUSTER),
        &chains,
    )?;
    Ok(())
}

/// Checks every example through the real path — a token from the cluster's issuer, the
/// twin's STS (or `up`'s agent for the cluster at `agent_url`), then the S3 read with the
/// final credentials — and answers one line per example, `✓` or `✗` with the reason, and the
/// commands to try. `None` when the data directory has no examples cluster.
pub async fn check(
    store: &Store,
    data_dir: &Path,
    base_url: &str,
    agent_url: Option<&str>,
) -> Option<String> {
    let api = TwinApi::new(base_url.to_string(), "rolechain up".into());
    let cluster = store.get_cluster(DEVELOPER, REGION, CLUSTER).ok()?;
    let mut out = format!(
        "\nExamples (cluster {CLUSTER}, namespace {NAMESPACE}), checked just now through the twin:\n"
    );
    // One issuer for every example's token: the cluster's keys, read once.
    let issuer =
        local::find_cluster(data_dir, Some(CLUSTER), Some(DEVELOPER)).and_then(|(dir, record)| {
            oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
                record.issuer_url,
                local::key_dir(&dir),
            ))
            .map_err(anyhow::Error::from)
        });
    let issuer = match issuer {
        Ok(issuer) => issuer,
        Err(e) => {
            let _ = writeln!(out, "  ✗ the examples' tokens cannot be minted: {e:#}");
            return Some(out);
        }
    };
    let upstream = agent::SdkUpstream::new(&agent::SdkSettings {
        region: Some(REGION.into()),
        endpoint_url: Some(base_url.to_string()),
        ..agent::SdkSettings::default()
    })
    .await;
    for example in examples() {
        let result = check_one(
            store, &issuer, &api, agent_url, &cluster, &upstream, &example,
        )
        .await;
        let (bucket, key) = example.reads;
        match result {
            Ok(arn) => {
                let _ = writeln!(
                    out,
                    "  ✓ {:<9} {}: {} → {arn} → s3://{bucket}/{key}",
                    example.seed, example.what, example.service_account
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "  ✗ {:<9} {}: {}: {e:#}\n    (rolechain explain pod --cluster {CLUSTER} -n {NAMESPACE} --service-account {} --action s3:GetObject --resource arn:aws:s3:::{bucket}/{key})",
                    example.seed, example.what, example.service_account, example.service_account
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "Try one as its pod:\n  rolechain exec --cluster {CLUSTER} -n {NAMESPACE} --service-account three-hops -- aws s3 cp s3://pics/indoor-cat.jpg cat.jpg"
    );
    Some(out)
}

/// One example's chain; the final session's ARN.
async fn check_one(
    store: &Store,
    issuer: &oidc::Issuer,
    api: &TwinApi,
    agent_url: Option<&str>,
    cluster: &twin_state::Cluster,
    upstream: &agent::SdkUpstream,
    example: &Example,
) -> anyhow::Result<String> {
    use agent::Upstream as _;
    let sa = store
        .get_service_account(cluster, NAMESPACE, example.service_account)
        .with_context(|| format!("service account {NAMESPACE}/{}", example.service_account))?;
    let audience = match example.path {
        Via::Irsa { .. } => STS_AUDIENCE,
        Via::Agent { .. } => POD_IDENTITY,
    };
    let mut request =
        oidc::TokenRequest::new(NAMESPACE, example.service_account, &sa.uid, audience);
    request.lifetime = Some(Duration::from_secs(600));
    request.pod = Some(oidc::BoundObject {
        name: format!("{}-check", example.service_account),
        uid: crate::cluster::derived_uid(&[CLUSTER, example.service_account, "check"]),
    });
    let token = issuer.mint(&request)?;
    let (credentials, arn) = match &example.path {
        Via::Irsa { role, then } => {
            let mut creds = upstream
                .assume_role_with_web_identity(agent::upstream::WebIdentityRequest {
                    role_arn: role,
                    session_name: "rolechain-up-check",
                    token: &token,
                    duration_seconds: None,
                })
                .await
                .map_err(|e| anyhow::anyhow!("AssumeRoleWithWebIdentity {role}: {e}"))?;
            let mut arn = role.clone();
            for next in then {
                creds = upstream
                    .assume_role(agent::upstream::AssumeRoleRequest {
                        caller: &creds,
                        role_arn: next,
                        session_name: "rolechain-up-check",
                        external_id: None,
                        tags: &[],
                        duration_seconds: None,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("AssumeRole {next}: {e}"))?;
                arn.clone_from(next);
            }
            (creds.to_sdk("rolechain-up-check"), arn)
        }
        Via::Agent { last } => {
            let Some(url) = agent_url else {
                bail!("no agent runs for the cluster (rolechain up --no-agent)");
            };
            (from_agent(api, url, &token).await?, last.clone())
        }
    };
    let (bucket, key) = example.reads;
    s3_get_object(api, &credentials, bucket, key)
        .await
        .with_context(|| format!("s3:GetObject s3://{bucket}/{key} as {}", short(&arn)))?;
    Ok(short(&arn))
}

/// `role/NAME` of a role ARN, for the lines.
fn short(arn: &str) -> String {
    arn.rsplit_once(':').map_or(arn, |(_, r)| r).to_string()
}

/// The agent's answer to the pod's token, as the SDKs ask for it.
async fn from_agent(
    api: &TwinApi,
    url: &str,
    token: &str,
) -> anyhow::Result<aws_credential_types::Credentials> {
    let req = http::Request::get(url)
        .header(http::header::AUTHORIZATION, token)
        .body(Full::new(Bytes::new()))
        .with_context(|| format!("{url} is not a URL"))?;
    let (status, bytes) = api
        .send(req)
        .await
        .with_context(|| format!("the agent at {url}"))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status != http::StatusCode::OK {
        bail!(
            "the agent answered {status}: {}",
            body["Message"]
                .as_str()
                .unwrap_or(&String::from_utf8_lossy(&bytes))
        );
    }
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the agent's answer has no {name}: {body}"))
    };
    Ok(aws_credential_types::Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("Token")?),
        None,
        "rolechain-up-check",
    ))
}

/// S3 `GetObject` of `bucket/key` (path style) from the twin, signed with `credentials` by
/// `aws-sigv4`, the SDKs' own signer, as an SDK sends it.
async fn s3_get_object(
    api: &TwinApi,
    credentials: &aws_credential_types::Credentials,
    bucket: &str,
    key: &str,
) -> anyhow::Result<()> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    };
    let url = format!("{}/{bucket}/{key}", api.base());
    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .context("signing parameters")?
        .into();
    let host = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    let signable = SignableRequest::new(
        "GET",
        &url,
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .context("signing the request")?;
    let (instructions, _) = sign(signable, &params)
        .context("signing the request")?
        .into_parts();
    let mut req = http::Request::get(&url)
        .header(http::header::HOST, &host)
        .body(Full::new(Bytes::new()))
        .with_context(|| format!("{url} is not a URL"))?;
    instructions.apply_to_request_http1x(&mut req);
    let (status, body) = api.send(req).await?;
    if status == http::StatusCode::OK {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body);
    let code = between(&text, "<Code>", "</Code>").unwrap_or("");
    let message = between(&text, "<Message>", "</Message>").unwrap_or("");
    bail!("{status} {code}: {message}")
}

/// The text between the first `open` and the next `close`.
fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}
