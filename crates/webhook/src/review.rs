//! `admission.k8s.io/v1` AdmissionReview in and out: reading the request the API server sends,
//! and the answer with the mutation core's JSON patch.
//!
//! The review is read as JSON, not as typed Kubernetes objects, so the pod reaches the mutation
//! core with every field it has (also fields newer than the types this crate was built with).

use base64::Engine as _;
use serde_json::{json, Value};

/// A malformed review: answered 400 with this message, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedReview(pub String);

/// What the webhook needs of a review's request.
#[derive(Debug, Clone)]
pub struct PodReview {
    /// `request.uid`, echoed in the response.
    pub uid: String,
    /// The `apiVersion` the review came in (answered in the same).
    pub api_version: String,
    /// The pod's namespace (`request.namespace`, else the object's).
    pub namespace: String,
    /// The pod's service account (`spec.serviceAccountName`, default `default`).
    pub service_account: String,
    /// The pod's name, or `generateName` (for messages).
    pub pod_name: String,
    /// The pod as sent.
    pub pod: Value,
    /// False for a review the webhook lets through untouched (not a pod `CREATE`).
    pub applies: bool,
}

fn malformed(message: impl Into<String>) -> MalformedReview {
    MalformedReview(message.into())
}

/// Reads an AdmissionReview body.
///
/// # Errors
///
/// [`MalformedReview`] for a body that is not an `admission.k8s.io/v1` (or `v1beta1`)
/// AdmissionReview with a `request.uid`, or a pod `CREATE` without an object.
pub fn read(body: &[u8]) -> Result<PodReview, MalformedReview> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not JSON: {e}")))?;
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("apiVersion is missing"))?;
    if api_version != "admission.k8s.io/v1" && api_version != "admission.k8s.io/v1beta1" {
        return Err(malformed(format!(
            "apiVersion {api_version:?} is not admission.k8s.io/v1"
        )));
    }
    if review.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(malformed("kind must be AdmissionReview"));
    }
    let request = review
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| malformed("request is missing"))?;
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| malformed("request.uid is missing"))?
        .to_string();
    let resource_is_pod = request
        .pointer("/resource/resource")
        .and_then(Value::as_str)
        .map_or_else(
            || request.pointer("/kind/kind").and_then(Value::as_str) == Some("Pod"),
            |r| r == "pods",
        );
    let sub_resource = request.get("subResource").and_then(Value::as_str);
    let operation = request.get("operation").and_then(Value::as_str);
    let applies = resource_is_pod && sub_resource.is_none() && operation == Some("CREATE");
    let pod = request.get("object").cloned().unwrap_or(Value::Null);
    if applies && !pod.is_object() {
        return Err(malformed("request.object (the pod) is missing"));
    }
    let namespace = request
        .get("namespace")
        .and_then(Value::as_str)
        .or_else(|| pod.pointer("/metadata/namespace").and_then(Value::as_str))
        .unwrap_or("default")
        .to_string();
    let service_account = pod
        .pointer("/spec/serviceAccountName")
        .or_else(|| pod.pointer("/spec/serviceAccount"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    let pod_name = pod
        .pointer("/metadata/name")
        .or_else(|| pod.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(PodReview {
        uid,
        api_version: api_version.to_string(),
        namespace,
        service_account,
        pod_name,
        pod,
        applies,
    })
}

/// The AdmissionReview answering `review`: allowed, with `patch` when it changes anything,
/// and `warnings`.
pub fn allow(review: &PodReview, patch: Option<&json_patch::Patch>, warnings: &[String]) -> Value {
    let mut response = json!({ "uid": review.uid, "allowed": true });
    if let Some(patch) = patch.filter(|p| !p.0.is_empty()) {
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    json!({
        "apiVersion": review.api_version,
        "kind": "AdmissionReview",
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_create_is_read() {
        let r = read(&review(json!({
            "uid": "u-1", "operation": "CREATE", "namespace": "apps",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "object": {"metadata": {"generateName": "web-"}, "spec": {"serviceAccountName": "reader", "containers": []}}
        })))
        .unwrap();
        assert!(r.applies);
        assert_eq!(
            (
                r.uid.as_str(),
                r.namespace.as_str(),
                r.service_account.as_str(),
                r.pod_name.as_str()
            ),
            ("u-1", "apps", "reader", "web-")
        );
    }

    #[test]
    fn other_operations_and_subresources_do_not_apply() {
        for request in [
            json!({"uid": "u", "operation": "UPDATE", "resource": {"resource": "pods"}, "object": {}}),
            json!({"uid": "u", "operation": "CREATE", "resource": {"resource": "pods"}, "subResource": "ephemeralcontainers", "object": {}}),
            json!({"uid": "u", "operation": "CREATE", "resource": {"resource": "deployments"}, "object": {}}),
        ] {
            assert!(!read(&review(request)).unwrap().applies);
        }
    }

    #[test]
    fn malformed_reviews_name_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "not JSON"),
            (br#"{"kind":"AdmissionReview"}"#, "apiVersion is missing"),
            (br#"{"apiVersion":"v1","kind":"AdmissionReview"}"#, "not admission.k8s.io/v1"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#, "kind must be"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "request is missing"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#, "request.uid"),
        ];
        for (body, words) in cases {
            let e = read(body).unwrap_err();
            assert!(
                e.0.contains(words),
                "{}: {e}",
                String::from_utf8_lossy(body)
            );
        }
        let e = read(&review(
            json!({"uid": "u", "operation": "CREATE", "resource": {"resource": "pods"}}),
        ))
        .unwrap_err();
        assert!(e.0.contains("request.object"), "{e}");
    }

    #[test]
    fn the_answer_carries_the_patch_in_base64() {
        let r = read(&review(json!({"uid": "u-2", "operation": "DELETE"}))).unwrap();
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/x", "value": 1}])).unwrap();
        let answer = allow(&r, Some(&patch), &["w".to_string()]);
        assert_eq!(answer["response"]["uid"], "u-2");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(answer["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&raw).unwrap()[0]["path"],
            "/x"
        );
        assert_eq!(answer["response"]["warnings"], json!(["w"]));
        let empty = allow(&r, Some(&json_patch::Patch(vec![])), &[]);
        assert!(empty["response"].get("patch").is_none());
    }
}
