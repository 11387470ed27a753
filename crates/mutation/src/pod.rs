//! [`mutate`]: the pod, its ServiceAccount and the agent's association → the mutated pod and
//! its JSON patch.

use k8s_openapi::api::core::v1::{
    EnvVar, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use serde_json::{Map, Value};

use crate::settings::{
    Settings, DEFAULT_MIN_TOKEN_EXPIRATION, DEFAULT_TOKEN_EXPIRATION, IRSA_TOKEN, IRSA_VOLUME,
    MIN_TOKEN_EXPIRATION,
};

/// The label that opts a pod out (the webhook's `objectSelector`: any value).
const OPT_OUT_LABEL: &str = "eks.amazonaws.com/skip-pod-identity-webhook";
/// The label a container-credentials pod gets.
const POD_IDENTITY_LABEL: &str = "eks.amazonaws.com/pod-identity";

const ROLE_ARN: &str = "AWS_ROLE_ARN";
const WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const AUTHORIZATION_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const REGION: &str = "AWS_REGION";
const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
const REGIONAL_STS: &str = "AWS_STS_REGIONAL_ENDPOINTS";

/// Why a pod was left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// It carries the label `eks.amazonaws.com/skip-pod-identity-webhook`.
    OptedOut,
    /// Its service account has no association with the agent and no `role-arn` annotation (or
    /// no ServiceAccount was found).
    NoRole,
}

/// How a pod gets its credentials after mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Not mutated.
    Untouched(Skip),
    /// IRSA: the SDK assumes `role_arn` with the projected token.
    WebIdentity {
        /// The ServiceAccount's `eks.amazonaws.com/role-arn`.
        role_arn: String,
    },
    /// The node agent gives the credentials (Pod Identity, or a rolechain chain).
    ContainerCredentials,
}

/// What happened to one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOutcome {
    /// The container's name.
    pub name: String,
    /// Whether it is an init container.
    pub init: bool,
    /// Whether anything was added to it.
    pub changed: bool,
    /// Why nothing was added, when nothing was.
    pub skipped_because: Option<String>,
}

/// The projected token a mutated pod mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVolume {
    /// The projected volume's name.
    pub volume: String,
    /// The token's audience.
    pub audience: String,
    /// Its lifetime, seconds.
    pub expiration_seconds: i64,
    /// Where containers find the token file (`C:\…` on Windows).
    pub token_file: String,
}

/// The result of [`mutate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// How the pod gets its credentials.
    pub mode: Mode,
    /// The pod after mutation (the input unchanged when nothing was added).
    pub pod: Value,
    /// The JSON patch from the input to [`pod`](Self::pod): per-field `add` operations,
    /// empty when nothing changed.
    pub patch: json_patch::Patch,
    /// Each container (init containers first), what was done to it.
    pub containers: Vec<ContainerOutcome>,
    /// The projected token, when the pod was mutated.
    pub token: Option<TokenVolume>,
}

/// Why a document could not be mutated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// Not a pod: a required part is missing or of the wrong type.
    #[error("not a pod: {0}")]
    NotAPod(&'static str),
}

/// What the mutation adds, settled from the settings, the ServiceAccount and the pod.
struct Plan {
    role_arn: Option<String>,
    full_uri: Option<String>,
    regional_sts: bool,
    region: Option<String>,
    mount_path: String,
    token: TokenVolume,
    token_path: String,
    skip: Vec<String>,
}

/// Mutates `pod` (as the API server sends it in an AdmissionReview) for its `service_account`
/// (`None` when it was not found), `pod_identity` telling whether the node agent has an
/// association for the service account (which, as in the webhook, wins over IRSA).
///
/// # Errors
///
/// [`MutationError::NotAPod`] when `pod` is not an object with `spec.containers` as a list of
/// objects.
pub fn mutate(
    pod: &Value,
    service_account: Option<&ServiceAccount>,
    pod_identity: bool,
    settings: &Settings,
) -> Result<Mutation, MutationError> {
    let spec = pod
        .get("spec")
        .and_then(Value::as_object)
        .ok_or(MutationError::NotAPod("no spec"))?;
    for list in ["containers", "initContainers"] {
        match spec.get(list) {
            None if list == "initContainers" => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => {}
            _ => {
                return Err(MutationError::NotAPod(
                    "spec.containers is not a list of containers",
                ))
            }
        }
    }
    let untouched = |skip| Mutation {
        mode: Mode::Untouched(skip),
        pod: pod.clone(),
        patch: json_patch::Patch(Vec::new()),
        containers: Vec::new(),
        token: None,
    };
    if string_map(pod, "labels").any(|(k, _)| k == OPT_OUT_LABEL) {
        return Ok(untouched(Skip::OptedOut));
    }
    let sa_annotation = |name: &str| -> Option<&str> {
        let key = format!("{}/{name}", settings.annotation_domain);
        service_account?
            .metadata
            .annotations
            .as_ref()?
            .get(&key)
            .map(String::as_str)
    };
    let role_arn = sa_annotation("role-arn").filter(|arn| !arn.is_empty());
    let mode = match (pod_identity, role_arn) {
        (true, _) => Mode::ContainerCredentials,
        (false, Some(arn)) => Mode::WebIdentity {
            role_arn: arn.to_string(),
        },
        (false, None) => return Ok(untouched(Skip::NoRole)),
    };

    // The ServiceAccount's token lifetime and regional STS, then the pod's own lifetime.
    let mut expiration = sa_annotation("token-expiration")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(settings.token_expiration, |e| e.max(MIN_TOKEN_EXPIRATION));
    let pod_annotation = |name: &str| {
        let key = format!("{}/{name}", settings.annotation_domain);
        string_map(pod, "annotations")
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    if let Some(e) = pod_annotation("token-expiration").and_then(|v| v.trim().parse::<i64>().ok()) {
        expiration = e.max(MIN_TOKEN_EXPIRATION);
    }
    let regional_sts = sa_annotation("sts-regional-endpoints")
        .and_then(parse_go_bool)
        .unwrap_or(settings.regional_sts);
    let skip: Vec<String> = pod_annotation("skip-containers")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();

    let cc = &settings.container_credentials;
    let (mount_path, volume, token_path, audience) = match &mode {
        Mode::ContainerCredentials => {
            if expiration == DEFAULT_TOKEN_EXPIRATION {
                if let Some(n) = settings.token_jitter {
                    let span = (DEFAULT_TOKEN_EXPIRATION - DEFAULT_MIN_TOKEN_EXPIRATION + 1) as u64;
                    expiration = DEFAULT_MIN_TOKEN_EXPIRATION + (n % span) as i64;
                }
            }
            (
                cc.mount_path.clone(),
                cc.volume_name.clone(),
                cc.token_path.clone(),
                cc.audience.clone(),
            )
        }
        _ => (
            settings.mount_path.clone(),
            IRSA_VOLUME.to_string(),
            IRSA_TOKEN.to_string(),
            sa_annotation("audience")
                .unwrap_or(&settings.audience)
                .to_string(),
        ),
    };
    let mut token_file = format!("{}/{}", mount_path.trim_end_matches('/'), token_path);
    let windows = ["kubernetes.io/os", "beta.kubernetes.io/os"]
        .iter()
        .any(|key| {
            pod.pointer("/spec/nodeSelector")
                .and_then(|s| s.get(*key))
                .and_then(Value::as_str)
                == Some("windows")
        });
    if windows {
        token_file = format!("C:{}", token_file.replace('/', "\\"));
    }
    let plan = Plan {
        role_arn: match &mode {
            Mode::WebIdentity { role_arn } => Some(role_arn.clone()),
            _ => None,
        },
        full_uri: matches!(mode, Mode::ContainerCredentials).then(|| cc.full_uri.clone()),
        regional_sts,
        region: settings.region.clone(),
        mount_path,
        token: TokenVolume {
            volume,
            audience,
            expiration_seconds: expiration,
            token_file,
        },
        token_path,
        skip,
    };

    let mut mutated = pod.clone();
    let mut containers = Vec::new();
    let spec = mutated
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or(MutationError::NotAPod("no spec"))?;
    for (list, init) in [("initContainers", true), ("containers", false)] {
        let Some(Value::Array(items)) = spec.get_mut(list) else {
            continue;
        };
        for container in items.iter_mut().filter_map(Value::as_object_mut) {
            containers.push(mutate_container(container, init, &plan));
        }
    }
    add_volume(spec, &plan);
    if plan.full_uri.is_some() {
        add_label(&mut mutated);
    }
    let patch = json_patch::diff(pod, &mutated);
    Ok(Mutation {
        mode,
        pod: mutated,
        patch,
        containers,
        token: Some(plan.token),
    })
}

/// Adds what `container` lacks; reports what was done.
fn mutate_container(
    container: &mut Map<String, Value>,
    init: bool,
    plan: &Plan,
) -> ContainerOutcome {
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let outcome = |changed: bool, why: Option<&str>| ContainerOutcome {
        name: name.clone(),
        init,
        changed,
        skipped_because: why.map(str::to_owned),
    };
    if plan.skip.contains(&name) {
        return outcome(false, Some("named in the pod's skip-containers annotation"));
    }
    let defined: Vec<String> = container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let has = |n: &str| defined.iter().any(|d| d == n);
    // Either variable of a pair counts as the user's choice: it is never completed or overridden.
    let credentials_defined = match plan.full_uri {
        Some(_) => has(FULL_URI) || has(AUTHORIZATION_TOKEN_FILE),
        None => has(ROLE_ARN) || has(WEB_IDENTITY_TOKEN_FILE),
    };
    let region_defined = has(REGION) || has(DEFAULT_REGION);

    let mut added: Vec<EnvVar> = Vec::new();
    let var = |name: &str, value: &str| EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    };
    if plan.regional_sts && !has(REGIONAL_STS) {
        added.push(var(REGIONAL_STS, "regional"));
    }
    if let (Some(region), false) = (&plan.region, region_defined) {
        added.push(var(DEFAULT_REGION, region));
        added.push(var(REGION, region));
    }
    if !credentials_defined {
        match (&plan.full_uri, &plan.role_arn) {
            (Some(uri), _) => {
                added.push(var(FULL_URI, uri));
                added.push(var(AUTHORIZATION_TOKEN_FILE, &plan.token.token_file));
            }
            (None, Some(arn)) => {
                added.push(var(ROLE_ARN, arn));
                added.push(var(WEB_IDENTITY_TOKEN_FILE, &plan.token.token_file));
            }
            (None, None) => {}
        }
    }
    let mount_exists = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|m| m.get("name").and_then(Value::as_str) == Some(plan.token.volume.as_str()));
    let changed = !added.is_empty() || !mount_exists;
    for env in added {
        push(container, "env", to_value(&env));
    }
    if !mount_exists {
        let mount = VolumeMount {
            name: plan.token.volume.clone(),
            mount_path: plan.mount_path.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        };
        push(container, "volumeMounts", to_value(&mount));
    }
    if changed {
        outcome(true, None)
    } else {
        outcome(
            false,
            Some("it already has the variables and the token's mount"),
        )
    }
}

fn add_volume(spec: &mut Map<String, Value>, plan: &Plan) {
    let exists = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|v| v.get("name").and_then(Value::as_str) == Some(plan.token.volume.as_str()));
    if exists {
        return;
    }
    let volume = Volume {
        name: plan.token.volume.clone(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(plan.token.audience.clone()),
                    expiration_seconds: Some(plan.token.expiration_seconds),
                    path: plan.token_path.clone(),
                    ..ServiceAccountTokenProjection::default()
                }),
                ..VolumeProjection::default()
            }]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    };
    push(spec, "volumes", to_value(&volume));
}

fn add_label(pod: &mut Value) {
    let Some(pod) = pod.as_object_mut() else {
        return;
    };
    let metadata = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels
            .entry(POD_IDENTITY_LABEL)
            .or_insert_with(|| Value::String("enabled".to_string()));
    }
}

/// Appends `item` to the list `key` of `object`, creating the list when absent (or null).
fn push(object: &mut Map<String, Value>, key: &str, item: Value) {
    match object.get_mut(key) {
        Some(Value::Array(items)) => items.push(item),
        _ => {
            object.insert(key.to_string(), Value::Array(vec![item]));
        }
    }
}

fn to_value(item: &impl serde::Serialize) -> Value {
    // The Kubernetes types always serialize to JSON.
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// `metadata.labels` or `metadata.annotations` of `pod`, as string pairs.
fn string_map<'a>(pod: &'a Value, which: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
    pod.get("metadata")
        .and_then(|m| m.get(which))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

/// Go's `strconv.ParseBool`, as the webhook reads `sts-regional-endpoints`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
