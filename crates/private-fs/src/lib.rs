//! Files and directories only their owner can read: 0600 files in 0700 directories, whatever
//! the process's umask.
//!
//! rolechain's data directory holds secret access keys (the twin's store, the AWS credentials
//! file), OIDC signing keys and S3 object bodies; nothing of it is for other local users. The
//! modes are given when a file or directory is created (so there is no moment when it is more
//! open) and set again on ones that already exist, since `open` and `mkdir` leave an existing
//! entry's mode alone. [`tighten_tree`] closes up a directory written by an older version.
//!
//! On systems without Unix modes these are the plain `std::fs` calls.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let keys = dir.path().join("state/keys");
//! private_fs::create_dir_all(&keys)?;
//! private_fs::write_atomic(&keys.join("secret"), b"s3cr3t")?;
//! # #[cfg(unix)]
//! # {
//! use std::os::unix::fs::PermissionsExt as _;
//! let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
//! assert_eq!(mode(&keys), 0o700);
//! assert_eq!(mode(&keys.join("secret")), 0o600);
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

/// The mode of private files.
pub const FILE_MODE: u32 = 0o600;
/// The mode of private directories.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700, and sets 0700 on `dir` itself if it
/// already existed (parents that existed are left as they are: they may be the user's own,
/// like a home directory).
///
/// # Errors
///
/// When a directory cannot be created or its mode set.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        set_mode(dir, DIR_MODE)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Options that open a file for writing, creating it with mode 0600 (truncating an existing
/// one). For `tokio::fs`, convert with `tokio::fs::OpenOptions::from`.
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates (or truncates) `path` for writing with mode 0600; an existing file's mode is set
/// to 0600 too.
///
/// # Errors
///
/// When the file cannot be opened or its mode set.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = file_options().open(path)?;
    tighten_open_file(&file)?;
    Ok(file)
}

/// Sets mode 0600 on an open file (one [`file_options`] opened may have existed before).
///
/// # Errors
///
/// When the mode cannot be set.
pub fn tighten_open_file(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Sets mode 0600 on the file at `path` (a file written by someone else's code, about to be
/// kept).
///
/// # Errors
///
/// When the mode cannot be set.
pub fn make_file_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        set_mode(path, FILE_MODE)
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| ())
    }
}

/// Writes `contents` to `path` through a temporary file beside it (`<name>.tmp`, mode 0600
/// from the start), flushed to disk and renamed over `path`: the file is never briefly
/// readable by others, nor half-written after a crash. The parent directory must exist.
///
/// # Errors
///
/// When the temporary file cannot be written or renamed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file = create_file(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Whether `path` is closed to group and others (no bits of 0077). Always true without Unix
/// modes.
///
/// # Errors
///
/// When `path` cannot be looked at.
pub fn is_private(path: &Path) -> io::Result<bool> {
    Ok(mode(path)? & 0o077 == 0)
}

/// The permission bits of `path` (0 without Unix modes).
///
/// # Errors
///
/// When `path` cannot be looked at.
pub fn mode(path: &Path) -> io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| 0)
    }
}

/// Closes up everything under `root` (and `root`): directories to 0700, regular files to their
/// owner's bits only (0644 becomes 0600). Symbolic links are neither followed nor changed.
/// A missing `root` is nothing to do. Entries already private are not touched, so a second
/// run only reads.
///
/// # Errors
///
/// When a directory cannot be read or a mode set.
pub fn tighten_tree(root: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut pending = Vec::new();
    if meta.is_dir() {
        pending.push(root.to_path_buf());
    }
    tighten(root, &meta)?;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Removed while we walked (a request finishing): nothing left to close.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            tighten(&path, &meta)?;
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(())
}

fn tighten(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let current = meta.permissions().mode() & 0o7777;
        let wanted = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            current & 0o700
        } else {
            return Ok(());
        };
        if current != wanted {
            set_mode(path, wanted)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn set(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn existing_entries_are_closed_up() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a");
        std::fs::create_dir(&sub).unwrap();
        set(&sub, 0o755);
        create_dir_all(&sub).unwrap();
        assert_eq!(mode(&sub).unwrap(), 0o700);

        let file = sub.join("f");
        std::fs::write(&file, b"old").unwrap();
        set(&file, 0o644);
        drop(create_file(&file).unwrap());
        assert_eq!(mode(&file).unwrap(), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"");
    }

    #[test]
    fn a_tree_of_an_older_version_is_tightened_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let deep = root.join("state/s3/pics");
        std::fs::create_dir_all(&deep).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"not ours").unwrap();
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let body = deep.join("b-1");
        std::fs::write(&body, b"body").unwrap();
        set(&body, 0o644);
        let script = root.join("run");
        std::fs::write(&script, b"#!").unwrap();
        set(&script, 0o755);
        for d in [&root, &root.join("state"), &root.join("state/s3"), &deep] {
            set(d, 0o755);
        }

        tighten_tree(&root).unwrap();
        for d in [&root, &root.join("state"), &root.join("state/s3"), &deep] {
            assert_eq!(mode(d).unwrap(), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&body).unwrap(), 0o600);
        assert_eq!(mode(&script).unwrap(), 0o700);
        assert_eq!(
            mode(&outside).unwrap(),
            0o644,
            "a link's target is not ours"
        );
        assert!(is_private(&body).unwrap());
        tighten_tree(&dir.path().join("missing")).unwrap();
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, b"old").unwrap();
        set(&path, 0o644);
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path).unwrap(), 0o600);
        assert!(!dir.path().join("credentials.tmp").exists());
    }
}
