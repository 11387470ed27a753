//! S3's multipart uploads: create, upload a part (or copy one), complete, abort, list parts
//! and uploads.

use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use twin_state::{BucketError, NewUpload};

use super::{
    common_prefixes, copy_body, etag, initiator, malformed_xml, owner, page_size, part_number,
    receive_checked, record_part, standard, user_metadata, TwinS3,
};
use crate::s3::access::{bucket_error, copy_source, request_caller, s3_error};
use crate::s3::encoding::{echoed_key, path_encode, KeyEncoding};

impl TwinS3 {
    pub(super) async fn create_multipart_upload(
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

    pub(super) async fn upload_part(
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

    pub(super) async fn upload_part_copy(
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

    pub(super) async fn complete_multipart_upload(
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

    pub(super) async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let input = req.input;
        self.store_op(move |store| store.abort_upload(&input.bucket, &input.key, &input.upload_id))
            .await?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn list_parts(
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

    pub(super) async fn list_multipart_uploads(
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
}
