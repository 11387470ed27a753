//! botocore as the real peer: responses rendered here are parsed by botocore's own protocol
//! parsers with the real service models, exactly as boto3 and the AWS CLI parse AWS's.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (default `python3`). Without botocore the test prints
//! a notice and passes, unless `ROLECHAIN_REQUIRE_PEERS=1`, where it fails.

use std::io::Write;
use std::process::{Command, Stdio};

use awswire::{
    epoch_seconds, iam_policy_encode, json_response, query_empty_response, query_response,
    AwsError, HttpResponse, Params, Validator, IAM, STS,
};
use serde_json::{json, Value};
use time::macros::datetime;

/// Parses every case with botocore and prints `{name: parsed}` as JSON. Datetimes become
/// `{"$datetime": isoformat}` so the Rust side can see they were parsed as timestamps.
/// Headers go through botocore's case-insensitive `HeadersDict`, as they do in a real call.
const PARSE_WITH_BOTOCORE: &str = r#"
import datetime, json, sys
import botocore.session, botocore.parsers
from botocore.awsrequest import HeadersDict

session = botocore.session.get_session()

def enc(o):
    if isinstance(o, datetime.datetime):
        return {"$datetime": o.isoformat()}
    if isinstance(o, dict):
        return {k: enc(v) for k, v in o.items()}
    if isinstance(o, list):
        return [enc(v) for v in o]
    return o

out = {}
for case in json.load(sys.stdin):
    model = session.get_service_model(case["service"])
    op = model.operation_model(case["operation"])
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    headers = HeadersDict()
    for k, v in case["headers"]:
        headers[k] = v
    parsed = parser.parse(
        {"body": case["body"].encode("utf-8"), "headers": headers, "status_code": case["status"]},
        op.output_shape,
    )
    parsed.get("ResponseMetadata", {}).pop("HTTPHeaders", None)
    out[case["name"]] = enc(parsed)
print(json.dumps(out))
"#;

fn case(name: &str, service: &str, operation: &str, resp: &HttpResponse) -> Value {
    json!({
        "name": name,
        "service": service,
        "operation": operation,
        "status": resp.status,
        "headers": resp.headers.iter().map(|(k, v)| [k.to_string(), v.clone()]).collect::<Vec<_>>(),
        "body": String::from_utf8(resp.body.clone()).expect("responses are UTF-8"),
    })
}

fn parse_all(cases: &[Value]) -> Value {
    let mut child = Command::new(peers::python())
        .args(["-c", PARSE_WITH_BOTOCORE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(cases).expect("json").as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "botocore parsing failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn role(e: &mut awswire::Element<'_>, name: &str) {
    e.text("Path", "/app/")
        .text("RoleName", name)
        .text("RoleId", "AROAEXAMPLEID0000001")
        .text("Arn", &format!("arn:aws:iam::123456789012:role/app/{name}"))
        .timestamp("CreateDate", datetime!(2026-01-01 00:00:00 UTC))
        .text("AssumeRolePolicyDocument", &iam_policy_encode(TRUST))
        .text("Description", "Tom & Jerry's <role>")
        .display("MaxSessionDuration", 7200);
}

#[test]
fn botocore_parses_what_awswire_writes() {
    if !peers::available("botocore") {
        return;
    }
    let mut cases = Vec::new();

    // STS AssumeRole success.
    let resp = query_response(
        &STS,
        "AssumeRole",
        "11111111-1111-4111-8111-111111111111",
        |r| {
            r.child("Credentials", |c| {
                c.text("AccessKeyId", "ASIAEXAMPLE000000001")
                    .text("SecretAccessKey", "se<cr>et&'\"")
                    .text("SessionToken", "FwoGZXIvYXdzE//token+/=")
                    .timestamp("Expiration", datetime!(2026-01-01 01:00:00 UTC));
            })
            .child("AssumedRoleUser", |u| {
                u.text("AssumedRoleId", "AROAEXAMPLEID0000001:s1")
                    .text("Arn", "arn:aws:sts::123456789012:assumed-role/app/s1");
            })
            .display("PackedPolicySize", 6)
            .text("SourceIdentity", "alice@example.com");
        },
    );
    cases.push(case("assume_role", "sts", "AssumeRole", &resp));

    // IAM GetRole success.
    let resp = query_response(
        &IAM,
        "GetRole",
        "22222222-2222-4222-8222-222222222222",
        |r| {
            r.child("Role", |e| {
                role(e, "web");
                e.list("Tags", [("team", "a&b"), ("env", "")], |m, (k, v)| {
                    m.text("Key", k).text("Value", v);
                })
                .child("RoleLastUsed", |u| {
                    u.timestamp("LastUsedDate", datetime!(2026-02-03 04:05:06.789 UTC))
                        .text("Region", "us-east-1");
                });
            });
        },
    );
    cases.push(case("get_role", "iam", "GetRole", &resp));

    // IAM ListRoles, truncated.
    let resp = query_response(
        &IAM,
        "ListRoles",
        "33333333-3333-4333-8333-333333333333",
        |r| {
            r.list("Roles", ["a", "b"], role)
                .bool("IsTruncated", true)
                .text("Marker", "next page+/=");
        },
    );
    cases.push(case("list_roles", "iam", "ListRoles", &resp));

    // IAM TagRole: no Result element.
    let resp = query_empty_response(&IAM, "TagRole", "44444444-4444-4444-8444-444444444444");
    cases.push(case("tag_role", "iam", "TagRole", &resp));

    // STS error, with characters that need escaping and a CR and a control character.
    let err = AwsError::access_denied(
        "User: arn:aws:iam::123456789012:user/a is not authorized to perform: sts:AssumeRole on resource: \"r\" & <x>\r\nnext\u{1}",
    );
    cases.push(case(
        "sts_error",
        "sts",
        "AssumeRole",
        &err.to_query_response(&STS, "rid-sts"),
    ));

    // IAM errors: NoSuchEntity, and a ValidationError from the validator.
    let err = AwsError::no_such_entity("The role with name nope cannot be found.");
    cases.push(case(
        "iam_error",
        "iam",
        "GetRole",
        &err.to_query_response(&IAM, "rid-iam"),
    ));
    let params = Params::parse(b"RoleName=bad%20name").expect("form");
    let mut v = Validator::new(&params);
    let _ = v.required_str("RoleName", &awswire::rules::ROLE_NAME);
    let _ = v.required_str("AssumeRolePolicyDocument", &awswire::rules::POLICY_DOCUMENT);
    let err = v.finish().expect_err("invalid");
    cases.push(case(
        "iam_validation",
        "iam",
        "CreateRole",
        &err.to_query_response(&IAM, "rid-val"),
    ));

    // EKS rest-json error, with a coral suffix on the error type, and a success with a timestamp.
    let err = AwsError::resource_not_found("No cluster found for name: nope.");
    let resp = err.to_rest_json_response_with(
        "rid-eks",
        Some("http://internal.amazon.com/coral/com.amazonaws.eks/"),
        serde_json::Map::new(),
    );
    cases.push(case("eks_error", "eks", "DescribeCluster", &resp));
    let resp = json_response(
        200,
        "rid-eks-ok",
        &json!({"cluster": {"name": "c1", "arn": "arn:aws:eks:us-east-1:123456789012:cluster/c1",
            "createdAt": epoch_seconds(datetime!(2019-11-11 22:13:52.683 UTC)), "status": "ACTIVE"}}),
    );
    cases.push(case("eks_ok", "eks", "DescribeCluster", &resp));
    // EKS Auth's AccessDeniedException is 400 in its model.
    let err = AwsError::access_denied_exception("denied", 400);
    cases.push(case(
        "eks_auth_error",
        "eks-auth",
        "AssumeRoleForPodIdentity",
        &err.to_rest_json_response("rid-auth"),
    ));

    let parsed = parse_all(&cases);
    let dt = |s: &str| json!({"$datetime": s});

    let ar = &parsed["assume_role"];
    assert_eq!(
        ar["Credentials"],
        json!({"AccessKeyId": "ASIAEXAMPLE000000001", "SecretAccessKey": "se<cr>et&'\"",
               "SessionToken": "FwoGZXIvYXdzE//token+/=", "Expiration": dt("2026-01-01T01:00:00+00:00")})
    );
    assert_eq!(
        ar["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::123456789012:assumed-role/app/s1"
    );
    assert_eq!(
        ar["AssumedRoleUser"]["AssumedRoleId"],
        "AROAEXAMPLEID0000001:s1"
    );
    assert_eq!(ar["PackedPolicySize"], 6);
    assert_eq!(ar["SourceIdentity"], "alice@example.com");
    assert_eq!(
        ar["ResponseMetadata"]["RequestId"],
        "11111111-1111-4111-8111-111111111111"
    );
    assert_eq!(ar["ResponseMetadata"]["HTTPStatusCode"], 200);

    let r = &parsed["get_role"]["Role"];
    assert_eq!(r["Path"], "/app/");
    assert_eq!(r["RoleName"], "web");
    assert_eq!(r["RoleId"], "AROAEXAMPLEID0000001");
    assert_eq!(r["Arn"], "arn:aws:iam::123456789012:role/app/web");
    assert_eq!(r["CreateDate"], dt("2026-01-01T00:00:00+00:00"));
    assert_eq!(r["Description"], "Tom & Jerry's <role>");
    assert_eq!(r["MaxSessionDuration"], 7200);
    assert_eq!(
        r["Tags"],
        json!([{"Key": "team", "Value": "a&b"}, {"Key": "env", "Value": ""}])
    );
    // Second precision on the wire: the .789 is dropped, as AWS does.
    assert_eq!(
        r["RoleLastUsed"],
        json!({"LastUsedDate": dt("2026-02-03T04:05:06+00:00"), "Region": "us-east-1"})
    );
    // The parser leaves the document URL-encoded (boto3's IAM handler decodes it later).
    let encoded = r["AssumeRolePolicyDocument"].as_str().expect("string");
    assert_eq!(encoded, iam_policy_encode(TRUST));
    assert!(
        encoded.starts_with("%7B%22Version%22%3A%222012-10-17%22"),
        "{encoded}"
    );

    let lr = &parsed["list_roles"];
    assert_eq!(lr["IsTruncated"], true);
    assert_eq!(lr["Marker"], "next page+/=");
    let names: Vec<&str> = lr["Roles"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["RoleName"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a", "b"]);

    assert_eq!(
        parsed["tag_role"]["ResponseMetadata"]["RequestId"],
        "44444444-4444-4444-8444-444444444444"
    );

    let e = &parsed["sts_error"];
    assert_eq!(e["Error"]["Code"], "AccessDenied");
    assert_eq!(e["Error"]["Type"], "Sender");
    assert_eq!(
        e["Error"]["Message"],
        "User: arn:aws:iam::123456789012:user/a is not authorized to perform: sts:AssumeRole on resource: \"r\" & <x>\r\nnext\u{FFFD}"
    );
    assert_eq!(e["ResponseMetadata"]["RequestId"], "rid-sts");
    assert_eq!(e["ResponseMetadata"]["HTTPStatusCode"], 403);

    let e = &parsed["iam_error"];
    assert_eq!(e["Error"]["Code"], "NoSuchEntity");
    assert_eq!(
        e["Error"]["Message"],
        "The role with name nope cannot be found."
    );
    assert_eq!(e["ResponseMetadata"]["RequestId"], "rid-iam");
    assert_eq!(e["ResponseMetadata"]["HTTPStatusCode"], 404);

    let e = &parsed["iam_validation"];
    assert_eq!(e["Error"]["Code"], "ValidationError");
    assert_eq!(
        e["Error"]["Message"],
        "2 validation errors detected: Value 'bad name' at 'roleName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\w+=,.@-]+; \
         Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(e["ResponseMetadata"]["HTTPStatusCode"], 400);

    let e = &parsed["eks_error"];
    assert_eq!(e["Error"]["Code"], "ResourceNotFoundException");
    assert_eq!(e["Error"]["Message"], "No cluster found for name: nope.");
    assert_eq!(e["ResponseMetadata"]["RequestId"], "rid-eks");
    assert_eq!(e["ResponseMetadata"]["HTTPStatusCode"], 404);

    let ok = &parsed["eks_ok"];
    assert_eq!(ok["cluster"]["name"], "c1");
    assert_eq!(
        ok["cluster"]["createdAt"],
        dt("2019-11-11T22:13:52.683000+00:00")
    );
    assert_eq!(ok["ResponseMetadata"]["RequestId"], "rid-eks-ok");

    let e = &parsed["eks_auth_error"];
    assert_eq!(e["Error"]["Code"], "AccessDeniedException");
    assert_eq!(e["Error"]["Message"], "denied");
    assert_eq!(e["ResponseMetadata"]["HTTPStatusCode"], 400);
}
