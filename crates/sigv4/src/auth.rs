//! Reading the SigV4 authentication data out of a request, before any key is known.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::canonical::query_pairs;
use crate::timefmt::{parse_amz_date, parse_http_date};
use crate::{Error, Request};

/// The only algorithm verified here. SigV4a (`AWS4-ECDSA-P256-SHA256`) and SigV2 are refused.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The longest presigned-URL lifetime AWS allows: 7 days.
pub const MAX_PRESIGNED_EXPIRES_SECS: u32 = 604_800;

// Far above anything a real client sends; they bound the work and the size of echoed text for
// hostile input.
const MAX_ACCESS_KEY_LEN: usize = 128;
const MAX_SCOPE_PART_LEN: usize = 64;
const MAX_SIGNED_HEADERS: usize = 64;

/// `AKID/20240101/us-east-1/sts/aws4_request`, split: what the twin routes on (service,
/// region) and looks the key up by (access key id) before verifying.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    /// The access key id (`AKIA…` long-term, `ASIA…` session).
    pub access_key_id: String,
    /// `YYYYMMDD`; must be the date of the request time.
    pub date: String,
    /// The region the client signed for, e.g. `us-east-1`.
    pub region: String,
    /// The service signing name: `sts`, `iam`, `eks`, `eks-auth`, `s3`, …
    pub service: String,
}

impl CredentialScope {
    /// `date/region/service/aws4_request`: the scope line of the string to sign.
    pub fn scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Where the signature travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthLocation {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    Header,
    /// A presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`, … in the query string.
    Query,
}

/// A request whose SigV4 authentication data has been read and checked for shape, not yet
/// verified. Get one from [`parse`]; route on [`SignedRequest::scope`], look the key up, then
/// call [`SignedRequest::verify`].
#[derive(Clone)]
pub struct SignedRequest<'r> {
    pub(crate) request: &'r Request<'r>,
    pub(crate) location: AuthLocation,
    pub(crate) scope: CredentialScope,
    pub(crate) signed_headers_raw: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
    pub(crate) request_time: OffsetDateTime,
    pub(crate) expires_in: Option<u32>,
    pub(crate) security_token: Option<String>,
}

impl std::fmt::Debug for SignedRequest<'_> {
    // The signature and session token are replayable: a Debug print must not carry them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("location", &self.location)
            .field("scope", &self.scope)
            .field("signed_headers", &self.signed_headers)
            .field("request_time", &self.request_time)
            .field("expires_in", &self.expires_in)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl<'r> SignedRequest<'r> {
    /// The credential scope the client signed with.
    pub fn scope(&self) -> &CredentialScope {
        &self.scope
    }

    /// Shorthand for `scope().access_key_id`.
    pub fn access_key_id(&self) -> &str {
        &self.scope.access_key_id
    }

    /// The session token (`x-amz-security-token` header or `X-Amz-Security-Token` parameter),
    /// present for session (`ASIA…`) credentials.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Header-signed or presigned.
    pub fn location(&self) -> AuthLocation {
        self.location
    }

    /// The time the client signed at (`X-Amz-Date`, or the `Date` header).
    pub fn request_time(&self) -> OffsetDateTime {
        self.request_time
    }

    /// `X-Amz-Expires` of a presigned URL, in seconds.
    pub fn expires_in(&self) -> Option<u32> {
        self.expires_in
    }

    /// The header names the client signed, lower-cased, in the order it listed them.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The request this was parsed from.
    pub fn request(&self) -> &'r Request<'r> {
        self.request
    }
}

/// Reads the SigV4 authentication of `request`: the credential scope, signed headers,
/// signature, request time and session token, checking their shape but nothing that needs
/// the secret key or the clock.
///
/// # Errors
///
/// [`Error::MissingAuthenticationToken`] when the request carries no SigV4 authentication,
/// [`Error::IncompleteSignature`] when it carries a malformed or unsupported one,
/// [`Error::UnsupportedAuthMechanism`] when it is signed with Signature Version 2.
pub fn parse<'r>(request: &'r Request<'_>) -> Result<SignedRequest<'r>, Error> {
    let mut auth_headers = authorization_headers(request);
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(incomplete("Only one Authorization header is allowed."));
    }
    match presence(request) {
        Presence::Anonymous => Err(Error::MissingAuthenticationToken),
        Presence::SigV2 => Err(Error::UnsupportedAuthMechanism),
        Presence::SigV4 { header: true, query: true } => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
        )),
        Presence::SigV4 { query: true, .. } => parse_query(request),
        Presence::SigV4 { .. } => match auth_header {
            Some(value) => parse_header(request, value),
            None => Err(Error::MissingAuthenticationToken),
        },
    }
}

/// What authentication a request carries, decided on the decoded parameter names, so that
/// every reader of the request (the router, this parser, an S3 library behind it) agrees on
/// whether it is signed: `X-Amz%2DSignature` is `X-Amz-Signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// No authentication: an `Authorization` header is absent or blank and the query names
    /// none of SigV4's or SigV2's parameters.
    Anonymous,
    /// SigV4 data in the `Authorization` header, the query (a presigned URL), or both.
    SigV4 {
        /// A non-blank `Authorization` header that is not SigV2's.
        header: bool,
        /// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature` or `X-Amz-SignedHeaders`.
        query: bool,
    },
    /// Signature Version 2, which the twin refuses as S3 does in every region opened since
    /// 2014: `Authorization: AWS AKID:signature`, or `AWSAccessKeyId`/`Signature`/
    /// `SignatureVersion` in the query.
    SigV2,
}

impl Presence {
    /// True for anything but [`Presence::Anonymous`]: the request must pass the signature gate.
    pub fn is_signed(self) -> bool {
        self != Presence::Anonymous
    }
}

/// The query parameter names that make a request presigned (SigV4).
const PRESIGN_KEYS: [&str; 4] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
];

/// The query parameter names of Signature Version 2 (S3's presigned URLs and the Query APIs').
const SIGV2_KEYS: [&str; 4] = [
    "AWSAccessKeyId",
    "Signature",
    "SignatureVersion",
    "SignatureMethod",
];

/// Reads which authentication `request` carries (see [`Presence`]). Cheap: no allocation
/// beyond decoding the query's parameter names.
pub fn presence(request: &Request<'_>) -> Presence {
    let mut v2 = false;
    let mut header = false;
    for value in authorization_headers(request) {
        let text = value.trim_ascii_start();
        if text.starts_with(b"AWS ") {
            v2 = true;
        } else {
            header = true;
        }
    }
    let mut query = false;
    for (k, _) in query_pairs(request.query) {
        let named = |names: &[&str]| names.iter().any(|n| k.as_slice() == n.as_bytes());
        query |= named(&PRESIGN_KEYS);
        v2 |= named(&SIGV2_KEYS);
    }
    if v2 {
        Presence::SigV2
    } else if header || query {
        Presence::SigV4 { header, query }
    } else {
        Presence::Anonymous
    }
}

/// The non-blank `Authorization` headers: an empty one is what a client sends when it has
/// nothing, so it counts as absent.
fn authorization_headers<'a>(request: &'a Request<'_>) -> impl Iterator<Item = &'a [u8]> + 'a {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| *v)
        .filter(|v| !v.iter().all(u8::is_ascii_whitespace))
}

pub(crate) fn incomplete(msg: impl Into<String>) -> Error {
    Error::IncompleteSignature(msg.into())
}

/// Makes client text safe to put in an error message: printable ASCII only, bounded length.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

/// AWS echoes the Authorization header in its messages; this echo cuts the signature short so
/// an error log never holds a replayable signature, and bounds the length.
fn redacted_authorization(header: &str) -> String {
    let mut out = String::with_capacity(header.len().min(300));
    let mut rest = header;
    while let Some(pos) = rest.find("Signature=") {
        let (before, after) = rest.split_at(pos + "Signature=".len());
        out.push_str(before);
        let end = after.find(',').unwrap_or(after.len());
        let sig = &after[..end];
        if !sig.trim().is_empty() {
            out.extend(sig.chars().take(4));
            out.push_str("...");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    printable(&out, 256)
}

/// AWS's wording when it cannot split the header into `key=value` pairs: it hashes the header
/// rather than echoing it.
fn hashed_pair_error(header: &[u8]) -> Error {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(header));
    incomplete(format!(
        "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '{hash}'."
    ))
}

fn unsupported_algorithm(alg: &str) -> Error {
    incomplete(format!(
        "Unsupported AWS 'algorithm': '{}'.",
        printable(alg, 64)
    ))
}

fn parse_header<'r>(request: &'r Request<'_>, raw: &[u8]) -> Result<SignedRequest<'r>, Error> {
    let Ok(header) = std::str::from_utf8(raw) else {
        return Err(hashed_pair_error(raw));
    };
    let header = header.trim();
    let (algorithm, params) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(algorithm));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(hashed_pair_error(raw));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            // Unknown components are ignored: they are not part of what is signed.
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header has a duplicate '{}' parameter. Authorization={}",
                printable(key.trim(), 32),
                redacted_authorization(header)
            )));
        }
    }

    let date = date_from_headers(request);
    let mut problems = String::new();
    for (name, value) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if value.is_none_or(str::is_empty) {
            problems.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if matches!(date, DateHeader::Missing) {
        problems.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, problems.is_empty())
    else {
        return Err(incomplete(format!(
            "{problems}Authorization={}",
            redacted_authorization(header)
        )));
    };

    let scope = parse_credential(credential)?;
    let (signed_headers_raw, signed_headers) = parse_signed_headers(signed_headers)?;
    let request_time = match date {
        DateHeader::Parsed(t) => t,
        DateHeader::Missing => {
            return Err(incomplete(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={}",
                redacted_authorization(header)
            )))
        }
        DateHeader::Invalid(got) => return Err(bad_date(&got)),
        DateHeader::Duplicate => return Err(incomplete("Only one X-Amz-Date header is allowed.")),
    };
    let security_token = token(
        header_values(request, "x-amz-security-token"),
        query_values(request, "X-Amz-Security-Token"),
    )?;
    Ok(SignedRequest {
        request: coerce(request),
        location: AuthLocation::Header,
        scope,
        signed_headers_raw,
        signed_headers,
        signature: signature.to_owned(),
        request_time,
        expires_in: None,
        security_token,
    })
}

// Shortens the request's inner lifetime to the borrow's; `Request` is covariant in it.
fn coerce<'r>(request: &'r Request<'_>) -> &'r Request<'r> {
    request
}

fn bad_date(got: &str) -> Error {
    incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        printable(got, 64)
    ))
}

enum DateHeader {
    Parsed(OffsetDateTime),
    Missing,
    Invalid(String),
    Duplicate,
}

/// `X-Amz-Date` wins over `Date`, as in AWS: a client may send both (browsers set `Date`).
fn date_from_headers(request: &Request<'_>) -> DateHeader {
    let amz: Vec<&[u8]> = header_values(request, "x-amz-date").collect();
    type DateParser = fn(&str) -> Option<OffsetDateTime>;
    let (values, parse): (Vec<&[u8]>, DateParser) = if amz.is_empty() {
        (header_values(request, "date").collect(), parse_http_date)
    } else {
        (amz, parse_amz_date)
    };
    match values.as_slice() {
        [] => DateHeader::Missing,
        [one] => {
            let text = String::from_utf8_lossy(one);
            match parse(text.trim()) {
                Some(t) => DateHeader::Parsed(t),
                None => DateHeader::Invalid(text.into_owned()),
            }
        }
        _ => DateHeader::Duplicate,
    }
}

fn header_values<'a>(
    request: &'a Request<'_>,
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    request
        .headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn query_values<'a>(request: &'a Request<'_>, name: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    query_pairs(request.query)
        .filter(move |(k, _)| k.as_slice() == name.as_bytes())
        .map(|(_, v)| v)
}

/// The session token from wherever the client put it; two different ones are refused rather
/// than guessing which one the caller should check.
fn token<'a>(
    headers: impl Iterator<Item = &'a [u8]>,
    query: impl Iterator<Item = Vec<u8>>,
) -> Result<Option<String>, Error> {
    let mut found: Option<Vec<u8>> = None;
    for value in headers.map(|v| v.trim_ascii().to_vec()).chain(query) {
        match &found {
            Some(prev) if *prev != value => {
                return Err(incomplete("The request has more than one security token."));
            }
            _ => found = Some(value),
        }
    }
    match found {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::InvalidClientTokenId),
    }
}

fn parse_credential(credential: &str) -> Result<CredentialScope, Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            printable(credential, 200)
        )));
    };
    if *terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            printable(terminator, 64)
        )));
    }
    let token_like = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !token_like(key, MAX_ACCESS_KEY_LEN) {
        return Err(incomplete("Credential must name a valid access key id."));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid date in the format yyyyMMdd, not '{}'.",
            printable(date, 64)
        )));
    }
    if !token_like(region, MAX_SCOPE_PART_LEN) {
        return Err(Error::wrong_region());
    }
    if !token_like(service, MAX_SCOPE_PART_LEN) {
        return Err(incomplete(
            "Credential should be scoped to a valid service. ",
        ));
    }
    Ok(CredentialScope {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

fn parse_signed_headers(list: &str) -> Result<(String, Vec<String>), Error> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let names: Vec<String> = list.split(';').map(str::to_ascii_lowercase).collect();
    if names.len() > MAX_SIGNED_HEADERS
        || names
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(is_tchar))
    {
        return Err(incomplete(format!(
            "SignedHeaders must be a ';'-separated list of header names, got '{}'.",
            printable(list, 200)
        )));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok((list.to_owned(), names))
}

fn parse_query<'r>(request: &'r Request<'_>) -> Result<SignedRequest<'r>, Error> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Expires",
    ];
    let mut found: [Option<String>; 6] = Default::default();
    for (k, v) in query_pairs(request.query) {
        let Some(i) = NAMES.iter().position(|n| k.as_slice() == n.as_bytes()) else {
            continue;
        };
        let Ok(value) = String::from_utf8(v) else {
            return Err(incomplete(format!(
                "Query-string parameter '{}' is not valid UTF-8.",
                NAMES[i]
            )));
        };
        if found[i].replace(value).is_some() {
            return Err(incomplete(format!(
                "AWS query-string parameter '{}' must appear only once.",
                NAMES[i]
            )));
        }
    }
    let missing = |name: &str| {
        incomplete(format!(
            "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
        ))
    };
    let [algorithm, credential, date, signed_headers, signature, expires] = found;
    // Checked in the order AWS reports them, so the first missing one is named.
    let algorithm = algorithm.ok_or_else(|| missing("X-Amz-Algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(&algorithm));
    }
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("X-Amz-Credential"))?;
    let signature = signature
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("X-Amz-Signature"))?;
    let signed_headers = signed_headers
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let date = date.ok_or_else(|| missing("X-Amz-Date"))?;

    let scope = parse_credential(&credential)?;
    let (signed_headers_raw, signed_headers) = parse_signed_headers(&signed_headers)?;
    let request_time = parse_amz_date(&date).ok_or_else(|| bad_date(&date))?;
    let expires_in = expires.map(|e| parse_expires(&e)).transpose()?;
    let security_token = token(
        header_values(request, "x-amz-security-token"),
        query_values(request, "X-Amz-Security-Token"),
    )?;
    Ok(SignedRequest {
        request: coerce(request),
        location: AuthLocation::Query,
        scope,
        signed_headers_raw,
        signed_headers,
        signature,
        request_time,
        expires_in,
        security_token,
    })
}

fn parse_expires(text: &str) -> Result<u32, Error> {
    let secs: u64 = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate rather than fail on absurd lengths: the range check below rejects them.
        text.bytes().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
    } else {
        return Err(incomplete(format!(
            "X-Amz-Expires should be a number, got '{}'.",
            printable(text, 32)
        )));
    };
    match u32::try_from(secs) {
        Ok(s) if (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&s) => Ok(s),
        _ if secs == 0 => Err(incomplete("X-Amz-Expires must be non-negative and non-zero")),
        _ => Err(incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECS}"
        ))),
    }
}
