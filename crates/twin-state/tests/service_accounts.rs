//! The local clusters' service accounts: apply, annotate, get, list, delete, durable across a
//! reopen, and refused as the API server refuses.

mod common;

use std::collections::BTreeMap;

use common::*;
use twin_state::{AnnotationChange, Applied, StateError, Store};

const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn apply_annotate_and_survive_a_reopen() {
    let (dir, store) = seeded();
    let cluster = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();

    let (sa, applied) = store
        .apply_service_account(
            &cluster,
            "default",
            "my-service-account",
            map(&[]),
            map(&[]),
        )
        .unwrap();
    assert_eq!(applied, Applied::Created);
    assert_eq!(sa.uid.len(), 36);
    assert!(sa.created_at.is_some());
    let (again, applied) = store
        .apply_service_account(
            &cluster,
            "default",
            "my-service-account",
            map(&[]),
            map(&[]),
        )
        .unwrap();
    assert_eq!(applied, Applied::Unchanged);
    assert_eq!(again, sa);

    let role = "arn:aws:iam::111111111111:role/my-test-role";
    let set = |value: &str| AnnotationChange::Set {
        key: ROLE_ARN.into(),
        value: value.into(),
    };
    let annotated = store
        .annotate_service_account(
            &cluster,
            "default",
            "my-service-account",
            &[set(role)],
            false,
        )
        .unwrap();
    assert_eq!(annotated.annotations[ROLE_ARN], role);
    assert_eq!(annotated.uid, sa.uid, "annotating keeps the uid");
    // Another value needs --overwrite, as kubectl; the same value does not.
    let e = store
        .annotate_service_account(
            &cluster,
            "default",
            "my-service-account",
            &[set("x")],
            false,
        )
        .unwrap_err();
    assert!(matches!(e, StateError::InvalidInput(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("already has a value (arn:aws:iam::111111111111:role/my-test-role)"),
        "{e}"
    );
    store
        .annotate_service_account(
            &cluster,
            "default",
            "my-service-account",
            &[set(role)],
            false,
        )
        .unwrap();

    // Applying a file without the annotation takes it away (the file is the whole truth).
    let (_, applied) = store
        .apply_service_account(
            &cluster,
            "default",
            "my-service-account",
            map(&[]),
            map(&[("app", "web")]),
        )
        .unwrap();
    assert_eq!(applied, Applied::Configured);
    store
        .annotate_service_account(
            &cluster,
            "default",
            "my-service-account",
            &[set(role)],
            false,
        )
        .unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let got = store
        .get_service_account(&cluster, "default", "my-service-account")
        .unwrap();
    assert_eq!(got.annotations, map(&[(ROLE_ARN, role)]));
    assert_eq!(got.labels, map(&[("app", "web")]));
    assert_eq!(got.uid, sa.uid);

    let removed = store
        .annotate_service_account(
            &cluster,
            "default",
            "my-service-account",
            &[AnnotationChange::Remove {
                key: ROLE_ARN.into(),
            }],
            false,
        )
        .unwrap();
    assert!(removed.annotations.is_empty());
}

#[test]
fn every_namespace_has_its_default() {
    let (_dir, store) = seeded();
    let cluster = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();
    let implicit = store
        .get_service_account(&cluster, "team-a", "default")
        .unwrap();
    assert!(implicit.created_at.is_none());
    assert!(store
        .list_service_accounts(&cluster, None)
        .unwrap()
        .is_empty());
    // Its first annotation stores it, with the uid its tokens already carried.
    let stored = store
        .annotate_service_account(
            &cluster,
            "team-a",
            "default",
            &[AnnotationChange::Set {
                key: ROLE_ARN.into(),
                value: "arn:aws:iam::111111111111:role/r".into(),
            }],
            false,
        )
        .unwrap();
    assert_eq!(stored.uid, implicit.uid);
    assert_eq!(
        store.list_service_accounts(&cluster, None).unwrap().len(),
        1
    );
    // Another namespace's default is another object.
    assert_ne!(
        store
            .get_service_account(&cluster, "team-b", "default")
            .unwrap()
            .uid,
        implicit.uid
    );
}

#[test]
fn listing_by_namespace_and_deleting() {
    let (_dir, store) = seeded();
    let cluster = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();
    for (ns, name) in [("b", "x"), ("a", "z"), ("a", "y"), ("ab", "w")] {
        store
            .apply_service_account(&cluster, ns, name, map(&[]), map(&[]))
            .unwrap();
    }
    let names = |ns: Option<&str>| -> Vec<String> {
        store
            .list_service_accounts(&cluster, ns)
            .unwrap()
            .into_iter()
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect()
    };
    assert_eq!(names(None), ["a/y", "a/z", "ab/w", "b/x"]);
    assert_eq!(names(Some("a")), ["a/y", "a/z"]);
    store.delete_service_account(&cluster, "a", "y").unwrap();
    assert_eq!(names(Some("a")), ["a/z"]);
    let e = store
        .delete_service_account(&cluster, "a", "y")
        .unwrap_err();
    assert_eq!(e.http_status(), 404);
    assert_eq!(
        e.to_string(),
        "serviceaccounts \"y\" not found in namespace \"a\""
    );
    let e = store
        .get_service_account(&cluster, "a", "nope")
        .unwrap_err();
    assert!(matches!(e, StateError::NoSuchEntity(_)));
}

#[test]
fn hostile_input_is_refused_naming_the_field() {
    let (_dir, store) = seeded();
    let cluster = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();
    let e = store
        .apply_service_account(&cluster, "Default", "sa", map(&[]), map(&[]))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("metadata.namespace: Invalid value: \"Default\""),
        "{e}"
    );
    let e = store
        .apply_service_account(&cluster, "default", "../etc", map(&[]), map(&[]))
        .unwrap_err();
    assert!(
        e.to_string().starts_with("metadata.name: Invalid value"),
        "{e}"
    );
    let e = store
        .apply_service_account(&cluster, "default", "sa", map(&[("a b", "v")]), map(&[]))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("metadata.annotations: Invalid value: \"a b\""),
        "{e}"
    );
    let e = store
        .annotate_service_account(
            &cluster,
            "default",
            "missing",
            &[AnnotationChange::Remove { key: "k".into() }],
            false,
        )
        .unwrap_err();
    assert_eq!(e.http_status(), 404);
    // Nothing was stored by the refusals.
    assert!(store
        .list_service_accounts(&cluster, None)
        .unwrap()
        .is_empty());
}
