//! `rolechain agent --kubernetes`: the cluster's RoleChainAssociations as the agent's chains
//! (after its association file's), watched through the API server. Each resource's status
//! carries two conditions: `Accepted` (`True`, or `False` with what is wrong with it) and, once
//! a pod has asked for its chain, `Resolved` (`True`, or `False` with STS's or EKS Auth's last
//! answer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Lookup as _};
use kube::runtime::{watcher, WatchStreamExt as _};
use serde_json::{json, Value};
use webhook::RoleChainAssociation;

/// One condition as this agent wants it: (status, reason, message).
type Wanted = (&'static str, &'static str, String);

/// The last resolution of each (namespace, service account), and a wake-up when one changes.
#[derive(Default)]
struct Resolutions {
    latest: Mutex<HashMap<(String, String), Result<(), String>>>,
    changed: tokio::sync::Notify,
}

/// Watches every namespace's RoleChainAssociations through `client` and makes them the
/// agent's cluster chains, until the process ends.
pub fn watch(
    client: kube::Client,
    target: agent::ClusterAssociations,
    options: agent::associations::LoadOptions,
) {
    let resolutions = Arc::new(Resolutions::default());
    let told = Arc::clone(&resolutions);
    target.on_resolved(Arc::new(move |r: agent::cache::Resolution| {
        let key = (r.namespace.to_string(), r.service_account.to_string());
        let mut latest = told.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if latest.get(&key) != Some(&r.result) {
            latest.insert(key, r.result);
            told.changed.notify_one();
        }
    }));
    let api: Api<RoleChainAssociation> = Api::all(client.clone());
    let (reader, writer) = reflector::store::<RoleChainAssociation>();
    let events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        // The validation of each resource (by `namespace/name`), and the conditions this agent
        // last wrote, so an unchanged status is not written again.
        let mut accepted: HashMap<String, Wanted> = HashMap::new();
        let mut written: HashMap<String, Value> = HashMap::new();
        loop {
            let rebuild = tokio::select! {
                event = events.next() => match event {
                    None => return,
                    Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) => true,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching RoleChainAssociations");
                        continue;
                    }
                },
                () = resolutions.changed.notified() => false,
            };
            let mut all = reader.state();
            all.sort_by_key(|a| (a.metadata.namespace.clone(), a.metadata.name.clone()));
            if rebuild {
                let entries = all
                    .iter()
                    .map(|a| {
                        let mut entry = serde_json::to_value(&a.spec).unwrap_or_default();
                        entry["namespace"] =
                            json!(a.metadata.namespace.clone().unwrap_or_default());
                        (name_of(a), entry)
                    })
                    .collect();
                let (file, outcomes) =
                    agent::associations::AssociationFile::from_entries(entries, options);
                target.set(&file);
                accepted = outcomes
                    .into_iter()
                    .map(|(name, outcome)| {
                        let wanted = match outcome {
                            Ok(()) => ("True", "Valid", "the agent serves this chain".to_string()),
                            Err(e) => ("False", "Invalid", e.to_string()),
                        };
                        (name, wanted)
                    })
                    .collect();
            }
            let latest = resolutions
                .latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for resource in &all {
                let name = name_of(resource);
                let Some(accept) = accepted.get(&name) else {
                    continue;
                };
                let namespace = resource.metadata.namespace.clone().unwrap_or_default();
                let resolved = latest
                    .get(&(namespace.clone(), resource.spec.service_account.clone()))
                    .filter(|_| accept.0 == "True")
                    .map(|r| match r {
                        Ok(()) => (
                            "True",
                            "Resolved",
                            "a pod got the chain's credentials".to_string(),
                        ),
                        Err(e) => ("False", "UpstreamError", e.clone()),
                    });
                let conditions = conditions(resource, accept, resolved.as_ref());
                if written.get(&name) == Some(&conditions) || current(resource) == conditions {
                    continue;
                }
                let api: Api<RoleChainAssociation> = Api::namespaced(client.clone(), &namespace);
                let patch = json!({"status": {"conditions": conditions}});
                match api
                    .patch_status(
                        &resource.name().unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                {
                    Ok(_) => {
                        written.insert(name, conditions);
                    }
                    Err(e) => tracing::warn!(resource = %name, error = %e, "setting the status"),
                }
            }
        }
    });
}

/// The conditions wanted, keeping a condition's transition time while its status holds.
fn conditions(
    resource: &RoleChainAssociation,
    accepted: &Wanted,
    resolved: Option<&Wanted>,
) -> Value {
    let existing = |kind: &str| {
        resource
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == kind))
    };
    let condition = |kind: &str, (status, reason, message): &Wanted| {
        let since = existing(kind)
            .filter(|c| c.status == *status)
            .map_or_else(now, |c| c.last_transition_time.clone());
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": since})
    };
    let mut out = vec![condition("Accepted", accepted)];
    match resolved {
        Some(r) => out.push(condition("Resolved", r)),
        // Keep what an agent wrote before until this one has seen a pod of it.
        None => out.extend(existing("Resolved").and_then(|c| serde_json::to_value(c).ok())),
    }
    Value::Array(out)
}

/// The resource's conditions as stored.
fn current(resource: &RoleChainAssociation) -> Value {
    resource
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.conditions).ok())
        .unwrap_or(Value::Null)
}

fn name_of(a: &RoleChainAssociation) -> String {
    format!(
        "{}/{}",
        a.metadata.namespace.as_deref().unwrap_or_default(),
        a.metadata.name.as_deref().unwrap_or_default()
    )
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
