//! `AssumeRoleWithWebIdentity`: IRSA's call, unsigned, the token being the credential.
//!
//! 1. The members are validated against the model (`WebIdentityToken` 4–20 000 characters,
//!    never echoed).
//! 2. The token's `iss` is read **unverified** ([`oidc::peek`]) only to choose the IAM
//!    OIDC provider: the one in the **role's** account whose URL is the issuer's host and path
//!    (the scheme is not compared: IAM stores `https://` URLs, the twin's local issuers are
//!    `http://`). None: `InvalidIdentityToken` "No OpenIDConnect provider found in your account
//!    for {iss}".
//! 3. The token is verified with [`oidc::Verifier::verify_peeked`] against that issuer's JWKS, its
//!    audience against the provider's client IDs; failures answer
//!    [`oidc::VerifyError::sts_error_code`] with [`oidc::VerifyError::aws_message`] (`Incorrect
//!    token audience`, `Token expired: …`, …).
//! 4. The trust policy decides for the principal `Federated` = the provider's ARN, with the
//!    context keys `{host/path}:sub`, `{host/path}:aud`, `{host/path}:amr` (when the token has
//!    it), `aws:FederatedProvider`, `sts:RoleSessionName`, and the session tags of the token's
//!    `https://aws.amazon.com/tags` claim (`aws:RequestTag/K`, `aws:TagKeys`), which also need
//!    `sts:TagSession`; a `https://aws.amazon.com/source_identity` claim needs
//!    `sts:SetSourceIdentity`. The decision is recorded; a denial answers `AccessDenied` "Not
//!    authorized to perform sts:AssumeRoleWithWebIdentity".

use std::sync::Arc;

use awswire::{rules, AwsError, HttpResponse, QueryRequest, STS};
use iam::{Principal, RequestContext};
use serde_json::{Map, Value};
use twin_state::{OidcProvider, StateError, Tag};

use super::issuing::{
    issue_async, store_failure, write_assumed_role_user, write_session, Assumed, Issue,
};
use super::session_policies::SessionPolicies;
use super::session_tags::SessionTags;
use super::trust::{no_trust, TrustCheck};
use super::Inner;
use crate::authz::CallerPolicies;
use crate::service::ApiRequest;

const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";

struct Params {
    role_arn: String,
    session_name: String,
    token: String,
    provider_id: Option<String>,
    policies: SessionPolicies,
    duration: Option<i64>,
}

fn read(query: &QueryRequest) -> Result<Params, AwsError> {
    // The model's member order: RoleArn, RoleSessionName, WebIdentityToken, ProviderId,
    // PolicyArns, Policy, DurationSeconds.
    let mut v = query.validator();
    let role_arn = v.required_str("RoleArn", &rules::STS_ARN);
    let session_name = v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
    let token = v.required_str("WebIdentityToken", &rules::WEB_IDENTITY_TOKEN);
    let provider_id = v.str("ProviderId", &rules::PROVIDER_ID);
    let policies = SessionPolicies::read(&mut v, &rules::SESSION_POLICY);
    let duration = v.int("DurationSeconds", &rules::ROLE_DURATION_SECONDS);
    let checked = v.finish()?;
    Ok(Params {
        role_arn: role_arn.get(&checked),
        session_name: session_name.get(&checked),
        token: token.get(&checked),
        provider_id,
        policies: policies.get(&checked),
        duration,
    })
}

fn not_authorized() -> AwsError {
    AwsError::access_denied(format!("Not authorized to perform {ACTION}"))
}

fn token_error(e: &oidc::VerifyError) -> AwsError {
    AwsError::new(e.sts_error_code(), e.aws_message(), 400)
}

/// True when `issuer` (a token's `iss`) is exactly `provider`'s URL: `https://HOST/PATH` as
/// registered, or its `http://` form when the host is loopback (the twin's own issuers are
/// served over plain HTTP on loopback, and IAM keeps their providers as `https://`).
fn is_issuer_of(issuer: &str, provider: &OidcProvider) -> bool {
    let host_path = provider.url.trim_start_matches("https://");
    match issuer.strip_prefix("http://") {
        Some(rest) => {
            rest == host_path && twin_state::oidc_provider_host_path(issuer) == Some(host_path)
        }
        None => issuer == provider.url,
    }
}

/// The issuer's host and path, as IAM keys OIDC providers (`oidc-provider/{host/path}`) and
/// names the trust policy's condition keys (`{host/path}:sub`).
fn host_path(issuer: &str) -> &str {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer);
    rest.trim_end_matches('/')
}

/// The session tags of the token's `https://aws.amazon.com/tags` claim:
/// `{"principal_tags": {"K": ["V"]}, "transitive_tag_keys": ["K"]}`.
fn claim_tags(claims: &Map<String, Value>) -> Result<(Vec<Tag>, Vec<String>), AwsError> {
    let Some(claim) = claims.get(TAGS_CLAIM) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let malformed = || {
        AwsError::invalid_identity_token(format!(
            "The {TAGS_CLAIM} claim of the web identity token is malformed."
        ))
    };
    let claim = claim.as_object().ok_or_else(malformed)?;
    let mut tags = Vec::new();
    if let Some(principal) = claim.get("principal_tags") {
        for (key, value) in principal.as_object().ok_or_else(malformed)? {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) if items.len() == 1 => {
                    items[0].as_str().ok_or_else(malformed)?.to_string()
                }
                _ => return Err(malformed()),
            };
            let key_ok = rules::TAG_KEY.pattern.is_none_or(|p| p.is_match(key))
                && (1..=128).contains(&key.chars().count());
            let value_ok = rules::TAG_VALUE.pattern.is_none_or(|p| p.is_match(&value))
                && value.chars().count() <= 256;
            if !key_ok || !value_ok {
                return Err(malformed());
            }
            tags.push(Tag::new(key.clone(), value));
        }
    }
    let mut keys = Vec::new();
    if let Some(list) = claim.get("transitive_tag_keys") {
        for k in list.as_array().ok_or_else(malformed)? {
            keys.push(k.as_str().ok_or_else(malformed)?.to_string());
        }
    }
    Ok((tags, keys))
}

impl Inner {
    pub(super) async fn assume_role_with_web_identity(
        self: Arc<Self>,
        req: ApiRequest,
        query: QueryRequest,
    ) -> Result<HttpResponse, AwsError> {
        let mut p = read(&query)?;
        if p.provider_id.is_some() {
            return Err(AwsError::invalid_parameter_value(
                "ProviderId is only for OAuth 2.0 access tokens; do not pass it with an OpenID Connect ID token.",
            ));
        }
        let role_arn = p.role_arn.clone();
        // Decoded once: the verifier checks the peeked token without decoding it again.
        let token = std::mem::take(&mut p.token);
        let peeked = oidc::peek(&token);
        let issuer = peeked.as_ref().ok().map(|t| t.issuer().to_owned());
        let outcome = match peeked {
            Ok(peeked) => {
                let iss = issuer.as_deref().unwrap_or_default();
                self.verify_and_assume(req, p, peeked, iss).await
            }
            Err(e) => Err(token_error(&e)),
        };
        if let Err(e) = &outcome {
            self.log_refusal(issuer.as_deref(), &role_arn, e, &token);
        }
        outcome
    }

    /// What a user needs to fix a refused token, for the decision log: its claims (read
    /// unverified, as shown, never trusted) against the twin's clock, the provider STS looked
    /// for, the providers the role's account has and whether STS sees them yet, and the
    /// provider's audiences. Computed only on a refusal; never the token itself (its SHA-256
    /// prefix names it).
    fn refusal_details(&self, token: &str, role_arn: &str) -> Vec<crate::Detail> {
        use crate::Detail;
        let crate::refusal_details::TokenFacts {
            mut details,
            issuer,
            audiences,
            ..
        } = crate::refusal_details::token_facts(token, self.store.clock().now());
        let Ok(iam::IdentityArn::Role { account, .. }) = role_arn.parse::<iam::IdentityArn>()
        else {
            return details;
        };
        if let Some(issuer) = &issuer {
            let wanted = format!("arn:aws:iam::{account}:oidc-provider/{}", host_path(issuer));
            details.push(Detail::new("provider looked for", oidc::sanitize(&wanted)));
            if let Ok(provider) = self.store.get_oidc_provider(&wanted) {
                if !audiences.iter().any(|a| provider.client_ids.contains(a)) {
                    details.push(Detail::new(
                        "fix",
                        format!(
                            "the provider accepts none of the token's audiences: add one (aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {} --client-id AUDIENCE), or mint the token for one of [{}]",
                            oidc::sanitize(&wanted),
                            provider.client_ids.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Ok(providers) = self.store.list_oidc_providers(&account) {
            let view = self.store.propagated();
            let listed: Vec<String> = providers
                .iter()
                .map(|p| {
                    let seen = view.get_oidc_provider(&p.arn).is_ok();
                    let mut line = format!("{} (audiences: {})", p.url, p.client_ids.join(", "));
                    if !seen {
                        line.push_str(" [not yet visible to STS: IAM propagation]");
                    }
                    line
                })
                .collect();
            details.push(Detail::new(
                format!("providers in {account}"),
                if listed.is_empty() {
                    "none: create one for the token's issuer (rolechain cluster associate-oidc-provider)".to_owned()
                } else {
                    listed.join("; ")
                },
            ));
        }
        details
    }

    /// Puts a web identity refused before the trust policy could decide (no provider, a token
    /// that does not verify) in the decision log; trust decisions are logged with their traces
    /// where they are made.
    fn log_refusal(&self, issuer: Option<&str>, role_arn: &str, e: &AwsError, token: &str) {
        if !matches!(
            &*e.code,
            "InvalidIdentityToken"
                | "ExpiredTokenException"
                | "IDPRejectedClaim"
                | "IDPCommunicationError"
        ) {
            return;
        }
        let caller = match issuer {
            Some(issuer) => format!("web identity token from {}", oidc::sanitize(issuer)),
            None => "an unreadable web identity token".to_owned(),
        };
        self.authorizer.decisions().refuse(crate::RefusalRecord {
            service: "sts".to_owned(),
            action: ACTION.to_owned(),
            caller,
            resource: role_arn.to_owned(),
            refusal: crate::Refusal {
                code: e.code.to_string(),
                message: e.message.to_string(),
                details: self.refusal_details(token, role_arn),
            },
        });
    }

    async fn verify_and_assume(
        self: &Arc<Self>,
        req: ApiRequest,
        p: Params,
        token: oidc::PeekedToken<'_>,
        issuer: &str,
    ) -> Result<HttpResponse, AwsError> {
        let Ok(iam::IdentityArn::Role {
            account: role_account,
            ..
        }) = p.role_arn.parse::<iam::IdentityArn>()
        else {
            return Err(not_authorized());
        };

        let provider_arn = format!(
            "arn:aws:iam::{role_account}:oidc-provider/{}",
            host_path(issuer)
        );
        // A read of one small record from the memory-mapped store, done in place: a hop to the
        // blocking pool costs a thread switch or two, more than the read itself; the session
        // write below, which waits for an fsync, still takes that hop.
        let provider = match self.store.propagated().get_oidc_provider(&provider_arn) {
            Ok(p) => Some(p),
            Err(StateError::NoSuchEntity(_)) => None,
            Err(e) => return Err(store_failure(e)),
        };
        // Only the provider's own URL is its issuer: `https://HOST/PATH`, or `http://` for the
        // loopback issuers the twin serves. Variants that name the same provider (a trailing
        // slash, another scheme) are refused here, before the verifier sees them, so hostile
        // tokens cannot make it cache keys or fetch discovery documents for them.
        let Some(provider) = provider.filter(|p| is_issuer_of(issuer, p)) else {
            return Err(AwsError::invalid_identity_token(format!(
                "No OpenIDConnect provider found in your account for {}",
                oidc::sanitize(issuer)
            )));
        };

        let client_ids = provider.client_ids.clone();
        let verified = self
            .verifier
            .verify_peeked(
                token,
                issuer,
                |aud| client_ids.iter().any(|c| c == aud),
                // The twin clock's now: tokens expire on its time too.
                self.store.clock().system_now(),
            )
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, issuer = %issuer, "web identity token rejected");
                token_error(&e)
            })?;

        // The decisions in place, the session write without holding a thread.
        let (issue, audience) = self.authorize_web_identity(&req, p, &provider, &verified)?;
        let Assumed { session, packed } =
            issue_async(self, issue).await?.ok_or_else(not_authorized)?;
        tracing::info!(
            role = %session.role_arn,
            session = %session.session_name,
            access_key_id = %session.access_key_id,
            provider = %provider.arn,
            token = %verified.fingerprint,
            "role assumed with web identity"
        );
        Ok(awswire::query_response(
            &STS,
            "AssumeRoleWithWebIdentity",
            &req.request_id,
            |r| {
                write_session(r, &session);
                r.text("SubjectFromWebIdentityToken", &verified.subject);
                write_assumed_role_user(r, &session);
                if let Some(packed) = packed {
                    r.display("PackedPolicySize", packed);
                }
                r.text("Provider", &verified.issuer)
                    .text("Audience", &audience)
                    .opt_text("SourceIdentity", session.source_identity.as_deref());
            },
        ))
    }

    /// The trust decisions for a verified token, and the session they allow with the audience
    /// the response names.
    fn authorize_web_identity(
        &self,
        req: &ApiRequest,
        p: Params,
        provider: &OidcProvider,
        token: &oidc::VerifiedToken,
    ) -> Result<(Issue, String), AwsError> {
        let prefix = host_path(&token.issuer).to_string();
        let audience = token
            .audiences
            .iter()
            .find(|a| provider.client_ids.contains(a))
            .cloned()
            .unwrap_or_default();
        let (passed, transitive_keys) = claim_tags(&token.claims)?;
        let tags = SessionTags {
            passed,
            transitive_keys,
            inherited: Vec::new(),
        };
        let source_identity = match token.claims.get(SOURCE_IDENTITY_CLAIM) {
            None => None,
            Some(Value::String(s))
                if rules::SOURCE_IDENTITY.pattern.is_none_or(|p| p.is_match(s)) =>
            {
                Some(s.clone())
            }
            Some(_) => {
                return Err(AwsError::invalid_identity_token(format!(
                    "The {SOURCE_IDENTITY_CLAIM} claim of the web identity token is malformed."
                )))
            }
        };
        let amr: Option<Vec<String>> = match token.claims.get("amr") {
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        };

        let role = self.find_role(&p.role_arn)?;
        let trust = match &role {
            Some(role) => self.trust_policies.policy(role)?,
            None => no_trust(&p.role_arn),
        };
        let principal = Principal::WebIdentity {
            provider: provider.arn.clone(),
        };
        let extra = |ctx: &mut RequestContext| {
            ctx.set(&format!("{prefix}:sub"), &token.subject);
            ctx.set(&format!("{prefix}:aud"), &audience);
            if let Some(amr) = &amr {
                ctx.set_multi(&format!("{prefix}:amr"), amr.iter().map(String::as_str));
            }
            ctx.set("aws:FederatedProvider", &provider.arn);
            ctx.set("sts:RoleSessionName", &p.session_name);
            if let Some(id) = &source_identity {
                ctx.set("sts:SourceIdentity", id);
            }
            tags.context(ctx);
        };
        let check = TrustCheck {
            principal: &principal,
            policies: &CallerPolicies::default(),
            role_arn: &p.role_arn,
            resource_account: &provider.account,
            trust: &trust,
            role_exists: role.is_some(),
            extra: &extra,
        };
        if check
            .refused_action(self, req, ACTION, &tags, source_identity.as_deref())
            .is_some()
        {
            return Err(not_authorized());
        }
        let Some(role) = role else {
            return Err(not_authorized());
        };

        Ok((
            Issue {
                role,
                session_name: p.session_name.clone(),
                now: req.received_at,
                requested_duration: p.duration,
                fixed_duration: false,
                policies: p.policies,
                tags,
                source_identity,
                chained: false,
            },
            audience,
        ))
    }
}
