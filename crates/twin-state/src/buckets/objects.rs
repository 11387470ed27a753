//! S3 objects: put (a received body adopted in one transaction), get, delete, list.

use std::path::Path;

use redb::{ReadableDatabase, WriteTransaction};

use super::{
    now, or_discard, require_bucket, rolled_up, settle, storage, BucketError, NewObject,
    ObjectListing, ObjectMeta, BUCKETS, OBJECTS, OBJECTS_NAME,
};
use crate::db::{decode, encode, Store};

impl Store {
    /// `PutObject`: records `object`, whose body has been written to `temp` (a path from
    /// [`ObjectBodies::temp_path`](super::ObjectBodies::temp_path), flushed to disk), replacing any object under the same key.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket` (the body is removed then); storage failures.
    pub fn put_object(
        &self,
        bucket: &str,
        object: &NewObject,
        temp: &Path,
    ) -> Result<ObjectMeta, BucketError> {
        self.store_object(bucket, object, temp, |_| Ok(()))
    }

    /// Adopts `temp` as `object`'s body and records it in one transaction with `also` (which
    /// may refuse, undoing everything); the replaced body is removed after the commit.
    pub(super) fn store_object(
        &self,
        bucket: &str,
        object: &NewObject,
        temp: &Path,
        also: impl FnOnce(&WriteTransaction) -> Result<(), BucketError>,
    ) -> Result<ObjectMeta, BucketError> {
        let bodies = self.object_bodies();
        if self.get_bucket(bucket)?.is_none() {
            let _ = std::fs::remove_file(temp);
            return Err(BucketError::NoSuchBucket);
        }
        let body_id = or_discard(bodies.adopt(bucket, temp), temp)?;
        let meta = ObjectMeta {
            key: object.key.clone(),
            size: object.size,
            etag: object.etag.clone(),
            content_type: object.content_type.clone(),
            last_modified: now(),
            user_metadata: object.user_metadata.clone(),
            body_id: body_id.clone(),
        };
        let committed = (|| -> Result<Option<ObjectMeta>, BucketError> {
            let txn = self.db().begin_write().map_err(storage)?;
            let replaced = {
                // The bucket may have been deleted while the body was arriving.
                require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
                also(&txn)?;
                let mut objects = txn.open_table(OBJECTS).map_err(storage)?;
                let old = objects
                    .insert((bucket, object.key.as_str()), encode(&meta)?.as_slice())
                    .map_err(storage)?;
                old.map(|g| decode::<ObjectMeta>(OBJECTS_NAME, g.value()))
                    .transpose()?
            };
            txn.commit().map_err(storage)?;
            Ok(replaced)
        })();
        settle(committed, &bodies.body_path(bucket, &body_id), |old| {
            bodies.body_path(bucket, &old.body_id)
        })?;
        Ok(meta)
    }

    /// The metadata of `key` in `bucket`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `NoSuchKey`.
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        let objects = txn.open_table(OBJECTS).map_err(storage)?;
        if let Some(g) = objects.get((bucket, key)).map_err(storage)? {
            return Ok(decode(OBJECTS_NAME, g.value())?);
        }
        require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
        Err(BucketError::NoSuchKey)
    }

    /// `DeleteObject`: removes `key` (S3 answers success for a key that is not there).
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<(), BucketError> {
        let txn = self.db().begin_write().map_err(storage)?;
        let removed = {
            require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
            let mut objects = txn.open_table(OBJECTS).map_err(storage)?;
            let removed = objects.remove((bucket, key)).map_err(storage)?;
            removed
                .map(|g| decode::<ObjectMeta>(OBJECTS_NAME, g.value()))
                .transpose()?
        };
        txn.commit().map_err(storage)?;
        if let Some(old) = removed {
            self.object_bodies().remove(bucket, &old.body_id);
        }
        Ok(())
    }

    /// `ListObjectsV2`: up to `max_keys` keys (and common prefixes) of `bucket` beginning with
    /// `prefix`, after `after` (a key or common prefix a previous page ended with, or
    /// `StartAfter`), rolled up at `delimiter`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectListing, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
        let objects = txn.open_table(OBJECTS).map_err(storage)?;
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let start = match after {
            Some(a) if a > prefix => a,
            _ => prefix,
        };
        let mut out = ObjectListing::default();
        // A page that ended on a common prefix continues after every key under it.
        let mut skip_under: Option<String> = after
            .filter(|a| delimiter.is_some_and(|d| a.ends_with(d)))
            .map(str::to_string);
        let mut count = 0usize;
        for entry in objects.range((bucket, start)..).map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let (b, key) = k.value();
            if b != bucket || !key.starts_with(prefix) {
                break;
            }
            if after.is_some_and(|a| key <= a) {
                continue;
            }
            if skip_under.as_deref().is_some_and(|p| key.starts_with(p)) {
                continue;
            }
            let rolled = rolled_up(key, prefix, delimiter);
            if count == max_keys {
                out.truncated = true;
                break;
            }
            count += 1;
            match rolled {
                Some(common) => {
                    out.last = Some(common.clone());
                    skip_under = Some(common.clone());
                    out.common_prefixes.push(common);
                }
                None => {
                    out.last = Some(key.to_string());
                    out.objects.push(decode(OBJECTS_NAME, v.value())?);
                }
            }
        }
        Ok(out)
    }

    /// `DeleteObjects`' deletions: removes each of `keys` that exists, in one transaction.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`.
    pub fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<(), BucketError> {
        let txn = self.db().begin_write().map_err(storage)?;
        let mut removed = Vec::new();
        {
            require_bucket(&txn.open_table(BUCKETS).map_err(storage)?, bucket)?;
            let mut objects = txn.open_table(OBJECTS).map_err(storage)?;
            for key in keys {
                if let Some(g) = objects.remove((bucket, key.as_str())).map_err(storage)? {
                    removed.push(decode::<ObjectMeta>(OBJECTS_NAME, g.value())?);
                }
            }
        }
        txn.commit().map_err(storage)?;
        let bodies = self.object_bodies();
        for old in removed {
            bodies.remove(bucket, &old.body_id);
        }
        Ok(())
    }
}
