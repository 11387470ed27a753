//! IAM roles: creation and deletion, trust policies, boundaries, tags, inline and attached
//! policies, and the identity policies a role session is evaluated with.

use std::collections::BTreeMap;

use iam::IdentityArn;
use redb::ReadableTable;

use crate::accounts::{EntityKind, IdEntry};
use crate::db::{
    encode, get1, get2, name_key, paginate, paginate_indexed, scan2, Bytes, IamTable, Store, Tx, K2,
};
use crate::error::{Result, StateError};
use crate::ids;
use crate::model::{AttachedPolicy, ManagedPolicy, Page, Paging, Role, Tag};
use crate::policies::{find_policy, parse_policy_arn};
use crate::policy_documents::render;
use crate::validate::{self, check_tags};

/// IAM's default quota of managed policies attached to one role.
const MAX_ATTACHED_PER_ROLE: usize = 10;

/// Parameters of `CreateRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRole {
    /// The account to create the role in.
    pub account: String,
    /// The role name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The trust policy document (JSON).
    pub assume_role_policy: String,
    /// The description.
    pub description: Option<String>,
    /// Longest session in seconds (default 3600).
    pub max_session_duration: Option<u32>,
    /// A managed policy ARN to use as permissions boundary.
    pub permissions_boundary: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

pub(crate) fn role_not_found(name: &str) -> StateError {
    StateError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

pub(crate) fn find_role(
    t: &impl ReadableTable<K2, Bytes>,
    account: &str,
    name: &str,
) -> Result<Role> {
    get2(t, "roles", account, &name_key(name))?.ok_or_else(|| role_not_found(name))
}

/// A role's identity policies and boundary as the `iam` engine takes them (see
/// [`Store::role_identity_policies`]), its managed policies looked up with `policy` (`None`:
/// gone, skipped).
pub(crate) fn identity_policies_of(
    role: &Role,
    policy: impl Fn(&str) -> Result<Option<ManagedPolicy>>,
) -> Result<(Vec<iam::NamedPolicy>, Option<iam::NamedPolicy>)> {
    let corrupt = |e: iam::PolicyError| StateError::Corrupt {
        table: "policy document",
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    for (name, doc) in &role.inline_policies {
        let parsed = iam::Policy::parse(doc, iam::PolicyKind::Identity).map_err(corrupt)?;
        out.push(iam::NamedPolicy::new(
            &format!("{} (inline: {name})", role.arn),
            parsed,
        ));
    }
    let default_of = |arn: &str| -> Result<Option<iam::NamedPolicy>> {
        let Some(p) = policy(arn)? else {
            return Ok(None);
        };
        let Some(v) = p.default_version() else {
            return Ok(None);
        };
        let parsed = iam::Policy::parse(&v.document, iam::PolicyKind::Identity).map_err(corrupt)?;
        Ok(Some(iam::NamedPolicy::new(arn, parsed)))
    };
    for arn in &role.attached_policies {
        out.extend(default_of(arn)?);
    }
    let boundary = match &role.permissions_boundary {
        Some(arn) => default_of(arn)?,
        None => None,
    };
    Ok((out, boundary))
}

fn policy_size_check_total(total: usize) -> Result<()> {
    iam::SizeQuota::RoleInlinePolicies.check(total)?;
    Ok(())
}

impl<'t> Tx<'t> {
    fn put_role(&mut self, role: &Role) -> Result<()> {
        let record = encode(role)?;
        let key = name_key(&role.name);
        self.set_iam_record(IamTable::Roles, &role.account, &key, Some(&record))
    }

    pub(crate) fn create_role(&mut self, req: &CreateRole) -> Result<Role> {
        self.require_account(&req.account)?;
        validate::entity_name(&req.name, "roleName", 64)?;
        let path = req.path.clone().unwrap_or_else(|| "/".to_string());
        validate::path(&path, "path")?;
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        let max_session_duration = req.max_session_duration.unwrap_or(3600);
        validate::max_session_duration(max_session_duration)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerRole")?;
        let key = name_key(&req.name);
        if self
            .roles
            .get((req.account.as_str(), key.as_str()))?
            .is_some()
        {
            return Err(StateError::EntityAlreadyExists(format!(
                "Role with name {} already exists.",
                req.name
            )));
        }
        let assume_role_policy = self.store_policy(
            &req.assume_role_policy,
            iam::PolicyKind::Trust,
            iam::SizeQuota::TrustPolicy,
        )?;
        // Every check is done before the first write, so a failure leaves nothing behind even
        // inside a larger transaction (world seeding retries failed roles).
        if let Some(b) = &req.permissions_boundary {
            self.boundary_usage(b, 1)?;
        }
        let role = Role {
            account: req.account.clone(),
            name: req.name.clone(),
            arn: format!("arn:aws:iam::{}:role{}{}", req.account, path, req.name),
            path,
            role_id: self.ids.unique_id(ids::ROLE_ID_PREFIX)?,
            created: self.now,
            description: req.description.clone(),
            max_session_duration,
            assume_role_policy,
            tags,
            permissions_boundary: req.permissions_boundary.clone(),
            inline_policies: BTreeMap::new(),
            attached_policies: Vec::new(),
        };
        self.put_role(&role)?;
        self.unique_ids.insert(
            role.role_id.as_str(),
            encode(&IdEntry {
                kind: EntityKind::Role,
                account: role.account.clone(),
                arn: role.arn.clone(),
            })?
            .as_slice(),
        )?;
        Ok(role)
    }

    pub(crate) fn delete_role(&mut self, account: &str, name: &str) -> Result<()> {
        let role = find_role(&self.roles, account, name)?;
        if !role.attached_policies.is_empty() {
            return Err(StateError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(StateError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if let Some(b) = &role.permissions_boundary {
            self.boundary_usage(b, -1)?;
        }
        self.set_iam_record(IamTable::Roles, account, &name_key(name), None)?;
        self.unique_ids.remove(role.role_id.as_str())?;
        // Sessions end with their role: collect this incarnation's session keys, then drop them.
        let mut keys = Vec::new();
        for entry in self.role_sessions.range((role.role_id.as_str(), "")..)? {
            let (k, _) = entry?;
            let (rid, key) = k.value();
            if rid != role.role_id {
                break;
            }
            keys.push(key.to_string());
        }
        for key in keys {
            self.sessions.remove(key.as_str())?;
            self.role_sessions
                .remove((role.role_id.as_str(), key.as_str()))?;
        }
        Ok(())
    }

    pub(crate) fn attach_role_policy(
        &mut self,
        account: &str,
        role_name: &str,
        arn: &str,
    ) -> Result<()> {
        let mut role = find_role(&self.roles, account, role_name)?;
        let mut policy = find_policy(&self.policies, arn).map_err(|_| {
            StateError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
        })?;
        if role.attached_policies.iter().any(|a| a == arn) {
            // AttachRolePolicy is idempotent.
            return Ok(());
        }
        if role.attached_policies.len() >= MAX_ATTACHED_PER_ROLE {
            return Err(StateError::LimitExceeded(format!(
                "Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_PER_ROLE}"
            )));
        }
        role.attached_policies.push(arn.to_string());
        policy.attachment_count += 1;
        self.put_role(&role)?;
        self.put_policy(&policy)
    }

    pub(crate) fn put_role_policy(
        &mut self,
        account: &str,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate::entity_name(policy_name, "policyName", 128)?;
        let mut role = find_role(&self.roles, account, role_name)?;
        iam::Policy::parse(document, iam::PolicyKind::Identity)?;
        role.inline_policies
            .insert(policy_name.to_string(), document.to_string());
        let total: usize = role
            .inline_policies
            .values()
            .map(|d| iam::policy_size(d))
            .sum();
        policy_size_check_total(total)?;
        self.put_role(&role)
    }
}

impl Store {
    /// `CreateRole`.
    pub fn create_role(&self, req: &CreateRole) -> Result<Role> {
        self.update(|tx| tx.create_role(req))
    }

    /// `GetRole`.
    pub fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        self.read(|rx| find_role(rx.roles()?, account, name))
    }

    /// The live role with that unique id (STS resolving a session's role).
    pub fn get_role_by_id(&self, role_id: &str) -> Result<Option<Role>> {
        self.read(|rx| {
            let Some(entry) = get1::<IdEntry>(rx.unique_ids()?, "unique_ids", role_id)? else {
                return Ok(None);
            };
            if entry.kind != EntityKind::Role {
                return Ok(None);
            }
            let Ok(IdentityArn::Role { name, .. }) = entry.arn.parse::<IdentityArn>() else {
                return Ok(None);
            };
            get2(rx.roles()?, "roles", &entry.account, &name_key(&name))
        })
    }

    /// `GetRole` with the trust policy rendered for display.
    pub fn get_role_rendered(&self, account: &str, name: &str) -> Result<(Role, String)> {
        self.read(|rx| {
            let role = find_role(rx.roles()?, account, name)?;
            let doc = render(rx.unique_ids()?, &role.assume_role_policy)?;
            Ok((role, doc))
        })
    }

    /// `ListRoles`, by name, filtered by path prefix.
    pub fn list_roles(
        &self,
        account: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<Role>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let max = validate::max_items(paging.max_items)?;
        self.read(|rx| {
            let start = paging.marker.as_deref().unwrap_or("");
            let items = scan2::<Role>(rx.roles()?, "roles", account, start)?
                .into_iter()
                .filter(|(_, r)| path_prefix.is_none_or(|p| r.path.starts_with(p)))
                .collect();
            Ok(paginate(items, max))
        })
    }

    /// `UpdateRole`: the description and/or the maximum session duration.
    pub fn update_role(
        &self,
        account: &str,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<Role> {
        if let Some(d) = description {
            validate::description(d)?;
        }
        if let Some(m) = max_session_duration {
            validate::max_session_duration(m)?;
        }
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            if let Some(d) = description {
                role.description = Some(d.to_string());
            }
            if let Some(m) = max_session_duration {
                role.max_session_duration = m;
            }
            tx.put_role(&role)?;
            Ok(role)
        })
    }

    /// `UpdateAssumeRolePolicy`.
    pub fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<Role> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            role.assume_role_policy = tx.store_policy(
                document,
                iam::PolicyKind::Trust,
                iam::SizeQuota::TrustPolicy,
            )?;
            tx.put_role(&role)?;
            Ok(role)
        })
    }

    /// `PutRolePermissionsBoundary`.
    pub fn put_role_permissions_boundary(
        &self,
        account: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            if role.permissions_boundary.as_deref() == Some(policy_arn) {
                return Ok(());
            }
            tx.boundary_usage(policy_arn, 1)?;
            if let Some(old) = role.permissions_boundary.replace(policy_arn.to_string()) {
                tx.boundary_usage(&old, -1)?;
            }
            tx.put_role(&role)
        })
    }

    /// `DeleteRolePermissionsBoundary`.
    pub fn delete_role_permissions_boundary(&self, account: &str, name: &str) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            let Some(old) = role.permissions_boundary.take() else {
                return Err(StateError::NoSuchEntity(format!(
                    "The role with name {name} does not have a permissions boundary."
                )));
            };
            tx.boundary_usage(&old, -1)?;
            tx.put_role(&role)
        })
    }

    /// `TagRole`: adds or replaces tags (keys compared regardless of case), at most 50.
    pub fn tag_role(&self, account: &str, name: &str, tags: &[Tag]) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            check_tags(&mut role.tags, tags, "TagsPerRole")?;
            tx.put_role(&role)
        })
    }

    /// `UntagRole`: removes the tags with these keys; absent keys are ignored, as in IAM.
    pub fn untag_role(&self, account: &str, name: &str, keys: &[String]) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, name)?;
            role.tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            tx.put_role(&role)
        })
    }

    /// `ListRoleTags`.
    pub fn list_role_tags(&self, account: &str, name: &str, paging: &Paging) -> Result<Page<Tag>> {
        let role = self.get_role(account, name)?;
        paginate_indexed(role.tags, paging)
    }

    /// `PutRolePolicy`: creates or replaces; all inline policies of the role together must fit
    /// IAM's 10,240-character quota.
    pub fn put_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        self.update(|tx| tx.put_role_policy(account, role_name, policy_name, document))
    }

    /// `GetRolePolicy`: the document.
    pub fn get_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
    ) -> Result<String> {
        let role = self.get_role(account, role_name)?;
        role.inline_policy(policy_name).map(str::to_string)
    }

    /// `DeleteRolePolicy`.
    pub fn delete_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_name: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, role_name)?;
            if role.inline_policies.remove(policy_name).is_none() {
                return Err(inline_not_found(policy_name));
            }
            tx.put_role(&role)
        })
    }

    /// `ListRolePolicies`: the names, sorted.
    pub fn list_role_policies(
        &self,
        account: &str,
        role_name: &str,
        paging: &Paging,
    ) -> Result<Page<String>> {
        let max = validate::max_items(paging.max_items)?;
        let role = self.get_role(account, role_name)?;
        let start = paging.marker.as_deref().unwrap_or("");
        let items = role
            .inline_policies
            .into_keys()
            .filter(|n| n.as_str() >= start)
            .map(|n| (n.clone(), n))
            .collect();
        Ok(paginate(items, max))
    }

    /// `AttachRolePolicy` (idempotent; at most 10 per role).
    pub fn attach_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| tx.attach_role_policy(account, role_name, policy_arn))
    }

    /// `DetachRolePolicy`.
    pub fn detach_role_policy(
        &self,
        account: &str,
        role_name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.update(|tx| {
            let mut role = find_role(&tx.roles, account, role_name)?;
            let Some(i) = role.attached_policies.iter().position(|a| a == policy_arn) else {
                return Err(StateError::NoSuchEntity(format!(
                    "Policy {policy_arn} was not found."
                )));
            };
            role.attached_policies.remove(i);
            tx.put_role(&role)?;
            if let Ok(mut p) = find_policy(&tx.policies, policy_arn) {
                p.attachment_count = p.attachment_count.saturating_sub(1);
                tx.put_policy(&p)?;
            }
            Ok(())
        })
    }

    /// `ListAttachedRolePolicies`, in attachment order, filtered by the policies' path prefix.
    pub fn list_attached_role_policies(
        &self,
        account: &str,
        role_name: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<AttachedPolicy>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let role = self.get_role(account, role_name)?;
        let items = role
            .attached_policies
            .iter()
            .filter_map(|arn| {
                let (_, path, name) = parse_policy_arn(arn)?;
                path_prefix
                    .is_none_or(|p| path.starts_with(p))
                    .then(|| AttachedPolicy {
                        name,
                        arn: arn.clone(),
                    })
            })
            .collect();
        paginate_indexed(items, paging)
    }

    /// The identity policies of a role as the `iam` engine takes them: inline policies, then the
    /// default versions of attached managed policies, each named as IAM's explanations name them;
    /// and the permissions boundary's default version, if any.
    pub fn role_identity_policies(
        &self,
        account: &str,
        role_name: &str,
    ) -> Result<(Vec<iam::NamedPolicy>, Option<iam::NamedPolicy>)> {
        self.read(|rx| {
            let role = find_role(rx.roles()?, account, role_name)?;
            identity_policies_of(&role, |arn| Ok(find_policy(rx.policies()?, arn).ok()))
        })
    }
}

impl Role {
    /// The inline policy `policy_name` of this role, for `GetRolePolicy` on a role already read.
    ///
    /// # Errors
    ///
    /// `NoSuchEntity` when the role has no inline policy of that name.
    pub fn inline_policy(&self, policy_name: &str) -> Result<&str> {
        self.inline_policies
            .get(policy_name)
            .map(String::as_str)
            .ok_or_else(|| inline_not_found(policy_name))
    }
}

fn inline_not_found(policy_name: &str) -> StateError {
    StateError::NoSuchEntity(format!(
        "The role policy with name {policy_name} cannot be found."
    ))
}
