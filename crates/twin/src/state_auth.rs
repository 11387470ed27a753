//! [`StoreAuthenticator`]: access keys resolved against the twin's durable state.
//!
//! | key | found in | principal | failure |
//! | --- | --- | --- | --- |
//! | `AKIA…` of a user | `access_keys` | [`iam::Principal::User`] with the user's `AIDA…` id | unknown key → [`AuthFailure::UnknownAccessKey`] |
//! | `AKIA…` of `root` | `access_keys` | [`iam::Principal::Root`] | |
//! | `ASIA…` | `sessions` | [`twin_state::Session::principal`] | token differs → [`AuthFailure::TokenMismatch`]; expired → [`AuthFailure::Expired`]; role deleted or recreated → [`AuthFailure::Expired`] |
//!
//! A session belongs to the incarnation of its role that existed when it was issued (its
//! `role_id`). When that role is deleted, or deleted and recreated under the same name (a new
//! `AROA…` id), the session stops working. STS answers such requests with `ExpiredToken` ("The
//! security token included in the request is expired"), so this authenticator reports
//! [`AuthFailure::Expired`] for them. Note that `twin_state::Store::delete_role` removes the
//! role's sessions in the same transaction, so after a `DeleteRole` through the store the key
//! is simply gone and reads as unknown (`InvalidClientTokenId`); the role-id check here covers
//! sessions whose role changed by any other path (a recreated role, state written by another
//! process, a store restored from a backup).

use std::sync::Arc;

use subtle::ConstantTimeEq as _;
use twin_state::Store;

use crate::auth::{AuthFailure, Authenticator, CallerKey};

/// An [`Authenticator`] backed by a [`twin_state::Store`]. Synchronous store reads, as the
/// trait requires; call [`ApiRequest::authenticate`](crate::ApiRequest::authenticate) from
/// `spawn_blocking` when the store may be slow.
#[derive(Debug, Clone)]
pub struct StoreAuthenticator {
    store: Arc<Store>,
}

impl StoreAuthenticator {
    /// An authenticator reading keys and sessions from `store`.
    pub fn new(store: Arc<Store>) -> Self {
        StoreAuthenticator { store }
    }

    /// The store it reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn long_term(&self, access_key_id: &str) -> Result<CallerKey, AuthFailure> {
        let key = self
            .store
            .get_access_key(access_key_id)
            .map_err(unavailable)?
            .ok_or(AuthFailure::UnknownAccessKey)?;
        if key.principal == "root" {
            return Ok(CallerKey {
                secret_access_key: key.secret_access_key,
                session_token: None,
                expires_at: None,
                principal: iam::Principal::Root {
                    account: key.account.clone(),
                },
                user_id: key.account,
            });
        }
        let user = match self.store.get_user(&key.account, &key.principal) {
            Ok(user) => user,
            // A key whose user is gone no longer authenticates anyone.
            Err(e) if e.code() == "NoSuchEntity" => return Err(AuthFailure::UnknownAccessKey),
            Err(e) => return Err(unavailable(e)),
        };
        Ok(CallerKey {
            secret_access_key: key.secret_access_key,
            session_token: None,
            expires_at: None,
            principal: iam::Principal::User {
                arn: user.arn,
                account: user.account,
                unique_id: Some(user.user_id.clone()),
            },
            user_id: user.user_id,
        })
    }

    fn session(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
    ) -> Result<CallerKey, AuthFailure> {
        let session = self
            .store
            .get_session(access_key_id)
            .map_err(unavailable)?
            .ok_or(AuthFailure::UnknownAccessKey)?;
        // The token is checked first, in constant time: whoever does not hold it learns
        // nothing about the session (not even whether it expired).
        let presented = security_token.unwrap_or("").as_bytes();
        if !bool::from(presented.ct_eq(session.session_token.as_bytes())) {
            return Err(AuthFailure::TokenMismatch);
        }
        // The twin clock's now: sessions expire on its time (`/_rolechain/clock`).
        if session.is_expired(self.store.clock().now()) {
            return Err(AuthFailure::Expired);
        }
        // The session belongs to the role incarnation it was issued for.
        match self
            .store
            .get_role_by_id(&session.role_id)
            .map_err(unavailable)?
        {
            Some(role) if role.arn == session.role_arn => {}
            _ => return Err(AuthFailure::Expired),
        }
        Ok(CallerKey {
            principal: session.principal(),
            user_id: session.user_id(),
            expires_at: Some(session.expires),
            secret_access_key: session.secret_access_key,
            session_token: Some(session.session_token),
        })
    }
}

fn unavailable(e: twin_state::StateError) -> AuthFailure {
    AuthFailure::Unavailable(e.to_string())
}

impl Authenticator for StoreAuthenticator {
    fn secret_for(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
    ) -> Result<CallerKey, AuthFailure> {
        if access_key_id.starts_with("ASIA") {
            self.session(access_key_id, security_token)
        } else if access_key_id.starts_with("AKIA") {
            self.long_term(access_key_id)
        } else {
            Err(AuthFailure::UnknownAccessKey)
        }
    }
}
