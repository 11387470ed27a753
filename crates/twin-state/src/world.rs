//! The world file: YAML that seeds a new store (schema in `WORLD.md`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::accounts::ADMIN_POLICY;
use crate::db::{Store, Tx};
use crate::error::StateError;
use crate::ids::IdSource;
use crate::model::{AccessKey, Tag};
use crate::oidc_providers::CreateOidcProvider;
use crate::policies::CreatePolicy;
use crate::roles::CreateRole;

const DEFAULT_WORLD: &str = include_str!("world/default.yaml");

/// A world: the accounts and everything in them that a new store starts with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// When set, every generated id and key derives from it: the same file seeds the same
    /// state (for tests and reproducible demos; the generated secrets are then not secret).
    #[serde(default)]
    pub seed: Option<String>,
    /// The accounts.
    pub accounts: Vec<WorldAccount>,
}

/// One account of a world.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldAccount {
    /// The 12-digit account id (quote it in YAML).
    pub id: String,
    /// The account alias.
    pub alias: String,
    /// The bootstrap `admin` user's keys.
    #[serde(default)]
    pub admin: WorldAdmin,
    /// Customer managed policies.
    #[serde(default)]
    pub managed_policies: Vec<WorldPolicy>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<WorldRole>,
    /// IAM OIDC identity providers.
    #[serde(default)]
    pub oidc_providers: Vec<WorldOidcProvider>,
    /// EKS clusters.
    #[serde(default)]
    pub clusters: Vec<WorldCluster>,
    /// S3 buckets this account owns, with their objects.
    #[serde(default)]
    pub buckets: Vec<WorldBucket>,
}

/// The bootstrap `admin` user of an account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldAdmin {
    /// Its access keys; when empty, one is generated.
    #[serde(default)]
    pub access_keys: Vec<WorldAccessKey>,
}

/// A fixed access key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldAccessKey {
    /// `AKIA` + 16 uppercase letters or digits.
    pub access_key_id: String,
    /// 40 characters.
    pub secret_access_key: String,
}

/// A customer managed policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldPolicy {
    /// The name.
    pub name: String,
    /// The path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The document: a YAML mapping, or a string of JSON.
    pub document: Value,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldRole {
    /// The name.
    pub name: String,
    /// The path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session in seconds (default 3600).
    #[serde(default)]
    pub max_session_duration: Option<u32>,
    /// The trust policy: a YAML mapping, or a string of JSON.
    pub trust_policy: Value,
    /// Inline policies, name → document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, Value>,
    /// Managed policies to attach: ARNs, or names of this account's policies.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// The permissions boundary: an ARN, or the name of one of this account's policies.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Tags, key → value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An IAM OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldOidcProvider {
    /// The issuer URL, `https://…`.
    pub url: String,
    /// Accepted audiences (`sts.amazonaws.com` for IRSA).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Certificate thumbprints.
    #[serde(default)]
    pub thumbprints: Vec<String>,
    /// Tags, key → value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An EKS cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldCluster {
    /// The name.
    pub name: String,
    /// The region.
    pub region: String,
    /// The OIDC issuer URL.
    pub issuer: String,
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldBucket {
    /// The name (S3's naming rules).
    pub name: String,
    /// The region (default `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// The bucket policy: a YAML mapping, or a string of JSON.
    #[serde(default)]
    pub policy: Option<Value>,
    /// Objects.
    #[serde(default)]
    pub objects: Vec<WorldObject>,
}

/// An S3 object; exactly one of `text` and `base64` gives its content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldObject {
    /// The key.
    pub key: String,
    /// `Content-Type` (default `binary/octet-stream`, S3's).
    #[serde(default)]
    pub content_type: Option<String>,
    /// The content as text (stored as UTF-8).
    #[serde(default)]
    pub text: Option<String>,
    /// The content, base64 (standard alphabet, padded).
    #[serde(default)]
    pub base64: Option<String>,
}

/// A world that cannot be read or seeded.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The YAML does not fit the schema (the message names the field and line).
    #[error("invalid world file: {0}")]
    Parse(String),
    /// The file could not be read.
    #[error("cannot read world file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An entity of the world was refused, e.g. a trust policy naming a role that is not there.
    #[error("world {at}: {source} ({code})", code = source.code())]
    Invalid {
        /// Which entity, e.g. `account 111111111111 role S3_Pics`.
        at: String,
        /// IAM's error.
        source: StateError,
    },
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl World {
    /// Parses a world from YAML. Unknown fields are rejected with their name and line.
    pub fn from_yaml(text: &str) -> Result<World, WorldError> {
        serde_saphyr::from_str(text).map_err(|e| WorldError::Parse(e.to_string()))
    }

    /// Reads and parses a world file.
    pub fn load(path: impl AsRef<Path>) -> Result<World, WorldError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Io {
            path: path.display().to_string(),
            source,
        })?;
        World::from_yaml(&text)
    }

    /// The default world: account `developer` (111111111111) with the EKS cluster
    /// `development-cluster` in us-east-1, and account `shared_content` (222222222222); each with
    /// an `admin` user and a generated access key. `issuer_for(cluster_name)` gives each
    /// cluster's OIDC issuer URL: the twin serves its issuers at paths shaped like EKS's
    /// (`{base}/id/{ID}`), which only the server knows.
    pub fn default_world(issuer_for: impl Fn(&str) -> String) -> World {
        let mut world = match World::from_yaml(DEFAULT_WORLD) {
            Ok(w) => w,
            // The embedded file is tested to parse; this arm keeps a library from panicking.
            Err(_) => World {
                seed: None,
                accounts: Vec::new(),
            },
        };
        for account in &mut world.accounts {
            for cluster in &mut account.clusters {
                cluster.issuer = issuer_for(&cluster.name);
            }
        }
        world
    }
}

/// A policy document given in YAML as a mapping or as a JSON string, as JSON text.
fn document_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter().map(|(k, v)| Tag::new(k, v)).collect()
}

fn policy_arn(account: &str, reference: &str, world: &WorldAccount) -> String {
    if reference.starts_with("arn:") {
        return reference.to_string();
    }
    let path = world
        .managed_policies
        .iter()
        .find(|p| p.name == reference)
        .and_then(|p| p.path.clone())
        .unwrap_or_else(|| "/".to_string());
    format!("arn:aws:iam::{account}:policy{path}{reference}")
}

fn at(at: String) -> impl FnOnce(StateError) -> WorldError {
    move |source| WorldError::Invalid { at, source }
}

fn is_invalid_principal(e: &StateError) -> bool {
    matches!(e, StateError::MalformedPolicyDocument(m) if m.starts_with("Invalid principal"))
}

fn seed(tx: &mut Tx<'_>, world: &World) -> Result<(), WorldError> {
    for a in &world.accounts {
        tx.create_account(&a.id, &a.alias)
            .map_err(at(format!("account {}", a.id)))?;
        let here = format!("account {} user admin", a.id);
        tx.create_user(
            &a.id,
            "admin",
            BTreeMap::from([("AdministratorAccess".to_string(), ADMIN_POLICY.to_string())]),
        )
        .map_err(at(here.clone()))?;
        if a.admin.access_keys.is_empty() {
            tx.create_access_key(&a.id, "admin").map_err(at(here))?;
        } else {
            for k in &a.admin.access_keys {
                let key = AccessKey {
                    access_key_id: k.access_key_id.clone(),
                    secret_access_key: k.secret_access_key.clone(),
                    account: a.id.clone(),
                    principal: "admin".into(),
                    created: tx_now(tx),
                };
                tx.add_access_key(key).map_err(at(format!(
                    "account {} access key {}",
                    a.id, k.access_key_id
                )))?;
            }
        }
    }
    for a in &world.accounts {
        for p in &a.managed_policies {
            tx.create_policy(&CreatePolicy {
                account: a.id.clone(),
                name: p.name.clone(),
                path: p.path.clone(),
                document: document_text(&p.document),
                description: p.description.clone(),
                tags: Vec::new(),
            })
            .map_err(at(format!("account {} managed policy {}", a.id, p.name)))?;
        }
        for p in &a.oidc_providers {
            tx.create_oidc_provider(&CreateOidcProvider {
                account: a.id.clone(),
                url: p.url.clone(),
                client_ids: p.client_ids.clone(),
                thumbprints: p.thumbprints.clone(),
                tags: tags(&p.tags),
            })
            .map_err(at(format!("account {} OIDC provider {}", a.id, p.url)))?;
        }
        for c in &a.clusters {
            tx.create_cluster(&crate::model::NewCluster::new(
                &a.id, &c.region, &c.name, &c.issuer,
            ))
            .map_err(at(format!("account {} cluster {}", a.id, c.name)))?;
        }
    }
    // Trust policies may name roles of the world, which must exist first (IAM stores them by
    // unique id). Roles whose trust names a role not created yet wait for a later pass; a pass
    // that creates nothing means the reference is dangling (or circular) and is reported.
    let mut pending: Vec<(&WorldAccount, &WorldRole)> = world
        .accounts
        .iter()
        .flat_map(|a| a.roles.iter().map(move |r| (a, r)))
        .collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut first_error = None;
        let before = pending.len();
        for (a, r) in pending {
            let here = format!("account {} role {}", a.id, r.name);
            let req = CreateRole {
                account: a.id.clone(),
                name: r.name.clone(),
                path: r.path.clone(),
                assume_role_policy: document_text(&r.trust_policy),
                description: r.description.clone(),
                max_session_duration: r.max_session_duration,
                permissions_boundary: r
                    .permissions_boundary
                    .as_deref()
                    .map(|b| policy_arn(&a.id, b, a)),
                tags: tags(&r.tags),
            };
            match tx.create_role(&req) {
                Ok(_) => {}
                Err(e) if is_invalid_principal(&e) => {
                    first_error.get_or_insert(WorldError::Invalid {
                        at: here,
                        source: e,
                    });
                    waiting.push((a, r));
                    continue;
                }
                Err(e) => {
                    return Err(WorldError::Invalid {
                        at: here,
                        source: e,
                    })
                }
            }
            for (name, doc) in &r.inline_policies {
                tx.put_role_policy(&a.id, &r.name, name, &document_text(doc))
                    .map_err(at(format!("{here} inline policy {name}")))?;
            }
            for p in &r.managed_policies {
                tx.attach_role_policy(&a.id, &r.name, &policy_arn(&a.id, p, a))
                    .map_err(at(format!("{here} managed policy {p}")))?;
            }
        }
        if waiting.len() == before {
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        pending = waiting;
    }
    Ok(())
}

/// Buckets and objects, after the IAM entities (a bucket policy may name the world's roles).
fn seed_buckets(
    txn: &redb::WriteTransaction,
    bodies: &crate::buckets::ObjectBodies,
    world: &World,
) -> Result<(), WorldError> {
    let mut seeds = Vec::new();
    for a in &world.accounts {
        for b in &a.buckets {
            let here = format!("account {} bucket {}", a.id, b.name);
            let policy = match &b.policy {
                Some(doc) => {
                    let text = document_text(doc);
                    iam::Policy::parse(&text, iam::PolicyKind::Resource).map_err(|e| {
                        WorldError::Invalid {
                            at: format!("{here} policy"),
                            source: e.into(),
                        }
                    })?;
                    Some(text)
                }
                None => None,
            };
            let mut objects = Vec::new();
            for o in &b.objects {
                if o.key.is_empty() || o.key.len() > 1024 {
                    return Err(WorldError::Parse(format!(
                        "{here}: object keys are 1 to 1024 bytes long, not {}",
                        o.key.len()
                    )));
                }
                let content = match (&o.text, &o.base64) {
                    (Some(text), None) => text.as_bytes().to_vec(),
                    (None, Some(encoded)) => {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded.split_whitespace().collect::<String>())
                            .map_err(|e| {
                                WorldError::Parse(format!("{here} object {}: base64: {e}", o.key))
                            })?
                    }
                    _ => {
                        return Err(WorldError::Parse(format!(
                            "{here} object {}: give exactly one of text and base64",
                            o.key
                        )))
                    }
                };
                objects.push((o.key.as_str(), o.content_type.as_deref(), content));
            }
            seeds.push(crate::buckets::SeedBucket {
                name: &b.name,
                owner: &a.id,
                region: b.region.as_deref().unwrap_or("us-east-1"),
                policy,
                objects,
            });
        }
    }
    crate::buckets::seed_buckets(txn, bodies, &seeds).map_err(|(at, e)| match e {
        crate::buckets::BucketError::State(source) => WorldError::Invalid { at, source },
        other => WorldError::Parse(format!("{at}: {other} ({})", other.code())),
    })
}

fn tx_now(tx: &Tx<'_>) -> time::OffsetDateTime {
    tx.now()
}

impl Store {
    /// Seeds the store from `world` if it holds no account yet, in one transaction: either the
    /// whole world is stored or nothing is. Returns whether it seeded.
    pub fn seed_if_empty(&self, world: &World) -> Result<bool, WorldError> {
        let ids = match &world.seed {
            Some(s) => IdSource::seeded(s),
            None => IdSource::Os,
        };
        let bodies = self.object_bodies();
        self.write_with_raw(ids, |tx, txn| {
            if !tx.is_empty()? {
                return Ok(false);
            }
            seed(tx, world)?;
            seed_buckets(txn, &bodies, world)?;
            Ok(true)
        })
    }
}
