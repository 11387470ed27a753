//! The cluster's associations (RoleChainAssociations, `rolechain agent --kubernetes`): each
//! resource validated on its own, a bad one left out with its error, the file's entries
//! first, then the cluster's, then EKS Auth.

use agent::associations::{AssociationFile, LoadOptions, Start};
use agent::routes::Routes;
use serde_json::json;

fn entry(namespace: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut v = spec;
    v["namespace"] = json!(namespace);
    v
}

#[test]
fn each_resource_is_validated_alone() {
    let (file, outcomes) = AssociationFile::from_entries(
        vec![
            (
                "apps/good".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "reader", "roleArn": "arn:aws:iam::111111111111:role/first",
                           "targetRoleArns": [{"arn": "arn:aws:iam::222222222222:role/second", "externalId": "optional-external-id"}]}),
                ),
            ),
            (
                "apps/bad-arn".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "writer", "roleArn": "not-an-arn"}),
                ),
            ),
            (
                "apps/unknown-field".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "x", "roleArn": "arn:aws:iam::111111111111:role/a", "extra": 1}),
                ),
            ),
            (
                "apps/twice".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "reader", "roleArn": "arn:aws:iam::111111111111:role/other"}),
                ),
            ),
            (
                "apps/eks-auth-start".into(),
                entry("apps", json!({"serviceAccount": "pi"})),
            ),
        ],
        LoadOptions { eks_auth: false },
    );
    assert_eq!(file.len(), 1);
    assert_eq!(
        file.get("apps", "reader").unwrap().chain.hops[0].role_arn,
        "arn:aws:iam::222222222222:role/second"
    );
    let errors: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.clone(), e.to_string())))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].1.contains("roleArn"), "{errors:#?}");
    assert!(errors[1].1.contains("extra"), "{errors:#?}");
    assert!(
        errors[2]
            .1
            .contains("another association already names this namespace and service account"),
        "{errors:#?}"
    );
    assert!(
        errors[3].1.contains("roleArn") || errors[3].1.contains("eks-auth"),
        "{errors:#?}"
    );
    assert!(outcomes[0].1.is_ok());
}

#[test]
fn the_file_comes_first_then_the_cluster_then_eks_auth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    std::fs::write(
        &path,
        "associations:\n  - namespace: apps\n    serviceAccount: both\n    roleArn: arn:aws:iam::111111111111:role/from-file\n",
    )
    .unwrap();
    let routes = Routes::load(Some(path), LoadOptions { eks_auth: true }).unwrap();
    let (cluster, _) = AssociationFile::from_entries(
        vec![
            (
                "apps/both".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "both", "roleArn": "arn:aws:iam::111111111111:role/from-cluster"}),
                ),
            ),
            (
                "apps/only".into(),
                entry(
                    "apps",
                    json!({"serviceAccount": "only", "roleArn": "arn:aws:iam::111111111111:role/from-cluster"}),
                ),
            ),
        ],
        LoadOptions { eks_auth: true },
    );
    routes.set_cluster(&cluster);
    let start = |sa: &str| routes.route("apps", sa).unwrap().chain.start.clone();
    assert_eq!(
        start("both"),
        Start::WebIdentity {
            role_arn: "arn:aws:iam::111111111111:role/from-file".into()
        }
    );
    assert_eq!(
        start("only"),
        Start::WebIdentity {
            role_arn: "arn:aws:iam::111111111111:role/from-cluster".into()
        }
    );
    assert_eq!(start("neither"), Start::EksAuth);
    // Removed from the cluster: back to EKS Auth.
    routes.set_cluster(&AssociationFile::default());
    assert_eq!(start("only"), Start::EksAuth);
}
