//! `RoleChainAssociation` (`rolechain.dev/v1alpha1`, namespaced): which chain of roles the
//! pods of one service account get, as the agent's association file says it, held by any
//! cluster. The CRD's YAML in `deploy/` is generated from these types ([`crd_yaml`]); a test
//! fails when it is out of date.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A role after the first, with the external id its trust policy may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRole {
    /// The role's ARN.
    pub arn: String,
    /// `sts:ExternalId`, when its trust policy asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Which session tags the agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SessionTags {
    /// None.
    None,
    /// EKS's cluster, namespace and service-account tags (the default).
    #[default]
    ServiceAccount,
    /// Those and the pod's name and uid (one cache entry per pod).
    Pod,
}

/// The chain of a service account of the resource's namespace.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rolechain.dev",
    version = "v1alpha1",
    kind = "RoleChainAssociation",
    namespaced,
    status = "RoleChainAssociationStatus",
    shortname = "rca",
    doc = "The chain of roles the pods of one service account get: the node agent's association, as a Kubernetes resource.",
    printcolumn = r#"{"name":"ServiceAccount","type":"string","jsonPath":".spec.serviceAccount"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.roleArn"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RoleChainAssociationSpec {
    /// The service account, in the resource's namespace.
    pub service_account: String,
    /// The first role, assumed with the pod's own token (`AssumeRoleWithWebIdentity`); without
    /// it, EKS Auth's `AssumeRoleForPodIdentity` starts the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The roles then assumed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_role_arns: Vec<TargetRole>,
    /// The session tags sent.
    #[serde(default)]
    pub session_tags: SessionTags,
    /// The last session's duration (chained hops: at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

/// What the agent last saw of the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleChainAssociationStatus {
    /// `Accepted`: `True` when the agent serves the chain, `False` with what is wrong with it;
    /// `Resolved`, once a pod asked for it: `True`, or `False` with STS's or EKS Auth's last
    /// answer.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A status condition, as Kubernetes shapes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Accepted` or `Resolved`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A one-word reason.
    #[serde(default)]
    pub reason: String,
    /// What happened, for people.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
}

/// The CRD's YAML, as `deploy/base/crd.yaml` holds it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt as _;
    let crd = RoleChainAssociation::crd();
    let json = serde_json::to_value(&crd).unwrap_or_default();
    format!(
        "# Generated from crates/webhook/src/crd.rs (RoleChainAssociation); do not edit.\n# Regenerate: cargo run -- webhook crd > deploy/base/crd.yaml\n{}",
        serde_saphyr::to_string(&json).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_reads_the_association_file_shape() {
        let spec: RoleChainAssociationSpec = serde_json::from_value(serde_json::json!({
            "serviceAccount": "my-app-sa",
            "roleArn": "arn:aws:iam::111111111111:role/first",
            "targetRoleArns": [{"arn": "arn:aws:iam::222222222222:role/second", "externalId": "x"}],
            "sessionTags": "pod",
            "durationSeconds": 3600
        }))
        .unwrap();
        assert_eq!(spec.target_role_arns[0].external_id.as_deref(), Some("x"));
        assert_eq!(spec.session_tags, SessionTags::Pod);
        let bad = serde_json::from_value::<RoleChainAssociationSpec>(
            serde_json::json!({"serviceAccount": "a", "sessionTags": "everything"}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn the_crd_is_namespaced_with_a_status() {
        let yaml = crd_yaml();
        assert!(
            yaml.contains("name: rolechainassociations.rolechain.dev"),
            "{yaml}"
        );
        assert!(yaml.contains("scope: Namespaced"), "{yaml}");
        assert!(yaml.contains("status: {}"), "{yaml}");
    }

    /// `deploy/base/crd.yaml` is what the types generate.
    #[test]
    fn the_crd_in_deploy_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/base/crd.yaml");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == crd_yaml(),
            "deploy/base/crd.yaml is out of date: cargo run -- webhook crd > deploy/base/crd.yaml"
        );
    }
}
