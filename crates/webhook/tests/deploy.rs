//! `deploy/`, rendered by the real `kubectl kustomize` (base and both overlays), checked object
//! by object: the agent DaemonSet on the host network with NET_ADMIN for its init container
//! only and NET_BIND_SERVICE for the agent, probes on 127.0.0.1:2703; two webhook replicas with
//! a PodDisruptionBudget; the MutatingWebhookConfiguration never blocking pods; least-privilege
//! RBAC; non-root, read-only root filesystems, requests and limits; the CRD as generated.
//! Without kubectl the test says so and is skipped (failed under `ROLECHAIN_REQUIRE_PEERS=1`).

use std::process::Command;

use serde_json::Value;

fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kubectl kustomize deploy/DIR` as objects; `None` without kubectl.
fn render(dir: &str) -> Option<Vec<Value>> {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(repository().join("deploy").join(dir))
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "NOTICE: kubectl is not installed ({e}): skipping the deploy/ rendering test"
            );
            assert!(
                std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() != Ok("1"),
                "kubectl is required (ROLECHAIN_REQUIRE_PEERS=1)"
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/{dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(serde_saphyr::from_multiple::<Value>(&text).unwrap())
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn hardened(container: &Value, caps: &[&str]) {
    let sc = &container["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{container}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{container}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{container}"
    );
    let added: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(added, caps, "{container}");
    assert!(
        container["resources"]["requests"].is_object(),
        "{container}"
    );
    assert!(
        container["resources"]["limits"]["memory"].is_string(),
        "{container}"
    );
}

#[test]
fn the_base_renders_what_each_part_needs_and_no_more() {
    let Some(objects) = render("base") else {
        return;
    };
    for o in &objects {
        if o["kind"] != "Namespace"
            && o["kind"] != "CustomResourceDefinition"
            && !o["kind"].as_str().unwrap().starts_with("Cluster")
            && o["kind"] != "MutatingWebhookConfiguration"
        {
            assert_eq!(o["metadata"]["namespace"], "rolechain-system", "{o}");
        }
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/part-of"], "rolechain",
            "{o}"
        );
    }
    // The agent.
    let ds = find(&objects, "DaemonSet", "rolechain-agent");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["serviceAccountName"], "rolechain-agent");
    let init = &spec["initContainers"][0];
    assert_eq!(init["args"], serde_json::json!(["agent", "init"]));
    hardened(init, &["NET_ADMIN"]);
    let agent = &spec["containers"][0];
    hardened(agent, &["NET_BIND_SERVICE"]);
    assert_eq!(agent["securityContext"]["runAsNonRoot"], true);
    assert_eq!(agent["image"], "ghcr.io/rolechain/rolechain:0.1.0");
    assert!(agent["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--kubernetes"));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(agent[probe]["httpGet"]["host"], "127.0.0.1");
        assert_eq!(agent[probe]["httpGet"]["port"], 2703);
    }
    // The webhook.
    let deployment = find(&objects, "Deployment", "rolechain-webhook");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let webhook = &deployment["spec"]["template"]["spec"]["containers"][0];
    hardened(webhook, &[]);
    assert_eq!(webhook["securityContext"]["runAsNonRoot"], true);
    assert_eq!(webhook["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    // The allocator settings scripts/load webhook measures the memory with.
    let env: Vec<(String, String)> = webhook["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for setting in ["MIMALLOC_ARENA_EAGER_COMMIT", "MIMALLOC_PURGE_DELAY"] {
        assert!(
            env.contains(&(setting.to_string(), "0".to_string())),
            "{env:?}"
        );
    }
    assert_eq!(
        find(&objects, "PodDisruptionBudget", "rolechain-webhook")["spec"]["minAvailable"],
        1
    );
    let service = find(&objects, "Service", "rolechain-webhook");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    // Never blocking a pod; kube-system and its own namespace left out; the opt-out label.
    let mwc = find(&objects, "MutatingWebhookConfiguration", "rolechain");
    let hook = &mwc["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(
        hook["rules"][0]["operations"],
        serde_json::json!(["CREATE"])
    );
    assert_eq!(hook["rules"][0]["resources"], serde_json::json!(["pods"]));
    let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["operator"], "NotIn");
    assert!(excluded["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "kube-system"));
    assert_eq!(
        hook["objectSelector"]["matchExpressions"][0]["key"],
        "eks.amazonaws.com/skip-pod-identity-webhook"
    );
    // Least privilege: read service accounts and associations; the agent may patch status.
    let rules = |name: &str| find(&objects, "ClusterRole", name)["rules"].clone();
    for rule in rules("rolechain-webhook").as_array().unwrap() {
        assert_eq!(
            rule["verbs"],
            serde_json::json!(["get", "list", "watch"]),
            "{rule}"
        );
    }
    let agent_rules = rules("rolechain-agent");
    assert_eq!(
        agent_rules[1]["resources"],
        serde_json::json!(["rolechainassociations/status"])
    );
    assert_eq!(agent_rules[1]["verbs"], serde_json::json!(["patch"]));
    // The CRD is the generated one.
    let crd = find(
        &objects,
        "CustomResourceDefinition",
        "rolechainassociations.rolechain.dev",
    );
    let generated: Value = serde_saphyr::from_str(&webhook::crd_yaml()).unwrap();
    assert_eq!(
        numbers_as_floats(&crd["spec"]),
        numbers_as_floats(&generated["spec"])
    );
}

/// `v` with every number a float: kubectl writes `0` where the generator wrote `0.0`.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_overlays_add_cert_manager_and_a_migration_beside_eks() {
    let Some(objects) = render("overlays/cert-manager") else {
        return;
    };
    let cert = find(&objects, "Certificate", "rolechain-webhook");
    assert_eq!(cert["spec"]["secretName"], "rolechain-webhook-tls");
    assert!(cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == "rolechain-webhook.rolechain-system.svc"));
    let mwc = find(&objects, "MutatingWebhookConfiguration", "rolechain");
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "rolechain-system/rolechain-webhook"
    );

    let Some(objects) = render("overlays/beside-eks-agent") else {
        return;
    };
    let ds = find(&objects, "DaemonSet", "rolechain-agent");
    let spec = &ds["spec"]["template"]["spec"];
    let init_args = spec["initContainers"][0]["args"].to_string();
    assert!(init_args.contains("169.254.170.24/32"), "{init_args}");
    let agent_args = spec["containers"][0]["args"].to_string();
    assert!(
        agent_args.contains("--bind=169.254.170.24:80") && agent_args.contains("--eks-auth"),
        "{agent_args}"
    );
    let webhook_args = find(&objects, "Deployment", "rolechain-webhook")["spec"]["template"]
        ["spec"]["containers"][0]["args"]
        .to_string();
    assert!(
        webhook_args.contains("--agent-url=http://169.254.170.24/v1/credentials"),
        "{webhook_args}"
    );
    let selector = find(&objects, "MutatingWebhookConfiguration", "rolechain")["webhooks"][0]
        ["namespaceSelector"]
        .to_string();
    assert!(selector.contains("rolechain.dev/enabled"), "{selector}");
}
