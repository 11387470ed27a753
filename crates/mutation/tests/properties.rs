//! Properties of the mutation over generated pods: the patch turns the pod into the mutated
//! pod; mutating the mutated pod changes nothing; nothing but the variables, mounts, volumes
//! and the pod-identity label changes; what the user set is kept.

use json_patch::Patch;
use k8s_openapi::api::core::v1::ServiceAccount;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NAMES: &[&str] = &[
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "HOME",
    "LOG_LEVEL",
];

fn container(index: usize, init: bool) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((prop::sample::select(NAMES), "[a-z0-9]{0,8}"), 0..4),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u16..60000),
    )
        .prop_map(move |(env, mount, sidecar, port)| {
            let mut c = json!({"name": format!("{}{index}", if init { "init" } else { "c" }), "image": "img:1"});
            let mut seen = std::collections::BTreeSet::new();
            let env: Vec<Value> = env
                .into_iter()
                .filter(|(n, _)| seen.insert(*n))
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect();
            if !env.is_empty() {
                c["env"] = json!(env);
            }
            if mount {
                c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
            }
            if init && sidecar {
                c["restartPolicy"] = json!("Always");
            }
            if let Some(p) = port {
                c["ports"] = json!([{"containerPort": p}]);
                c["futureField"] = json!({"kept": p});
            }
            c
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(any::<bool>(), 1..4),
        prop::collection::vec(any::<bool>(), 0..3),
        any::<bool>(),
        prop::option::of("[a-z]{1,6}"),
    )
        .prop_flat_map(|(containers, inits, volumes, label)| {
            let cs: Vec<_> = (0..containers.len()).map(|i| container(i, false)).collect();
            let is: Vec<_> = (0..inits.len()).map(|i| container(i, true)).collect();
            (cs, is, Just(volumes), Just(label))
        })
        .prop_map(|(containers, inits, volumes, label)| {
            let mut spec = json!({"serviceAccountName": "app", "containers": containers, "nodeSelector": {"zone": "a"}});
            if !inits.is_empty() {
                spec["initContainers"] = json!(inits);
            }
            if volumes {
                spec["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
            }
            let mut metadata = json!({"generateName": "app-", "annotations": {"team": "x"}});
            if let Some(l) = label {
                metadata["labels"] = json!({"app": l});
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
        })
}

fn service_account(annotated: bool) -> ServiceAccount {
    let mut meta = json!({"name": "app", "namespace": "default"});
    if annotated {
        meta["annotations"] =
            json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111111111111:role/app"});
    }
    serde_json::from_value(json!({ "metadata": meta })).unwrap()
}

/// `v` without what the mutation may add to: env, volumeMounts, volumes, labels.
fn unrelated(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(labels) = v.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        labels.remove("labels");
    }
    if let Some(spec) = v.pointer_mut("/spec").and_then(Value::as_object_mut) {
        spec.remove("volumes");
        for list in ["containers", "initContainers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let c: &mut Map<String, Value> = c.as_object_mut().unwrap();
                c.remove("env");
                c.remove("volumeMounts");
            }
        }
    }
    v
}

fn env_values(c: &Value) -> Vec<(String, String)> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_mutation_is_a_patch_idempotent_and_touches_nothing_else(
        pod in pod(), annotated in any::<bool>(), pod_identity in any::<bool>(),
    ) {
        let sa = service_account(annotated);
        let settings = mutation::Settings { region: Some("us-east-1".into()), ..mutation::Settings::default() };
        let m = mutation::mutate(&pod, Some(&sa), pod_identity, &settings).unwrap();
        // The patch turns the pod into the mutated pod.
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &m.patch).unwrap();
        prop_assert_eq!(&patched, &m.pod);
        // Mutating it again changes nothing.
        let again = mutation::mutate(&m.pod, Some(&sa), pod_identity, &settings).unwrap();
        prop_assert_eq!(&again.patch, &Patch(vec![]));
        prop_assert_eq!(&again.pod, &m.pod);
        // Nothing unrelated changed.
        prop_assert_eq!(unrelated(&pod), unrelated(&m.pod));
        // What the user set is kept, in place.
        for list in ["containers", "initContainers"] {
            let before = pod["spec"][list].as_array().cloned().unwrap_or_default();
            let after = m.pod["spec"][list].as_array().cloned().unwrap_or_default();
            prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                let kept = env_values(b);
                let now = env_values(a);
                prop_assert_eq!(&now[..kept.len()], &kept[..]);
            }
        }
        // Without a role or an association, nothing changes at all.
        if !annotated && !pod_identity {
            prop_assert_eq!(&m.pod, &pod);
        }
    }
}
