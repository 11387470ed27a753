//! World files: parsing, errors, seeding.

mod common;

use common::*;
use twin_state::{Store, World, WorldError};

const WORLD: &str = r#"
seed: test-seed
accounts:
  - id: "111111111111"
    alias: developer
    admin:
      access_keys:
        - access_key_id: AKIAIOSFODNN7EXAMPLE
          secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    roles:
      - name: eks-pod-identity-primary-role
        trust_policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: { Service: pods.eks.amazonaws.com }
              Action: [sts:AssumeRole, sts:TagSession]
        inline_policies:
          assume-target: |
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",
             "Resource":"arn:aws:iam::222222222222:role/target"}]}
        tags: { team: platform }
    clusters:
      - name: development-cluster
        region: us-east-1
        issuer: https://127.0.0.1:8443/clusters/development-cluster
  - id: "222222222222"
    alias: shared_content
    managed_policies:
      - name: pics-read-only
        path: /pics/
        description: read the pics bucket
        document:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: [s3:GetObject, s3:ListBucket]
              Resource: [arn:aws:s3:::pics, arn:aws:s3:::pics/*]
    oidc_providers:
      - url: https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
        client_ids: [sts.amazonaws.com]
    roles:
      # Listed before the role it trusts: seeding orders roles by their references.
      - name: chained
        trust_policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: { AWS: "arn:aws:iam::222222222222:role/target" }
              Action: sts:AssumeRole
      - name: target
        max_session_duration: 7200
        trust_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/eks-pod-identity-primary-role"},"Action":["sts:AssumeRole","sts:TagSession"]}]}'
        managed_policies: [pics-read-only]
"#;

#[test]
fn a_full_world_seeds() {
    let world = World::from_yaml(WORLD).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.seed_if_empty(&world).unwrap());
    let key = store
        .get_access_key("AKIAIOSFODNN7EXAMPLE")
        .unwrap()
        .unwrap();
    assert_eq!(key.account, DEV);
    assert_eq!(key.principal, "admin");
    // No keys given for shared_content: one generated.
    assert_eq!(store.list_access_keys(SHARED).unwrap().len(), 1);
    let primary = store
        .get_role(DEV, "eks-pod-identity-primary-role")
        .unwrap();
    assert!(primary.inline_policies.contains_key("assume-target"));
    assert_eq!(primary.tags[0].key, "team");
    let target = store.get_role(SHARED, "target").unwrap();
    assert_eq!(target.max_session_duration, 7200);
    assert!(target
        .assume_role_policy
        .document
        .contains(&primary.role_id));
    assert_eq!(
        target.attached_policies,
        ["arn:aws:iam::222222222222:policy/pics/pics-read-only"]
    );
    let chained = store.get_role(SHARED, "chained").unwrap();
    assert!(chained
        .assume_role_policy
        .document
        .contains(&target.role_id));
    let p = store
        .get_policy("arn:aws:iam::222222222222:policy/pics/pics-read-only")
        .unwrap();
    assert_eq!(p.attachment_count, 1);
    assert_eq!(store.list_oidc_providers(SHARED).unwrap().len(), 1);
    assert_eq!(
        store
            .get_cluster(DEV, "us-east-1", "development-cluster")
            .unwrap()
            .issuer_url,
        "https://127.0.0.1:8443/clusters/development-cluster"
    );
}

#[test]
fn a_seed_makes_generation_deterministic() {
    let world = World::from_yaml(WORLD).unwrap();
    let ids = |w: &World| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.seed_if_empty(w).unwrap();
        (
            store.list_access_keys(SHARED).unwrap(),
            store.get_role(SHARED, "target").unwrap().role_id,
            store.get_user(DEV, "admin").unwrap().user_id,
        )
    };
    let first = ids(&world);
    let second = ids(&world);
    assert_eq!(first.0[0].access_key_id, second.0[0].access_key_id);
    assert_eq!(first.0[0].secret_access_key, second.0[0].secret_access_key);
    assert_eq!(first.1, second.1);
    assert_eq!(first.2, second.2);
    let unseeded = World {
        seed: None,
        ..world.clone()
    };
    assert_ne!(ids(&unseeded).1, first.1);
}

#[test]
fn the_default_world_parses() {
    let w = World::default_world(|c| format!("https://localhost:8443/clusters/{c}"));
    assert_eq!(w.accounts.len(), 2);
    assert_eq!(w.accounts[0].id, DEV);
    assert_eq!(w.accounts[0].alias, "developer");
    assert_eq!(w.accounts[1].id, SHARED);
    assert_eq!(w.accounts[1].alias, "shared_content");
    assert_eq!(
        w.accounts[0].clusters[0].issuer,
        "https://localhost:8443/clusters/development-cluster"
    );
}

fn parse_err(yaml: &str) -> String {
    match World::from_yaml(yaml) {
        Err(WorldError::Parse(m)) => m,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_named_with_their_line() {
    let m = parse_err("accounts:\n  - id: \"111111111111\"\n    alias: dev\n    rolez: []\n");
    assert!(m.contains("unknown field `rolez`"), "{m}");
    assert!(m.contains("line 4"), "{m}");
    let m = parse_err(
        "accounts:\n  - id: \"111111111111\"\n    alias: dev\n    roles:\n      - name: r\n        trust_policy: {}\n        trust: x\n",
    );
    assert!(m.contains("unknown field `trust`"), "{m}");
    assert!(m.contains("line 7"), "{m}");
    let m = parse_err("sede: 1\naccounts: []\n");
    assert!(
        m.contains("unknown field `sede`") && m.contains("line 1"),
        "{m}"
    );
}

#[test]
fn other_parse_errors() {
    let m = parse_err("accounts:\n  - alias: dev\n");
    assert!(
        m.contains("missing field `id`") && m.contains("line 2"),
        "{m}"
    );
    let m = parse_err("accounts: 3\n");
    assert!(m.contains("line 1"), "{m}");
    let m = parse_err("accounts: [\n");
    assert!(m.contains("line 1"), "{m}");
    let m = parse_err(
        "accounts:\n  - id: \"1\"\n    alias: a\n    roles:\n      - name: r\n        trust_policy: {}\n        max_session_duration: soon\n",
    );
    assert!(m.contains("line 7"), "{m}");
}

#[test]
fn invalid_worlds_are_refused_whole() {
    let cases = [
        // A trust policy naming a role that is nowhere in the world.
        (
            r#"
accounts:
  - id: "111111111111"
    alias: dev
    roles:
      - name: r
        trust_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/ghost"},"Action":"sts:AssumeRole"}]}'
"#,
            "account 111111111111 role r",
            "MalformedPolicyDocument",
        ),
        (
            "accounts:\n  - id: \"12\"\n    alias: dev\n",
            "account 12",
            "InvalidInput",
        ),
        (
            "accounts:\n  - id: \"111111111111\"\n    alias: a\n  - id: \"111111111111\"\n    alias: b\n",
            "account 111111111111",
            "EntityAlreadyExists",
        ),
        (
            r#"
accounts:
  - id: "111111111111"
    alias: dev
    roles:
      - name: r
        trust_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"x.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        managed_policies: [missing]
"#,
            "role r managed policy missing",
            "NoSuchEntity",
        ),
        (
            "accounts:\n  - id: \"111111111111\"\n    alias: dev\n    admin:\n      access_keys:\n        - access_key_id: short\n          secret_access_key: x\n",
            "access key short",
            "InvalidInput",
        ),
    ];
    for (yaml, at, code) in cases {
        let world = World::from_yaml(yaml).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store.seed_if_empty(&world).unwrap_err();
        let WorldError::Invalid { at: got, source } = &e else {
            panic!("{e:?}");
        };
        assert!(got.contains(at), "{got} / {at}");
        assert_eq!(source.code(), code, "{e}");
        assert!(e.to_string().contains(code), "{e}");
        // Atomic: nothing of the failed world was stored.
        assert!(store.is_empty().unwrap());
    }
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.yaml");
    std::fs::write(
        &path,
        "accounts:\n  - id: \"111111111111\"\n    alias: dev\n",
    )
    .unwrap();
    assert_eq!(World::load(&path).unwrap().accounts.len(), 1);
    assert!(matches!(
        World::load(dir.path().join("missing.yaml")),
        Err(WorldError::Io { .. })
    ));
}
