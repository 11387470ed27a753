//! `lint`: each rule finds its pitfall, and the fixed world has no finding.

use serde_json::json;

use crate::fixtures::*;
use crate::lint::{has_errors, lint, render_lint_text, Finding};

fn rules(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

fn expect(snap: &twin_state::Snapshot, rule: &str) -> Finding {
    let findings = lint(snap);
    let text = render_lint_text(&findings);
    assert!(has_errors(&findings), "{text}");
    findings
        .iter()
        .find(|f| f.rule == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no {rule} in {text}"))
}

#[test]
fn working_world_has_no_finding() {
    let findings = lint(&working());
    assert!(findings.is_empty(), "{}", render_lint_text(&findings));
}

#[test]
fn default_world_has_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = twin_state::Store::open(dir.path()).unwrap();
    store
        .seed_if_empty(&twin_state::World::default_world(|c| {
            format!("http://127.0.0.1:4555/clusters/{c}")
        }))
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.clusters.len(), 1);
    let findings = lint(&snap);
    assert!(!has_errors(&findings), "{}", render_lint_text(&findings));
}

#[test]
fn pod_identity_trust_without_tag_session() {
    let lonely = "arn:aws:iam::111111111111:role/lonely";
    let mut snap = working();
    snap.roles.push(role(
        lonely,
        primary_trust(json!("sts:AssumeRole")),
        json!([]),
    ));
    let f = expect(&snap, "pod-identity-trust-without-tag-session");
    assert!(f.at.contains(lonely), "{f:?}");
    assert!(f.fix.contains("sts:TagSession"), "{f:?}");
    // Fixed: both actions.
    let mut fixed = working();
    fixed.roles.push(role(
        lonely,
        primary_trust(json!(["sts:AssumeRole", "sts:TagSession"])),
        json!([]),
    ));
    assert!(lint(&fixed).is_empty());
}

#[test]
fn association_role_trust_without_tag_session() {
    let snap = with_role(
        working(),
        role(
            PRIMARY,
            primary_trust(json!("sts:AssumeRole")),
            assume_target(json!(["sts:AssumeRole", "sts:TagSession"])),
        ),
    );
    let f = expect(&snap, "trust-tag-session");
    assert!(f.at.contains("my-app-namespace/my-app-sa"), "{f:?}");
    // With session tags disabled the chain needs no TagSession.
    let mut disabled = snap.clone();
    disabled.associations[0].disable_session_tags = true;
    let r = rules(&lint(&disabled));
    assert!(r.is_empty(), "{r:?}");
}

#[test]
fn target_trust_without_tag_session_while_tags_flow() {
    let working = working();
    let mut broken = role(TARGET, target_trust(false), json!([]));
    broken.identity_policies = working.roles[2].identity_policies.clone();
    let f = expect(&with_role(working, broken), "target-trust-tag-session");
    assert!(f.fix.contains("sts:TagSession"), "{f:?}");
}

#[test]
fn hop_identity_missing_assume_role() {
    let snap = with_role(
        working(),
        role(
            PRIMARY,
            primary_trust(json!(["sts:AssumeRole", "sts:TagSession"])),
            json!([{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]),
        ),
    );
    let found = rules(&lint(&snap));
    assert!(found.contains(&"hop-identity"), "{found:?}");
    assert!(found.contains(&"hop-identity-tag-session"), "{found:?}");
}

#[test]
fn issuer_host_typo() {
    let typo = json!({"StringEquals": {
        "oidc.eks.us-east-1.amazonaws.com/id/ABC124:sub": "system:serviceaccount:default:irsa-app",
        format!("{HOST}:aud"): "sts.amazonaws.com"
    }});
    let snap = with_role(working(), role(IRSA_ROLE, irsa_trust(typo), json!([])));
    let f = expect(&snap, "condition-key-issuer");
    assert!(f.fix.contains(&format!("{HOST}:sub")), "{f:?}");
}

#[test]
fn wrong_claim_key() {
    let wrong = json!({"StringEquals": {
        format!("{HOST}:subject"): "system:serviceaccount:default:irsa-app"
    }});
    let snap = with_role(working(), role(IRSA_ROLE, irsa_trust(wrong), json!([])));
    expect(&snap, "condition-key-unknown");
}

#[test]
fn string_equals_with_wildcard() {
    let wildcard = json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:default:*",
        format!("{HOST}:aud"): "sts.amazonaws.com"
    }});
    let snap = with_role(working(), role(IRSA_ROLE, irsa_trust(wildcard), json!([])));
    let f = expect(&snap, "string-equals-wildcard");
    assert!(f.fix.contains("StringLike"), "{f:?}");
    // StringLike is the fix.
    let like = json!({"StringLike": {format!("{HOST}:sub"): "system:serviceaccount:default:*"},
                      "StringEquals": {format!("{HOST}:aud"): "sts.amazonaws.com"}});
    let mut fixed = with_role(working(), role(IRSA_ROLE, irsa_trust(like), json!([])));
    fixed.roles[0].identity_policies = working().roles[0].identity_policies.clone();
    assert!(
        lint(&fixed).is_empty(),
        "{}",
        render_lint_text(&lint(&fixed))
    );
}

#[test]
fn audience_not_a_client_id() {
    let mut snap = working();
    snap.oidc_providers[0].client_ids = vec!["other".to_string()];
    let found = rules(&lint(&snap));
    assert!(found.contains(&"audience-not-client-id"), "{found:?}");
    assert!(found.contains(&"oidc-audience"), "{found:?}");
}

#[test]
fn provider_missing() {
    let mut snap = working();
    snap.oidc_providers.clear();
    let found = rules(&lint(&snap));
    assert!(found.contains(&"provider-missing"), "{found:?}");
    assert!(found.contains(&"oidc-provider"), "{found:?}");
}

#[test]
fn provider_in_another_account() {
    let mut snap = working();
    snap.oidc_providers[0].account = SHARED.to_string();
    let found = rules(&lint(&snap));
    assert!(found.contains(&"provider-other-account"), "{found:?}");
}

#[test]
fn loop_in_the_chain() {
    let mut snap = working();
    snap.associations[0].target_role_arn = Some(PRIMARY.to_string());
    expect(&snap, "chain-loop");
}

#[test]
fn annotation_naming_a_missing_role() {
    let mut snap = working();
    snap.service_accounts[0].annotations.insert(
        "eks.amazonaws.com/role-arn".to_string(),
        "arn:aws:iam::111111111111:role/gone".to_string(),
    );
    let f = expect(&snap, "role-exists");
    assert!(f.at.contains("default/irsa-app"), "{f:?}");
}

#[test]
fn target_trust_with_combined_actions_is_a_warning() {
    let working = working();
    let mut combined = role(
        TARGET,
        json!([{"Effect": "Allow", "Principal": {"AWS": PRIMARY},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]),
        json!([]),
    );
    combined.identity_policies = working.roles[2].identity_policies.clone();
    let findings = lint(&with_role(working, combined));
    assert_eq!(rules(&findings), ["target-trust-combined-actions"]);
    assert_eq!(findings[0].severity, crate::lint::Severity::Warning);
    assert!(!has_errors(&findings), "a warning alone is not an error");
    assert!(render_lint_text(&findings).contains("0 error(s), 1 warning(s)"));
}
