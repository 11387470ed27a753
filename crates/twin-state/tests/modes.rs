//! The store's files are its owner's only: the database holds every secret access key.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use twin_state::buckets::md5_hex;
use twin_state::{NewObject, NewUpload, Store};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory under `root` (and `root`) and every file, with its mode.
fn walk(root: &Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    let mut out = vec![(root.to_path_buf(), true, mode(root))];
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_dir = path.is_dir();
            out.push((path.clone(), is_dir, mode(&path)));
            if is_dir {
                pending.push(path);
            }
        }
    }
    out
}

fn assert_private(root: &Path) {
    let entries = walk(root);
    assert!(entries
        .iter()
        .any(|(p, _, _)| p.ends_with("twin-state.redb")));
    for (path, is_dir, mode) in entries {
        let wanted = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, wanted, "{} is {mode:o}", path.display());
    }
}

fn fill(store: &Store) {
    store
        .create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    let temp = store.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, b"body").unwrap();
    store
        .put_object(
            "pics",
            &NewObject {
                key: "k".into(),
                size: 4,
                etag: md5_hex(b"body"),
                ..Default::default()
            },
            &temp,
        )
        .unwrap();
    let upload = store
        .create_upload(
            "pics",
            &NewUpload {
                key: "big".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let temp = store.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, b"part").unwrap();
    store
        .put_part(
            "pics",
            "big",
            &upload.upload_id,
            1,
            4,
            &md5_hex(b"part"),
            &temp,
        )
        .unwrap();
}

#[test]
fn a_new_store_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("data/state");
    let store = Store::open(&state).unwrap();
    fill(&store);
    // The test harness runs under the user's umask (022 usually): a mode left to it fails here.
    assert_private(&state);
    assert_eq!(mode(&dir.path().join("data")), 0o700);
}

#[test]
fn an_older_store_is_closed_up_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fill(&Store::open(&state).unwrap());
    for (path, is_dir, _) in walk(&state) {
        let loose = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let _store = Store::open(&state).unwrap();
    assert_private(&state);
}
