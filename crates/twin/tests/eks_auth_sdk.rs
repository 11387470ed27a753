//! EKS Auth's `AssumeRoleForPodIdentity` driven by the real `aws-sdk-eksauth` client, as the
//! EKS Pod Identity agent calls it, with pod tokens from the cluster's issuer: seed 004's
//! cross-account flow and each of its pitfalls, the token and association failures, and
//! malformed requests signed by `aws-sigv4`.

mod common;
mod eks_support;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::SignatureLocation;
use common::wire::{send, Signer};
use eks_support::*;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::Value;

const SIX_TAGS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

async fn assume(
    twin: &EksTwin,
    cluster: &str,
    token: String,
) -> Result<
    aws_sdk_eksauth::operation::assume_role_for_pod_identity::AssumeRoleForPodIdentityOutput,
    aws_sdk_eksauth::error::SdkError<
        aws_sdk_eksauth::operation::assume_role_for_pod_identity::AssumeRoleForPodIdentityError,
    >,
> {
    eks_auth(twin, twin.dev_admin.clone())
        .await
        .assume_role_for_pod_identity()
        .cluster_name(cluster)
        .token(token)
        .send()
        .await
}

/// The session behind an access key, as the store holds it.
fn session(twin: &EksTwin, access_key_id: &str) -> twin_state::Session {
    twin.store
        .get_session(access_key_id)
        .unwrap()
        .expect("session stored")
}

fn tag<'a>(s: &'a twin_state::Session, key: &str) -> Option<&'a str> {
    s.session_tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

/// The newest denied decision: its service, action, caller and resource.
fn last_denied(twin: &EksTwin) -> (String, String, String, String) {
    let d = twin.decisions.last_denied().expect("a denied decision");
    (
        d.service.clone(),
        d.action.clone(),
        d.caller.clone(),
        d.resource.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_role_only_gets_a_six_hour_session_with_the_six_transitive_tags() {
    let twin = start().await;
    let association = associate(&twin, "default", "app", &arn(DEV, PRIMARY), None, false);
    let out = assume(&twin, CLUSTER, pod_token(&twin, "default", "app"))
        .await
        .expect("assumed");

    let subject = out.subject().unwrap();
    assert_eq!(
        (subject.namespace(), subject.service_account()),
        ("default", "app")
    );
    assert_eq!(out.audience(), POD_AUDIENCE);
    let pia = out.pod_identity_association().unwrap();
    assert_eq!(pia.association_id(), association.association_id);
    assert_eq!(pia.association_arn(), association.association_arn);
    let user = out.assumed_role_user().unwrap();
    let prefix =
        format!("arn:aws:sts::{DEV}:assumed-role/{PRIMARY}/eks-{CLUSTER}-s3-access-test-pod-");
    assert!(user.arn().starts_with(&prefix), "{}", user.arn());
    assert!(user.assume_role_id().starts_with("AROA"));

    let creds = out.credentials().unwrap();
    let expires: SystemTime = (*creds.expiration()).try_into().unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(5 * 3600) && left <= Duration::from_secs(6 * 3600),
        "{left:?}"
    );

    // The credentials work, and the session carries the six tags, all transitive.
    let sts = sts(
        &twin,
        Some(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "eks-auth",
        )),
    )
    .await;
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(user.arn()));
    let s = session(&twin, creds.access_key_id());
    assert_eq!(
        tag(&s, "eks-cluster-arn"),
        Some(format!("arn:aws:eks:us-east-1:{DEV}:cluster/{CLUSTER}").as_str())
    );
    assert_eq!(tag(&s, "eks-cluster-name"), Some(CLUSTER));
    assert_eq!(tag(&s, "kubernetes-namespace"), Some("default"));
    assert_eq!(tag(&s, "kubernetes-service-account"), Some("app"));
    assert_eq!(tag(&s, "kubernetes-pod-name"), Some("s3-access-test-pod"));
    assert_eq!(
        tag(&s, "kubernetes-pod-uid"),
        Some("0b7c3f5e-7a0b-4c8e-9a51-2f3d4e5f6a7b")
    );
    assert_eq!(s.transitive_tag_keys, SIX_TAGS.map(String::from).to_vec());

    // The trust decisions are STS's, made for the service principal.
    let allowed = twin.decisions.recent(10, twin::VerdictFilter::Allow);
    assert!(allowed.iter().any(|d| d.service == "sts"
        && d.action == "sts:TagSession"
        && d.caller == format!("service {POD_AUDIENCE}")
        && d.resource == arn(DEV, PRIMARY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_role_chains_into_the_other_account_with_the_tags() {
    let twin = start().await;
    associate(
        &twin,
        "my-app-namespace",
        "my-app-sa",
        &arn(DEV, PRIMARY),
        Some(&arn(SHARED, TARGET)),
        false,
    );
    let out = assume(
        &twin,
        CLUSTER,
        pod_token(&twin, "my-app-namespace", "my-app-sa"),
    )
    .await
    .expect("assumed");
    let user = out.assumed_role_user().unwrap();
    let prefix = format!("arn:aws:sts::{SHARED}:assumed-role/{TARGET}/eks-{CLUSTER}-");
    assert!(user.arn().starts_with(&prefix), "{}", user.arn());
    let creds = out.credentials().unwrap();
    let s = session(&twin, creds.access_key_id());
    assert_eq!(s.account, SHARED);
    assert!(s.chained, "the target session is a chained one");
    for key in SIX_TAGS {
        assert!(tag(&s, key).is_some(), "{key} missing");
    }
    assert_eq!(tag(&s, "kubernetes-namespace"), Some("my-app-namespace"));
    // Role chaining: at most one hour.
    let expires: SystemTime = (*creds.expiration()).try_into().unwrap();
    assert!(expires.duration_since(SystemTime::now()).unwrap() <= Duration::from_secs(3600));
    // The credentials are the target role's.
    let sts = sts(
        &twin,
        Some(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "eks-auth",
        )),
    )
    .await;
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(SHARED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitfall_primary_trust_without_tag_session_fails() {
    let twin = start().await;
    let role = arn(DEV, "primary-without-tag-session");
    associate(&twin, "default", "app", &role, None, false);
    let (code, message, status) =
        eks_auth_error(assume(&twin, CLUSTER, pod_token(&twin, "default", "app")).await);
    assert_eq!((code.as_str(), status), ("AccessDeniedException", 400));
    assert!(message.contains(&role), "{message}");
    assert!(message.contains("sts:TagSession"), "{message}");
    assert_eq!(
        last_denied(&twin),
        (
            "sts".to_string(),
            "sts:TagSession".to_string(),
            format!("service {POD_AUDIENCE}"),
            role.clone()
        )
    );

    // With session tags disabled, sts:AssumeRole alone is enough.
    let cluster = twin.store.get_cluster(DEV, "us-east-1", CLUSTER).unwrap();
    let id = twin
        .store
        .find_pod_identity_association(&cluster, "default", "app")
        .unwrap()
        .unwrap()
        .association_id;
    twin.store
        .update_pod_identity_association(
            &cluster,
            &id,
            &twin_state::PodIdentityAssociationUpdate {
                disable_session_tags: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let out = assume(&twin, CLUSTER, pod_token(&twin, "default", "app"))
        .await
        .expect("assumed without tags");
    let s = session(&twin, out.credentials().unwrap().access_key_id());
    assert!(s.session_tags.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitfall_target_trust_without_tag_session_fails_with_tags_and_works_without() {
    let twin = start().await;
    let target = arn(SHARED, "target-without-tag-session");
    associate(
        &twin,
        "tagged",
        "app",
        &arn(DEV, PRIMARY),
        Some(&target),
        false,
    );
    let (code, message, _) =
        eks_auth_error(assume(&twin, CLUSTER, pod_token(&twin, "tagged", "app")).await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains(&target), "{message}");
    let (service, action, caller, resource) = last_denied(&twin);
    assert_eq!(
        (service.as_str(), action.as_str()),
        ("sts", "sts:TagSession")
    );
    assert!(
        caller.starts_with(&format!("arn:aws:sts::{DEV}:assumed-role/{PRIMARY}/")),
        "{caller}"
    );
    assert_eq!(resource, target);

    associate(
        &twin,
        "untagged",
        "app",
        &arn(DEV, PRIMARY),
        Some(&target),
        true,
    );
    let out = assume(&twin, CLUSTER, pod_token(&twin, "untagged", "app"))
        .await
        .expect("works with session tags disabled");
    let s = session(&twin, out.credentials().unwrap().access_key_id());
    assert_eq!(s.role_arn, target);
    assert!(s.session_tags.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_session_tags_send_the_external_id_to_the_target() {
    let twin = start().await;
    let target = arn(SHARED, "target-with-external-id");
    // With tags on, no external id is sent: the condition fails.
    associate(
        &twin,
        "ext-ns",
        "ext-sa",
        &arn(DEV, PRIMARY),
        Some(&target),
        false,
    );
    let (code, _, _) =
        eks_auth_error(assume(&twin, CLUSTER, pod_token(&twin, "ext-ns", "ext-sa")).await);
    assert_eq!(code, "AccessDeniedException");
    let entry = twin.decisions.last_denied().unwrap();
    assert_eq!(entry.action, "sts:AssumeRole");
    let trace = serde_json::to_string(&entry.decision()).unwrap();
    assert!(trace.contains("sts:ExternalId"), "{trace}");

    let cluster = twin.store.get_cluster(DEV, "us-east-1", CLUSTER).unwrap();
    let a = twin
        .store
        .find_pod_identity_association(&cluster, "ext-ns", "ext-sa")
        .unwrap()
        .unwrap();
    twin.store
        .update_pod_identity_association(
            &cluster,
            &a.association_id,
            &twin_state::PodIdentityAssociationUpdate {
                disable_session_tags: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let out = assume(&twin, CLUSTER, pod_token(&twin, "ext-ns", "ext-sa"))
        .await
        .expect("the external id matches");
    assert!(out.assumed_role_user().unwrap().arn().starts_with(&format!(
        "arn:aws:sts::{SHARED}:assumed-role/target-with-external-id/"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_missing_associations_are_refused_in_eks_auth_words() {
    let twin = start().await;
    associate(&twin, "default", "app", &arn(DEV, PRIMARY), None, false);

    // Wrong audience (an IRSA token).
    let irsa = pod_token_from(&twin.issuer, "default", "app", "sts.amazonaws.com");
    let (code, message, status) = eks_auth_error(assume(&twin, CLUSTER, irsa).await);
    assert_eq!((code.as_str(), status), ("InvalidTokenException", 400));
    assert!(message.contains(POD_AUDIENCE), "{message}");

    // Expired.
    let (code, _, status) =
        eks_auth_error(assume(&twin, CLUSTER, expired_pod_token(&twin, "default", "app")).await);
    assert_eq!((code.as_str(), status), ("ExpiredTokenException", 400));

    // Another cluster's issuer.
    let other = pod_token_from(&twin.other_issuer, "default", "app", POD_AUDIENCE);
    let (code, message, _) = eks_auth_error(assume(&twin, CLUSTER, other.clone()).await);
    assert_eq!(code, "InvalidTokenException");
    assert!(message.contains("issuer"), "{message}");
    // That token is good for its own cluster, which has no association for it.
    let (code, message, status) = eks_auth_error(assume(&twin, OTHER_CLUSTER, other).await);
    assert_eq!((code.as_str(), status), ("ResourceNotFoundException", 404));
    assert!(message.contains("app"), "{message}");

    // No association for that service account.
    let (code, _, status) =
        eks_auth_error(assume(&twin, CLUSTER, pod_token(&twin, "default", "nobody")).await);
    assert_eq!((code.as_str(), status), ("ResourceNotFoundException", 404));

    // Not bound to a pod.
    let unbound = twin
        .issuer
        .mint(&oidc::TokenRequest::new(
            "default",
            "app",
            "u",
            POD_AUDIENCE,
        ))
        .unwrap();
    let (code, message, _) = eks_auth_error(assume(&twin, CLUSTER, unbound).await);
    assert_eq!(code, "InvalidTokenException");
    assert!(message.contains("pod"), "{message}");

    // A token that is not a JWT at all, and a cluster that does not exist.
    let (code, message, _) = eks_auth_error(assume(&twin, CLUSTER, "not-a-jwt".to_string()).await);
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("'token'"), "{message}");
    let (code, _, status) =
        eks_auth_error(assume(&twin, "no-such-cluster", pod_token(&twin, "default", "app")).await);
    assert_eq!((code.as_str(), status), ("ResourceNotFoundException", 404));

    // Every failed step of the pod's chain is in the decision log as a refusal, newest first,
    // for the cluster it was asked of; malformed calls and unknown clusters are the node's
    // mistakes and are not.
    let refusals: Vec<(String, String, String)> = twin
        .decisions
        .recent(100, twin::VerdictFilter::Refused)
        .iter()
        .map(|e| {
            assert_eq!(e.service, "eks-auth");
            assert_eq!(e.action, "eks-auth:AssumeRoleForPodIdentity");
            assert!(e.decision().is_none());
            let r = e.refusal().unwrap();
            (
                e.resource.rsplit('/').next().unwrap().to_string(),
                r.code.clone(),
                r.message.clone(),
            )
        })
        .collect();
    let codes: Vec<(&str, &str)> = refusals
        .iter()
        .map(|(cluster, code, _)| (cluster.as_str(), code.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (CLUSTER, "InvalidTokenException"),
            (CLUSTER, "ResourceNotFoundException"),
            (OTHER_CLUSTER, "ResourceNotFoundException"),
            (CLUSTER, "InvalidTokenException"),
            (CLUSTER, "ExpiredTokenException"),
            (CLUSTER, "InvalidTokenException"),
        ]
    );
    assert!(refusals[0].2.contains("pod"), "{refusals:?}");
    // The missing association's entry says what was looked for and what the namespace has.
    let missing = twin.decisions.recent(100, twin::VerdictFilter::Refused)[1].clone();
    let details: Vec<(String, String)> = missing
        .refusal()
        .unwrap()
        .details
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    let value = |name: &str| {
        details
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {details:?}"))
    };
    assert_eq!(value("token sub"), "system:serviceaccount:default:nobody");
    assert_eq!(value("token aud"), POD_AUDIENCE);
    assert!(
        value("association looked for").starts_with("service account default/nobody in cluster ")
    );
    assert_eq!(
        value("associations in namespace default"),
        format!("app → {}", arn(DEV, PRIMARY))
    );
    // No JWT (every one starts with a base64url `{"`) in what is shown.
    assert!(
        details.iter().all(|(_, v)| !v.contains("eyJ")),
        "{details:?}"
    );
    assert_eq!(
        twin.decisions
            .last_denied()
            .unwrap()
            .refusal()
            .unwrap()
            .code,
        "InvalidTokenException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_role_without_eks_auth_permission_is_denied() {
    let twin = start().await;
    associate(&twin, "default", "app", &arn(DEV, PRIMARY), None, false);
    let node = sts(&twin, Some(twin.dev_admin.clone()))
        .await
        .assume_role()
        .role_arn(arn(DEV, "node-without-eks-auth"))
        .role_session_name("i-0123456789abcdef0")
        .send()
        .await
        .unwrap();
    let c = node.credentials().unwrap();
    let node_creds = session_credentials(c);
    let result = eks_auth(&twin, node_creds)
        .await
        .assume_role_for_pod_identity()
        .cluster_name(CLUSTER)
        .token(pod_token(&twin, "default", "app"))
        .send()
        .await;
    let (code, message, status) = eks_auth_error(result);
    assert_eq!((code.as_str(), status), ("AccessDeniedException", 400));
    assert!(
        message.contains("eks-auth:AssumeRoleForPodIdentity"),
        "{message}"
    );
    let (service, action, _, resource) = last_denied(&twin);
    assert_eq!(
        (service.as_str(), action.as_str(), resource.as_str()),
        (
            "eks-auth",
            "eks-auth:AssumeRoleForPodIdentity",
            format!("arn:aws:eks:us-east-1:{DEV}:cluster/{CLUSTER}").as_str()
        )
    );
}

/// A request signed by `aws-sigv4` for `service`, with the admin's key.
fn signed_for(
    twin: &EksTwin,
    service: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> http::Request<Full<Bytes>> {
    let signer = Signer {
        service,
        credentials: &twin.dev_admin,
        location: SignatureLocation::Headers,
        content_type: "application/json",
    };
    signer.request(twin.addr, method, path, body)
}

fn signed(twin: &EksTwin, method: &str, path: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    signed_for(twin, "eks-auth", method, path, body)
}

/// Status, `x-amzn-errortype` (empty when absent) and the JSON body (`null` when not JSON).
async fn send_json(twin: &EksTwin, req: http::Request<Full<Bytes>>) -> (u16, String, Value) {
    let reply = send(twin.addr, req).await;
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (
        reply.status.as_u16(),
        reply.header("x-amzn-errortype"),
        json,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_rest_json_errors() {
    let twin = start().await;
    let path = format!("/clusters/{CLUSTER}/assume-role-for-pod-identity");
    let cases: Vec<(&str, String, &[u8], u16, &str)> = vec![
        (
            "POST",
            path.clone(),
            b"{not json",
            400,
            "SerializationException",
        ),
        ("POST", path.clone(), b"[]", 400, "SerializationException"),
        (
            "POST",
            path.clone(),
            br#"{"token": 5}"#,
            400,
            "SerializationException",
        ),
        (
            "POST",
            path.clone(),
            b"{}",
            400,
            "InvalidParameterException",
        ),
        (
            "POST",
            "/clusters/-bad/assume-role-for-pod-identity".to_string(),
            br#"{"token":"a.b.c"}"#,
            400,
            "InvalidParameterException",
        ),
        ("GET", path.clone(), b"", 404, "UnknownOperationException"),
        (
            "POST",
            "/clusters".to_string(),
            b"",
            404,
            "UnknownOperationException",
        ),
    ];
    for (method, p, body, status, code) in cases {
        let (got_status, got_code, json) = send_json(&twin, signed(&twin, method, &p, body)).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{method} {p} {}",
            String::from_utf8_lossy(body)
        );
        assert!(json["message"].is_string(), "{json}");
    }

    // A bad signature is refused before anything is read, in the rest-json shape.
    let mut req = signed(&twin, "POST", &path, br#"{"token":"a.b.c"}"#);
    *req.body_mut() = Full::new(Bytes::from_static(br#"{"token":"x.y.z"}"#));
    let (status, code, json) = send_json(&twin, req).await;
    assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"));
    assert!(json["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_eks_requests_get_rest_json_errors() {
    let twin = start().await;
    let a = associate(&twin, "default", "app", &arn(DEV, PRIMARY), None, false);
    let create = format!("/clusters/{CLUSTER}/pod-identity-associations");
    let one = format!("{create}/{}", a.association_id);
    let role = arn(DEV, PRIMARY);
    let ok_body = format!(r#"{{"namespace":"n","serviceAccount":"s","roleArn":"{role}"}}"#);
    // Any role of the account serves as a cluster's role here.
    let cluster_role = arn(DEV, PRIMARY);
    let cases: Vec<(&str, String, String, u16, &str, &str)> = vec![
        (
            "POST",
            create.clone(),
            "{".into(),
            400,
            "SerializationException",
            "JSON",
        ),
        (
            "POST",
            create.clone(),
            "7".into(),
            400,
            "SerializationException",
            "object",
        ),
        (
            "POST",
            create.clone(),
            format!(r#"{{"serviceAccount":"s","roleArn":"{role}"}}"#),
            400,
            "InvalidParameterException",
            "'namespace'",
        ),
        (
            "POST",
            create.clone(),
            format!(r#"{{"namespace":"n","roleArn":"{role}"}}"#),
            400,
            "InvalidParameterException",
            "'serviceAccount'",
        ),
        (
            "POST",
            create.clone(),
            r#"{"namespace":"n","serviceAccount":"s"}"#.into(),
            400,
            "InvalidParameterException",
            "'roleArn'",
        ),
        (
            "POST",
            create.clone(),
            ok_body.replace(r#""n","#, r#"["n"],"#),
            400,
            "SerializationException",
            "'namespace'",
        ),
        (
            "POST",
            create.clone(),
            ok_body.replace('}', r#","tags":{"k":1}}"#),
            400,
            "SerializationException",
            "'tags'",
        ),
        (
            "POST",
            create.clone(),
            ok_body.replace('}', r#","disableSessionTags":"yes"}"#),
            400,
            "SerializationException",
            "'disableSessionTags'",
        ),
        (
            "GET",
            format!("{create}?maxResults=abc"),
            String::new(),
            400,
            "InvalidParameterException",
            "maxResults",
        ),
        (
            "GET",
            format!("{create}?nextToken=bogus"),
            String::new(),
            400,
            "InvalidParameterException",
            "nextToken",
        ),
        (
            "POST",
            one.clone(),
            "[".into(),
            400,
            "SerializationException",
            "JSON",
        ),
        (
            "POST",
            one.clone(),
            r#"{"roleArn":5}"#.into(),
            400,
            "SerializationException",
            "'roleArn'",
        ),
        (
            "GET",
            "/clusters?maxResults=0".into(),
            String::new(),
            400,
            "InvalidParameterException",
            "maxResults",
        ),
        (
            "GET",
            "/clusters?nextToken=nope".into(),
            String::new(),
            400,
            "InvalidParameterException",
            "nextToken",
        ),
        (
            "GET",
            "/clusters/no-such-cluster".into(),
            String::new(),
            404,
            "ResourceNotFoundException",
            "no-such-cluster",
        ),
        (
            "PUT",
            one.clone(),
            String::new(),
            404,
            "UnknownOperationException",
            "PUT",
        ),
        (
            "GET",
            "/addons".into(),
            String::new(),
            404,
            "UnknownOperationException",
            "/addons",
        ),
        // CreateCluster and DeleteCluster.
        (
            "POST",
            "/clusters".into(),
            "{".into(),
            400,
            "SerializationException",
            "JSON",
        ),
        (
            "POST",
            "/clusters".into(),
            "[]".into(),
            400,
            "SerializationException",
            "object",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"roleArn":"{cluster_role}","resourcesVpcConfig":{{}}}}"#),
            400,
            "InvalidParameterException",
            "'name'",
        ),
        (
            "POST",
            "/clusters".into(),
            r#"{"name":"x","resourcesVpcConfig":{}}"#.into(),
            400,
            "InvalidParameterException",
            "'roleArn'",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"x","roleArn":"{cluster_role}"}}"#),
            400,
            "InvalidParameterException",
            "'resourcesVpcConfig'",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"x","roleArn":"{cluster_role}","resourcesVpcConfig":"subnet-1"}}"#),
            400,
            "SerializationException",
            "'resourcesVpcConfig'",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":7,"roleArn":"{cluster_role}","resourcesVpcConfig":{{}}}}"#),
            400,
            "SerializationException",
            "'name'",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"-bad name","roleArn":"{cluster_role}","resourcesVpcConfig":{{}}}}"#),
            400,
            "InvalidParameterException",
            "-bad name",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"{CLUSTER}","roleArn":"{cluster_role}","resourcesVpcConfig":{{}}}}"#),
            409,
            "ResourceInUseException",
            CLUSTER,
        ),
        (
            "POST",
            "/clusters".into(),
            r#"{"name":"x","roleArn":"arn:aws:iam::111111111111:role/nope","resourcesVpcConfig":{}}"#.into(),
            400,
            "InvalidParameterException",
            "does not exist",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"x","roleArn":"{}","resourcesVpcConfig":{{}}}}"#, arn(SHARED, TARGET)),
            400,
            "InvalidParameterException",
            "cluster's account",
        ),
        (
            "POST",
            "/clusters".into(),
            r#"{"name":"x","roleArn":"arn:aws:s3:::pics","resourcesVpcConfig":{}}"#.into(),
            400,
            "InvalidParameterException",
            "not a valid IAM role ARN",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"x","roleArn":"{cluster_role}","resourcesVpcConfig":{{}},"version":"latest"}}"#),
            400,
            "InvalidParameterException",
            "'latest'",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"x","roleArn":"{cluster_role}","resourcesVpcConfig":{{}},"tags":{{"aws:x":"y"}}}}"#),
            400,
            "InvalidParameterException",
            "aws:",
        ),
        (
            "POST",
            "/clusters".into(),
            format!(r#"{{"name":"unservable-1","roleArn":"{cluster_role}","resourcesVpcConfig":{{}}}}"#),
            500,
            "ServerException",
            "unservable-1",
        ),
        (
            "DELETE",
            "/clusters/no-such-cluster".into(),
            String::new(),
            404,
            "ResourceNotFoundException",
            "no-such-cluster",
        ),
        (
            "DELETE",
            "/clusters".into(),
            String::new(),
            404,
            "UnknownOperationException",
            "DELETE",
        ),
    ];
    for (method, path, body, status, code, words) in cases {
        let req = signed_for(&twin, "eks", method, &path, body.as_bytes());
        let (got_status, got_code, json) = send_json(&twin, req).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{method} {path} {body}: {json}"
        );
        let message = json["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{method} {path}: {message}");
    }
    // Nothing was created or changed by any of them (the unservable cluster was removed again).
    let names: Vec<String> = twin
        .store
        .list_clusters(DEV, "us-east-1")
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, [CLUSTER, OTHER_CLUSTER]);
    let cluster = twin.store.get_cluster(DEV, "us-east-1", CLUSTER).unwrap();
    let page = twin
        .store
        .list_pod_identity_associations(&cluster, None, None, 100, None)
        .unwrap();
    assert_eq!(page.associations, vec![a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_account_is_throttled_then_served_again() {
    let mut config = twin::EksAuthConfig::default();
    config.max_requests_per_second = Some(1);
    let twin = start_configured(config).await;
    associate(&twin, "default", "app", &arn(DEV, PRIMARY), None, false);

    // A burst of one is served; the next calls within the same second are throttled.
    let mut throttled = 0;
    let mut served = 0;
    for _ in 0..6 {
        match assume(&twin, CLUSTER, pod_token(&twin, "default", "app")).await {
            Ok(_) => served += 1,
            Err(e) => {
                let (code, message, status) = eks_auth_error::<()>(Err(e));
                assert_eq!((code.as_str(), status), ("ThrottlingException", 429));
                assert_eq!(message, "Rate exceeded");
                throttled += 1;
            }
        }
    }
    assert!(served >= 1, "served {served}");
    assert!(throttled >= 1, "throttled {throttled}");

    // The bucket refills at the configured rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assume(&twin, CLUSTER, pod_token(&twin, "default", "app"))
        .await
        .expect("served again after a second");
}
