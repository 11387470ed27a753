//! Kubernetes ServiceAccounts of the local clusters: the namespace, name, annotations and labels
//! that pod mutation reads (`eks.amazonaws.com/role-arn` and its companions), durable like the
//! rest of the state.
//!
//! One table of its own (created when the store opens):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `service_accounts` | (cluster ARN, `namespace/name`) | [`ServiceAccount`] |
//!
//! Names, namespaces, annotation and label keys are checked against Kubernetes' own rules
//! (RFC 1123 names, qualified keys, 256 KiB of annotations), with the API server's messages, so
//! what a real cluster would refuse is refused here too. Namespaces are implicit, and every
//! namespace has its `default` service account, as the API server creates one in each.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{decode, encode, Store};
use crate::error::{Result, StateError};
use crate::ids::IdSource;
use crate::model::Cluster;

type K2 = (&'static str, &'static str);

const SERVICE_ACCOUNTS: TableDefinition<K2, &'static [u8]> =
    TableDefinition::new("service_accounts");
const TABLE_NAME: &str = "service_accounts";

/// The most service accounts one local cluster keeps (a bound on the state a caller can grow).
pub const MAX_PER_CLUSTER: usize = 10_000;
/// The API server's limit on the total size of an object's annotations (keys and values).
pub const MAX_ANNOTATION_BYTES: usize = 256 * 1024;
/// The service account every namespace has.
pub const DEFAULT_NAME: &str = "default";

/// Creates the table, so read transactions can open it unconditionally.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SERVICE_ACCOUNTS)?;
    Ok(())
}

/// A ServiceAccount as the twin keeps it: what mutation and `exec` need, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// The cluster's ARN (the key's first part).
    pub cluster_arn: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// `metadata.uid`: a UUID, kept while the object exists (a token's
    /// `kubernetes.io.serviceaccount.uid`).
    pub uid: String,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.creationTimestamp`; `None` for a namespace's implicit `default`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// What `apply` did, as `kubectl apply` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    /// It did not exist.
    Created,
    /// It existed with other annotations or labels.
    Configured,
    /// It existed exactly so.
    Unchanged,
}

/// One change of `annotate`: `KEY=VALUE` sets, `KEY-` removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnnotationChange {
    /// Sets `key` to `value`.
    Set {
        /// The annotation key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Removes `key` (nothing when it is absent, as kubectl).
    Remove {
        /// The annotation key.
        key: String,
    },
}

fn key(namespace: &str, name: &str) -> String {
    // Kubernetes names never contain '/', so the pair is unambiguous.
    format!("{namespace}/{name}")
}

fn not_found(namespace: &str, name: &str) -> StateError {
    StateError::NoSuchEntity(format!(
        "serviceaccounts \"{name}\" not found in namespace \"{namespace}\""
    ))
}

fn implicit_default(cluster: &Cluster, namespace: &str) -> ServiceAccount {
    ServiceAccount {
        cluster_arn: cluster.arn.clone(),
        namespace: namespace.to_string(),
        name: DEFAULT_NAME.to_string(),
        uid: derived_uid(&cluster.arn, namespace),
        annotations: BTreeMap::new(),
        labels: BTreeMap::new(),
        created_at: None,
    }
}

/// A stable uid for a namespace's implicit `default` (the same on every read, so its tokens
/// carry one uid until it is applied or annotated and so stored).
fn derived_uid(cluster_arn: &str, namespace: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let d = Sha256::digest(format!("{cluster_arn}\0{namespace}\0default").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A version 4 UUID from the OS's random source, as the API server's uids.
fn new_uid() -> Result<String> {
    let mut bytes = [0u8; 16];
    IdSource::Os.fill(&mut bytes)?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

fn now() -> OffsetDateTime {
    // The API server reports times to the second.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn invalid(field: &str, value: &str, why: &str) -> StateError {
    StateError::InvalidInput(format!("{field}: Invalid value: \"{value}\": {why}"))
}

const LABEL_RULE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')";
const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
const NAME_PART_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc')";
const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345')";

fn is_rfc1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_rfc1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_rfc1123_label)
}

/// A qualified name's name part (or a label value, when `allow_empty`): at most 63
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn is_name_part(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let edge = |b: u8| b.is_ascii_alphanumeric();
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && edge(s.as_bytes()[0])
        && edge(s.as_bytes()[s.len() - 1])
}

/// `metadata.namespace`: an RFC 1123 label.
pub fn validate_namespace(namespace: &str) -> Result<()> {
    if is_rfc1123_label(namespace) {
        Ok(())
    } else {
        Err(invalid("metadata.namespace", namespace, LABEL_RULE))
    }
}

/// `metadata.name` of a ServiceAccount: an RFC 1123 subdomain.
pub fn validate_name(name: &str) -> Result<()> {
    if is_rfc1123_subdomain(name) && !name.is_empty() {
        Ok(())
    } else {
        Err(invalid("metadata.name", name, SUBDOMAIN_RULE))
    }
}

/// An annotation or label key: `[prefix/]name`, the prefix an RFC 1123 subdomain.
fn validate_key(field: &str, key: &str) -> Result<()> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || !is_rfc1123_subdomain(prefix) {
            return Err(invalid(
                field,
                key,
                &format!("prefix part {SUBDOMAIN_RULE}"),
            ));
        }
    }
    if !is_name_part(name, false) {
        return Err(invalid(field, key, NAME_PART_RULE));
    }
    Ok(())
}

/// Annotations: valid keys and at most [`MAX_ANNOTATION_BYTES`] in all.
pub fn validate_annotations(annotations: &BTreeMap<String, String>) -> Result<()> {
    let mut total = 0usize;
    for (k, v) in annotations {
        validate_key("metadata.annotations", k)?;
        total += k.len() + v.len();
    }
    if total > MAX_ANNOTATION_BYTES {
        return Err(StateError::InvalidInput(format!(
            "metadata.annotations: Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Labels: valid keys and values.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in labels {
        validate_key("metadata.labels", k)?;
        if !is_name_part(v, true) {
            return Err(invalid("metadata.labels", v, LABEL_VALUE_RULE));
        }
    }
    Ok(())
}

fn read_one(
    table: &impl ReadableTable<K2, &'static [u8]>,
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Option<ServiceAccount>> {
    table
        .get((cluster.arn.as_str(), key(namespace, name).as_str()))?
        .map(|g| decode(TABLE_NAME, g.value()))
        .transpose()
}

fn count_in(table: &impl ReadableTable<K2, &'static [u8]>, cluster: &Cluster) -> Result<usize> {
    let mut n = 0;
    for entry in table.range((cluster.arn.as_str(), "")..)? {
        let (k, _) = entry?;
        if k.value().0 != cluster.arn {
            break;
        }
        n += 1;
    }
    Ok(n)
}

impl Store {
    /// `kubectl apply` of a ServiceAccount: creates it, or sets its annotations and labels to
    /// exactly those given (its uid and creation time stay).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name, namespace, key or value Kubernetes refuses; `LimitExceeded`
    /// past [`MAX_PER_CLUSTER`]; storage failures.
    pub fn apply_service_account(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        annotations: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(ServiceAccount, Applied)> {
        validate_namespace(namespace)?;
        validate_name(name)?;
        validate_annotations(&annotations)?;
        validate_labels(&labels)?;
        let uid = new_uid()?;
        self.write_raw(|txn| {
            let mut table = txn.open_table(SERVICE_ACCOUNTS)?;
            let existing = read_one(&table, cluster, namespace, name)?;
            let (account, applied) = match existing {
                Some(found) if found.annotations == annotations && found.labels == labels => {
                    return Ok((found, Applied::Unchanged));
                }
                Some(found) => (
                    ServiceAccount {
                        annotations,
                        labels,
                        ..found
                    },
                    Applied::Configured,
                ),
                None => {
                    if count_in(&table, cluster)? >= MAX_PER_CLUSTER {
                        return Err(StateError::LimitExceeded(format!(
                            "Cannot exceed quota for ServiceAccountsPerCluster: {MAX_PER_CLUSTER}"
                        )));
                    }
                    let uid = if name == DEFAULT_NAME {
                        // The implicit default keeps the uid its tokens already carry.
                        derived_uid(&cluster.arn, namespace)
                    } else {
                        uid
                    };
                    (
                        ServiceAccount {
                            cluster_arn: cluster.arn.clone(),
                            namespace: namespace.to_string(),
                            name: name.to_string(),
                            uid,
                            annotations,
                            labels,
                            created_at: Some(now()),
                        },
                        Applied::Created,
                    )
                }
            };
            table.insert(
                (cluster.arn.as_str(), key(namespace, name).as_str()),
                encode(&account)?.as_slice(),
            )?;
            Ok((account, applied))
        })
    }

    /// `kubectl annotate serviceaccount`: applies `changes` in order. A key that already has
    /// another value is refused unless `overwrite`, as kubectl refuses it. A namespace's
    /// `default` is stored on its first annotation.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when it does not exist; `InvalidInput` for an invalid key, or an existing
    /// value without `overwrite`; storage failures.
    pub fn annotate_service_account(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        changes: &[AnnotationChange],
        overwrite: bool,
    ) -> Result<ServiceAccount> {
        validate_namespace(namespace)?;
        validate_name(name)?;
        self.write_raw(|txn| {
            let mut table = txn.open_table(SERVICE_ACCOUNTS)?;
            let mut account = match read_one(&table, cluster, namespace, name)? {
                Some(found) => found,
                None if name == DEFAULT_NAME => ServiceAccount {
                    created_at: Some(now()),
                    ..implicit_default(cluster, namespace)
                },
                None => return Err(not_found(namespace, name)),
            };
            for change in changes {
                match change {
                    AnnotationChange::Set { key, value } => {
                        validate_key("metadata.annotations", key)?;
                        if let Some(old) = account.annotations.get(key) {
                            if old != value && !overwrite {
                                return Err(StateError::InvalidInput(format!(
                                    "--overwrite is false but found the following declared annotation(s): '{key}' already has a value ({old})"
                                )));
                            }
                        }
                        account.annotations.insert(key.clone(), value.clone());
                    }
                    AnnotationChange::Remove { key } => {
                        account.annotations.remove(key);
                    }
                }
            }
            validate_annotations(&account.annotations)?;
            table.insert(
                (cluster.arn.as_str(), key(namespace, name).as_str()),
                encode(&account)?.as_slice(),
            )?;
            Ok(account)
        })
    }

    /// One service account; a namespace's `default` exists even when never stored.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when it does not exist; storage failures.
    pub fn get_service_account(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
    ) -> Result<ServiceAccount> {
        validate_namespace(namespace)?;
        validate_name(name)?;
        let found = self.read_raw(|txn| {
            let table = txn.open_table(SERVICE_ACCOUNTS)?;
            read_one(&table, cluster, namespace, name)
        })?;
        match found {
            Some(account) => Ok(account),
            None if name == DEFAULT_NAME => Ok(implicit_default(cluster, namespace)),
            None => Err(not_found(namespace, name)),
        }
    }

    /// The cluster's stored service accounts (of one namespace, when given), by namespace
    /// then name. Implicit `default`s are not listed: namespaces are known only by what is
    /// stored in them.
    pub fn list_service_accounts(
        &self,
        cluster: &Cluster,
        namespace: Option<&str>,
    ) -> Result<Vec<ServiceAccount>> {
        if let Some(ns) = namespace {
            validate_namespace(ns)?;
        }
        let prefix = namespace.map(|ns| format!("{ns}/"));
        self.read_raw(|txn| {
            let table = txn.open_table(SERVICE_ACCOUNTS)?;
            let start = prefix.as_deref().unwrap_or("");
            let mut out = Vec::new();
            for entry in table.range((cluster.arn.as_str(), start)..)? {
                let (k, v) = entry?;
                let (arn, subject) = k.value();
                if arn != cluster.arn || prefix.as_deref().is_some_and(|p| !subject.starts_with(p))
                {
                    break;
                }
                out.push(decode(TABLE_NAME, v.value())?);
            }
            Ok(out)
        })
    }

    /// Deletes a stored service account.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when none is stored under that name; storage failures.
    pub fn delete_service_account(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        validate_namespace(namespace)?;
        validate_name(name)?;
        self.write_raw(|txn| {
            let mut table = txn.open_table(SERVICE_ACCOUNTS)?;
            let removed = table
                .remove((cluster.arn.as_str(), key(namespace, name).as_str()))?
                .is_some();
            if removed {
                Ok(())
            } else {
                Err(not_found(namespace, name))
            }
        })
    }
}

/// Removes every service account kept for the cluster `cluster_arn` (its deletion).
pub(crate) fn remove_cluster(txn: &WriteTransaction, cluster_arn: &str) -> Result<usize> {
    crate::db::remove_by_first(&mut txn.open_table(SERVICE_ACCOUNTS)?, cluster_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_and_keys() {
        for ok in ["default", "my-app", "a", "x1"] {
            validate_namespace(ok).unwrap();
        }
        for bad in ["", "My-App", "-a", "a-", "a.b", &"a".repeat(64)] {
            let e = validate_namespace(bad).unwrap_err().to_string();
            assert!(e.starts_with("metadata.namespace: Invalid value"), "{e}");
        }
        validate_name("my.service-account").unwrap();
        assert!(validate_name("a..b").is_err());
        assert!(validate_name("a/b").is_err());

        let ok: BTreeMap<String, String> = [
            ("eks.amazonaws.com/role-arn", "arn:aws:iam::1:role/r"),
            ("plain_Key.1", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        validate_annotations(&ok).unwrap();
        for bad in ["", "/x", "Bad_Prefix/x", "a/-x", "a/b/c", "x\u{0}"] {
            let one = BTreeMap::from([(bad.to_string(), String::new())]);
            let e = validate_annotations(&one).unwrap_err().to_string();
            assert!(
                e.starts_with("metadata.annotations: Invalid value"),
                "{bad}: {e}"
            );
        }
        let big = BTreeMap::from([("k".to_string(), "v".repeat(MAX_ANNOTATION_BYTES))]);
        assert!(validate_annotations(&big)
            .unwrap_err()
            .to_string()
            .contains("Too long"));
        let labels = BTreeMap::from([("app".to_string(), "not ok".to_string())]);
        assert!(validate_labels(&labels).is_err());
    }

    #[test]
    fn uids_are_uuids() {
        let uid = new_uid().unwrap();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, new_uid().unwrap());
        let a = derived_uid("arn:aws:eks:us-east-1:1:cluster/c", "default");
        assert_eq!(
            a,
            derived_uid("arn:aws:eks:us-east-1:1:cluster/c", "default")
        );
        assert_ne!(a, derived_uid("arn:aws:eks:us-east-1:1:cluster/c", "other"));
    }
}
