//! `awswire`: AWS's wire protocols as the twin's services need them, independent of any
//! service logic, so that handlers stay thin.
//!
//! Pure: no I/O, no clock, no async, no web framework. A server hands it bytes and gets back
//! an [`HttpResponse`] (status, headers, body) to send.
//!
//! - **Query protocol requests** (STS, IAM): [`QueryRequest::parse`] reads the form body and
//!   query string ([`Params`]), checks `Action` and `Version` the way AWS answers them, and
//!   [`Validator`] reads members with the botocore models' constraints ([`rules`],
//!   [`pattern`]), collecting every failure into one `ValidationError` worded as AWS words it.
//! - **Query XML responses**: [`query_response`] with an [`Element`] builder (nested elements,
//!   `<member>` lists, `<entry>` maps, ISO 8601 timestamps, `true`/`false`), and
//!   [`AwsError::to_query_response`] for `<ErrorResponse>`.
//! - **rest-json** (EKS, EKS Auth): [`AwsError::to_rest_json_response`] (status,
//!   `x-amzn-ErrorType`, `{"message": …}`), [`json_response`], [`epoch_seconds`].
//!
//! Request ids are the caller's (the twin's server makes one per request).
//!
//! ```
//! use awswire::{query_response, rules, AwsError, HttpResponse, QueryRequest, STS};
//!
//! const STS_OPERATIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];
//!
//! fn handle(query: &str, body: &[u8]) -> HttpResponse {
//!     let rid = "c0ffee00-0000-4000-8000-000000000000";
//!     serve(query, body, rid).unwrap_or_else(|e| e.to_query_response(&STS, rid))
//! }
//!
//! fn serve(query: &str, body: &[u8], rid: &str) -> Result<HttpResponse, AwsError> {
//!     let req = QueryRequest::parse(&STS, query, Some(body), STS_OPERATIONS)?;
//!     match req.action() {
//!         "AssumeRole" => {
//!             let mut v = req.validator();
//!             let role_arn = v.required_str("RoleArn", &rules::STS_ARN);
//!             let session = v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
//!             let duration = v.int("DurationSeconds", &rules::ROLE_DURATION_SECONDS).unwrap_or(3600);
//!             let tags: Vec<_> = v
//!                 .struct_list("Tags", &rules::TAG_LIST)
//!                 .iter()
//!                 .map(|t| {
//!                     (v.required_str(t.member("Key"), &rules::TAG_KEY),
//!                      v.required_str(t.member("Value"), &rules::TAG_VALUE))
//!                 })
//!                 .collect();
//!             // Required members are read with the proof that every member validated.
//!             let checked = v.finish()?;
//!             let (role_arn, session) = (role_arn.get(&checked), session.get(&checked));
//!             let tags: Vec<(String, String)> =
//!                 tags.into_iter().map(|(k, v)| (k.get(&checked), v.get(&checked))).collect();
//!             // … the service decides; here it grants.
//!             # let _ = (duration, tags);
//!             let expiration = time::OffsetDateTime::UNIX_EPOCH;
//!             Ok(query_response(&STS, "AssumeRole", rid, |r| {
//!                 r.child("Credentials", |c| {
//!                     c.text("AccessKeyId", "ASIAEXAMPLE")
//!                         .text("SecretAccessKey", "secret")
//!                         .text("SessionToken", "token")
//!                         .timestamp("Expiration", expiration);
//!                 })
//!                 .child("AssumedRoleUser", |u| {
//!                     u.text("Arn", &format!("{role_arn}/{session}"))
//!                         .text("AssumedRoleId", &format!("AROAEXAMPLE:{session}"));
//!                 });
//!             }))
//!         }
//!         _ => Err(AwsError::internal_failure("not implemented")),
//!     }
//! }
//!
//! let ok = handle("", b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1\
//!     &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr");
//! assert_eq!(ok.status, 200);
//! let bad = handle("", b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=a");
//! assert_eq!(bad.status, 400);
//! assert!(String::from_utf8_lossy(&bad.body).contains(
//!     "<Code>ValidationError</Code><Message>2 validation errors detected: \
//!      Value null at &apos;roleArn&apos; failed to satisfy constraint: Member must not be null; "));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod form;
mod json;
pub mod pattern;
mod query;
mod xml;

pub use error::AwsError;
pub use form::Params;
pub use json::{epoch_seconds, json_response, JSON_CONTENT_TYPE};
pub use query::{
    has_duplicate_keys, rules, Checked, IntRule, ListRule, Path, QueryRequest, QueryService,
    Required, StrRule, Validator, DUPLICATE_TAG_KEYS, IAM, NO_VERSION_SPECIFIED, STS,
};
pub use xml::{
    escape, iam_policy_encode, iso8601, query_empty_response, query_empty_response_body,
    query_response, query_response_body, Element, XML_CONTENT_TYPE,
};

/// A response to send: status, headers (names as AWS writes them; HTTP/1 servers may
/// lower-case them) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn xml(status: u16, request_id: &str, body: Vec<u8>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![
                ("Content-Type", XML_CONTENT_TYPE.to_owned()),
                ("x-amzn-RequestId", request_id.to_owned()),
            ],
            body,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
