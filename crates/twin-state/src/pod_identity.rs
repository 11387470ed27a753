//! EKS Pod Identity associations: which IAM role (and optional target role) the pods of one
//! service account in one cluster get, durable like the rest of the state.
//!
//! Two tables of their own (created when the store opens):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `pod_identity_associations` | (cluster ARN, association id) | [`PodIdentityAssociation`] |
//! | `pod_identity_subjects` | (cluster ARN, `namespace/service-account`) | the association id |
//!
//! The second table enforces EKS's one association per (namespace, service account) in a
//! cluster and is what EKS Auth looks the association up by, one B-tree search per request.
//! Both are written in one transaction, so they never disagree.
//!
//! The store keeps what it is given: the service layer checks the roles, names and tags
//! against EKS's rules before calling it.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{decode, encode, remove_by_first, Store};
use crate::error::{Result, StateError};
use crate::ids::IdSource;
use crate::model::Cluster;

type K2 = (&'static str, &'static str);

const ASSOCIATIONS: TableDefinition<K2, &'static [u8]> =
    TableDefinition::new("pod_identity_associations");
const SUBJECTS: TableDefinition<K2, &'static str> = TableDefinition::new("pod_identity_subjects");

/// EKS's id length after the `a-` prefix.
const ID_LEN: usize = 17;

/// Creates the tables, so read transactions can open them unconditionally.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(ASSOCIATIONS)?;
    txn.open_table(SUBJECTS)?;
    Ok(())
}

/// An EKS Pod Identity association, with the members of EKS's `PodIdentityAssociation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentityAssociation {
    /// `a-` + 17 lowercase letters and digits.
    pub association_id: String,
    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    pub association_arn: String,
    /// The cluster's name.
    pub cluster_name: String,
    /// The cluster's ARN (the association's key).
    pub cluster_arn: String,
    /// The cluster's (and the association's) account.
    pub account: String,
    /// The cluster's region.
    pub region: String,
    /// The Kubernetes namespace.
    pub namespace: String,
    /// The Kubernetes service account.
    pub service_account: String,
    /// The role EKS Auth assumes as `pods.eks.amazonaws.com` (in the cluster's account).
    pub role_arn: String,
    /// The role then assumed from the first role's session, if any (any account).
    #[serde(default)]
    pub target_role_arn: Option<String>,
    /// Whether EKS Pod Identity's six session tags are left out.
    #[serde(default)]
    pub disable_session_tags: bool,
    /// A session policy restricting the final session (only with `disable_session_tags`).
    #[serde(default)]
    pub policy: Option<String>,
    /// Tags of the association.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub modified_at: OffsetDateTime,
    /// The EKS add-on owning it; the twin has no add-ons, so always `None` today.
    #[serde(default)]
    pub owner_arn: Option<String>,
    /// The `clientRequestToken` it was created with, for idempotent retries.
    #[serde(default)]
    pub client_request_token: Option<String>,
}

impl PodIdentityAssociation {
    /// The external id EKS Auth sends when it assumes the target role:
    /// `REGION/ACCOUNT/CLUSTER/NAMESPACE/SERVICE-ACCOUNT`, present with a target role only.
    pub fn external_id(&self) -> Option<String> {
        self.target_role_arn.as_ref().map(|_| {
            format!(
                "{}/{}/{}/{}/{}",
                self.region, self.account, self.cluster_name, self.namespace, self.service_account
            )
        })
    }
}

/// Parameters of `CreatePodIdentityAssociation`, already validated by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPodIdentityAssociation {
    /// The cluster's account.
    pub account: String,
    /// The cluster's region.
    pub region: String,
    /// The cluster's name.
    pub cluster_name: String,
    /// The Kubernetes namespace.
    pub namespace: String,
    /// The Kubernetes service account.
    pub service_account: String,
    /// The role to assume first.
    pub role_arn: String,
    /// The role to chain into.
    pub target_role_arn: Option<String>,
    /// Leave out the session tags.
    pub disable_session_tags: bool,
    /// The session policy.
    pub policy: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The idempotency token.
    pub client_request_token: Option<String>,
}

/// Changes of `UpdatePodIdentityAssociation`; `None` leaves a member as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodIdentityAssociationUpdate {
    /// A new role.
    pub role_arn: Option<String>,
    /// A new target role; `Some(None)` removes it.
    pub target_role_arn: Option<Option<String>>,
    /// Session tags on or off.
    pub disable_session_tags: Option<bool>,
    /// A new session policy; `Some(None)` removes it.
    pub policy: Option<Option<String>>,
}

/// A page of associations, with EKS's `nextToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationPage {
    /// The associations of this page, by id.
    pub associations: Vec<PodIdentityAssociation>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

fn subject_key(namespace: &str, service_account: &str) -> String {
    // Kubernetes names never contain '/', so the pair is unambiguous.
    format!("{namespace}/{service_account}")
}

fn not_found(id: &str, cluster: &str) -> StateError {
    StateError::ResourceNotFound(format!(
        "No Pod Identity Association found with id {id} in cluster {cluster}."
    ))
}

fn now() -> OffsetDateTime {
    // EKS reports times to the millisecond.
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// The session policy may only be set while session tags are off (EKS's rule: both go into
/// STS's packed size, and EKS refuses the combination).
fn check_policy_rule(disable_session_tags: bool, policy: Option<&String>) -> Result<()> {
    if policy.is_some() && !disable_session_tags {
        return Err(StateError::InvalidInput(
            "disableSessionTags must be true when a policy is specified.".to_string(),
        ));
    }
    Ok(())
}

impl Store {
    /// `CreatePodIdentityAssociation` in `cluster`. A repeated request with the same
    /// `client_request_token` and the same members answers the association it created.
    ///
    /// # Errors
    ///
    /// `ResourceInUse` when the (namespace, service account) already has an association;
    /// `InvalidInput` for a policy without `disable_session_tags`; storage failures.
    pub fn create_pod_identity_association(
        &self,
        cluster: &Cluster,
        new: &NewPodIdentityAssociation,
    ) -> Result<PodIdentityAssociation> {
        check_policy_rule(new.disable_session_tags, new.policy.as_ref())?;
        let mut ids = IdSource::Os;
        let association_id = ids.lowercase_id("a-", ID_LEN)?;
        self.write_raw(|txn| {
            let mut associations = txn.open_table(ASSOCIATIONS)?;
            let mut subjects = txn.open_table(SUBJECTS)?;
            let subject = subject_key(&new.namespace, &new.service_account);
            let existing = subjects
                .get((cluster.arn.as_str(), subject.as_str()))?
                .map(|g| g.value().to_string());
            if let Some(existing_id) = existing {
                let found: Option<PodIdentityAssociation> = associations
                    .get((cluster.arn.as_str(), existing_id.as_str()))?
                    .map(|g| decode(ASSOCIATIONS_NAME, g.value()))
                    .transpose()?;
                if let Some(found) = found {
                    if new.client_request_token.is_some()
                        && found.client_request_token == new.client_request_token
                        && found.role_arn == new.role_arn
                        && found.target_role_arn == new.target_role_arn
                        && found.disable_session_tags == new.disable_session_tags
                        && found.policy == new.policy
                        && found.tags == new.tags
                    {
                        return Ok(found);
                    }
                }
                return Err(StateError::ResourceInUse(format!(
                    "Association already exists: {existing_id}"
                )));
            }
            let at = now();
            let association = PodIdentityAssociation {
                association_arn: format!(
                    "arn:aws:eks:{}:{}:podidentityassociation/{}/{association_id}",
                    cluster.region, cluster.account, cluster.name
                ),
                association_id: association_id.clone(),
                cluster_name: cluster.name.clone(),
                cluster_arn: cluster.arn.clone(),
                account: cluster.account.clone(),
                region: cluster.region.clone(),
                namespace: new.namespace.clone(),
                service_account: new.service_account.clone(),
                role_arn: new.role_arn.clone(),
                target_role_arn: new.target_role_arn.clone(),
                disable_session_tags: new.disable_session_tags,
                policy: new.policy.clone(),
                tags: new.tags.clone(),
                created_at: at,
                modified_at: at,
                owner_arn: None,
                client_request_token: new.client_request_token.clone(),
            };
            associations.insert(
                (cluster.arn.as_str(), association_id.as_str()),
                encode(&association)?.as_slice(),
            )?;
            subjects.insert(
                (cluster.arn.as_str(), subject.as_str()),
                association_id.as_str(),
            )?;
            Ok(association)
        })
    }

    /// `DescribePodIdentityAssociation`.
    ///
    /// # Errors
    ///
    /// `ResourceNotFound` when the cluster has no association with that id.
    pub fn get_pod_identity_association(
        &self,
        cluster: &Cluster,
        association_id: &str,
    ) -> Result<PodIdentityAssociation> {
        self.read_raw(|txn| {
            let associations = txn.open_table(ASSOCIATIONS)?;
            let found = associations.get((cluster.arn.as_str(), association_id))?;
            match found {
                Some(g) => decode(ASSOCIATIONS_NAME, g.value()),
                None => Err(not_found(association_id, &cluster.name)),
            }
        })
    }

    /// The association of a (namespace, service account), as EKS Auth looks it up.
    pub fn find_pod_identity_association(
        &self,
        cluster: &Cluster,
        namespace: &str,
        service_account: &str,
    ) -> Result<Option<PodIdentityAssociation>> {
        self.read_raw(|txn| {
            let subjects = txn.open_table(SUBJECTS)?;
            let subject = subject_key(namespace, service_account);
            let Some(id) = subjects
                .get((cluster.arn.as_str(), subject.as_str()))?
                .map(|g| g.value().to_string())
            else {
                return Ok(None);
            };
            let associations = txn.open_table(ASSOCIATIONS)?;
            let found = associations.get((cluster.arn.as_str(), id.as_str()))?;
            found
                .map(|g| decode(ASSOCIATIONS_NAME, g.value()))
                .transpose()
        })
    }

    /// `ListPodIdentityAssociations`: the cluster's associations by id, optionally only those
    /// of a namespace and/or service account, `max` per page from `next_token` (the id to
    /// start at, as the previous page returned it).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `next_token` this store did not hand out.
    pub fn list_pod_identity_associations(
        &self,
        cluster: &Cluster,
        namespace: Option<&str>,
        service_account: Option<&str>,
        max: usize,
        next_token: Option<&str>,
    ) -> Result<AssociationPage> {
        let start = match next_token {
            None => "",
            Some(t) if t.starts_with("a-") && t.len() == 2 + ID_LEN => t,
            Some(_) => {
                return Err(StateError::InvalidInput(
                    "The nextToken is not valid.".to_string(),
                ))
            }
        };
        self.read_raw(|txn| {
            let associations = txn.open_table(ASSOCIATIONS)?;
            let mut page = Vec::new();
            let mut next = None;
            for entry in associations.range((cluster.arn.as_str(), start)..)? {
                let (k, v) = entry?;
                let (cluster_arn, id) = k.value();
                if cluster_arn != cluster.arn {
                    break;
                }
                let a: PodIdentityAssociation = decode(ASSOCIATIONS_NAME, v.value())?;
                if namespace.is_some_and(|n| n != a.namespace)
                    || service_account.is_some_and(|s| s != a.service_account)
                {
                    continue;
                }
                if page.len() == max {
                    next = Some(id.to_string());
                    break;
                }
                page.push(a);
            }
            Ok(AssociationPage {
                associations: page,
                next_token: next,
            })
        })
    }

    /// `UpdatePodIdentityAssociation`: applies the changes and the modification time.
    ///
    /// # Errors
    ///
    /// `ResourceNotFound`; `InvalidInput` when the result would have a policy with session
    /// tags on.
    pub fn update_pod_identity_association(
        &self,
        cluster: &Cluster,
        association_id: &str,
        update: &PodIdentityAssociationUpdate,
    ) -> Result<PodIdentityAssociation> {
        self.write_raw(|txn| {
            let mut associations = txn.open_table(ASSOCIATIONS)?;
            let found: Option<PodIdentityAssociation> = associations
                .get((cluster.arn.as_str(), association_id))?
                .map(|g| decode(ASSOCIATIONS_NAME, g.value()))
                .transpose()?;
            let mut a = found.ok_or_else(|| not_found(association_id, &cluster.name))?;
            if let Some(role) = &update.role_arn {
                a.role_arn.clone_from(role);
            }
            if let Some(target) = &update.target_role_arn {
                a.target_role_arn.clone_from(target);
            }
            if let Some(disable) = update.disable_session_tags {
                a.disable_session_tags = disable;
            }
            if let Some(policy) = &update.policy {
                a.policy.clone_from(policy);
            }
            check_policy_rule(a.disable_session_tags, a.policy.as_ref())?;
            a.modified_at = now();
            associations.insert(
                (cluster.arn.as_str(), association_id),
                encode(&a)?.as_slice(),
            )?;
            Ok(a)
        })
    }

    /// `DeletePodIdentityAssociation`: removes it and answers what it was.
    ///
    /// # Errors
    ///
    /// `ResourceNotFound`.
    pub fn delete_pod_identity_association(
        &self,
        cluster: &Cluster,
        association_id: &str,
    ) -> Result<PodIdentityAssociation> {
        self.write_raw(|txn| {
            let mut associations = txn.open_table(ASSOCIATIONS)?;
            let removed: Option<PodIdentityAssociation> = associations
                .remove((cluster.arn.as_str(), association_id))?
                .map(|g| decode(ASSOCIATIONS_NAME, g.value()))
                .transpose()?;
            let a = removed.ok_or_else(|| not_found(association_id, &cluster.name))?;
            let mut subjects = txn.open_table(SUBJECTS)?;
            let subject = subject_key(&a.namespace, &a.service_account);
            subjects.remove((cluster.arn.as_str(), subject.as_str()))?;
            Ok(a)
        })
    }
}

const ASSOCIATIONS_NAME: &str = "pod_identity_associations";

/// Removes every association of the cluster `cluster_arn` (its deletion); answers how many.
pub(crate) fn remove_cluster(txn: &WriteTransaction, cluster_arn: &str) -> Result<usize> {
    let removed = remove_by_first(&mut txn.open_table(ASSOCIATIONS)?, cluster_arn)?;
    remove_by_first(&mut txn.open_table(SUBJECTS)?, cluster_arn)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::World;

    fn store() -> (tempfile::TempDir, Store, Cluster) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .seed_if_empty(&World::default_world(|c| {
                format!("http://127.0.0.1:1/id/{c}")
            }))
            .unwrap();
        let cluster = store
            .get_cluster("111111111111", "us-east-1", "development-cluster")
            .unwrap();
        (dir, store, cluster)
    }

    fn new(ns: &str, sa: &str) -> NewPodIdentityAssociation {
        NewPodIdentityAssociation {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            cluster_name: "development-cluster".into(),
            namespace: ns.into(),
            service_account: sa.into(),
            role_arn: "arn:aws:iam::111111111111:role/primary".into(),
            client_request_token: Some("t1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn create_find_list_update_delete_and_reopen() {
        let (dir, store, cluster) = store();
        let a = store
            .create_pod_identity_association(&cluster, &new("ns", "sa"))
            .unwrap();
        assert!(a.association_id.starts_with("a-"));
        assert_eq!(a.association_id.len(), 19);
        assert!(a.association_id[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(
            a.association_arn,
            format!(
                "arn:aws:eks:us-east-1:111111111111:podidentityassociation/development-cluster/{}",
                a.association_id
            )
        );
        // The same token and members: the same association; anything else: in use.
        assert_eq!(
            store
                .create_pod_identity_association(&cluster, &new("ns", "sa"))
                .unwrap(),
            a
        );
        let mut other = new("ns", "sa");
        other.client_request_token = Some("t2".into());
        let e = store
            .create_pod_identity_association(&cluster, &other)
            .unwrap_err();
        assert_eq!(e.code(), "ResourceInUseException");
        assert!(e.to_string().contains(&a.association_id));

        let b = store
            .create_pod_identity_association(&cluster, &new("ns", "other"))
            .unwrap();
        let page = store
            .list_pod_identity_associations(&cluster, None, None, 1, None)
            .unwrap();
        assert_eq!(page.associations.len(), 1);
        let rest = store
            .list_pod_identity_associations(&cluster, None, None, 1, page.next_token.as_deref())
            .unwrap();
        assert_eq!(rest.associations.len(), 1);
        assert!(rest.next_token.is_none());
        let only = store
            .list_pod_identity_associations(&cluster, Some("ns"), Some("other"), 10, None)
            .unwrap();
        assert_eq!(only.associations, vec![b.clone()]);

        // A policy needs session tags off, whether set now or already there.
        let e = store
            .update_pod_identity_association(
                &cluster,
                &a.association_id,
                &PodIdentityAssociationUpdate {
                    policy: Some(Some("{}".into())),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), "InvalidInput");
        let updated = store
            .update_pod_identity_association(
                &cluster,
                &a.association_id,
                &PodIdentityAssociationUpdate {
                    target_role_arn: Some(Some("arn:aws:iam::222222222222:role/t".into())),
                    disable_session_tags: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            updated.external_id().as_deref(),
            Some("us-east-1/111111111111/development-cluster/ns/sa")
        );

        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .find_pod_identity_association(&cluster, "ns", "sa")
                .unwrap(),
            Some(updated.clone())
        );
        let deleted = store
            .delete_pod_identity_association(&cluster, &a.association_id)
            .unwrap();
        assert_eq!(deleted, updated);
        assert!(store
            .find_pod_identity_association(&cluster, "ns", "sa")
            .unwrap()
            .is_none());
        assert_eq!(
            store
                .get_pod_identity_association(&cluster, &a.association_id)
                .unwrap_err()
                .code(),
            "ResourceNotFoundException"
        );
        // The subject is free again.
        store
            .create_pod_identity_association(&cluster, &other)
            .unwrap();
    }

    #[test]
    fn bad_next_token() {
        let (_dir, store, cluster) = store();
        let e = store
            .list_pod_identity_associations(&cluster, None, None, 10, Some("zzz"))
            .unwrap_err();
        assert_eq!(e.code(), "InvalidInput");
    }
}
