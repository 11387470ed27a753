//! IAM instance profiles: a named container for at most one role, which EC2 (and seed 000's
//! node set-up) hands to an instance. Durable like the rest of the state.
//!
//! Two tables of their own (created when the store opens):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `instance_profiles` | (account, lower-cased name) | [`InstanceProfile`] |
//! | `instance_profile_roles` | (account, lower-cased role name, lower-cased profile name) | `()` |
//!
//! The second table answers `ListInstanceProfilesForRole` and `DeleteRole`'s "still in a
//! profile" check with one range scan; both are written in one transaction, so they never
//! disagree. Roles are kept by name: a role in a profile cannot be deleted, so the name always
//! names the same role.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{decode, encode, name_key, paginate, paginate_indexed, Store, ROLES};
use crate::error::{Result, StateError};
use crate::ids::IdSource;
use crate::model::{Page, Paging, Role, Tag};
use crate::roles::{find_role, role_not_found};
use crate::validate::{self, check_tags};

type K2 = (&'static str, &'static str);
type K3 = (&'static str, &'static str, &'static str);

const PROFILES_NAME: &str = "instance_profiles";
const PROFILES: TableDefinition<K2, &'static [u8]> = TableDefinition::new(PROFILES_NAME);
const PROFILE_ROLES: TableDefinition<K3, ()> = TableDefinition::new("instance_profile_roles");

/// IAM's quota of instance profiles per account.
const MAX_PER_ACCOUNT: usize = 1000;
/// IAM's quota of roles per instance profile (fixed at one).
const MAX_ROLES: usize = 1;

/// Creates the tables, so read transactions can open them unconditionally.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(PROFILES)?;
    txn.open_table(PROFILE_ROLES)?;
    Ok(())
}

/// An instance profile, with the members of IAM's `InstanceProfile` (its roles by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProfile {
    /// The account it is in.
    pub account: String,
    /// The name (unique in its account regardless of case).
    pub name: String,
    /// The path, `/` by default.
    pub path: String,
    /// The unique id, `AIPA…`.
    pub instance_profile_id: String,
    /// `arn:aws:iam::ACCOUNT:instance-profile/PATHNAME`.
    pub arn: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The names of its roles (at most one), as the roles spell them.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tags, in the order they were added (at most 50).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// An instance profile with its roles read in the same transaction, as IAM shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProfileView {
    /// The profile.
    pub profile: InstanceProfile,
    /// Its roles.
    pub roles: Vec<Role>,
}

fn not_found(name: &str) -> StateError {
    StateError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn still_has_roles() -> StateError {
    StateError::DeleteConflict(
        "Cannot delete entity, must remove roles from instance profile first.".to_string(),
    )
}

fn now() -> OffsetDateTime {
    // IAM reports times to the second.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn find(
    t: &impl ReadableTable<K2, &'static [u8]>,
    account: &str,
    name: &str,
) -> Result<InstanceProfile> {
    match t.get((account, name_key(name).as_str()))? {
        Some(g) => decode(PROFILES_NAME, g.value()),
        None => Err(not_found(name)),
    }
}

fn put(t: &mut redb::Table<'_, K2, &'static [u8]>, profile: &InstanceProfile) -> Result<()> {
    let key = name_key(&profile.name);
    t.insert(
        (profile.account.as_str(), key.as_str()),
        encode(profile)?.as_slice(),
    )?;
    Ok(())
}

/// `DeleteRole`'s check, in the deleting transaction: `DeleteConflict` while the role is in
/// an instance profile.
pub(crate) fn check_role_not_in_profile(
    txn: &WriteTransaction,
    account: &str,
    role_name: &str,
) -> Result<()> {
    let index = txn.open_table(PROFILE_ROLES)?;
    let role_key = name_key(role_name);
    let mut range = index.range((account, role_key.as_str(), "")..)?;
    if let Some(entry) = range.next() {
        let (k, _) = entry?;
        let (a, r, _) = k.value();
        if a == account && r == role_key {
            return Err(still_has_roles());
        }
    }
    Ok(())
}

/// Parameters of `CreateInstanceProfile`, already checked against the model by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateInstanceProfile {
    /// The account.
    pub account: String,
    /// The name.
    pub name: String,
    /// The path (`/` when `None`).
    pub path: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl Store {
    /// `CreateInstanceProfile`.
    ///
    /// # Errors
    ///
    /// `EntityAlreadyExists` for a name taken regardless of case; `LimitExceeded` past 1000
    /// profiles in the account or 50 tags; `ValidationError` for a bad name or path.
    pub fn create_instance_profile(&self, req: &CreateInstanceProfile) -> Result<InstanceProfile> {
        validate::entity_name(&req.name, "instanceProfileName", 128)?;
        let path = req.path.clone().unwrap_or_else(|| "/".to_string());
        validate::path(&path, "path")?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerInstanceProfile")?;
        let instance_profile_id = IdSource::Os.unique_id("AIPA")?;
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let key = name_key(&req.name);
            if profiles
                .get((req.account.as_str(), key.as_str()))?
                .is_some()
            {
                return Err(StateError::EntityAlreadyExists(format!(
                    "Instance Profile {} already exists.",
                    req.name
                )));
            }
            let count = profiles
                .range((req.account.as_str(), "")..)?
                .take_while(|e| e.as_ref().map_or(true, |(k, _)| k.value().0 == req.account))
                .count();
            if count >= MAX_PER_ACCOUNT {
                return Err(StateError::LimitExceeded(format!(
                    "Cannot exceed quota for InstanceProfilesPerAccount: {MAX_PER_ACCOUNT}"
                )));
            }
            let profile = InstanceProfile {
                account: req.account.clone(),
                name: req.name.clone(),
                arn: format!(
                    "arn:aws:iam::{}:instance-profile{path}{}",
                    req.account, req.name
                ),
                path,
                instance_profile_id,
                created: now(),
                roles: Vec::new(),
                tags,
            };
            put(&mut profiles, &profile)?;
            Ok(profile)
        })
    }

    /// The instance profile `name`, without its roles (authorization needs its ARN).
    pub fn get_instance_profile_record(
        &self,
        account: &str,
        name: &str,
    ) -> Result<InstanceProfile> {
        self.read_raw(|txn| find(&txn.open_table(PROFILES)?, account, name))
    }

    /// `GetInstanceProfile`: the profile and its roles.
    pub fn get_instance_profile(&self, account: &str, name: &str) -> Result<InstanceProfileView> {
        self.read_raw(|txn| {
            let profiles = txn.open_table(PROFILES)?;
            let roles = txn.open_table(ROLES)?;
            let profile = find(&profiles, account, name)?;
            with_roles(&roles, profile)
        })
    }

    /// `DeleteInstanceProfile`: `DeleteConflict` while it has a role, as IAM answers.
    pub fn delete_instance_profile(&self, account: &str, name: &str) -> Result<()> {
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let profile = find(&profiles, account, name)?;
            if !profile.roles.is_empty() {
                return Err(still_has_roles());
            }
            profiles.remove((account, name_key(name).as_str()))?;
            Ok(())
        })
    }

    /// `ListInstanceProfiles`: by name, filtered by path prefix, with IAM's paging (the
    /// marker is the next profile's key).
    pub fn list_instance_profiles(
        &self,
        account: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<InstanceProfileView>> {
        if let Some(p) = path_prefix {
            validate::path_prefix(p)?;
        }
        let max = validate::max_items(paging.max_items)?;
        self.read_raw(|txn| {
            let profiles = txn.open_table(PROFILES)?;
            let roles = txn.open_table(ROLES)?;
            let start = paging.marker.as_deref().unwrap_or("");
            let mut items = Vec::new();
            for entry in profiles.range((account, start)..)? {
                let (k, v) = entry?;
                let (a, key) = k.value();
                if a != account {
                    break;
                }
                let profile: InstanceProfile = decode(PROFILES_NAME, v.value())?;
                if path_prefix.is_none_or(|p| profile.path.starts_with(p)) {
                    items.push((key.to_string(), profile));
                }
                if items.len() > max {
                    break;
                }
            }
            let page = paginate(items, max);
            let mut shown = Vec::with_capacity(page.items.len());
            for p in page.items {
                shown.push(with_roles(&roles, p)?);
            }
            Ok(Page {
                items: shown,
                is_truncated: page.is_truncated,
                marker: page.marker,
            })
        })
    }

    /// `ListInstanceProfilesForRole`: `NoSuchEntity` when the role does not exist.
    pub fn list_instance_profiles_for_role(
        &self,
        account: &str,
        role_name: &str,
        paging: &Paging,
    ) -> Result<Page<InstanceProfileView>> {
        let max = validate::max_items(paging.max_items)?;
        self.read_raw(|txn| {
            let roles = txn.open_table(ROLES)?;
            find_role(&roles, account, role_name)?;
            let index = txn.open_table(PROFILE_ROLES)?;
            let profiles = txn.open_table(PROFILES)?;
            let role_key = name_key(role_name);
            let start = paging.marker.as_deref().unwrap_or("");
            let mut items = Vec::new();
            for entry in index.range((account, role_key.as_str(), start)..)? {
                let (k, _) = entry?;
                let (a, r, profile_key) = k.value();
                if a != account || r != role_key {
                    break;
                }
                let profile = match profiles.get((account, profile_key))? {
                    Some(g) => decode::<InstanceProfile>(PROFILES_NAME, g.value())?,
                    None => continue,
                };
                items.push((profile_key.to_string(), profile));
                if items.len() > max {
                    break;
                }
            }
            let page = paginate(items, max);
            let mut shown = Vec::with_capacity(page.items.len());
            for p in page.items {
                shown.push(with_roles(&roles, p)?);
            }
            Ok(Page {
                items: shown,
                is_truncated: page.is_truncated,
                marker: page.marker,
            })
        })
    }

    /// `AddRoleToInstanceProfile`: `NoSuchEntity` for a missing profile or role;
    /// `LimitExceeded` when the profile already has its one role (the same role included, as
    /// IAM answers).
    pub fn add_role_to_instance_profile(
        &self,
        account: &str,
        profile_name: &str,
        role_name: &str,
    ) -> Result<()> {
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let mut profile = find(&profiles, account, profile_name)?;
            let role = find_role(&txn.open_table(ROLES)?, account, role_name)?;
            if profile.roles.len() >= MAX_ROLES {
                return Err(StateError::LimitExceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {MAX_ROLES}"
                )));
            }
            profile.roles.push(role.name.clone());
            put(&mut profiles, &profile)?;
            let mut index = txn.open_table(PROFILE_ROLES)?;
            index.insert(
                (
                    account,
                    name_key(&role.name).as_str(),
                    name_key(&profile.name).as_str(),
                ),
                (),
            )?;
            Ok(())
        })
    }

    /// `RemoveRoleFromInstanceProfile`: `NoSuchEntity` for a missing profile, or a role that
    /// is not in it (IAM's message for a missing role; for one that exists but is elsewhere
    /// the wording is chosen here, as AWS's is not known).
    pub fn remove_role_from_instance_profile(
        &self,
        account: &str,
        profile_name: &str,
        role_name: &str,
    ) -> Result<()> {
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let mut profile = find(&profiles, account, profile_name)?;
            let before = profile.roles.len();
            profile.roles.retain(|r| !r.eq_ignore_ascii_case(role_name));
            if profile.roles.len() == before {
                let exists = find_role(&txn.open_table(ROLES)?, account, role_name).is_ok();
                return Err(if exists {
                    StateError::NoSuchEntity(format!(
                        "The role with name {role_name} is not in instance profile {}.",
                        profile.name
                    ))
                } else {
                    role_not_found(role_name)
                });
            }
            put(&mut profiles, &profile)?;
            let mut index = txn.open_table(PROFILE_ROLES)?;
            index.remove((
                account,
                name_key(role_name).as_str(),
                name_key(&profile.name).as_str(),
            ))?;
            Ok(())
        })
    }

    /// `TagInstanceProfile`: adds or replaces tags (keys compared regardless of case), at
    /// most 50.
    pub fn tag_instance_profile(&self, account: &str, name: &str, tags: &[Tag]) -> Result<()> {
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let mut profile = find(&profiles, account, name)?;
            check_tags(&mut profile.tags, tags, "TagsPerInstanceProfile")?;
            put(&mut profiles, &profile)
        })
    }

    /// `UntagInstanceProfile`: absent keys are ignored, as in IAM.
    pub fn untag_instance_profile(&self, account: &str, name: &str, keys: &[String]) -> Result<()> {
        self.write_raw(|txn| {
            let mut profiles = txn.open_table(PROFILES)?;
            let mut profile = find(&profiles, account, name)?;
            profile
                .tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            put(&mut profiles, &profile)
        })
    }

    /// `ListInstanceProfileTags`.
    pub fn list_instance_profile_tags(
        &self,
        account: &str,
        name: &str,
        paging: &Paging,
    ) -> Result<Page<Tag>> {
        let profile = self.get_instance_profile_record(account, name)?;
        paginate_indexed(profile.tags, paging)
    }
}

fn with_roles(
    roles: &impl ReadableTable<K2, &'static [u8]>,
    profile: InstanceProfile,
) -> Result<InstanceProfileView> {
    let mut out = Vec::with_capacity(profile.roles.len());
    for name in &profile.roles {
        out.push(find_role(roles, &profile.account, name)?);
    }
    Ok(InstanceProfileView {
        profile,
        roles: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CreateRole, World};

    const ACCOUNT: &str = "111111111111";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .seed_if_empty(&World::default_world(|c| format!("https://localhost/{c}")))
            .unwrap();
        (dir, store)
    }

    fn role(store: &Store, name: &str) {
        store
            .create_role(&CreateRole {
                account: ACCOUNT.into(),
                name: name.into(),
                assume_role_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
                ..Default::default()
            })
            .unwrap();
    }

    fn create(store: &Store, name: &str, path: Option<&str>) -> InstanceProfile {
        store
            .create_instance_profile(&CreateInstanceProfile {
                account: ACCOUNT.into(),
                name: name.into(),
                path: path.map(Into::into),
                tags: vec![Tag::new("team", "a")],
            })
            .unwrap()
    }

    #[test]
    fn lifecycle_with_one_role_and_conflicts() {
        let (dir, store) = store();
        role(&store, "node");
        role(&store, "other");
        let p = create(&store, "Nodes", Some("/eks/"));
        assert!(p.instance_profile_id.starts_with("AIPA"));
        assert_eq!(p.instance_profile_id.len(), 21);
        assert_eq!(
            p.arn,
            format!("arn:aws:iam::{ACCOUNT}:instance-profile/eks/Nodes")
        );
        let dup = store
            .create_instance_profile(&CreateInstanceProfile {
                account: ACCOUNT.into(),
                name: "nodes".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(dup.code(), "EntityAlreadyExists");

        store
            .add_role_to_instance_profile(ACCOUNT, "nodes", "NODE")
            .unwrap();
        for again in ["node", "other"] {
            let e = store
                .add_role_to_instance_profile(ACCOUNT, "Nodes", again)
                .unwrap_err();
            assert_eq!(e.code(), "LimitExceeded");
            assert_eq!(
                e.to_string(),
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"
            );
        }
        let e = store
            .add_role_to_instance_profile(ACCOUNT, "Nodes", "ghost")
            .unwrap_err();
        assert_eq!(e.to_string(), "The role with name ghost cannot be found.");

        let view = store.get_instance_profile(ACCOUNT, "NODES").unwrap();
        assert_eq!(view.roles.len(), 1);
        assert_eq!(view.roles[0].name, "node");
        let for_role = store
            .list_instance_profiles_for_role(ACCOUNT, "node", &Paging::default())
            .unwrap();
        assert_eq!(for_role.items.len(), 1);
        assert!(store
            .list_instance_profiles_for_role(ACCOUNT, "other", &Paging::default())
            .unwrap()
            .items
            .is_empty());

        // Neither the role nor the profile goes while they are joined.
        let e = store.delete_role(ACCOUNT, "node").unwrap_err();
        assert_eq!(e.code(), "DeleteConflict");
        assert_eq!(
            e.to_string(),
            "Cannot delete entity, must remove roles from instance profile first."
        );
        assert_eq!(
            store
                .delete_instance_profile(ACCOUNT, "Nodes")
                .unwrap_err()
                .code(),
            "DeleteConflict"
        );
        assert_eq!(
            store
                .remove_role_from_instance_profile(ACCOUNT, "Nodes", "other")
                .unwrap_err()
                .code(),
            "NoSuchEntity"
        );

        // Durable across a reopen.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .get_instance_profile(ACCOUNT, "Nodes")
                .unwrap()
                .profile
                .roles,
            ["node"]
        );
        store
            .remove_role_from_instance_profile(ACCOUNT, "Nodes", "node")
            .unwrap();
        store.delete_role(ACCOUNT, "node").unwrap();
        store.delete_instance_profile(ACCOUNT, "Nodes").unwrap();
        assert_eq!(
            store
                .get_instance_profile(ACCOUNT, "Nodes")
                .unwrap_err()
                .to_string(),
            "Instance Profile Nodes cannot be found."
        );
    }

    #[test]
    fn listing_pages_and_filters_by_path() {
        let (_dir, store) = store();
        for (name, path) in [("a", "/x/"), ("b", "/"), ("c", "/x/y/"), ("d", "/x/")] {
            create(&store, name, Some(path));
        }
        let page = store
            .list_instance_profiles(
                ACCOUNT,
                Some("/x/"),
                &Paging {
                    marker: None,
                    max_items: Some(2),
                },
            )
            .unwrap();
        let names: Vec<_> = page.items.iter().map(|v| v.profile.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(page.is_truncated);
        let next = store
            .list_instance_profiles(
                ACCOUNT,
                Some("/x/"),
                &Paging {
                    marker: page.marker,
                    max_items: Some(2),
                },
            )
            .unwrap();
        let names: Vec<_> = next.items.iter().map(|v| v.profile.name.as_str()).collect();
        assert_eq!(names, ["d"]);
        assert!(!next.is_truncated);
        // Other accounts see none of them.
        assert!(store
            .list_instance_profiles("222222222222", None, &Paging::default())
            .unwrap()
            .items
            .is_empty());
    }

    #[test]
    fn tags_merge_ignoring_case_and_untag() {
        let (_dir, store) = store();
        create(&store, "p", None);
        store
            .tag_instance_profile(
                ACCOUNT,
                "p",
                &[Tag::new("TEAM", "b"), Tag::new("env", "dev")],
            )
            .unwrap();
        let tags = store
            .list_instance_profile_tags(ACCOUNT, "p", &Paging::default())
            .unwrap();
        assert_eq!(tags.items, [Tag::new("TEAM", "b"), Tag::new("env", "dev")]);
        store
            .untag_instance_profile(ACCOUNT, "p", &["team".into(), "absent".into()])
            .unwrap();
        let tags = store
            .list_instance_profile_tags(ACCOUNT, "p", &Paging::default())
            .unwrap();
        assert_eq!(tags.items, [Tag::new("env", "dev")]);
    }
}
