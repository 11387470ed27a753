//! S3 buckets and objects: metadata in the store, bodies as files beside it.
//!
//! Four tables of their own (created when the store opens):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `s3_buckets` | bucket name | [`Bucket`]: owner account, region, creation time, bucket policy |
//! | `s3_objects` | (bucket, key) | [`ObjectMeta`]: size, ETag, content type, user metadata, body file |
//! | `s3_uploads` | (bucket, key, upload id) | [`Upload`]: a multipart upload in progress |
//! | `s3_upload_parts` | (upload id, part number) | [`PartMeta`]: size, ETag, part file |
//!
//! Object bodies live under `<store dir>/s3/<bucket>/<body id>`, one file per stored version,
//! next to the database so a data directory is one unit. A body is written to
//! `<store dir>/s3/tmp/…`, flushed to disk, renamed to a fresh body id, and only then recorded in
//! the object's metadata, in one transaction; the body it replaced is removed after the commit.
//! A crash at any point leaves either the old object or the new one, never a torn body (at worst
//! an unreferenced file). Readers open the body named by the metadata they read; on Unix a body
//! replaced while it is being read stays readable until closed.
//!
//! Multipart uploads keep their parts under `<store dir>/s3/.multipart/<upload id>/` (a name no
//! bucket can have), each received like an object body (temporary file, flushed, renamed, then
//! recorded). Completing an upload copies the parts in order into a temporary file, flushes it,
//! and in one transaction records the object and forgets the upload; the part files go after the
//! commit. Upload ids begin with the time they were made in hex, so an object's uploads list in
//! the order they were initiated, as S3 lists them.
//!
//! Every file here is 0600 and every directory 0700 (`private_fs`), like the database beside
//! them. When the store opens, `buckets::cleanup` removes what a crash left: received bodies
//! never adopted, part files and upload directories no upload record owns, bodies no object
//! names.
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

use crate::db::{decode, encode, Store};
use crate::error::StateError;
use crate::ids::IdSource;

pub(crate) mod cleanup;
mod multipart;
mod objects;
#[cfg(test)]
mod tests;

const BUCKETS: TableDefinition<&'static str, &'static [u8]> = TableDefinition::new("s3_buckets");
const OBJECTS: TableDefinition<(&'static str, &'static str), &'static [u8]> =
    TableDefinition::new("s3_objects");
const UPLOADS: TableDefinition<(&'static str, &'static str, &'static str), &'static [u8]> =
    TableDefinition::new("s3_uploads");
const PARTS: TableDefinition<(&'static str, u32), &'static [u8]> =
    TableDefinition::new("s3_upload_parts");
const BUCKETS_NAME: &str = "s3_buckets";
const OBJECTS_NAME: &str = "s3_objects";
const UPLOADS_NAME: &str = "s3_uploads";
const PARTS_NAME: &str = "s3_upload_parts";

/// S3's smallest size of a part that is not the upload's last (5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The directory of multipart parts under the bodies' root; bucket names cannot begin with a
/// dot, so it never meets a bucket's directory.
const MULTIPART_DIR: &str = ".multipart";
/// Bodies being received, before they are adopted by a bucket. Dotted like [`MULTIPART_DIR`]:
/// a bucket could be called `tmp`.
const RECEIVING_DIR: &str = ".receiving";

/// Creates the tables, so read transactions can open them unconditionally.
pub(crate) fn create_tables(txn: &WriteTransaction) -> crate::Result<()> {
    txn.open_table(BUCKETS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(UPLOADS)?;
    txn.open_table(PARTS)?;
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

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Its id (time-ordered, see the module documentation).
    pub upload_id: String,
    /// The key the object will have.
    pub key: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub initiated: OffsetDateTime,
    /// The account of the caller that created it (the upload's owner).
    pub owner: String,
    /// The ARN of the caller that created it.
    pub initiator: String,
    /// `Content-Type` the object will have.
    #[serde(default)]
    pub content_type: Option<String>,
    /// User metadata the object will have.
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
}

/// A multipart upload to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUpload {
    /// The key the object will have.
    pub key: String,
    /// The creating caller's account.
    pub owner: String,
    /// The creating caller's ARN.
    pub initiator: String,
    /// `Content-Type` for the object.
    pub content_type: Option<String>,
    /// User metadata for the object.
    pub user_metadata: BTreeMap<String, String>,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// Its number, 1 to [`MAX_PART_NUMBER`].
    pub part_number: u32,
    /// Its length in bytes.
    pub size: u64,
    /// Its MD5, 32 lowercase hex digits.
    pub etag: String,
    /// When it was uploaded.
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// The part file's id (its name under the upload's directory).
    pub body_id: String,
}

/// One page of `ListMultipartUploads`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadListing {
    /// The uploads, by key and then initiation.
    pub uploads: Vec<Upload>,
    /// With a delimiter: the distinct key prefixes up to and including the delimiter.
    pub common_prefixes: Vec<String>,
    /// Whether more follow.
    pub truncated: bool,
    /// The key to continue after (`NextKeyMarker`), when truncated.
    pub next_key_marker: Option<String>,
    /// The upload id to continue after (`NextUploadIdMarker`), when truncated.
    pub next_upload_id_marker: Option<String>,
}

/// One page of `ListParts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartListing {
    /// The upload.
    pub upload: Upload,
    /// Its parts, by number.
    pub parts: Vec<PartMeta>,
    /// Whether more follow.
    pub truncated: bool,
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
    /// `NoSuchUpload` (404).
    #[error("The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")]
    NoSuchUpload,
    /// `InvalidPart` (400): a listed part was not uploaded, or its ETag differs.
    #[error("One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")]
    InvalidPart,
    /// `InvalidPartOrder` (400): the parts listed are not in ascending order.
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    /// `EntityTooSmall` (400): a part other than the last is smaller than 5 MiB.
    #[error("Your proposed upload is smaller than the minimum allowed object size.")]
    EntityTooSmall,
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
            BucketError::NoSuchUpload => "NoSuchUpload",
            BucketError::InvalidPart => "InvalidPart",
            BucketError::InvalidPartOrder => "InvalidPartOrder",
            BucketError::EntityTooSmall => "EntityTooSmall",
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
        let dir = self.root.join(RECEIVING_DIR);
        private_fs::create_dir_all(&dir)?;
        Ok(dir.join(IdSource::Os.lowercase_id("upload-", 24)?))
    }

    /// The file holding body `body_id` of an object in `bucket`.
    pub fn body_path(&self, bucket: &str, body_id: &str) -> PathBuf {
        self.root.join(bucket).join(body_id)
    }

    /// The directory of multipart upload `upload_id`'s parts.
    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join(MULTIPART_DIR).join(upload_id)
    }

    /// The file holding part file `body_id` of multipart upload `upload_id`.
    pub fn part_path(&self, upload_id: &str, body_id: &str) -> PathBuf {
        self.upload_dir(upload_id).join(body_id)
    }

    /// Moves a received body (already flushed to disk) to a new body id under `bucket`, and
    /// makes the rename durable.
    fn adopt(&self, bucket: &str, temp: &Path) -> crate::Result<String> {
        adopt_into(&self.root.join(bucket), temp, "b-")
    }

    fn remove(&self, bucket: &str, body_id: &str) {
        // Best effort: a body left behind is unreferenced garbage, never visible.
        let _ = std::fs::remove_file(self.body_path(bucket, body_id));
    }

    /// Writes `content` as a new body of `bucket` (for seeding), returning its id, size and MD5.
    fn write_whole(&self, bucket: &str, content: &[u8]) -> crate::Result<(String, u64, String)> {
        let temp = self.temp_path()?;
        let mut file = private_fs::create_file(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        let body_id = self.adopt(bucket, &temp)?;
        Ok((body_id, content.len() as u64, md5_hex(content)))
    }
}

/// The MD5 of `bytes` as lowercase hex (an S3 ETag without quotes).
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Moves `temp` (flushed to disk) into `dir` under a fresh id beginning with `prefix`, and makes
/// the rename durable.
fn adopt_into(dir: &Path, temp: &Path, prefix: &str) -> crate::Result<String> {
    private_fs::create_dir_all(dir)?;
    // The caller wrote `temp`; what the store keeps is 0600 whoever created it.
    private_fs::make_file_private(temp)?;
    let id = IdSource::Os.lowercase_id(prefix, 24)?;
    std::fs::rename(temp, dir.join(&id))?;
    sync_dir(dir)?;
    Ok(id)
}

/// S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then `-` and the number
/// of parts.
pub fn multipart_etag<'a>(part_etags: impl ExactSizeIterator<Item = &'a str>) -> String {
    let count = part_etags.len();
    let mut md5 = Md5::new();
    for etag in part_etags {
        let digest: Vec<u8> = (0..etag.len() / 2)
            .filter_map(|i| u8::from_str_radix(etag.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        md5.update(&digest);
    }
    format!("{}-{count}", hex::encode(md5.finalize()))
}

/// A time-ordered upload id: the creation time in nanoseconds as 24 hex digits, then random.
fn new_upload_id() -> crate::Result<String> {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos().max(0);
    IdSource::Os.lowercase_id(&format!("{nanos:024x}"), 24)
}

/// The keys of `upload_id`'s part rows.
fn part_numbers(
    parts: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    upload_id: &str,
) -> Result<Vec<u32>, BucketError> {
    let mut out = Vec::new();
    for entry in parts
        .range((upload_id, 0u32)..=(upload_id, u32::MAX))
        .map_err(storage)?
    {
        out.push(entry.map_err(storage)?.0.value().1);
    }
    Ok(out)
}

/// Removes upload `(bucket, key, upload_id)` and its parts' rows in `txn`.
///
/// `NoSuchUpload` when it is not there.
fn forget_upload(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), BucketError> {
    let mut uploads = txn.open_table(UPLOADS).map_err(storage)?;
    if uploads
        .remove((bucket, key, upload_id))
        .map_err(storage)?
        .is_none()
    {
        return Err(BucketError::NoSuchUpload);
    }
    let mut parts = txn.open_table(PARTS).map_err(storage)?;
    for n in part_numbers(&parts, upload_id)? {
        parts.remove((upload_id, n)).map_err(storage)?;
    }
    Ok(())
}

/// The common prefix `key` (which begins with `prefix`) rolls up into at `delimiter`: up to and
/// including the first delimiter after the prefix.
fn rolled_up(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let d = delimiter?;
    key[prefix.len()..]
        .find(d)
        .map(|at| key[..prefix.len() + at + d.len()].to_string())
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

/// `result`, removing the received file `temp` first when it is an error (nothing else would).
fn or_discard<T, E: Into<BucketError>>(
    result: Result<T, E>,
    temp: &Path,
) -> Result<T, BucketError> {
    result.map_err(|e| {
        let _ = std::fs::remove_file(temp);
        e.into()
    })
}

/// Tidies the files after the commit that recorded the file `new_body`: on success the file of
/// the record it replaced (found by `old_body`) goes, on failure the new file does. Best
/// effort: a file left behind is unreferenced garbage, never visible.
fn settle<T>(
    committed: Result<Option<T>, BucketError>,
    new_body: &Path,
    old_body: impl FnOnce(T) -> PathBuf,
) -> Result<(), BucketError> {
    match committed {
        Ok(replaced) => {
            if let Some(old) = replaced {
                let _ = std::fs::remove_file(old_body(old));
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(new_body);
            Err(e)
        }
    }
}

/// `NoSuchBucket` unless `buckets` (the `s3_buckets` table, in any transaction) has `bucket`.
fn require_bucket(
    buckets: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
) -> Result<(), BucketError> {
    if buckets.get(bucket).map_err(storage)?.is_none() {
        return Err(BucketError::NoSuchBucket);
    }
    Ok(())
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
            require_bucket(&buckets, name)?;
            let mut inside = objects.range((name, "")..).map_err(storage)?;
            if let Some(first) = inside.next() {
                let (k, _) = first.map_err(storage)?;
                if k.value().0 == name {
                    return Err(BucketError::NotEmpty);
                }
            }
            buckets.remove(name).map_err(storage)?;
        }
        // Multipart uploads in progress go with the bucket.
        let pending = self.uploads_of(&txn, name)?;
        for (key, upload_id) in &pending {
            forget_upload(&txn, name, key, upload_id)?;
        }
        txn.commit().map_err(storage)?;
        // Leftover unreferenced bodies (from interrupted uploads) go with the bucket.
        let bodies = self.object_bodies();
        let _ = std::fs::remove_dir_all(bodies.root.join(name));
        for (_, upload_id) in &pending {
            let _ = std::fs::remove_dir_all(bodies.upload_dir(upload_id));
        }
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
}
