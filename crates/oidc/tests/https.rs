//! `HttpSource` over TLS: an issuer served over `https://` with a certificate of its own CA is
//! trusted when that CA is given, refused when it is not (the system's roots do not know it),
//! and `https://` is refused outright when TLS is off.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use oidc::{
    HttpSource, HttpSourceConfig, Issuer, IssuerConfig, JwksSource as _, SourceError, TlsTrust,
    TokenRequest, Verifier, VerifierConfig, VerifyError,
};
use tokio::net::TcpListener;

/// An issuer at `https://127.0.0.1:PORT` with a certificate for 127.0.0.1 signed by a CA of
/// its own: (issuer, the CA's DER, the server task).
async fn https_issuer(
    dir: &std::path::Path,
) -> (Arc<Issuer>, Vec<u8>, tokio::task::JoinHandle<()>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer_ca = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer_ca)
        .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/id/TLS", listener.local_addr().unwrap());
    let issuer =
        Arc::new(Issuer::load_or_create(IssuerConfig::new(&url, dir.join("keys"))).unwrap());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let served = Arc::clone(&issuer);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, issuer) = (acceptor.clone(), Arc::clone(&served));
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| {
                        let body = match req.uri().path() {
                            "/id/TLS/.well-known/openid-configuration" => {
                                issuer.discovery_document().to_string()
                            }
                            _ => issuer.jwks().to_string(),
                        };
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (issuer, ca.der().to_vec(), task)
}

fn source(tls: TlsTrust) -> Result<HttpSource, SourceError> {
    HttpSource::try_new(HttpSourceConfig {
        tls,
        ..HttpSourceConfig::default()
    })
}

#[tokio::test]
async fn an_https_issuer_is_trusted_through_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, ca, _server) = https_issuer(dir.path()).await;
    let token = issuer
        .mint(&TokenRequest::new(
            "default",
            "app",
            "uid-1",
            "sts.amazonaws.com",
        ))
        .unwrap();
    let verifier = Verifier::with_config(
        Arc::new(source(TlsTrust::Roots(vec![ca])).unwrap()),
        VerifierConfig::default(),
    );
    let verified = verifier
        .verify(&token, issuer.issuer_url(), |aud| {
            aud == "sts.amazonaws.com"
        })
        .await
        .expect("verified over TLS");
    assert_eq!(verified.subject, "system:serviceaccount:default:app");
}

#[tokio::test]
async fn an_unknown_ca_or_tls_off_gets_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, _ca, _server) = https_issuer(dir.path()).await;
    // Another CA: the handshake fails, so no keys, and the error says TLS.
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let wrong = source(TlsTrust::Roots(vec![other.der().to_vec()])).unwrap();
    let error = wrong.fetch_jwks(issuer.issuer_url()).await.unwrap_err();
    assert!(matches!(error, SourceError::Request { .. }), "{error}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    // TLS off (the twin's default): https:// is refused before any connection.
    let off = source(TlsTrust::Disabled).unwrap();
    let error = off.fetch_jwks(issuer.issuer_url()).await.unwrap_err();
    assert!(
        matches!(error, SourceError::UnsupportedScheme { .. }),
        "{error}"
    );
    let token = issuer
        .mint(&TokenRequest::new(
            "default",
            "app",
            "uid-1",
            "sts.amazonaws.com",
        ))
        .unwrap();
    let verifier = Verifier::new(off);
    assert!(matches!(
        verifier.verify(&token, issuer.issuer_url(), |_| true).await,
        Err(VerifyError::JwksUnavailable(_))
    ));
    // Garbage as a root is refused when the source is built.
    assert!(matches!(
        source(TlsTrust::Roots(vec![b"not a certificate".to_vec()])),
        Err(SourceError::Tls(_))
    ));
}
