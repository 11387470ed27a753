//! The IAM propagation view: each role, managed policy and OIDC provider as it was at an
//! instant, while IAM's own reads see every write at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use twin_state::{CreateOidcProvider, CreatePolicy, StateError, Store};

fn trust_of(store: &Store, at: Instant, name: &str) -> Result<String, StateError> {
    store
        .iam_as_of(at)
        .get_role(DEV, name)
        .map(|r| r.assume_role_policy.document)
}

fn missing<T>(r: &Result<T, StateError>) -> bool {
    matches!(r, Err(StateError::NoSuchEntity(_)))
}

#[test]
fn the_view_shows_each_record_as_it_was_then() {
    let (_dir, store) = seeded();
    let ec2 = trust(r#"{"Service":"ec2.amazonaws.com"}"#);
    let pods = service_trust();
    store.create_role(&role(DEV, "early", &ec2)).unwrap();
    // Long enough that nothing is forgotten while the test runs.
    store.set_iam_propagation_delay(Duration::from_secs(3600));
    assert_eq!(store.iam_propagation_delay(), Duration::from_secs(3600));

    let t0 = Instant::now();
    store.create_role(&role(DEV, "late", &ec2)).unwrap();
    let policy = store
        .create_policy(&CreatePolicy {
            account: DEV.into(),
            name: "reader".into(),
            document: S3_READ.into(),
            ..Default::default()
        })
        .unwrap();
    store.attach_role_policy(DEV, "late", &policy.arn).unwrap();
    let provider = store
        .create_oidc_provider(&CreateOidcProvider {
            account: DEV.into(),
            url: "https://oidc.example.com/id/ONE".into(),
            client_ids: vec!["sts.amazonaws.com".into()],
            ..Default::default()
        })
        .unwrap();
    let t1 = Instant::now();
    store.update_assume_role_policy(DEV, "late", &pods).unwrap();
    store
        .put_role_policy(DEV, "late", "inline", S3_READ)
        .unwrap();
    let v2 = S3_READ.replace("pics/*", "pics/v2/*");
    store.create_policy_version(&policy.arn, &v2, true).unwrap();
    store.add_client_id(&provider.arn, "other").unwrap();
    let t2 = Instant::now();
    store.delete_role(DEV, "early").unwrap();
    store.delete_oidc_provider(&provider.arn).unwrap();
    let t3 = Instant::now();

    // IAM reads its own writes.
    assert_eq!(
        store
            .get_role(DEV, "late")
            .unwrap()
            .assume_role_policy
            .document,
        pods
    );
    assert!(missing(&store.get_role(DEV, "early")));

    // Before any change: only what existed before the delay was set.
    assert_eq!(trust_of(&store, t0, "early").unwrap(), ec2);
    assert!(missing(&trust_of(&store, t0, "late")));
    assert!(missing(&store.iam_as_of(t0).get_policy(&policy.arn)));
    assert!(missing(
        &store.iam_as_of(t0).get_oidc_provider(&provider.arn)
    ));

    // After the creations, before the updates.
    assert_eq!(trust_of(&store, t1, "late").unwrap(), ec2);
    let (identity, boundary) = store
        .iam_as_of(t1)
        .role_identity_policies(DEV, "late")
        .unwrap();
    assert_eq!(
        identity.len(),
        1,
        "only the attached policy, no inline one yet"
    );
    assert!(boundary.is_none());
    let at_t1 = store.iam_as_of(t1).get_policy(&policy.arn).unwrap();
    assert_eq!(at_t1.default_version().unwrap().document, S3_READ);
    let p1 = store
        .iam_as_of(t1)
        .get_oidc_provider(&provider.arn)
        .unwrap();
    assert_eq!(p1.client_ids, vec!["sts.amazonaws.com".to_string()]);

    // After the updates.
    assert_eq!(trust_of(&store, t2, "late").unwrap(), pods);
    let (identity, _) = store
        .iam_as_of(t2)
        .role_identity_policies(DEV, "late")
        .unwrap();
    assert_eq!(identity.len(), 2);
    assert_eq!(
        store
            .iam_as_of(t2)
            .get_policy(&policy.arn)
            .unwrap()
            .default_version()
            .unwrap()
            .document,
        v2
    );
    assert_eq!(
        store
            .iam_as_of(t2)
            .get_oidc_provider(&provider.arn)
            .unwrap()
            .client_ids
            .len(),
        2
    );
    assert_eq!(trust_of(&store, t2, "early").unwrap(), ec2);

    // After the deletions.
    assert!(missing(&trust_of(&store, t3, "early")));
    assert!(missing(
        &store.iam_as_of(t3).get_oidc_provider(&provider.arn)
    ));

    // STS's view now is an hour late: none of it has propagated.
    let view = store.propagated();
    assert_eq!(
        view.get_role(DEV, "early")
            .unwrap()
            .assume_role_policy
            .document,
        ec2
    );
    assert!(missing(&view.get_role(DEV, "late")));
    assert!(missing(&view.get_policy(&policy.arn)));

    // Without a delay the view is the store.
    store.set_iam_propagation_delay(Duration::ZERO);
    let view = store.propagated();
    assert!(missing(&view.get_role(DEV, "early")));
    assert_eq!(
        view.get_role(DEV, "late")
            .unwrap()
            .assume_role_policy
            .document,
        pods
    );
    assert_eq!(view.role_identity_policies(DEV, "late").unwrap().0.len(), 2);
}

#[test]
fn changes_propagate_once_the_delay_has_passed() {
    let (_dir, store) = seeded();
    store.set_iam_propagation_delay(Duration::from_millis(200));
    let before = Instant::now();
    store
        .create_role(&role(DEV, "fresh", &service_trust()))
        .unwrap();
    let after = Instant::now();
    loop {
        let asked = Instant::now();
        let seen = store.propagated().get_role(DEV, "fresh");
        let answered = Instant::now();
        if answered.duration_since(before) < Duration::from_millis(200) {
            assert!(missing(&seen), "visible before the delay passed");
        }
        if asked.duration_since(after) >= Duration::from_millis(200) {
            assert!(seen.is_ok(), "not visible once the delay passed: {seen:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
