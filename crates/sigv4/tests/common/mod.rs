//! Shared by the integration tests: real requests signed by `aws-sigv4`, the independent signer.

#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use sigv4::Request;
use time::macros::datetime;
use time::OffsetDateTime;

pub const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SESSION_AKID: &str = "ASIAIOSFODNN7EXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// A session token with the characters that need encoding in a query string.
pub const TOKEN: &str = "FwoGZXIvYXdzEBYaD+example/session=token==";

/// The signing time of every generated request.
pub fn t0() -> OffsetDateTime {
    datetime!(2024-01-01 00:00:00 UTC)
}

/// An owned request: tests tamper with it, then view it as a `sigv4::Request`.
#[derive(Clone, Debug)]
pub struct Owned {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Owned {
    pub fn view(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect(),
            body: &self.body,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
    }

    /// Rewrites the credential scope, wherever the signature travelled.
    pub fn edit_credential(&mut self, edit: impl Fn(&mut Vec<String>)) {
        if let Some(auth) = self.header("authorization") {
            let start = auth.find("Credential=").unwrap() + "Credential=".len();
            let end = start + auth[start..].find(',').unwrap();
            let mut parts: Vec<String> = auth[start..end].split('/').map(String::from).collect();
            edit(&mut parts);
            let new = format!("{}{}{}", &auth[..start], parts.join("/"), &auth[end..]);
            self.set_header("authorization", &new);
        } else {
            let pieces: Vec<String> = self
                .query
                .split('&')
                .map(|p| match p.strip_prefix("X-Amz-Credential=") {
                    Some(v) => {
                        let mut parts: Vec<String> = v.split("%2F").map(String::from).collect();
                        edit(&mut parts);
                        format!("X-Amz-Credential={}", parts.join("%2F"))
                    }
                    None => p.to_owned(),
                })
                .collect();
            self.query = pieces.join("&");
        }
    }

    /// Replaces the value of one query parameter (raw text).
    pub fn set_query_param(&mut self, name: &str, value: &str) {
        let prefix = format!("{name}=");
        let pieces: Vec<String> = self
            .query
            .split('&')
            .map(|p| {
                if p.starts_with(&prefix) {
                    format!("{prefix}{value}")
                } else {
                    p.to_owned()
                }
            })
            .collect();
        self.query = pieces.join("&");
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.query
            .split('&')
            .find_map(|p| p.strip_prefix(&prefix).map(String::from))
    }
}

/// How `aws-sigv4` hashes the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Body hash in the canonical request, no header (every service but S3).
    Body,
    /// Body hash, also sent as `x-amz-content-sha256` (S3).
    S3Hashed,
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` (S3).
    S3Unsigned,
}

/// A request to sign.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub service: &'static str,
    pub region: &'static str,
    pub method: &'static str,
    /// Full URL, already percent-encoded the way a client sends it.
    pub url: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static [u8],
    pub payload: Payload,
}

impl Case {
    pub fn s3(&self) -> bool {
        self.service == "s3"
    }
}

/// The requests the twin serves, in the shapes real SDKs send.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "sts AssumeRole (Query protocol, form body)",
            service: "sts",
            region: "us-east-1",
            method: "POST",
            url: "https://sts.amazonaws.com/",
            headers: vec![("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2FS3_Pics&RoleSessionName=s1",
            payload: Payload::Body,
        },
        Case {
            name: "iam ListUsers (Query protocol)",
            service: "iam",
            region: "us-east-1",
            method: "POST",
            url: "https://iam.amazonaws.com/",
            headers: vec![("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: b"Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fa%20b%2F",
            payload: Payload::Body,
        },
        Case {
            name: "eks GET with odd path and query",
            service: "eks",
            region: "us-west-2",
            method: "GET",
            url: "https://eks.us-west-2.amazonaws.com/clusters/my%20cluster/~%E2%82%AC%2Fx/addons?maxResults=10&nextToken=a%2Bb%3D%2F&z=%7E&empty=",
            headers: vec![("accept", "application/json"), ("x-amz-user-agent", "test  agent\t 1")],
            body: b"",
            payload: Payload::Body,
        },
        Case {
            name: "eks-auth AssumeRoleForPodIdentity (rest-json POST)",
            service: "eks-auth",
            region: "us-west-2",
            method: "POST",
            url: "https://eks-auth.us-west-2.api.aws/clusters/c1/assume-role-identity",
            headers: vec![("content-type", "application/json")],
            body: br#"{"token":"eyJhbGciOiJSUzI1NiJ9.e30.sig"}"#,
            payload: Payload::Body,
        },
        Case {
            name: "s3 GetObject with x-amz-content-sha256",
            service: "s3",
            region: "us-east-1",
            method: "GET",
            url: "https://bucket.s3.us-east-1.amazonaws.com/photos/a%20b/%E2%82%AC~%2Fx%2B.jpg?versionId=3&response-content-type=image%2Fjpeg",
            headers: vec![],
            body: b"",
            payload: Payload::S3Hashed,
        },
        Case {
            name: "s3 PutObject with body hash",
            service: "s3",
            region: "eu-west-1",
            method: "PUT",
            url: "https://s3.eu-west-1.amazonaws.com/bucket//double//slash/./dot",
            headers: vec![("content-type", "text/plain")],
            body: b"hello world",
            payload: Payload::S3Hashed,
        },
        Case {
            name: "s3 GetObject with UNSIGNED-PAYLOAD",
            service: "s3",
            region: "us-east-1",
            method: "GET",
            url: "https://bucket.s3.amazonaws.com/k",
            headers: vec![],
            body: b"",
            payload: Payload::S3Unsigned,
        },
        Case {
            name: "sts GetCallerIdentity as an EKS token",
            service: "sts",
            region: "us-east-1",
            method: "GET",
            url: "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
            headers: vec![("x-k8s-aws-id", "my-cluster")],
            body: b"",
            payload: Payload::Body,
        },
    ]
}

/// Signs `case` with `aws-sigv4` at `at`.
pub fn sign_case(
    case: &Case,
    location: SignatureLocation,
    session: bool,
    at: OffsetDateTime,
    expires: Duration,
) -> Owned {
    let (akid, token) = if session {
        (SESSION_AKID, Some(TOKEN.to_owned()))
    } else {
        (AKID, None)
    };
    let identity: Identity = Credentials::new(akid, SECRET, token, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = location;
    settings.expires_in = Some(expires);
    if case.s3() {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let presigned = location == SignatureLocation::QueryParams;
    if case.payload != Payload::Body && !presigned {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(case.region)
        .name(case.service)
        .time(SystemTime::from(at))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = if case.s3() && (presigned || case.payload == Payload::S3Unsigned) {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(case.body)
    };
    let signable =
        SignableRequest::new(case.method, case.url, case.headers.iter().copied(), body).unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

    let mut builder = http::Request::builder().method(case.method).uri(case.url);
    for (n, v) in &case.headers {
        builder = builder.header(*n, *v);
    }
    let mut req = builder.body(case.body.to_vec()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    owned_from_http(&req)
}

/// Through `Request::from_http`, as the twin will hold an `http` request.
pub fn owned_from_http(req: &http::Request<Vec<u8>>) -> Owned {
    let view = Request::from_http(req, req.body());
    Owned {
        method: view.method.to_owned(),
        path: view.path.to_owned(),
        query: view.query.to_owned(),
        headers: view
            .headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
            .collect(),
        body: view.body.to_vec(),
    }
}

pub fn secret(session: bool) -> sigv4::SigningSecret<'static> {
    sigv4::SigningSecret {
        secret_access_key: SECRET,
        session_token: session.then_some(TOKEN),
    }
}
