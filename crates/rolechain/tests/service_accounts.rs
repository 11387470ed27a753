//! `rolechain cluster apply|annotate|get` as users run them against `rolechain up`: files as
//! the real `kubectl` writes them (`create serviceaccount --dry-run=client -o yaml`) and as the
//! seeds show them, kubectl's syntax and messages, and the state surviving a restart.

mod support;

use std::process::Command;

use support::*;

fn cluster(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let args: Vec<&str> = std::iter::once("cluster")
        .chain(args.iter().copied())
        .collect();
    rolechain_at(data_dir, &args)
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// kubectl's own manifest for a service account, or None (said loudly) without kubectl.
fn kubectl_manifest(name: &str, namespace: &str) -> Option<String> {
    let out = Command::new("kubectl")
        .args([
            "create",
            "serviceaccount",
            name,
            "-n",
            namespace,
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8(o.stdout).unwrap()),
        _ => peers::missing("kubectl (client) on PATH"),
    }
}

#[test]
fn service_accounts_with_kubectl_syntax_survive_a_restart() {
    let dir = TempDir::new("sa");
    let data = dir.0.join("data");
    let up = Up::start(&data, &[]);

    let Some(manifest) = kubectl_manifest("my-service-account", "default") else {
        return;
    };
    let file = dir.file("sa.yaml", &manifest);
    assert_eq!(
        ok(cluster(&data, &["apply", "-f", &file])),
        "serviceaccount/my-service-account created\n"
    );
    assert_eq!(
        ok(cluster(&data, &["apply", "-f", &file])),
        "serviceaccount/my-service-account unchanged\n"
    );

    // Seed 002's annotation, with kubectl's syntax.
    let role = "eks.amazonaws.com/role-arn=arn:aws:iam::111111111111:role/my-test-role";
    assert_eq!(
        ok(cluster(
            &data,
            &[
                "annotate",
                "serviceaccount",
                "-n",
                "default",
                "my-service-account",
                role
            ]
        )),
        "serviceaccount/my-service-account annotated\n"
    );
    let again = cluster(
        &data,
        &[
            "annotate",
            "sa",
            "my-service-account",
            "eks.amazonaws.com/role-arn=other",
        ],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("--overwrite is false"),
        "{}",
        stderr(&again)
    );

    // Several documents in one file, one of them in another namespace.
    let many = dir.file(
        "many.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reader\n  namespace: team-a\n  annotations:\n    eks.amazonaws.com/audience: sts.amazonaws.com\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: writer\n  namespace: team-a\n",
    );
    assert_eq!(
        ok(cluster(&data, &["apply", "-f", &many])),
        "serviceaccount/reader created\nserviceaccount/writer created\n"
    );

    let table = ok(cluster(&data, &["get", "serviceaccounts"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("SECRETS") && lines[0].contains("AGE"),
        "{table}"
    );
    assert!(lines[1].starts_with("my-service-account"), "{table}");
    let all = ok(cluster(&data, &["get", "sa", "-A", "-o", "name"]));
    assert_eq!(
        all,
        "serviceaccount/my-service-account\nserviceaccount/reader\nserviceaccount/writer\n"
    );
    let none = ok(cluster(&data, &["get", "sa", "-n", "empty"]));
    assert_eq!(none, "No resources found in empty namespace.\n");

    // Restarted on the same data directory: everything is still there.
    let addr = up.addr().to_string();
    drop(up);
    let _up = Up::start_on(&data, &addr, &[]);
    let yaml = ok(cluster(
        &data,
        &["get", "sa", "my-service-account", "-o", "yaml"],
    ));
    assert!(
        yaml.contains("eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/my-test-role"),
        "{yaml}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(cluster(
        &data,
        &["get", "sa", "-n", "team-a", "-o", "json"],
    )))
    .unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(
        json["items"][0]["metadata"]["annotations"]["eks.amazonaws.com/audience"],
        "sts.amazonaws.com"
    );

    // The real kubectl reads what `get -o yaml` prints as a ServiceAccount (kustomize parses
    // it as a resource, offline).
    let kust = dir.0.join("kust");
    std::fs::create_dir_all(&kust).unwrap();
    std::fs::write(kust.join("sa.yaml"), &yaml).unwrap();
    std::fs::write(
        kust.join("kustomization.yaml"),
        "resources:\n- sa.yaml\nnamespace: moved\n",
    )
    .unwrap();
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(&kust)
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let rendered = String::from_utf8(rendered.stdout).unwrap();
    assert!(
        rendered.contains("kind: ServiceAccount") && rendered.contains("namespace: moved"),
        "{rendered}"
    );

    // Removing the annotation (`KEY-`).
    ok(cluster(
        &data,
        &[
            "annotate",
            "serviceaccount/my-service-account",
            "eks.amazonaws.com/role-arn-",
        ],
    ));
    let wide = ok(cluster(&data, &["get", "sa", "-o", "wide"]));
    assert!(wide.contains("<none>"), "{wide}");
}

#[test]
fn refusals_say_what_is_wrong_and_change_nothing() {
    let dir = TempDir::new("sa-bad");
    let data = dir.0.join("data");
    let _up = Up::start(&data, &[]);

    let mixed = dir.file(
        "mixed.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: fine\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: awscli\n",
    );
    let out = cluster(&data, &["apply", "-f", &mixed]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("kind \"Pod\""), "{}", stderr(&out));
    // The good document before the bad one was not applied either.
    assert_eq!(ok(cluster(&data, &["get", "sa", "-o", "name"])), "");

    let cases: &[(&[&str], &str)] = &[
        (&["get", "pods"], "doesn't have a resource type \"pods\""),
        (
            &["get", "sa", "missing"],
            "serviceaccounts \"missing\" not found in namespace \"default\"",
        ),
        (
            &["get", "sa", "--cluster", "nope"],
            "the local clusters are: development-cluster (111111111111)",
        ),
        (&["annotate", "sa", "missing", "k=v"], "not found"),
        (
            &["annotate", "sa", "default", "bad key=v"],
            "metadata.annotations: Invalid value: \"bad key\"",
        ),
        (
            &["annotate", "sa", "default", "novalue"],
            "use KEY=VALUE to set one, KEY- to remove it",
        ),
        (
            &["get", "sa", "-n", "Bad_NS"],
            "metadata.namespace: Invalid value",
        ),
    ];
    for (args, expect) in cases {
        let out = cluster(&data, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    let garbage = dir.file("garbage.yaml", "kind: [unclosed");
    let out = cluster(&data, &["apply", "-f", &garbage]);
    assert!(
        stderr(&out).contains("is not YAML or JSON"),
        "{}",
        stderr(&out)
    );
    let wrong_ns = dir.file(
        "ns.yaml",
        "kind: ServiceAccount\nmetadata:\n  name: a\n  namespace: x\n",
    );
    let out = cluster(&data, &["apply", "-n", "y", "-f", &wrong_ns]);
    assert!(
        stderr(&out).contains("does not match the namespace \"y\""),
        "{}",
        stderr(&out)
    );

    // No twin running: the message says where it looked.
    drop(_up);
    let out = cluster(&data, &["get", "sa"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is `rolechain up` running there?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn associate_oidc_provider_is_idempotent_in_either_account() {
    let dir = TempDir::new("oidc-assoc");
    let data = dir.0.join("data");
    let up = Up::start(&data, &[]);
    let first = ok(cluster(&data, &["associate-oidc-provider"]));
    assert!(
        first.starts_with("created IAM Open ID Connect provider arn:aws:iam::111111111111:oidc-provider/127.0.0.1:"),
        "{first}"
    );
    assert!(first.contains("cluster \"development-cluster\" (audience sts.amazonaws.com)"));
    let again = ok(cluster(
        &data,
        &[
            "associate-oidc-provider",
            "--cluster",
            "development-cluster",
        ],
    ));
    assert!(
        again.contains("is already associated with cluster"),
        "{again}"
    );
    let wider = ok(cluster(
        &data,
        &[
            "associate-oidc-provider",
            "--audience",
            "pods.eks.amazonaws.com",
        ],
    ));
    assert!(
        wider.contains("now accepts audience pods.eks.amazonaws.com"),
        "{wider}"
    );
    // Seed 000's provider in the other account, for the same issuer.
    let shared = ok(cluster(
        &data,
        &["associate-oidc-provider", "--account", "222222222222"],
    ));
    assert!(
        shared.starts_with("created IAM Open ID Connect provider arn:aws:iam::222222222222:"),
        "{shared}"
    );
    // Refusals name what was wrong.
    let unknown = cluster(
        &data,
        &["associate-oidc-provider", "--account", "333333333333"],
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("333333333333"),
        "{}",
        stderr(&unknown)
    );
    let no_cluster = cluster(
        &data,
        &["associate-oidc-provider", "--cluster", "my-cluster"],
    );
    assert!(!no_cluster.status.success());
    assert!(
        stderr(&no_cluster).contains("development-cluster"),
        "{}",
        stderr(&no_cluster)
    );
    // IAM itself shows one provider per account, accepting both audiences in the first.
    let Some(listed) = up.aws(
        Some("developer"),
        &["iam", "list-open-id-connect-providers"],
    ) else {
        return;
    };
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    // Beside the examples' provider (the rolechain-examples cluster's issuer), one for the
    // cluster's.
    let issuer_id = first
        .split("/id/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let arns: Vec<&str> = listed["OpenIDConnectProviderList"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["Arn"].as_str())
        .filter(|a| a.ends_with(issuer_id))
        .collect();
    assert_eq!(arns.len(), 1, "{listed}");
    let arn = arns[0];
    let got = ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "get-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            arn,
        ],
    ));
    assert_eq!(
        got["ClientIDList"],
        serde_json::json!(["sts.amazonaws.com", "pods.eks.amazonaws.com"])
    );
}
