//! IAM OIDC identity providers.

use awswire::{rules, ListRule, Required, Validator};
use twin_state::CreateOidcProvider;

use super::{render, Call, Out};

impl Call<'_> {
    fn provider_arn(v: &mut Validator<'_>) -> Required<String> {
        v.required_str("OpenIDConnectProviderArn", &rules::IAM_ARN)
    }

    pub(super) fn create_oidc_provider(&self) -> Out {
        let mut v = self.query.validator();
        let url = v.required_str("Url", &rules::OIDC_URL);
        let client_ids = v.str_list("ClientIDList", &ListRule::ANY, &rules::CLIENT_ID);
        let thumbprints = v.str_list("ThumbprintList", &ListRule::ANY, &rules::THUMBPRINT);
        let tags = super::roles::read_tags(&mut v, false);
        let checked = v.finish()?;
        let url = url.get(&checked);
        let tags = tags.get(&checked);
        super::roles::check_tag_keys(&tags)?;
        let host_path = twin_state::oidc_provider_host_path(&url)
            .unwrap_or(&url)
            .trim_end_matches('/');
        self.authorize(&format!(
            "arn:aws:iam::{}:oidc-provider/{host_path}",
            self.account
        ))?;
        let provider = self.store().create_oidc_provider(&CreateOidcProvider {
            account: self.account.clone(),
            url,
            client_ids,
            thumbprints,
            tags,
        })?;
        self.ok(|r| {
            r.text("OpenIDConnectProviderArn", &provider.arn);
            if !provider.tags.is_empty() {
                render::tags(r, &provider.tags);
            }
        })
    }

    pub(super) fn get_oidc_provider(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::provider_arn(&mut v);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        let p = self.store().get_oidc_provider(&arn)?;
        self.ok(|r| {
            // IAM shows the URL without its scheme.
            r.text("Url", p.url.trim_start_matches("https://"))
                .text_list("ClientIDList", &p.client_ids)
                .text_list("ThumbprintList", &p.thumbprints)
                .timestamp("CreateDate", p.created);
            render::tags(r, &p.tags);
        })
    }

    pub(super) fn list_oidc_providers(&self) -> Out {
        let v = self.query.validator();
        v.finish()?;
        self.authorize("*")?;
        let providers = self.store().list_oidc_providers(&self.account)?;
        self.ok(|r| {
            r.list("OpenIDConnectProviderList", &providers, |e, p| {
                e.text("Arn", &p.arn);
            });
        })
    }

    pub(super) fn delete_oidc_provider(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::provider_arn(&mut v);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        self.store().delete_oidc_provider(&arn)?;
        self.done()
    }

    fn provider_and_client(&self) -> Result<(String, String), awswire::AwsError> {
        let mut v = self.query.validator();
        let arn = Self::provider_arn(&mut v);
        let client = v.required_str("ClientID", &rules::CLIENT_ID);
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        let client = client.get(&checked);
        self.authorize(&arn)?;
        Ok((arn, client))
    }

    pub(super) fn add_client_id(&self) -> Out {
        let (arn, client) = self.provider_and_client()?;
        self.store().add_client_id(&arn, &client)?;
        self.done()
    }

    pub(super) fn remove_client_id(&self) -> Out {
        let (arn, client) = self.provider_and_client()?;
        self.store().remove_client_id(&arn, &client)?;
        self.done()
    }

    pub(super) fn update_thumbprints(&self) -> Out {
        let mut v = self.query.validator();
        let arn = Self::provider_arn(&mut v);
        let thumbprints = v.str_list(
            "ThumbprintList",
            &ListRule::ANY.required(),
            &rules::THUMBPRINT,
        );
        let checked = v.finish()?;
        let arn = arn.get(&checked);
        self.authorize(&arn)?;
        self.store().update_thumbprints(&arn, &thumbprints)?;
        self.done()
    }
}
