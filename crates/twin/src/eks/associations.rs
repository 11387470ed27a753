//! EKS Pod Identity associations: `Create`/`Describe`/`List`/`Update`/`DeletePodIdentityAssociation`.

use std::collections::BTreeMap;

use awswire::AwsError;
use iam::IdentityArn;
use serde_json::{json, Value};
use twin_state::{
    Cluster, NewPodIdentityAssociation, PodIdentityAssociation, PodIdentityAssociationUpdate,
    StateError,
};

use super::{
    max_results, printable, query_params, state_error, Call, JsonBody, Out, POD_IDENTITY_PRINCIPAL,
};

/// EKS's quota of tags per resource.
const MAX_TAGS: usize = 50;

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::invalid_parameter_exception(message)
}

/// A Kubernetes DNS-1123 label (namespaces): 1–63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&s.len())
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

/// A Kubernetes DNS-1123 subdomain (service account names): up to 253 characters, dot-separated
/// labels of lowercase letters, digits and `-`.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label)
}

fn check_namespace(namespace: &str) -> Result<(), AwsError> {
    if is_dns_label(namespace) {
        return Ok(());
    }
    Err(invalid(format!(
        "Namespace '{}' is invalid: it must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit).",
        printable(namespace)
    )))
}

fn check_service_account(service_account: &str) -> Result<(), AwsError> {
    if is_dns_subdomain(service_account) {
        return Ok(());
    }
    Err(invalid(format!(
        "ServiceAccount '{}' is invalid: it must be a DNS-1123 subdomain (at most 253 lowercase letters, digits, '-' and '.').",
        printable(service_account)
    )))
}

/// A role ARN's (account, role name).
pub(super) fn role_account(field: &str, arn: &str) -> Result<(String, String), AwsError> {
    match arn.parse::<IdentityArn>() {
        Ok(IdentityArn::Role { account, name, .. }) => Ok((account, name)),
        _ => Err(invalid(format!(
            "The {field} '{}' is not a valid IAM role ARN.",
            printable(arn)
        ))),
    }
}

pub(super) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}"
        )));
    }
    for (key, value) in tags {
        let key_len = key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(invalid(format!(
                "Tag key '{}' must be 1 to 128 characters.",
                printable(key)
            )));
        }
        if value.chars().count() > 256 {
            return Err(invalid(format!(
                "The value of tag '{}' must be at most 256 characters.",
                printable(key)
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!(
                "Tag key '{}' uses the reserved prefix aws:.",
                printable(key)
            )));
        }
    }
    Ok(())
}

/// The session policy: IAM's grammar for identity policies, in IAM's words.
fn check_policy(policy: &str) -> Result<(), AwsError> {
    iam::Policy::parse(policy, iam::PolicyKind::Identity)
        .map(|_| ())
        .map_err(|e| invalid(format!("The policy is not a valid IAM policy: {e}")))
}

fn policy_needs_untagged() -> AwsError {
    invalid("disableSessionTags must be true when a policy is specified.")
}

/// EKS's `PodIdentityAssociation`.
pub(super) fn render(a: &PodIdentityAssociation) -> Value {
    let mut out = json!({
        "clusterName": a.cluster_name,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "roleArn": a.role_arn,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
        "tags": a.tags,
        "createdAt": awswire::epoch_seconds(a.created_at),
        "modifiedAt": awswire::epoch_seconds(a.modified_at),
        "disableSessionTags": a.disable_session_tags,
    });
    if let Some(target) = &a.target_role_arn {
        out["targetRoleArn"] = json!(target);
    }
    if let Some(external) = a.external_id() {
        out["externalId"] = json!(external);
    }
    if let Some(policy) = &a.policy {
        out["policy"] = json!(policy);
    }
    if let Some(owner) = &a.owner_arn {
        out["ownerArn"] = json!(owner);
    }
    out
}

/// EKS's `PodIdentityAssociationSummary`.
fn render_summary(a: &PodIdentityAssociation) -> Value {
    let mut out = json!({
        "clusterName": a.cluster_name,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
    });
    if let Some(owner) = &a.owner_arn {
        out["ownerArn"] = json!(owner);
    }
    out
}

impl Call<'_> {
    /// `iam:PassRole` on the association's role, to `pods.eks.amazonaws.com`.
    fn pass_role(&self, role_arn: &str) -> Result<(), AwsError> {
        self.authorize("iam:PassRole", role_arn, &|ctx| {
            ctx.set("iam:PassedToService", POD_IDENTITY_PRINCIPAL);
        })
    }

    /// The association's role: in the cluster's account, and existing.
    fn check_role(&self, cluster: &Cluster, role_arn: &str) -> Result<(), AwsError> {
        let (account, name) = role_account("roleArn", role_arn)?;
        if account != cluster.account {
            return Err(invalid(format!(
                "The roleArn {} must be in the cluster's account {}; use targetRoleArn for a role in another account.",
                printable(role_arn),
                cluster.account
            )));
        }
        if self.role_exists(&account, &name, role_arn)? {
            Ok(())
        } else {
            Err(invalid("Role provided in the request does not exist"))
        }
    }

    pub(super) fn create_association(&self, cluster_name: &str) -> Out {
        let body = JsonBody::parse(&self.req.body)?;
        let namespace = body.required_str("namespace")?;
        let service_account = body.required_str("serviceAccount")?;
        let role_arn = body.required_str("roleArn")?;
        let client_request_token = body.str("clientRequestToken")?;
        let tags = body.string_map("tags")?.unwrap_or_default();
        let disable_session_tags = body.bool("disableSessionTags")?.unwrap_or(false);
        let target_role_arn = body.str("targetRoleArn")?.filter(|t| !t.is_empty());
        let policy = body.str("policy")?.filter(|p| !p.is_empty());

        let cluster = self.cluster(cluster_name, "eks:CreatePodIdentityAssociation")?;
        check_namespace(&namespace)?;
        check_service_account(&service_account)?;
        check_tags(&tags)?;
        if let Some(target) = &target_role_arn {
            role_account("targetRoleArn", target)?;
        }
        if let Some(policy) = &policy {
            check_policy(policy)?;
            if !disable_session_tags {
                return Err(policy_needs_untagged().into());
            }
        }
        self.check_role(&cluster, &role_arn)?;
        self.pass_role(&role_arn)?;

        let association = self.inner.store.create_pod_identity_association(
            &cluster,
            &NewPodIdentityAssociation {
                account: cluster.account.clone(),
                region: cluster.region.clone(),
                cluster_name: cluster.name.clone(),
                namespace,
                service_account,
                role_arn,
                target_role_arn,
                disable_session_tags,
                policy,
                tags,
                client_request_token,
            },
        )?;
        tracing::info!(
            association = %association.association_id,
            cluster = %cluster.arn,
            namespace = %association.namespace,
            service_account = %association.service_account,
            "pod identity association created"
        );
        self.ok(&json!({ "association": render(&association) }))
    }

    pub(super) fn list_associations(&self, cluster_name: &str) -> Out {
        let query = query_params(self.req)?;
        let max = max_results(&query)?;
        let cluster = self.cluster(cluster_name, "eks:ListPodIdentityAssociations")?;
        let page = self.inner.store.list_pod_identity_associations(
            &cluster,
            query.get("namespace"),
            query.get("serviceAccount"),
            max,
            query.get("nextToken"),
        )?;
        let mut body = json!({
            "associations": page.associations.iter().map(render_summary).collect::<Vec<_>>(),
        });
        if let Some(next) = page.next_token {
            body["nextToken"] = json!(next);
        }
        self.ok(&body)
    }

    /// The cluster of an association request, once the caller may perform `action` on the
    /// association's ARN.
    fn association_cluster(
        &self,
        cluster_name: &str,
        id: &str,
        action: &str,
    ) -> Result<Cluster, AwsError> {
        // The ARN the association has (or would have), authorized before the lookup as for
        // clusters.
        let arn = format!(
            "arn:aws:eks:{}:{}:podidentityassociation/{cluster_name}/{id}",
            self.region(),
            self.account
        );
        self.authorize(action, &arn, &|_| {})?;
        self.inner
            .store
            .get_cluster(&self.account, self.region(), cluster_name)
            .map_err(state_error)
    }

    pub(super) fn describe_association(&self, cluster_name: &str, id: &str) -> Out {
        let cluster =
            self.association_cluster(cluster_name, id, "eks:DescribePodIdentityAssociation")?;
        let association = self
            .inner
            .store
            .get_pod_identity_association(&cluster, id)?;
        self.ok(&json!({ "association": render(&association) }))
    }

    pub(super) fn update_association(&self, cluster_name: &str, id: &str) -> Out {
        let body = JsonBody::parse(&self.req.body)?;
        let role_arn = body.str("roleArn")?;
        // Idempotent by nature: the token is accepted and not needed.
        body.str("clientRequestToken")?;
        let disable_session_tags = body.bool("disableSessionTags")?;
        // An empty string removes the target role or the policy.
        let target_role_arn = body
            .str("targetRoleArn")?
            .map(|t| Some(t).filter(|t| !t.is_empty()));
        let policy = body
            .str("policy")?
            .map(|p| Some(p).filter(|p| !p.is_empty()));

        let cluster =
            self.association_cluster(cluster_name, id, "eks:UpdatePodIdentityAssociation")?;
        if role_arn.is_none()
            && target_role_arn.is_none()
            && disable_session_tags.is_none()
            && policy.is_none()
        {
            return Err(invalid(
                "At least one of roleArn, targetRoleArn, disableSessionTags or policy must be specified.",
            ).into());
        }
        if let Some(Some(target)) = &target_role_arn {
            role_account("targetRoleArn", target)?;
        }
        if let Some(Some(policy)) = &policy {
            check_policy(policy)?;
        }
        if let Some(role) = &role_arn {
            self.check_role(&cluster, role)?;
            self.pass_role(role)?;
        }
        let association = self
            .inner
            .store
            .update_pod_identity_association(
                &cluster,
                id,
                &PodIdentityAssociationUpdate {
                    role_arn,
                    target_role_arn,
                    disable_session_tags,
                    policy,
                },
            )
            .map_err(|e| match e {
                StateError::InvalidInput(_) => policy_needs_untagged(),
                other => state_error(other),
            })?;
        self.ok(&json!({ "association": render(&association) }))
    }

    pub(super) fn delete_association(&self, cluster_name: &str, id: &str) -> Out {
        let cluster =
            self.association_cluster(cluster_name, id, "eks:DeletePodIdentityAssociation")?;
        let association = self
            .inner
            .store
            .delete_pod_identity_association(&cluster, id)?;
        tracing::info!(
            association = %association.association_id,
            cluster = %cluster.arn,
            "pod identity association deleted"
        );
        self.ok(&json!({ "association": render(&association) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names() {
        assert!(is_dns_label("my-app-namespace"));
        assert!(!is_dns_label("My-App"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("my-app-sa"));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("a_b"));
    }

    #[test]
    fn tags_rules() {
        let tags = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(check_tags(&tags("team", "x")).is_ok());
        assert!(check_tags(&tags("aws:x", "x")).is_err());
        assert!(check_tags(&tags("", "x")).is_err());
        assert!(check_tags(&tags("k", &"v".repeat(257))).is_err());
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_tags(&many).is_err());
    }
}
