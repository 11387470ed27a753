//! The XML error bodies the front door answers with before a service handler takes over.
//!
//! Deliberately minimal and isolated: the `awswire` crate owns AWS's wire formats and will
//! replace this file. Everything here goes through [`error_response`].

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

/// Which of AWS's XML error envelopes to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`:
    /// the Query protocol (STS, IAM), also used for services whose protocol is unknown here.
    Query,
    /// `<Error><Code/><Message/><RequestId/></Error>`: S3.
    S3,
}

impl Shape {
    pub(crate) fn for_service(service: &str) -> Shape {
        if sigv4::ServiceRules::for_service(service) == sigv4::ServiceRules::S3 {
            Shape::S3
        } else {
            Shape::Query
        }
    }
}

/// An AWS-shaped XML error. `x-amzn-ErrorType` carries the code too, which is where
/// rest-json clients (EKS, EKS Auth) look when the body is not JSON they can read.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    shape: Shape,
    service: &str,
) -> Response {
    let code_x = escape(code);
    let message_x = escape(message);
    let id_x = escape(request_id);
    let body = match shape {
        Shape::S3 => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code_x}</Code><Message>{message_x}</Message><RequestId>{id_x}</RequestId></Error>"
        ),
        Shape::Query => {
            let kind = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let ns = match service {
                "sts" => " xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"",
                "iam" => " xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"",
                _ => "",
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse{ns}><Error><Type>{kind}</Type><Code>{code_x}</Code><Message>{message_x}</Message></Error><RequestId>{id_x}</RequestId></ErrorResponse>"
            )
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    resp
}

/// XML escaping for element text (quotes need none there); also drops the control characters XML 1.0 cannot carry at all, which a
/// hostile credential scope could otherwise smuggle into a message.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;\"'?");
    }
}
