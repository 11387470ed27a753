//! The association file: which service account gets which chain of roles.
//!
//! ```yaml
//! associations:
//!   - namespace: my-app-namespace
//!     serviceAccount: my-app-sa
//!     roleArn: arn:aws:iam::111111111111:role/first   # AssumeRoleWithWebIdentity with the pod's token
//!     targetRoleArns:                                 # then AssumeRole into each, in order
//!       - arn: arn:aws:iam::222222222222:role/second
//!         externalId: optional-external-id
//!       - arn: arn:aws:iam::333333333333:role/third
//!     sessionTags: serviceAccount                     # none | serviceAccount (default) | pod
//!     durationSeconds: 3600                           # optional; chained hops: at most 3600
//! ```
//!
//! Without `roleArn` the chain starts from EKS Auth's `AssumeRoleForPodIdentity` (allowed
//! only when the agent runs with `--eks-auth`), and `targetRoleArns` are hops after it.
//!
//! [`AssociationFile::parse`] validates the whole file before anything uses it: a bad file is
//! refused with a message naming the entry (its index and namespace/service account) and the
//! field, so a reload can keep the last good file and say exactly why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iam::IdentityArn;
use serde::Deserialize;
use thiserror::Error;

/// Most role assumptions one chain may make (its start included). Every hop is an STS call
/// on the credential path; a chain longer than this is far more likely a mistake than a need.
pub const MAX_HOPS: usize = 10;

/// STS's cap on a session assumed with role-chaining credentials (every `AssumeRole` after
/// the first hop): one hour.
pub const MAX_CHAINED_DURATION_SECS: u32 = 3600;

/// STS's bounds on `DurationSeconds` (the role's own maximum may be lower).
const DURATION_RANGE: std::ops::RangeInclusive<u32> = 900..=43_200;

/// Which session tags each `AssumeRole` hop carries (transitive, as EKS sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum SessionTags {
    /// No tags: the trust policies need no `sts:TagSession`.
    #[serde(rename = "none")]
    None,
    /// The cluster, namespace and service account: every pod of the service account gets the
    /// same credentials, so they are fetched once and shared.
    #[default]
    #[serde(rename = "serviceAccount")]
    ServiceAccount,
    /// Also the pod's name and uid: credentials are per pod.
    #[serde(rename = "pod")]
    Pod,
}

/// How a chain starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Start {
    /// `AssumeRoleWithWebIdentity` with the pod's own service-account token into this role.
    WebIdentity {
        /// The role's ARN.
        role_arn: String,
    },
    /// EKS Auth's `AssumeRoleForPodIdentity`: the cluster's own pod identity association
    /// decides the first role(s).
    EksAuth,
}

/// One `AssumeRole` after the start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The role to assume.
    pub role_arn: String,
    /// Its account (from the ARN).
    pub account: String,
    /// `ExternalId` to send, when the role's trust policy asks for one.
    pub external_id: Option<String>,
}

/// Everything that decides which credentials a service account gets (with the cluster and
/// the service account itself, it is the shared cache's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    /// The first assumption.
    pub start: Start,
    /// The `AssumeRole` hops after it, in order.
    pub hops: Vec<Hop>,
    /// Which session tags the hops carry.
    pub session_tags: SessionTags,
    /// `DurationSeconds` asked of each hop, when given.
    pub duration_seconds: Option<u32>,
}

impl Chain {
    /// True when some hop is assumed with role credentials, so STS caps its session at one
    /// hour: any `AssumeRole` hop, whatever the start.
    pub fn is_chained(&self) -> bool {
        !self.hops.is_empty()
    }

    /// The number of role assumptions the chain makes (its start included).
    pub fn len(&self) -> usize {
        1 + self.hops.len()
    }

    /// Never true: a chain has at least its start.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One service account's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// The Kubernetes namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
    /// Its chain.
    pub chain: Chain,
}

/// What became of one entry given to [`AssociationFile::from_entries`]: its name, and whether
/// it was kept.
pub type EntryOutcome = (String, Result<(), AssociationError>);

/// A validated association file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssociationFile {
    associations: Vec<Association>,
    by_account: HashMap<(String, String), usize>,
}

/// Why an association file was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AssociationError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Not YAML of the file's shape (an unknown field, a wrong type); the message has the line.
    #[error("the association file is malformed: {0}")]
    Syntax(String),
    /// An entry broke a rule; names the entry and the field.
    #[error("associations[{index}] ({namespace}/{service_account}): {field}: {message}")]
    Invalid {
        /// The entry's position in the file, from 0.
        index: usize,
        /// Its namespace, as written.
        namespace: String,
        /// Its service account, as written.
        service_account: String,
        /// The field, e.g. `targetRoleArns[1].arn`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    associations: Vec<RawAssociation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAssociation {
    namespace: String,
    service_account: String,
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    target_role_arns: Vec<RawTarget>,
    #[serde(default)]
    session_tags: SessionTags,
    #[serde(default)]
    duration_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTarget {
    arn: String,
    #[serde(default)]
    external_id: Option<String>,
}

/// What the file may use, from the agent's own options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--eks-auth`: entries without `roleArn` start from EKS Auth.
    pub eks_auth: bool,
}

impl AssociationFile {
    /// Reads and validates `path` (see [`parse`](Self::parse)).
    ///
    /// # Errors
    ///
    /// [`AssociationError::Io`] when it cannot be read, else as [`parse`](Self::parse).
    pub fn load(path: &Path, options: LoadOptions) -> Result<AssociationFile, AssociationError> {
        let text = std::fs::read_to_string(path).map_err(|source| AssociationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, options)
    }

    /// Parses and validates a whole file: every entry, every field.
    ///
    /// # Errors
    ///
    /// [`AssociationError::Syntax`] for YAML that is not of the file's shape (unknown fields
    /// included), [`AssociationError::Invalid`] for the first entry that breaks a rule.
    pub fn parse(text: &str, options: LoadOptions) -> Result<AssociationFile, AssociationError> {
        let raw: RawFile = if text.trim().is_empty() {
            RawFile {
                associations: Vec::new(),
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| AssociationError::Syntax(e.to_string()))?
        };
        let mut file = AssociationFile::default();
        for (index, entry) in raw.associations.into_iter().enumerate() {
            let association = validate(index, entry, options)?;
            // In a file every entry before this one was kept: positions are indexes.
            file.add(index, association, |first| format!("associations[{first}]"))?;
        }
        Ok(file)
    }

    /// Adds `association` (given at `index`) unless one for its service account is there;
    /// `earlier` names that one for the message from its position.
    fn add(
        &mut self,
        index: usize,
        association: Association,
        earlier: impl Fn(usize) -> String,
    ) -> Result<(), AssociationError> {
        let key = (
            association.namespace.clone(),
            association.service_account.clone(),
        );
        if let Some(&first) = self.by_account.get(&key) {
            return Err(invalid(
                index,
                &association.namespace,
                &association.service_account,
                "serviceAccount",
                format!(
                    "{} already names this namespace and service account; each service account has one chain",
                    earlier(first)
                ),
            ));
        }
        self.by_account.insert(key, self.associations.len());
        self.associations.push(association);
        Ok(())
    }

    /// Validates entries of the file's entry shape given one at a time — a cluster's
    /// RoleChainAssociations, each its spec with its namespace — keyed by a name for messages.
    /// Unlike a file, a bad entry does not refuse the others: it is left out, and its error is
    /// in the outcomes (in the order given); of two entries for one service account, the first
    /// given is kept.
    pub fn from_entries(
        entries: Vec<(String, serde_json::Value)>,
        options: LoadOptions,
    ) -> (AssociationFile, Vec<EntryOutcome>) {
        let mut file = AssociationFile::default();
        let mut outcomes = Vec::with_capacity(entries.len());
        for (index, (name, entry)) in entries.into_iter().enumerate() {
            let outcome = serde_json::from_value::<RawAssociation>(entry)
                .map_err(|e| AssociationError::Syntax(e.to_string()))
                .and_then(|raw| validate(index, raw, options))
                .and_then(|association| {
                    file.add(index, association, |_| "another association".to_string())
                });
            outcomes.push((name, outcome));
        }
        (file, outcomes)
    }

    /// The association of `namespace`/`service_account`, if the file has one.
    pub fn get(&self, namespace: &str, service_account: &str) -> Option<&Association> {
        self.by_account
            .get(&(namespace.to_string(), service_account.to_string()))
            .map(|&i| &self.associations[i])
    }

    /// Every association, in file order.
    pub fn associations(&self) -> &[Association] {
        &self.associations
    }

    /// The number of associations.
    pub fn len(&self) -> usize {
        self.associations.len()
    }

    /// True when the file has none.
    pub fn is_empty(&self) -> bool {
        self.associations.is_empty()
    }
}

fn invalid(
    index: usize,
    namespace: &str,
    service_account: &str,
    field: &str,
    message: String,
) -> AssociationError {
    AssociationError::Invalid {
        index,
        namespace: printable(namespace),
        service_account: printable(service_account),
        field: field.to_string(),
        message,
    }
}

/// A value from the file for a message: bounded, control characters replaced.
fn printable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(256)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > 256 {
        out.push('…');
    }
    out
}

fn validate(
    index: usize,
    raw: RawAssociation,
    options: LoadOptions,
) -> Result<Association, AssociationError> {
    let fail = |field: &str, message: String| {
        invalid(index, &raw.namespace, &raw.service_account, field, message)
    };
    check_label(&raw.namespace).map_err(|m| fail("namespace", m))?;
    check_subdomain(&raw.service_account).map_err(|m| fail("serviceAccount", m))?;

    let start = match &raw.role_arn {
        Some(arn) => {
            role_account(arn).map_err(|m| fail("roleArn", m))?;
            Start::WebIdentity {
                role_arn: arn.clone(),
            }
        }
        None if options.eks_auth => Start::EksAuth,
        None => return Err(fail(
            "roleArn",
            "missing: without --eks-auth every association needs the role its chain starts with"
                .to_string(),
        )),
    };

    let mut hops = Vec::with_capacity(raw.target_role_arns.len());
    for (i, target) in raw.target_role_arns.iter().enumerate() {
        let account =
            role_account(&target.arn).map_err(|m| fail(&format!("targetRoleArns[{i}].arn"), m))?;
        if let Some(id) = &target.external_id {
            check_external_id(id)
                .map_err(|m| fail(&format!("targetRoleArns[{i}].externalId"), m))?;
        }
        hops.push(Hop {
            role_arn: target.arn.clone(),
            account,
            external_id: target.external_id.clone(),
        });
    }
    let chain = Chain {
        start,
        hops,
        session_tags: raw.session_tags,
        duration_seconds: raw.duration_seconds,
    };

    if chain.len() > MAX_HOPS {
        return Err(fail(
            "targetRoleArns",
            format!(
                "the chain makes {} role assumptions; at most {MAX_HOPS} are allowed",
                chain.len()
            ),
        ));
    }
    // A chain that comes back to a role it has already been in does nothing the shorter
    // chain does not, and is almost always a copy-paste mistake.
    let mut seen: Vec<&str> = Vec::new();
    if let Start::WebIdentity { role_arn } = &chain.start {
        seen.push(role_arn);
    }
    for (i, hop) in chain.hops.iter().enumerate() {
        if seen.contains(&hop.role_arn.as_str()) {
            return Err(fail(
                &format!("targetRoleArns[{i}].arn"),
                format!(
                    "the chain is already in {} before this hop; a chain visits each role once",
                    printable(&hop.role_arn)
                ),
            ));
        }
        seen.push(&hop.role_arn);
    }

    if let Some(d) = chain.duration_seconds {
        if chain.start == Start::EksAuth && !chain.is_chained() {
            return Err(fail(
                "durationSeconds",
                "EKS Auth chooses the lifetime of its own credentials; durationSeconds applies only to targetRoleArns".to_string(),
            ));
        }
        let max = if chain.is_chained() {
            MAX_CHAINED_DURATION_SECS
        } else {
            *DURATION_RANGE.end()
        };
        if !(*DURATION_RANGE.start()..=max).contains(&d) {
            let why = if chain.is_chained() {
                " (STS caps sessions assumed with role credentials at one hour)"
            } else {
                ""
            };
            return Err(fail(
                "durationSeconds",
                format!(
                    "{d} is out of range: between {} and {max}{why}",
                    DURATION_RANGE.start()
                ),
            ));
        }
    }

    Ok(Association {
        namespace: raw.namespace,
        service_account: raw.service_account,
        chain,
    })
}

/// The account of a role ARN, or why it is not one.
fn role_account(arn: &str) -> Result<String, String> {
    match arn.parse::<IdentityArn>() {
        Ok(IdentityArn::Role { account, .. }) => Ok(account),
        _ => Err(format!(
            "'{}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            printable(arn)
        )),
    }
}

/// A Kubernetes namespace: an RFC 1123 label.
fn check_label(value: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a Kubernetes namespace name (1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit)",
            printable(value)
        ))
    }
}

/// A Kubernetes service account name: an RFC 1123 subdomain.
fn check_subdomain(value: &str) -> Result<(), String> {
    let ok = (1..=253).contains(&value.len())
        && value.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a Kubernetes service account name (a DNS subdomain: lower-case letters, digits, '-' and '.', at most 253)",
            printable(value)
        ))
    }
}

/// STS's `externalIdType`: 2 to 1224 characters of `[\w+=,.@:/-]`.
fn check_external_id(value: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&value.chars().count())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        // The value may be a secret shared between accounts: not echoed.
        Err(
            "must be 2 to 1224 characters of letters, digits and _+=,.@:/- (STS's ExternalId)"
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = "
associations:
  - namespace: my-app-namespace
    serviceAccount: my-app-sa
    roleArn: arn:aws:iam::111111111111:role/first
    targetRoleArns:
      - arn: arn:aws:iam::222222222222:role/second
        externalId: optional-external-id
      - arn: arn:aws:iam::333333333333:role/third
    sessionTags: serviceAccount
    durationSeconds: 3600
";

    fn parse(text: &str) -> Result<AssociationFile, AssociationError> {
        AssociationFile::parse(text, LoadOptions::default())
    }

    fn refused(text: &str, options: LoadOptions) -> String {
        match AssociationFile::parse(text, options) {
            Ok(f) => panic!("accepted: {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn entry(fields: &str) -> String {
        format!("associations:\n  - namespace: ns\n    serviceAccount: sa\n{fields}")
    }

    #[test]
    fn the_documented_example_is_a_three_hop_chain() {
        let file = parse(ISSUE_EXAMPLE).unwrap();
        let a = file.get("my-app-namespace", "my-app-sa").unwrap();
        assert_eq!(
            a.chain.start,
            Start::WebIdentity {
                role_arn: "arn:aws:iam::111111111111:role/first".into()
            }
        );
        assert_eq!(a.chain.len(), 3);
        assert_eq!(a.chain.hops[0].account, "222222222222");
        assert_eq!(
            a.chain.hops[0].external_id.as_deref(),
            Some("optional-external-id")
        );
        assert_eq!(a.chain.hops[1].external_id, None);
        assert_eq!(a.chain.session_tags, SessionTags::ServiceAccount);
        assert_eq!(a.chain.duration_seconds, Some(3600));
        assert!(file.get("my-app-namespace", "other").is_none());
    }

    #[test]
    fn defaults_and_eks_auth_starts() {
        let file = parse(&entry("    roleArn: arn:aws:iam::111111111111:role/r\n")).unwrap();
        let chain = &file.associations()[0].chain;
        assert_eq!(chain.session_tags, SessionTags::ServiceAccount);
        assert!(!chain.is_chained());
        let text = entry("    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n    sessionTags: pod\n");
        let file = AssociationFile::parse(&text, LoadOptions { eks_auth: true }).unwrap();
        let chain = &file.associations()[0].chain;
        assert_eq!(chain.start, Start::EksAuth);
        assert_eq!(chain.session_tags, SessionTags::Pod);
        assert!(chain.is_chained());
        assert!(parse("").unwrap().is_empty());
        assert!(parse("associations: []").unwrap().is_empty());
    }

    #[test]
    fn every_invalid_field_is_named() {
        let none = LoadOptions::default();
        let cases: Vec<(String, &str)> = vec![
            (
                "associations:\n  - namespace: Bad_NS\n    serviceAccount: sa\n    roleArn: arn:aws:iam::111111111111:role/r\n".into(),
                "associations[0] (Bad_NS/sa): namespace: 'Bad_NS' is not a Kubernetes namespace name",
            ),
            (
                "associations:\n  - namespace: ns\n    serviceAccount: -sa\n    roleArn: arn:aws:iam::111111111111:role/r\n".into(),
                "associations[0] (ns/-sa): serviceAccount: '-sa' is not a Kubernetes service account name",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:user/u\n"),
                "associations[0] (ns/sa): roleArn: 'arn:aws:iam::111111111111:user/u' is not an IAM role ARN",
            ),
            (
                entry("    roleArn: arn:aws:iam::1111:role/r\n"),
                "roleArn: 'arn:aws:iam::1111:role/r' is not an IAM role ARN",
            ),
            (
                entry("    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n"),
                "associations[0] (ns/sa): roleArn: missing: without --eks-auth",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n      - arn: not-an-arn\n"),
                "targetRoleArns[1].arn: 'not-an-arn' is not an IAM role ARN",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n        externalId: \"x\"\n"),
                "targetRoleArns[0].externalId: must be 2 to 1224 characters",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n        externalId: \"has space\"\n"),
                "targetRoleArns[0].externalId: must be 2 to 1224 characters",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n    durationSeconds: 7200\n"),
                "durationSeconds: 7200 is out of range: between 900 and 3600 (STS caps sessions assumed with role credentials at one hour)",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    durationSeconds: 899\n"),
                "durationSeconds: 899 is out of range: between 900 and 43200",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    durationSeconds: 50000\n"),
                "durationSeconds: 50000 is out of range: between 900 and 43200",
            ),
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n      - arn: arn:aws:iam::111111111111:role/r\n"),
                "targetRoleArns[1].arn: the chain is already in arn:aws:iam::111111111111:role/r before this hop",
            ),
        ];
        for (text, expected) in cases {
            let message = refused(&text, none);
            assert!(
                message.contains(expected),
                "{text}\n→ {message}\nwanted: {expected}"
            );
        }
        let message = refused(
            &entry("    durationSeconds: 3600\n"),
            LoadOptions { eks_auth: true },
        );
        assert!(
            message.contains("durationSeconds: EKS Auth chooses the lifetime"),
            "{message}"
        );
    }

    #[test]
    fn too_long_a_chain_is_refused() {
        let mut text =
            entry("    roleArn: arn:aws:iam::111111111111:role/r0\n    targetRoleArns:\n");
        for i in 1..MAX_HOPS {
            text.push_str(&format!(
                "      - arn: arn:aws:iam::222222222222:role/r{i}\n"
            ));
        }
        assert_eq!(
            parse(&text).unwrap().associations()[0].chain.len(),
            MAX_HOPS
        );
        text.push_str("      - arn: arn:aws:iam::222222222222:role/one-too-many\n");
        let message = refused(&text, LoadOptions::default());
        assert!(
            message.contains(
                "targetRoleArns: the chain makes 11 role assumptions; at most 10 are allowed"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_service_account_has_one_chain() {
        let one = "  - namespace: ns\n    serviceAccount: sa\n    roleArn: arn:aws:iam::111111111111:role/r\n";
        let other = "  - namespace: ns\n    serviceAccount: sa2\n    roleArn: arn:aws:iam::111111111111:role/r\n";
        let message = refused(
            &format!("associations:\n{one}{other}{one}"),
            LoadOptions::default(),
        );
        assert!(
            message.starts_with("associations[2] (ns/sa): serviceAccount: associations[0] already names this namespace and service account"),
            "{message}"
        );
    }

    #[test]
    fn shape_errors_name_the_field_and_line() {
        for (text, expected) in [
            (
                entry("    roleArn: arn:aws:iam::111111111111:role/r\n    roleARN: x\n"),
                "roleARN",
            ),
            (
                entry(
                    "    roleArn: arn:aws:iam::111111111111:role/r\n    sessionTags: everything\n",
                ),
                "everything",
            ),
            (
                entry(
                    "    roleArn: arn:aws:iam::111111111111:role/r\n    durationSeconds: an-hour\n",
                ),
                "durationSeconds",
            ),
            (
                "associations:\n  - namespace: ns\n".to_string(),
                "serviceAccount",
            ),
            ("associations: {}\n".to_string(), "malformed"),
            ("[1, 2".to_string(), "malformed"),
        ] {
            let message = refused(&text, LoadOptions::default());
            assert!(
                message.starts_with("the association file is malformed: "),
                "{message}"
            );
            assert!(message.contains(expected), "{text}\n→ {message}");
        }
    }

    #[test]
    fn an_external_id_is_never_echoed() {
        let message = refused(
            &entry("    roleArn: arn:aws:iam::111111111111:role/r\n    targetRoleArns:\n      - arn: arn:aws:iam::222222222222:role/t\n        externalId: \"s3cret value\"\n"),
            LoadOptions::default(),
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}
