//! One signature gate for every service, tried as an attacker would over loopback: presigned
//! S3 URLs whose SigV4 parameter names are percent-encoded (once decided "unsigned" and
//! verified by another parser with a 10-year expiry), SigV2 presigned URLs and headers, a
//! presigned S3 URL scoped to `sts`, credential scopes naming regions that do not exist,
//! upper-case hex signatures, and browser-form uploads that carry their signature in the body.
//! Every one is refused with AWS's code, and none returns or stores an object.

mod common;
mod sts_support;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_sigv4::http_request::SignatureLocation;
use common::wire::{send, Reply, Signer};
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Bytes;
use sts_support::*;
use twin::{IamService, S3Service};

/// The twin with S3 and IAM beside STS.
async fn start_gate() -> Twin {
    start_with(|server, store, _sts| {
        let decisions = server.decisions().clone();
        server
            .register_streaming(Arc::new(S3Service::new(
                Arc::clone(store),
                decisions.clone(),
            )))
            .unwrap();
        server
            .register(Arc::new(IamService::new(Arc::clone(store), decisions)))
            .unwrap();
    })
    .await
}

fn xml_code(text: &str) -> &str {
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("", |(code, _)| code)
}

/// A request with its query's SigV4 names spelled `X-Amz%2D…`: the same names, decoded.
fn encode_presign_names(mut req: http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let uri = req.uri().to_string().replace("X-Amz-", "X-Amz%2D");
    *req.uri_mut() = uri.parse().unwrap();
    req
}

fn get(uri: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The object is not there (or not readable by the bucket owner's admin): nothing was stored.
async fn absent(twin: &Twin, signer: &Signer<'_>, key: &str) {
    let head = send(twin.addr, signer.request(twin.addr, "HEAD", key, b"")).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND, "{key}: {}", head.text());
}

fn refused(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    let text = reply.text();
    assert_eq!(reply.status, status, "{what}: {text}");
    assert_eq!(xml_code(&text), code, "{what}: {text}");
    // S3's envelope, never the picture.
    assert!(text.contains("<Error><Code>"), "{what}: {text}");
    assert!(
        !reply.body.starts_with(&[0xff, 0xd8]),
        "{what}: got the JPEG"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_presigned_urls_pass_the_one_signature_gate() {
    let twin = start_gate().await;
    let addr: SocketAddr = twin.addr;
    let presign = Signer {
        service: "s3",
        credentials: &twin.shared_admin,
        location: SignatureLocation::QueryParams,
        content_type: "application/octet-stream",
    };
    let header = Signer {
        location: SignatureLocation::Headers,
        ..presign
    };
    const CAT: &str = "/pics/indoor-cat.jpg";

    // The baseline: a one-minute presigned GET reads the picture, with plain or encoded names
    // (they are the same names).
    for (what, req) in [
        ("plain", presign.request(addr, "GET", CAT, b"")),
        (
            "encoded",
            encode_presign_names(presign.request(addr, "GET", CAT, b"")),
        ),
    ] {
        let ok = send(addr, req).await;
        assert_eq!(ok.status, StatusCode::OK, "{what}: {}", ok.text());
        assert_eq!(ok.body.len(), 517);
    }

    // A validly signed 10-year URL, names plain or percent-encoded: refused before any
    // signature check, as S3 refuses expiries beyond 7 days.
    let ten_years = 10 * 365 * 24 * 3600;
    for (what, req) in [
        (
            "10-year expiry",
            presign.request_in(addr, "GET", CAT, b"", "us-east-1", ten_years),
        ),
        (
            "10-year expiry, encoded names",
            encode_presign_names(presign.request_in(addr, "GET", CAT, b"", "us-east-1", ten_years)),
        ),
    ] {
        let reply = send(addr, req).await;
        refused(
            &reply,
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            what,
        );
        assert!(
            reply
                .text()
                .contains("X-Amz-Expires must be less than a week"),
            "{}",
            reply.text()
        );
    }

    // A URL presigned for STS, not S3, with encoded names: routed by its scope to STS, which
    // has no such call; never S3's object.
    let sts_scoped = Signer {
        service: "sts",
        ..presign
    };
    let reply = send(
        addr,
        encode_presign_names(sts_scoped.request(addr, "GET", CAT, b"")),
    )
    .await;
    assert!(
        reply.status.is_client_error(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    assert!(
        !reply.body.starts_with(&[0xff, 0xd8]),
        "sts-scoped URL got the JPEG"
    );

    // SigV2, presigned GET and PUT with a 100-year expiry, and in the header: refused as S3
    // refuses it, whatever the signature.
    let access_key = twin.shared_admin.access_key_id();
    for (what, req) in [
        (
            "SigV2 presigned GET",
            get(&format!(
                "{CAT}?AWSAccessKeyId={access_key}&Expires=4102444800&Signature=bm90LWEtc2lnbmF0dXJl"
            )),
        ),
        (
            "SigV2 presigned PUT",
            http::Request::put(format!(
                "/pics/planted.txt?AWSAccessKeyId={access_key}&Expires=4102444800&Signature=bm90LWEtc2lnbmF0dXJl"
            ))
            .body(Full::new(Bytes::from_static(b"planted")))
            .unwrap(),
        ),
        (
            "SigV2 presigned GET, encoded name",
            get(&format!("{CAT}?AWSAccessKeyId={access_key}&Expires=4102444800&%53ignature=x")),
        ),
        (
            "SigV2 header",
            http::Request::get(CAT)
                .header("authorization", format!("AWS {access_key}:bm90LWEtc2lnbmF0dXJl"))
                .header("date", "Tue, 01 Dec 2026 00:00:00 GMT")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
    ] {
        let reply = send(addr, req).await;
        refused(&reply, StatusCode::BAD_REQUEST, "InvalidRequest", what);
        assert!(
            reply.text().contains("Please use AWS4-HMAC-SHA256."),
            "{what}: {}",
            reply.text()
        );
    }
    absent(&twin, &header, "/pics/planted.txt").await;

    // A region that does not exist, in the header or the query.
    let reply = send(
        addr,
        header.request_in(addr, "GET", CAT, b"", "zz-bogus-9", 60),
    )
    .await;
    refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "AuthorizationHeaderMalformed",
        "bogus region",
    );
    assert!(reply.text().contains("'zz-bogus-9'"), "{}", reply.text());
    let reply = send(
        addr,
        presign.request_in(addr, "GET", CAT, b"", "zz-bogus-9", 60),
    )
    .await;
    refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "AuthorizationQueryParametersError",
        "bogus region, presigned",
    );
    // Any real region is S3's to serve.
    let ok = send(
        addr,
        header.request_in(addr, "GET", CAT, b"", "eu-west-1", 60),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    // A browser-form upload signs its policy inside the body: not served, not stored.
    let boundary = "rolechainboundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nplanted-form.txt\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"AWSAccessKeyId\"\r\n\r\n{access_key}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\nx\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nplanted\r\n\
         --{boundary}--\r\n"
    );
    let reply = send(
        addr,
        http::Request::post("/pics")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Full::new(Bytes::from(form)))
            .unwrap(),
    )
    .await;
    refused(
        &reply,
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "POST form upload",
    );
    absent(&twin, &header, "/pics/planted-form.txt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_services_check_the_region_and_the_signatures_case() {
    let twin = start_gate().await;
    let addr = twin.addr;
    let signer = |service| Signer {
        service,
        credentials: &twin.dev_admin,
        location: SignatureLocation::Headers,
        content_type: "application/x-www-form-urlencoded; charset=utf-8",
    };
    let (sts, iam) = (signer("sts"), signer("iam"));
    let caller = b"Action=GetCallerIdentity&Version=2011-06-15";
    let roles = b"Action=ListRoles&Version=2010-05-08";

    let region_refused = |reply: Reply, what: &str| {
        let text = reply.text();
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {text}");
        assert_eq!(xml_code(&text), "SignatureDoesNotMatch", "{what}: {text}");
        assert!(
            text.contains("Credential should be scoped to a valid region."),
            "{what}: {text}"
        );
        assert!(text.contains("<ErrorResponse"), "{what}: {text}");
    };
    region_refused(
        send(
            addr,
            sts.request_in(addr, "POST", "/", caller, "zz-bogus-9", 60),
        )
        .await,
        "STS in zz-bogus-9",
    );
    // IAM is global: only us-east-1 in the aws partition.
    region_refused(
        send(
            addr,
            iam.request_in(addr, "POST", "/", roles, "us-west-2", 60),
        )
        .await,
        "IAM in us-west-2",
    );
    region_refused(
        send(
            addr,
            iam.request_in(addr, "POST", "/", roles, "zz-bogus-9", 60),
        )
        .await,
        "IAM in zz-bogus-9",
    );
    for (what, req) in [
        (
            "STS in eu-west-1",
            sts.request_in(addr, "POST", "/", caller, "eu-west-1", 60),
        ),
        ("IAM in us-east-1", iam.request(addr, "POST", "/", roles)),
    ] {
        let ok = send(addr, req).await;
        assert_eq!(ok.status, StatusCode::OK, "{what}: {}", ok.text());
    }

    // The right signature spelled in upper-case hex is not the signature.
    let mut upper = sts.request(addr, "POST", "/", caller);
    let auth = upper.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let (head, sig) = auth.rsplit_once("Signature=").unwrap();
    upper.headers_mut().insert(
        "authorization",
        format!("{head}Signature={}", sig.to_ascii_uppercase())
            .parse()
            .unwrap(),
    );
    let reply = send(addr, upper).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(
        xml_code(&reply.text()),
        "SignatureDoesNotMatch",
        "{}",
        reply.text()
    );

    // SigV2 on a Query API: refused in the Query envelope.
    let reply = send(
        addr,
        get("/?Action=GetCallerIdentity&Version=2011-06-15&SignatureVersion=2&SignatureMethod=HmacSHA256&AWSAccessKeyId=AKIDEXAMPLE&Timestamp=2026-12-01T00%3A00%3A00Z&Signature=eA%3D%3D"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(
        xml_code(&reply.text()),
        "InvalidRequest",
        "{}",
        reply.text()
    );
    assert!(reply.text().contains("<ErrorResponse"), "{}", reply.text());
}
