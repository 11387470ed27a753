//! The local data directory shared by `rolechain up` and `rolechain cluster token`.
//!
//! ```text
//! <data-dir>/state/          the twin's redb store (one process at a time)
//! <data-dir>/oidc/<cluster>/ one directory per local cluster issuer:
//!     issuer.json            the cluster's name, account, region and issuer URL
//!     keys/                  the issuer's signing keys (0700, files 0600)
//! <data-dir>/aws/config      AWS CLI/SDK profiles, one per account alias, pointing at the twin
//! <data-dir>/aws/credentials the admin access keys of each account (0600)
//! ```
//!
//! The issuer directories are plain files so that `cluster token` works while `up` holds the
//! store's lock.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// The default `--data-dir`, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".rolechain";

/// What `up` records about a local cluster's issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerRecord {
    pub cluster: String,
    pub account: String,
    pub region: String,
    pub issuer_url: String,
}

pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

pub fn issuer_dir(data_dir: &Path, record: &IssuerRecord) -> PathBuf {
    data_dir.join("oidc").join(format!(
        "{}-{}-{}",
        record.account, record.region, record.cluster
    ))
}

pub fn key_dir(issuer_dir: &Path) -> PathBuf {
    issuer_dir.join("keys")
}

pub fn write_issuer_record(dir: &Path, record: &IssuerRecord) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("issuer.json");
    let text = serde_json::to_string_pretty(record)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The issuer directories of local clusters named `cluster` (optionally in `account`).
pub fn find_issuers(
    data_dir: &Path,
    cluster: &str,
    account: Option<&str>,
) -> anyhow::Result<Vec<(PathBuf, IssuerRecord)>> {
    let root = data_dir.join("oidc");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no local clusters in {}: run `rolechain up --data-dir {}` once to create them",
            data_dir.display(),
            data_dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let dir = entry?.path();
        let path = dir.join("issuer.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let record: IssuerRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a rolechain issuer record", path.display()))?;
        if record.cluster == cluster && account.is_none_or(|a| a == record.account) {
            found.push((dir, record));
        }
    }
    Ok(found)
}

/// Writes `path` readable by the owner only: these files hold secret keys.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        use std::os::unix::fs::PermissionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        // An existing file keeps its old mode on open; make sure it is private.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}
