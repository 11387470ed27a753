//! `/_rolechain/serviceaccounts` over loopback HTTP: apply, get, list, annotate, delete as
//! Kubernetes-shaped JSON, and refusals of hostile requests (wrong host, wrong content type,
//! oversized and malformed bodies, bad ARNs and names) that leave nothing stored.

mod common;
#[path = "sts_support/mod.rs"]
mod sts_support;

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{json, Value};
use sts_support::*;

const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:111111111111:cluster/development-cluster";

async fn start() -> Twin {
    start_with(|server, store, _| {
        server.serve_service_accounts(Arc::clone(store));
    })
    .await
}

fn path(rest: &str) -> String {
    let cluster: String = form_urlencoded::byte_serialize(CLUSTER_ARN.as_bytes()).collect();
    let sep = if rest.contains('?') { '&' } else { '?' };
    format!("/_rolechain/serviceaccounts{rest}{sep}cluster={cluster}")
}

struct Sent {
    status: u16,
    body: Value,
}

async fn send_as(
    twin: &Twin,
    host: &str,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Sent {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let reply =
        common::wire::send(twin.addr, req.body(Full::new(Bytes::from(body))).unwrap()).await;
    Sent {
        status: reply.status.as_u16(),
        body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    }
}

async fn call(twin: &Twin, method: &str, uri: &str, body: Option<Value>) -> Sent {
    let (ct, bytes) = match body {
        Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
        None => (None, Vec::new()),
    };
    send_as(twin, &twin.addr.to_string(), method, uri, ct, bytes).await
}

#[tokio::test]
async fn apply_get_annotate_list_delete() {
    let twin = start().await;
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "my-service-account", "namespace": "default",
                     "labels": {"app": "demo"}},
        "automountServiceAccountToken": false
    });
    let created = call(
        &twin,
        "PUT",
        &path("/default/my-service-account"),
        Some(manifest.clone()),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["result"], "created");
    let sa = &created.body["serviceAccount"];
    assert_eq!(sa["apiVersion"], "v1");
    assert_eq!(sa["kind"], "ServiceAccount");
    assert_eq!(sa["metadata"]["labels"]["app"], "demo");
    assert_eq!(sa["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(sa["metadata"]["creationTimestamp"].is_string());
    let again = call(
        &twin,
        "PUT",
        &path("/default/my-service-account"),
        Some(manifest),
    )
    .await;
    assert_eq!(again.body["result"], "unchanged");

    let role = "arn:aws:iam::111111111111:role/my-test-role";
    let annotate = |value: &str, overwrite: bool| {
        json!({"changes": [{"set": {"key": "eks.amazonaws.com/role-arn", "value": value}}],
               "overwrite": overwrite})
    };
    let annotated = call(
        &twin,
        "PATCH",
        &path("/default/my-service-account"),
        Some(annotate(role, false)),
    )
    .await;
    assert_eq!(annotated.status, 200, "{}", annotated.body);
    assert_eq!(
        annotated.body["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role
    );
    let refused = call(
        &twin,
        "PATCH",
        &path("/default/my-service-account"),
        Some(annotate("other", false)),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"]
        .as_str()
        .unwrap()
        .contains("--overwrite is false"));
    let overwritten = call(
        &twin,
        "PATCH",
        &path("/default/my-service-account"),
        Some(annotate("other", true)),
    )
    .await;
    assert_eq!(
        overwritten.body["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "other"
    );

    let got = call(&twin, "GET", &path("/default/my-service-account"), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["metadata"]["name"], "my-service-account");
    // Every namespace has its default, stored or not.
    let implicit = call(&twin, "GET", &path("/team-a/default"), None).await;
    assert_eq!(implicit.status, 200, "{}", implicit.body);
    assert!(implicit.body["metadata"].get("creationTimestamp").is_none());

    let list = call(&twin, "GET", &path(""), None).await;
    assert_eq!(list.body["kind"], "List");
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let other_ns = call(&twin, "GET", &path("?namespace=kube-system"), None).await;
    assert_eq!(other_ns.body["items"], json!([]));

    let deleted = call(&twin, "DELETE", &path("/default/my-service-account"), None).await;
    assert_eq!(deleted.status, 200);
    let gone = call(&twin, "GET", &path("/default/my-service-account"), None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["code"], "NoSuchEntity");
    assert_eq!(
        gone.body["error"],
        "serviceaccounts \"my-service-account\" not found in namespace \"default\""
    );
}

#[tokio::test]
async fn hostile_requests_are_refused_and_store_nothing() {
    let twin = start().await;
    let own = twin.addr.to_string();
    let body = br#"{"metadata":{}}"#.to_vec();

    // A page that rebinds its DNS name to loopback sends its own Host.
    let rebound = send_as(
        &twin,
        "evil.example:80",
        "PUT",
        &path("/default/sa"),
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_eq!(rebound.status, 421);
    // A form post (no preflight) is not JSON.
    let form = send_as(
        &twin,
        &own,
        "PUT",
        &path("/default/sa"),
        Some("text/plain"),
        body.clone(),
    )
    .await;
    assert_eq!(form.status, 415, "{}", form.body);
    let big = send_as(
        &twin,
        &own,
        "PUT",
        &path("/default/sa"),
        Some("application/json"),
        vec![b' '; 400 * 1024],
    )
    .await;
    assert_eq!(big.status, 413);

    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "PUT",
            "/_rolechain/serviceaccounts/default/sa".into(),
            json!({"metadata": {}}),
            "cluster",
        ),
        (
            "PUT",
            "/_rolechain/serviceaccounts/default/sa?cluster=arn:aws:iam::1:role/x".into(),
            json!({"metadata": {}}),
            "not an EKS cluster ARN",
        ),
        (
            "PUT",
            path("/Default/sa"),
            json!({"metadata": {}}),
            "metadata.namespace: Invalid value",
        ),
        (
            "PUT",
            path("/default/Bad_Name"),
            json!({"metadata": {}}),
            "metadata.name: Invalid value",
        ),
        (
            "PUT",
            path("/default/sa"),
            json!({"metadata": {"name": "other"}}),
            "metadata.name",
        ),
        (
            "PUT",
            path("/default/sa"),
            json!({"kind": "Pod", "metadata": {}}),
            "kind",
        ),
        (
            "PUT",
            path("/default/sa"),
            json!({"metadata": {"annotations": {"a b": "c"}}}),
            "metadata.annotations",
        ),
        (
            "PUT",
            path("/default/sa"),
            json!({"metadata": {"annotations": {"k": 1}}}),
            "not a ServiceAccount",
        ),
        (
            "PUT",
            path("/default/sa"),
            json!([1, 2]),
            "not a ServiceAccount",
        ),
        (
            "PATCH",
            path("/default/sa"),
            json!({"changes": [{"set": {"key": "k", "value": "v"}}]}),
            "not found",
        ),
        (
            "PATCH",
            path("/default/default"),
            json!({"changes": [{"bogus": {}}]}),
            "changes",
        ),
    ];
    for (method, uri, body, expect) in cases {
        let sent = call(&twin, method, &uri, Some(body)).await;
        assert!(
            (400..500).contains(&sent.status),
            "{method} {uri}: {} {}",
            sent.status,
            sent.body
        );
        let message = sent.body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expect), "{method} {uri}: {message}");
    }
    let unknown_cluster = "/_rolechain/serviceaccounts?cluster=arn%3Aaws%3Aeks%3Aus-east-1%3A111111111111%3Acluster%2Fnope";
    let sent = call(&twin, "GET", unknown_cluster, None).await;
    assert_eq!(sent.status, 404, "{}", sent.body);
    let not_json = send_as(
        &twin,
        &own,
        "PUT",
        &path("/default/sa"),
        Some("application/json"),
        b"{".to_vec(),
    )
    .await;
    assert_eq!(not_json.status, 400);

    let list = call(&twin, "GET", &path(""), None).await;
    assert_eq!(list.body["items"], json!([]), "a refusal stored something");
}

#[tokio::test]
async fn oidc_provider_association_refuses_hostile_requests() {
    let twin = start().await;
    let own = twin.addr.to_string();
    let cluster: String = form_urlencoded::byte_serialize(CLUSTER_ARN.as_bytes()).collect();
    let uri = format!("/_rolechain/oidc-provider?cluster={cluster}");
    let rebound = send_as(
        &twin,
        "evil.example:80",
        "POST",
        &uri,
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(rebound.status, 421);
    let form = send_as(
        &twin,
        &own,
        "POST",
        &uri,
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(form.status, 415, "{}", form.body);
    let big = send_as(
        &twin,
        &own,
        "POST",
        &uri,
        Some("application/json"),
        vec![b' '; 64 * 1024],
    )
    .await;
    assert_eq!(big.status, 413);
    for (body, says) in [
        (json!({"acount": "222222222222"}), "unknown field `acount`"),
        (json!({"audience": 7}), "invalid type"),
        (json!([]), "not valid"),
    ] {
        let sent = call(&twin, "POST", &uri, Some(body.clone())).await;
        assert_eq!(sent.status, 400, "{body}: {}", sent.body);
        assert!(
            sent.body["error"].as_str().unwrap().contains(says),
            "{}",
            sent.body
        );
    }
    let no_cluster = call(&twin, "POST", "/_rolechain/oidc-provider", Some(json!({}))).await;
    assert_eq!(no_cluster.status, 400);
    assert!(no_cluster.body["error"]
        .as_str()
        .unwrap()
        .contains("cluster"));
    let unknown = call(
        &twin,
        "POST",
        &uri,
        Some(json!({"account": "999999999999"})),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let empty = call(&twin, "POST", &uri, Some(json!({"audience": ""}))).await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    // Nothing of that was stored; a good request creates, then finds, one provider.
    let other = json!({"account": "333333333333"});
    let made = call(&twin, "POST", &uri, Some(other.clone())).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["outcome"], "created");
    assert_eq!(made.body["clientIds"], json!(["sts.amazonaws.com"]));
    let again = call(&twin, "POST", &uri, Some(other)).await;
    assert_eq!(again.body["outcome"], "already-associated");
    assert_eq!(again.body["arn"], made.body["arn"]);
}
