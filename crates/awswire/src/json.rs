//! rest-json (EKS, EKS Auth): error responses and timestamps.

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;

use crate::{AwsError, HttpResponse};

/// `Content-Type` of rest-json responses.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A timestamp as rest-json sends it: epoch seconds, a JSON number, with milliseconds as a
/// fraction when there are any (`1573510432.683`, as EKS writes `createdAt`), a plain integer
/// otherwise. botocore and the SDKs read both.
pub fn epoch_seconds(t: OffsetDateTime) -> Value {
    let secs = t.unix_timestamp();
    let millis = t.millisecond();
    if millis == 0 {
        return Value::Number(Number::from(secs));
    }
    // An i64 of seconds since 1970 plus milliseconds is exact in an f64 for any date the twin
    // writes (|secs| < 2^53 / 1000); from_f64 only fails on NaN and infinities.
    let value = secs as f64 + f64::from(millis) / 1000.0;
    Number::from_f64(value).map_or(Value::Number(Number::from(secs)), Value::Number)
}

/// A rest-json success response: `status`, `Content-Type: application/json`,
/// `x-amzn-RequestId`, and `body` serialized.
pub fn json_response(status: u16, request_id: &str, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("Content-Type", JSON_CONTENT_TYPE.to_owned()),
            ("x-amzn-RequestId", request_id.to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

impl AwsError {
    /// The rest-json error response: the error's status, `x-amzn-ErrorType: {code}`,
    /// `x-amzn-RequestId`, and `{"message": "…"}`.
    ///
    /// botocore takes the code from `x-amzn-ErrorType` before the body (cutting it at `:`
    /// and after `#`) and the message from `message` or `Message`; aws-sdk-rust does the same
    /// (header first, then `code`/`__type`; `message`/`Message`/`errorMessage`). No `__type`
    /// is written in the body: the header is what both clients read first, and EKS sends
    /// errors this way.
    pub fn to_rest_json_response(&self, request_id: &str) -> HttpResponse {
        self.to_rest_json_response_with(request_id, None, Map::new())
    }

    /// As [`to_rest_json_response`](Self::to_rest_json_response), with an optional suffix on
    /// the error type (`ResourceNotFoundException:http://internal.amazon.com/coral/…`, as some
    /// AWS services send it; clients cut at `:`) and modeled members besides `message`
    /// (`clusterName`, `nodegroupName`, …). `message` always comes from the error.
    pub fn to_rest_json_response_with(
        &self,
        request_id: &str,
        errortype_suffix: Option<&str>,
        mut fields: Map<String, Value>,
    ) -> HttpResponse {
        fields.insert("message".to_owned(), Value::String(self.message.clone()));
        let error_type = match errortype_suffix {
            Some(suffix) => format!("{}:{suffix}", self.code),
            None => self.code.to_string(),
        };
        HttpResponse {
            status: self.status,
            headers: vec![
                ("Content-Type", JSON_CONTENT_TYPE.to_owned()),
                ("x-amzn-RequestId", request_id.to_owned()),
                ("x-amzn-ErrorType", error_type),
            ],
            body: Value::Object(fields).to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn epoch_seconds_whole_and_fractional() {
        assert_eq!(
            epoch_seconds(datetime!(2026-01-01 00:00:00 UTC)).to_string(),
            "1767225600"
        );
        assert_eq!(
            epoch_seconds(datetime!(2019-11-11 22:13:52.683 UTC)).to_string(),
            "1573510432.683"
        );
        assert_eq!(
            epoch_seconds(datetime!(1969-12-31 23:59:59 UTC)).to_string(),
            "-1"
        );
    }

    #[test]
    fn rest_json_error() {
        let r = AwsError::resource_not_found("No cluster found for name: \"x\".")
            .to_rest_json_response("rid");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.header("x-amzn-errortype"),
            Some("ResourceNotFoundException")
        );
        assert_eq!(r.header("X-Amzn-RequestId"), Some("rid"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "No cluster found for name: \"x\"."})
        );

        let mut extra = Map::new();
        extra.insert("clusterName".into(), "x".into());
        let r = AwsError::resource_not_found("m").to_rest_json_response_with(
            "rid",
            Some("http://internal.amazon.com/coral/com.amazonaws.eks/"),
            extra,
        );
        assert_eq!(
            r.header("x-amzn-ErrorType"),
            Some("ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.eks/")
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "m", "clusterName": "x"})
        );
    }
}
