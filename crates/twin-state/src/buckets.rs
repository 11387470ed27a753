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
        self.store_object(bucket, object, temp, |_| Ok(()))
    }

    /// Adopts `temp` as `object`'s body and records it in one transaction with `also` (which
    /// may refuse, undoing everything); the replaced body is removed after the commit.
    fn store_object(
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

    /// The (key, upload id) of every multipart upload of `bucket`, in `txn`.
    fn uploads_of(
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
    /// whose bytes have been written to `temp` (a path from [`ObjectBodies::temp_path`],
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
    fn a_bucket_named_like_the_receiving_area_does_not_share_it() {
        let (_d, s) = store();
        let bodies = s.object_bodies();
        s.create_bucket("tmp", "111111111111", "us-east-1").unwrap();
        let receiving = bodies.temp_path().unwrap();
        std::fs::write(&receiving, b"half an upload").unwrap();
        s.delete_bucket("tmp").unwrap();
        assert_eq!(std::fs::read(&receiving).unwrap(), b"half an upload");
        assert!(!receiving.starts_with(bodies.body_path("tmp", "")));
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

    fn part(store: &Store, upload: &Upload, number: u32, body: &[u8]) -> PartMeta {
        let temp = store.object_bodies().temp_path().unwrap();
        std::fs::write(&temp, body).unwrap();
        store
            .put_part(
                "pics",
                &upload.key,
                &upload.upload_id,
                number,
                body.len() as u64,
                &md5_hex(body),
                &temp,
            )
            .unwrap()
    }

    #[test]
    fn multipart_uploads_survive_a_restart_and_complete_into_one_object() {
        let dir = tempfile::tempdir().unwrap();
        let first = vec![b'a'; MIN_PART_SIZE as usize];
        let second = b"the end".to_vec();
        let upload = {
            let s = Store::open(dir.path()).unwrap();
            s.create_bucket("pics", "111111111111", "us-east-1")
                .unwrap();
            let upload = s
                .create_upload(
                    "pics",
                    &NewUpload {
                        key: "big.bin".into(),
                        owner: "111111111111".into(),
                        initiator: "arn:aws:iam::111111111111:user/admin".into(),
                        content_type: Some("application/x-test".into()),
                        ..Default::default()
                    },
                )
                .unwrap();
            // A part uploaded twice keeps the second body only.
            let replaced = part(&s, &upload, 1, b"replaced");
            part(&s, &upload, 1, &first);
            assert!(!s
                .object_bodies()
                .part_path(&upload.upload_id, &replaced.body_id)
                .exists());
            upload
        };
        let s = Store::open(dir.path()).unwrap();
        let listed = s.list_uploads("pics", "", None, None, None, 1000).unwrap();
        assert_eq!(listed.uploads, vec![upload.clone()]);
        part(&s, &upload, 2, &second);
        let parts = s
            .list_parts("pics", "big.bin", &upload.upload_id, 0, 1)
            .unwrap();
        assert_eq!((parts.parts.len(), parts.truncated), (1, true));
        let rest = s
            .list_parts("pics", "big.bin", &upload.upload_id, 1, 1000)
            .unwrap();
        assert_eq!((rest.parts[0].part_number, rest.truncated), (2, false));

        let listed = |numbers: &[(u32, &[u8])]| -> Vec<(u32, String)> {
            numbers.iter().map(|(n, b)| (*n, md5_hex(b))).collect()
        };
        let id = upload.upload_id.as_str();
        let complete = |parts: &[(u32, String)]| s.complete_upload("pics", "big.bin", id, parts);
        assert!(matches!(
            complete(&listed(&[(2, &second), (1, &first)])),
            Err(BucketError::InvalidPartOrder)
        ));
        assert!(matches!(
            complete(&listed(&[(1, &first), (2, b"other")])),
            Err(BucketError::InvalidPart)
        ));
        assert!(matches!(
            complete(&listed(&[(1, &first), (3, &second)])),
            Err(BucketError::InvalidPart)
        ));
        // Part 2 is too small to be followed by another.
        assert!(matches!(
            complete(&listed(&[(2, &second), (3, &second)])),
            Err(BucketError::InvalidPart)
        ));
        let meta = complete(&listed(&[(1, &first), (2, &second)])).unwrap();

        // S3's multipart ETag, computed independently.
        let mut digests = Md5::digest(&first).to_vec();
        digests.extend_from_slice(&Md5::digest(&second));
        assert_eq!(meta.etag, format!("{}-2", md5_hex(&digests)));
        assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
        let body = std::fs::read(s.object_bodies().body_path("pics", &meta.body_id)).unwrap();
        assert_eq!(body, [first.as_slice(), second.as_slice()].concat());
        // The upload is gone, with its part files.
        assert!(matches!(
            s.get_upload("pics", "big.bin", id),
            Err(BucketError::NoSuchUpload)
        ));
        assert!(!s.object_bodies().upload_dir(id).exists());
        assert!(matches!(
            complete(&listed(&[(1, &first)])),
            Err(BucketError::NoSuchUpload)
        ));
    }

    #[test]
    fn small_parts_before_the_last_are_refused_and_aborts_remove_parts() {
        let (_d, s) = store();
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        let new = NewUpload {
            key: "k".into(),
            ..Default::default()
        };
        let upload = s.create_upload("pics", &new).unwrap();
        let one = part(&s, &upload, 1, b"small");
        part(&s, &upload, 2, b"last");
        let err = s
            .complete_upload(
                "pics",
                "k",
                &upload.upload_id,
                &[(1, md5_hex(b"small")), (2, md5_hex(b"last"))],
            )
            .unwrap_err();
        assert!(matches!(err, BucketError::EntityTooSmall));
        // A single small part is a whole object.
        let other = s.create_upload("pics", &new).unwrap();
        assert!(other.upload_id > upload.upload_id, "ids follow creation");
        let listed = s.list_uploads("pics", "", None, None, None, 1).unwrap();
        assert!(listed.truncated);
        assert_eq!(
            listed.next_upload_id_marker.as_deref(),
            Some(upload.upload_id.as_str())
        );
        let next = s
            .list_uploads(
                "pics",
                "",
                None,
                Some("k"),
                listed.next_upload_id_marker.as_deref(),
                1,
            )
            .unwrap();
        assert_eq!(next.uploads[0].upload_id, other.upload_id);

        s.abort_upload("pics", "k", &upload.upload_id).unwrap();
        assert!(!s
            .object_bodies()
            .part_path(&upload.upload_id, &one.body_id)
            .exists());
        assert!(matches!(
            s.abort_upload("pics", "k", &upload.upload_id),
            Err(BucketError::NoSuchUpload)
        ));
        assert!(matches!(
            s.abort_upload("nope", "k", &upload.upload_id),
            Err(BucketError::NoSuchBucket)
        ));
        // Parts of a finished upload are refused and leave nothing behind.
        let temp = s.object_bodies().temp_path().unwrap();
        std::fs::write(&temp, b"late").unwrap();
        assert!(matches!(
            s.put_part(
                "pics",
                "k",
                &upload.upload_id,
                3,
                4,
                &md5_hex(b"late"),
                &temp
            ),
            Err(BucketError::NoSuchUpload)
        ));
        assert!(!temp.exists());
        // Deleting the bucket takes the remaining upload with it.
        s.delete_bucket("pics").unwrap();
        assert!(!s.object_bodies().upload_dir(&other.upload_id).exists());
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        assert!(s
            .list_uploads("pics", "", None, None, None, 1000)
            .unwrap()
            .uploads
            .is_empty());
    }
}
