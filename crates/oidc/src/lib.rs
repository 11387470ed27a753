//! OIDC for rolechain: the token issuer of local clusters and the verifier behind the twin's
//! `AssumeRoleWithWebIdentity`, EKS Auth and the node agent.
//!
//! - [`Verifier`] checks a JWT against its issuer's JWKS, which it fetches through a
//!   [`JwksSource`] ([`HttpSource`] over plain `http://` by OIDC discovery, [`StaticSource`] or
//!   an [`Issuer`] in-process) and caches per issuer, refetching on an unknown `kid` at most once
//!   per refresh interval. Only RS256/384/512 and ES256/384 are accepted; `none` and HMAC are
//!   rejected before any key is looked at. Failures are [`VerifyError`]s that map to STS error
//!   codes.
//! - [`Issuer`] keeps RS256 keys in a directory, rotates them, serves the discovery document and
//!   JWKS as JSON, and mints tokens shaped like Kubernetes projected service-account tokens.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use oidc::{Issuer, IssuerConfig, TokenRequest, Verifier};
//! use std::sync::Arc;
//!
//! let issuer = Arc::new(Issuer::load_or_create(IssuerConfig::new(
//!     "http://127.0.0.1:8080/id/local",
//!     "/var/lib/rolechain/oidc-keys",
//! ))?);
//! let token = issuer.mint(&TokenRequest::new("default", "app", "uid-1", "sts.amazonaws.com"))?;
//!
//! let verifier = Verifier::new(Arc::clone(&issuer));
//! let client_ids = ["sts.amazonaws.com"];
//! let verified = verifier
//!     .verify(&token, issuer.issuer_url(), |aud| client_ids.contains(&aud))
//!     .await?;
//! assert_eq!(verified.subject, "system:serviceaccount:default:app");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod issuer;
mod jwks;
mod jwt;
mod source;
mod verifier;

pub use error::{sanitize, IssuerError, SourceError, VerifyError};
pub use issuer::{rsa_thumbprint, BoundObject, Issuer, IssuerConfig, TokenRequest};
pub use jwt::{token_fingerprint, Algorithm};
pub use source::{BoxFuture, HttpSource, HttpSourceConfig, JwksSource, StaticSource, TlsTrust};
pub use verifier::{peek, peek_issuer, PeekedToken, VerifiedToken, Verifier, VerifierConfig};
