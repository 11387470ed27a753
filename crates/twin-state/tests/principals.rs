//! Trust-policy principals stored by unique id, as IAM stores them.

mod common;

use common::*;
use iam::{evaluate, NamedPolicy, PolicyKind, PolicySet, Principal, RequestContext};
use twin_state::Role;

fn role_a_trust(a: &str) -> String {
    trust(&format!(r#"{{"AWS":"{a}"}}"#))
}

/// Whether a session of `caller` may assume `target` according to the stored trust policy.
fn trust_allows(target: &Role, caller: &Role) -> bool {
    let trust = target
        .assume_role_policy
        .to_policy(PolicyKind::Trust)
        .unwrap();
    let ctx = RequestContext::new(
        Principal::AssumedRole {
            session_arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/s",
                caller.account, caller.name
            ),
            role_arn: caller.arn.clone(),
            account: caller.account.clone(),
            role_unique_id: Some(caller.role_id.clone()),
        },
        "sts:AssumeRole",
        &target.arn,
    );
    let resource = NamedPolicy::new("trust", trust);
    evaluate(
        &PolicySet {
            resource: Some(&resource),
            ..Default::default()
        },
        &ctx,
    )
    .is_allowed()
}

#[test]
fn deleted_principal_shows_its_id_and_a_recreated_role_is_not_matched() {
    let (_dir, store) = seeded();
    let a = store
        .create_role(&role(DEV, "A", &service_trust()))
        .unwrap();
    let b = store
        .create_role(&role(DEV, "B", &role_a_trust(&a.arn)))
        .unwrap();
    // Stored by id, shown by ARN while A exists.
    assert!(b.assume_role_policy.document.contains(&a.role_id));
    assert!(!b.assume_role_policy.document.contains(&a.arn));
    assert_eq!(b.assume_role_policy.unique_ids, vec![a.role_id.clone()]);
    let shown = store.render_policy(&b.assume_role_policy).unwrap();
    assert!(shown.contains(&a.arn), "{shown}");
    let (_, shown_via_get) = store.get_role_rendered(DEV, "B").unwrap();
    assert_eq!(shown_via_get, shown);
    assert!(trust_allows(&b, &a));

    // A is deleted: B's trust shows the raw id.
    store.delete_role(DEV, "A").unwrap();
    let shown = store.render_policy(&b.assume_role_policy).unwrap();
    assert!(shown.contains(&a.role_id), "{shown}");
    assert!(!shown.contains("role/A"), "{shown}");

    // A is recreated: a new id; B's trust still names the old one and does not match.
    let a2 = store
        .create_role(&role(DEV, "A", &service_trust()))
        .unwrap();
    assert_ne!(a2.role_id, a.role_id);
    let b_now = store.get_role(DEV, "B").unwrap();
    let shown = store.render_policy(&b_now.assume_role_policy).unwrap();
    assert!(shown.contains(&a.role_id), "{shown}");
    assert!(!shown.contains(&a2.arn), "{shown}");
    assert!(!trust_allows(&b_now, &a2));

    // Updating the trust policy with the ARN again picks the new role up.
    let b_fixed = store
        .update_assume_role_policy(DEV, "B", &role_a_trust(&a2.arn))
        .unwrap();
    assert!(trust_allows(&b_fixed, &a2));
    assert!(!trust_allows(&b_fixed, &a));
}

#[test]
fn nonexistent_principal_in_known_account_is_refused() {
    let (_dir, store) = seeded();
    for arn in [
        "arn:aws:iam::111111111111:role/ghost",
        "arn:aws:iam::222222222222:user/ghost",
    ] {
        let e = store
            .create_role(&role(DEV, "B", &role_a_trust(arn)))
            .unwrap_err();
        assert_eq!(e.code(), "MalformedPolicyDocument");
        assert_eq!(e.http_status(), 400);
        assert_eq!(
            e.to_string(),
            format!("Invalid principal in policy: \"AWS\":\"{arn}\"")
        );
    }
    // The path is part of the ARN.
    store
        .create_role(&twin_state::CreateRole {
            path: Some("/p/".into()),
            ..role(DEV, "pathed", &service_trust())
        })
        .unwrap();
    assert!(store
        .create_role(&role(
            DEV,
            "B",
            &role_a_trust("arn:aws:iam::111111111111:role/pathed")
        ))
        .is_err());
    assert!(store
        .create_role(&role(
            DEV,
            "B",
            &role_a_trust("arn:aws:iam::111111111111:role/p/pathed")
        ))
        .is_ok());
    // UpdateAssumeRolePolicy refuses too, and leaves the old policy.
    let before = store.get_role(DEV, "B").unwrap();
    assert_eq!(
        store
            .update_assume_role_policy(
                DEV,
                "B",
                &role_a_trust("arn:aws:iam::111111111111:role/ghost")
            )
            .unwrap_err()
            .code(),
        "MalformedPolicyDocument"
    );
    assert_eq!(store.get_role(DEV, "B").unwrap(), before);
    assert_eq!(
        store
            .update_assume_role_policy(DEV, "nope", &service_trust())
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
}

#[test]
fn principals_of_unknown_accounts_accounts_and_sessions_are_kept_as_written() {
    let (_dir, store) = seeded();
    let doc = trust(
        r#"{"AWS":["arn:aws:iam::999999999999:role/elsewhere","arn:aws:iam::222222222222:root","111111111111","arn:aws:sts::111111111111:assumed-role/x/y"]}"#,
    );
    let r = store.create_role(&role(DEV, "B", &doc)).unwrap();
    assert_eq!(r.assume_role_policy.document, doc);
    assert!(r.assume_role_policy.unique_ids.is_empty());
    assert_eq!(store.render_policy(&r.assume_role_policy).unwrap(), doc);
}

#[test]
fn users_and_arrays_and_not_principal() {
    let (_dir, store) = seeded();
    let admin = store.get_user(SHARED, "admin").unwrap();
    let a = store
        .create_role(&role(DEV, "A", &service_trust()))
        .unwrap();
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["{}","{}","arn:aws:iam::999999999999:root"]}},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","NotPrincipal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
        a.arn, admin.arn, a.arn
    );
    let b = store.create_role(&role(DEV, "B", &doc)).unwrap();
    assert_eq!(
        b.assume_role_policy.unique_ids,
        vec![a.role_id.clone(), admin.user_id.clone()]
    );
    let shown: serde_json::Value =
        serde_json::from_str(&store.render_policy(&b.assume_role_policy).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(shown, original);
    // NotPrincipal excludes a session only when its session ARN, role and account are all
    // listed; naming the role alone leaves A's sessions under the Deny.
    assert!(!trust_allows(&b, &a));
}

#[test]
fn resource_policies_are_stored_the_same_way() {
    let (_dir, store) = seeded();
    let a = store
        .create_role(&role(DEV, "A", &service_trust()))
        .unwrap();
    let bucket = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}}]}}"#,
        a.arn
    );
    let stored = store.store_resource_policy(&bucket).unwrap();
    assert!(stored.document.contains(&a.role_id));
    assert!(stored.to_policy(PolicyKind::Resource).is_ok());
    let e = store
        .store_resource_policy(&bucket.replace("role/A", "role/ghost"))
        .unwrap_err();
    assert_eq!(e.code(), "MalformedPolicyDocument");
    assert_eq!(
        store
            .store_resource_policy(&service_trust())
            .unwrap_err()
            .code(),
        "MalformedPolicyDocument",
        "a resource policy needs a Resource"
    );
}
