//! The S3 operations the twin serves, as `s3s`'s `S3` trait. Authorization has already
//! happened (the access check); these read and write the store.

use std::sync::Arc;

use base64::Engine as _;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result, S3};
use twin_state::{BucketError, NewObject, NewUpload, ObjectMeta, Store, Upload};

use super::access::{
    blocking, bucket_error, bucket_named, bucket_policy, call, copy_source, decide_with_policy,
    internal, request_caller, s3_error, Asked,
};
use super::encoding::{echoed_key, path_encode, KeyEncoding};
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

#[async_trait::async_trait]
impl S3 for TwinS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let account = caller_account();
        let owned = {
            let account = account.clone();
            self.store_op(move |store| store.list_buckets(&account))
                .await?
        };
        let buckets = owned
            .into_iter()
            .map(|b| dto::Bucket {
                bucket_region: Some(b.region),
                creation_date: Some(b.created.into()),
                name: Some(b.name),
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&account)),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let account = caller_account();
        let signed_region = req.region.as_ref().map(|r| r.as_str().to_string());
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_string());
        let region = match (constraint, signed_region) {
            (Some(c), Some(signed)) if c != signed => {
                return Err(s3_error(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ))
            }
            (Some(c), _) => c,
            (None, Some(signed)) => signed,
            (None, None) => "us-east-1".to_string(),
        };
        let name = req.input.bucket.clone();
        self.store_op(move |store| store.create_bucket(&name, &account, &region))
            .await?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let name = req.input.bucket;
        self.store_op(move |store| store.delete_bucket(&name))
            .await?;
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let bucket = self.existing_bucket(req.input.bucket).await?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(bucket.region),
            ..Default::default()
        }))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<dto::PutBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::PutBucketPolicyOutput>> {
        let name = req.input.bucket;
        let doc = req.input.policy;
        check_bucket_policy(&name, &doc)?;
        self.store_op(move |store| store.set_bucket_policy(&name, Some(&doc)))
            .await?;
        Ok(S3Response::new(dto::PutBucketPolicyOutput {}))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        let bucket = self.existing_bucket(req.input.bucket).await?;
        let policy = bucket
            .policy
            .ok_or_else(|| bucket_error(BucketError::NoSuchBucketPolicy))?;
        Ok(S3Response::new(dto::GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<dto::DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketPolicyOutput>> {
        let name = req.input.bucket;
        self.store_op(move |store| store.set_bucket_policy(&name, None))
            .await?;
        Ok(S3Response::new(dto::DeleteBucketPolicyOutput {}))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let input = req.input;
        // A missing bucket was refused (`NoSuchBucket`) by the access check, before the body
        // was read; one deleted since is refused by the store.
        let received = receive_checked(
            &self.store,
            input.body,
            input.content_md5.as_deref(),
            input.content_length,
        )
        .await?;
        let object = new_object(
            input.key,
            &received,
            input.content_type,
            user_metadata(input.metadata),
        );
        let bucket = input.bucket;
        let meta = self
            .store_op(move |store| store.put_object(&bucket, &object, &received.path))
            .await?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&meta)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let input = req.input;
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let (meta, path) = self
            .store_op(move |store| {
                let meta = store.get_object(&bucket, &key)?;
                let path = store.object_bodies().body_path(&bucket, &meta.body_id);
                Ok((meta, path))
            })
            .await?;
        let (range, content_range) = match &input.range {
            None => (0..meta.size, None),
            Some(r) => {
                let range = r.check(meta.size).map_err(|_| {
                    s3_error(
                        S3ErrorCode::InvalidRange,
                        "The requested range is not satisfiable",
                    )
                })?;
                let shown = format!(
                    "bytes {}-{}/{}",
                    range.start,
                    range.end.saturating_sub(1),
                    meta.size
                );
                (range, Some(shown))
            }
        };
        let length = range.end - range.start;
        let stream = body::send(&path, range).await.map_err(|e| internal(&e))?;
        Ok(S3Response::new(
            object_output!(dto::GetObjectOutput, &meta, {
                body: Some(dto::StreamingBlob::wrap(stream)),
                content_length: i64::try_from(length).ok(),
                content_range: content_range,
            }),
        ))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        let meta = self
            .store_op(move |store| store.get_object(&bucket, &key))
            .await?;
        Ok(S3Response::new(
            object_output!(dto::HeadObjectOutput, &meta, {
                content_length: i64::try_from(meta.size).ok(),
            }),
        ))
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        self.store_op(move |store| store.delete_object(&bucket, &key))
            .await?;
        Ok(S3Response::new(dto::DeleteObjectOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS);
        let after = match &input.continuation_token {
            Some(token) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error(
                            S3ErrorCode::InvalidArgument,
                            "The continuation token provided is incorrect",
                        )
                    })?,
            ),
            None => input.start_after.clone(),
        };
        let bucket = input.bucket.clone();
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone();
        let listing = self
            .store_op(move |store| {
                store.list_objects(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    after.as_deref(),
                    usize::try_from(max_keys).unwrap_or(0),
                )
            })
            .await?;
        let key_count = listing.objects.len() + listing.common_prefixes.len();
        let next = listing
            .truncated
            .then(|| listing.last.clone())
            .flatten()
            .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last));
        // Continuation tokens are base64url, XML-safe and opaque: S3 encodes neither.
        let encoding = KeyEncoding::choose(
            input.encoding_type.as_ref(),
            listing
                .objects
                .iter()
                .map(|o| o.key.as_str())
                .chain(listing.common_prefixes.iter().map(String::as_str))
                .chain(input.prefix.as_deref())
                .chain(input.delimiter.as_deref())
                .chain(input.start_after.as_deref()),
        )?;
        let contents = listing
            .objects
            .iter()
            .map(|o| dto::Object {
                e_tag: Some(etag(o)),
                key: Some(encoding.field(&o.key)),
                last_modified: Some(o.last_modified.into()),
                size: i64::try_from(o.size).ok(),
                storage_class: Some(dto::ObjectStorageClass::from_static(
                    dto::ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: encoding.opt(input.prefix),
            delimiter: encoding.opt(input.delimiter),
            encoding_type: encoding.encoding_type(),
            max_keys: Some(max_keys),
            key_count: i32::try_from(key_count).ok(),
            is_truncated: Some(listing.truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: encoding.opt(input.start_after),
            contents: Some(contents),
            common_prefixes: common_prefixes(&listing.common_prefixes, encoding),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let caller = request_caller(req.credentials.as_ref())?;
        let input = req.input;
        let upload = NewUpload {
            key: input.key.clone(),
            owner: caller.principal.account().unwrap_or("").to_string(),
            initiator: caller.arn(),
            content_type: input.content_type,
            user_metadata: user_metadata(input.metadata),
        };
        let bucket = input.bucket.clone();
        let created = self
            .store_op(move |store| store.create_upload(&bucket, &upload))
            .await?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: echoed_key(input.key),
            upload_id: Some(created.upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        // Refuse before reading a body no upload will take.
        let (bucket, key, upload_id) = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        self.store_op(move |store| store.get_upload(&bucket, &key, &upload_id))
            .await?;
        let received = receive_checked(
            &self.store,
            input.body,
            input.content_md5.as_deref(),
            input.content_length,
        )
        .await?;
        let part = self
            .on_store(move |store| {
                record_part(
                    store,
                    (&input.bucket, &input.key, &input.upload_id),
                    number,
                    &received,
                )
            })
            .await?;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(dto::ETag::Strong(part.etag)),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let (source_bucket, source_key) = copy_source(&input.copy_source)?;
        let part = self
            .on_store(move |store| {
                store
                    .get_upload(&input.bucket, &input.key, &input.upload_id)
                    .map_err(bucket_error)?;
                let (_, received) = copy_body(
                    store,
                    &source_bucket,
                    &source_key,
                    input.copy_source_range.as_deref(),
                )?;
                record_part(
                    store,
                    (&input.bucket, &input.key, &input.upload_id),
                    number,
                    &received,
                )
            })
            .await?;
        Ok(S3Response::new(dto::UploadPartCopyOutput {
            copy_part_result: Some(dto::CopyPartResult {
                e_tag: Some(dto::ETag::Strong(part.etag)),
                last_modified: Some(part.last_modified.into()),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let input = req.input;
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if listed.is_empty() {
            return Err(malformed_xml());
        }
        let mut parts = Vec::with_capacity(listed.len());
        for part in listed {
            let (Some(number), Some(etag)) = (part.part_number, part.e_tag) else {
                return Err(malformed_xml());
            };
            // A number out of range was never uploaded.
            let number =
                u32::try_from(number).map_err(|_| bucket_error(BucketError::InvalidPart))?;
            parts.push((number, etag.into_value()));
        }
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let meta = self
            .store_op(move |store| store.complete_upload(&bucket, &key, &input.upload_id, &parts))
            .await?;
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, path_encode(&input.key))),
            bucket: Some(input.bucket),
            key: echoed_key(input.key),
            e_tag: Some(etag(&meta)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let input = req.input;
        self.store_op(move |store| store.abort_upload(&input.bucket, &input.key, &input.upload_id))
            .await?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let input = req.input;
        let max_parts = page_size(input.max_parts, "max-parts")?;
        let marker = input.part_number_marker.unwrap_or(0);
        let after = u32::try_from(marker).map_err(|_| {
            s3_error(
                S3ErrorCode::InvalidArgument,
                "Argument part-number-marker must be an integer between 0 and 2147483647",
            )
        })?;
        let (bucket, key, upload_id) = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        let listing = self
            .store_op(move |store| {
                store.list_parts(
                    &bucket,
                    &key,
                    &upload_id,
                    after,
                    usize::try_from(max_parts).unwrap_or(0),
                )
            })
            .await?;
        let next = listing
            .parts
            .last()
            .and_then(|p| i32::try_from(p.part_number).ok());
        let parts = listing
            .parts
            .iter()
            .map(|p| dto::Part {
                e_tag: Some(dto::ETag::Strong(p.etag.clone())),
                last_modified: Some(p.last_modified.into()),
                part_number: i32::try_from(p.part_number).ok(),
                size: i64::try_from(p.size).ok(),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: echoed_key(input.key),
            upload_id: Some(input.upload_id),
            initiator: Some(initiator(&listing.upload)),
            owner: Some(owner(&listing.upload.owner)),
            storage_class: Some(standard()),
            max_parts: Some(max_parts),
            part_number_marker: Some(marker),
            next_part_number_marker: next,
            is_truncated: Some(listing.truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let input = req.input;
        let max_uploads = page_size(input.max_uploads, "max-uploads")?;
        let bucket = input.bucket.clone();
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone();
        let key_marker = input.key_marker.clone();
        let upload_id_marker = input.upload_id_marker.clone();
        let listing = self
            .store_op(move |store| {
                store.list_uploads(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    key_marker.as_deref(),
                    upload_id_marker.as_deref(),
                    usize::try_from(max_uploads).unwrap_or(0),
                )
            })
            .await?;
        let encoding = KeyEncoding::choose(
            input.encoding_type.as_ref(),
            listing
                .uploads
                .iter()
                .map(|u| u.key.as_str())
                .chain(listing.common_prefixes.iter().map(String::as_str))
                .chain(input.prefix.as_deref())
                .chain(input.delimiter.as_deref())
                .chain(input.key_marker.as_deref())
                .chain(listing.next_key_marker.as_deref()),
        )?;
        let uploads = listing
            .uploads
            .iter()
            .map(|u| dto::MultipartUpload {
                initiated: Some(u.initiated.into()),
                initiator: Some(initiator(u)),
                key: Some(encoding.field(&u.key)),
                owner: Some(owner(&u.owner)),
                storage_class: Some(standard()),
                upload_id: Some(u.upload_id.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: encoding.opt(input.prefix),
            delimiter: encoding.opt(input.delimiter),
            encoding_type: encoding.encoding_type(),
            key_marker: encoding.opt(input.key_marker),
            upload_id_marker: input.upload_id_marker,
            next_key_marker: encoding.opt(listing.next_key_marker),
            next_upload_id_marker: listing.next_upload_id_marker,
            max_uploads: Some(max_uploads),
            is_truncated: Some(listing.truncated),
            uploads: Some(uploads),
            common_prefixes: common_prefixes(&listing.common_prefixes, encoding),
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let caller = request_caller(req.credentials.as_ref())?;
        let call = call()?;
        let input = req.input;
        let quiet = input.delete.quiet.unwrap_or(false);
        let objects = input.delete.objects;
        if objects.is_empty() || objects.len() > MAX_KEYS as usize {
            return Err(malformed_xml());
        }
        let authorizer = self.authorizer.clone();
        let bucket_name = input.bucket;
        let (deleted, errors) = self
            .on_store(move |store| {
                let bucket = bucket_named(store, &bucket_name)?;
                // Parsed once for all the keys' decisions.
                let policy = bucket_policy(&bucket)?;
                let mut allowed = Vec::new();
                let mut errors = Vec::new();
                for object in objects {
                    if object.version_id.as_deref().is_some_and(|v| v != "null") {
                        errors.push(dto::Error {
                            code: Some("NoSuchVersion".to_string()),
                            key: echoed_key(object.key),
                            message: Some("The specified version does not exist.".to_string()),
                            version_id: object.version_id,
                        });
                        continue;
                    }
                    // Each key is its own s3:DeleteObject decision, as S3 makes them.
                    let resource = format!("arn:aws:s3:::{bucket_name}/{}", object.key);
                    let asked = Asked {
                        action: "s3:DeleteObject",
                        resource: &resource,
                        bucket: Some(&bucket),
                        policy_management: false,
                        keys: &[],
                    };
                    match decide_with_policy(&authorizer, &call, &caller, &asked, policy.as_ref()) {
                        Ok(()) => allowed.push(object.key),
                        Err(e) if *e.code() == S3ErrorCode::AccessDenied => {
                            errors.push(dto::Error {
                                code: Some("AccessDenied".to_string()),
                                key: echoed_key(object.key),
                                message: Some("Access Denied".to_string()),
                                version_id: None,
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                store
                    .delete_objects(&bucket_name, &allowed)
                    .map_err(bucket_error)?;
                Ok((allowed, errors))
            })
            .await?;
        let deleted = deleted
            .into_iter()
            .map(|key| dto::DeletedObject {
                key: echoed_key(key),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let input = req.input;
        let (source_bucket, source_key) = copy_source(&input.copy_source)?;
        if input.copy_source_if_match.is_some()
            || input.copy_source_if_none_match.is_some()
            || input.copy_source_if_modified_since.is_some()
            || input.copy_source_if_unmodified_since.is_some()
        {
            return Err(s3_error(
                S3ErrorCode::NotImplemented,
                "The rolechain twin does not implement conditional copies (x-amz-copy-source-if-*).",
            ));
        }
        let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
            None | Some(dto::MetadataDirective::COPY) => false,
            Some(dto::MetadataDirective::REPLACE) => true,
            Some(_) => {
                return Err(s3_error(
                    S3ErrorCode::InvalidArgument,
                    "Unknown metadata directive.",
                ))
            }
        };
        if !replace && source_bucket == input.bucket && source_key == input.key {
            return Err(s3_error(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let meta = self
            .on_store(move |store| {
                // The access check found the destination bucket before the body is copied.
                let (source, received) = copy_body(store, &source_bucket, &source_key, None)?;
                let (content_type, metadata) = if replace {
                    (input.content_type, user_metadata(input.metadata))
                } else {
                    (source.content_type, source.user_metadata)
                };
                let object = new_object(input.key, &received, content_type, metadata);
                store
                    .put_object(&input.bucket, &object, &received.path)
                    .map_err(bucket_error)
            })
            .await?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag(&meta)),
                last_modified: Some(meta.last_modified.into()),
                ..Default::default()
            }),
            ..Default::default()
        }))
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
