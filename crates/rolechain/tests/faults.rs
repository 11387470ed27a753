//! `rolechain up`'s fault API as another project's test uses it: a rule set over plain HTTP,
//! as `curl` sends it, fails STS for the AWS CLI and for an unsigned
//! `AssumeRoleWithWebIdentity` with the injected error, leaves IAM alone, shows in the metrics,
//! and is gone after a restart (rules live in memory only).
//!
//! The AWS CLI part runs when `$ROLECHAIN_PYTHON` (default `python3`) has awscli; without it
//! the test prints a notice and checks the rest, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod support;

use support::*;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const WEB_IDENTITY: &str = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::111111111111:role/none&RoleSessionName=s&WebIdentityToken=not.a.token";

#[test]
fn an_sts_outage_set_over_http_fails_real_clients_until_a_restart() {
    let dir = TempDir::new("faults");
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    let listen = up.addr().to_string();

    let (status, rules) = http(
        &listen,
        "POST",
        "/_rolechain/faults",
        &[JSON],
        r#"[{"service":"sts","error":{"statusCode":503,"code":"ServiceUnavailable"}}]"#,
    );
    assert_eq!(status, 200, "{rules}");
    assert_eq!(
        rules,
        r#"[{"service":"sts","probability":1.0,"error":{"statusCode":503,"code":"ServiceUnavailable"}}]"#
    );
    // A foreign Host may not set rules.
    let (status, _) = http(
        &listen,
        "DELETE",
        "/_rolechain/faults",
        &[("Host", "evil.example")],
        "",
    );
    assert_eq!(status, 421);

    let (status, body) = http(&listen, "POST", "/", &[FORM], WEB_IDENTITY);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("<Code>ServiceUnavailable</Code>"), "{body}");
    assert!(body.contains("injected"), "{body}");

    if python().is_some() {
        let out = up
            .aws(Some("default"), &["sts", "get-caller-identity"])
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("ServiceUnavailable"), "{err}");
        assert!(err.contains("injected"), "{err}");
        // IAM is not STS.
        ok_json(up.aws(Some("default"), &["iam", "list-roles"]));
    }
    let metrics = http_get(&listen, "/_rolechain/metrics");
    assert!(
        metrics.contains(
            r#"rolechain_twin_requests_total{service="sts",action="AssumeRoleWithWebIdentity",code="503"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rolechain_twin_faults_injected_total{service="sts",action="AssumeRoleWithWebIdentity",kind="error"} 1"#),
        "{metrics}"
    );

    // Restarted on the same data directory and address: no rules.
    drop(up);
    let up = Up::start_on(&data, &listen, &[]);
    let (status, rules) = http(up.addr(), "GET", "/_rolechain/faults", &[], "");
    assert_eq!((status, rules.as_str()), (200, "[]"));
    let (status, body) = http(up.addr(), "POST", "/", &[FORM], WEB_IDENTITY);
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("injected"), "{body}");
    if python().is_some() {
        let id = ok_json(up.aws(Some("default"), &["sts", "get-caller-identity"]));
        assert_eq!(id["Account"], "111111111111");
    }
}
