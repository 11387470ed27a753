//! S3's object operations: put, get, head, delete (one or many), list, copy.

use base64::Engine as _;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use twin_state::ObjectMeta;

use super::{
    common_prefixes, copy_body, etag, malformed_xml, new_object, receive_checked, shown_metadata,
    user_metadata, TwinS3, MAX_KEYS,
};
use crate::s3::access::{
    bucket_error, bucket_named, bucket_policy, call, copy_source, decide_with_policy, internal,
    request_caller, s3_error, Asked,
};
use crate::s3::body;
use crate::s3::encoding::{echoed_key, KeyEncoding};

impl TwinS3 {
    pub(super) async fn put_object(
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

    pub(super) async fn get_object(
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

    pub(super) async fn head_object(
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

    pub(super) async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        self.store_op(move |store| store.delete_object(&bucket, &key))
            .await?;
        Ok(S3Response::new(dto::DeleteObjectOutput::default()))
    }

    pub(super) async fn list_objects_v2(
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

    pub(super) async fn delete_objects(
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

    pub(super) async fn copy_object(
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
}
