//! Authentication (the key behind a signature) and authorization (IAM with the bucket policy)
//! of S3 requests, as `s3s`'s `S3Auth` and `S3Access`.

use std::sync::Arc;

use iam::NamedPolicy;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::dto;
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use twin_state::{Bucket, BucketError};

use super::{CallState, CALL};
use crate::auth::{AuthFailure, AuthenticatedCaller, Authenticator as _};
use crate::authz::{Authorizer, AuthzError};
use crate::state_auth::StoreAuthenticator;

/// The call's shared state; `s3s` always runs inside [`CALL`]'s scope (see `S3Service::handle`).
pub(super) fn call() -> S3Result<Arc<CallState>> {
    CALL.try_with(Arc::clone)
        .map_err(|_| S3Error::with_message(S3ErrorCode::InternalError, "no request context"))
}

/// An S3 error carrying the request id.
pub(super) fn s3_error(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(code, message.into());
    if let Ok(call) = CALL.try_with(Arc::clone) {
        e.set_request_id(call.request_id.clone());
    }
    e
}

/// The twin's failure (logged), as S3's `InternalError`.
pub(super) fn internal(detail: &dyn std::fmt::Display) -> S3Error {
    tracing::error!(%detail, "s3 request failed");
    s3_error(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// A bucket or object error as S3 answers it.
pub(super) fn bucket_error(e: BucketError) -> S3Error {
    match e {
        BucketError::State(detail) => internal(&detail),
        other => {
            let code = S3ErrorCode::from_bytes(other.code().as_bytes())
                .unwrap_or(S3ErrorCode::InternalError);
            s3_error(code, other.to_string())
        }
    }
}

/// Runs a synchronous store call off the async workers.
/// Errors made there get the request id here (the task-local does not cross threads).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> S3Result<T> + Send + 'static,
) -> S3Result<T> {
    let result = match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(internal(&e)),
    };
    result.map_err(|mut e| {
        if e.request_id().is_none() {
            if let Ok(id) = CALL.try_with(|call| call.request_id.clone()) {
                e.set_request_id(id);
            }
        }
        e
    })
}

/// `S3Auth`: the secret of an access key, from the store.
pub(super) struct KeyLookup {
    pub(super) keys: StoreAuthenticator,
}

#[async_trait::async_trait]
impl S3Auth for KeyLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let call = call()?;
        let keys = self.keys.clone();
        let access_key = access_key.to_string();
        let token = call.security_token.clone();
        let found = blocking(move || {
            Ok(keys
                .secret_for(&access_key, token.as_deref())
                .map(|key| (access_key, key)))
        })
        .await?;
        let (access_key, key) = found.map_err(|failure| match failure {
            AuthFailure::UnknownAccessKey => s3_error(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            AuthFailure::TokenMismatch => s3_error(
                S3ErrorCode::InvalidToken,
                "The provided token is malformed or otherwise invalid.",
            ),
            AuthFailure::Expired => {
                s3_error(S3ErrorCode::ExpiredToken, "The provided token has expired.")
            }
            other => internal(&other),
        })?;
        if key
            .expires_at
            // The request's time is the twin clock's (`/_rolechain/clock`).
            .is_some_and(|at| at <= call.received_at)
        {
            return Err(s3_error(
                S3ErrorCode::ExpiredToken,
                "The provided token has expired.",
            ));
        }
        let secret = SecretKey::from(key.secret_access_key.as_str());
        if let Ok(mut slot) = call.caller.lock() {
            *slot = Some((access_key, key));
        }
        Ok(secret)
    }
}

/// `S3Access`: IAM's decision for every operation.
pub(super) struct Access {
    pub(super) authorizer: Authorizer,
}

/// What an operation asks IAM for.
struct Ask {
    action: &'static str,
    resource: String,
    /// The bucket the request is about, if it must exist.
    bucket: Option<String>,
    /// `PutBucketPolicy` and friends: S3's owner-account rule applies.
    policy_management: bool,
    /// `DeleteObjects`: no decision for the request as a whole; each key is decided by the
    /// operation (`s3:DeleteObject`), with per-key errors in its result.
    per_key: bool,
}

fn ask(op: &str, path: &S3Path) -> Option<Ask> {
    let (bucket, key) = match path {
        S3Path::Root => (None, None),
        S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
        S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
    };
    let bucket_arn = |b: &Option<String>| format!("arn:aws:s3:::{}", b.as_deref().unwrap_or(""));
    let object_arn = format!(
        "arn:aws:s3:::{}/{}",
        bucket.as_deref().unwrap_or(""),
        key.as_deref().unwrap_or("")
    );
    let (action, resource, policy_management) = match op {
        "ListBuckets" => ("s3:ListAllMyBuckets", "*".to_string(), false),
        "CreateBucket" => ("s3:CreateBucket", bucket_arn(&bucket), false),
        "DeleteBucket" => ("s3:DeleteBucket", bucket_arn(&bucket), false),
        "HeadBucket" | "ListObjectsV2" => ("s3:ListBucket", bucket_arn(&bucket), false),
        "PutObject" => ("s3:PutObject", object_arn, false),
        "GetObject" | "HeadObject" => ("s3:GetObject", object_arn, false),
        "DeleteObject" => ("s3:DeleteObject", object_arn, false),
        // S3 authorizes multipart uploads and copies as writes of the object; a copy's source
        // is decided as a read by the per-operation checks below.
        "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "CopyObject"
        | "UploadPartCopy" => ("s3:PutObject", object_arn, false),
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", object_arn, false),
        "ListParts" => ("s3:ListMultipartUploadParts", object_arn, false),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", bucket_arn(&bucket), false),
        "DeleteObjects" => ("s3:DeleteObject", bucket_arn(&bucket), false),
        "PutBucketPolicy" => ("s3:PutBucketPolicy", bucket_arn(&bucket), true),
        "GetBucketPolicy" => ("s3:GetBucketPolicy", bucket_arn(&bucket), true),
        "DeleteBucketPolicy" => ("s3:DeleteBucketPolicy", bucket_arn(&bucket), true),
        _ => match super::bucket_config::iam_action(op) {
            Some(action) => (action, bucket_arn(&bucket), false),
            None => return None,
        },
    };
    let bucket = if op == "CreateBucket" || op == "ListBuckets" {
        None
    } else {
        bucket
    };
    Some(Ask {
        action,
        resource,
        bucket,
        policy_management,
        per_key: op == "DeleteObjects",
    })
}

/// The operation's name as `&'static str` (s3s names operations with static strings; this
/// keeps the metrics label bounded by the code even so).
fn static_name(op: &str) -> &'static str {
    const KNOWN: [&str; 22] = [
        "ListBuckets",
        "CreateBucket",
        "DeleteBucket",
        "HeadBucket",
        "ListObjectsV2",
        "PutObject",
        "GetObject",
        "HeadObject",
        "DeleteObject",
        "PutBucketPolicy",
        "GetBucketPolicy",
        "DeleteBucketPolicy",
        "ListObjects",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "ListMultipartUploads",
        "DeleteObjects",
        "CopyObject",
    ];
    KNOWN
        .iter()
        .find(|k| **k == op)
        .copied()
        .or_else(|| super::bucket_config::static_name(op))
        .unwrap_or(UNSUPPORTED)
}

/// The action label of operations the twin does not implement.
const UNSUPPORTED: &str = "unsupported";

/// An injected fault as an S3 error: its code (S3's own when it is one), status and message.
fn injected(e: &awswire::AwsError) -> S3Error {
    let code = S3ErrorCode::from_bytes(e.code.as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let mut error = s3_error(code, e.message.clone());
    if let Ok(status) = http::StatusCode::from_u16(e.status) {
        error.set_status_code(status);
    }
    error
}

/// The bucket policy as the resource-based policy of a decision.
pub(super) fn bucket_policy(bucket: &Bucket) -> S3Result<Option<NamedPolicy>> {
    let Some(doc) = &bucket.policy else {
        return Ok(None);
    };
    let policy = iam::Policy::parse(doc, iam::PolicyKind::Resource)
        .map_err(|e| internal(&format!("stored policy of bucket {}: {e}", bucket.name)))?;
    Ok(Some(NamedPolicy::new(
        &format!("arn:aws:s3:::{} (bucket policy)", bucket.name),
        policy,
    )))
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let call = call()?;
        let op = cx.s3_op().name();
        let named = static_name(op);
        if let Ok(mut slot) = call.operation.lock() {
            *slot = Some(named);
        }
        let known = (named != UNSUPPORTED).then_some(named);
        if let Some(e) = call.faults.inject(known).await {
            return Err(injected(&e));
        }
        let Some(ask) = ask(op, cx.s3_path()) else {
            return Err(s3_error(
                S3ErrorCode::NotImplemented,
                format!("The rolechain twin does not implement the S3 operation {op}."),
            ));
        };
        let caller = request_caller(cx.credentials())?;
        // Condition keys of ListBucket that clients filter on.
        let mut keys: Vec<(String, String)> = Vec::new();
        if ask.action == "s3:ListBucket" {
            if let Some(query) = cx.uri().query() {
                for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                    match &*k {
                        "prefix" => keys.push(("s3:prefix".into(), v.into_owned())),
                        "delimiter" => keys.push(("s3:delimiter".into(), v.into_owned())),
                        "max-keys" => keys.push(("s3:max-keys".into(), v.into_owned())),
                        _ => {}
                    }
                }
            }
        }

        let authorizer = self.authorizer.clone();
        blocking(move || {
            let bucket = match &ask.bucket {
                Some(name) => Some(bucket_named(authorizer.store(), name)?),
                None => None,
            };
            if ask.per_key {
                return Ok(());
            }
            decide(
                &authorizer,
                &call,
                &caller,
                &Asked {
                    action: ask.action,
                    resource: &ask.resource,
                    bucket: bucket.as_ref(),
                    policy_management: ask.policy_management,
                    keys: &keys,
                },
            )
        })
        .await
    }

    async fn copy_object(&self, req: &mut S3Request<dto::CopyObjectInput>) -> S3Result<()> {
        self.authorize_copy_source(req.credentials.as_ref(), &req.input.copy_source)
            .await
    }

    async fn upload_part_copy(
        &self,
        req: &mut S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<()> {
        self.authorize_copy_source(req.credentials.as_ref(), &req.input.copy_source)
            .await
    }
}

impl Access {
    /// A copy reads its source: `s3:GetObject` on the source object, decided with the source
    /// bucket's policy and owner (the destination's `s3:PutObject` was decided by `check`).
    async fn authorize_copy_source(
        &self,
        credentials: Option<&Credentials>,
        source: &dto::CopySource,
    ) -> S3Result<()> {
        let (bucket, key) = copy_source(source)?;
        let call = call()?;
        let caller = request_caller(credentials)?;
        let authorizer = self.authorizer.clone();
        blocking(move || {
            let source_bucket = bucket_named(authorizer.store(), &bucket)?;
            decide(
                &authorizer,
                &call,
                &caller,
                &Asked {
                    action: "s3:GetObject",
                    resource: &format!("arn:aws:s3:::{bucket}/{key}"),
                    bucket: Some(&source_bucket),
                    policy_management: false,
                    keys: &[],
                },
            )
        })
        .await
    }
}

/// The bucket and key a copy reads. Only buckets (not access points or outposts) are served;
/// objects have no versions but the `null` one.
pub(super) fn copy_source(source: &dto::CopySource) -> S3Result<(String, String)> {
    match source {
        dto::CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => {
            if version_id.as_deref().is_some_and(|v| v != "null") {
                return Err(s3_error(
                    S3ErrorCode::InvalidArgument,
                    "Invalid version id specified",
                ));
            }
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(s3_error(
            S3ErrorCode::NotImplemented,
            "The rolechain twin copies only from buckets (x-amz-copy-source: BUCKET/KEY).",
        )),
    }
}

/// The bucket called `name`, or `NoSuchBucket` (a synchronous store read).
pub(super) fn bucket_named(store: &twin_state::Store, name: &str) -> S3Result<Bucket> {
    store
        .get_bucket(name)
        .map_err(bucket_error)?
        .ok_or_else(|| bucket_error(BucketError::NoSuchBucket))
}

/// The caller whose signature `s3s` verified (recorded by [`KeyLookup`]), or the anonymous
/// principal for an unsigned request.
pub(super) fn request_caller(credentials: Option<&Credentials>) -> S3Result<AuthenticatedCaller> {
    let Some(credentials) = credentials else {
        return Ok(AuthenticatedCaller {
            principal: iam::Principal::Anonymous,
            user_id: "anonymous".to_string(),
            access_key_id: None,
            unsigned_payload: true,
        });
    };
    let call = call()?;
    let found = call.caller.lock().ok().and_then(|slot| slot.clone());
    match found {
        Some((key_id, key)) if key_id == credentials.access_key => Ok(AuthenticatedCaller {
            principal: key.principal,
            user_id: key.user_id,
            access_key_id: Some(key_id),
            unsigned_payload: false,
        }),
        _ => Err(internal(&"the verified key was not recorded")),
    }
}

/// One decision to ask for.
pub(super) struct Asked<'a> {
    pub(super) action: &'a str,
    pub(super) resource: &'a str,
    /// The bucket the resource is in (its owner is the resource account, its policy the
    /// resource-based policy); `None` for requests on no bucket (the caller's own account).
    pub(super) bucket: Option<&'a Bucket>,
    /// `PutBucketPolicy` and friends: S3's owner-account rule applies.
    pub(super) policy_management: bool,
    /// Request-specific condition keys.
    pub(super) keys: &'a [(String, String)],
}

/// IAM's decision on `asked` for `caller`, recorded in the decision log: `Ok` when allowed,
/// S3's `AccessDenied` (or `MethodNotAllowed` for another account's bucket policy) when not.
/// Synchronous store reads: call it inside [`blocking`].
fn decide(
    authorizer: &Authorizer,
    call: &CallState,
    caller: &AuthenticatedCaller,
    asked: &Asked<'_>,
) -> S3Result<()> {
    let resource_account = resource_account(caller, asked);
    let owner_root = matches!(&caller.principal,
        iam::Principal::Root { account } if *account == resource_account);
    // The owner's root user may always manage the bucket policy, whatever it says.
    let policy = match asked.bucket {
        Some(b) if !(asked.policy_management && owner_root) => bucket_policy(b)?,
        _ => None,
    };
    decide_with_policy(authorizer, call, caller, asked, policy.as_ref())
}

/// The account owning what `asked` is about: the bucket's owner, else the caller's account.
fn resource_account(caller: &AuthenticatedCaller, asked: &Asked<'_>) -> String {
    asked.bucket.map_or_else(
        || caller.principal.account().unwrap_or("").to_string(),
        |b| b.owner.clone(),
    )
}

/// [`decide`] with the bucket policy already parsed ([`bucket_policy`]), for an operation that
/// asks many times about one bucket (`DeleteObjects`' keys) and parses it once. Not for the
/// policy management actions, whose owner-root rule [`decide`] applies.
pub(super) fn decide_with_policy(
    authorizer: &Authorizer,
    call: &CallState,
    caller: &AuthenticatedCaller,
    asked: &Asked<'_>,
    policy: Option<&NamedPolicy>,
) -> S3Result<()> {
    let caller_account = caller.principal.account().unwrap_or("").to_string();
    let resource_account = resource_account(caller, asked);
    let extra = |ctx: &mut iam::RequestContext| {
        for (k, v) in asked.keys {
            ctx.set(k, v);
        }
    };
    let decided = authorizer.authorize_at(
        call.received_at,
        call.source_ip,
        caller,
        "s3",
        asked.action,
        asked.resource,
        &resource_account,
        policy,
        &extra,
    );
    match decided {
        Ok(_) => {}
        Err(AuthzError::Denied(denied)) => {
            let message = if matches!(caller.principal, iam::Principal::Anonymous) {
                "Access Denied".to_string()
            } else {
                denied.message(asked.action, &caller.arn(), asked.resource)
            };
            return Err(s3_error(S3ErrorCode::AccessDenied, message));
        }
        Err(e @ AuthzError::Unavailable(_)) => return Err(internal(&e)),
    }
    if asked.policy_management && caller_account != resource_account {
        return Err(s3_error(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_iam_actions_and_resources() {
        let object = S3Path::object("pics", "cats/indoor-cat.jpg");
        let bucket = S3Path::bucket("pics");
        let a = ask("GetObject", &object).unwrap();
        assert_eq!(
            (a.action, a.resource.as_str(), a.bucket.as_deref()),
            (
                "s3:GetObject",
                "arn:aws:s3:::pics/cats/indoor-cat.jpg",
                Some("pics")
            )
        );
        assert_eq!(ask("HeadObject", &object).unwrap().action, "s3:GetObject");
        assert_eq!(
            ask("ListObjectsV2", &bucket).unwrap().action,
            "s3:ListBucket"
        );
        let create = ask("CreateBucket", &bucket).unwrap();
        assert_eq!(
            (create.resource.as_str(), create.bucket),
            ("arn:aws:s3:::pics", None)
        );
        let list = ask("ListBuckets", &S3Path::Root).unwrap();
        assert_eq!(
            (list.action, list.resource.as_str()),
            ("s3:ListAllMyBuckets", "*")
        );
        assert!(ask("PutBucketPolicy", &bucket).unwrap().policy_management);
        for (op, action) in [
            ("CreateMultipartUpload", "s3:PutObject"),
            ("UploadPart", "s3:PutObject"),
            ("UploadPartCopy", "s3:PutObject"),
            ("CompleteMultipartUpload", "s3:PutObject"),
            ("CopyObject", "s3:PutObject"),
            ("AbortMultipartUpload", "s3:AbortMultipartUpload"),
            ("ListParts", "s3:ListMultipartUploadParts"),
        ] {
            let a = ask(op, &object).unwrap();
            assert_eq!(
                (a.action, a.resource.as_str(), a.per_key),
                (action, "arn:aws:s3:::pics/cats/indoor-cat.jpg", false),
                "{op}"
            );
            assert_eq!(static_name(op), op);
        }
        let uploads = ask("ListMultipartUploads", &bucket).unwrap();
        assert_eq!(
            (uploads.action, uploads.resource.as_str()),
            ("s3:ListBucketMultipartUploads", "arn:aws:s3:::pics")
        );
        assert!(ask("DeleteObjects", &bucket).unwrap().per_key);
        assert!(ask("PutObjectAcl", &object).is_none());
        assert_eq!(static_name("PutObjectAcl"), "unsupported");
    }
}
