//! S3 buckets and objects: metadata in the store, bodies as files beside it.
//!
//! Two tables of their own (created when the store opens):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `s3_buckets` | bucket name | [`Bucket`]: owner account, region, creation time, bucket policy |
//! | `s3_objects` | (bucket, key) | [`ObjectMeta`]: size, ETag, content type, user metadata, body file |
//!
//! Object bodies live under `<store dir>/s3/<bucket>/<body id>`, one file per stored version,
//! next to the database so a data directory is one unit. A body is written to
//! `<store dir>/s3/tmp/…`, flushed to disk, renamed to a fresh body id, and only then recorded in
//! the object's metadata, in one transaction; the body it replaced is removed after the commit.
//! A crash at any point leaves either the old object or the new one, never a torn body (at worst
//! an unreferenced file). Readers open the body named by the metadata they read; on Unix a body
//! replaced while it is being read stays readable until closed.
//!
//! Keys are ordered as S3 lists them (by UTF-8 bytes), which is redb's order for `&str`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use md5::{Digest as _, Md5};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StateError;
use crate::ids::IdSource;
use crate::store::{decode, encode, Store};

const BUCKETS: TableDefinition<&'static str, &'static [u8]> = TableDefinition::new("s3_buckets");
const OBJECTS: TableDefinition<(&'static str, &'static str), &'static [u8]> =
    TableDefinition::new("s3_objects");
const BUCKETS_NAME: &str = "s3_buckets";
const OBJECTS_NAME: &str = "s3_objects";

/// Creates the tables, so read transactions can open them unconditionally.
pub(crate) fn create_tables(txn: &WriteTransaction) -> crate::Result<()> {
    txn.open_table(BUCKETS)?;
    txn.open_table(OBJECTS)?;
    Ok(())
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The globally unique name.
    pub name: String,
    /// The account that owns it (and is the resource account of every request on it).
    pub owner: String,
    /// Its region.
    pub region: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The bucket policy (JSON as it was put), if any.
    #[serde(default)]
    pub policy: Option<String>,
}

/// What the store keeps about one object besides its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// The body's length in bytes.
    pub size: u64,
    /// The body's MD5 as 32 lowercase hex digits (S3's ETag of a single-part upload, without
    /// the quotes).
    pub etag: String,
    /// `Content-Type` as uploaded.
    #[serde(default)]
    pub content_type: Option<String>,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// `x-amz-meta-*` user metadata, name (lowercase, without the prefix) → value.
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
    /// The body file's id (its name under the bucket's directory).
    pub body_id: String,
}

/// An object to store; the body is a file already written under
/// [`ObjectBodies::temp_path`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewObject {
    /// The key.
    pub key: String,
    /// The body's length.
    pub size: u64,
    /// The body's MD5, hex.
    pub etag: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// User metadata.
    pub user_metadata: BTreeMap<String, String>,
}

/// One page of `ListObjectsV2`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectListing {
    /// The objects, in key order.
    pub objects: Vec<ObjectMeta>,
    /// With a delimiter: the distinct key prefixes up to and including the delimiter.
    pub common_prefixes: Vec<String>,
    /// Whether more keys follow.
    pub truncated: bool,
    /// The last key or common prefix of this page, to continue after.
    pub last: Option<String>,
}

/// A bucket or object operation S3 refuses, with S3's code, status and message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// `NoSuchBucket` (404).
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    /// `NoSuchKey` (404).
    #[error("The specified key does not exist.")]
    NoSuchKey,
    /// `NoSuchBucketPolicy` (404).
    #[error("The bucket policy does not exist")]
    NoSuchBucketPolicy,
    /// `BucketAlreadyOwnedByYou` (409).
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    AlreadyOwnedByYou,
    /// `BucketAlreadyExists` (409): another account owns the name.
    #[error("The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")]
    AlreadyExists,
    /// `BucketNotEmpty` (409).
    #[error("The bucket you tried to delete is not empty")]
    NotEmpty,
    /// `InvalidBucketName` (400).
    #[error("The specified bucket is not valid.")]
    InvalidName,
    /// The store or the file system failed (500).
    #[error(transparent)]
    State(#[from] StateError),
}

impl BucketError {
    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            BucketError::NoSuchBucket => "NoSuchBucket",
            BucketError::NoSuchKey => "NoSuchKey",
            BucketError::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            BucketError::AlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketError::AlreadyExists => "BucketAlreadyExists",
            BucketError::NotEmpty => "BucketNotEmpty",
            BucketError::InvalidName => "InvalidBucketName",
            BucketError::State(_) => "InternalError",
        }
    }
}

impl From<redb::Error> for BucketError {
    fn from(e: redb::Error) -> Self {
        BucketError::State(e.into())
    }
}

impl From<std::io::Error> for BucketError {
    fn from(e: std::io::Error) -> Self {
        BucketError::State(e.into())
    }
}

/// S3's bucket naming rules (general purpose buckets): 3–63 characters of lowercase letters,
/// digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent dots,
/// not shaped like an IP address, none of the reserved prefixes and suffixes.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}

/// Where object bodies are kept: `<store dir>/s3`.
#[derive(Debug, Clone)]
pub struct ObjectBodies {
    root: PathBuf,
}

impl ObjectBodies {
    /// A fresh path for a body being received, in the same file system as the bodies (so the
    /// final rename is atomic). The directory is created if needed.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or no random id is available.
    pub fn temp_path(&self) -> crate::Result<PathBuf> {
        let dir = self.root.join("tmp");
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(IdSource::Os.lowercase_id("upload-", 24)?))
    }

    /// The file holding body `body_id` of an object in `bucket`.
    pub fn body_path(&self, bucket: &str, body_id: &str) -> PathBuf {
        self.root.join(bucket).join(body_id)
    }

    /// Moves a received body (already flushed to disk) to a new body id under `bucket`, and
    /// makes the rename durable.
    fn adopt(&self, bucket: &str, temp: &Path) -> crate::Result<String> {
        let dir = self.root.join(bucket);
        std::fs::create_dir_all(&dir)?;
        let body_id = IdSource::Os.lowercase_id("b-", 24)?;
        std::fs::rename(temp, dir.join(&body_id))?;
        sync_dir(&dir)?;
        Ok(body_id)
    }

    fn remove(&self, bucket: &str, body_id: &str) {
        // Best effort: a body left behind is unreferenced garbage, never visible.
        let _ = std::fs::remove_file(self.body_path(bucket, body_id));
    }

    /// Writes `content` as a new body of `bucket` (for seeding), returning its id, size and MD5.
    fn write_whole(&self, bucket: &str, content: &[u8]) -> crate::Result<(String, u64, String)> {
        let temp = self.temp_path()?;
        let mut file = File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        let body_id = self.adopt(bucket, &temp)?;
        Ok((body_id, content.len() as u64, md5_hex(content)))
    }
}

/// The MD5 of `bytes` as lowercase hex (an S3 ETag without quotes).
pub fn md5_hex(bytes: &[u8]) -> String {
    hex_lower(&Md5::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // A directory fsync makes a rename durable on Linux; other systems may refuse to open a
    // directory for it, which is not worth failing the write for.
    match File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

fn now() -> OffsetDateTime {
    // S3 reports times to the millisecond.
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// A bucket of a world being seeded.
pub(crate) struct SeedBucket<'a> {
    pub(crate) name: &'a str,
    pub(crate) owner: &'a str,
    pub(crate) region: &'a str,
    pub(crate) policy: Option<String>,
    /// (key, content type, body).
    pub(crate) objects: Vec<(&'a str, Option<&'a str>, Vec<u8>)>,
}

/// Stores seeded buckets and their objects in `txn` (the world's transaction), writing the
/// bodies first.
pub(crate) fn seed_buckets(
    txn: &WriteTransaction,
    bodies: &ObjectBodies,
    seeds: &[SeedBucket<'_>],
) -> Result<(), (String, BucketError)> {
    let mut buckets = txn
        .open_table(BUCKETS)
        .map_err(|e| (String::new(), BucketError::State(e.into())))?;
    let mut objects = txn
        .open_table(OBJECTS)
        .map_err(|e| (String::new(), BucketError::State(e.into())))?;
    for b in seeds {
        let at = |e: BucketError| (format!("bucket {}", b.name), e);
        if !is_valid_bucket_name(b.name) {
            return Err(at(BucketError::InvalidName));
        }
        if buckets
            .get(b.name)
            .map_err(|e| at(BucketError::State(e.into())))?
            .is_some()
        {
            return Err(at(BucketError::AlreadyExists));
        }
        let bucket = Bucket {
            name: b.name.to_string(),
            owner: b.owner.to_string(),
            region: b.region.to_string(),
            created: now(),
            policy: b.policy.clone(),
        };
        let encoded = encode(&bucket).map_err(|e| at(e.into()))?;
        buckets
            .insert(b.name, encoded.as_slice())
            .map_err(|e| at(BucketError::State(e.into())))?;
        for (key, content_type, content) in &b.objects {
            let (body_id, size, etag) = bodies
                .write_whole(b.name, content)
                .map_err(|e| at(e.into()))?;
            let meta = ObjectMeta {
                key: (*key).to_string(),
                size,
                etag,
                content_type: content_type.map(str::to_string),
                last_modified: bucket.created,
                user_metadata: BTreeMap::new(),
                body_id,
            };
            let encoded = encode(&meta).map_err(|e| at(e.into()))?;
            objects
                .insert((b.name, *key), encoded.as_slice())
                .map_err(|e| at(BucketError::State(e.into())))?;
        }
    }
    Ok(())
}

fn storage(e: impl Into<StateError>) -> BucketError {
    BucketError::State(e.into())
}

impl Store {
    /// Where this store keeps object bodies.
    pub fn object_bodies(&self) -> ObjectBodies {
        let dir = self.path().parent().unwrap_or(Path::new("."));
        ObjectBodies {
            root: dir.join("s3"),
        }
    }

    /// `CreateBucket`: a new bucket owned by `owner` in `region`.
    ///
    /// # Errors
    ///
    /// `BucketAlreadyOwnedByYou` when `owner` has it already, `BucketAlreadyExists` when another
    /// account does, `InvalidBucketName`.
    pub fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
    ) -> Result<Bucket, BucketError> {
        if !is_valid_bucket_name(name) {
            return Err(BucketError::InvalidName);
        }
        let txn = self.db().begin_write().map_err(storage)?;
        let bucket = {
            let mut buckets = txn.open_table(BUCKETS).map_err(storage)?;
            let existing: Option<Bucket> = buckets
                .get(name)
                .map_err(storage)?
                .map(|g| decode(BUCKETS_NAME, g.value()))
                .transpose()?;
            if let Some(existing) = existing {
                return Err(if existing.owner == owner {
                    BucketError::AlreadyOwnedByYou
                } else {
                    BucketError::AlreadyExists
                });
            }
            let bucket = Bucket {
                name: name.to_string(),
                owner: owner.to_string(),
                region: region.to_string(),
                created: now(),
                policy: None,
            };
            buckets
                .insert(name, encode(&bucket)?.as_slice())
                .map_err(storage)?;
            bucket
        };
        txn.commit().map_err(storage)?;
        Ok(bucket)
    }

    /// The bucket called `name`, if it exists.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn get_bucket(&self, name: &str) -> Result<Option<Bucket>, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        let buckets = txn.open_table(BUCKETS).map_err(storage)?;
        let found = buckets.get(name).map_err(storage)?;
        Ok(found.map(|g| decode(BUCKETS_NAME, g.value())).transpose()?)
    }

    /// `ListBuckets`: the buckets `owner` owns, by name.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn list_buckets(&self, owner: &str) -> Result<Vec<Bucket>, BucketError> {
        let txn = self.db().begin_read().map_err(storage)?;
        let buckets = txn.open_table(BUCKETS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in buckets.iter().map_err(storage)? {
            let (_, v) = entry.map_err(storage)?;
            let bucket: Bucket = decode(BUCKETS_NAME, v.value())?;
            if bucket.owner == owner {
                out.push(bucket);
            }
        }
        Ok(out)
    }

    /// `DeleteBucket`.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`, `BucketNotEmpty`.
    pub fn delete_bucket(&self, name: &str) -> Result<(), BucketError> {
        let txn = self.db().begin_write().map_err(storage)?;
        {
            let mut buckets = txn.open_table(BUCKETS).map_err(storage)?;
            let objects = txn.open_table(OBJECTS).map_err(storage)?;
            if buckets.get(name).map_err(storage)?.is_none() {
                return Err(BucketError::NoSuchBucket);
            }
            let mut inside = objects.range((name, "")..).map_err(storage)?;
            if let Some(first) = inside.next() {
                let (k, _) = first.map_err(storage)?;
                if k.value().0 == name {
                    return Err(BucketError::NotEmpty);
                }
            }
            buckets.remove(name).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        // Leftover unreferenced bodies (from interrupted uploads) go with the bucket.
        let _ = std::fs::remove_dir_all(self.object_bodies().root.join(name));
        Ok(())
    }

    /// `PutBucketPolicy` (`Some`) or `DeleteBucketPolicy` (`None`). The caller validates the
    /// document.
    ///
    /// # Errors
    ///
    /// `NoSuchBucket`.
    pub fn set_bucket_policy(&self, name: &str, policy: Option<&str>) -> Result<(), BucketError> {
        let txn = self.db().begin_write().map_err(storage)?;
        {
            let mut buckets = txn.open_table(BUCKETS).map_err(storage)?;
            let mut bucket: Bucket = match buckets.get(name).map_err(storage)? {
                Some(g) => decode(BUCKETS_NAME, g.value())?,
                None => return Err(BucketError::NoSuchBucket),
            };
            bucket.policy = policy.map(str::to_string);
            buckets
                .insert(name, encode(&bucket)?.as_slice())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(())
    }

    /// `PutObject`: records `object`, whose body has been written to `temp` (a path from
    /// [`ObjectBodies::temp_path`], flushed to disk), replacing any object under the same key.
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
        let bodies = self.object_bodies();
        if self.get_bucket(bucket)?.is_none() {
            let _ = std::fs::remove_file(temp);
            return Err(BucketError::NoSuchBucket);
        }
        let body_id = match bodies.adopt(bucket, temp) {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(temp);
                return Err(e.into());
            }
        };
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
                let buckets = txn.open_table(BUCKETS).map_err(storage)?;
                // The bucket may have been deleted while the body was arriving.
                if buckets.get(bucket).map_err(storage)?.is_none() {
                    return Err(BucketError::NoSuchBucket);
                }
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
        match committed {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    bodies.remove(bucket, &old.body_id);
                }
                Ok(meta)
            }
            Err(e) => {
                bodies.remove(bucket, &body_id);
                Err(e)
            }
        }
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
        let buckets = txn.open_table(BUCKETS).map_err(storage)?;
        if buckets.get(bucket).map_err(storage)?.is_none() {
            return Err(BucketError::NoSuchBucket);
        }
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
            let buckets = txn.open_table(BUCKETS).map_err(storage)?;
            if buckets.get(bucket).map_err(storage)?.is_none() {
                return Err(BucketError::NoSuchBucket);
            }
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
        let buckets = txn.open_table(BUCKETS).map_err(storage)?;
        if buckets.get(bucket).map_err(storage)?.is_none() {
            return Err(BucketError::NoSuchBucket);
        }
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
            let rolled = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|at| key[..prefix.len() + at + d.len()].to_string())
            });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn put(store: &Store, bucket: &str, key: &str, body: &[u8]) -> ObjectMeta {
        let temp = store.object_bodies().temp_path().unwrap();
        std::fs::write(&temp, body).unwrap();
        store
            .put_object(
                bucket,
                &NewObject {
                    key: key.into(),
                    size: body.len() as u64,
                    etag: md5_hex(body),
                    ..Default::default()
                },
                &temp,
            )
            .unwrap()
    }

    #[test]
    fn the_default_world_has_seed_000s_picture() {
        let (_d, s) = store();
        s.seed_if_empty(&crate::World::default_world(|c| {
            format!("http://127.0.0.1:4555/{c}")
        }))
        .unwrap();
        let pics = s.get_bucket("pics").unwrap().unwrap();
        assert_eq!(
            (pics.owner.as_str(), pics.region.as_str()),
            ("222222222222", "us-east-1")
        );
        let cat = s.get_object("pics", "indoor-cat.jpg").unwrap();
        assert_eq!(cat.content_type.as_deref(), Some("image/jpeg"));
        let body = std::fs::read(s.object_bodies().body_path("pics", &cat.body_id)).unwrap();
        assert_eq!(body.len() as u64, cat.size);
        assert_eq!(md5_hex(&body), cat.etag);
        // JPEG: SOI marker first, EOI marker last.
        assert_eq!(&body[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&body[body.len() - 2..], &[0xFF, 0xD9]);
    }

    #[test]
    fn world_buckets_are_checked() {
        let world = |bucket: &str| {
            crate::World::from_yaml(&format!(
                "accounts:\n  - id: \"111111111111\"\n    alias: a\n    buckets:\n{bucket}"
            ))
            .unwrap()
        };
        let (_d, s) = store();
        let err = s
            .seed_if_empty(&world("      - name: Bad_Name\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("InvalidBucketName"), "{err}");
        let err = s
            .seed_if_empty(&world(
                "      - name: ok-bucket\n        objects:\n          - key: k\n            text: a\n            base64: YQ==\n",
            ))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one of text and base64"), "{err}");
        let err = s
            .seed_if_empty(&world(
                "      - name: ok-bucket\n        policy: '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}'\n",
            ))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Principal"), "{err}");
        // Nothing of a refused world is stored.
        assert!(s.get_bucket("ok-bucket").unwrap().is_none());
        s.seed_if_empty(&world(
            "      - name: ok-bucket\n        objects:\n          - key: hello.txt\n            text: Hello\n",
        ))
        .unwrap();
        assert_eq!(s.get_object("ok-bucket", "hello.txt").unwrap().size, 5);
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["pics", "a.b-c", "abc", &"a".repeat(63)] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Pics",
            "a..b",
            "-ab",
            "ab-",
            "192.168.1.1",
            "xn--ab",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_conflicts_name_the_owner() {
        let (_d, s) = store();
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        assert!(matches!(
            s.create_bucket("pics", "111111111111", "us-east-1"),
            Err(BucketError::AlreadyOwnedByYou)
        ));
        assert!(matches!(
            s.create_bucket("pics", "222222222222", "us-east-1"),
            Err(BucketError::AlreadyExists)
        ));
        assert_eq!(s.list_buckets("111111111111").unwrap().len(), 1);
        assert!(s.list_buckets("222222222222").unwrap().is_empty());
    }

    #[test]
    fn overwrite_replaces_the_body_and_removes_the_old_file() {
        let (_d, s) = store();
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        let first = put(&s, "pics", "k", b"one");
        let second = put(&s, "pics", "k", b"two!");
        let bodies = s.object_bodies();
        assert!(!bodies.body_path("pics", &first.body_id).exists());
        assert_eq!(
            std::fs::read(bodies.body_path("pics", &second.body_id)).unwrap(),
            b"two!"
        );
        let meta = s.get_object("pics", "k").unwrap();
        assert_eq!(
            (meta.size, meta.etag.as_str()),
            (4, md5_hex(b"two!").as_str())
        );
        assert!(matches!(
            s.delete_bucket("pics"),
            Err(BucketError::NotEmpty)
        ));
        s.delete_object("pics", "k").unwrap();
        assert!(matches!(
            s.get_object("pics", "k"),
            Err(BucketError::NoSuchKey)
        ));
        s.delete_bucket("pics").unwrap();
        assert!(matches!(
            s.get_object("pics", "k"),
            Err(BucketError::NoSuchBucket)
        ));
    }

    #[test]
    fn put_into_a_missing_bucket_leaves_nothing_behind() {
        let (_d, s) = store();
        let temp = s.object_bodies().temp_path().unwrap();
        std::fs::write(&temp, b"x").unwrap();
        let err = s
            .put_object("nope", &NewObject::default(), &temp)
            .unwrap_err();
        assert!(matches!(err, BucketError::NoSuchBucket));
        assert!(!temp.exists());
    }

    #[test]
    fn listing_pages_and_rolls_up_prefixes() {
        let (_d, s) = store();
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        s.create_bucket("pics2", "111111111111", "us-east-1")
            .unwrap();
        for k in ["a.jpg", "cats/1.jpg", "cats/2.jpg", "dogs/1.jpg", "z.jpg"] {
            put(&s, "pics", k, k.as_bytes());
        }
        put(&s, "pics2", "a.jpg", b"other bucket");
        let keys = |l: &ObjectListing| l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();

        let all = s.list_objects("pics", "", None, None, 1000).unwrap();
        assert_eq!(keys(&all).len(), 5);
        assert!(!all.truncated);

        let rolled = s.list_objects("pics", "", Some("/"), None, 1000).unwrap();
        assert_eq!(keys(&rolled), ["a.jpg", "z.jpg"]);
        assert_eq!(rolled.common_prefixes, ["cats/", "dogs/"]);

        let page1 = s.list_objects("pics", "", Some("/"), None, 2).unwrap();
        assert!(page1.truncated);
        assert_eq!(keys(&page1), ["a.jpg"]);
        assert_eq!(page1.common_prefixes, ["cats/"]);
        let page2 = s
            .list_objects("pics", "", Some("/"), page1.last.as_deref(), 2)
            .unwrap();
        assert_eq!(page2.common_prefixes, ["dogs/"]);
        assert_eq!(keys(&page2), ["z.jpg"]);
        assert!(!page2.truncated);

        let cats = s.list_objects("pics", "cats/", None, None, 1000).unwrap();
        assert_eq!(keys(&cats), ["cats/1.jpg", "cats/2.jpg"]);
    }
}
