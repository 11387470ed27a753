//! Customer managed policies and their versions.

use redb::ReadableTable;

use crate::db::{encode, get2, name_key, paginate, scan2, Bytes, IamTable, Store, Tx, K2};
use crate::error::{Result, StateError};
use crate::ids;
use crate::model::{ManagedPolicy, Page, Paging, PolicyVersion, Tag};
use crate::validate::{self, check_tags, policy_size_check};

/// IAM's quota of versions per managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// Parameters of `CreatePolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePolicy {
    /// The account to create the policy in.
    pub account: String,
    /// The policy name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The policy document (JSON), which becomes version `v1`.
    pub document: String,
    /// The description.
    pub description: Option<String>,
    /// Tags (at most 50).
    pub tags: Vec<Tag>,
}

/// `ListPolicies`'s `Scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyScope {
    /// AWS managed and customer managed policies (the twin has only the latter).
    #[default]
    All,
    /// AWS managed policies only: always empty in the twin.
    Aws,
    /// Customer managed policies.
    Local,
}

/// Parameters of `ListPolicies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPolicies {
    /// Which policies.
    pub scope: PolicyScope,
    /// Only those attached to at least one role or user.
    pub only_attached: bool,
    /// Only those whose path starts with this.
    pub path_prefix: Option<String>,
    /// Pagination.
    pub paging: Paging,
}

pub(crate) fn policy_not_found(arn: &str) -> StateError {
    StateError::NoSuchEntity(format!("Policy {arn} was not found."))
}

/// Splits a customer managed policy ARN into (account, path, name).
pub(crate) fn parse_policy_arn(arn: &str) -> Option<(String, String, String)> {
    let parsed: iam::Arn = arn.parse().ok()?;
    let rest = parsed.resource.strip_prefix("policy/")?;
    if parsed.service != "iam" || !iam::arn::is_account_id(&parsed.account) || rest.is_empty() {
        return None;
    }
    let (path, name) = validate::split_path_name(rest);
    Some((parsed.account, path, name))
}

pub(crate) fn find_policy(t: &impl ReadableTable<K2, Bytes>, arn: &str) -> Result<ManagedPolicy> {
    let (account, _, name) = parse_policy_arn(arn).ok_or_else(|| policy_not_found(arn))?;
    match get2::<ManagedPolicy>(t, "policies", &account, &name_key(&name))? {
        Some(p) if p.arn == arn => Ok(p),
        _ => Err(policy_not_found(arn)),
    }
}

impl<'t> Tx<'t> {
    pub(crate) fn put_policy(&mut self, p: &ManagedPolicy) -> Result<()> {
        let record = encode(p)?;
        let key = name_key(&p.name);
        self.set_iam_record(IamTable::Policies, &p.account, &key, Some(&record))
    }

    pub(crate) fn boundary_usage(&mut self, arn: &str, delta: i64) -> Result<()> {
        let mut p = find_policy(&self.policies, arn).map_err(|_| {
            StateError::NoSuchEntity(format!(
                "Scope ARN: {arn} does not exist or is not attachable."
            ))
        })?;
        p.permissions_boundary_usage_count =
            (i64::from(p.permissions_boundary_usage_count) + delta).max(0) as u32;
        self.put_policy(&p)
    }

    pub(crate) fn create_policy(&mut self, req: &CreatePolicy) -> Result<ManagedPolicy> {
        self.require_account(&req.account)?;
        validate::entity_name(&req.name, "policyName", 128)?;
        let path = req.path.clone().unwrap_or_else(|| "/".to_string());
        validate::path(&path, "path")?;
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        iam::Policy::parse(&req.document, iam::PolicyKind::Identity)?;
        policy_size_check(&req.document, iam::SizeQuota::ManagedPolicy)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerPolicy")?;
        let key = name_key(&req.name);
        if self
            .policies
            .get((req.account.as_str(), key.as_str()))?
            .is_some()
        {
            return Err(StateError::EntityAlreadyExists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                req.name
            )));
        }
        let policy = ManagedPolicy {
            account: req.account.clone(),
            name: req.name.clone(),
            arn: format!("arn:aws:iam::{}:policy{}{}", req.account, path, req.name),
            path,
            policy_id: self.ids.unique_id(ids::POLICY_ID_PREFIX)?,
            default_version_id: "v1".into(),
            versions: vec![PolicyVersion {
                version_id: "v1".into(),
                document: req.document.clone(),
                is_default: true,
                created: self.now,
            }],
            next_version: 2,
            attachment_count: 0,
            permissions_boundary_usage_count: 0,
            created: self.now,
            updated: self.now,
            description: req.description.clone(),
            tags,
        };
        self.put_policy(&policy)?;
        Ok(policy)
    }
}

impl Store {
    /// `CreatePolicy` (version `v1`, default).
    pub fn create_policy(&self, req: &CreatePolicy) -> Result<ManagedPolicy> {
        self.update(|tx| tx.create_policy(req))
    }

    /// `GetPolicy`.
    pub fn get_policy(&self, arn: &str) -> Result<ManagedPolicy> {
        self.read(|rx| find_policy(rx.policies()?, arn))
    }

    /// `DeletePolicy`: fails with `DeleteConflict` while attached, used as a boundary, or with
    /// versions other than the default.
    pub fn delete_policy(&self, arn: &str) -> Result<()> {
        self.update(|tx| {
            let p = find_policy(&tx.policies, arn)?;
            if p.attachment_count > 0 || p.permissions_boundary_usage_count > 0 {
                return Err(StateError::DeleteConflict(
                    "Cannot delete a policy attached to entities.".into(),
                ));
            }
            if p.versions.len() > 1 {
                return Err(StateError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
                ));
            }
            tx.set_iam_record(IamTable::Policies, &p.account, &name_key(&p.name), None)
        })
    }

    /// `ListPolicies` in `account`.
    pub fn list_policies(&self, account: &str, opts: &ListPolicies) -> Result<Page<ManagedPolicy>> {
        if let Some(p) = &opts.path_prefix {
            validate::path_prefix(p)?;
        }
        let max = validate::max_items(opts.paging.max_items)?;
        if opts.scope == PolicyScope::Aws {
            return Ok(Page {
                items: Vec::new(),
                is_truncated: false,
                marker: None,
            });
        }
        self.read(|rx| {
            let start = opts.paging.marker.as_deref().unwrap_or("");
            let items = scan2::<ManagedPolicy>(rx.policies()?, "policies", account, start)?
                .into_iter()
                .filter(|(_, p)| {
                    opts.path_prefix
                        .as_deref()
                        .is_none_or(|pre| p.path.starts_with(pre))
                        && (!opts.only_attached || p.attachment_count > 0)
                })
                .collect();
            Ok(paginate(items, max))
        })
    }

    /// `CreatePolicyVersion`: at most 5 versions (`LimitExceeded`).
    pub fn create_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        iam::Policy::parse(document, iam::PolicyKind::Identity)?;
        policy_size_check(document, iam::SizeQuota::ManagedPolicy)?;
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(StateError::LimitExceeded(
                    "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into(),
                ));
            }
            let version = PolicyVersion {
                version_id: format!("v{}", p.next_version),
                document: document.to_string(),
                is_default: set_as_default,
                created: tx.now,
            };
            p.next_version += 1;
            if set_as_default {
                for v in &mut p.versions {
                    v.is_default = false;
                }
                p.default_version_id = version.version_id.clone();
                p.updated = tx.now;
            }
            p.versions.push(version.clone());
            tx.put_policy(&p)?;
            Ok(version)
        })
    }

    /// `GetPolicyVersion`.
    pub fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<PolicyVersion> {
        let p = self.get_policy(arn)?;
        p.versions
            .into_iter()
            .find(|v| v.version_id == version_id)
            .ok_or_else(|| version_not_found(arn, version_id))
    }

    /// `ListPolicyVersions`, oldest first.
    pub fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>> {
        Ok(self.get_policy(arn)?.versions)
    }

    /// `DeletePolicyVersion`: not the default one (`DeleteConflict`).
    pub fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            let i = p
                .versions
                .iter()
                .position(|v| v.version_id == version_id)
                .ok_or_else(|| version_not_found(arn, version_id))?;
            if p.versions[i].is_default {
                return Err(StateError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            p.versions.remove(i);
            tx.put_policy(&p)
        })
    }

    /// `SetDefaultPolicyVersion`.
    pub fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_policy(&tx.policies, arn)?;
            if !p.versions.iter().any(|v| v.version_id == version_id) {
                return Err(version_not_found(arn, version_id));
            }
            for v in &mut p.versions {
                v.is_default = v.version_id == version_id;
            }
            p.default_version_id = version_id.to_string();
            p.updated = tx.now;
            tx.put_policy(&p)
        })
    }
}

fn version_not_found(arn: &str, version_id: &str) -> StateError {
    StateError::NoSuchEntity(format!(
        "Policy {arn} version {version_id} does not exist or is not deletable."
    ))
}
