//! Fuzzes the policy parser: any input, parsed as each kind of policy, must either be rejected
//! with a non-empty message or be accepted and then evaluate (and serialize its decision)
//! without panicking.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use iam::{evaluate, NamedPolicy, Policy, PolicyKind, PolicySet, Principal, RequestContext};
use libfuzzer_sys::fuzz_target;

/// Fixed requests that set the keys policies commonly use, so that conditions and policy
/// variables are exercised: an IAM user (has `aws:username`), a role session, and a web
/// identity (not an IAM entity, so only a resource/trust policy can allow it).
fn contexts() -> &'static [RequestContext] {
    static CONTEXTS: OnceLock<Vec<RequestContext>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let tags = BTreeMap::from([
            ("team".to_string(), "platform".to_string()),
            ("city".to_string(), "İstanbul".to_string()),
        ]);
        let time = time_of("2026-05-01T12:00:00Z");
        let mut user = RequestContext::new(
            Principal::User {
                arn: "arn:aws:iam::111122223333:user/ops/alice".into(),
                account: "111122223333".into(),
                unique_id: Some("AIDAEXAMPLEUSERID0001".into()),
            },
            "s3:GetObject",
            "arn:aws:s3:::pics/über/a:b/cat*?.jpg",
        );
        user.set_principal_tags(&tags)
            .set_source_ip("10.1.2.3".parse().expect("ip"))
            .set_time(time)
            .set("aws:SecureTransport", "true")
            .set("s3:prefix", "home/alice/")
            .set("s3:max-keys", "10")
            .set("aws:MultiFactorAuthAge", "30")
            .set("aws:Custom", "QmluYXJ5VmFsdWU=")
            .set_multi("aws:TagKeys", ["team", "env"])
            .set_resource_account("444455556666")
            .set_canonical_user("79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be");
        let mut session = RequestContext::new(
            Principal::AssumedRole {
                session_arn: "arn:aws:sts::111122223333:assumed-role/admin/alice".into(),
                role_arn: "arn:aws:iam::111122223333:role/admin".into(),
                account: "111122223333".into(),
                role_unique_id: Some("AROAEXAMPLEROLEID0001".into()),
            },
            "sts:AssumeRole",
            "arn:aws:iam::111122223333:role/ci/deployer",
        );
        session
            .set_principal_tags(&tags)
            .set_source_ip("2001:db8::1".parse().expect("ip"))
            .set_time(time)
            .set("sts:ExternalId", "6f2c1e0a-7d3b-4f55-9e51-3c6a0d0b1a77");
        let mut web = RequestContext::new(
            Principal::WebIdentity {
                provider: "accounts.google.com".into(),
            },
            "sts:AssumeRoleWithWebIdentity",
            "arn:aws:iam::111122223333:role/app",
        );
        web.set("accounts.google.com:sub", "1234567890")
            .set_time(time);
        vec![user, session, web]
    })
}

fn time_of(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("fixed time")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::Trust,
    ] {
        let policy = match Policy::parse(text, kind) {
            Ok(policy) => policy,
            Err(error) => {
                assert!(!error.to_string().is_empty(), "empty message for {error:?}");
                assert!(!error.code().is_empty());
                continue;
            }
        };
        let named = [NamedPolicy::new("fuzz", policy)];
        let set = match kind {
            PolicyKind::Identity => PolicySet {
                identity: &named,
                ..Default::default()
            },
            PolicyKind::Resource | PolicyKind::Trust => PolicySet {
                resource: Some(&named[0]),
                ..Default::default()
            },
        };
        for ctx in contexts() {
            let decision = evaluate(&set, ctx);
            let _ = decision.closest_allow();
            serde_json::to_string(&decision).expect("a decision serializes");
        }
    }
});
