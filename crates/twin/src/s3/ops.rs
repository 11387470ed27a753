//! The S3 operations the twin serves, as `s3s`'s `S3` trait. Authorization has already
//! happened (the access check); these read and write the store.

use std::sync::Arc;

use base64::Engine as _;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result, S3};
use twin_state::{BucketError, NewObject, ObjectMeta, Store, Upload};

use super::access::{blocking, bucket_error, bucket_named, internal, s3_error};
use super::encoding::KeyEncoding;
use super::{body, bucket_config, CALL};
use crate::authz::Authorizer;

/// Longest page of `ListObjectsV2`, `ListParts` and `ListMultipartUploads`, and most keys of
/// one `DeleteObjects` (S3's limits).
const MAX_KEYS: i32 = 1000;

/// The twin's S3 operations over the store.
pub(super) struct TwinS3 {
    pub(super) store: Arc<Store>,
    /// For the decisions an operation makes itself (`DeleteObjects`' keys).
    pub(super) authorizer: Authorizer,
}

/// The account of the request's caller (set by authentication; empty for anonymous callers).
fn caller_account() -> String {
    CALL.try_with(|call| {
        call.caller
            .lock()
            .ok()
            .and_then(|slot| {
                slot.as_ref()
                    .and_then(|(_, key)| key.principal.account().map(str::to_string))
            })
            .unwrap_or_default()
    })
    .unwrap_or_default()
}

/// S3's canonical user id of an account: 64 hex digits, derived so it is stable.
fn canonical_id(account: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!(
        "rolechain-s3-owner:{account}"
    )))
}

pub(super) fn owner(account: &str) -> dto::Owner {
    dto::Owner {
        id: Some(canonical_id(account)),
        display_name: Some(account.to_string()),
    }
}

fn etag(meta: &ObjectMeta) -> dto::ETag {
    dto::ETag::Strong(meta.etag.clone())
}

/// A request's `x-amz-meta-*` user metadata as the store keeps it.
fn user_metadata(metadata: Option<dto::Metadata>) -> std::collections::BTreeMap<String, String> {
    metadata
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// An object's user metadata as S3 answers it (absent when there is none).
fn shown_metadata(meta: &ObjectMeta) -> Option<dto::Metadata> {
    (!meta.user_metadata.is_empty()).then(|| meta.user_metadata.clone().into_iter().collect())
}

/// The object to store from a body received (or copied) into a temporary file.
fn new_object(
    key: String,
    received: &body::Received,
    content_type: Option<String>,
    user_metadata: std::collections::BTreeMap<String, String>,
) -> NewObject {
    NewObject {
        key,
        size: received.size,
        etag: hex::encode(received.md5),
        content_type,
        user_metadata,
    }
}

/// `GetObject`'s and `HeadObject`'s outputs (two types with the same header fields): the
/// headers answered from the object's metadata `$meta`, then the operation's own fields.
macro_rules! object_output {
    ($output:path, $meta:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let meta: &ObjectMeta = $meta;
        $output {
            content_type: meta.content_type.clone(),
            e_tag: Some(etag(meta)),
            last_modified: Some(meta.last_modified.into()),
            metadata: shown_metadata(meta),
            accept_ranges: Some("bytes".to_string()),
            $($field: $value,)*
            ..Default::default()
        }
    }};
}

/// S3's checks of a bucket policy document (`MalformedPolicy`): JSON, IAM's policy grammar
/// for resource policies (a `Principal` in every statement), and resources of this bucket.
fn check_bucket_policy(bucket: &str, doc: &str) -> S3Result<()> {
    let malformed = |m: String| s3_error(S3ErrorCode::MalformedPolicy, m);
    let value: serde_json::Value = serde_json::from_str(doc)
        .map_err(|_| malformed("This policy contains invalid Json".to_string()))?;
    iam::Policy::parse(doc, iam::PolicyKind::Resource).map_err(|e| malformed(e.to_string()))?;
    let statements = match value.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect::<Vec<_>>(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let ours = |r: &str| r == bucket_arn || r.starts_with(&format!("{bucket_arn}/"));
    for statement in statements {
        let resources = match statement
            .get("Resource")
            .or_else(|| statement.get("NotResource"))
        {
            Some(serde_json::Value::String(r)) => vec![r.as_str()],
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        if resources.iter().any(|r| !ours(r)) {
            return Err(malformed("Policy has invalid resource".to_string()));
        }
    }
    Ok(())
}

/// Receives an upload's body into a temporary file and checks it against the request's
/// `Content-MD5` (`BadDigest`) and `Content-Length` (`IncompleteBody`).
async fn receive_checked(
    store: &Arc<Store>,
    body: Option<dto::StreamingBlob>,
    content_md5: Option<&str>,
    content_length: Option<i64>,
) -> S3Result<body::Received> {
    let store = Arc::clone(store);
    let temp =
        blocking(move || store.object_bodies().temp_path().map_err(|e| internal(&e))).await?;
    let received = body::receive(body, temp).await?;
    if let Some(expected) = content_md5 {
        let sent = base64::engine::general_purpose::STANDARD
            .decode(expected)
            .unwrap_or_default();
        if sent.as_slice() != received.md5 {
            body::discard(&received.path);
            return Err(s3_error(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    if let Some(declared) = content_length {
        if u64::try_from(declared).ok() != Some(received.size) {
            body::discard(&received.path);
            return Err(s3_error(
                S3ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            ));
        }
    }
    Ok(received)
}

/// A part number as S3 accepts it: 1 to 10,000 (`InvalidArgument`).
fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=twin_state::buckets::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            s3_error(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

/// A listing limit (`max-keys`, `max-parts`, `max-uploads`): at most 1000, and not negative
/// (`InvalidArgument` naming the field).
fn page_size(value: Option<i32>, field: &str) -> S3Result<i32> {
    match value {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error(
            S3ErrorCode::InvalidArgument,
            format!("Argument {field} must be an integer between 0 and 2147483647"),
        )),
        Some(n) => Ok(n.min(MAX_KEYS)),
    }
}

fn malformed_xml() -> s3s::S3Error {
    s3_error(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// The `Initiator` of an upload as S3 shows it: the creating caller's ARN.
fn initiator(upload: &Upload) -> dto::Initiator {
    dto::Initiator {
        id: Some(upload.initiator.clone()),
        display_name: Some(upload.initiator.clone()),
    }
}

fn standard() -> dto::StorageClass {
    dto::StorageClass::from_static(dto::StorageClass::STANDARD)
}

/// `bytes=FIRST-LAST` of `x-amz-copy-source-range`, checked against the source's size.
fn copy_source_range(range: Option<&str>, size: u64) -> S3Result<std::ops::Range<u64>> {
    let Some(range) = range else {
        return Ok(0..size);
    };
    let invalid = || {
        s3_error(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let (first, last) = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(s3_error(
            S3ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        ));
    }
    Ok(first..last + 1)
}

/// Copies `range` (all of it when `None`) of object `key` of `bucket` into a temporary file.
/// Blocking. A body replaced between reading its metadata and opening it is retried with the
/// new metadata.
fn copy_body(
    store: &Store,
    bucket: &str,
    key: &str,
    range: Option<&str>,
) -> S3Result<(ObjectMeta, body::Received)> {
    let bodies = store.object_bodies();
    let mut attempts = 0;
    loop {
        let meta = store.get_object(bucket, key).map_err(bucket_error)?;
        let range = copy_source_range(range, meta.size)?;
        let temp = bodies.temp_path().map_err(|e| internal(&e))?;
        match body::copy_range(&bodies.body_path(bucket, &meta.body_id), range, temp) {
            Ok(received) => return Ok((meta, received)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            Err(e) => return Err(internal(&e)),
        }
    }
}

/// Records `received` as part `number` of upload (bucket, key, upload id). Blocking.
fn record_part(
    store: &Store,
    (bucket, key, upload_id): (&str, &str, &str),
    number: u32,
    received: &body::Received,
) -> S3Result<twin_state::PartMeta> {
    store
        .put_part(
            bucket,
            key,
            upload_id,
            number,
            received.size,
            &hex::encode(received.md5),
            &received.path,
        )
        .map_err(bucket_error)
}

/// A listing's common prefixes as S3 shows them (absent when there are none).
fn common_prefixes(prefixes: &[String], encoding: KeyEncoding) -> Option<Vec<dto::CommonPrefix>> {
    (!prefixes.is_empty()).then(|| {
        prefixes
            .iter()
            .map(|p| dto::CommonPrefix {
                prefix: Some(encoding.field(p)),
            })
            .collect()
    })
}

impl TwinS3 {
    /// Runs `op` with the store on the blocking pool (the database and the file system block).
    async fn on_store<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Store) -> S3Result<T> + Send + 'static,
    ) -> S3Result<T> {
        let store = Arc::clone(&self.store);
        blocking(move || op(&store)).await
    }

    /// [`on_store`](Self::on_store) for one store operation, whose refusal is S3's answer.
    async fn store_op<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Store) -> Result<T, BucketError> + Send + 'static,
    ) -> S3Result<T> {
        self.on_store(move |store| op(store).map_err(bucket_error))
            .await
    }

    /// The bucket called `name`, or `NoSuchBucket`.
    async fn existing_bucket(&self, name: String) -> S3Result<twin_state::Bucket> {
        self.on_store(move |store| bucket_named(store, &name)).await
    }
}

// The operations, by concern, as inherent methods of `TwinS3` that the `S3` impl below hands
// each call to (declared after `object_output!`, which `objects` uses).
mod buckets;
mod multipart;
mod objects;

#[async_trait::async_trait]
impl S3 for TwinS3 {
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        TwinS3::list_buckets(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        TwinS3::create_bucket(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        TwinS3::delete_bucket(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        TwinS3::head_bucket(self, req).await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<dto::PutBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::PutBucketPolicyOutput>> {
        TwinS3::put_bucket_policy(self, req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        TwinS3::get_bucket_policy(self, req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<dto::DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketPolicyOutput>> {
        TwinS3::delete_bucket_policy(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        TwinS3::put_object(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        TwinS3::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        TwinS3::head_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        TwinS3::delete_object(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        TwinS3::list_objects_v2(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        TwinS3::create_multipart_upload(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        TwinS3::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        TwinS3::upload_part_copy(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        TwinS3::complete_multipart_upload(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        TwinS3::abort_multipart_upload(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        TwinS3::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        TwinS3::list_multipart_uploads(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        TwinS3::delete_objects(self, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        TwinS3::copy_object(self, req).await
    }

    // Bucket configuration reads, answered as for a bucket with nothing configured
    // (see `bucket_config`).

    async fn get_bucket_acl(
        &self,
        req: S3Request<dto::GetBucketAclInput>,
    ) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::acl)
            .await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<dto::GetBucketCorsInput>,
    ) -> S3Result<S3Response<dto::GetBucketCorsOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::cors)
            .await
    }

    async fn get_bucket_website(
        &self,
        req: S3Request<dto::GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<dto::GetBucketWebsiteOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::website)
            .await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::versioning)
            .await
    }

    async fn get_bucket_accelerate_configuration(
        &self,
        req: S3Request<dto::GetBucketAccelerateConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketAccelerateConfigurationOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::accelerate)
            .await
    }

    async fn get_bucket_request_payment(
        &self,
        req: S3Request<dto::GetBucketRequestPaymentInput>,
    ) -> S3Result<S3Response<dto::GetBucketRequestPaymentOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::request_payment)
            .await
    }

    async fn get_bucket_logging(
        &self,
        req: S3Request<dto::GetBucketLoggingInput>,
    ) -> S3Result<S3Response<dto::GetBucketLoggingOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::logging)
            .await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::lifecycle)
            .await
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<dto::GetBucketReplicationInput>,
    ) -> S3Result<S3Response<dto::GetBucketReplicationOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::replication)
            .await
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<dto::GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<dto::GetBucketEncryptionOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::encryption)
            .await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<dto::GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::object_lock)
            .await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<dto::GetBucketTaggingInput>,
    ) -> S3Result<S3Response<dto::GetBucketTaggingOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::tagging)
            .await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.bucket_config(req.input.bucket, bucket_config::location)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_policies_are_checked_as_s3_does() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
        check_bucket_policy("pics", ok).unwrap();
        let code = |doc: &str| {
            let e = check_bucket_policy("pics", doc).unwrap_err();
            (
                e.code().as_str().to_string(),
                e.message().unwrap_or("").to_string(),
            )
        };
        assert_eq!(
            code("{not json"),
            (
                "MalformedPolicy".into(),
                "This policy contains invalid Json".into()
            )
        );
        assert_eq!(
            code(&ok.replace("pics/*", "other/*")),
            (
                "MalformedPolicy".into(),
                "Policy has invalid resource".into()
            )
        );
        let (c, m) = code(&ok.replace(
            r#""Principal":{"AWS":"arn:aws:iam::111111111111:root"},"#,
            "",
        ));
        assert_eq!(c, "MalformedPolicy");
        assert!(m.contains("Principal"), "{m}");
    }
}
