//! The local data directory shared by `rolechain up` and `rolechain cluster token`.
//!
//! ```text
//! <data-dir>/state/          the twin's redb store (one process at a time)
//! <data-dir>/oidc/<cluster>/ one directory per local cluster issuer:
//!     issuer.json            the cluster's name, account, region and issuer URL
//!     keys/                  the issuer's signing keys
//! <data-dir>/aws/config      AWS CLI/SDK profiles, one per account alias, pointing at the twin
//! <data-dir>/aws/credentials the admin access keys of each account
//! <data-dir>/endpoint        the URL the running (or last) `up` serves on
//! ```
//!
//! Everything in it is the owner's only: directories 0700, files 0600 (`private_fs`).
//!
//! The issuer directories are plain files so that `cluster token` works while `up` holds the
//! store's lock.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// The default `--data-dir`, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".rolechain";

/// The cluster of `up`'s examples (`world_examples`): never the one a command means when it
/// is not named, unless it is the only one.
pub const EXAMPLES_CLUSTER: &str = "rolechain-examples";

/// What `up` records about a local cluster's issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerRecord {
    pub cluster: String,
    pub account: String,
    pub region: String,
    pub issuer_url: String,
}

/// Where `up` records the URL it serves on, so other commands find the twin from the data
/// directory alone.
pub fn endpoint_file(data_dir: &Path) -> PathBuf {
    data_dir.join("endpoint")
}

/// Records `base_url` as the data directory's twin.
pub fn write_endpoint(data_dir: &Path, base_url: &str) -> anyhow::Result<()> {
    write_private(&endpoint_file(data_dir), base_url)
}

/// The twin a command should ask: `explicit` (a flag or `ROLECHAIN_ENDPOINT`), else the one
/// `up` recorded in `data_dir`, else the default address; with where it came from, for
/// messages.
pub fn twin_endpoint(explicit: Option<&str>, data_dir: &Path) -> (String, String) {
    if let Some(url) = explicit {
        return (
            url.trim_end_matches('/').to_string(),
            "--twin / ROLECHAIN_ENDPOINT".into(),
        );
    }
    let file = endpoint_file(data_dir);
    match std::fs::read_to_string(&file) {
        Ok(url) if url.trim().starts_with("http") => (
            url.trim().trim_end_matches('/').to_string(),
            file.display().to_string(),
        ),
        _ => (
            explain::DEFAULT_TWIN_URL.to_string(),
            format!(
                "the default address ({} has no endpoint file)",
                data_dir.display()
            ),
        ),
    }
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
    let text = serde_json::to_string_pretty(record)?;
    write_private(&dir.join("issuer.json"), &text)
}

/// Creates the data directory (0700) and closes up what an older version left open (0755
/// directories, 0644 files) outside the store, which tightens its own directory when it opens.
///
/// The issuers' key files are left to the issuer, which refuses one others could read rather
/// than trust it (older versions wrote them 0600 too).
pub fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    let closing = |path: &Path| format!("closing up {}", path.display());
    private_fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let aws = data_dir.join("aws");
    private_fs::tighten_tree(&aws).with_context(|| closing(&aws))?;
    let associations = data_dir.join("associations");
    private_fs::tighten_tree(&associations).with_context(|| closing(&associations))?;
    let oidc = data_dir.join("oidc");
    if !oidc.is_dir() {
        return Ok(());
    }
    private_fs::create_dir_all(&oidc).with_context(|| closing(&oidc))?;
    for entry in std::fs::read_dir(&oidc).with_context(|| closing(&oidc))? {
        let issuer = entry.with_context(|| closing(&oidc))?.path();
        if issuer.is_dir() {
            private_fs::create_dir_all(&issuer).with_context(|| closing(&issuer))?;
            let record = issuer.join("issuer.json");
            private_fs::tighten_tree(&record).with_context(|| closing(&record))?;
        }
    }
    Ok(())
}

/// The issuer directories of every local cluster, by account then name.
pub fn all_issuers(data_dir: &Path) -> anyhow::Result<Vec<(PathBuf, IssuerRecord)>> {
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
        found.push((dir, record));
    }
    found.sort_by(|(_, a), (_, b)| (&a.account, &a.cluster).cmp(&(&b.account, &b.cluster)));
    Ok(found)
}

impl IssuerRecord {
    /// The cluster's ARN, as EKS names it.
    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{}",
            self.region, self.account, self.cluster
        )
    }
}

/// The one local cluster a command means: `cluster` (in `account`, when given), or the only
/// one there is when no name is given. Errors list the clusters that exist.
pub fn find_cluster(
    data_dir: &Path,
    cluster: Option<&str>,
    account: Option<&str>,
) -> anyhow::Result<(PathBuf, IssuerRecord)> {
    let all = all_issuers(data_dir)?;
    let known = || {
        all.iter()
            .map(|(_, r)| format!("{} ({})", r.cluster, r.account))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut matching: Vec<&(PathBuf, IssuerRecord)> = all
        .iter()
        .filter(|(_, r)| {
            cluster.is_none_or(|c| c == r.cluster) && account.is_none_or(|a| a == r.account)
        })
        .collect();
    if cluster.is_none() && matching.len() > 1 {
        matching.retain(|(_, r)| r.cluster != EXAMPLES_CLUSTER);
    }
    match (matching.as_slice(), cluster) {
        ([one], _) => Ok((*one).clone()),
        ([], Some(name)) => bail!(
            "no local cluster named {name}{} in {}; the local clusters are: {}",
            account
                .map(|a| format!(" in account {a}"))
                .unwrap_or_default(),
            data_dir.display(),
            known()
        ),
        ([], None) => bail!("no local clusters in {}", data_dir.display()),
        (_, Some(name)) => bail!(
            "clusters named {name} exist in several accounts ({}); choose one with --account",
            known()
        ),
        (_, None) => bail!(
            "{} has several local clusters ({}); choose one with --cluster",
            data_dir.display(),
            known()
        ),
    }
}

/// Writes `path` readable by the owner only (0600, in 0700 directories): these files hold
/// secret keys, or say where they are.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        private_fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    private_fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
