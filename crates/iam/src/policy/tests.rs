//! The policy parser's messages and limits, tested through [`Policy::parse`].

use super::*;

fn err(text: &str, kind: PolicyKind) -> String {
    Policy::parse(text, kind).unwrap_err().to_string()
}

#[test]
fn statement_object_or_array() {
    let one =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    let many = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["*"]}]}"#;
    assert_eq!(
        Policy::parse(one, PolicyKind::Identity)
            .unwrap()
            .statements
            .len(),
        1
    );
    assert_eq!(
        Policy::parse(many, PolicyKind::Identity)
            .unwrap()
            .statements
            .len(),
        1
    );
}

#[test]
fn errors_name_the_element() {
    assert!(err("{", PolicyKind::Identity).starts_with("Syntax errors in policy."));
    assert!(err(
        r#"{"Statement":[{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#,
        PolicyKind::Identity
    )
    .contains("Statement[0].Effect"));
    assert!(err(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}"#,
        PolicyKind::Identity
    )
    .contains("should not specify a principal"));
    assert!(err(
        r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust
    )
    .contains("Missing required field Principal"));
    assert!(err(
        r#"{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
        PolicyKind::Identity
    )
    .contains("prefaced by a vendor"));
    assert!(err(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
        PolicyKind::Identity
    )
    .contains("must be in ARN format"));
    let bad_op = err(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqual":{"a:b":"c"}}}]}"#,
        PolicyKind::Identity,
    );
    assert!(
        bad_op.contains("Invalid Condition type : StringEqual"),
        "{bad_op}"
    );
    assert!(
        bad_op.contains("Statement[0].Condition.StringEqual"),
        "{bad_op}"
    );
    assert!(err(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust
    )
    .contains(r#"Invalid principal in policy: "AWS":"bob""#));
}

#[test]
fn non_ascii_actions_are_refused() {
    // The Kelvin sign lower-cases to 'k' under Unicode rules; it must not grant kms:ListKeys.
    let kelvin = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"kms:List\u{212A}eys\",\"Resource\":\"*\"}}";
    assert!(err(kelvin, PolicyKind::Identity).contains("not ASCII"));
}

#[test]
fn size_quota() {
    assert_eq!(policy_size(" { \"a\" :\n 1 } "), 7);
    let e = SizeQuota::ManagedPolicy.check(6145).unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    assert_eq!(e.to_string(), "Cannot exceed quota for PolicySize: 6144");
    assert!(SizeQuota::TrustPolicy.check(2048).is_ok());
}
