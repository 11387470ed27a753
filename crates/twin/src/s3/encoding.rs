//! Keys in XML responses: S3's `encoding-type=url`, and keys XML 1.0 cannot carry.
//!
//! An object key is any UTF-8 string, control characters included, but XML 1.0 has no way to
//! write most characters below U+0020 (not even as `&#1;`), and a raw carriage return comes
//! back from an XML parser as a line feed. So listings take `encoding-type=url` (botocore sends
//! it on every `ListObjectsV2` and decodes the answer itself): the key-valued fields are then
//! URL-encoded and the response says `<EncodingType>url</EncodingType>`.
//!
//! The encoding is S3's, as measured against S3 (form encoding, as Java's `URLEncoder`, with
//! `/` kept): letters, digits, `.`, `-`, `_`, `*` and `/` as they are, a space as `+`, every
//! other byte of the UTF-8 as `%XX` (so `test_file(3).png` is `test_file%283%29.png`, as the
//! S3 model's documentation says, and `a+b` is `a%2Bb`). botocore decodes with `unquote_plus`.
//!
//! When a client did not ask for the encoding and a listing holds a key XML cannot carry, the
//! listing is encoded anyway and says so with `EncodingType`, rather than be invalid XML (which
//! fails every client until the key is deleted). Fields outside listings that echo a key have
//! no `EncodingType` to declare; there, such a key is left out (the caller sent it).

use s3s::dto::EncodingType;
use s3s::{S3ErrorCode, S3Result};

use super::access::s3_error;

/// How the key-valued fields of one listing are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyEncoding {
    url: bool,
}

impl KeyEncoding {
    /// URL-encoded when the client asked (`encoding-type=url`) or when one of `values` cannot
    /// be written in XML as it is.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for an encoding type other than `url`, as S3 answers.
    pub(super) fn choose<'a>(
        requested: Option<&EncodingType>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> S3Result<KeyEncoding> {
        match requested.map(EncodingType::as_str) {
            Some(EncodingType::URL) => Ok(KeyEncoding { url: true }),
            Some(_) => Err(s3_error(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )),
            None => Ok(KeyEncoding {
                url: values.into_iter().any(|v| !xml_carries(v)),
            }),
        }
    }

    /// The response's `EncodingType`.
    pub(super) fn encoding_type(self) -> Option<EncodingType> {
        self.url
            .then(|| EncodingType::from_static(EncodingType::URL))
    }

    /// A key-valued field as the response writes it.
    pub(super) fn field(self, value: &str) -> String {
        if self.url {
            url_encode(value)
        } else {
            value.to_string()
        }
    }

    /// [`field`](Self::field) of an optional field.
    pub(super) fn opt(self, value: Option<String>) -> Option<String> {
        value.map(|v| if self.url { url_encode(&v) } else { v })
    }
}

/// `key` for a response field that has no `EncodingType`: `None` when XML cannot carry it.
pub(super) fn echoed_key(key: String) -> Option<String> {
    xml_carries(&key).then_some(key)
}

/// Whether `text` survives an XML 1.0 document as character data written as it is: no
/// character outside XML's `Char` production, and no carriage return (which parsers turn into a
/// line feed; the serializer writes it raw).
fn xml_carries(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

/// `key` as a URL path (`CompleteMultipartUpload`'s `Location`): RFC 3986's unreserved
/// characters and `/` as they are, every other byte `%XX` (a space is `%20`: in a path `+` is a
/// plus).
pub(super) fn path_encode(key: &str) -> String {
    percent_encode(key, |b| matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'), None)
}

/// S3's URL encoding of a key (see the module documentation).
pub(super) fn url_encode(value: &str) -> String {
    percent_encode(
        value,
        |b| matches!(b, b'.' | b'-' | b'_' | b'*' | b'/'),
        Some('+'),
    )
}

/// `value` with ASCII letters, digits and the bytes `kept` allows as they are, a space as
/// `space` (or `%20`), every other byte as `%XX`.
fn percent_encode(value: &str, kept: impl Fn(u8) -> bool, space: Option<char>) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            _ if b.is_ascii_alphanumeric() || kept(b) => out.push(char::from(b)),
            b' ' if space.is_some() => out.extend(space),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        // The S3 model's own example, and the pairs S3 was measured with.
        assert_eq!(url_encode("test_file(3).png"), "test_file%283%29.png");
        assert_eq!(url_encode("a b.txt"), "a+b.txt");
        assert_eq!(url_encode("a+b.txt"), "a%2Bb.txt");
        assert_eq!(url_encode("100%.csv"), "100%25.csv");
        assert_eq!(url_encode("한글/x.txt"), "%ED%95%9C%EA%B8%80/x.txt");
        assert_eq!(url_encode("ctl\u{1}\u{1b}~*"), "ctl%01%1B%7E*");
        assert_eq!(path_encode("a b+c~/\u{1}é"), "a%20b%2Bc~/%01%C3%A9");
    }

    #[test]
    fn encoding_is_chosen_by_request_or_by_need() {
        let url = EncodingType::from_static("url");
        let asked = KeyEncoding::choose(Some(&url), ["plain"]).unwrap();
        assert_eq!(asked.field("a b"), "a+b");
        assert_eq!(asked.encoding_type().unwrap().as_str(), "url");
        let plain = KeyEncoding::choose(None, ["plain", "tab\tand\nline", "é"]).unwrap();
        assert_eq!(
            (plain.field("a b"), plain.encoding_type()),
            ("a b".into(), None)
        );
        for unwritable in ["\u{1}", "esc\u{1b}", "cr\r", "\u{FFFE}"] {
            let forced = KeyEncoding::choose(None, ["plain", unwritable]).unwrap();
            assert!(forced.encoding_type().is_some(), "{unwritable:?}");
            assert_eq!(echoed_key(unwritable.to_string()), None);
        }
        let other = EncodingType::from_static("base64");
        let err = KeyEncoding::choose(Some(&other), ["k"]).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidArgument);
        assert_eq!(echoed_key("ok".into()).as_deref(), Some("ok"));
    }
}
