//! IAM OIDC identity providers: issuer URLs, client ids (audiences), thumbprints, tags.

use iam::IdentityArn;
use redb::ReadableTable;

use crate::db::{encode, get2, scan2, Bytes, IamTable, Store, Tx, K2};
use crate::error::{Result, StateError};
use crate::model::{OidcProvider, Tag};
use crate::validate::check_tags;

/// IAM's quota of client ids per OIDC provider.
const MAX_CLIENT_IDS: usize = 100;

/// IAM's quota of thumbprints per OIDC provider.
const MAX_THUMBPRINTS: usize = 5;

/// Parameters of `CreateOpenIDConnectProvider`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOidcProvider {
    /// The account to register the provider in.
    pub account: String,
    /// The issuer URL, `https://…`.
    pub url: String,
    /// Accepted audiences.
    pub client_ids: Vec<String>,
    /// Certificate thumbprints (optional, as in IAM since 2024).
    pub thumbprints: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// What [`Store::associate_oidc_provider`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcAssociation {
    /// There was no provider for the issuer in the account: one was created.
    Created,
    /// The provider was there without the audience: the audience was added.
    AudienceAdded,
    /// The provider was there with the audience: nothing changed.
    AlreadyAssociated,
}

pub(crate) fn oidc_not_found(arn: &str) -> StateError {
    StateError::NoSuchEntity(format!("OpenIDConnect provider not found for arn {arn}"))
}

/// Splits an OIDC provider ARN into (account, URL without scheme).
pub(crate) fn parse_oidc_arn(arn: &str) -> Option<(String, String)> {
    match arn.parse::<IdentityArn>().ok()? {
        IdentityArn::OidcProvider { account, url, .. } => Some((account, url)),
        _ => None,
    }
}

fn find_oidc(t: &impl ReadableTable<K2, Bytes>, arn: &str) -> Result<OidcProvider> {
    let (account, url) = parse_oidc_arn(arn).ok_or_else(|| oidc_not_found(arn))?;
    get2(t, "oidc_providers", &account, &url)?.ok_or_else(|| oidc_not_found(arn))
}

fn check_thumbprints(thumbprints: &[String]) -> Result<()> {
    if thumbprints.len() > MAX_THUMBPRINTS {
        return Err(StateError::LimitExceeded(format!(
            "Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: {MAX_THUMBPRINTS}"
        )));
    }
    for t in thumbprints {
        if t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StateError::Validation(format!(
                "1 validation error detected: Value '{t}' at 'thumbprintList' failed to satisfy constraint: Member must have length 40 and consist of hexadecimal digits"
            )));
        }
    }
    Ok(())
}

impl<'t> Tx<'t> {
    fn put_oidc(&mut self, p: &OidcProvider) -> Result<()> {
        let record = encode(p)?;
        let url = p.url.trim_start_matches("https://");
        self.set_iam_record(IamTable::OidcProviders, &p.account, url, Some(&record))
    }

    pub(crate) fn create_oidc_provider(
        &mut self,
        req: &CreateOidcProvider,
    ) -> Result<OidcProvider> {
        self.require_account(&req.account)?;
        let Some(host_path) = oidc_provider_host_path(&req.url) else {
            return Err(StateError::InvalidInput(format!(
                "Invalid OpenID Connect provider URL {}: it must begin with https://",
                req.url
            )));
        };
        let host_path = host_path.trim_end_matches('/');
        if host_path.is_empty() || host_path.contains(['?', '#', ' ']) || host_path.len() > 255 {
            return Err(StateError::InvalidInput(format!(
                "Invalid OpenID Connect provider URL {}.",
                req.url
            )));
        }
        if req.client_ids.len() > MAX_CLIENT_IDS {
            return Err(StateError::LimitExceeded(format!(
                "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
            )));
        }
        check_thumbprints(&req.thumbprints)?;
        let mut tags = Vec::new();
        check_tags(&mut tags, &req.tags, "TagsPerOpenIdConnectProvider")?;
        if self.oidc.get((req.account.as_str(), host_path))?.is_some() {
            return Err(StateError::EntityAlreadyExists(format!(
                "Provider with url https://{host_path} already exists."
            )));
        }
        let mut client_ids: Vec<String> = Vec::new();
        for c in &req.client_ids {
            if !client_ids.contains(c) {
                client_ids.push(c.clone());
            }
        }
        let provider = OidcProvider {
            account: req.account.clone(),
            arn: format!("arn:aws:iam::{}:oidc-provider/{host_path}", req.account),
            url: format!("https://{host_path}"),
            client_ids,
            thumbprints: req
                .thumbprints
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            created: self.now,
            tags,
        };
        self.put_oidc(&provider)?;
        Ok(provider)
    }
}

impl Store {
    /// `CreateOpenIDConnectProvider`.
    pub fn create_oidc_provider(&self, req: &CreateOidcProvider) -> Result<OidcProvider> {
        self.update(|tx| tx.create_oidc_provider(req))
    }

    /// What `eksctl utils associate-iam-oidc-provider --approve` does, idempotently: makes sure
    /// `account` has an IAM OIDC provider for `issuer` that accepts `audience`, creating it
    /// (with that audience, no thumbprint) or adding the audience, in one transaction.
    pub fn associate_oidc_provider(
        &self,
        account: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<(OidcProvider, OidcAssociation)> {
        if audience.is_empty() || audience.len() > 255 {
            return Err(StateError::Validation(format!(
                "1 validation error detected: Value '{audience}' at 'clientID' failed to satisfy constraint: Member must have length between 1 and 255"
            )));
        }
        self.update(|tx| {
            let existing: Option<OidcProvider> = oidc_provider_host_path(issuer)
                .map(|hp| hp.trim_end_matches('/'))
                .map(|hp| get2(&tx.oidc, "oidc_providers", account, hp))
                .transpose()?
                .flatten();
            let Some(mut provider) = existing else {
                let created = tx.create_oidc_provider(&CreateOidcProvider {
                    account: account.to_owned(),
                    url: issuer.to_owned(),
                    client_ids: vec![audience.to_owned()],
                    ..CreateOidcProvider::default()
                })?;
                return Ok((created, OidcAssociation::Created));
            };
            if provider.client_ids.iter().any(|c| c == audience) {
                return Ok((provider, OidcAssociation::AlreadyAssociated));
            }
            if provider.client_ids.len() >= MAX_CLIENT_IDS {
                return Err(StateError::LimitExceeded(format!(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                )));
            }
            provider.client_ids.push(audience.to_owned());
            tx.put_oidc(&provider)?;
            Ok((provider, OidcAssociation::AudienceAdded))
        })
    }

    /// `GetOpenIDConnectProvider`.
    pub fn get_oidc_provider(&self, arn: &str) -> Result<OidcProvider> {
        self.read(|rx| find_oidc(rx.oidc()?, arn))
    }

    /// `ListOpenIDConnectProviders` of `account`.
    pub fn list_oidc_providers(&self, account: &str) -> Result<Vec<OidcProvider>> {
        self.read(|rx| {
            Ok(scan2(rx.oidc()?, "oidc_providers", account, "")?
                .into_iter()
                .map(|(_, p)| p)
                .collect())
        })
    }

    /// `DeleteOpenIDConnectProvider`.
    pub fn delete_oidc_provider(&self, arn: &str) -> Result<()> {
        self.update(|tx| {
            let p = find_oidc(&tx.oidc, arn)?;
            let url = p.url.trim_start_matches("https://");
            tx.set_iam_record(IamTable::OidcProviders, &p.account, url, None)
        })
    }

    /// `AddClientIDToOpenIDConnectProvider` (adding one already there does nothing).
    pub fn add_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(StateError::Validation(format!(
                "1 validation error detected: Value '{client_id}' at 'clientID' failed to satisfy constraint: Member must have length between 1 and 255"
            )));
        }
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            if p.client_ids.iter().any(|c| c == client_id) {
                return Ok(());
            }
            if p.client_ids.len() >= MAX_CLIENT_IDS {
                return Err(StateError::LimitExceeded(format!(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                )));
            }
            p.client_ids.push(client_id.to_string());
            tx.put_oidc(&p)
        })
    }

    /// `RemoveClientIDFromOpenIDConnectProvider` (removing one not there does nothing).
    pub fn remove_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            p.client_ids.retain(|c| c != client_id);
            tx.put_oidc(&p)
        })
    }

    /// `UpdateOpenIDConnectProviderThumbprint`: replaces the list.
    pub fn update_thumbprints(&self, arn: &str, thumbprints: &[String]) -> Result<()> {
        check_thumbprints(thumbprints)?;
        self.update(|tx| {
            let mut p = find_oidc(&tx.oidc, arn)?;
            p.thumbprints = thumbprints.iter().map(|t| t.to_ascii_lowercase()).collect();
            tx.put_oidc(&p)
        })
    }
}

/// The host and path of an OIDC provider URL: IAM keys providers by it and names them with it
/// (`arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`).
///
/// IAM accepts only `https://`. The twin also accepts `http://` for a loopback host, because
/// the issuers it serves for local clusters (`rolechain up`) are plain HTTP on 127.0.0.1; the
/// provider is then the same as for the `https://` spelling.
pub fn oidc_provider_host_path(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("https://") {
        return Some(rest);
    }
    let rest = url.strip_prefix("http://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(rest)
}

#[cfg(test)]
mod oidc_url_tests {
    use super::oidc_provider_host_path;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(
            oidc_provider_host_path("https://oidc.example.com/id/X"),
            Some("oidc.example.com/id/X")
        );
        assert_eq!(
            oidc_provider_host_path("http://127.0.0.1:4555/id/AB"),
            Some("127.0.0.1:4555/id/AB")
        );
        assert_eq!(
            oidc_provider_host_path("http://localhost/id/AB"),
            Some("localhost/id/AB")
        );
        assert_eq!(
            oidc_provider_host_path("http://[::1]:80/x"),
            Some("[::1]:80/x")
        );
        assert_eq!(
            oidc_provider_host_path("http://oidc.example.com/id/X"),
            None
        );
        assert_eq!(
            oidc_provider_host_path("http://127.0.0.1.example.com/"),
            None
        );
        assert_eq!(oidc_provider_host_path("ftp://127.0.0.1/"), None);
        assert_eq!(oidc_provider_host_path("oidc.example.com"), None);
    }
}
