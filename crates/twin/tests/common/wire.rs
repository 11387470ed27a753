//! Requests signed by `aws-sigv4` (the SDK's own signer) and sent over one raw HTTP/1.1
//! connection: for what the SDK clients will not send (malformed members, presigned URLs,
//! unknown services).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Who signs, for which service, and how.
pub struct Signer<'a> {
    /// The signing name of the credential scope (`sts`, `eks-auth`, …).
    pub service: &'a str,
    pub credentials: &'a Credentials,
    /// Header signing, or a presigned URL (valid 60 s unless [`Signer::request_in`] says).
    pub location: SignatureLocation,
    pub content_type: &'a str,
}

impl Signer<'_> {
    /// `method path_and_query` with `body` to `addr`, signed in region `us-east-1`.
    pub fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> http::Request<Full<Bytes>> {
        self.request_in(addr, method, path_and_query, body, "us-east-1", 60)
    }

    /// [`request`](Self::request) signed for `region`, a presigned URL valid `expires_secs`.
    pub fn request_in(
        &self,
        addr: SocketAddr,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        region: &str,
        expires_secs: u64,
    ) -> http::Request<Full<Bytes>> {
        let url = format!("http://{addr}{path_and_query}");
        let host = addr.to_string();
        let headers = [("host", host.as_str()), ("content-type", self.content_type)];
        let identity: Identity = self.credentials.clone().into();
        let mut settings = SigningSettings::default();
        settings.signature_location = self.location;
        if self.service == "s3" {
            // S3 wants the body's hash in `x-amz-content-sha256`, as the SDKs send it.
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        }
        // Read for presigned URLs only.
        settings.expires_in = Some(Duration::from_secs(expires_secs));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        // S3's presigned URLs sign `UNSIGNED-PAYLOAD`, as the SDKs presign them.
        let payload = if self.service == "s3" && self.location == SignatureLocation::QueryParams {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(body)
        };
        let signable =
            SignableRequest::new(method, &url, headers.iter().copied(), payload).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut builder = http::Request::builder().method(method).uri(path_and_query);
        for (n, v) in headers {
            builder = builder.header(n, v);
        }
        let mut req = builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        instructions.apply_to_request_http1x(&mut req);
        req
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// An unsigned `GET` of `path_and_query` (health, issuers' discovery and keys).
pub async fn get(addr: SocketAddr, path_and_query: &str) -> Reply {
    let req = http::Request::get(path_and_query)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, req).await
}

/// Sends `req` on a new connection to `addr` and reads the whole response.
pub async fn send(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}
