//! `rolechain cluster apply|annotate|get`: a local cluster's ServiceAccounts with kubectl's
//! syntax, kept by the running twin (`/_rolechain/serviceaccounts`).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::local;
use crate::twin_api::{Answer, TwinApi};

/// The IRSA annotation `get -o wide` shows (the mutation webhook's default domain).
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Which local cluster, and where its twin runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The local cluster (default: the only one there is).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The cluster's account, when clusters of the same name exist in several accounts.
    #[arg(long)]
    pub account: Option<String>,
    /// The data directory `rolechain up` uses.
    #[arg(long, value_name = "DIR", env = "ROLECHAIN_DATA_DIR", default_value = local::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The running twin's URL (default: the one `up` recorded in the data directory).
    #[arg(long, value_name = "URL", env = "ROLECHAIN_ENDPOINT")]
    pub twin: Option<String>,
}

/// Options of `rolechain cluster apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: Target,
    /// A YAML or JSON file of ServiceAccounts (several documents, or a `List`); `-` for
    /// standard input.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The namespace of objects that name none.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Options of `rolechain cluster annotate`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnnotateArgs {
    #[command(flatten)]
    pub target: Target,
    /// `serviceaccount` (or `sa`), or `serviceaccount/NAME`.
    pub resource: String,
    /// NAME (unless given with the resource), then `KEY=VALUE` to set and `KEY-` to remove.
    #[arg(required = true, num_args = 1..)]
    pub args: Vec<String>,
    /// The namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Replace a value an annotation already has.
    #[arg(long)]
    pub overwrite: bool,
}

/// Output formats of `rolechain cluster get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// kubectl's table, with each service account's IAM role.
    Wide,
    /// The objects as YAML.
    Yaml,
    /// The objects as JSON.
    Json,
    /// `serviceaccount/NAME` per line.
    Name,
}

/// Options of `rolechain cluster get`.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub target: Target,
    /// `serviceaccounts` (or `serviceaccount`, `sa`).
    pub resource: String,
    /// One service account's name.
    pub name: Option<String>,
    /// The namespace.
    #[arg(
        short = 'n',
        long,
        default_value = "default",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format (default: kubectl's table).
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
}

/// The one resource type these commands know, by kubectl's names for it.
fn service_account_resource(resource: &str) -> anyhow::Result<Option<&str>> {
    let (kind, name) = match resource.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (resource, None),
    };
    match kind.to_ascii_lowercase().as_str() {
        "serviceaccount" | "serviceaccounts" | "sa" => Ok(name),
        _ => bail!(
            "the server doesn't have a resource type \"{kind}\": local clusters keep ServiceAccounts (serviceaccount, sa)"
        ),
    }
}

/// A cluster's service-account routes on its twin (also what `exec` reads a pod's service
/// account and association through).
pub(crate) struct Accounts {
    api: TwinApi,
    cluster_arn: String,
}

impl Accounts {
    fn new(target: &Target) -> anyhow::Result<Accounts> {
        let (_, record) = local::find_cluster(
            &target.data_dir,
            target.cluster.as_deref(),
            target.account.as_deref(),
        )?;
        let (base, from) = local::twin_endpoint(target.twin.as_deref(), &target.data_dir);
        Ok(Accounts::of(TwinApi::new(base, from), &record))
    }

    /// The routes of `record`'s cluster on the twin `api` asks.
    pub(crate) fn of(api: TwinApi, record: &local::IssuerRecord) -> Accounts {
        Accounts {
            api,
            cluster_arn: record.cluster_arn(),
        }
    }

    /// `GET` of one service account's route (`suffix` "" or "/association"), whatever the
    /// status: the caller decides what a 404 means.
    pub(crate) async fn read(
        &self,
        namespace: &str,
        name: &str,
        suffix: &str,
    ) -> anyhow::Result<Answer> {
        let path = self.path(&format!("{}{suffix}", Self::one(namespace, name)), &[]);
        self.api.call(Method::GET, &path, None).await
    }

    fn path(&self, rest: &str, extra: &[(&str, &str)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("cluster", &self.cluster_arn);
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        format!("/_rolechain/serviceaccounts{rest}?{}", query.finish())
    }

    fn one(namespace: &str, name: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!("/{}/{}", enc(namespace), enc(name))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let answer: Answer = self.api.call(method, path, body).await?;
        if answer.status != StatusCode::OK {
            bail!("{}", answer.message());
        }
        Ok(answer.body)
    }

    /// One service account, as the twin shows it.
    async fn get(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        self.call(
            Method::GET,
            &self.path(&Self::one(namespace, name), &[]),
            None,
        )
        .await
    }
}

/// The ServiceAccount documents of a file's text (YAML, several documents, or `List`s).
fn documents(text: &str, file: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{file} is not YAML or JSON"))?;
    let mut out = Vec::new();
    for doc in docs {
        match doc.get("kind").and_then(Value::as_str) {
            Some("List") => out.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ if doc.is_null() => {}
            _ => out.push(doc),
        }
    }
    Ok(out)
}

/// `rolechain cluster apply -f FILE`: one line per object, as kubectl prints.
pub async fn apply(args: &ApplyArgs) -> anyhow::Result<Vec<String>> {
    let mut objects = Vec::new();
    for file in &args.files {
        let (text, shown) = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            (text, "standard input".to_string())
        } else {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            (text, file.display().to_string())
        };
        for doc in documents(&text, &shown)? {
            objects.push((shown.clone(), doc));
        }
    }
    // Every object is checked before any is sent, so a bad file changes nothing.
    let mut planned = Vec::new();
    for (file, doc) in objects {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != "ServiceAccount" {
            bail!(
                "{file}: kind {kind:?}: local clusters keep ServiceAccounts only (to run a pod, use `rolechain exec`)"
            );
        }
        let meta = doc.get("metadata").cloned().unwrap_or(Value::Null);
        let Some(name) = meta.get("name").and_then(Value::as_str).map(str::to_string) else {
            bail!("{file}: a ServiceAccount has no metadata.name");
        };
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| args.namespace.clone())
            .unwrap_or_else(|| "default".into());
        if let Some(flag) = &args.namespace {
            if *flag != namespace {
                bail!(
                    "{file}: the namespace from the provided object \"{namespace}\" does not match the namespace \"{flag}\". You must pass '--namespace={namespace}' to perform this operation."
                );
            }
        }
        planned.push((namespace, name, doc));
    }
    let accounts = Accounts::new(&args.target)?;
    let mut lines = Vec::new();
    for (namespace, name, doc) in planned {
        let answer = accounts
            .call(
                Method::PUT,
                &accounts.path(&Accounts::one(&namespace, &name), &[]),
                Some(&doc),
            )
            .await
            .with_context(|| format!("applying serviceaccount/{name} in {namespace}"))?;
        let result = answer
            .get("result")
            .and_then(Value::as_str)
            .unwrap_or("applied");
        lines.push(format!("serviceaccount/{name} {result}"));
    }
    Ok(lines)
}

/// `rolechain cluster annotate serviceaccount NAME KEY=VALUE… KEY-…`.
pub async fn annotate(args: &AnnotateArgs) -> anyhow::Result<String> {
    let mut rest = args.args.iter();
    let name = match service_account_resource(&args.resource)? {
        Some(name) => name.to_string(),
        None => rest
            .next()
            .cloned()
            .context("which service account? give its NAME after the resource type")?,
    };
    let mut changes = Vec::new();
    for arg in rest {
        if let Some((key, value)) = arg.split_once('=') {
            changes.push(json!({"set": {"key": key, "value": value}}));
        } else if let Some(key) = arg.strip_suffix('-') {
            changes.push(json!({"remove": {"key": key}}));
        } else {
            bail!("invalid annotation {arg:?}: use KEY=VALUE to set one, KEY- to remove it");
        }
    }
    if changes.is_empty() {
        bail!("at least one annotation update is required (KEY=VALUE or KEY-)");
    }
    let accounts = Accounts::new(&args.target)?;
    accounts
        .call(
            Method::PATCH,
            &accounts.path(&Accounts::one(&args.namespace, &name), &[]),
            Some(&json!({"changes": changes, "overwrite": args.overwrite})),
        )
        .await?;
    Ok(format!("serviceaccount/{name} annotated"))
}

/// `rolechain cluster get serviceaccounts [NAME]`: kubectl's table, or the objects.
pub async fn get(args: &GetArgs) -> anyhow::Result<String> {
    let given = service_account_resource(&args.resource)?;
    let name = args.name.as_deref().or(given);
    let accounts = Accounts::new(&args.target)?;
    let items: Vec<Value> = match name {
        Some(name) => vec![accounts.get(&args.namespace, name).await?],
        None => {
            let extra: Vec<(&str, &str)> = if args.all_namespaces {
                Vec::new()
            } else {
                vec![("namespace", args.namespace.as_str())]
            };
            let list = accounts
                .call(Method::GET, &accounts.path("", &extra), None)
                .await?;
            list.get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
    };
    let one = name.is_some();
    let whole = if one {
        items.first().cloned().unwrap_or(Value::Null)
    } else {
        json!({"apiVersion": "v1", "kind": "List", "items": items})
    };
    Ok(match args.output {
        Some(Output::Json) => format!("{}\n", serde_json::to_string_pretty(&whole)?),
        Some(Output::Yaml) => {
            serde_saphyr::to_string(&whole).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        Some(Output::Name) => items
            .iter()
            .map(|i| format!("serviceaccount/{}\n", field(i, "name")))
            .collect(),
        Some(Output::Wide) => table(&items, args.all_namespaces, true),
        None if items.is_empty() && !one => format!(
            "No resources found{}.\n",
            if args.all_namespaces {
                String::new()
            } else {
                format!(" in {} namespace", args.namespace)
            }
        ),
        None => table(&items, args.all_namespaces, false),
    })
}

fn field<'a>(item: &'a Value, name: &str) -> &'a str {
    item["metadata"][name].as_str().unwrap_or_default()
}

/// kubectl's columns (NAMESPACE with -A, NAME, SECRETS, AGE), and the IAM role when wide.
fn table(items: &[Value], namespaces: bool, wide: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = Vec::new();
    if namespaces {
        header.push("NAMESPACE".to_string());
    }
    header.extend(["NAME", "SECRETS", "AGE"].map(String::from));
    if wide {
        header.push("ROLE-ARN".into());
    }
    rows.push(header);
    for item in items {
        let mut row = Vec::new();
        if namespaces {
            row.push(field(item, "namespace").to_string());
        }
        row.push(field(item, "name").to_string());
        row.push("0".into());
        let age = time::OffsetDateTime::parse(
            field(item, "creationTimestamp"),
            &time::format_description::well_known::Rfc3339,
        )
        .map_or_else(|_| "<unknown>".to_string(), |at| age(now - at));
        row.push(age);
        if wide {
            let annotations: BTreeMap<String, String> =
                serde_json::from_value(item["metadata"]["annotations"].clone()).unwrap_or_default();
            row.push(
                annotations
                    .get(ROLE_ARN_ANNOTATION)
                    .cloned()
                    .unwrap_or_else(|| "<none>".into()),
            );
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's short ages: `45s`, `12m`, `5h`, `3d`.
fn age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_resource_names() {
        assert_eq!(service_account_resource("sa").unwrap(), None);
        assert_eq!(service_account_resource("ServiceAccounts").unwrap(), None);
        assert_eq!(
            service_account_resource("serviceaccount/my-sa").unwrap(),
            Some("my-sa")
        );
        assert!(service_account_resource("pods")
            .unwrap_err()
            .to_string()
            .contains("doesn't have a resource type \"pods\""));
    }

    #[test]
    fn documents_of_a_file() {
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\nkind: List\nitems:\n- kind: ServiceAccount\n  metadata: {name: b}\n";
        let docs = documents(text, "f").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "b");
        assert!(documents("a: [", "f").is_err());
    }

    #[test]
    fn ages_as_kubectl() {
        assert_eq!(age(time::Duration::seconds(45)), "45s");
        assert_eq!(age(time::Duration::minutes(12)), "12m");
        assert_eq!(age(time::Duration::hours(5)), "5h");
        assert_eq!(age(time::Duration::days(3)), "3d");
    }
}
