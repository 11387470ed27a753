//! Every store operation and its IAM error paths.

mod common;

use common::*;
use time::{Duration, OffsetDateTime};
use twin_state::{
    CreateOidcProvider, CreatePolicy, CreateRole, ListPolicies, NewCluster, NewSession,
    OidcAssociation, Paging, PolicyScope, StateError, Store, Tag,
};

fn code(e: StateError) -> (&'static str, u16, String) {
    (e.code(), e.http_status(), e.to_string())
}

#[test]
fn default_world_seeds_accounts_users_keys_cluster() {
    let (_dir, store) = seeded();
    let accounts = store.list_accounts().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0].alias, "developer");
    assert_eq!(accounts[1].alias, "shared_content");
    for a in [DEV, SHARED] {
        let admin = store.get_user(a, "admin").unwrap();
        assert!(admin.user_id.starts_with("AIDA") && admin.user_id.len() == 21);
        assert_eq!(admin.arn, format!("arn:aws:iam::{a}:user/admin"));
        assert!(admin.inline_policies.contains_key("AdministratorAccess"));
        let keys = store.list_access_keys(a).unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert!(k.access_key_id.starts_with("AKIA") && k.access_key_id.len() == 20);
        assert_eq!(k.secret_access_key.len(), 40);
        assert_eq!(k.principal, "admin");
        assert_eq!(
            store.get_access_key(&k.access_key_id).unwrap().as_ref(),
            Some(k)
        );
    }
    assert_eq!(store.get_access_key("AKIAAAAAAAAAAAAAAAAA").unwrap(), None);
    let c = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();
    assert_eq!(
        c.issuer_url,
        "https://127.0.0.1:8443/clusters/development-cluster"
    );
    assert_eq!(
        c.arn,
        "arn:aws:eks:us-east-1:111111111111:cluster/development-cluster"
    );
    assert_eq!(store.list_clusters(DEV, "us-east-1").unwrap(), vec![c]);
    assert!(store.list_clusters(SHARED, "us-east-1").unwrap().is_empty());
    assert_eq!(store.all_clusters().unwrap().len(), 1);
    let e = store.get_cluster(DEV, "us-east-1", "nope").unwrap_err();
    assert_eq!(
        code(e),
        (
            "ResourceNotFoundException",
            404,
            "No cluster found for name: nope.".into()
        )
    );
    // Seeding is once: a second call leaves the store alone.
    assert!(!store
        .seed_if_empty(&twin_state::World::default_world(|c| format!(
            "https://x/clusters/{c}"
        )))
        .unwrap());
    assert!(!store.is_empty().unwrap());
}

#[test]
fn accounts_keys_users_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.is_empty().unwrap());
    store.create_account(DEV, "developer").unwrap();
    assert_eq!(
        store.create_account(DEV, "again").unwrap_err().code(),
        "EntityAlreadyExists"
    );
    assert_eq!(
        store.create_account("123", "short").unwrap_err().code(),
        "InvalidInput"
    );
    assert_eq!(store.get_account(DEV).unwrap().unwrap().alias, "developer");
    assert_eq!(store.get_account(SHARED).unwrap(), None);
    let root_key = store.create_access_key(DEV, "root").unwrap();
    assert_eq!(root_key.principal, "root");
    assert_eq!(
        store.create_access_key(DEV, "ghost").unwrap_err().code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store.create_access_key(SHARED, "root").unwrap_err().code(),
        "NoSuchEntity"
    );
    let admin = store.create_admin_user(DEV, "admin").unwrap();
    assert_eq!(
        store
            .create_admin_user(DEV, "ADMIN")
            .unwrap_err()
            .to_string(),
        "User with name ADMIN already exists."
    );
    assert_eq!(store.get_user(DEV, "Admin").unwrap(), admin);
    assert_eq!(store.list_users(DEV).unwrap(), vec![admin]);
    assert_eq!(
        code(store.get_user(DEV, "bob").unwrap_err()),
        (
            "NoSuchEntity",
            404,
            "The user with name bob cannot be found.".into()
        )
    );
}

#[test]
fn role_crud_and_errors() {
    let (_dir, store) = seeded();
    let mut req = role(DEV, "S3_Pics", &service_trust());
    req.path = Some("/app/".into());
    req.description = Some("reads pictures".into());
    req.tags = vec![Tag::new("team", "pics")];
    let r = store.create_role(&req).unwrap();
    assert_eq!(r.arn, "arn:aws:iam::111111111111:role/app/S3_Pics");
    assert!(r.role_id.starts_with("AROA") && r.role_id.len() == 21);
    assert_eq!(r.max_session_duration, 3600);
    // Verbatim when no principal is rewritten.
    assert_eq!(r.assume_role_policy.document, service_trust());
    assert_eq!(store.get_role(DEV, "s3_pics").unwrap(), r);
    assert_eq!(store.get_role_by_id(&r.role_id).unwrap(), Some(r.clone()));
    assert_eq!(store.get_role_by_id("AROANOPE").unwrap(), None);

    let e = store
        .create_role(&role(DEV, "s3_PICS", &service_trust()))
        .unwrap_err();
    assert_eq!(
        code(e),
        (
            "EntityAlreadyExists",
            409,
            "Role with name s3_PICS already exists.".into()
        )
    );
    let e = store.get_role(DEV, "nope").unwrap_err();
    assert_eq!(
        code(e),
        (
            "NoSuchEntity",
            404,
            "The role with name nope cannot be found.".into()
        )
    );
    // The same name in another account is another role.
    store
        .create_role(&role(SHARED, "S3_Pics", &service_trust()))
        .unwrap();

    for (bad, expect) in [
        (
            CreateRole {
                name: "bad name".into(),
                ..role(DEV, "", &service_trust())
            },
            "ValidationError",
        ),
        (
            CreateRole {
                path: Some("no-slash".into()),
                ..role(DEV, "p", &service_trust())
            },
            "ValidationError",
        ),
        (
            CreateRole {
                max_session_duration: Some(43201),
                ..role(DEV, "m", &service_trust())
            },
            "ValidationError",
        ),
        (
            CreateRole {
                description: Some("x".repeat(1001)),
                ..role(DEV, "d", &service_trust())
            },
            "ValidationError",
        ),
        (role(DEV, "j", "{not json"), "MalformedPolicyDocument"),
        (
            role(
                DEV,
                "r",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}"#,
            ),
            "MalformedPolicyDocument",
        ),
        (role("333333333333", "x", &service_trust()), "NoSuchEntity"),
        (
            CreateRole {
                tags: (0..51).map(|i| Tag::new(format!("k{i}"), "v")).collect(),
                ..role(DEV, "t", &service_trust())
            },
            "LimitExceeded",
        ),
        (
            CreateRole {
                permissions_boundary: Some("arn:aws:iam::111111111111:policy/none".into()),
                ..role(DEV, "b", &service_trust())
            },
            "NoSuchEntity",
        ),
    ] {
        let e = store.create_role(&bad).unwrap_err();
        assert_eq!(e.code(), expect, "{bad:?}: {e}");
        assert_eq!(
            e.http_status(),
            if expect == "LimitExceeded" || expect == "EntityAlreadyExists" {
                409
            } else if expect == "NoSuchEntity" {
                404
            } else {
                400
            }
        );
    }
    // A trust policy over IAM's 2,048-character quota.
    let long = trust(&format!(
        r#"{{"Service":[{}]}}"#,
        (0..120)
            .map(|i| format!("\"svc{i}.amazonaws.com\""))
            .collect::<Vec<_>>()
            .join(",")
    ));
    let e = store.create_role(&role(DEV, "long", &long)).unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    assert!(e.to_string().contains("ACLSizePerRole"), "{e}");

    // UpdateRole.
    let u = store
        .update_role(DEV, "S3_Pics", Some("new"), Some(7200))
        .unwrap();
    assert_eq!(u.description.as_deref(), Some("new"));
    assert_eq!(u.max_session_duration, 7200);
    assert_eq!(
        store
            .update_role(DEV, "S3_Pics", None, Some(100))
            .unwrap_err()
            .code(),
        "ValidationError"
    );
    assert_eq!(
        store
            .update_role(DEV, "nope", None, None)
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    // DeleteRole.
    store.delete_role(DEV, "S3_PICS").unwrap();
    assert_eq!(
        store.get_role(DEV, "S3_Pics").unwrap_err().code(),
        "NoSuchEntity"
    );
    assert_eq!(store.get_role_by_id(&r.role_id).unwrap(), None);
    assert_eq!(
        store.delete_role(DEV, "S3_Pics").unwrap_err().code(),
        "NoSuchEntity"
    );
    // Recreated: a new principal.
    let again = store
        .create_role(&role(DEV, "S3_Pics", &service_trust()))
        .unwrap();
    assert_ne!(again.role_id, r.role_id);
}

#[test]
fn list_roles_paginates_and_filters_by_path() {
    let (_dir, store) = seeded();
    for i in 0..7 {
        let mut req = role(DEV, &format!("role-{i}"), &service_trust());
        if i % 2 == 0 {
            req.path = Some("/even/".into());
        }
        store.create_role(&req).unwrap();
    }
    store
        .create_role(&role(SHARED, "other", &service_trust()))
        .unwrap();
    let all = store.list_roles(DEV, None, &Paging::default()).unwrap();
    assert_eq!(all.items.len(), 7);
    assert!(!all.is_truncated);
    let mut names = Vec::new();
    let mut paging = Paging {
        marker: None,
        max_items: Some(3),
    };
    loop {
        let page = store.list_roles(DEV, None, &paging).unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.into_iter().map(|r| r.name));
        if !page.is_truncated {
            break;
        }
        paging.marker = page.marker;
    }
    assert_eq!(
        names,
        (0..7).map(|i| format!("role-{i}")).collect::<Vec<_>>()
    );
    let even = store
        .list_roles(DEV, Some("/even/"), &Paging::default())
        .unwrap();
    assert_eq!(even.items.len(), 4);
    assert_eq!(
        store
            .list_roles(DEV, Some("even"), &Paging::default())
            .unwrap_err()
            .code(),
        "ValidationError"
    );
    assert_eq!(
        store
            .list_roles(
                DEV,
                None,
                &Paging {
                    marker: None,
                    max_items: Some(1001)
                }
            )
            .unwrap_err()
            .code(),
        "ValidationError"
    );
}

#[test]
fn tags() {
    let (_dir, store) = seeded();
    store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    store
        .tag_role(DEV, "r", &[Tag::new("team", "a"), Tag::new("env", "dev")])
        .unwrap();
    // A key differing only in case replaces the tag.
    store.tag_role(DEV, "r", &[Tag::new("Team", "b")]).unwrap();
    let tags = store.list_role_tags(DEV, "r", &Paging::default()).unwrap();
    assert_eq!(
        tags.items,
        vec![Tag::new("Team", "b"), Tag::new("env", "dev")]
    );
    let first = store
        .list_role_tags(
            DEV,
            "r",
            &Paging {
                marker: None,
                max_items: Some(1),
            },
        )
        .unwrap();
    assert!(first.is_truncated);
    let second = store
        .list_role_tags(
            DEV,
            "r",
            &Paging {
                marker: first.marker,
                max_items: Some(1),
            },
        )
        .unwrap();
    assert_eq!(second.items, vec![Tag::new("env", "dev")]);
    store
        .untag_role(DEV, "r", &["team".into(), "absent".into()])
        .unwrap();
    assert_eq!(
        store.get_role(DEV, "r").unwrap().tags,
        vec![Tag::new("env", "dev")]
    );
    let many: Vec<Tag> = (0..50).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    let e = store.tag_role(DEV, "r", &many).unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    // Nothing of a refused request is applied.
    assert_eq!(store.get_role(DEV, "r").unwrap().tags.len(), 1);
    assert_eq!(
        store
            .tag_role(DEV, "r", &[Tag::new("aws:x", "v")])
            .unwrap_err()
            .code(),
        "InvalidInput"
    );
    assert_eq!(
        store
            .tag_role(DEV, "r", &[Tag::new("", "v")])
            .unwrap_err()
            .code(),
        "ValidationError"
    );
    assert_eq!(
        store
            .tag_role(DEV, "nope", &[Tag::new("a", "b")])
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store.untag_role(DEV, "nope", &[]).unwrap_err().code(),
        "NoSuchEntity"
    );
}

#[test]
fn inline_role_policies() {
    let (_dir, store) = seeded();
    store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    store.put_role_policy(DEV, "r", "read", S3_READ).unwrap();
    store.put_role_policy(DEV, "r", "also", S3_READ).unwrap();
    assert_eq!(store.get_role_policy(DEV, "r", "read").unwrap(), S3_READ);
    let names = store
        .list_role_policies(DEV, "r", &Paging::default())
        .unwrap();
    assert_eq!(names.items, vec!["also".to_string(), "read".to_string()]);
    let page = store
        .list_role_policies(
            DEV,
            "r",
            &Paging {
                marker: None,
                max_items: Some(1),
            },
        )
        .unwrap();
    assert_eq!(page.items, vec!["also".to_string()]);
    assert_eq!(page.marker.as_deref(), Some("read"));
    let e = store.get_role_policy(DEV, "r", "nope").unwrap_err();
    assert_eq!(
        code(e),
        (
            "NoSuchEntity",
            404,
            "The role policy with name nope cannot be found.".into()
        )
    );
    assert_eq!(
        store
            .put_role_policy(DEV, "r", "bad", &service_trust())
            .unwrap_err()
            .code(),
        "MalformedPolicyDocument"
    );
    assert_eq!(
        store
            .put_role_policy(DEV, "nope", "p", S3_READ)
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    // The 10,240-character quota is for all inline policies of the role together.
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
        "a".repeat(4000)
    );
    store.put_role_policy(DEV, "r", "big1", &big).unwrap();
    store.put_role_policy(DEV, "r", "big2", &big).unwrap();
    let e = store.put_role_policy(DEV, "r", "big3", &big).unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    assert!(e.to_string().contains("RolePolicySize"), "{e}");
    // Replacing one keeps the total in bounds.
    store.put_role_policy(DEV, "r", "big2", S3_READ).unwrap();
    // DeleteRole refuses while inline policies remain.
    let e = store.delete_role(DEV, "r").unwrap_err();
    assert_eq!(
        code(e),
        (
            "DeleteConflict",
            409,
            "Cannot delete entity, must delete policies first.".into()
        )
    );
    for p in ["read", "also", "big1", "big2"] {
        store.delete_role_policy(DEV, "r", p).unwrap();
    }
    assert_eq!(
        store
            .delete_role_policy(DEV, "r", "read")
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    store.delete_role(DEV, "r").unwrap();
}

fn policy(account: &str, name: &str) -> CreatePolicy {
    CreatePolicy {
        account: account.into(),
        name: name.into(),
        document: S3_READ.into(),
        ..Default::default()
    }
}

#[test]
fn managed_policies_versions_and_attachments() {
    let (_dir, store) = seeded();
    let p = store
        .create_policy(&CreatePolicy {
            path: Some("/team/".into()),
            description: Some("read pics".into()),
            ..policy(DEV, "pics-read-only")
        })
        .unwrap();
    assert_eq!(
        p.arn,
        "arn:aws:iam::111111111111:policy/team/pics-read-only"
    );
    assert!(p.policy_id.starts_with("ANPA"));
    assert_eq!(p.default_version_id, "v1");
    assert_eq!(store.get_policy(&p.arn).unwrap(), p);
    let e = store
        .create_policy(&policy(DEV, "PICS-read-only"))
        .unwrap_err();
    assert_eq!(e.code(), "EntityAlreadyExists");
    assert_eq!(
        e.to_string(),
        "A policy called PICS-read-only already exists. Duplicate names are not allowed."
    );
    assert_eq!(
        store
            .create_policy(&CreatePolicy {
                document: service_trust(),
                ..policy(DEV, "x")
            })
            .unwrap_err()
            .code(),
        "MalformedPolicyDocument"
    );
    let e = store
        .get_policy("arn:aws:iam::111111111111:policy/pics-read-only")
        .unwrap_err();
    assert_eq!(e.code(), "NoSuchEntity", "the path is part of the ARN");
    assert_eq!(
        store
            .get_policy("arn:aws:iam::aws:policy/AdministratorAccess")
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );

    // Versions: v2..v5, then the quota.
    for i in 2..=5 {
        let v = store
            .create_policy_version(&p.arn, S3_READ, i == 3)
            .unwrap();
        assert_eq!(v.version_id, format!("v{i}"));
    }
    let e = store
        .create_policy_version(&p.arn, S3_READ, false)
        .unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    assert!(e
        .to_string()
        .starts_with("A managed policy can have up to 5 versions."));
    assert_eq!(store.get_policy(&p.arn).unwrap().default_version_id, "v3");
    let e = store.delete_policy_version(&p.arn, "v3").unwrap_err();
    assert_eq!(
        code(e),
        (
            "DeleteConflict",
            409,
            "Cannot delete the default version of a policy.".into()
        )
    );
    store.delete_policy_version(&p.arn, "v1").unwrap();
    assert_eq!(
        store
            .delete_policy_version(&p.arn, "v1")
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    // Version ids are not reused.
    assert_eq!(
        store
            .create_policy_version(&p.arn, S3_READ, false)
            .unwrap()
            .version_id,
        "v6"
    );
    store.set_default_policy_version(&p.arn, "v6").unwrap();
    let got = store.get_policy(&p.arn).unwrap();
    assert_eq!(got.default_version_id, "v6");
    assert_eq!(got.versions.iter().filter(|v| v.is_default).count(), 1);
    assert_eq!(
        store
            .set_default_policy_version(&p.arn, "v9")
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store.get_policy_version(&p.arn, "v6").unwrap().document,
        S3_READ
    );
    assert_eq!(
        store.get_policy_version(&p.arn, "v1").unwrap_err().code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store
            .list_policy_versions(&p.arn)
            .unwrap()
            .iter()
            .map(|v| v.version_id.as_str())
            .collect::<Vec<_>>(),
        ["v2", "v3", "v4", "v5", "v6"]
    );

    // Attachments.
    store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    store.attach_role_policy(DEV, "r", &p.arn).unwrap();
    store.attach_role_policy(DEV, "r", &p.arn).unwrap(); // idempotent
    assert_eq!(store.get_policy(&p.arn).unwrap().attachment_count, 1);
    let attached = store
        .list_attached_role_policies(DEV, "r", None, &Paging::default())
        .unwrap();
    assert_eq!(attached.items.len(), 1);
    assert_eq!(attached.items[0].name, "pics-read-only");
    assert!(store
        .list_attached_role_policies(DEV, "r", Some("/other/"), &Paging::default())
        .unwrap()
        .items
        .is_empty());
    let e = store
        .attach_role_policy(DEV, "r", "arn:aws:iam::111111111111:policy/none")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Policy arn:aws:iam::111111111111:policy/none does not exist or is not attachable."
    );
    assert_eq!(
        store
            .attach_role_policy(DEV, "nope", &p.arn)
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    // The identity policies the engine evaluates for the role.
    store.put_role_policy(DEV, "r", "inline", S3_READ).unwrap();
    let (identity, boundary) = store.role_identity_policies(DEV, "r").unwrap();
    assert_eq!(identity.len(), 2);
    assert!(boundary.is_none());

    // Deleting is refused while attached, and while non-default versions remain.
    let e = store.delete_policy(&p.arn).unwrap_err();
    assert_eq!(
        code(e),
        (
            "DeleteConflict",
            409,
            "Cannot delete a policy attached to entities.".into()
        )
    );
    let e = store.delete_role(DEV, "r").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Cannot delete entity, must detach all policies first."
    );
    store.detach_role_policy(DEV, "r", &p.arn).unwrap();
    assert_eq!(
        store
            .detach_role_policy(DEV, "r", &p.arn)
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    assert_eq!(store.get_policy(&p.arn).unwrap().attachment_count, 0);
    let e = store.delete_policy(&p.arn).unwrap_err();
    assert_eq!(e.code(), "DeleteConflict");
    assert!(e
        .to_string()
        .starts_with("This policy has more than one version."));
    for v in ["v2", "v3", "v4", "v5"] {
        store.delete_policy_version(&p.arn, v).unwrap();
    }
    store.delete_policy(&p.arn).unwrap();
    assert_eq!(store.get_policy(&p.arn).unwrap_err().code(), "NoSuchEntity");
    assert_eq!(
        store.delete_policy(&p.arn).unwrap_err().code(),
        "NoSuchEntity"
    );
}

#[test]
fn attached_policy_quota_and_list_policies() {
    let (_dir, store) = seeded();
    store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    let mut arns = Vec::new();
    for i in 0..11 {
        let p = store
            .create_policy(&CreatePolicy {
                path: Some(if i < 3 { "/a/" } else { "/" }.into()),
                ..policy(DEV, &format!("p{i:02}"))
            })
            .unwrap();
        arns.push(p.arn);
    }
    store.create_policy(&policy(SHARED, "elsewhere")).unwrap();
    for arn in &arns[..10] {
        store.attach_role_policy(DEV, "r", arn).unwrap();
    }
    let e = store.attach_role_policy(DEV, "r", &arns[10]).unwrap_err();
    assert_eq!(e.code(), "LimitExceeded");
    assert_eq!(e.to_string(), "Cannot exceed quota for PoliciesPerRole: 10");

    let all = store.list_policies(DEV, &ListPolicies::default()).unwrap();
    assert_eq!(all.items.len(), 11);
    let attached = store
        .list_policies(
            DEV,
            &ListPolicies {
                scope: PolicyScope::Local,
                only_attached: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(attached.items.len(), 10);
    let a = store
        .list_policies(
            DEV,
            &ListPolicies {
                path_prefix: Some("/a/".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(a.items.len(), 3);
    let aws = store
        .list_policies(
            DEV,
            &ListPolicies {
                scope: PolicyScope::Aws,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(aws.items.is_empty());
    let page = store
        .list_policies(
            DEV,
            &ListPolicies {
                paging: Paging {
                    marker: None,
                    max_items: Some(4),
                },
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.is_truncated);
    let rest = store
        .list_policies(
            DEV,
            &ListPolicies {
                paging: Paging {
                    marker: page.marker,
                    max_items: Some(100),
                },
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.items.len() + rest.items.len(), 11);
    assert_eq!(rest.items[0].name, "p04");
}

#[test]
fn permissions_boundary() {
    let (_dir, store) = seeded();
    let p = store.create_policy(&policy(DEV, "boundary")).unwrap();
    let r = store
        .create_role(&CreateRole {
            permissions_boundary: Some(p.arn.clone()),
            ..role(DEV, "r", &service_trust())
        })
        .unwrap();
    assert_eq!(r.permissions_boundary.as_deref(), Some(p.arn.as_str()));
    assert_eq!(
        store
            .get_policy(&p.arn)
            .unwrap()
            .permissions_boundary_usage_count,
        1
    );
    assert_eq!(
        store.delete_policy(&p.arn).unwrap_err().code(),
        "DeleteConflict"
    );
    let (_, boundary) = store.role_identity_policies(DEV, "r").unwrap();
    assert!(boundary.is_some());
    store.delete_role_permissions_boundary(DEV, "r").unwrap();
    assert_eq!(
        store
            .delete_role_permissions_boundary(DEV, "r")
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    store
        .put_role_permissions_boundary(DEV, "r", &p.arn)
        .unwrap();
    store.delete_role(DEV, "r").unwrap();
    assert_eq!(
        store
            .get_policy(&p.arn)
            .unwrap()
            .permissions_boundary_usage_count,
        0
    );
    store.delete_policy(&p.arn).unwrap();
}

#[test]
fn oidc_providers() {
    let (_dir, store) = seeded();
    let thumb = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280".to_string();
    let req = CreateOidcProvider {
        account: SHARED.into(),
        url: "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE".into(),
        client_ids: vec!["sts.amazonaws.com".into()],
        thumbprints: vec![thumb.clone()],
        tags: vec![Tag::new("cluster", "dev")],
    };
    let p = store.create_oidc_provider(&req).unwrap();
    assert_eq!(
        p.arn,
        "arn:aws:iam::222222222222:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    );
    assert_eq!(store.get_oidc_provider(&p.arn).unwrap(), p);
    let e = store.create_oidc_provider(&req).unwrap_err();
    assert_eq!(
        code(e),
        (
            "EntityAlreadyExists",
            409,
            "Provider with url https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE already exists."
                .into()
        )
    );
    assert_eq!(store.list_oidc_providers(SHARED).unwrap(), vec![p.clone()]);
    assert!(store.list_oidc_providers(DEV).unwrap().is_empty());
    for (bad, expect) in [
        (
            CreateOidcProvider {
                url: "http://insecure".into(),
                ..req.clone()
            },
            "InvalidInput",
        ),
        (
            CreateOidcProvider {
                url: "https://other".into(),
                client_ids: (0..101).map(|i| format!("c{i}")).collect(),
                ..req.clone()
            },
            "LimitExceeded",
        ),
        (
            CreateOidcProvider {
                url: "https://other".into(),
                thumbprints: vec![thumb.clone(); 6],
                ..req.clone()
            },
            "LimitExceeded",
        ),
        (
            CreateOidcProvider {
                url: "https://other".into(),
                thumbprints: vec!["abc".into()],
                ..req.clone()
            },
            "ValidationError",
        ),
    ] {
        assert_eq!(store.create_oidc_provider(&bad).unwrap_err().code(), expect);
    }
    store.add_client_id(&p.arn, "my-audience").unwrap();
    store.add_client_id(&p.arn, "my-audience").unwrap();
    assert_eq!(
        store.get_oidc_provider(&p.arn).unwrap().client_ids,
        ["sts.amazonaws.com", "my-audience"]
    );
    store.remove_client_id(&p.arn, "sts.amazonaws.com").unwrap();
    assert_eq!(
        store.get_oidc_provider(&p.arn).unwrap().client_ids,
        ["my-audience"]
    );
    for i in 0..99 {
        store.add_client_id(&p.arn, &format!("c{i}")).unwrap();
    }
    assert_eq!(
        store
            .add_client_id(&p.arn, "one-too-many")
            .unwrap_err()
            .code(),
        "LimitExceeded"
    );
    let t2 = "A".repeat(40);
    store.update_thumbprints(&p.arn, &[t2]).unwrap();
    assert_eq!(
        store.get_oidc_provider(&p.arn).unwrap().thumbprints,
        ["a".repeat(40)]
    );
    assert_eq!(
        store
            .update_thumbprints(&p.arn, &vec![thumb; 6])
            .unwrap_err()
            .code(),
        "LimitExceeded"
    );
    store.delete_oidc_provider(&p.arn).unwrap();
    let e = store.get_oidc_provider(&p.arn).unwrap_err();
    assert_eq!(e.code(), "NoSuchEntity");
    assert_eq!(
        store.delete_oidc_provider(&p.arn).unwrap_err().code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store.add_client_id(&p.arn, "x").unwrap_err().code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store.get_oidc_provider("not-an-arn").unwrap_err().code(),
        "NoSuchEntity"
    );
}

#[test]
fn associate_oidc_provider_is_idempotent_and_adds_the_audience() {
    let (_dir, store) = seeded();
    // The twin's local issuers are http:// on loopback; IAM's ARN and URL drop the scheme.
    let issuer = "http://127.0.0.1:4555/id/ABC";
    let (p, did) = store
        .associate_oidc_provider(DEV, issuer, "sts.amazonaws.com")
        .unwrap();
    assert_eq!(did, OidcAssociation::Created);
    assert_eq!(
        p.arn,
        "arn:aws:iam::111111111111:oidc-provider/127.0.0.1:4555/id/ABC"
    );
    assert_eq!(p.url, "https://127.0.0.1:4555/id/ABC");
    assert_eq!(p.client_ids, ["sts.amazonaws.com"]);
    let (again, did) = store
        .associate_oidc_provider(DEV, issuer, "sts.amazonaws.com")
        .unwrap();
    assert_eq!(did, OidcAssociation::AlreadyAssociated);
    assert_eq!(again, p);
    let (wider, did) = store
        .associate_oidc_provider(
            DEV,
            "https://127.0.0.1:4555/id/ABC/",
            "pods.eks.amazonaws.com",
        )
        .unwrap();
    assert_eq!(did, OidcAssociation::AudienceAdded);
    assert_eq!(
        wider.client_ids,
        ["sts.amazonaws.com", "pods.eks.amazonaws.com"]
    );
    assert_eq!(store.list_oidc_providers(DEV).unwrap(), vec![wider]);
    // Another account gets its own provider for the same issuer (seed 000's cross-account one).
    let (other, did) = store
        .associate_oidc_provider(SHARED, issuer, "sts.amazonaws.com")
        .unwrap();
    assert_eq!(did, OidcAssociation::Created);
    assert!(other
        .arn
        .starts_with("arn:aws:iam::222222222222:oidc-provider/"));
    // Bad input is refused with IAM's errors, and nothing is written.
    let e = store.associate_oidc_provider(DEV, issuer, "").unwrap_err();
    assert_eq!(code(e).0, "ValidationError");
    let e = store
        .associate_oidc_provider("333333333333", issuer, "sts.amazonaws.com")
        .unwrap_err();
    assert_eq!(code(e).1, 404);
    let e = store
        .associate_oidc_provider(DEV, "ftp://x/y", "sts.amazonaws.com")
        .unwrap_err();
    assert_eq!(code(e).0, "InvalidInput");
    assert_eq!(store.list_oidc_providers(DEV).unwrap().len(), 1);
}

#[test]
fn clusters() {
    let (_dir, store) = seeded();
    let c = store
        .create_cluster(&NewCluster::new(
            SHARED,
            "eu-west-1",
            "prod",
            "https://issuer/clusters/prod",
        ))
        .unwrap();
    assert_eq!(store.get_cluster(SHARED, "eu-west-1", "prod").unwrap(), c);
    assert_eq!(
        store
            .create_cluster(&NewCluster::new(
                SHARED,
                "eu-west-1",
                "prod",
                "https://issuer"
            ))
            .unwrap_err()
            .code(),
        "ResourceInUseException"
    );
    assert_eq!(
        store
            .create_cluster(&NewCluster::new(
                SHARED,
                "eu-west-1",
                "bad name",
                "https://issuer"
            ))
            .unwrap_err()
            .code(),
        "InvalidInput"
    );
    // Another region is another namespace.
    assert_eq!(
        store
            .get_cluster(SHARED, "us-east-1", "prod")
            .unwrap_err()
            .code(),
        "ResourceNotFoundException"
    );
}

#[test]
fn deleting_a_cluster_deletes_its_associations_and_service_accounts() {
    let (_dir, store) = seeded();
    let mut new = NewCluster::new(DEV, "us-east-1", "blue", "http://127.0.0.1:1/id/B");
    new.role_arn = Some(format!("arn:aws:iam::{DEV}:role/eks"));
    new.version = Some("1.31".into());
    new.tags.insert("env".into(), "blue".into());
    let blue = store.create_cluster(&new).unwrap();
    assert_eq!(blue.role_arn, new.role_arn);
    assert_eq!(blue.tags.get("env").map(String::as_str), Some("blue"));
    let dev = store
        .get_cluster(DEV, "us-east-1", "development-cluster")
        .unwrap();
    let association = |cluster: &twin_state::Cluster| twin_state::NewPodIdentityAssociation {
        account: DEV.into(),
        region: "us-east-1".into(),
        cluster_name: cluster.name.clone(),
        namespace: "default".into(),
        service_account: "app".into(),
        role_arn: format!("arn:aws:iam::{DEV}:role/app"),
        ..Default::default()
    };
    for c in [&blue, &dev] {
        store
            .create_pod_identity_association(c, &association(c))
            .unwrap();
        store
            .apply_service_account(c, "default", "app", Default::default(), Default::default())
            .unwrap();
    }
    let deleted = store.delete_cluster(DEV, "us-east-1", "blue").unwrap();
    assert_eq!(deleted, blue);
    assert_eq!(
        code(store.get_cluster(DEV, "us-east-1", "blue").unwrap_err()).0,
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(store.delete_cluster(DEV, "us-east-1", "blue").unwrap_err()),
        (
            "ResourceNotFoundException",
            404,
            "No cluster found for name: blue.".into()
        )
    );
    let none = store
        .list_pod_identity_associations(&blue, None, None, 100, None)
        .unwrap()
        .associations;
    assert!(none.is_empty(), "{none:?}");
    assert!(store.list_service_accounts(&blue, None).unwrap().is_empty());
    assert!(store
        .find_pod_identity_association(&blue, "default", "app")
        .unwrap()
        .is_none());
    // The other cluster keeps its own.
    assert_eq!(
        store
            .list_pod_identity_associations(&dev, None, None, 100, None)
            .unwrap()
            .associations
            .len(),
        1
    );
    assert_eq!(store.list_service_accounts(&dev, None).unwrap().len(), 1);
    // The name can be used again, for a new cluster.
    store.create_cluster(&new).unwrap();
    assert!(store
        .list_pod_identity_associations(&blue, None, None, 100, None)
        .unwrap()
        .associations
        .is_empty());
}

fn new_session(role: &twin_state::Role, name: &str, expires_in: Duration) -> NewSession {
    let now = OffsetDateTime::now_utc();
    NewSession {
        role_arn: role.arn.clone(),
        role_id: role.role_id.clone(),
        session_name: name.into(),
        issued: now,
        expires: now + expires_in,
        session_policy: None,
        session_policy_arns: vec![],
        session_tags: vec![Tag::new("team", "pics")],
        transitive_tag_keys: vec!["team".into()],
        source_identity: Some("alice".into()),
        chained: false,
    }
}

#[test]
fn sessions_resolve_and_end_with_their_role() {
    let (_dir, store) = seeded();
    let r = store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    let s = store
        .issue_session(&new_session(&r, "botocore-session-1", Duration::hours(1)))
        .unwrap();
    assert!(s.access_key_id.starts_with("ASIA") && s.access_key_id.len() == 20);
    assert_eq!(s.secret_access_key.len(), 40);
    assert!(s.session_token.len() >= 200);
    assert_eq!(
        s.assumed_role_arn,
        "arn:aws:sts::111111111111:assumed-role/r/botocore-session-1"
    );
    assert_eq!(s.user_id(), format!("{}:botocore-session-1", r.role_id));
    assert_eq!(
        store.get_session(&s.access_key_id).unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.put_session(&s).unwrap_err().code(),
        "EntityAlreadyExists"
    );
    let expired = store
        .issue_session(&new_session(&r, "old", Duration::seconds(-1)))
        .unwrap();
    assert_eq!(
        store
            .delete_expired_sessions(OffsetDateTime::now_utc())
            .unwrap(),
        1
    );
    assert_eq!(store.get_session(&expired.access_key_id).unwrap(), None);
    assert!(store.get_session(&s.access_key_id).unwrap().is_some());

    store.delete_role(DEV, "r").unwrap();
    assert_eq!(store.get_session(&s.access_key_id).unwrap(), None);
    // A session for a role that is gone (or was replaced) is refused.
    let e = store
        .issue_session(&new_session(&r, "late", Duration::hours(1)))
        .unwrap_err();
    assert_eq!(e.code(), "NoSuchEntity");
    let r2 = store
        .create_role(&role(DEV, "r", &service_trust()))
        .unwrap();
    assert!(store
        .issue_session(&new_session(&r, "stale-id", Duration::hours(1)))
        .is_err());
    let s2 = store
        .issue_session(&new_session(&r2, "fresh", Duration::hours(1)))
        .unwrap();
    assert!(store.get_session(&s2.access_key_id).unwrap().is_some());
    assert_eq!(
        store
            .issue_session(&NewSession {
                role_arn: "arn:aws:iam::111111111111:user/admin".into(),
                ..new_session(&r2, "x", Duration::hours(1))
            })
            .unwrap_err()
            .code(),
        "InvalidInput"
    );
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let role_id = {
        let store = Store::open(dir.path()).unwrap();
        store
            .seed_if_empty(&twin_state::World::default_world(|c| {
                format!("https://x/clusters/{c}")
            }))
            .unwrap();
        store
            .create_role(&role(DEV, "kept", &service_trust()))
            .unwrap()
            .role_id
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_role(DEV, "kept").unwrap().role_id, role_id);
    assert!(store.path().ends_with("twin-state.redb"));
}

#[test]
fn two_writers_lose_no_update() {
    let (_dir, store) = seeded();
    store
        .create_role(&role(DEV, "shared", &service_trust()))
        .unwrap();
    let store = std::sync::Arc::new(store);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    // Read-modify-write of the same record from both threads.
                    store
                        .tag_role(DEV, "shared", &[Tag::new(format!("t{t}-{i}"), "v")])
                        .unwrap();
                    store
                        .create_role(&role(DEV, &format!("t{t}-r{i}"), &service_trust()))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.get_role(DEV, "shared").unwrap().tags.len(), 40);
    let all = store
        .list_roles(
            DEV,
            None,
            &Paging {
                marker: None,
                max_items: Some(1000),
            },
        )
        .unwrap();
    assert_eq!(all.items.len(), 41);
}

#[test]
fn error_codes_and_statuses() {
    let cases = [
        (StateError::NoSuchEntity("x".into()), "NoSuchEntity", 404),
        (
            StateError::EntityAlreadyExists("x".into()),
            "EntityAlreadyExists",
            409,
        ),
        (
            StateError::DeleteConflict("x".into()),
            "DeleteConflict",
            409,
        ),
        (StateError::LimitExceeded("x".into()), "LimitExceeded", 409),
        (
            StateError::MalformedPolicyDocument("x".into()),
            "MalformedPolicyDocument",
            400,
        ),
        (StateError::InvalidInput("x".into()), "InvalidInput", 400),
        (StateError::Validation("x".into()), "ValidationError", 400),
        (
            StateError::ResourceNotFound("x".into()),
            "ResourceNotFoundException",
            404,
        ),
        (
            StateError::ResourceInUse("x".into()),
            "ResourceInUseException",
            409,
        ),
        (StateError::Storage("x".into()), "ServiceFailure", 500),
    ];
    for (e, c, s) in cases {
        assert_eq!((e.code(), e.http_status()), (c, s));
        assert_eq!(e.is_client_error(), s < 500);
    }
}
