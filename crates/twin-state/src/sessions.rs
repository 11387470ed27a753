//! STS sessions: issued (key, secret and token generated here), stored one by one through the
//! group commit or in batches, looked up by access key id, and purged once expired.

use iam::IdentityArn;
use redb::ReadableTable as _;
use time::OffsetDateTime;

use crate::accounts::{EntityKind, IdEntry};
use crate::db::{decode, encode, get1, Store, Tx};
use crate::error::{Result, StateError};
use crate::group_commit;
use crate::ids::IdSource;
use crate::model::{Session, Tag};

/// A session to issue; the store generates its temporary key, secret and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The role's ARN.
    pub role_arn: String,
    /// The role's unique id, as read when the trust policy was evaluated: if the role has been
    /// deleted (or replaced) since, issuing fails with `NoSuchEntity`.
    pub role_id: String,
    /// The session name.
    pub session_name: String,
    /// When it is issued.
    pub issued: OffsetDateTime,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// The inline session policy.
    pub session_policy: Option<String>,
    /// Managed session policy ARNs.
    pub session_policy_arns: Vec<String>,
    /// Session tags.
    pub session_tags: Vec<Tag>,
    /// Transitive tag keys.
    pub transitive_tag_keys: Vec<String>,
    /// Source identity.
    pub source_identity: Option<String>,
    /// Whether this is a chained session.
    pub chained: bool,
}

impl Store {
    /// Issues a session of a role: generates its `ASIA…` key, secret and token and stores it,
    /// provided the role still exists with `role_id` (checked in the same transaction, so a
    /// session never outlives a concurrent `DeleteRole`).
    pub fn issue_session(&self, new: &NewSession) -> Result<Session> {
        let session = self.mint_session(new)?;
        self.put_session(&session)?;
        Ok(session)
    }

    /// The session `new` describes with a freshly generated `ASIA…` key, secret and token, not
    /// yet stored: store it with [`put_session`](Self::put_session) or, several at once, with
    /// [`put_sessions`](Self::put_sessions).
    pub fn mint_session(&self, new: &NewSession) -> Result<Session> {
        let Ok(IdentityArn::Role { account, name, .. }) = new.role_arn.parse::<IdentityArn>()
        else {
            return Err(StateError::InvalidInput(format!(
                "{} is not a role ARN.",
                new.role_arn
            )));
        };
        let mut ids = IdSource::Os;
        let session = Session {
            access_key_id: ids.temporary_key_id(new.issued)?,
            secret_access_key: ids.secret()?,
            session_token: ids.session_token()?,
            assumed_role_arn: format!(
                "arn:aws:sts::{account}:assumed-role/{name}/{}",
                new.session_name
            ),
            account,
            role_arn: new.role_arn.clone(),
            role_id: new.role_id.clone(),
            session_name: new.session_name.clone(),
            issued: new.issued,
            expires: new.expires,
            session_policy: new.session_policy.clone(),
            session_policy_arns: new.session_policy_arns.clone(),
            session_tags: new.session_tags.clone(),
            transitive_tag_keys: new.transitive_tag_keys.clone(),
            source_identity: new.source_identity.clone(),
            chained: new.chained,
        };
        Ok(session)
    }

    /// Stores a session as given (its role, by `role_id`, must exist).
    ///
    /// Concurrent callers share one transaction and one fsync (group commit): each returns only
    /// once the transaction holding its session has committed.
    pub fn put_session(&self, session: &Session) -> Result<()> {
        self.session_writes
            .submit(session.clone(), |batch| self.write_sessions(&batch))
    }

    /// Writes a batch of sessions in one durable transaction, for callers that batch
    /// concurrent writes themselves (the twin's STS, whose waiting requests are futures rather
    /// than threads). A session whose role is gone (by `role_id`) or whose key is taken gets its
    /// own error and is left out; a storage failure fails the batch, and nothing is written.
    pub fn put_sessions(&self, batch: &[Session]) -> Result<Vec<Result<()>>> {
        self.write_sessions(batch)
    }

    /// See [`put_sessions`](Self::put_sessions).
    fn write_sessions(&self, batch: &[Session]) -> group_commit::BatchOutcome<()> {
        self.update(|tx| {
            let mut results = Vec::with_capacity(batch.len());
            for session in batch {
                results.push(tx.insert_session(session)?);
            }
            Ok(results)
        })
    }

    /// The session with that temporary access key id (expired ones too: the caller decides,
    /// since STS reports `ExpiredToken` rather than an unknown key).
    pub fn get_session(&self, access_key_id: &str) -> Result<Option<Session>> {
        self.read(|rx| get1(rx.sessions()?, "sessions", access_key_id))
    }

    /// Removes sessions that expired before `now`; returns how many.
    pub fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<usize> {
        self.update(|tx| {
            let mut expired = Vec::new();
            for entry in tx.sessions.iter()? {
                let (_, v) = entry?;
                let s: Session = decode("sessions", v.value())?;
                if s.is_expired(now) {
                    expired.push((s.access_key_id, s.role_id));
                }
            }
            for (key, role_id) in &expired {
                tx.sessions.remove(key.as_str())?;
                tx.role_sessions.remove((role_id.as_str(), key.as_str()))?;
            }
            Ok(expired.len())
        })
    }
}

impl<'t> Tx<'t> {
    /// Inserts a session: `Ok(Err(_))` when its role (by unique id) is gone or its key is
    /// taken, with nothing written; `Err(_)` when the storage failed.
    fn insert_session(&mut self, session: &Session) -> Result<Result<()>> {
        match get1::<IdEntry>(&self.unique_ids, "unique_ids", &session.role_id)? {
            Some(e) if e.kind == EntityKind::Role && e.arn == session.role_arn => {}
            _ => {
                return Ok(Err(StateError::NoSuchEntity(format!(
                    "The role {} with id {} no longer exists.",
                    session.role_arn, session.role_id
                ))))
            }
        }
        let key = session.access_key_id.as_str();
        if self.sessions.get(key)?.is_some() || self.access_keys.get(key)?.is_some() {
            return Ok(Err(StateError::EntityAlreadyExists(format!(
                "Access key {key} already exists."
            ))));
        }
        let encoded = match encode(session) {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Err(e)),
        };
        self.sessions.insert(key, encoded.as_slice())?;
        self.role_sessions
            .insert((session.role_id.as_str(), key), ())?;
        Ok(Ok(()))
    }
}
