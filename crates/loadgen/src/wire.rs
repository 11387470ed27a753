//! HTTP/1.1 keep-alive connections, AWS Query requests (unsigned, or signed with `aws-sigv4`)
//! and reading the fields of XML responses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The region every request is signed for.
pub const REGION: &str = "us-east-1";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A server over loopback: where to connect and what to send as `Host`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
}

impl Endpoint {
    /// From a base URL `http://127.0.0.1:PORT` (no path).
    pub fn from_base_url(url: &str) -> anyhow::Result<Endpoint> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url} is not an http:// URL"))?
            .trim_end_matches('/');
        let addr: SocketAddr = host
            .parse()
            .with_context(|| format!("{url} does not name an IP address and port"))?;
        if !addr.ip().is_loopback() {
            bail!("{url} is not a loopback address: the load generator only loads this machine");
        }
        Ok(Endpoint {
            addr,
            host: host.to_string(),
        })
    }
}

/// An access key to sign with.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
}

impl Signer {
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Signer {
        Signer::with_token(access_key_id, secret_access_key, None)
    }

    /// Temporary credentials: the session token goes in `X-Amz-Security-Token`.
    pub fn with_token(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Signer {
        let creds = Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_string),
            None,
            "loadgen",
        );
        Signer {
            identity: creds.into(),
        }
    }
}

/// The form body of a Query request.
pub fn form(params: &[(&str, &str)]) -> Bytes {
    Bytes::from(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish(),
    )
}

/// `POST /` with a form body, without a signature (AssumeRoleWithWebIdentity).
pub fn unsigned(endpoint: &Endpoint, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
    Ok(Request::builder()
        .method("POST")
        .uri("/")
        .header("host", &endpoint.host)
        .header("content-type", FORM)
        .body(Full::new(body))?)
}

/// `POST /` with a form body, signed with SigV4 for `service` now.
pub fn signed(
    endpoint: &Endpoint,
    signer: &Signer,
    service: &str,
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let url = format!("http://{}/", endpoint.host);
    let headers = [("host", endpoint.host.as_str()), ("content-type", FORM)];
    let params = v4::SigningParams::builder()
        .identity(&signer.identity)
        .region(REGION)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut req = Request::builder().method("POST").uri("/");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let mut req = req.body(Full::new(body))?;
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

/// One keep-alive connection, reopened when the server closes it between requests.
pub struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Connection {
        Connection { addr, sender: None }
    }

    async fn open(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let reusable = match self.sender.as_mut() {
            // A server that answered `Connection: close` (or timed the connection out) has
            // closed it: that is not a failed request, so open a new one.
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // Ends when the server or this side closes the connection.
                let _ = conn.await;
            });
            sender.ready().await?;
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection to {}", self.addr))
    }

    /// Sends `req` and reads the whole response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let sender = self.open().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        })
        .await
        .unwrap_or_else(|_| Err(anyhow!("no response within {REQUEST_TIMEOUT:?}")));
        if result.is_err() {
            // Whatever state the connection is in, the next request starts on a new one.
            self.sender = None;
        }
        result
    }
}

/// The text of the first element of each name in `names` (local names, at any depth).
pub fn xml_fields(body: &[u8], names: &[&str]) -> Result<HashMap<String, String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut open: Vec<String> = Vec::new();
    // The text of the innermost open element, entity references resolved.
    let mut text = String::new();
    let mut found = HashMap::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                open.push(e.local_name().into_inner().to_string());
                text.clear();
            }
            Ok(Event::End(_)) => {
                if let Some(name) = open.pop() {
                    if names.contains(&name.as_str()) && !found.contains_key(&name) {
                        found.insert(name, text.trim().to_string());
                    }
                }
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r.xml10_content() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                text.push(resolved);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("not XML: {e}")),
        }
        buf.clear();
    }
    if !open.is_empty() {
        return Err(format!("unclosed element <{}>", open.join("><")));
    }
    Ok(found)
}

/// `CODE: message` of an AWS Query error response, or the start of the body.
pub fn describe_error(status: StatusCode, body: &[u8]) -> String {
    match xml_fields(body, &["Code", "Message"]) {
        Ok(f) if f.contains_key("Code") => format!(
            "HTTP {status} {}: {}",
            f["Code"],
            f.get("Message").map_or("", String::as_str)
        ),
        _ => {
            let text = String::from_utf8_lossy(body);
            let short: String = text.chars().take(200).collect();
            format!("HTTP {status}: {short}")
        }
    }
}

/// Sends one setup request and requires a 200, returning the fields asked for.
pub async fn call(
    endpoint: &Endpoint,
    req: Request<Full<Bytes>>,
    what: &str,
    fields: &[&str],
) -> anyhow::Result<HashMap<String, String>> {
    let mut conn = Connection::new(endpoint.addr);
    let (status, body) = conn.send(req).await.with_context(|| what.to_string())?;
    if status != StatusCode::OK {
        bail!("{what}: {}", describe_error(status, &body));
    }
    let found = xml_fields(&body, fields).map_err(|e| anyhow!("{what}: {e}"))?;
    for f in fields {
        if !found.contains_key(*f) {
            bail!("{what}: the response has no <{f}>");
        }
    }
    Ok(found)
}

/// `GET path` from `addr` (`HOST:PORT`), requiring a 200: the body.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<Bytes> {
    let socket: SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
    let request = Request::get(path)
        .header("Host", addr)
        .body(Full::new(Bytes::new()))?;
    let (status, body) = Connection::new(socket).send(request).await?;
    if status != StatusCode::OK {
        bail!("GET {path} from {addr}: {status}");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_fields_and_rejects_broken_xml() {
        let body = b"<R xmlns=\"x\"><Credentials><AccessKeyId>ASIA1</AccessKeyId></Credentials><Arn>a&amp;b</Arn></R>";
        let f = xml_fields(body, &["AccessKeyId", "Arn", "Missing"]).unwrap();
        assert_eq!(f["AccessKeyId"], "ASIA1");
        assert_eq!(f["Arn"], "a&b");
        assert!(!f.contains_key("Missing"));
        assert!(xml_fields(b"<R><A>x</A>", &["A"]).is_err());
    }

    #[test]
    fn describes_query_errors_by_code() {
        let body = b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>";
        assert_eq!(
            describe_error(StatusCode::FORBIDDEN, body),
            "HTTP 403 Forbidden AccessDenied: no"
        );
    }

    #[test]
    fn refuses_non_loopback_endpoints() {
        assert!(Endpoint::from_base_url("http://127.0.0.1:4566").is_ok());
        assert!(Endpoint::from_base_url("http://10.0.0.1:4566").is_err());
        assert!(Endpoint::from_base_url("https://127.0.0.1:4566").is_err());
    }
}
