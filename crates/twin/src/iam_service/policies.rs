//! Customer managed policies, their versions, attachments and permissions boundaries.

use awswire::{rules, Required, StrRule, Validator};
use twin_state::{CreatePolicy, ListPolicies, PolicyScope};

use super::{render, Call, Out, VERSION_ID};

const SCOPE: StrRule = StrRule::ANY.one_of(&["All", "AWS", "Local"]);
const USAGE: StrRule = StrRule::ANY.one_of(&["PermissionsPolicy", "PermissionsBoundary"]);

impl Call<'_> {
    fn policy_arn(v: &mut Validator<'_>) -> Required<String> {
        v.required_str("PolicyArn", &rules::IAM_ARN)
    }

    pub(super) fn create_policy(&self) -> Out {
        let mut v = self.query.validator();
        let name = v.required_str("PolicyName", &rules::POLICY_NAME);
        let path = v.str("Path", &rules::POLICY_PATH);
        let document = v.required_str("PolicyDocument", &rules::POLICY_DOCUMENT);
        let description = v.str("Description", &rules::POLICY_DESCRIPTION);
        let tags = super::roles::read_tags(&mut v, false);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let document = document.get(&checked);
        let tags = tags.get(&checked);
        super::roles::check_tag_keys(&tags)?;
        let shown_path = path.clone().unwrap_or_else(|| "/".to_string());
        self.authorize(&format!(
            "arn:aws:iam::{}:policy{shown_path}{name}",
            self.account
        ))?;
        let policy = self.store().create_policy(&CreatePolicy {
            account: self.account.clone(),
            name,
            path,
            document,
            description,
            tags,
        })?;
        self.ok(|r| {
            r.child("Policy", |e| render::policy_with_tags(e, &policy));
        })
    }

    pub(super) fn get_policy(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        let policy = self.store().get_policy(&arn)?;
        self.ok(|r| {
            r.child("Policy", |e| render::policy_with_tags(e, &policy));
        })
    }

    pub(super) fn delete_policy(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        self.store().delete_policy(&arn)?;
        self.done()
    }

    pub(super) fn list_policies(&self) -> Out {
        let mut v = self.query.validator();
        let scope = v.str("Scope", &SCOPE);
        let only_attached = v.bool("OnlyAttached").unwrap_or(false);
        let prefix = v.str("PathPrefix", &rules::POLICY_PATH);
        let _usage = v.str("PolicyUsageFilter", &USAGE);
        let paging = Self::read_paging(&mut v);
        v.finish()?;
        self.authorize(&format!("arn:aws:iam::{}:policy/", self.account))?;
        let scope = match scope.as_deref() {
            Some("AWS") => PolicyScope::Aws,
            Some("Local") => PolicyScope::Local,
            _ => PolicyScope::All,
        };
        let page = self.store().list_policies(
            &self.account,
            &ListPolicies {
                scope,
                only_attached,
                path_prefix: prefix,
                paging,
            },
        )?;
        self.ok(|r| {
            r.list("Policies", &page.items, render::policy);
            render::page_end(r, &page);
        })
    }

    pub(super) fn create_policy_version(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let document = v.required_str("PolicyDocument", &rules::POLICY_DOCUMENT);
        let set_default = v.bool("SetAsDefault").unwrap_or(false);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        let document = document.get(&checked);
        self.authorize(&arn)?;
        let version = self
            .store()
            .create_policy_version(&arn, &document, set_default)?;
        self.ok(|r| {
            r.child("PolicyVersion", |e| render::version(e, &version, false));
        })
    }

    pub(super) fn get_policy_version(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let id = v.required_str("VersionId", &VERSION_ID);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        let id = id.get(&checked);
        self.authorize(&arn)?;
        let version = self.store().get_policy_version(&arn, &id)?;
        self.ok(|r| {
            r.child("PolicyVersion", |e| render::version(e, &version, true));
        })
    }

    pub(super) fn list_policy_versions(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        let mut versions = self.store().list_policy_versions(&arn)?;
        // IAM lists the newest first.
        versions.reverse();
        let page = twin_state::paginate_indexed(versions, &paging)?;
        self.ok(|r| {
            r.list("Versions", &page.items, |e, ver| {
                render::version(e, ver, false)
            });
            render::page_end(r, &page);
        })
    }

    pub(super) fn delete_policy_version(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let id = v.required_str("VersionId", &VERSION_ID);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        let id = id.get(&checked);
        self.authorize(&arn)?;
        self.store().delete_policy_version(&arn, &id)?;
        self.done()
    }

    pub(super) fn set_default_policy_version(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::policy_arn(&mut v);
        let id = v.required_str("VersionId", &VERSION_ID);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        let id = id.get(&checked);
        self.authorize(&arn)?;
        self.store().set_default_policy_version(&arn, &id)?;
        self.done()
    }

    /// `RoleName` and `PolicyArn`, then authorization on the role with `iam:PolicyARN`.
    fn role_and_policy(&self, member: &str) -> Result<(String, String), awswire::AwsError> {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let arn = v.required_str(member, &rules::IAM_ARN);
        let checked = v.finish()?;
        let name = name.get(&checked);
        let arn = arn.get(&checked);
        let role_arn = self.role_arn(&name)?;
        let key = if member == "PermissionsBoundary" {
            "iam:PermissionsBoundary"
        } else {
            "iam:PolicyARN"
        };
        self.authorize_with(&role_arn, &|ctx| {
            ctx.set(key, &arn);
        })?;
        Ok((name, arn))
    }

    pub(super) fn attach_role_policy(&self) -> Out {
        let (name, arn) = self.role_and_policy("PolicyArn")?;
        self.store()
            .attach_role_policy(&self.account, &name, &arn)?;
        self.done()
    }

    pub(super) fn detach_role_policy(&self) -> Out {
        let (name, arn) = self.role_and_policy("PolicyArn")?;
        self.store()
            .detach_role_policy(&self.account, &name, &arn)?;
        self.done()
    }

    pub(super) fn list_attached_role_policies(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let prefix = v.str("PathPrefix", &rules::POLICY_PATH);
        let paging = Self::read_paging(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        let page = self.store().list_attached_role_policies(
            &self.account,
            &name,
            prefix.as_deref(),
            &paging,
        )?;
        self.ok(|r| {
            r.list("AttachedPolicies", &page.items, |e, p| {
                e.text("PolicyName", &p.name).text("PolicyArn", &p.arn);
            });
            render::page_end(r, &page);
        })
    }

    pub(super) fn put_role_permissions_boundary(&self) -> Out {
        let (name, arn) = self.role_and_policy("PermissionsBoundary")?;
        self.store()
            .put_role_permissions_boundary(&self.account, &name, &arn)?;
        self.done()
    }

    pub(super) fn delete_role_permissions_boundary(&self) -> Out {
        let mut v = self.query.validator();
        let name = Self::role_name(&mut v);
        let checked = v.finish()?;
        let name = name.get(&checked);
        self.authorize_role(&name)?;
        self.store()
            .delete_role_permissions_boundary(&self.account, &name)?;
        self.done()
    }
}
