//! Requests to a running twin's own routes (`/_rolechain/…`) from the command line: JSON in
//! and out over plain HTTP on loopback, with timeouts and a size cap, and errors that say
//! which twin was asked and how it was found.

use std::time::Duration;

use anyhow::{bail, Context as _};
use http::{Method, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The largest answer read (a list of a cluster's service accounts, at most).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running twin, as `rolechain up` recorded it in the data directory (or as given).
pub struct TwinApi {
    base: String,
    from: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A twin's answer: its status and JSON body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The twin's error message (`{"error": …}`), or the status.
    pub fn message(&self) -> String {
        self.body
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| self.status.to_string(), str::to_string)
    }

    /// The answer when it is `200 OK`.
    ///
    /// # Errors
    ///
    /// Any other status, with the twin's message.
    pub fn ok(self) -> anyhow::Result<Answer> {
        if self.status != StatusCode::OK {
            bail!("{}", self.message());
        }
        Ok(self)
    }

    /// The string member `name` of the body (empty when absent).
    pub fn text(&self, name: &str) -> String {
        self.body
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

impl TwinApi {
    /// The twin at `base` (found through `from`, for messages).
    pub fn new(base: String, from: String) -> TwinApi {
        TwinApi {
            base,
            from,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `method path_and_query` with `body` as JSON.
    ///
    /// # Errors
    ///
    /// When the twin cannot be reached, times out, or answers with something that is not JSON.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path_and_query}", self.base);
        let mut req = http::Request::builder().method(method).uri(&url);
        let bytes = match body {
            Some(v) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v)?)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .with_context(|| format!("{url} is not a valid URL"))?;
        let (status, bytes) = self.send(req).await?;
        let body = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status == StatusCode::NOT_FOUND => bail!(
                "the twin at {} (from {}) does not serve {path_and_query}: is it an older `rolechain up`?",
                self.base,
                self.from
            ),
            Err(e) => bail!("{url} answered {status} with a body that is not JSON: {e}"),
        };
        Ok(Answer { status, body })
    }

    /// Sends `req` (an absolute URL, on loopback: the twin or `up`'s agent) and reads the
    /// answer whole, with the timeouts and size cap of every call.
    ///
    /// # Errors
    ///
    /// When it cannot be reached, times out, or answers more than the cap.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let unreachable = || {
            format!(
                "asking the twin at {}, from {} (is `rolechain up` running there? see --data-dir)",
                self.base, self.from
            )
        };
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {TIMEOUT:?}"))
            .with_context(unreachable)?
            .with_context(unreachable)?;
        let status = resp.status();
        let collected = tokio::time::timeout(
            TIMEOUT,
            Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect(),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the answer did not arrive within {TIMEOUT:?}"))
        .with_context(unreachable)?
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(unreachable)?;
        Ok((status, collected.to_bytes()))
    }

    /// The twin's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }
}
