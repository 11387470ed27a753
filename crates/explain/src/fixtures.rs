//! Test worlds: a snapshot whose chains all work (an IRSA service account and a cross-account
//! EKS Pod Identity one, as seeds 002 and 004 set them up), for the tests to break one thing
//! at a time.

use std::collections::BTreeMap;

use serde_json::json;
use twin_state::snapshot::{
    Snapshot, SnapshotAssociation, SnapshotBucket, SnapshotCluster, SnapshotOidcProvider,
    SnapshotPolicy, SnapshotRole, SnapshotServiceAccount,
};

pub const DEV: &str = "111111111111";
pub const SHARED: &str = "222222222222";
pub const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123";
pub const HOST: &str = "oidc.eks.us-east-1.amazonaws.com/id/ABC123";
pub const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:111111111111:cluster/dev";
pub const IRSA_ROLE: &str = "arn:aws:iam::111111111111:role/irsa-reader";
pub const PRIMARY: &str = "arn:aws:iam::111111111111:role/eks-pod-identity-primary-role";
pub const TARGET: &str = "arn:aws:iam::222222222222:role/s3-reader-target-role";

fn doc(v: serde_json::Value) -> String {
    json!({"Version": "2012-10-17", "Statement": v}).to_string()
}

pub fn role(arn: &str, trust: serde_json::Value, identity: serde_json::Value) -> SnapshotRole {
    let account = arn.split(':').nth(4).unwrap_or_default().to_string();
    let name = arn.rsplit('/').next().unwrap_or_default().to_string();
    SnapshotRole {
        account,
        name,
        arn: arn.to_string(),
        max_session_duration: 3600,
        trust_policy: doc(trust),
        identity_policies: match identity.as_array() {
            Some(statements) if statements.is_empty() => Vec::new(),
            _ => vec![SnapshotPolicy {
                name: "inline".to_string(),
                document: doc(identity),
            }],
        },
        permissions_boundary: None,
    }
}

pub fn irsa_trust(condition: serde_json::Value) -> serde_json::Value {
    json!([{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{DEV}:oidc-provider/{HOST}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition
    }])
}

pub fn good_irsa_condition() -> serde_json::Value {
    json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:default:irsa-app",
        format!("{HOST}:aud"): "sts.amazonaws.com"
    }})
}

pub fn primary_trust(actions: serde_json::Value) -> serde_json::Value {
    json!([{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": actions}])
}

pub fn target_trust(tag_session: bool) -> serde_json::Value {
    let mut statements = vec![
        json!({"Effect": "Allow", "Principal": {"AWS": PRIMARY}, "Action": ["sts:AssumeRole"]}),
    ];
    if tag_session {
        statements.push(
            json!({"Effect": "Allow", "Principal": {"AWS": PRIMARY}, "Action": ["sts:TagSession"]}),
        );
    }
    json!(statements)
}

pub fn assume_target(actions: serde_json::Value) -> serde_json::Value {
    json!([{"Effect": "Allow", "Action": actions, "Resource": TARGET}])
}

/// Every chain works.
pub fn working() -> Snapshot {
    Snapshot {
        accounts: vec![DEV.to_string(), SHARED.to_string()],
        roles: vec![
            role(
                IRSA_ROLE,
                irsa_trust(good_irsa_condition()),
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::dev-data/*"}]),
            ),
            role(
                PRIMARY,
                primary_trust(json!(["sts:AssumeRole", "sts:TagSession"])),
                assume_target(json!(["sts:AssumeRole", "sts:TagSession"])),
            ),
            role(
                TARGET,
                target_trust(true),
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": ["arn:aws:s3:::pics", "arn:aws:s3:::pics/*"]}]),
            ),
        ],
        oidc_providers: vec![SnapshotOidcProvider {
            account: DEV.to_string(),
            arn: format!("arn:aws:iam::{DEV}:oidc-provider/{HOST}"),
            url: ISSUER.to_string(),
            client_ids: vec!["sts.amazonaws.com".to_string()],
        }],
        clusters: vec![SnapshotCluster {
            name: "dev".to_string(),
            account: DEV.to_string(),
            region: "us-east-1".to_string(),
            arn: CLUSTER_ARN.to_string(),
            issuer: ISSUER.to_string(),
        }],
        service_accounts: vec![
            SnapshotServiceAccount {
                cluster_arn: CLUSTER_ARN.to_string(),
                namespace: "default".to_string(),
                name: "irsa-app".to_string(),
                annotations: BTreeMap::from([(
                    "eks.amazonaws.com/role-arn".to_string(),
                    IRSA_ROLE.to_string(),
                )]),
            },
            SnapshotServiceAccount {
                cluster_arn: CLUSTER_ARN.to_string(),
                namespace: "my-app-namespace".to_string(),
                name: "my-app-sa".to_string(),
                annotations: BTreeMap::new(),
            },
        ],
        associations: vec![SnapshotAssociation {
            cluster_arn: CLUSTER_ARN.to_string(),
            namespace: "my-app-namespace".to_string(),
            service_account: "my-app-sa".to_string(),
            role_arn: PRIMARY.to_string(),
            target_role_arn: Some(TARGET.to_string()),
            disable_session_tags: false,
            policy: None,
        }],
        buckets: vec![
            SnapshotBucket {
                name: "pics".to_string(),
                owner: SHARED.to_string(),
                policy: None,
            },
            SnapshotBucket {
                name: "dev-data".to_string(),
                owner: DEV.to_string(),
                policy: None,
            },
        ],
    }
}

/// Replaces the role with this ARN.
pub fn with_role(mut snap: Snapshot, replacement: SnapshotRole) -> Snapshot {
    for r in &mut snap.roles {
        if r.arn == replacement.arn {
            *r = replacement.clone();
        }
    }
    snap
}
