//! `application/x-www-form-urlencoded` parameters: Query protocol bodies and query strings.

use std::collections::BTreeMap;

use crate::AwsError;

/// Decoded request parameters, keyed by name.
///
/// Kept in a sorted map so that a member list (`Tags.member.1.Key`, …) is one range scan
/// rather than a pass over every parameter per list, which keeps nested lists linear even
/// for hostile requests with many thousands of parameters.
///
/// A repeated key keeps its **first** value. AWS does not document this; first-wins is what
/// Java servlet containers (`getParameter`) do, and since SigV4 signs the whole body or query,
/// a repeated key can only come from the caller itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `application/x-www-form-urlencoded` text: a POST body or a GET query string
    /// (without `?`). `+` is a space, `%XX` a byte; the decoded bytes must be UTF-8. Empty
    /// segments (`a=1&&b=2`) are skipped; a segment without `=` is a key with an empty value,
    /// which is how botocore sends an empty list (`Tags=`).
    ///
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8, are
    /// `MalformedQueryString` (404, as AWS's common errors document it): decoding leniently, as
    /// `form_urlencoded` does, would hand a handler a value the caller did not send.
    pub fn parse(input: &[u8]) -> Result<Params, AwsError> {
        let mut params = Params::new();
        for segment in input.split(|&b| b == b'&') {
            if segment.is_empty() {
                continue;
            }
            let (key, value) = match segment.iter().position(|&b| b == b'=') {
                Some(i) => (&segment[..i], &segment[i + 1..]),
                None => (segment, &b""[..]),
            };
            let key = decode(key)?;
            let value = decode(value)?;
            params.insert(key, value);
        }
        Ok(params)
    }

    /// The value of `key` in form text: exactly `Params::parse(input)?.get(key)` (the first
    /// value; an error for a malformed segment anywhere, the same one), without building the
    /// map. The front door reads an unsigned call's `Action` this way before the service parses
    /// the whole body, rather than decoding and copying a kilobyte-long web identity token
    /// twice.
    pub fn first(input: &[u8], key: &str) -> Result<Option<String>, AwsError> {
        let mut found = None;
        for segment in input.split(|&b| b == b'&') {
            if segment.is_empty() {
                continue;
            }
            let (k, value) = match segment.iter().position(|&b| b == b'=') {
                Some(i) => (&segment[..i], &segment[i + 1..]),
                None => (segment, &b""[..]),
            };
            if found.is_none() && decode(k)? == key {
                found = Some(decode(value)?);
            } else {
                if found.is_some() {
                    decode(k)?;
                }
                check(value)?;
            }
        }
        Ok(found)
    }

    /// Adds a parameter unless the key is already present (first value wins).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.entry(key.into()).or_insert_with(|| value.into());
    }

    /// Adds every parameter of `other` whose key is not present yet: a POST's query string
    /// first, then its body, as AWS reads both.
    pub fn merge(&mut self, other: Params) {
        for (k, v) in other.map {
            self.map.entry(k).or_insert(v);
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Whether `key` is present (possibly with an empty value).
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Every parameter whose key starts with `prefix`, in key order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.map
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// All parameters, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of distinct keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (k, v) in iter {
            params.insert(k, v);
        }
        params
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn not_utf8() -> AwsError {
    AwsError::malformed_query_string("The request contains a parameter that is not valid UTF-8")
}

/// Whether [`decode`] accepts `raw`, with its error when it does not. Without a `%` the
/// decoded bytes are the raw ones with `+` made a space, so they are UTF-8 exactly when the raw
/// bytes are, and nothing needs copying.
fn check(raw: &[u8]) -> Result<(), AwsError> {
    if raw.contains(&b'%') {
        return decode(raw).map(drop);
    }
    std::str::from_utf8(raw).map(drop).map_err(|_| not_utf8())
}

/// Strict form decoding of one key or value.
fn decode(raw: &[u8]) -> Result<String, AwsError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = raw
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(raw.get(i + 2).copied().and_then(hex));
                let Some((hi, lo)) = pair else {
                    let shown: String =
                        String::from_utf8_lossy(&raw[i..raw.len().min(i + 3)]).into_owned();
                    return Err(AwsError::malformed_query_string(format!(
                        "The request contains an invalid percent-encoding: '{shown}'"
                    )));
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => {
                // The run up to the next escape, copied at once: most values are one long run
                // (a web identity token: a kilobyte or more, byte by byte before).
                let run = raw[i..]
                    .iter()
                    .position(|&b| b == b'+' || b == b'%')
                    .unwrap_or(raw.len() - i);
                out.extend_from_slice(&raw[i..i + run]);
                i += run;
                continue;
            }
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| not_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let p = Params::parse(b"RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%2Bb&Name=a+b%20c&Emoji=%F0%9F%98%80&Lower=%c3%a9").unwrap();
        assert_eq!(p.get("RoleArn"), Some("arn:aws:iam::1:role/a+b"));
        assert_eq!(p.get("Name"), Some("a b c"));
        assert_eq!(p.get("Emoji"), Some("😀"));
        assert_eq!(p.get("Lower"), Some("é"));
        let p = Params::parse(b"a%3Db=c%26d=e").unwrap();
        assert_eq!(p.get("a=b"), Some("c&d=e"), "only the first '=' splits");
    }

    #[test]
    fn empty_segments_bare_keys_and_repeats() {
        let p = Params::parse(b"&&Tags=&Flag&=v&A=1&A=2&").unwrap();
        assert_eq!(p.get("Tags"), Some(""));
        assert_eq!(p.get("Flag"), Some(""));
        assert_eq!(p.get(""), Some("v"));
        assert_eq!(p.get("A"), Some("1"), "first value wins");
        assert_eq!(p.len(), 4);
        assert!(Params::parse(b"").unwrap().is_empty());

        let mut q = Params::parse(b"A=query").unwrap();
        q.merge(Params::parse(b"A=body&B=body").unwrap());
        assert_eq!((q.get("A"), q.get("B")), (Some("query"), Some("body")));
    }

    #[test]
    fn first_is_parse_then_get() {
        for input in [
            &b"Action=A&Action=B"[..],
            b"&&Tags=&Action&=v",
            b"X=1&Act%69on=%41ssume+Role",
            b"Action=A&bad=%zz",
            b"bad=%zz&Action=A",
            b"Action=A&t=\xff",
            b"Action=%ff&t=1",
            b"Act%zz=1&Action=A",
            b"Action=A&%zz=1",
            b"t=a%E2%82%ACb+c&Action=A",
            b"",
        ] {
            let parsed = Params::parse(input).map(|p| p.get("Action").map(str::to_owned));
            assert_eq!(
                Params::first(input, "Action"),
                parsed,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn malformed_escapes_and_utf8_are_errors() {
        for bad in [
            &b"a=%"[..],
            b"a=%4",
            b"a=%zz",
            b"a=%4g",
            b"%=1",
            b"a=1&b=%%41",
            b"a=%C3",
            b"a=\xff",
            b"a=%ff%fe",
        ] {
            let e = Params::parse(bad).unwrap_err();
            assert_eq!(
                (&*e.code, e.status),
                ("MalformedQueryString", 404),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let e = Params::parse(b"a=%zz").unwrap_err();
        assert_eq!(
            e.message,
            "The request contains an invalid percent-encoding: '%zz'"
        );
        // A multi-byte character right after '%' is reported without splitting it.
        let e = Params::parse("a=%é".as_bytes()).unwrap_err();
        assert_eq!(e.code, "MalformedQueryString");
    }

    #[test]
    fn prefix_scan() {
        let p = Params::parse(b"Tags.member.1.Key=a&Tags.member.2.Key=b&Tagsx=c&Tag=d").unwrap();
        let keys: Vec<&str> = p.with_prefix("Tags.").map(|(k, _)| k).collect();
        assert_eq!(keys, ["Tags.member.1.Key", "Tags.member.2.Key"]);
    }

    #[test]
    fn huge_inputs() {
        // 8 MiB value and 100k parameters: linear, no panic.
        let mut body = b"Policy=".to_vec();
        body.extend(std::iter::repeat_n(b"%41+".iter().copied(), 2 << 20).flatten());
        let p = Params::parse(&body).unwrap();
        assert_eq!(p.get("Policy").map(str::len), Some(4 << 20));

        let many: String = (0..100_000).map(|i| format!("K{i}=v&")).collect();
        let p = Params::parse(many.as_bytes()).unwrap();
        assert_eq!(p.len(), 100_000);

        let mut members = String::new();
        for i in 1..=20_000 {
            members.push_str(&format!(
                "ContextEntries.member.{i}.ContextKeyValues.member.1=v&"
            ));
        }
        let p = Params::parse(members.as_bytes()).unwrap();
        let mut v = crate::Validator::new(&p);
        let entries = v.struct_list("ContextEntries", &crate::ListRule::ANY);
        assert_eq!(entries.len(), 20_000);
        let mut n = 0;
        for e in &entries {
            n += v
                .str_list(
                    e.member("ContextKeyValues"),
                    &crate::ListRule::ANY,
                    &crate::StrRule::ANY,
                )
                .len();
        }
        assert_eq!(n, 20_000);
        assert!(v.finish().is_ok());
    }
}
