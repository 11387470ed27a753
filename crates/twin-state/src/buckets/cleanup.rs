//! What a crash leaves among the bodies, removed when the store opens.
//!
//! Every body, part and assembled object is written to a file first and recorded after, so a
//! process killed in between leaves files no record names: bodies being received under
//! `.receiving/`, part files (or whole upload directories) under `.multipart/` that no upload
//! owns, bodies under a bucket's directory that no object names (a replaced body not yet
//! removed, an adopted body whose transaction never committed), and the directory of a bucket
//! deleted just before the kill. None of them is visible through S3; they only take space.
//!
//! The store is opened by one process at a time (redb locks the file), so at open nothing is in
//! flight: whatever the committed records do not name is garbage. Uploads in progress keep
//! their directory and the part files their records name, and can be completed after restart.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable};

use super::{
    is_valid_bucket_name, storage, BucketError, ObjectMeta, PartMeta, BUCKETS, MULTIPART_DIR,
    OBJECTS, OBJECTS_NAME, PARTS, PARTS_NAME, RECEIVING_DIR, UPLOADS,
};
use crate::db::{decode, Store};
use crate::error::StateError;

/// The files the committed records name, by directory.
#[derive(Default)]
struct Referenced {
    /// Bucket name → its objects' body ids.
    bodies: HashMap<String, HashSet<String>>,
    /// Upload id → its parts' file ids (uploads without parts have an empty set).
    parts: HashMap<String, HashSet<String>>,
}

fn referenced(store: &Store) -> Result<Referenced, BucketError> {
    let txn = store.db().begin_read().map_err(storage)?;
    let mut out = Referenced::default();
    for entry in txn
        .open_table(BUCKETS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (name, _) = entry.map_err(storage)?;
        out.bodies.insert(name.value().to_string(), HashSet::new());
    }
    for entry in txn
        .open_table(OBJECTS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (key, value) = entry.map_err(storage)?;
        let meta: ObjectMeta = decode(OBJECTS_NAME, value.value())?;
        out.bodies
            .entry(key.value().0.to_string())
            .or_default()
            .insert(meta.body_id);
    }
    for entry in txn
        .open_table(UPLOADS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (key, _) = entry.map_err(storage)?;
        out.parts.entry(key.value().2.to_string()).or_default();
    }
    for entry in txn
        .open_table(PARTS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (key, value) = entry.map_err(storage)?;
        let part: PartMeta = decode(PARTS_NAME, value.value())?;
        out.parts
            .entry(key.value().0.to_string())
            .or_default()
            .insert(part.body_id);
    }
    Ok(out)
}

/// Removes every file and directory under the bodies' root that no committed record names
/// (see the module documentation). Entries that are not the store's (a name no bucket can
/// have, outside the two dotted areas) are left alone.
///
/// # Errors
///
/// When the records cannot be read or a leftover cannot be removed.
pub(crate) fn remove_leftovers(store: &Store) -> Result<(), StateError> {
    let root = store.object_bodies().root;
    let referenced = referenced(store).map_err(|e| match e {
        BucketError::State(e) => e,
        other => StateError::Storage(other.to_string()),
    })?;
    let run = || -> io::Result<()> {
        remove_all_but(&root.join(RECEIVING_DIR), &HashSet::new())?;
        for (name, is_dir) in entries(&root.join(MULTIPART_DIR))? {
            let path = root.join(MULTIPART_DIR).join(&name);
            match referenced.parts.get(&name) {
                Some(files) if is_dir => remove_all_but(&path, files)?,
                _ => remove(&path, is_dir)?,
            }
        }
        for (name, is_dir) in entries(&root)? {
            if name == MULTIPART_DIR || name == RECEIVING_DIR || !is_valid_bucket_name(&name) {
                continue;
            }
            let path = root.join(&name);
            match referenced.bodies.get(&name) {
                Some(bodies) if is_dir => remove_all_but(&path, bodies)?,
                _ => remove(&path, is_dir)?,
            }
        }
        Ok(())
    };
    run().map_err(|e| {
        StateError::Storage(format!("removing leftovers under {}: {e}", root.display()))
    })
}

/// The names in `dir` and whether each is a directory; none when `dir` does not exist.
fn entries(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry?;
        // A name that is not UTF-8 is no id of ours: treated as unreferenced.
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.file_type()?.is_dir()));
    }
    Ok(out)
}

/// Removes everything in `dir` whose name is not in `keep`.
fn remove_all_but(dir: &Path, keep: &HashSet<String>) -> io::Result<()> {
    for (name, is_dir) in entries(dir)? {
        // Only files are ever named by a record: a directory here is a leftover.
        if is_dir || !keep.contains(&name) {
            remove(&dir.join(&name), is_dir)?;
        }
    }
    Ok(())
}

fn remove(path: &Path, is_dir: bool) -> io::Result<()> {
    let removed = if is_dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{md5_hex, NewObject, NewUpload};
    use super::*;

    #[test]
    fn a_crash_s_leftovers_go_and_uploads_in_progress_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (upload, part_file, body_file) = {
            let s = Store::open(dir.path()).unwrap();
            s.create_bucket("pics", "111111111111", "us-east-1")
                .unwrap();
            let temp = s.object_bodies().temp_path().unwrap();
            std::fs::write(&temp, b"kept").unwrap();
            let meta = s
                .put_object(
                    "pics",
                    &NewObject {
                        key: "k".into(),
                        size: 4,
                        etag: md5_hex(b"kept"),
                        ..Default::default()
                    },
                    &temp,
                )
                .unwrap();
            let upload = s
                .create_upload(
                    "pics",
                    &NewUpload {
                        key: "big".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
            let temp = s.object_bodies().temp_path().unwrap();
            std::fs::write(&temp, b"part one").unwrap();
            let part = s
                .put_part(
                    "pics",
                    "big",
                    &upload.upload_id,
                    1,
                    8,
                    &md5_hex(b"part one"),
                    &temp,
                )
                .unwrap();
            let bodies = s.object_bodies();
            (
                upload.clone(),
                bodies.part_path(&upload.upload_id, &part.body_id),
                bodies.body_path("pics", &meta.body_id),
            )
        };
        // What a kill at each step leaves behind.
        let root = dir.path().join("s3");
        let strays = [
            root.join(".receiving/upload-half"),
            root.join(".multipart")
                .join(&upload.upload_id)
                .join("p-unrecorded"),
            root.join(".multipart/0000gone/p-1"),
            root.join("pics/b-unrecorded"),
            root.join("deleted-bucket/b-1"),
        ];
        for stray in &strays {
            std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
            std::fs::write(stray, b"stray").unwrap();
        }
        std::fs::create_dir_all(root.join(".receiving/a-dir")).unwrap();
        // Not the store's: a name no bucket can have.
        std::fs::write(root.join("README"), b"mine").unwrap();

        let s = Store::open(dir.path()).unwrap();
        for stray in &strays {
            assert!(!stray.exists(), "{} is left", stray.display());
        }
        assert!(!root.join(".multipart/0000gone").exists());
        assert!(!root.join("deleted-bucket").exists());
        assert!(!root.join(".receiving/a-dir").exists());
        assert!(root.join(".receiving").is_dir());
        assert!(root.join("README").exists());
        assert_eq!(std::fs::read(&body_file).unwrap(), b"kept");
        assert_eq!(std::fs::read(&part_file).unwrap(), b"part one");

        // The upload in progress completes after the restart.
        let meta = s
            .complete_upload(
                "pics",
                "big",
                &upload.upload_id,
                &[(1, md5_hex(b"part one"))],
            )
            .unwrap();
        let body = std::fs::read(s.object_bodies().body_path("pics", &meta.body_id)).unwrap();
        assert_eq!(body, b"part one");
    }
}
