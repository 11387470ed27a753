//! Query protocol XML: responses, errors, and a small element builder.

use std::borrow::Cow;
use std::fmt::Display;

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use time::OffsetDateTime;

use crate::{AwsError, HttpResponse, QueryService};

/// `Content-Type` of Query responses, as STS and IAM send it.
pub const XML_CONTENT_TYPE: &str = "text/xml";

/// Escapes text for an XML 1.0 element or attribute.
///
/// `<`, `>`, `&`, `"` and `'` become entities; a carriage return becomes `&#13;` so that XML
/// end-of-line normalization does not turn it into `\n` on the reader's side. Characters that
/// XML 1.0 forbids even as references (C0 controls other than tab, newline and carriage
/// return, U+FFFE, U+FFFF) become U+FFFD: emitting them would make the whole response
/// unparseable for botocore and the SDKs, and dropping them silently would hide that the
/// value was altered.
pub fn escape(text: &str) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(
            c,
            '<' | '>' | '&' | '"' | '\'' | '\r' | '\u{FFFE}' | '\u{FFFF}'
        ) || (c < '\u{20}' && c != '\t' && c != '\n')
    };
    // Bytes first: every character that needs care is an ASCII byte in this set or starts with
    // 0xEF (U+FFFE and U+FFFF are EF BF BE/BF), so text with none of them (keys, secrets,
    // session tokens, ARNs: most of a response) is returned without decoding a character.
    let may_need = |b: u8| {
        matches!(b, b'<' | b'>' | b'&' | b'"' | b'\'' | 0xEF)
            || (b < 0x20 && b != b'\t' && b != b'\n')
    };
    if !text.bytes().any(may_need) || !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if c < '\u{20}' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// ISO 8601 in UTC with whole seconds, as STS and IAM write timestamps:
/// `2026-01-01T00:00:00Z`. Sub-second parts are dropped (truncated), as AWS's are.
pub fn iso8601(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Percent-encodes a policy document as IAM returns it in `GetRole`, `ListRoles`,
/// `GetRolePolicy`, … (`AssumeRolePolicyDocument`, `PolicyDocument`): every byte except the
/// RFC 3986 unreserved characters (`A–Z a–z 0–9 - _ . ~`) becomes `%XX`, spaces included
/// (`%20`), which is what botocore's `unquote` and the SDKs' URL decoders undo.
pub fn iam_policy_encode(document: &str) -> String {
    let mut out = String::with_capacity(document.len() * 3);
    for b in document.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// An element being written; its methods add children and return `&mut Self` to chain.
///
/// Element names come from the handler's code and are written as given; every text value is
/// [`escape`]d.
pub struct Element<'w> {
    w: &'w mut Writer<Vec<u8>>,
}

impl Element<'_> {
    fn emit(&mut self, event: Event<'_>) {
        // Writing into a Vec<u8> cannot fail (its io::Write never errors), so there is no error
        // to report to the handler; the debug assertion documents and checks that.
        let result = self.w.write_event(event);
        debug_assert!(result.is_ok(), "writing XML into memory failed: {result:?}");
    }

    fn open(&mut self, name: &str) {
        self.emit(Event::Start(BytesStart::new(name)));
    }

    fn close(&mut self, name: &str) {
        self.emit(Event::End(BytesEnd::new(name)));
    }

    fn raw_text(&mut self, text: &str) {
        // `escape` has made the text safe; `from_escaped` writes it as is, where quick-xml's own
        // escaping would leave carriage returns and forbidden controls alone.
        self.emit(Event::Text(BytesText::from_escaped(escape(text))));
    }

    /// `<name>value</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        self.raw_text(value);
        self.close(name);
        self
    }

    /// `<name>value</name>` if `value` is `Some`; nothing otherwise (AWS omits absent members).
    pub fn opt_text(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(name, v);
        }
        self
    }

    /// `<name>{value}</name>` for numbers and other `Display` values.
    pub fn display(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.text(name, &value.to_string())
    }

    /// `<name>true</name>` or `<name>false</name>`.
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.text(name, if value { "true" } else { "false" })
    }

    /// `<name>2026-01-01T00:00:00Z</name>` (see [`iso8601`]).
    pub fn timestamp(&mut self, name: &str, value: OffsetDateTime) -> &mut Self {
        self.text(name, &iso8601(value))
    }

    /// `<name>…</name>` with children written by `build`.
    pub fn child(&mut self, name: &str, build: impl FnOnce(&mut Element<'_>)) -> &mut Self {
        self.open(name);
        build(&mut Element { w: &mut *self.w });
        self.close(name);
        self
    }

    /// A list of structures: `<name><member>…</member>…</name>`, each member's children written
    /// by `build`. An empty list is `<name/>`-equivalent (`<name></name>`), as AWS sends one.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut build: impl FnMut(&mut Element<'_>, T),
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.child("member", |e| build(e, item));
        }
        self.close(name);
        self
    }

    /// A list of strings: `<name><member>a</member><member>b</member></name>`.
    pub fn text_list<S: AsRef<str>>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.text("member", item.as_ref());
        }
        self.close(name);
        self
    }

    /// A map of strings, as the Query protocol serializes one:
    /// `<name><entry><key>k</key><value>v</value></entry>…</name>`.
    pub fn map<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Self {
        self.open(name);
        for (k, v) in entries {
            self.child("entry", |e| {
                e.text("key", k.as_ref()).text("value", v.as_ref());
            });
        }
        self.close(name);
        self
    }
}

fn document(xmlns: &str, root: &str, build: impl FnOnce(&mut Element<'_>)) -> Vec<u8> {
    let mut w = Writer::new(Vec::with_capacity(512));
    {
        let mut e = Element { w: &mut w };
        let mut start = BytesStart::new(root);
        // `push_attribute` escapes the value.
        start.push_attribute(("xmlns", xmlns));
        e.emit(Event::Start(start));
        build(&mut e);
        e.close(root);
    }
    w.into_inner()
}

/// The body of a Query success response:
/// `<{action}Response xmlns="…"><{action}Result>…</{action}Result><ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{action}Response>`.
pub fn query_response_body(
    service: &QueryService,
    action: &str,
    request_id: &str,
    build: impl FnOnce(&mut Element<'_>),
) -> Vec<u8> {
    document(service.xmlns, &format!("{action}Response"), |e| {
        e.child(&format!("{action}Result"), build);
        response_metadata(e, request_id);
    })
}

/// The body of a Query success response for an operation without output (`TagRole`,
/// `DeleteRole`, …): AWS sends no `Result` element, only `ResponseMetadata`.
pub fn query_empty_response_body(
    service: &QueryService,
    action: &str,
    request_id: &str,
) -> Vec<u8> {
    document(service.xmlns, &format!("{action}Response"), |e| {
        response_metadata(e, request_id);
    })
}

fn response_metadata(e: &mut Element<'_>, request_id: &str) {
    e.child("ResponseMetadata", |m| {
        m.text("RequestId", request_id);
    });
}

/// A Query success response: 200, `Content-Type: text/xml`, `x-amzn-RequestId`.
pub fn query_response(
    service: &QueryService,
    action: &str,
    request_id: &str,
    build: impl FnOnce(&mut Element<'_>),
) -> HttpResponse {
    HttpResponse::xml(
        200,
        request_id,
        query_response_body(service, action, request_id, build),
    )
}

/// A Query success response without a `Result` element (see [`query_empty_response_body`]).
pub fn query_empty_response(
    service: &QueryService,
    action: &str,
    request_id: &str,
) -> HttpResponse {
    HttpResponse::xml(
        200,
        request_id,
        query_empty_response_body(service, action, request_id),
    )
}

impl AwsError {
    /// The Query error body:
    /// `<ErrorResponse xmlns="…"><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>`.
    pub fn to_query_xml(&self, service: &QueryService, request_id: &str) -> Vec<u8> {
        document(service.xmlns, "ErrorResponse", |e| {
            e.child("Error", |err| {
                err.text("Type", self.fault_type())
                    .text("Code", &self.code)
                    .text("Message", &self.message);
            });
            e.text("RequestId", request_id);
        })
    }

    /// The Query error response: the error's status, `Content-Type: text/xml`,
    /// `x-amzn-RequestId`, and [`to_query_xml`](Self::to_query_xml) as the body.
    pub fn to_query_response(&self, service: &QueryService, request_id: &str) -> HttpResponse {
        HttpResponse::xml(
            self.status,
            request_id,
            self.to_query_xml(service, request_id),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IAM, STS};
    use time::macros::datetime;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(escape("plain"), Cow::Borrowed("plain"));
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\tb\nc\rd\u{0}e\u{1b}f\u{FFFF}"),
            "a\tb\nc&#13;d\u{FFFD}e\u{FFFD}f\u{FFFD}"
        );
        assert_eq!(escape("é€\u{85}"), "é€\u{85}");
    }

    #[test]
    fn success_document_shape() {
        let body = s(query_response_body(
            &STS,
            "GetCallerIdentity",
            "req-1",
            |e| {
                e.text("UserId", "AIDA<&>")
                    .text("Account", "123456789012")
                    .opt_text("Absent", None)
                    .bool("Flag", false)
                    .display("Count", 3)
                    .timestamp("At", datetime!(2026-01-01 01:02:03.999 +01:00))
                    .text_list("Ids", ["a", "b"])
                    .list("Tags", [("k", "v")], |m, (k, v)| {
                        m.text("Key", k).text("Value", v);
                    })
                    .map("Attrs", [("x", "1")])
                    .list("Empty", Vec::<u8>::new(), |_, _| {});
            },
        ));
        assert_eq!(
            body,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
             <UserId>AIDA&lt;&amp;&gt;</UserId><Account>123456789012</Account><Flag>false</Flag><Count>3</Count>\
             <At>2026-01-01T00:02:03Z</At><Ids><member>a</member><member>b</member></Ids>\
             <Tags><member><Key>k</Key><Value>v</Value></member></Tags>\
             <Attrs><entry><key>x</key><value>1</value></entry></Attrs><Empty></Empty>\
             </GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\
             </GetCallerIdentityResponse>"
        );
    }

    #[test]
    fn empty_result_and_errors() {
        assert_eq!(
            s(query_empty_response_body(&IAM, "TagRole", "r")),
            "<TagRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata>\
             <RequestId>r</RequestId></ResponseMetadata></TagRoleResponse>"
        );
        let err = AwsError::no_such_entity("The role with name <x> cannot be found.");
        let resp = err.to_query_response(&IAM, "rid");
        assert_eq!(resp.status, 404);
        assert!(resp
            .headers
            .contains(&("Content-Type", "text/xml".to_owned())));
        assert!(resp
            .headers
            .contains(&("x-amzn-RequestId", "rid".to_owned())));
        assert_eq!(
            s(resp.body),
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
             <Code>NoSuchEntity</Code><Message>The role with name &lt;x&gt; cannot be found.</Message></Error>\
             <RequestId>rid</RequestId></ErrorResponse>"
        );
        let body = s(AwsError::internal_failure("x").to_query_xml(&STS, "r"));
        assert!(body.contains("<Type>Receiver</Type>"), "{body}");
    }

    #[test]
    fn iam_policy_encoding() {
        assert_eq!(
            iam_policy_encode(r#"{"Version": "2012-10-17"} ~é"#),
            "%7B%22Version%22%3A%20%222012-10-17%22%7D%20~%C3%A9"
        );
    }
}
