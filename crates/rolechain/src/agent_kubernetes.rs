//! `rolechain agent --kubernetes`: the cluster's RoleChainAssociations as the agent's chains
//! (after its association file's), watched through the API server, each resource's status
//! saying whether the agent accepted it (`Accepted`: `True`, or `False` with what is wrong).

use std::collections::HashMap;

use futures_util::StreamExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Lookup as _};
use kube::runtime::{watcher, WatchStreamExt as _};
use serde_json::json;
use webhook::RoleChainAssociation;

/// The status condition the agent sets.
const CONDITION: &str = "Accepted";

/// Watches every namespace's RoleChainAssociations through `client` and makes them the
/// agent's cluster chains, until the process ends.
pub fn watch(
    client: kube::Client,
    target: agent::ClusterAssociations,
    options: agent::associations::LoadOptions,
) {
    let api: Api<RoleChainAssociation> = Api::all(client.clone());
    let (reader, writer) = reflector::store::<RoleChainAssociation>();
    let events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        // What this agent last wrote, so an unchanged outcome is not written again.
        let mut written: HashMap<String, String> = HashMap::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone,
                ) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "watching RoleChainAssociations");
                    continue;
                }
            }
            let mut all = reader.state();
            all.sort_by_key(|a| (a.metadata.namespace.clone(), a.metadata.name.clone()));
            let entries = all
                .iter()
                .map(|a| {
                    let mut entry = serde_json::to_value(&a.spec).unwrap_or_default();
                    entry["namespace"] = json!(a.metadata.namespace.clone().unwrap_or_default());
                    (name_of(a), entry)
                })
                .collect();
            let (file, outcomes) =
                agent::associations::AssociationFile::from_entries(entries, options);
            target.set(&file);
            for (resource, (name, outcome)) in all.iter().zip(outcomes) {
                let (status, reason, message) = match &outcome {
                    Ok(()) => ("True", "Valid", "the agent serves this chain".to_string()),
                    Err(e) => ("False", "Invalid", e.to_string()),
                };
                let shown = format!("{status}/{message}");
                let current = resource
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION))
                    .map(|c| format!("{}/{}", c.status, c.message));
                if current.as_deref() == Some(shown.as_str()) || written.get(&name) == Some(&shown)
                {
                    continue;
                }
                let Some(namespace) = resource.metadata.namespace.as_deref() else {
                    continue;
                };
                let api: Api<RoleChainAssociation> = Api::namespaced(client.clone(), namespace);
                let patch = json!({"status": {"conditions": [{
                    "type": CONDITION,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": now(),
                }]}});
                let resource_name = resource.name().unwrap_or_default();
                match api
                    .patch_status(
                        &resource_name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                {
                    Ok(_) => {
                        written.insert(name, shown);
                    }
                    Err(e) => tracing::warn!(resource = %name, error = %e, "setting the status"),
                }
            }
        }
    });
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
