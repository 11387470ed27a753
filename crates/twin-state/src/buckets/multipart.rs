//! S3 multipart uploads: create, parts received like bodies, list, abort, and completion into
//! one object.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{
    adopt_into, forget_upload, multipart_etag, new_upload_id, now, or_discard, require_bucket,
    rolled_up, settle, storage, BucketError, NewObject, NewUpload, ObjectMeta, PartListing,
    PartMeta, Upload, UploadListing, BUCKETS, MIN_PART_SIZE, PARTS, PARTS_NAME, UPLOADS,
    UPLOADS_NAME,
};
use crate::db::{decode, encode, Store};

impl Store {
    /// The (key, upload id) of every multipart upload of `bucket`, in `txn`.
    pub(super) fn uploads_of(
        &self,
        txn: &WriteTransaction,
        bucket: &str,
    ) -> Result<Vec<(String, String)>, BucketError> {
        let uploads = txn.open_table(UPLOADS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in uploads.range((bucket, "", "")..).map_err(storage)? {
            let (k, _) = entry.map_err(storage)?;
            let (b, key, id) = k.value();
            if b != bucket {
                break;
            }
            out.push((key.to_string(), id.to_string()));
        }
        Ok(out)
    }

    /// `CreateMultipartUpload`: a new upload of `upload.key` into `bucket`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`; storage failures.
    pub fn create_upload(&self, bucket: &str, upload: &NewUpload) -> Result<Upload, BucketError> {
        let created = Upload {
            upload_id: new_upload_id()?,
            key: upload.key.clone(),
            initiated: now(),
            owner: upload.owner.clone(),
            initiator: upload.initiator.clone(),
            content_type: upload.content_type.clone(),
            user_metadata: upload.user_metadata.clone(),
        };
        let txn = self.db().begin_write().map_err(storage)?;
        {
            require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
            let mut uploads = txn.open_table(UPLOADS).map_err(storage)?;
            uploads
                .insert(
                    (bucket, created.key.as_str(), created.upload_id.as_str()),
                    encode(&created)?.as_slice(),
                )
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(created)
    }

    /// The multipart upload `upload_id` of `key` in `bucket`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchUpload` (also for an upload of another key).
    pub fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Upload, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        let uploads = txn.open_table(UPLOADS).map_err(storage)?;
        if let Some(g) = uploads.get((bucket, key, upload_id)).map_err(storage)? {
            return Ok(decode(UPLOADS_NAME, g.value())?);
        }
        require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
        Err(BucketError::NoSuchUpload)
    }

    /// `UploadPart`: records part `part_number` (size `size`, MD5 `etag` in hex) of an upload,
    /// whose bytes have been written to `temp` (a path from [`ObjectBodies::temp_path`](super::ObjectBodies::temp_path),
    /// flushed to disk), replacing a part of the same number.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchUpload` (the file is removed then); storage failures.
    #[allow(clippy::too_many_arguments)]
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        size: u64,
        etag: &str,
        temp: &Path,
    ) -> Result<PartMeta, BucketError> {
        let bodies = self.object_bodies();
        // The upload must exist before its id names a directory.
        let upload = or_discard(self.get_upload(bucket, key, upload_id), temp)?;
        let dir = bodies.upload_dir(&upload.upload_id);
        let body_id = or_discard(adopt_into(&dir, temp, "p-"), temp)?;
        let part = PartMeta {
            part_number,
            size,
            etag: etag.to_string(),
            last_modified: now(),
            body_id: body_id.clone(),
        };
        let committed = (|| -> Result<Option<PartMeta>, BucketError> {
            let txn = self.db().begin_write().map_err(storage)?;
            let replaced = {
                let uploads = txn.open_table(UPLOADS).map_err(storage)?;
                // Completed or aborted while the part was arriving.
                if uploads
                    .get((bucket, key, upload_id))
                    .map_err(storage)?
                    .is_none()
                {
                    return Err(BucketError::NoSuchUpload);
                }
                let mut parts = txn.open_table(PARTS).map_err(storage)?;
                let old = parts
                    .insert((upload_id, part_number), encode(&part)?.as_slice())
                    .map_err(storage)?;
                old.map(|g| decode::<PartMeta>(PARTS_NAME, g.value()))
                    .transpose()?
            };
            txn.commit().map_err(storage)?;
            Ok(replaced)
        })();
        settle(committed, &dir.join(&body_id), |old| dir.join(old.body_id))?;
        Ok(part)
    }

    /// `ListParts`: up to `max_parts` parts of an upload numbered above `after`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchUpload`.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max_parts: usize,
    ) -> Result<PartListing, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        let uploads = txn.open_table(UPLOADS).map_err(storage)?;
        let upload: Upload = match uploads.get((bucket, key, upload_id)).map_err(storage)? {
            Some(g) => decode(UPLOADS_NAME, g.value())?,
            None => {
                drop(uploads);
                drop(txn);
                return Err(self
                    .get_upload(bucket, key, upload_id)
                    .err()
                    .unwrap_or(BucketError::NoSuchUpload));
            }
        };
        let parts_table = txn.open_table(PARTS).map_err(storage)?;
        let mut parts = Vec::new();
        let mut truncated = false;
        if after < u32::MAX {
            for entry in parts_table
                .range((upload_id, after + 1)..=(upload_id, u32::MAX))
                .map_err(storage)?
            {
                let (_, v) = entry.map_err(storage)?;
                if parts.len() == max_parts {
                    truncated = true;
                    break;
                }
                parts.push(decode(PARTS_NAME, v.value())?);
            }
        }
        Ok(PartListing {
            upload,
            parts,
            truncated,
        })
    }

    /// `AbortMultipartUpload`: forgets the upload and removes its parts.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchUpload`.
    pub fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), BucketError> {
        let txn = self.db().begin_write().map_err(storage)?;
        match forget_upload(&txn, bucket, key, upload_id) {
            Ok(()) => {}
            Err(BucketError::NoSuchUpload) => {
                drop(txn);
                // NoSuchBucket when that is why.
                self.get_upload(bucket, key, upload_id)?;
                return Err(BucketError::NoSuchUpload);
            }
            Err(e) => return Err(e),
        }
        txn.commit().map_err(storage)?;
        let _ = std::fs::remove_dir_all(self.object_bodies().upload_dir(upload_id));
        Ok(())
    }

    /// `CompleteMultipartUpload`: checks the parts the client lists (part number, ETag in hex)
    /// against those uploaded, copies them in order into the object's body (file to file, never
    /// through memory), and records the object while forgetting the upload, in one transaction.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchUpload`, `InvalidPartOrder` (numbers not ascending),
    /// `InvalidPart` (not uploaded, or another ETag; also for an empty list), `EntityTooSmall`
    /// (a part before the last under [`MIN_PART_SIZE`]); storage failures.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[(u32, String)],
    ) -> Result<ObjectMeta, BucketError> {
        let upload = self.get_upload(bucket, key, upload_id)?;
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(BucketError::InvalidPartOrder);
        }
        let uploaded = self
            .list_parts(bucket, key, upload_id, 0, usize::MAX)?
            .parts
            .into_iter()
            .map(|p| (p.part_number, p))
            .collect::<BTreeMap<_, _>>();
        let mut chosen = Vec::with_capacity(listed.len());
        for (number, etag) in listed {
            match uploaded.get(number) {
                Some(part) if part.etag.eq_ignore_ascii_case(etag.trim_matches('"')) => {
                    chosen.push(part.clone());
                }
                _ => return Err(BucketError::InvalidPart),
            }
        }
        if chosen.is_empty() {
            return Err(BucketError::InvalidPart);
        }
        if chosen[..chosen.len() - 1]
            .iter()
            .any(|p| p.size < MIN_PART_SIZE)
        {
            return Err(BucketError::EntityTooSmall);
        }
        let bodies = self.object_bodies();
        let temp = bodies.temp_path()?;
        let assembled = (|| -> std::io::Result<u64> {
            let mut out = private_fs::create_file(&temp)?;
            let mut size = 0;
            for part in &chosen {
                let mut from = File::open(bodies.part_path(upload_id, &part.body_id))?;
                size += std::io::copy(&mut from, &mut out)?;
            }
            out.sync_all()?;
            Ok(size)
        })();
        let size = match assembled {
            Ok(size) => size,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e.into());
            }
        };
        let object = NewObject {
            key: key.to_string(),
            size,
            etag: multipart_etag(chosen.iter().map(|p| p.etag.as_str())),
            content_type: upload.content_type.clone(),
            user_metadata: upload.user_metadata.clone(),
        };
        let meta = self.store_object(bucket, &object, &temp, |txn| {
            // A part replaced while the body was assembled: the body is not what was listed.
            let parts = txn.open_table(PARTS).map_err(storage)?;
            for part in &chosen {
                let now: Option<PartMeta> = parts
                    .get((upload_id, part.part_number))
                    .map_err(storage)?
                    .map(|g| decode(PARTS_NAME, g.value()))
                    .transpose()?;
                if now.is_none_or(|n| n.body_id != part.body_id) {
                    return Err(BucketError::InvalidPart);
                }
            }
            drop(parts);
            forget_upload(txn, bucket, key, upload_id)
        })?;
        let _ = std::fs::remove_dir_all(bodies.upload_dir(upload_id));
        Ok(meta)
    }

    /// `ListMultipartUploads`: up to `max_uploads` uploads (and common prefixes) of `bucket`
    /// whose keys begin with `prefix`, after `key_marker` (and, for that key, after
    /// `upload_id_marker`), rolled up at `delimiter`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max_uploads: usize,
    ) -> Result<UploadListing, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
        let uploads = txn.open_table(UPLOADS).map_err(storage)?;
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let key_marker = key_marker.filter(|m| !m.is_empty());
        // S3 ignores the upload id marker without a key marker.
        let upload_id_marker = upload_id_marker.filter(|_| key_marker.is_some());
        let mut out = UploadListing::default();
        let mut skip_under: Option<String> = key_marker
            .filter(|m| delimiter.is_some_and(|d| m.ends_with(d)))
            .map(str::to_string);
        let mut last: Option<(String, Option<String>)> = None;
        for entry in uploads.range((bucket, prefix, "")..).map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let (b, key, id) = k.value();
            if b != bucket || !key.starts_with(prefix) {
                break;
            }
            let after_marker = match (key_marker, upload_id_marker) {
                (None, _) => true,
                (Some(m), None) => key > m,
                (Some(m), Some(u)) => key > m || (key == m && id > u),
            };
            if !after_marker || skip_under.as_deref().is_some_and(|p| key.starts_with(p)) {
                continue;
            }
            let rolled = rolled_up(key, prefix, delimiter);
            if out.uploads.len() + out.common_prefixes.len() == max_uploads {
                out.truncated = true;
                break;
            }
            match rolled {
                Some(common) => {
                    last = Some((common.clone(), None));
                    skip_under = Some(common.clone());
                    out.common_prefixes.push(common);
                }
                None => {
                    last = Some((key.to_string(), Some(id.to_string())));
                    out.uploads.push(decode(UPLOADS_NAME, v.value())?);
                }
            }
        }
        if out.truncated {
            if let Some((key, id)) = last {
                out.next_key_marker = Some(key);
                out.next_upload_id_marker = id;
            }
        }
        Ok(out)
    }
}
