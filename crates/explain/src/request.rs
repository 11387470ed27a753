//! Building a scenario from command-line options and policy files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iam::scenario::{
    ContextSpec, PolicyDocument, PrincipalSpec, ResourceKind, Scenario, ScenarioError,
    ScenarioPolicies, ScenarioRequest,
};
use serde_json::Value;

/// The options of `rolechain explain` for an offline evaluation.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExplainArgs {
    /// A scenario file (policies and request as JSON); the options below add to or override it.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// An identity-based policy file (repeatable).
    #[arg(long = "identity-policy", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// A resource-based policy file, e.g. a bucket policy.
    #[arg(
        long = "resource-policy",
        value_name = "FILE",
        conflicts_with = "trust"
    )]
    pub resource_policy: Option<PathBuf>,
    /// A role trust policy file (the resource policy of sts:AssumeRole*).
    #[arg(long = "trust-policy", value_name = "FILE", id = "trust")]
    pub trust_policy: Option<PathBuf>,
    /// A permissions boundary policy file.
    #[arg(long, value_name = "FILE")]
    pub boundary: Option<PathBuf>,
    /// A session policy file (repeatable).
    #[arg(long = "session-policy", value_name = "FILE")]
    pub session: Vec<PathBuf>,
    /// The caller: an IAM/STS ARN, a 12-digit account (its root user), `anonymous`,
    /// `service:NAME` or `federated:PROVIDER`.
    #[arg(long)]
    pub principal: Option<String>,
    /// The action, e.g. s3:GetObject.
    #[arg(long)]
    pub action: Option<String>,
    /// The resource ARN (default `*`).
    #[arg(long)]
    pub resource: Option<String>,
    /// The account that owns the resource (makes the request cross-account when it differs).
    #[arg(long = "resource-account", value_name = "ACCOUNT")]
    pub resource_account: Option<String>,
    /// A context key, `KEY=VALUE`; a JSON list value (`KEY=["a","b"]`) makes it multi-valued.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// A principal tag, `KEY=VALUE` (repeatable).
    #[arg(long = "principal-tag", value_name = "KEY=VALUE")]
    pub principal_tags: Vec<String>,
    /// aws:SourceIp.
    #[arg(long = "source-ip", value_name = "IP")]
    pub source_ip: Option<String>,
    /// aws:CurrentTime as RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    /// Print the decision and trace as JSON.
    #[arg(long)]
    pub json: bool,
    /// Instead of evaluating offline, print the most recent denial of a running twin (from its
    /// decision log, `GET /_rolechain/decisions`) with its trace.
    #[arg(
        long,
        conflicts_with_all = [
            "request", "identity", "resource_policy", "trust", "boundary", "session",
            "principal", "action", "resource", "resource_account", "context",
            "principal_tags", "source_ip", "time",
        ]
    )]
    pub last_denied: bool,
    /// The twin `--last-denied` asks; default: the one `rolechain up` recorded in `--data-dir`,
    /// else `http://127.0.0.1:4555`.
    #[arg(long, value_name = "URL", env = "ROLECHAIN_ENDPOINT")]
    pub twin: Option<String>,
    /// The data directory of the `rolechain up` to ask (`--last-denied`).
    #[arg(
        long,
        value_name = "DIR",
        env = "ROLECHAIN_DATA_DIR",
        default_value = ".rolechain"
    )]
    pub data_dir: std::path::PathBuf,
}

/// Where `rolechain up` serves by default.
pub const DEFAULT_TWIN_URL: &str = "http://127.0.0.1:4555";

/// Why the inputs cannot be turned into a scenario.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A policy or scenario file is not JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The scenario itself is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A required option is missing.
    #[error("missing {0}: give it as an option or in the --request file")]
    Missing(&'static str),
    /// A `KEY=VALUE` option without `=`.
    #[error("{option} expects KEY=VALUE, got '{value}'")]
    KeyValue {
        /// The option name.
        option: &'static str,
        /// What was given.
        value: String,
    },
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a policy file. The JSON is kept as text so that syntax errors are reported by the
/// policy parser, in IAM's words.
fn policy_file(path: &Path, kind: Option<ResourceKind>) -> Result<PolicyDocument, InputError> {
    Ok(PolicyDocument {
        name: path.display().to_string(),
        kind,
        document: Value::String(read(path)?),
    })
}

fn key_value<'a>(option: &'static str, text: &'a str) -> Result<(&'a str, &'a str), InputError> {
    text.split_once('=').ok_or_else(|| InputError::KeyValue {
        option,
        value: text.to_string(),
    })
}

impl ExplainArgs {
    /// Builds the scenario: the `--request` file first, then the options on top.
    pub fn scenario(&self) -> Result<Scenario, InputError> {
        let base = match &self.request {
            Some(path) => {
                let text = read(path)?;
                Some(serde_json::from_str::<Scenario>(&text).map_err(|source| {
                    InputError::Json {
                        path: path.clone(),
                        source,
                    }
                })?)
            }
            None => None,
        };
        let (mut policies, base_request) = match base {
            Some(s) => (s.policies, Some(s.request)),
            None => (ScenarioPolicies::default(), None),
        };
        for path in &self.identity {
            policies.identity.push(policy_file(path, None)?);
        }
        if let Some(path) = &self.resource_policy {
            policies.resource = Some(policy_file(path, Some(ResourceKind::Resource))?);
        }
        if let Some(path) = &self.trust_policy {
            policies.resource = Some(policy_file(path, Some(ResourceKind::Trust))?);
        }
        if let Some(path) = &self.boundary {
            policies.boundary = Some(policy_file(path, None)?);
        }
        for path in &self.session {
            policies.session.push(policy_file(path, None)?);
        }
        let mut request = match base_request {
            Some(r) => r,
            None => ScenarioRequest {
                principal: PrincipalSpec::Short(
                    self.principal
                        .clone()
                        .ok_or(InputError::Missing("--principal"))?,
                ),
                action: self.action.clone().ok_or(InputError::Missing("--action"))?,
                resource: "*".to_string(),
                resource_account: None,
                context: BTreeMap::new(),
                principal_tags: BTreeMap::new(),
                time: None,
                source_ip: None,
                canonical_user: None,
            },
        };
        if let Some(p) = &self.principal {
            request.principal = PrincipalSpec::Short(p.clone());
        }
        if let Some(a) = &self.action {
            request.action = a.clone();
        }
        if let Some(r) = &self.resource {
            request.resource = r.clone();
        }
        if let Some(a) = &self.resource_account {
            request.resource_account = Some(a.clone());
        }
        if let Some(ip) = &self.source_ip {
            request.source_ip = Some(ip.clone());
        }
        if let Some(t) = &self.time {
            request.time = Some(t.clone());
        }
        for item in &self.context {
            let (key, value) = key_value("--context", item)?;
            let spec = match serde_json::from_str::<Vec<Value>>(value) {
                Ok(list) if value.trim_start().starts_with('[') => ContextSpec::Many(list),
                _ => ContextSpec::One(Value::String(value.to_string())),
            };
            request.context.insert(key.to_string(), spec);
        }
        for item in &self.principal_tags {
            let (key, value) = key_value("--principal-tag", item)?;
            request
                .principal_tags
                .insert(key.to_string(), value.to_string());
        }
        Ok(Scenario { policies, request })
    }
}
