//! `rolechain agent --kubernetes`: RoleChainAssociations from the API server become the agent's
//! chains, and each resource's status says whether the agent accepted it and whether its chain
//! resolved. `kube`'s real client
//! talks to a local HTTP server answering list, watch and status patches as the API server does
//! (there is no API server on the test machines); the chain resolves against `rolechain up`
//! (its examples' three-hop roles).

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::agent::Agent;
use support::*;

type Body = BoxBody<Bytes, Infallible>;
/// The status patches the fake API server got: (path, body).
type Patches = Arc<Mutex<Vec<(String, Value)>>>;

fn association(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "rolechain.dev/v1alpha1", "kind": "RoleChainAssociation",
        "metadata": {"namespace": "rolechain-examples", "name": name, "uid": format!("uid-{name}"), "resourceVersion": "5"},
        "spec": spec
    })
}

/// The fake API server on its own runtime thread: its URL and the status patches it got.
fn api_server() -> (String, Patches) {
    let patches = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&patches);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let path = req.uri().path().to_string();
                            let watching = req.uri().query().unwrap_or("").contains("watch=true");
                            let method = req.method().clone();
                            let body: Body = if method == http::Method::PATCH {
                                let bytes = req.into_body().collect().await.unwrap().to_bytes();
                                let patch: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                                log.lock().unwrap().push((path.clone(), patch));
                                Full::new(Bytes::from(association("x", json!({"serviceAccount": "x"})).to_string())).boxed()
                            } else if watching {
                                StreamBody::new(futures_util::stream::pending::<Result<Frame<Bytes>, Infallible>>()).boxed()
                            } else {
                                Full::new(Bytes::from(json!({
                                    "apiVersion": "rolechain.dev/v1alpha1", "kind": "RoleChainAssociationList",
                                    "metadata": {"resourceVersion": "9"},
                                    "items": [
                                        association("three-hops", json!({
                                            "serviceAccount": "three-hops",
                                            "roleArn": "arn:aws:iam::111111111111:role/example-chain-first",
                                            "targetRoleArns": [
                                                {"arn": "arn:aws:iam::222222222222:role/example-chain-second"},
                                                {"arn": "arn:aws:iam::222222222222:role/example-chain-third"}
                                            ]
                                        })),
                                        association("broken", json!({"serviceAccount": "other", "roleArn": "not-a-role"}))
                                    ]
                                }).to_string())).boxed()
                            };
                            let mut resp = http::Response::new(body);
                            resp.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), patches)
}

#[test]
fn role_chain_associations_are_served_and_their_status_set() {
    let dir = TempDir::new("agent-kubernetes");
    let up = Up::start(&dir.path().join("data"), &[]);
    let (url, patches) = api_server();
    let kubeconfig = dir.file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\ncurrent-context: fake\n"
        ),
    );
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(
            up.data_dir
                .join("oidc/111111111111-us-east-1-rolechain-examples/issuer.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let issuer = record["issuer_url"].as_str().unwrap().to_string();
    let empty = dir.file("associations.yaml", "associations: []\n");
    let agent = Agent::start_with_env(
        &up,
        &issuer,
        std::path::Path::new(&empty),
        &["--kubernetes"],
        &[("KUBECONFIG", kubeconfig.as_str())],
    );
    let token = stdout(&rolechain(&[
        "cluster",
        "token",
        "--data-dir",
        &up.data_dir.display().to_string(),
        "--cluster",
        "rolechain-examples",
        "--namespace",
        "rolechain-examples",
        "--service-account",
        "three-hops",
        "--audience",
        "pods.eks.amazonaws.com",
        "--pod-name",
        "p1",
    ]));
    // The chain arrives with the watch's first list.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = agent.credentials(token.trim());
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "never served: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body["AccountId"], "222222222222", "{body}");
    assert!(body["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));

    // Each resource's status: accepted, or refused with the field; and resolved once a pod
    // got its chain.
    let condition = |got: &[(String, Value)], name: &str, kind: &str| -> Option<Value> {
        got.iter()
            .rev()
            .find(|(p, _)| p.ends_with(&format!("/rolechainassociations/{name}/status")))
            .and_then(|(_, v)| {
                v["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == kind)
                    .cloned()
            })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = patches.lock().unwrap().clone();
        let resolved = condition(&got, "three-hops", "Resolved");
        if let (Some(good), Some(bad), Some(resolved)) = (
            condition(&got, "three-hops", "Accepted"),
            condition(&got, "broken", "Accepted"),
            resolved,
        ) {
            assert_eq!(good["status"], "True", "{good}");
            assert_eq!(bad["status"], "False", "{bad}");
            assert!(
                bad["message"].as_str().unwrap().contains("roleArn"),
                "{bad}"
            );
            assert_eq!(resolved["status"], "True", "{resolved}");
            assert!(condition(&got, "broken", "Resolved").is_none());
            assert!(got.iter().all(|(p, _)| p
                .starts_with("/apis/rolechain.dev/v1alpha1/namespaces/rolechain-examples/")));
            break;
        }
        assert!(Instant::now() < deadline, "status never set: {got:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
