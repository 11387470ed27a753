//! Roles, their tags and inline policies.

use awswire::{iam_policy_encode, rules, AwsError, Required, Validator};
use twin_state::{CreateRole, Tag};

use super::{render, Call, Out};

/// Reads a `Tags` member list (`Tags.member.N.Key`/`Value`).
pub(crate) fn read_tags(v: &mut Validator<'_>, required: bool) -> Required<Vec<Tag>> {
    let rule = if required {
        rules::TAG_LIST.required()
    } else {
        rules::TAG_LIST
    };
    v.struct_list("Tags", &rule)
        .iter()
        .map(|t| {
            let key = v.required_str(t.member("Key"), &rules::TAG_KEY);
            key.zip(v.required_str(t.member("Value"), &rules::TAG_VALUE))
                .map(|(k, value)| Tag::new(k, value))
        })
        .collect()
}

/// IAM's `InvalidInput` for a request naming one tag key twice (`k` and `K` included): IAM
/// refuses the request rather than keeping one of them.
pub(crate) fn check_tag_keys(tags: &[Tag]) -> Result<(), AwsError> {
    if awswire::has_duplicate_keys(tags.iter().map(|t| t.key.as_str())) {
        return Err(AwsError::invalid_input(awswire::DUPLICATE_TAG_KEYS));
    }
    Ok(())
}

impl Call<'_> {
    /// `RoleName`.
    pub(super) fn role_name(v: &mut Validator<'_>) -> Required<String> {
        v.required_str("RoleName", &rules::ROLE_NAME)
    }

    /// Authorizes `iam:{Action}` on role `name` (once validation has passed: every member
    /// read, one `ValidationError` for all that failed).
    pub(super) fn authorize_role(&self, name: &str) -> Result<(), AwsError> {
        self.authorize(&self.role_arn(name)?)
    }

    pub(super) fn create_role(&self) -> Out {
        let mut v = self.query.validator();
        let path = v.str("Path", &rules::PATH);
        let name = Self::role_name(&mut v);
        let document = v.required_str("AssumeRolePolicyDocument", &rules::POLICY_DOCUMENT);
        let description = v.str("Description", &rules::ROLE_DESCRIPTION);
        let max = v.int("MaxSessionDuration", &rules::MAX_SESSION_DURATION);
        let boundary = v.str("PermissionsBoundary", &rules::IAM_ARN);
        let tags = read_tags(&mut v, false);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let document = document.get(&checked);
        let tags = tags.get(&checked);
        check_tag_keys(&tags)?;
        let shown_path = path.clone().unwrap_or_else(|| "/".to_string());
        self.authorize(&format!(
            "arn:aws:iam::{}:role{shown_path}{name}",
            self.account
        ))?;
        let role = self.store().create_role(&CreateRole {
            account: self.account.clone(),
            name,
            path,
            assume_role_policy: document,
            description,
            max_session_duration: max.and_then(|m| u32::try_from(m).ok()),
            permissions_boundary: boundary,
            tags,
        })?;
        let trust = self.store().render_policy(&role.assume_role_policy)?;
        self.ok(|r| {
            r.child("Role", |e| render::role(e, &role, &trust, true));
        })
    }

    pub(super) fn get_role(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        let (role, trust) = self.store().get_role_rendered(&self.account, &name)?;
        self.ok(|r| {
            r.child("Role", |e| render::role(e, &role, &trust, true));
        })
    }

    pub(super) fn delete_role(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        self.store().delete_role(&self.account, &name)?;
        self.done()
    }

    pub(super) fn list_roles(&self) -> Out {
        let mut v = self.query.validator();
        let prefix = v.str("PathPrefix", &rules::PATH_PREFIX);
        let paging = Self::read_paging(&mut v);
        v.finish()?;
        self.authorize(&format!(
            "arn:aws:iam::{}:role{}",
            self.account,
            prefix.as_deref().unwrap_or("/")
        ))?;
        let page = self
            .store()
            .list_roles(&self.account, prefix.as_deref(), &paging)?;
        let mut shown = Vec::with_capacity(page.items.len());
        for role in &page.items {
            let trust = self.store().render_policy(&role.assume_role_policy)?;
            shown.push((role, trust));
        }
        self.ok(|r| {
            r.list("Roles", &shown, |e, (role, trust)| {
                render::role(e, role, trust, false);
            });
            render::page_end(r, &page);
        })
    }

    pub(super) fn update_role(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let description = v.str("Description", &rules::ROLE_DESCRIPTION);
        let max = v.int("MaxSessionDuration", &rules::MAX_SESSION_DURATION);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        self.store().update_role(
            &self.account,
            &name,
            description.as_deref(),
            max.and_then(|m| u32::try_from(m).ok()),
        )?;
        self.ok(|_| {})
    }

    pub(super) fn update_assume_role_policy(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let document = v.required_str("PolicyDocument", &rules::POLICY_DOCUMENT);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let document = document.get(&checked);
        self.authorize_role(&name)?;
        self.store()
            .update_assume_role_policy(&self.account, &name, &document)?;
        self.done()
    }

    pub(super) fn tag_role(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let tags = read_tags(&mut v, true);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let tags = tags.get(&checked);
        check_tag_keys(&tags)?;
        let arn = self.role_arn(&name)?;
        self.authorize_with(&arn, &|ctx| {
            ctx.set_multi("aws:TagKeys", tags.iter().map(|t| t.key.clone()));
            for t in &tags {
                ctx.set(&format!("aws:RequestTag/{}", t.key), &t.value);
            }
        })?;
        self.store().tag_role(&self.account, &name, &tags)?;
        self.done()
    }

    pub(super) fn untag_role(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let keys = v.str_list("TagKeys", &rules::TAG_LIST.required(), &rules::TAG_KEY);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let arn = self.role_arn(&name)?;
        self.authorize_with(&arn, &|ctx| {
            ctx.set_multi("aws:TagKeys", keys.iter().cloned());
        })?;
        self.store().untag_role(&self.account, &name, &keys)?;
        self.done()
    }

    pub(super) fn list_role_tags(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        let page = self.store().list_role_tags(&self.account, &name, &paging)?;
        self.ok(|r| {
            render::tags(r, &page.items);
            render::page_end(r, &page);
        })
    }

    pub(super) fn put_role_policy(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let policy_name = v.required_str("PolicyName", &rules::POLICY_NAME);
        let document = v.required_str("PolicyDocument", &rules::POLICY_DOCUMENT);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let policy_name = policy_name.get(&checked);
        let document = document.get(&checked);
        self.authorize_role(&name)?;
        self.store()
            .put_role_policy(&self.account, &name, &policy_name, &document)?;
        self.done()
    }

    pub(super) fn get_role_policy(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let policy_name = v.required_str("PolicyName", &rules::POLICY_NAME);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let policy_name = policy_name.get(&checked);
        // One read serves the authorization, the role's own spelling of its name and the policy.
        let (role, arn) = self.read_role(&name)?;
        self.authorize(&arn)?;
        let role = role?;
        let document = role.inline_policy(&policy_name)?;
        self.ok(|r| {
            r.text("RoleName", &role.name)
                .text("PolicyName", &policy_name)
                .text("PolicyDocument", &iam_policy_encode(document));
        })
    }

    pub(super) fn delete_role_policy(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let policy_name = v.required_str("PolicyName", &rules::POLICY_NAME);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let policy_name = policy_name.get(&checked);
        self.authorize_role(&name)?;
        self.store()
            .delete_role_policy(&self.account, &name, &policy_name)?;
        self.done()
    }

    pub(super) fn list_role_policies(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        let page = self
            .store()
            .list_role_policies(&self.account, &name, &paging)?;
        self.ok(|r| {
            r.text_list("PolicyNames", &page.items);
            render::page_end(r, &page);
        })
    }
}
