//! `explain pod` on the working chains and on each broken variant.

use serde_json::json;

use crate::fixtures::*;
use crate::pod::{explain_pod, PodError, PodExplanation, PodQuery};
use crate::pod_render::{render_pod_json, render_pod_text};

fn query(ns: &str, sa: &str, action: &str, resource: &str) -> PodQuery {
    PodQuery {
        cluster: Some("dev".to_string()),
        namespace: ns.to_string(),
        service_account: sa.to_string(),
        action: Some(action.to_string()),
        resource: Some(resource.to_string()),
    }
}

fn pod_identity(snap: &twin_state::Snapshot) -> PodExplanation {
    explain_pod(
        snap,
        &query(
            "my-app-namespace",
            "my-app-sa",
            "s3:GetObject",
            "arn:aws:s3:::pics/indoor-cat.jpg",
        ),
    )
    .unwrap()
}

fn irsa(snap: &twin_state::Snapshot) -> PodExplanation {
    explain_pod(
        snap,
        &query(
            "default",
            "irsa-app",
            "s3:GetObject",
            "arn:aws:s3:::dev-data/report.csv",
        ),
    )
    .unwrap()
}

/// The failing step's check, and the text output (which must show its ✗ and fix).
fn failure(e: &PodExplanation) -> (&'static str, String) {
    assert!(!e.ok, "{}", render_pod_text(e));
    let step = e.first_failure().expect("a failed step");
    let text = render_pod_text(e);
    assert!(text.contains("✗ "), "{text}");
    assert!(
        text.contains(&format!("fix: {}", step.fix.as_deref().unwrap())),
        "{text}"
    );
    (step.check, text)
}

#[test]
fn working_pod_identity_chain_is_all_ticks() {
    let e = pod_identity(&working());
    let text = render_pod_text(&e);
    assert!(e.ok, "{text}");
    assert_eq!(e.mechanism, "pod-identity");
    assert!(!text.contains('✗'), "{text}");
    for check in [
        "service-account",
        "token",
        "trust-assume-role",
        "trust-tag-session",
        "hop-identity",
        "target-trust-assume-role",
        "target-trust-tag-session",
        "duration",
        "final-action",
    ] {
        assert!(e.steps.iter().any(|s| s.check == check), "{check}: {text}");
    }
    assert!(text.contains("aud: pods.eks.amazonaws.com"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&render_pod_json(&e)).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["steps"][0]["check"], "service-account");
}

#[test]
fn working_irsa_chain_is_all_ticks() {
    let e = irsa(&working());
    let text = render_pod_text(&e);
    assert!(e.ok, "{text}");
    assert!(text.contains(&format!("iss: {ISSUER}")), "{text}");
    assert!(
        text.contains("sub: system:serviceaccount:default:irsa-app"),
        "{text}"
    );
    assert!(text.contains("✓ 4. IAM OIDC provider"), "{text}");
}

#[test]
fn primary_trust_without_tag_session() {
    let snap = with_role(
        working(),
        role(
            PRIMARY,
            primary_trust(json!("sts:AssumeRole")),
            assume_target(json!(["sts:AssumeRole", "sts:TagSession"])),
        ),
    );
    let (check, text) = failure(&pod_identity(&snap));
    assert_eq!(check, "trust-tag-session");
    assert!(text.contains("sts:TagSession"), "{text}");
    assert!(text.contains("✓ 4. trust policy"), "{text}");
}

#[test]
fn target_trust_without_tag_session() {
    let working = working();
    let target = working.roles.iter().find(|r| r.arn == TARGET).unwrap();
    let mut broken = role(TARGET, target_trust(false), json!([]));
    broken.identity_policies = target.identity_policies.clone();
    let (check, text) = failure(&pod_identity(&with_role(working.clone(), broken)));
    assert_eq!(check, "target-trust-tag-session");
    assert!(text.contains(&format!("\"AWS\":\"{PRIMARY}\"")), "{text}");
}

#[test]
fn hop_identity_without_tag_session() {
    let snap = with_role(
        working(),
        role(
            PRIMARY,
            primary_trust(json!(["sts:AssumeRole", "sts:TagSession"])),
            assume_target(json!("sts:AssumeRole")),
        ),
    );
    let (check, text) = failure(&pod_identity(&snap));
    assert_eq!(check, "hop-identity-tag-session");
    assert!(
        text.contains(&format!("\"Resource\":\"{TARGET}\"")),
        "{text}"
    );
}

#[test]
fn chain_that_loops() {
    let mut snap = working();
    snap.associations[0].target_role_arn = Some(PRIMARY.to_string());
    let (check, _) = failure(&pod_identity(&snap));
    assert_eq!(check, "chain-loop");
}

#[test]
fn provider_missing_in_the_roles_account() {
    let mut snap = working();
    snap.oidc_providers.clear();
    let (check, text) = failure(&irsa(&snap));
    assert_eq!(check, "oidc-provider");
    assert!(
        text.contains(&format!(
            "aws iam create-open-id-connect-provider --url {ISSUER}"
        )),
        "{text}"
    );
}

#[test]
fn audience_not_among_client_ids() {
    let mut snap = working();
    snap.oidc_providers[0].client_ids = vec!["pods.eks.amazonaws.com".to_string()];
    let (check, text) = failure(&irsa(&snap));
    assert_eq!(check, "oidc-audience");
    assert!(text.contains("--client-id sts.amazonaws.com"), "{text}");
}

#[test]
fn typo_in_the_issuer_host_of_a_condition() {
    let typo = json!({"StringEquals": {
        "oidc.eks.us-east-1.amazonaws.com/id/ABC124:sub": "system:serviceaccount:default:irsa-app",
        format!("{HOST}:aud"): "sts.amazonaws.com"
    }});
    let snap = with_role(working(), role(IRSA_ROLE, irsa_trust(typo), json!([])));
    let (check, text) = failure(&irsa(&snap));
    assert_eq!(check, "trust-web-identity");
    assert!(text.contains("ABC124:sub"), "{text}");
    assert!(
        text.contains(&format!(
            "\"{HOST}:sub\":\"system:serviceaccount:default:irsa-app\""
        )),
        "{text}"
    );
}

#[test]
fn string_equals_with_a_wildcard() {
    let wildcard = json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:default:*",
        format!("{HOST}:aud"): "sts.amazonaws.com"
    }});
    let snap = with_role(working(), role(IRSA_ROLE, irsa_trust(wildcard), json!([])));
    let (check, _) = failure(&irsa(&snap));
    assert_eq!(check, "trust-web-identity");
}

#[test]
fn annotation_naming_a_missing_role() {
    let mut snap = working();
    snap.roles.retain(|r| r.arn != IRSA_ROLE);
    let (check, text) = failure(&irsa(&snap));
    assert_eq!(check, "role-exists");
    assert!(
        text.contains("eks.amazonaws.com/role-arn annotation"),
        "{text}"
    );
}

#[test]
fn service_account_without_a_role() {
    let mut snap = working();
    snap.associations.clear();
    let (check, text) = failure(&pod_identity(&snap));
    assert_eq!(check, "service-account-role");
    assert!(text.contains("rolechain cluster annotate"), "{text}");
}

#[test]
fn final_action_not_allowed() {
    let e = explain_pod(
        &working(),
        &query(
            "default",
            "irsa-app",
            "s3:PutObject",
            "arn:aws:s3:::dev-data/x",
        ),
    )
    .unwrap();
    let (check, text) = failure(&e);
    assert_eq!(check, "final-action");
    assert!(text.contains("\"Action\":\"s3:PutObject\""), "{text}");
}

/// The IRSA pod reads seed 000's picture, in the other account.
fn read_picture(snap: &twin_state::Snapshot) -> PodExplanation {
    explain_pod(
        snap,
        &query(
            "default",
            "irsa-app",
            "s3:GetObject",
            "arn:aws:s3:::pics/indoor-cat.jpg",
        ),
    )
    .unwrap()
}

#[test]
fn cross_account_bucket_without_policy() {
    let e = read_picture(&working());
    let snap_role_allows = {
        let mut s = working();
        s.roles[0].identity_policies[0].document = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pics/*"}]})
        .to_string();
        s
    };
    let (check, text) = failure(&e);
    assert_eq!(check, "final-action");
    // Neither side allows: both fixes are needed.
    assert!(
        text.contains("; and add to the bucket policy of account 222222222222"),
        "{text}"
    );
    let e = read_picture(&snap_role_allows);
    let (check, text) = failure(&e);
    assert_eq!(check, "final-action");
    assert!(
        text.contains("add to the bucket policy of account 222222222222"),
        "{text}"
    );
    // With that bucket policy, it works.
    let mut fixed = snap_role_allows.clone();
    fixed.buckets[0].policy = Some(
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": IRSA_ROLE}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pics/indoor-cat.jpg"}]})
        .to_string(),
    );
    let e = read_picture(&fixed);
    assert!(e.ok, "{}", render_pod_text(&e));
}

#[test]
fn malformed_queries_are_errors() {
    let snap = working();
    let err = explain_pod(&snap, &query("default", "nobody", "s3:GetObject", "*")).unwrap_err();
    assert!(
        matches!(err, PodError::UnknownServiceAccount { .. }),
        "{err}"
    );
    let err = explain_pod(
        &snap,
        &query("default", "irsa-app", "s3:GetObject", "pics/x"),
    )
    .unwrap_err();
    assert!(matches!(err, PodError::BadResource(_)), "{err}");
    let err = explain_pod(&snap, &query("default", "irsa-app", "GetObject", "*")).unwrap_err();
    assert!(matches!(err, PodError::BadAction(_)), "{err}");
    let mut q = query("default", "irsa-app", "s3:GetObject", "*");
    q.cluster = Some("prod".to_string());
    let err = explain_pod(&snap, &q).unwrap_err();
    assert!(err.to_string().contains("known: dev"), "{err}");
    q.cluster = None;
    assert!(
        explain_pod(&snap, &q).is_ok(),
        "the only cluster is the default"
    );
}
