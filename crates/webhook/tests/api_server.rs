//! `KubeDirectory` with `kube`'s real client against a local HTTP server answering list and
//! watch as the API server does (there is no API server on the test machines): the service
//! accounts' metadata and the associations are listed once and held; a service account the
//! watch has not delivered yet (a pod created right after it) is read with one GET; a watch
//! that expires (410 Gone) is followed by a new list.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use webhook::Directory as _;

type Body = BoxBody<Bytes, Infallible>;

fn full(v: &Value) -> Body {
    Full::new(Bytes::from(v.to_string())).boxed()
}

fn meta(namespace: &str, name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {
            "namespace": namespace, "name": name, "uid": format!("uid-{name}"), "resourceVersion": "7",
            "annotations": annotations,
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
        }
    })
}

/// The associations listed by the `n`th list (from 1): after the watch's 410, `late-sa`'s too.
fn associations(n: usize) -> Value {
    let one = |name: &str, sa: &str| {
        json!({
            "apiVersion": "rolechain.dev/v1alpha1", "kind": "RoleChainAssociation",
            "metadata": {"namespace": "apps", "name": name, "uid": format!("u-{name}"), "resourceVersion": "3"},
            "spec": {"serviceAccount": sa, "roleArn": "arn:aws:iam::111111111111:role/first",
                     "targetRoleArns": [{"arn": "arn:aws:iam::222222222222:role/second"}]}
        })
    };
    let mut items = vec![one("agent", "agent-sa")];
    if n >= 2 {
        items.push(one("late", "late-sa"));
    }
    json!({
        "apiVersion": "rolechain.dev/v1alpha1", "kind": "RoleChainAssociationList",
        "metadata": {"resourceVersion": "11"}, "items": items
    })
}

const ASSOCIATIONS: &str = "/apis/rolechain.dev/v1alpha1/rolechainassociations";

/// The answer to one request, given every request seen so far (this one last).
fn answer(path: &str, query: &str, seen: &[String]) -> http::Response<Body> {
    let count = |watch: bool| {
        seen.iter()
            .filter(|p| p.starts_with(&format!("{path}?")) && p.contains("watch=true") == watch)
            .count()
    };
    let watching = query.contains("watch=true");
    let body: Body = if watching && path == ASSOCIATIONS && count(true) == 1 {
        // The first watch of associations expires at once (410 Gone): the client must list
        // again.
        let event = json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "code": 410, "reason": "Expired", "message": "too old resource version"
        }});
        Full::new(Bytes::from(event.to_string() + "\n")).boxed()
    } else if watching {
        // A watch that stays open with nothing new.
        StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, Infallible>,
        >())
        .boxed()
    } else {
        match path {
            "/api/v1/serviceaccounts" => full(&json!({
                "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                "metadata": {"resourceVersion": "10"},
                "items": [
                    meta("apps", "reader", json!({
                        "eks.amazonaws.com/role-arn": "arn:aws:iam::111111111111:role/reader",
                        "kubectl.kubernetes.io/last-applied-configuration": "{\"a very long\": \"document\"}"
                    })),
                    meta("apps", "agent-sa", json!({}))
                ]
            })),
            ASSOCIATIONS => full(&associations(count(false))),
            "/api/v1/namespaces/apps/serviceaccounts/new-sa" => full(&meta(
                "apps",
                "new-sa",
                json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111111111111:role/new"}),
            )),
            _ => {
                let mut resp = http::Response::new(full(&json!({
                    "apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"
                })));
                *resp.status_mut() = http::StatusCode::NOT_FOUND;
                return resp;
            }
        }
    };
    let mut resp = http::Response::new(body);
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The fake API server: its address and the requests it got (`path?query`).
async fn api_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or("").to_string();
                            let seen = {
                                let mut log = log.lock().unwrap();
                                log.push(format!("{path}?{query}"));
                                log.clone()
                            };
                            Ok::<_, Infallible>(answer(&path, &query, &seen))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_and_associations_are_held_and_a_miss_is_read_once() {
    let (url, seen) = api_server().await;
    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let directory = webhook::KubeDirectory::start(client, Duration::from_secs(2));
    tokio::time::timeout(Duration::from_secs(10), directory.ready())
        .await
        .expect("both reflectors listed");

    let reader = directory
        .service_account("apps", "reader")
        .await
        .unwrap()
        .unwrap();
    let annotations = reader.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111111111111:role/reader"
    );
    // Only what mutation reads is held.
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    assert!(reader.metadata.managed_fields.is_none());
    assert!(directory.has_association("apps", "agent-sa"));
    assert!(!directory.has_association("apps", "reader"));
    // The associations' watch expired (410 Gone): the client listed again and sees the new one.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !directory.has_association("apps", "late-sa") {
        assert!(
            std::time::Instant::now() < deadline,
            "no list after the 410: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!directory.has_association("other", "agent-sa"));
    assert_eq!(directory.size(), 4);

    let gets = |name: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(&format!("/api/v1/namespaces/apps/serviceaccounts/{name}")))
            .count()
    };
    // Held: no GET.
    assert_eq!(gets("reader"), 0);
    // Created a moment ago: one GET finds it.
    let new = directory
        .service_account("apps", "new-sa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new.metadata.annotations.unwrap()["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111111111111:role/new"
    );
    assert_eq!(gets("new-sa"), 1);
    // Not there at all: None, not an error.
    assert!(directory
        .service_account("apps", "ghost")
        .await
        .unwrap()
        .is_none());
    // The lists were metadata-only for service accounts.
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.starts_with("/api/v1/serviceaccounts?")));
}
