//! Instance profiles: create, read, list, delete, their one role and their tags.
//!
//! Each action is authorized as `iam:{Action}` on the profile's ARN
//! (`arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME`, the live profile's path when it exists),
//! except the listings: `ListInstanceProfiles` on `…:instance-profile{PathPrefix}` and
//! `ListInstanceProfilesForRole` on the role's ARN, as AWS names them in its denials.

use awswire::{rules, AwsError, Element, Required, Validator};
use twin_state::{CreateInstanceProfile, InstanceProfileView, StateError};

use super::roles::{check_tag_keys, read_tags};
use super::{render, state_error, Call, Iam, Out};
use crate::failure::Failure;

impl Call<'_> {
    /// `InstanceProfileName`.
    fn profile_name(v: &mut Validator<'_>) -> Required<String> {
        v.required_str("InstanceProfileName", &rules::INSTANCE_PROFILE_NAME)
    }

    /// The ARN of instance profile `name` in the caller's account: the live profile's (with
    /// its path), or `instance-profile/NAME` when there is none (the `NoSuchEntity` then
    /// comes after authorization, as for roles).
    fn profile_arn(&self, name: &str) -> Result<String, AwsError> {
        match self
            .store()
            .get_instance_profile_record(&self.account, name)
        {
            Ok(p) => Ok(p.arn),
            Err(StateError::NoSuchEntity(_)) => Ok(format!(
                "arn:aws:iam::{}:instance-profile/{name}",
                self.account
            )),
            Err(e) => Err(state_error(e)),
        }
    }

    /// Authorizes `iam:{Action}` on profile `name` (once validation has passed).
    fn authorize_profile(&self, name: &str) -> Result<(), AwsError> {
        self.authorize(&self.profile_arn(name)?)
    }

    /// The `InstanceProfile` structure, its roles with their trust policies as displayed.
    fn render_profile(&self, view: &InstanceProfileView) -> Result<RenderedProfile, Failure<Iam>> {
        let mut trusts = Vec::with_capacity(view.roles.len());
        for role in &view.roles {
            trusts.push(self.store().render_policy(&role.assume_role_policy)?);
        }
        Ok(RenderedProfile {
            view: view.clone(),
            trusts,
        })
    }

    pub(super) fn create_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let path = v.str("Path", &rules::PATH);
        let tags = read_tags(&mut v, false);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let tags = tags.get(&checked);
        check_tag_keys(&tags)?;
        let shown_path = path.clone().unwrap_or_else(|| "/".to_string());
        let arn = format!(
            "arn:aws:iam::{}:instance-profile{shown_path}{name}",
            self.account
        );
        self.authorize_with(&arn, &|ctx| {
            if !tags.is_empty() {
                ctx.set_multi("aws:TagKeys", tags.iter().map(|t| t.key.clone()));
                for t in &tags {
                    ctx.set(&format!("aws:RequestTag/{}", t.key), &t.value);
                }
            }
        })?;
        let profile = self
            .store()
            .create_instance_profile(&CreateInstanceProfile {
                account: self.account.clone(),
                name,
                path,
                tags,
            })?;
        let shown = self.render_profile(&InstanceProfileView {
            profile,
            roles: Vec::new(),
        })?;
        self.ok(|r| {
            r.child("InstanceProfile", |e| shown.render(e));
        })
    }

    pub(super) fn get_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_profile(&name)?;
        let view = self.store().get_instance_profile(&self.account, &name)?;
        let shown = self.render_profile(&view)?;
        self.ok(|r| {
            r.child("InstanceProfile", |e| shown.render(e));
        })
    }

    pub(super) fn delete_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_profile(&name)?;
        self.store().delete_instance_profile(&self.account, &name)?;
        self.done()
    }

    pub(super) fn list_instance_profiles(&self) -> Out {
        let mut v = self.query.validator();
        let prefix = v.str("PathPrefix", &rules::PATH_PREFIX);
        let paging = Self::read_paging(&mut v);
        v.finish()?;
        self.authorize(&format!(
            "arn:aws:iam::{}:instance-profile{}",
            self.account,
            prefix.as_deref().unwrap_or("/")
        ))?;
        let page =
            self.store()
                .list_instance_profiles(&self.account, prefix.as_deref(), &paging)?;
        self.list_page(&page)
    }

    pub(super) fn list_instance_profiles_for_role(&self) -> Out {
        let mut v = self.query.validator();
        let role = Self::role_name(&mut v);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let role = role.get(&checked);
        self.authorize_role(&role)?;
        let page = self
            .store()
            .list_instance_profiles_for_role(&self.account, &role, &paging)?;
        self.list_page(&page)
    }

    fn list_page(&self, page: &twin_state::Page<InstanceProfileView>) -> Out {
        let mut shown = Vec::with_capacity(page.items.len());
        for view in &page.items {
            shown.push(self.render_profile(view)?);
        }
        self.ok(|r| {
            r.list("InstanceProfiles", &shown, |e, p| p.render(e));
            render::page_end(r, page);
        })
    }

    pub(super) fn add_role_to_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let role = Self::role_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let role = role.get(&checked);
        self.authorize_profile(&name)?;
        // AWS also requires iam:PassRole on the role: the profile hands it to whatever
        // instance gets the profile.
        let role_arn = self.role_arn(&role)?;
        self.authorize_action("iam:PassRole", &role_arn)?;
        self.store()
            .add_role_to_instance_profile(&self.account, &name, &role)?;
        self.done()
    }

    pub(super) fn remove_role_from_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let role = Self::role_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let role = role.get(&checked);
        self.authorize_profile(&name)?;
        self.store()
            .remove_role_from_instance_profile(&self.account, &name, &role)?;
        self.done()
    }

    pub(super) fn tag_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let tags = read_tags(&mut v, true);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let tags = tags.get(&checked);
        check_tag_keys(&tags)?;
        let arn = self.profile_arn(&name)?;
        self.authorize_with(&arn, &|ctx| {
            ctx.set_multi("aws:TagKeys", tags.iter().map(|t| t.key.clone()));
            for t in &tags {
                ctx.set(&format!("aws:RequestTag/{}", t.key), &t.value);
            }
        })?;
        self.store()
            .tag_instance_profile(&self.account, &name, &tags)?;
        self.done()
    }

    pub(super) fn untag_instance_profile(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let keys = v.str_list("TagKeys", &rules::TAG_LIST.required(), &rules::TAG_KEY);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let arn = self.profile_arn(&name)?;
        self.authorize_with(&arn, &|ctx| {
            ctx.set_multi("aws:TagKeys", keys.iter().cloned());
        })?;
        self.store()
            .untag_instance_profile(&self.account, &name, &keys)?;
        self.done()
    }

    pub(super) fn list_instance_profile_tags(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::profile_name(&mut v);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_profile(&name)?;
        let page = self
            .store()
            .list_instance_profile_tags(&self.account, &name, &paging)?;
        self.ok(|r| {
            render::tags(r, &page.items);
            render::page_end(r, &page);
        })
    }
}

/// A profile with its roles' trust policies rendered, ready for the XML writer.
struct RenderedProfile {
    view: InstanceProfileView,
    trusts: Vec<String>,
}

impl RenderedProfile {
    /// The `InstanceProfile` structure in the model's member order; roles as `ListRoles`
    /// shows them (without tags), tags when there are any.
    fn render(&self, e: &mut Element<'_>) {
        let p = &self.view.profile;
        e.text("Path", &p.path)
            .text("InstanceProfileName", &p.name)
            .text("InstanceProfileId", &p.instance_profile_id)
            .text("Arn", &p.arn)
            .timestamp("CreateDate", p.created);
        let roles: Vec<_> = self.view.roles.iter().zip(&self.trusts).collect();
        e.list("Roles", &roles, |m, (role, trust)| {
            render::role(m, role, trust, false);
        });
        if !p.tags.is_empty() {
            render::tags(e, &p.tags);
        }
    }
}
