//! Helpers shared by the integration tests.
#![allow(dead_code)]

use twin_state::{CreateRole, Store, World};

pub const DEV: &str = "111111111111";
pub const SHARED: &str = "222222222222";

pub fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store
        .seed_if_empty(&World::default_world(|c| format!(
            "https://127.0.0.1:8443/clusters/{c}"
        )))
        .unwrap());
    (dir, store)
}

pub fn trust(principal_json: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal_json},"Action":"sts:AssumeRole"}}]}}"#
    )
}

pub fn service_trust() -> String {
    trust(r#"{"Service":"pods.eks.amazonaws.com"}"#)
}

pub fn role(account: &str, name: &str, trust_policy: &str) -> CreateRole {
    CreateRole {
        account: account.into(),
        name: name.into(),
        assume_role_policy: trust_policy.into(),
        ..Default::default()
    }
}

pub const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
