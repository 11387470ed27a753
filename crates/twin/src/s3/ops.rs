//! The S3 operations the twin serves, as `s3s`'s `S3` trait. Authorization has already
//! happened (the access check); these read and write the store.

use std::sync::Arc;

use base64::Engine as _;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result, S3};
use twin_state::{BucketError, NewObject, ObjectMeta, Store};

use super::access::{blocking, bucket_error, internal, s3_error};
use super::{body, CALL};

/// Longest page of `ListObjectsV2` (S3's limit).
const MAX_KEYS: i32 = 1000;

/// The twin's S3 operations over the store.
pub(super) struct TwinS3 {
    pub(super) store: Arc<Store>,
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
    twin_state::buckets::hex_lower(&sha2::Sha256::digest(format!(
        "rolechain-s3-owner:{account}"
    )))
}

fn owner(account: &str) -> dto::Owner {
    dto::Owner {
        id: Some(canonical_id(account)),
        display_name: Some(account.to_string()),
    }
}

fn etag(meta: &ObjectMeta) -> dto::ETag {
    dto::ETag::Strong(meta.etag.clone())
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

/// The bucket called `name`, or `NoSuchBucket`.
async fn existing_bucket(store: &Arc<Store>, name: String) -> S3Result<twin_state::Bucket> {
    let store = Arc::clone(store);
    blocking(move || {
        store
            .get_bucket(&name)
            .map_err(bucket_error)?
            .ok_or_else(|| bucket_error(BucketError::NoSuchBucket))
    })
    .await
}

#[async_trait::async_trait]
impl S3 for TwinS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let account = caller_account();
        let store = Arc::clone(&self.store);
        let owned = {
            let account = account.clone();
            blocking(move || store.list_buckets(&account).map_err(bucket_error)).await?
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
        let store = Arc::clone(&self.store);
        blocking(move || {
            store
                .create_bucket(&name, &account, &region)
                .map_err(bucket_error)
        })
        .await?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let store = Arc::clone(&self.store);
        let name = req.input.bucket;
        blocking(move || store.delete_bucket(&name).map_err(bucket_error)).await?;
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let bucket = existing_bucket(&self.store, req.input.bucket).await?;
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
        let store = Arc::clone(&self.store);
        blocking(move || {
            store
                .set_bucket_policy(&name, Some(&doc))
                .map_err(bucket_error)
        })
        .await?;
        Ok(S3Response::new(dto::PutBucketPolicyOutput {}))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        let bucket = existing_bucket(&self.store, req.input.bucket).await?;
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
        let store = Arc::clone(&self.store);
        let name = req.input.bucket;
        blocking(move || store.set_bucket_policy(&name, None).map_err(bucket_error)).await?;
        Ok(S3Response::new(dto::DeleteBucketPolicyOutput {}))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let input = req.input;
        // Refuse before reading a body no bucket will take.
        existing_bucket(&self.store, input.bucket.clone()).await?;
        let store = Arc::clone(&self.store);
        let temp =
            blocking(move || store.object_bodies().temp_path().map_err(|e| internal(&e))).await?;
        let received = body::receive(input.body, temp).await?;
        if let Some(expected) = &input.content_md5 {
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
        if let Some(declared) = input.content_length {
            if u64::try_from(declared).ok() != Some(received.size) {
                body::discard(&received.path);
                return Err(s3_error(
                    S3ErrorCode::IncompleteBody,
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                ));
            }
        }
        let object = NewObject {
            key: input.key,
            size: received.size,
            etag: twin_state::buckets::hex_lower(&received.md5),
            content_type: input.content_type,
            user_metadata: input
                .metadata
                .map(|m| m.into_iter().collect())
                .unwrap_or_default(),
        };
        let store = Arc::clone(&self.store);
        let bucket = input.bucket;
        let meta = blocking(move || {
            store
                .put_object(&bucket, &object, &received.path)
                .map_err(bucket_error)
        })
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
        let store = Arc::clone(&self.store);
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let (meta, path) = blocking(move || {
            let meta = store.get_object(&bucket, &key).map_err(bucket_error)?;
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
        Ok(S3Response::new(dto::GetObjectOutput {
            body: Some(dto::StreamingBlob::wrap(stream)),
            content_length: i64::try_from(length).ok(),
            content_range,
            content_type: meta.content_type.clone(),
            e_tag: Some(etag(&meta)),
            last_modified: Some(meta.last_modified.into()),
            metadata: (!meta.user_metadata.is_empty())
                .then(|| meta.user_metadata.clone().into_iter().collect()),
            accept_ranges: Some("bytes".to_string()),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let store = Arc::clone(&self.store);
        let (bucket, key) = (req.input.bucket, req.input.key);
        let meta = blocking(move || store.get_object(&bucket, &key).map_err(bucket_error)).await?;
        Ok(S3Response::new(dto::HeadObjectOutput {
            content_length: i64::try_from(meta.size).ok(),
            content_type: meta.content_type.clone(),
            e_tag: Some(etag(&meta)),
            last_modified: Some(meta.last_modified.into()),
            metadata: (!meta.user_metadata.is_empty())
                .then(|| meta.user_metadata.clone().into_iter().collect()),
            accept_ranges: Some("bytes".to_string()),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let store = Arc::clone(&self.store);
        let (bucket, key) = (req.input.bucket, req.input.key);
        blocking(move || store.delete_object(&bucket, &key).map_err(bucket_error)).await?;
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
        let store = Arc::clone(&self.store);
        let bucket = input.bucket.clone();
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone();
        let listing = blocking(move || {
            store
                .list_objects(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    after.as_deref(),
                    usize::try_from(max_keys).unwrap_or(0),
                )
                .map_err(bucket_error)
        })
        .await?;
        let key_count = listing.objects.len() + listing.common_prefixes.len();
        let next = listing
            .truncated
            .then(|| listing.last.clone())
            .flatten()
            .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last));
        let contents = listing
            .objects
            .iter()
            .map(|o| dto::Object {
                e_tag: Some(etag(o)),
                key: Some(o.key.clone()),
                last_modified: Some(o.last_modified.into()),
                size: i64::try_from(o.size).ok(),
                storage_class: Some(dto::ObjectStorageClass::from_static(
                    dto::ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        let common_prefixes = listing
            .common_prefixes
            .into_iter()
            .map(|p| dto::CommonPrefix { prefix: Some(p) })
            .collect::<Vec<_>>();
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(max_keys),
            key_count: i32::try_from(key_count).ok(),
            is_truncated: Some(listing.truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after,
            contents: Some(contents),
            common_prefixes: (!common_prefixes.is_empty()).then_some(common_prefixes),
            ..Default::default()
        }))
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
