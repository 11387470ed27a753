//! End-to-end tests: real RSA/EC keys, real JWTs, real HTTP over 127.0.0.1.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use oidc::{
    peek, peek_issuer, rsa_thumbprint, token_fingerprint, Algorithm, BoundObject, BoxFuture,
    HttpSource, HttpSourceConfig, Issuer, IssuerConfig, IssuerError, JwksSource, SourceError,
    StaticSource, TokenRequest, Verifier, VerifierConfig, VerifyError,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;

const STS: &str = "sts.amazonaws.com";

// ---------------------------------------------------------------------------------------------
// helpers

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "oidc-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        TempDir(path)
    }

    /// A not-yet-existing subdirectory, so the issuer creates it with its own permissions.
    fn keys(&self) -> PathBuf {
        self.0.join("keys")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn accept_sts(aud: &str) -> bool {
    aud == STS
}

/// An RSA key the test controls fully, to sign arbitrary headers and claims.
struct TestRsaKey {
    pair: RsaKeyPair,
    n: String,
    e: String,
}

impl TestRsaKey {
    fn generate() -> TestRsaKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        TestRsaKey {
            n: b64(&c.n),
            e: b64(&c.e),
            pair,
        }
    }

    fn from_pem_file(path: &Path) -> TestRsaKey {
        let text = std::fs::read_to_string(path).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        TestRsaKey {
            n: b64(&c.n),
            e: b64(&c.e),
            pair,
        }
    }

    fn kid(&self) -> String {
        rsa_thumbprint(&self.n, &self.e)
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": self.n, "e": self.e})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    fn sign_rs256(&self, kid: &str, claims: &Value) -> String {
        self.sign(&json!({"alg": "RS256", "kid": kid}), claims)
    }
}

/// Claims for a hand-made token from `iss`, valid around `t`.
fn claims_at(iss: &str, t: i64) -> Value {
    json!({"iss": iss, "sub": "system:serviceaccount:default:app", "aud": [STS],
           "iat": t, "nbf": t, "exp": t + 3600})
}

/// Counts fetches and delegates to an inner source.
struct CountingSource<S> {
    inner: S,
    fetches: AtomicUsize,
}

impl<S> CountingSource<S> {
    fn new(inner: S) -> Arc<CountingSource<S>> {
        Arc::new(CountingSource {
            inner,
            fetches: AtomicUsize::new(0),
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl<S: JwksSource> JwksSource for CountingSource<S> {
    fn fetch_jwks<'a>(&'a self, issuer: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch_jwks(issuer)
    }
}

fn verifier_with(source: Arc<dyn JwksSource>, config: VerifierConfig) -> Verifier {
    Verifier::with_config(source, config)
}

/// A static source publishing `jwks` for `iss`, wrapped to count fetches.
fn static_source(iss: &str, jwks: Value) -> Arc<CountingSource<StaticSource>> {
    let source = StaticSource::new();
    source.insert(iss, jwks.to_string());
    CountingSource::new(source)
}

const ISS: &str = "http://issuer.test/id/ONE";

fn new_issuer(dir: &TempDir, url: &str) -> Arc<Issuer> {
    Arc::new(Issuer::load_or_create(IssuerConfig::new(url, dir.keys())).unwrap())
}

fn pod_request() -> TokenRequest {
    let mut request = TokenRequest::new("default", "app", "sa-uid-1", STS);
    request.pod = Some(BoundObject {
        name: "app-7d4b9".into(),
        uid: "pod-uid-1".into(),
    });
    request.node = Some(BoundObject {
        name: "node-1".into(),
        uid: "node-uid-1".into(),
    });
    request
}

type Handler = Arc<dyn Fn(&str) -> (u16, Vec<u8>) + Send + Sync>;

/// A tiny HTTP/1.1 server on 127.0.0.1 answering GETs through `handler`, counting requests.
struct TestServer {
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, handler: Handler) -> TestServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = handler(req.uri().path());
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestServer { hits, task }
}

/// Serves `issuer`'s discovery document and JWKS under its URL path, as the twin will.
fn issuer_handler(issuer: Arc<Issuer>, path_prefix: String) -> Handler {
    Arc::new(move |path: &str| {
        if path == format!("{path_prefix}/.well-known/openid-configuration") {
            (200, issuer.discovery_document().to_string().into_bytes())
        } else if path == format!("{path_prefix}/keys") {
            (200, issuer.jwks().to_string().into_bytes())
        } else {
            (404, b"{}".to_vec())
        }
    })
}

// ---------------------------------------------------------------------------------------------
// issuer: token shape, documents, persistence

#[tokio::test]
async fn mint_verify_round_trip_in_process_and_static() {
    let dir = TempDir::new("roundtrip");
    let issuer = new_issuer(&dir, ISS);
    let token = issuer.mint(&pod_request()).unwrap();

    // Exact shape of a projected service-account token.
    assert_eq!(
        decode_part(&token, 0),
        json!({"alg": "RS256", "kid": issuer.active_kid()})
    );
    let claims = decode_part(&token, 1);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "kubernetes.io",
            "nbf",
            "sub"
        ]
    );
    assert_eq!(claims["aud"], json!([STS]));
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["sub"], "system:serviceaccount:default:app");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default",
               "node": {"name": "node-1", "uid": "node-uid-1"},
               "pod": {"name": "app-7d4b9", "uid": "pod-uid-1"},
               "serviceaccount": {"name": "app", "uid": "sa-uid-1"}})
    );

    // Through the issuer as an in-process source.
    let verifier = Verifier::new(Arc::clone(&issuer));
    let verified = verifier.verify(&token, ISS, accept_sts).await.unwrap();
    assert_eq!(verified.issuer, ISS);
    assert_eq!(verified.subject, "system:serviceaccount:default:app");
    assert_eq!(verified.audiences, vec![STS.to_string()]);
    assert_eq!(verified.kid, issuer.active_kid());
    assert_eq!(verified.alg, Algorithm::RS256);
    assert_eq!(verified.fingerprint, token_fingerprint(&token));
    assert_eq!(unix(verified.expires_at), claims["exp"].as_i64().unwrap());
    assert_eq!(
        unix(verified.issued_at.unwrap()),
        claims["iat"].as_i64().unwrap()
    );
    assert_eq!(verified.claims["kubernetes.io"]["pod"]["name"], "app-7d4b9");

    // Through a StaticSource holding the JWKS JSON.
    let source = static_source(ISS, issuer.jwks());
    let verifier = verifier_with(source.clone(), VerifierConfig::default());
    let verified = verifier.verify(&token, ISS, accept_sts).await.unwrap();
    assert_eq!(verified.subject, "system:serviceaccount:default:app");
    // Cached: a second verification does not fetch again.
    verifier.verify(&token, ISS, accept_sts).await.unwrap();
    assert_eq!(source.fetches(), 1);

    // Unbound tokens omit pod and node; lifetime override.
    let mut plain = TokenRequest::new("ns", "sa", "uid", "pods.eks.amazonaws.com");
    plain.lifetime = Some(Duration::from_secs(600));
    let token = issuer.mint(&plain).unwrap();
    let claims = decode_part(&token, 1);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "uid"}})
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    let verified = verifier
        .verify(&token, ISS, |aud| aud == "pods.eks.amazonaws.com")
        .await
        .unwrap();
    assert_eq!(verified.subject, "system:serviceaccount:ns:sa");
}

#[tokio::test]
async fn mint_verify_round_trip_over_loopback_http() {
    let dir = TempDir::new("http");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/id/LOCAL");
    let issuer = new_issuer(&dir, &url);
    let server = serve(
        listener,
        issuer_handler(Arc::clone(&issuer), "/id/LOCAL".into()),
    )
    .await;

    let verifier = Verifier::new(HttpSource::default());
    let token = issuer.mint(&pod_request()).unwrap();
    let verified = verifier.verify(&token, &url, accept_sts).await.unwrap();
    assert_eq!(verified.issuer, url);
    assert_eq!(verified.kid, issuer.active_kid());
    // Discovery + JWKS, then cached.
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    verifier.verify(&token, &url, accept_sts).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);

    // The discovery document and JWKS as served.
    let http = HttpSource::default();
    assert_eq!(http.discover(&url).await.unwrap(), format!("{url}/keys"));
    let discovery: Value = serde_json::from_slice(
        &http
            .get(&format!("{url}/.well-known/openid-configuration"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        discovery,
        json!({"issuer": url, "jwks_uri": format!("{url}/keys"),
               "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
               "id_token_signing_alg_values_supported": ["RS256"]})
    );
    let jwks: Value = serde_json::from_slice(&http.fetch_jwks(&url).await.unwrap()).unwrap();
    let key = &jwks["keys"][0];
    let mut names: Vec<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );

    // The kid is the RFC 7638 thumbprint, cross-checked with jsonwebtoken's implementation.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    assert_eq!(
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        issuer.active_kid()
    );
}

#[tokio::test]
async fn keys_persist_across_reload() {
    let dir = TempDir::new("persist");
    let first = new_issuer(&dir, ISS);
    let kid = first.active_kid();
    let token = first.mint(&pod_request()).unwrap();
    drop(first);

    let reloaded = new_issuer(&dir, ISS);
    assert_eq!(reloaded.active_kid(), kid);
    assert_eq!(reloaded.kids(), vec![kid.clone()]);
    let verifier = Verifier::new(Arc::clone(&reloaded));
    verifier.verify(&token, ISS, accept_sts).await.unwrap();

    // Rotation persists too, and the newest key stays active after reload.
    let new_kid = reloaded.rotate().unwrap();
    drop(reloaded);
    let again = new_issuer(&dir, ISS);
    assert_eq!(again.active_kid(), new_kid);
    assert_eq!(again.kids(), vec![new_kid, kid]);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.keys()), 0o700);
        let files: Vec<PathBuf> = std::fs::read_dir(dir.keys())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        // A key file others can read is refused, like ssh does.
        std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Issuer::load_or_create(IssuerConfig::new(ISS, dir.keys())).unwrap_err();
        assert!(
            matches!(err, IssuerError::InsecurePermissions { .. }),
            "{err}"
        );
    }
}

#[test]
fn corrupt_key_file_and_bad_config_are_errors() {
    let dir = TempDir::new("corrupt");
    let issuer = Issuer::load_or_create(IssuerConfig::new(ISS, dir.keys())).unwrap();
    drop(issuer);
    let file = std::fs::read_dir(dir.keys())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        &file,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = Issuer::load_or_create(IssuerConfig::new(ISS, dir.keys())).unwrap_err();
    assert!(matches!(err, IssuerError::InvalidKeyFile { .. }), "{err}");

    for url in ["issuer.test", "http://issuer.test/", "http://x?y"] {
        let err = Issuer::load_or_create(IssuerConfig::new(url, dir.0.join("other"))).unwrap_err();
        assert!(matches!(err, IssuerError::InvalidConfig(_)), "{url}");
    }
    let mut config = IssuerConfig::new(ISS, dir.0.join("other"));
    config.max_keys = 0;
    assert!(matches!(
        Issuer::load_or_create(config),
        Err(IssuerError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn rotation_keeps_old_keys_until_dropped() {
    let dir = TempDir::new("rotate");
    let mut config = IssuerConfig::new(ISS, dir.keys());
    config.max_keys = 2;
    let issuer = Arc::new(Issuer::load_or_create(config).unwrap());
    // No caching, so the verifier sees every change the issuer publishes.
    let verifier = verifier_with(
        Arc::clone(&issuer) as Arc<dyn JwksSource>,
        VerifierConfig {
            cache_ttl: Duration::ZERO,
            refresh_interval: Duration::ZERO,
            ..VerifierConfig::default()
        },
    );

    let k1 = issuer.active_kid();
    let t1 = issuer.mint(&pod_request()).unwrap();
    let k2 = issuer.rotate().unwrap();
    assert_ne!(k1, k2);
    assert_eq!(issuer.active_kid(), k2);
    let t2 = issuer.mint(&pod_request()).unwrap();
    assert_eq!(decode_part(&t2, 0)["kid"], k2);
    assert_eq!(issuer.kids(), vec![k2.clone(), k1.clone()]);
    assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 2);

    // Old-key token still verifies while its key is published.
    assert_eq!(verifier.verify(&t1, ISS, accept_sts).await.unwrap().kid, k1);
    assert_eq!(verifier.verify(&t2, ISS, accept_sts).await.unwrap().kid, k2);

    let k3 = issuer.rotate().unwrap();
    assert_eq!(issuer.kids(), vec![k3, k2]);
    assert_eq!(std::fs::read_dir(dir.keys()).unwrap().count(), 2);
    assert_eq!(
        verifier.verify(&t1, ISS, accept_sts).await,
        Err(VerifyError::UnknownKey(k1))
    );
    verifier.verify(&t2, ISS, accept_sts).await.unwrap();
}

#[test]
fn keys_rotated_by_another_process_are_picked_up() {
    let dir = TempDir::new("reload");
    let serving = new_issuer(&dir, ISS);
    let k1 = serving.active_kid();
    assert!(!serving.reload_if_changed().unwrap(), "nothing changed yet");

    // Another process (`rolechain cluster rotate-keys`) rotates the same key directory.
    let other = new_issuer(&dir, ISS);
    let k2 = other.rotate().unwrap();
    assert!(serving.reload_if_changed().unwrap());
    assert_eq!(serving.kids(), vec![k2.clone(), k1.clone()]);
    assert_eq!(serving.active_kid(), k2);
    assert!(
        !serving.reload_if_changed().unwrap(),
        "read once per change"
    );

    // Tokens the other process mints verify against the serving issuer's JWKS.
    let token = other.mint(&pod_request()).unwrap();
    assert_eq!(decode_part(&token, 0)["kid"], k2);
    let published: Vec<String> = serving.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(published, vec![k2, k1]);

    // A directory emptied by mistake does not leave the issuer without keys.
    for entry in std::fs::read_dir(dir.keys()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    assert!(!serving.reload_if_changed().unwrap());
    assert_eq!(serving.kids().len(), 2);
    serving.mint(&pod_request()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// verifier: claims

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let dir = TempDir::new("aud");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let token = issuer.mint(&pod_request()).unwrap();
    let err = verifier
        .verify(&token, ISS, |aud| aud == "other-client")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::AudienceMismatch {
            got: vec![STS.into()]
        }
    );
    assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
    assert_eq!(err.aws_message(), "Incorrect token audience");

    // One accepted audience among several is enough; a string `aud` works too.
    let mut request = pod_request();
    request.audiences = vec!["a".into(), STS.into()];
    let token = issuer.mint(&request).unwrap();
    verifier.verify(&token, ISS, accept_sts).await.unwrap();

    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k")]}));
    let verifier = verifier_with(source, VerifierConfig::default());
    let t = unix(now());
    let mut claims = claims_at(ISS, t);
    claims["aud"] = json!(STS);
    let verified = verifier
        .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
        .await
        .unwrap();
    assert_eq!(verified.audiences, vec![STS.to_string()]);
    for (aud, expected) in [
        (json!([]), VerifyError::MissingClaim("aud")),
        (json!(null), VerifyError::InvalidClaim("aud")),
        (json!([1]), VerifyError::InvalidClaim("aud")),
    ] {
        claims["aud"] = aud;
        assert_eq!(
            verifier
                .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
                .await,
            Err(expected)
        );
    }
    claims.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verifier
            .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
            .await,
        Err(VerifyError::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn expiry_honours_the_clock_skew() {
    let dir = TempDir::new("exp");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let request = pod_request();
    let t = now();

    // Expired 200 s ago: within the default 5-minute skew.
    let within = issuer
        .mint_at(&request, t - Duration::from_secs(3600 + 200))
        .unwrap();
    verifier
        .verify_at(&within, ISS, accept_sts, t)
        .await
        .unwrap();

    // Expired 400 s ago: beyond it.
    let beyond = issuer
        .mint_at(&request, t - Duration::from_secs(3600 + 400))
        .unwrap();
    let exp = decode_part(&beyond, 1)["exp"].as_i64().unwrap();
    let err = verifier
        .verify_at(&beyond, ISS, accept_sts, t)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::Expired { exp, now: unix(t) });
    assert_eq!(err.sts_error_code(), "ExpiredTokenException");
    assert!(err
        .aws_message()
        .starts_with("Token expired: current date/time"));

    // The skew is configurable.
    let strict = verifier_with(
        Arc::clone(&issuer) as Arc<dyn JwksSource>,
        VerifierConfig {
            clock_skew: Duration::from_secs(60),
            ..VerifierConfig::default()
        },
    );
    assert!(matches!(
        strict.verify_at(&within, ISS, accept_sts, t).await,
        Err(VerifyError::Expired { .. })
    ));

    // exp is required and must be a number.
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k")]}));
    let verifier = verifier_with(source, VerifierConfig::default());
    let mut claims = claims_at(ISS, unix(t));
    claims.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verifier
            .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
            .await,
        Err(VerifyError::MissingClaim("exp"))
    );
    claims["exp"] = json!("tomorrow");
    assert_eq!(
        verifier
            .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
            .await,
        Err(VerifyError::InvalidClaim("exp"))
    );
}

#[tokio::test]
async fn nbf_in_the_future_is_rejected() {
    let dir = TempDir::new("nbf");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let t = now();
    // Within skew: fine.
    let soon = issuer
        .mint_at(&pod_request(), t + Duration::from_secs(200))
        .unwrap();
    verifier.verify_at(&soon, ISS, accept_sts, t).await.unwrap();
    // Beyond: nbf is checked before iat, so this is NotYetValid.
    let later = issuer
        .mint_at(&pod_request(), t + Duration::from_secs(600))
        .unwrap();
    let nbf = decode_part(&later, 1)["nbf"].as_i64().unwrap();
    let err = verifier
        .verify_at(&later, ISS, accept_sts, t)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::NotYetValid { nbf, now: unix(t) });
    assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
}

#[tokio::test]
async fn iat_in_the_future_beyond_skew_is_rejected() {
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k")]}));
    let verifier = verifier_with(source, VerifierConfig::default());
    let at = now();
    let t = unix(at);
    let mut claims = claims_at(ISS, t);
    claims.as_object_mut().unwrap().remove("nbf");
    claims["iat"] = json!(t + 600);
    assert_eq!(
        verifier
            .verify_at(&key.sign_rs256("k", &claims), ISS, accept_sts, at)
            .await,
        Err(VerifyError::IssuedInFuture {
            iat: t + 600,
            now: t
        })
    );
    claims["iat"] = json!(t + 200);
    verifier
        .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
        .await
        .unwrap();
    // Fractional NumericDates are valid JSON numbers per RFC 7519.
    claims["iat"] = json!(t as f64 + 0.5);
    verifier
        .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
        .await
        .unwrap();
}

#[tokio::test]
async fn issuer_mismatch_is_rejected_without_fetching() {
    let dir = TempDir::new("iss");
    let issuer = new_issuer(&dir, ISS);
    let source = CountingSource::new(Arc::clone(&issuer));
    let verifier = verifier_with(source.clone(), VerifierConfig::default());
    let token = issuer.mint(&pod_request()).unwrap();
    for expected in [
        "http://issuer.test/id/TWO",
        "http://issuer.test/id/ONE/",
        "HTTP://issuer.test/id/ONE",
    ] {
        let err = verifier
            .verify(&token, expected, accept_sts)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            VerifyError::IssuerMismatch {
                expected: expected.into(),
                got: ISS.into()
            }
        );
        assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
    }
    assert_eq!(source.fetches(), 0);
    assert_eq!(peek_issuer(&token).unwrap(), ISS);
}

#[tokio::test]
async fn missing_sub_or_kid() {
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k")]}));
    let verifier = verifier_with(source, VerifierConfig::default());
    let mut claims = claims_at(ISS, unix(now()));
    claims.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        verifier
            .verify(&key.sign_rs256("k", &claims), ISS, accept_sts)
            .await,
        Err(VerifyError::MissingClaim("sub"))
    );
    let no_kid = key.sign(&json!({"alg": "RS256"}), &claims_at(ISS, unix(now())));
    assert_eq!(
        verifier.verify(&no_kid, ISS, accept_sts).await,
        Err(VerifyError::MissingClaim("kid"))
    );
}

// ---------------------------------------------------------------------------------------------
// verifier: signatures and algorithms

#[tokio::test]
async fn another_key_with_the_same_kid_is_rejected() {
    let dir = TempDir::new("samekid");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let attacker = TestRsaKey::generate();
    let forged = attacker.sign_rs256(&issuer.active_kid(), &claims_at(ISS, unix(now())));
    let err = verifier.verify(&forged, ISS, accept_sts).await.unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
    assert_eq!(err.sts_error_code(), "InvalidIdentityToken");

    // The real key, read from the issuer's directory, produces an accepted token from the same
    // claims: the rejection above is about the key, not the claims.
    let file = std::fs::read_dir(dir.keys())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let real = TestRsaKey::from_pem_file(&file);
    assert_eq!(real.kid(), issuer.active_kid());
    let genuine = real.sign_rs256(&issuer.active_kid(), &claims_at(ISS, unix(now())));
    verifier.verify(&genuine, ISS, accept_sts).await.unwrap();
}

#[tokio::test]
async fn tampered_payload_is_rejected() {
    let dir = TempDir::new("tamper");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let token = issuer.mint(&pod_request()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = decode_part(&token, 1);
    claims["sub"] = json!("system:serviceaccount:kube-system:admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        verifier.verify(&tampered, ISS, accept_sts).await,
        Err(VerifyError::BadSignature)
    );
    // A flipped signature bit, and a signature from another token.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(
        verifier.verify(&flipped, ISS, accept_sts).await,
        Err(VerifyError::BadSignature)
    );
    let other = issuer.mint(&pod_request()).unwrap();
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).unwrap()
    );
    assert_eq!(
        verifier.verify(&spliced, ISS, accept_sts).await,
        Err(VerifyError::BadSignature)
    );
}

#[tokio::test]
async fn verify_peeked_answers_as_verify() {
    let dir = TempDir::new("peeked");
    let issuer = new_issuer(&dir, ISS);
    let token = issuer.mint(&pod_request()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    let configs = [
        VerifierConfig::default(),
        VerifierConfig {
            algorithms: vec![Algorithm::ES256],
            ..VerifierConfig::default()
        },
        VerifierConfig {
            max_token_bytes: 100,
            ..VerifierConfig::default()
        },
    ];
    for config in configs {
        let verifier = verifier_with(Arc::clone(&issuer) as Arc<dyn JwksSource>, config);
        for t in [&token, &flipped] {
            for expected in [ISS, "http://other.test/id/X"] {
                let peeked = peek(t).unwrap();
                assert_eq!(peeked.issuer(), ISS);
                let once = verifier
                    .verify_peeked(peeked, expected, accept_sts, SystemTime::now())
                    .await;
                let twice = verifier.verify(t, expected, accept_sts).await;
                assert_eq!(once, twice);
            }
        }
    }
}

#[tokio::test]
async fn alg_none_is_rejected_before_any_key_use() {
    let dir = TempDir::new("none");
    let issuer = new_issuer(&dir, ISS);
    let source = CountingSource::new(Arc::clone(&issuer));
    let verifier = verifier_with(source.clone(), VerifierConfig::default());
    let claims = claims_at(ISS, unix(now()));
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "kid": issuer.active_kid()});
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let err = verifier
            .verify(&unsigned, ISS, accept_sts)
            .await
            .unwrap_err();
        assert_eq!(err, VerifyError::UnsupportedAlgorithm(alg.into()));
        assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
        // Even with a (meaningless) signature part.
        let with_sig = format!("{unsigned}c2ln");
        assert_eq!(
            verifier.verify(&with_sig, ISS, accept_sts).await,
            Err(VerifyError::UnsupportedAlgorithm(alg.into()))
        );
    }
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret_is_rejected() {
    let dir = TempDir::new("hs256");
    let issuer = new_issuer(&dir, ISS);
    let source = CountingSource::new(Arc::clone(&issuer));
    let verifier = verifier_with(source.clone(), VerifierConfig::default());
    let file = std::fs::read_dir(dir.keys())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let key = TestRsaKey::from_pem_file(&file);
    let spki_der = key.pair.public_key().as_der().unwrap().as_ref().to_vec();
    let pkcs1_der = key.pair.public_key().as_ref().to_vec();
    let spki_pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki_der)
    );
    let jwks_text = issuer.jwks().to_string();
    let claims = claims_at(ISS, unix(now()));
    for (alg, secret) in [
        ("HS256", spki_pem.as_bytes()),
        ("HS256", spki_der.as_slice()),
        ("HS256", pkcs1_der.as_slice()),
        ("HS256", jwks_text.as_bytes()),
        ("HS384", spki_pem.as_bytes()),
        ("HS512", spki_der.as_slice()),
    ] {
        let hmac_alg = match alg {
            "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
            "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
            _ => aws_lc_rs::hmac::HMAC_SHA512,
        };
        let header = json!({"alg": alg, "kid": issuer.active_kid(), "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(hmac_alg, secret),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(
            verifier.verify(&token, ISS, accept_sts).await,
            Err(VerifyError::UnsupportedAlgorithm(alg.into()))
        );
    }
    // Rejected on the header alone: the issuer's keys were never even fetched.
    assert_eq!(source.fetches(), 0);

    // An allow-list narrowed by configuration is honoured too.
    let rs_only = verifier_with(
        Arc::clone(&issuer) as Arc<dyn JwksSource>,
        VerifierConfig {
            algorithms: vec![Algorithm::RS384],
            ..VerifierConfig::default()
        },
    );
    let token = issuer.mint(&pod_request()).unwrap();
    assert_eq!(
        rs_only.verify(&token, ISS, accept_sts).await,
        Err(VerifyError::UnsupportedAlgorithm("RS256".into()))
    );
}

#[tokio::test]
async fn es256_token_verifies_against_an_ec_jwk() {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 65);
    let ec_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
                        "x": b64(&point[1..33]), "y": b64(&point[33..])});
    let rsa = TestRsaKey::generate();
    let source = static_source(
        ISS,
        json!({"keys": [ec_jwk, rsa.jwk("rsa-1"),
                        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(&[1; 48]), "y": b64(&[2; 48])}]}),
    );
    let verifier = verifier_with(source, VerifierConfig::default());

    // Signed by jsonwebtoken itself, an independent encoder.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let claims = claims_at(ISS, unix(now()));
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let verified = verifier.verify(&token, ISS, accept_sts).await.unwrap();
    assert_eq!(verified.alg, Algorithm::ES256);
    assert_eq!(verified.kid, "ec-1");

    // The same ES256 token naming the RSA key, or the P-384 key, is refused by kty / crv.
    header.kid = Some("rsa-1".into());
    let wrong_kty = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert!(matches!(
        verifier.verify(&wrong_kty, ISS, accept_sts).await,
        Err(VerifyError::IncompatibleKey { reason, .. }) if reason.contains("kty")
    ));
    header.kid = Some("p384".into());
    let wrong_crv = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert!(matches!(
        verifier.verify(&wrong_crv, ISS, accept_sts).await,
        Err(VerifyError::IncompatibleKey { reason, .. }) if reason.contains("curve")
    ));
    // And an RS256 token naming the EC key.
    let rs_on_ec = rsa.sign_rs256("ec-1", &claims);
    assert!(matches!(
        verifier.verify(&rs_on_ec, ISS, accept_sts).await,
        Err(VerifyError::IncompatibleKey { .. })
    ));
}

#[tokio::test]
async fn jwk_alg_and_use_must_match() {
    let key = TestRsaKey::generate();
    let mut rs384 = key.jwk("alg384");
    rs384["alg"] = json!("RS384");
    let mut enc = key.jwk("enc");
    enc["use"] = json!("enc");
    let mut ops = key.jwk("ops");
    ops.as_object_mut().unwrap().remove("use");
    ops["key_ops"] = json!(["encrypt"]);
    let mut bare = key.jwk("bare");
    bare.as_object_mut().unwrap().remove("use");
    bare.as_object_mut().unwrap().remove("alg");
    let source = static_source(ISS, json!({"keys": [rs384, enc, ops, bare]}));
    let verifier = verifier_with(source, VerifierConfig::default());
    let claims = claims_at(ISS, unix(now()));
    for kid in ["alg384", "enc", "ops"] {
        let err = verifier
            .verify(&key.sign_rs256(kid, &claims), ISS, accept_sts)
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::IncompatibleKey { .. }),
            "{kid}: {err:?}"
        );
        assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
    }
    // A JWK without alg or use may verify any compatible algorithm.
    verifier
        .verify(&key.sign_rs256("bare", &claims), ISS, accept_sts)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// verifier: JWKS fetching

#[tokio::test]
async fn unknown_kid_refreshes_once_per_interval() {
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k1")]}));
    let interval = Duration::from_millis(400);
    let verifier = verifier_with(
        source.clone(),
        VerifierConfig {
            refresh_interval: interval,
            ..VerifierConfig::default()
        },
    );
    let claims = claims_at(ISS, unix(now()));
    let good = key.sign_rs256("k1", &claims);
    verifier.verify(&good, ISS, accept_sts).await.unwrap();
    assert_eq!(source.fetches(), 1);

    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    // An unknown kid triggers exactly one refresh, then fails.
    let err = verifier
        .verify(&key.sign_rs256("random-1", &claims), ISS, accept_sts)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey("random-1".into()));
    assert_eq!(err.sts_error_code(), "InvalidIdentityToken");
    assert_eq!(source.fetches(), 2);
    // Further unknown kids within the interval do not refetch; known kids keep working.
    for i in 0..20 {
        let kid = format!("random-{i}-b");
        assert_eq!(
            verifier
                .verify(&key.sign_rs256(&kid, &claims), ISS, accept_sts)
                .await,
            Err(VerifyError::UnknownKey(kid))
        );
    }
    verifier.verify(&good, ISS, accept_sts).await.unwrap();
    assert_eq!(source.fetches(), 2);

    // After the interval, a kid the issuer has meanwhile published is found by the refresh.
    source.inner.insert(
        ISS,
        json!({"keys": [key.jwk("k1"), key.jwk("k2")]}).to_string(),
    );
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    verifier
        .verify(&key.sign_rs256("k2", &claims), ISS, accept_sts)
        .await
        .unwrap();
    assert_eq!(source.fetches(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_fetch() {
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k1")]}));
    let verifier = Arc::new(verifier_with(source.clone(), VerifierConfig::default()));
    let claims = claims_at(ISS, unix(now()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let verifier = Arc::clone(&verifier);
        let token = key.sign_rs256(&format!("flood-{i}"), &claims);
        tasks.spawn(async move { verifier.verify(&token, ISS, accept_sts).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(result.unwrap(), Err(VerifyError::UnknownKey(_))));
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn jwks_fetch_failures_are_jwks_unavailable() {
    let token_for =
        |iss: &str| TestRsaKey::generate().sign_rs256("k", &claims_at(iss, unix(now())));

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/id/X", closed.local_addr().unwrap());
    drop(closed);
    let verifier = Verifier::new(HttpSource::default());
    let err = verifier
        .verify(&token_for(&closed_url), &closed_url, accept_sts)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(d) if d.contains("failed")),
        "{err:?}"
    );
    assert_eq!(err.sts_error_code(), "IDPCommunicationError");
    // The failure is remembered for the interval: no second attempt, same error.
    assert!(matches!(
        verifier
            .verify(&token_for(&closed_url), &closed_url, accept_sts)
            .await,
        Err(VerifyError::JwksUnavailable(_))
    ));

    // https is off unless TLS roots are trusted (tests/https.rs), and says so.
    let https = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE";
    let err = verifier
        .verify(&token_for(https), https, accept_sts)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(d) if d.contains("https is not enabled")),
        "{err:?}"
    );

    // A server answering 500, one whose discovery names another issuer, one with an oversized
    // JWKS, one serving non-JSON keys, and one that never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let base_for_handler = base.clone();
    let server = serve(
        listener,
        Arc::new(move |path: &str| {
            let base = &base_for_handler;
            let discovery = |iss: &str, jwks: &str| {
                json!({"issuer": iss, "jwks_uri": format!("{base}{jwks}")})
                    .to_string()
                    .into_bytes()
            };
            match path {
                "/e500/.well-known/openid-configuration" => (500, b"oops".to_vec()),
                "/liar/.well-known/openid-configuration" => {
                    (200, discovery("http://evil.test", "/keys"))
                }
                "/big/.well-known/openid-configuration" => {
                    (200, discovery(&format!("{base}/big"), "/big/keys"))
                }
                "/big/keys" => (200, vec![b' '; 300 * 1024]),
                "/html/.well-known/openid-configuration" => {
                    (200, discovery(&format!("{base}/html"), "/html/keys"))
                }
                "/html/keys" => (200, b"<html>".to_vec()),
                _ => (404, Vec::new()),
            }
        }),
    )
    .await;
    for (name, expected) in [
        ("e500", "HTTP 500"),
        ("liar", "does not match"),
        ("big", "exceeds"),
        ("html", "JWKS is not JSON"),
        ("missing", "HTTP 404"),
    ] {
        let iss = format!("{base}/{name}");
        let err = verifier
            .verify(&token_for(&iss), &iss, accept_sts)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VerifyError::JwksUnavailable(d) if d.contains(expected)),
            "{name}: {err:?}"
        );
    }
    drop(server);

    // A server that accepts and never answers hits the request timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/id/S", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let impatient = HttpSource::new(HttpSourceConfig {
        request_timeout: Duration::from_millis(300),
        ..HttpSourceConfig::default()
    });
    let err = impatient.fetch_jwks(&silent_url).await.unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    hold.abort();

    // StaticSource: unknown issuer.
    let verifier = Verifier::new(StaticSource::new());
    assert!(matches!(
        verifier.verify(&token_for(ISS), ISS, accept_sts).await,
        Err(VerifyError::JwksUnavailable(_))
    ));
}

#[tokio::test]
async fn stale_keys_survive_an_outage() {
    let key = TestRsaKey::generate();
    let source = static_source(ISS, json!({"keys": [key.jwk("k1")]}));
    let verifier = verifier_with(
        source.clone(),
        VerifierConfig {
            cache_ttl: Duration::ZERO,
            refresh_interval: Duration::ZERO,
            ..VerifierConfig::default()
        },
    );
    let token = key.sign_rs256("k1", &claims_at(ISS, unix(now())));
    verifier.verify(&token, ISS, accept_sts).await.unwrap();
    source.inner.remove(ISS);
    // The refetch fails, but the cached key that knows this kid is still used.
    verifier.verify(&token, ISS, accept_sts).await.unwrap();
    assert_eq!(source.fetches(), 2);
    // forget() drops the cache: now the outage shows.
    verifier.forget(ISS);
    assert!(matches!(
        verifier.verify(&token, ISS, accept_sts).await,
        Err(VerifyError::JwksUnavailable(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// robustness

#[tokio::test]
async fn garbage_never_panics() {
    let dir = TempDir::new("garbage");
    let issuer = new_issuer(&dir, ISS);
    let verifier = Verifier::new(Arc::clone(&issuer));
    let token = issuer.mint(&pod_request()).unwrap();
    let seg = |s: &str| b64(s.as_bytes());
    let huge = "A".repeat(10 * 1024 * 1024);
    let huge_dots = format!("{huge}.{huge}.{huge}");
    let mut inputs: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "\u{0}\u{1}\u{2}".into(),
        "ünïcödé.ünïcödé.ünïcödé".into(),
        "eyJ.eyJ.eyJ".into(),
        format!("{}.{}.{}", seg("null"), seg("null"), seg("null")),
        format!("{}.{}.{}", seg("[]"), seg("{}"), seg("x")),
        format!("{}.{}.{}", seg(r#"{"alg":7}"#), seg("{}"), seg("x")),
        format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":7}"#),
            seg("{}"),
            seg("x")
        ),
        format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"k"}"#),
            seg("[]"),
            seg("x")
        ),
        format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"k"}"#),
            seg(r#"{"iss":5}"#),
            seg("x")
        ),
        format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"k"}"#),
            seg(&format!(r#"{{"iss":"{ISS}"}}"#)),
            "!!!"
        ),
        format!("{}.{}.{}", seg(&"[".repeat(100_000)), seg("{}"), seg("x")),
        huge.clone(),
        huge_dots,
        format!("{token}."),
        format!(".{token}"),
        token.replace('.', ""),
        format!("{token}\n"),
        format!(" {token}"),
    ];
    // Every truncation and every single-character substitution of a real token.
    for i in 0..token.len() {
        inputs.push(token[..i].to_string());
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        inputs.push(String::from_utf8(bytes).unwrap());
    }
    for input in &inputs {
        let result = verifier.verify(input, ISS, accept_sts).await;
        assert!(result.is_err(), "accepted a mangled token");
        let err = result.unwrap_err();
        // Error texts carry neither the token nor its signature.
        let text = format!("{err} {err:?} {}", err.aws_message());
        assert!(text.len() < 1024, "{text}");
        if input.len() > 40 {
            assert!(!text.contains(input.as_str()));
        }
        assert!(!text.contains(token.split('.').nth(2).unwrap()));
        let _ = peek_issuer(input);
    }
    verifier.verify(&token, ISS, accept_sts).await.unwrap();
}

#[test]
fn error_codes_and_messages() {
    let cases: Vec<(VerifyError, &str)> = vec![
        (VerifyError::Malformed("x"), "InvalidIdentityToken"),
        (
            VerifyError::UnsupportedAlgorithm("HS256".into()),
            "InvalidIdentityToken",
        ),
        (VerifyError::UnknownKey("k".into()), "InvalidIdentityToken"),
        (VerifyError::BadSignature, "InvalidIdentityToken"),
        (
            VerifyError::Expired { exp: 1, now: 2 },
            "ExpiredTokenException",
        ),
        (
            VerifyError::NotYetValid { nbf: 2, now: 1 },
            "InvalidIdentityToken",
        ),
        (
            VerifyError::IssuedInFuture { iat: 2, now: 1 },
            "InvalidIdentityToken",
        ),
        (
            VerifyError::IssuerMismatch {
                expected: "a".into(),
                got: "b".into(),
            },
            "InvalidIdentityToken",
        ),
        (
            VerifyError::AudienceMismatch { got: vec![] },
            "InvalidIdentityToken",
        ),
        (VerifyError::MissingClaim("exp"), "InvalidIdentityToken"),
        (
            VerifyError::JwksUnavailable("down".into()),
            "IDPCommunicationError",
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.sts_error_code(), code, "{err:?}");
        assert!(!err.aws_message().is_empty());
    }
    assert_eq!(
        VerifyError::Expired { exp: 100, now: 200 }.aws_message(),
        "Token expired: current date/time 200 must be before the expiration date/time 100"
    );
}

#[test]
fn hostile_header_values_are_sanitized_in_errors() {
    let kid = format!("evil\n{}", "x".repeat(10_000));
    let seg = |v: &Value| b64(v.to_string().as_bytes());
    let token = format!(
        "{}.{}.c2ln",
        seg(&json!({"alg": format!("HS256\r\n{kid}")})),
        seg(&json!({}))
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = Verifier::new(StaticSource::new());
    let err = runtime
        .block_on(verifier.verify(&token, ISS, accept_sts))
        .unwrap_err();
    let VerifyError::UnsupportedAlgorithm(alg) = &err else {
        panic!("{err:?}")
    };
    assert!(!alg.contains('\n') && !alg.contains('\r'));
    assert!(alg.chars().count() <= 129);
}

#[test]
fn token_request_validation() {
    let dir = TempDir::new("request");
    let issuer = Issuer::load_or_create(IssuerConfig::new(ISS, dir.keys())).unwrap();
    let mut bad = TokenRequest::new("ns", "sa:x", "uid", STS);
    assert!(matches!(
        issuer.mint(&bad),
        Err(IssuerError::InvalidRequest(_))
    ));
    bad = TokenRequest::new("ns", "sa", "uid", "");
    assert!(matches!(
        issuer.mint(&bad),
        Err(IssuerError::InvalidRequest(_))
    ));
    assert!(format!("{issuer:?}").contains(&issuer.active_kid()));
}

#[test]
fn verify_future_is_send_and_types_are_shareable() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<Issuer>();
    assert_send_sync::<HttpSource>();
    assert_send_sync::<StaticSource>();
    let verifier = Verifier::new(StaticSource::new());
    let client_ids = [STS.to_string()];
    let future = verifier.verify("a.b.c", ISS, |aud| client_ids.iter().any(|c| c == aud));
    // The twin runs verification inside multi-threaded hyper services.
    assert_send(&future);
}

/// Tokens naming ever new issuers cannot grow the verifier's cache past `max_issuers`: the
/// issuer used least recently is forgotten, and the one in use keeps its keys.
#[tokio::test]
async fn the_issuer_cache_is_bounded() {
    let dir = TempDir::new("bounded");
    let issuer = new_issuer(&dir, ISS);
    let source = static_source(ISS, issuer.jwks());
    let verifier = verifier_with(
        Arc::clone(&source) as Arc<dyn JwksSource>,
        VerifierConfig {
            max_issuers: 4,
            refresh_interval: Duration::ZERO,
            ..VerifierConfig::default()
        },
    );
    let token = issuer.mint(&pod_request()).unwrap();
    verifier.verify(&token, ISS, |a| a == STS).await.unwrap();
    assert_eq!(source.fetches(), 1);
    for i in 0..20 {
        // A token of an issuer the source does not know: its lookup fails, but takes a place.
        let url = format!("http://issuer.test/id/N{i}");
        let other = new_issuer(&TempDir::new(&format!("bounded-{i}")), &url);
        let t = other.mint(&pod_request()).unwrap();
        let e = verifier.verify(&t, &url, |_| true).await.unwrap_err();
        assert!(matches!(e, VerifyError::JwksUnavailable(_)), "{e:?}");
        assert!(
            verifier.cached_issuers() <= 4,
            "{}",
            verifier.cached_issuers()
        );
        // The issuer in use keeps its keys: verified without another fetch.
        verifier.verify(&token, ISS, |a| a == STS).await.unwrap();
    }
    assert_eq!(verifier.cached_issuers(), 4);
    assert_eq!(
        source.fetches(),
        1 + 20,
        "one lookup per new issuer, none for ISS"
    );
}
