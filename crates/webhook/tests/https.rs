//! The webhook over real HTTPS (rustls on loopback, a certificate generated for the test):
//! AdmissionReviews of pods as the API server sends them, the patch applied with `json-patch`
//! and the pod checked field by field; malformed reviews refused with 400; the webhook's own
//! faults admitting the pod unmutated with a warning; probes, metrics, and a renewed
//! certificate served without a restart.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{json, Value};
use webhook::directory::{BoxFuture, Directory, LookupError, StaticDirectory};
use webhook::{ReloadingCert, Webhook};

struct Cert {
    pem: String,
    key: String,
}

fn cert() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    Cert {
        pem: cert.pem(),
        key: key.serialize_pem(),
    }
}

struct Served {
    addr: std::net::SocketAddr,
    trusted: Cert,
    dir: tempfile::TempDir,
    cert: Arc<ReloadingCert>,
    webhook: Arc<Webhook>,
}

async fn serve(directory: Arc<dyn Directory>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let trusted = cert();
    std::fs::write(dir.path().join("tls.crt"), &trusted.pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &trusted.key).unwrap();
    let reloading =
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let settings = mutation::Settings {
        region: Some("us-east-1".into()),
        ..mutation::Settings::default()
    };
    let hook = Webhook::new(directory, settings);
    hook.set_ready();
    let running = webhook::serve(
        Arc::clone(&hook),
        &reloading,
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .await
    .unwrap();
    Served {
        addr: running.addr,
        trusted,
        dir,
        cert: reloading,
        webhook: hook,
    }
}

/// `method path` over a new TLS connection trusting only `ca`; status, content type, body.
async fn https(
    served: &Served,
    ca: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject as _;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

fn review_of(pod: &Value, namespace: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": false
        }
    }))
    .unwrap()
}

/// Sends `pod` for review; the answer's response and the pod with its patch applied.
async fn mutate(served: &Served, pod: &Value, namespace: &str) -> (Value, Value) {
    let (status, body) = https(
        served,
        &served.trusted.pem,
        "POST",
        "/mutate",
        "application/json",
        review_of(pod, namespace),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = answer["response"].clone();
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], true);
    let mut patched = pod.clone();
    if let Some(patch) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
    }
    (response, patched)
}

fn service_account(namespace: &str, name: &str, annotations: &[(&str, &str)]) -> ServiceAccount {
    serde_json::from_value(json!({
        "metadata": {
            "namespace": namespace, "name": name,
            "annotations": annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "labels": {"team": "a"}
        }
    }))
    .unwrap()
}

fn directory() -> Arc<StaticDirectory> {
    let d = StaticDirectory::default();
    d.put_service_account(&service_account(
        "apps",
        "reader",
        &[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::111111111111:role/reader",
        )],
    ));
    d.put_service_account(&service_account("apps", "agent-sa", &[]));
    d.put_association("apps", "agent-sa");
    Arc::new(d)
}

/// A Deployment's pod: an init container, a native sidecar, and a container that already
/// sets a region of its own.
fn pod(service_account: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9c-", "namespace": "apps", "labels": {"app": "web"}},
        "spec": {
            "serviceAccountName": service_account,
            "initContainers": [
                {"name": "migrate", "image": "migrate:1"},
                {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always",
                 "ports": [{"containerPort": 15001}]}
            ],
            "containers": [
                {"name": "app", "image": "app:1",
                 "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
                 "resources": {"limits": {"memory": "128Mi"}}}
            ]
        }
    })
}

fn env(container: &Value) -> std::collections::BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_pods_get_the_variables_and_token_and_keep_everything_else() {
    let served = serve(directory()).await;
    let original = pod_of("reader");
    let (response, pod) = mutate(&served, &original, "apps").await;
    assert!(response.get("warnings").is_none(), "{response}");
    let app = &pod["spec"]["containers"][0];
    let vars = env(app);
    assert_eq!(
        vars["AWS_ROLE_ARN"],
        "arn:aws:iam::111111111111:role/reader"
    );
    assert_eq!(
        vars["AWS_WEB_IDENTITY_TOKEN_FILE"],
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    );
    assert_eq!(vars["AWS_REGION"], "eu-west-1", "what the user set stays");
    assert_eq!(
        app["resources"],
        original["spec"]["containers"][0]["resources"]
    );
    assert!(app["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "aws-iam-token"
            && m["mountPath"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount"));
    // Init containers too, and the native sidecar keeps restartPolicy (the EKS webhook's bug).
    for init in pod["spec"]["initContainers"].as_array().unwrap() {
        assert_eq!(
            env(init)["AWS_ROLE_ARN"],
            "arn:aws:iam::111111111111:role/reader"
        );
    }
    assert_eq!(pod["spec"]["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(
        pod["spec"]["initContainers"][1]["ports"][0]["containerPort"],
        15001
    );
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "aws-iam-token")
        .unwrap();
    let token = &volume["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "sts.amazonaws.com");
    assert_eq!(token["expirationSeconds"], 86400);
    assert_eq!(
        pod["metadata"], original["metadata"],
        "nothing else changed"
    );

    // Reviewed again (a reinvocation), the mutated pod gets no further change.
    let (again, unchanged) = mutate(&served, &pod, "apps").await;
    assert!(again.get("patch").is_none(), "{again}");
    assert_eq!(unchanged, pod);
    let metrics = served.webhook.metrics().encode();
    assert!(
        metrics.contains(r#"rolechain_webhook_mutations_total{value="irsa"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rolechain_webhook_skips_total{value="already_mutated"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_served_pods_get_container_credentials_and_others_are_left_alone() {
    let served = serve(directory()).await;
    let (_, mutated) = mutate(&served, &pod("agent-sa"), "apps").await;
    let vars = env(&mutated["spec"]["containers"][0]);
    assert_eq!(
        vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        "http://169.254.170.23/v1/credentials"
    );
    assert_eq!(
        vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"],
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    );
    assert!(!vars.contains_key("AWS_ROLE_ARN"));

    // No role: allowed unchanged. A service account that does not exist: the same, said.
    let unannotated = StaticDirectory::default();
    unannotated.put_service_account(&service_account("apps", "plain", &[]));
    let served = serve(Arc::new(unannotated)).await;
    let (response, unchanged) = mutate(&served, &pod("plain"), "apps").await;
    assert!(response.get("patch").is_none());
    assert_eq!(unchanged, pod_of("plain"));
    let (response, _) = mutate(&served, &pod("ghost"), "apps").await;
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("service account apps/ghost was not found"),
        "{response}"
    );
    // The opt-out label.
    let mut opted = pod("plain");
    opted["metadata"]["labels"]["eks.amazonaws.com/skip-pod-identity-webhook"] = json!("true");
    let (response, _) = mutate(&served, &opted, "apps").await;
    assert!(response.get("patch").is_none());
}

fn pod_of(sa: &str) -> Value {
    pod(sa)
}

/// A directory whose API server does not answer.
struct Failing;

impl Directory for Failing {
    fn service_account<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServiceAccount>, LookupError>> {
        Box::pin(async { Err(LookupError("the API server did not answer".into())) })
    }
    fn has_association(&self, _: &str, _: &str) -> bool {
        false
    }
    fn size(&self) -> usize {
        0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_own_fault_admits_the_pod_unmutated_with_a_warning() {
    let served = serve(Arc::new(Failing)).await;
    let (response, unchanged) = mutate(&served, &pod_of("reader"), "apps").await;
    assert_eq!(unchanged, pod_of("reader"));
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("admitted without AWS credentials mutation: the API server did not answer"),
        "{response}"
    );
    assert!(served
        .webhook
        .metrics()
        .encode()
        .contains("rolechain_webhook_admitted_unmutated_total 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_requests_are_refused_with_a_message() {
    let served = serve(directory()).await;
    let ca = served.trusted.pem.clone();
    let send = |method: &'static str, path: &'static str, ct: &'static str, body: Vec<u8>| {
        let (served, ca) = (&served, ca.clone());
        async move { https(served, &ca, method, path, ct, body).await.unwrap() }
    };
    let (status, body) = send("POST", "/mutate", "application/json", b"{".to_vec()).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not JSON"));
    let (status, body) = send(
        "POST",
        "/mutate",
        "application/json",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("request.uid"));
    let (status, _) = send("POST", "/mutate", "text/plain", b"{}".to_vec()).await;
    assert_eq!(status, 415);
    let (status, _) = send(
        "POST",
        "/mutate",
        "application/json",
        vec![b' '; webhook::server::MAX_BODY_BYTES + 1],
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = send("GET", "/mutate", "application/json", vec![]).await;
    assert_eq!(status, 405);
    let (status, _) = send("GET", "/nope", "application/json", vec![]).await;
    assert_eq!(status, 404);
    // Not a pod create: allowed, untouched.
    let review = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "operation": "UPDATE", "resource": {"resource": "pods"}, "object": pod_of("reader")}
    }))
    .unwrap();
    let (status, body) = send("POST", "/mutate", "application/json", review).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
    // A client that does not trust the certificate gets no answer at all.
    let stranger = cert();
    assert!(https(
        &served,
        &stranger.pem,
        "GET",
        "/healthz",
        "text/plain",
        vec![]
    )
    .await
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_a_renewed_certificate() {
    let served = serve(directory()).await;
    let ca = served.trusted.pem.clone();
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let (status, body) = https(&served, &ca, "GET", path, "text/plain", vec![])
            .await
            .unwrap();
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, want)
        );
    }
    let (_, body) = https(&served, &ca, "GET", "/metrics", "text/plain", vec![])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("rolechain_webhook_cache_entries 3"), "{text}");
    assert!(text.contains("rolechain_webhook_requests_total"), "{text}");

    // cert-manager renews the pair in place: the next handshake presents the new one.
    let renewed = cert();
    // A half-written renewal (the key first) is not taken; the old pair keeps serving.
    std::fs::write(served.dir.path().join("tls.key"), &renewed.key).unwrap();
    assert!(!served.cert.reload_if_changed());
    assert!(https(&served, &ca, "GET", "/healthz", "text/plain", vec![])
        .await
        .is_ok());
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(served.dir.path().join("tls.crt"), &renewed.pem).unwrap();
    assert!(served.cert.reload_if_changed());
    assert!(https(
        &served,
        &renewed.pem,
        "GET",
        "/healthz",
        "text/plain",
        vec![]
    )
    .await
    .is_ok());
    assert!(https(&served, &ca, "GET", "/healthz", "text/plain", vec![])
        .await
        .is_err());
}

/// Pod templates as the real `kubectl` makes them (`kubectl create deployment|job|cronjob …
/// --dry-run=client -o json`), with the service account set; `None` without kubectl.
fn kubectl_templates() -> Option<Vec<(String, Value)>> {
    let run = |args: &[&str]| -> Option<Value> {
        let out = std::process::Command::new("kubectl")
            .args(args)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    };
    let Some(deployment) = run(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--image=busybox:1.36",
        "--replicas=3",
        "--port=8080",
        "--dry-run=client",
        "-o",
        "json",
    ]) else {
        eprintln!("NOTICE: kubectl is not installed: skipping the kubectl-made fixtures");
        assert!(
            std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() != Ok("1"),
            "kubectl is required (ROLECHAIN_REQUIRE_PEERS=1)"
        );
        return None;
    };
    let job = run(&[
        "create",
        "job",
        "report",
        "--image=busybox:1.36",
        "--dry-run=client",
        "-o",
        "json",
        "--",
        "date",
    ])?;
    let cronjob = run(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox:1.36",
        "--schedule=0 3 * * *",
        "--dry-run=client",
        "-o",
        "json",
        "--",
        "date",
    ])?;
    let pod_of = |template: &Value| {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]});
        pod["spec"]["serviceAccountName"] = json!("reader");
        pod
    };
    Some(vec![
        ("deployment".into(), pod_of(&deployment["spec"]["template"])),
        ("job".into(), pod_of(&job["spec"]["template"])),
        (
            "cronjob".into(),
            pod_of(&cronjob["spec"]["jobTemplate"]["spec"]["template"]),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_made_by_kubectl_are_mutated_and_keep_their_fields() {
    let Some(templates) = kubectl_templates() else {
        return;
    };
    let served = serve(directory()).await;
    for (what, original) in templates {
        let (_, pod) = mutate(&served, &original, "apps").await;
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert_eq!(
            containers.len(),
            original["spec"]["containers"].as_array().unwrap().len()
        );
        for (c, before) in containers
            .iter()
            .zip(original["spec"]["containers"].as_array().unwrap())
        {
            assert_eq!(
                env(c)["AWS_ROLE_ARN"],
                "arn:aws:iam::111111111111:role/reader",
                "{what}"
            );
            assert_eq!(env(c)["AWS_REGION"], "us-east-1", "{what}");
            for field in ["name", "image", "ports", "resources", "command", "args"] {
                assert_eq!(c[field], before[field], "{what}: {field}");
            }
        }
        for field in [
            "restartPolicy",
            "dnsPolicy",
            "terminationGracePeriodSeconds",
        ] {
            assert_eq!(
                pod["spec"][field], original["spec"][field],
                "{what}: {field}"
            );
        }
        let (again, _) = mutate(&served, &pod, "apps").await;
        assert!(again.get("patch").is_none(), "{what}: {again}");
    }
}
