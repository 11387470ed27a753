//! The mutation core against pods written as users write them (YAML): each rule of the EKS
//! Pod Identity webhook, the patch applied to the original giving the mutated pod, fields the
//! crate's Kubernetes types do not know kept, idempotence.

use k8s_openapi::api::core::v1::ServiceAccount;
use mutation::{mutate, Mode, Mutation, Settings, Skip};
use serde_json::{json, Value};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("test YAML")
}

fn service_account(annotations: &[(&str, &str)]) -> ServiceAccount {
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("my-service-account".into());
    sa.metadata.namespace = Some("default".into());
    sa.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    sa
}

const ROLE: &str = "arn:aws:iam::111111111111:role/s3-reader";

fn irsa_sa() -> ServiceAccount {
    service_account(&[("eks.amazonaws.com/role-arn", ROLE)])
}

const APP: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: default
spec:
  serviceAccountName: my-service-account
  containers:
    - name: app
      image: amazon/aws-cli
      env:
        - name: KEEP
          value: "me"
"#;

/// The patch applied to the input gives the output, and it only adds.
fn check_patch(input: &Value, m: &Mutation) {
    let mut patched = input.clone();
    json_patch::patch(&mut patched, &m.patch).expect("the patch applies");
    assert_eq!(patched, m.pod, "patch(input) == mutated pod");
    let ops = serde_json::to_value(&m.patch).unwrap();
    for op in ops.as_array().unwrap() {
        assert_eq!(op["op"], "add", "only adds: {op}");
        let path = op["path"].as_str().unwrap();
        assert_ne!(path, "/spec/containers", "never a whole container list");
        assert_ne!(path, "/spec/initContainers", "never a whole container list");
    }
}

fn env<'a>(pod: &'a Value, container: &str) -> Vec<(&'a str, &'a str)> {
    let all = pod["spec"]["containers"].as_array().unwrap().iter().chain(
        pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten(),
    );
    all.filter(|c| c["name"] == container)
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["value"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

#[test]
fn irsa_adds_the_role_the_token_file_the_mount_and_the_volume() {
    let pod = yaml(APP);
    let m = mutate(&pod, Some(&irsa_sa()), false, &Settings::default()).unwrap();
    assert_eq!(
        m.mode,
        Mode::WebIdentity {
            role_arn: ROLE.into()
        }
    );
    check_patch(&pod, &m);
    assert_eq!(
        env(&m.pod, "app"),
        [
            ("KEEP", "me"),
            ("AWS_ROLE_ARN", ROLE),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
            ),
        ]
    );
    assert_eq!(
        m.pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}])
    );
    assert_eq!(
        m.pod["spec"]["volumes"],
        json!([{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}])
    );
    let token = m.token.unwrap();
    assert_eq!(token.expiration_seconds, 86400);
}

#[test]
fn unknown_fields_and_native_sidecars_are_kept() {
    let pod = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: app, labels: {app: web}}
spec:
  futureSpecField: {keep: true}
  initContainers:
    - name: proxy
      image: envoy
      restartPolicy: Always
      futureContainerField: [1, 2]
  containers:
    - name: app
      image: app
      resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
  volumes:
    - name: data
      emptyDir: {}
"#,
    );
    let m = mutate(&pod, Some(&irsa_sa()), false, &Settings::default()).unwrap();
    check_patch(&pod, &m);
    let proxy = &m.pod["spec"]["initContainers"][0];
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["futureContainerField"], json!([1, 2]));
    assert_eq!(m.pod["spec"]["futureSpecField"], json!({"keep": true}));
    assert_eq!(
        m.pod["spec"]["containers"][0]["resizePolicy"][0]["restartPolicy"],
        "NotRequired"
    );
    assert_eq!(env(&m.pod, "proxy").len(), 2, "init containers too");
    let volumes: Vec<&str> = m.pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["data", "aws-iam-token"]);
    assert_eq!(m.containers.len(), 2);
    assert!(m.containers[0].init && m.containers.iter().all(|c| c.changed));
}

#[test]
fn mutating_twice_changes_nothing_and_says_why() {
    let pod = yaml(APP);
    let settings = Settings {
        region: Some("us-east-1".into()),
        regional_sts: true,
        ..Settings::default()
    };
    let once = mutate(&pod, Some(&irsa_sa()), false, &settings).unwrap();
    let twice = mutate(&once.pod, Some(&irsa_sa()), false, &settings).unwrap();
    assert!(twice.patch.0.is_empty(), "{:?}", twice.patch);
    assert_eq!(twice.pod, once.pod);
    assert!(!twice.containers[0].changed);
    assert!(twice.containers[0]
        .skipped_because
        .as_deref()
        .unwrap()
        .contains("already has"));
    // Pod Identity, the same.
    let once = mutate(&pod, None, true, &settings).unwrap();
    let twice = mutate(&once.pod, None, true, &settings).unwrap();
    assert!(twice.patch.0.is_empty(), "{:?}", twice.patch);
}

#[test]
fn what_the_user_set_is_never_overridden() {
    let pod = yaml(
        r#"
metadata: {name: app}
spec:
  containers:
    - name: app
      env:
        - {name: AWS_ROLE_ARN, value: "arn:aws:iam::999999999999:role/mine"}
        - {name: AWS_REGION, value: eu-west-1}
        - {name: AWS_STS_REGIONAL_ENDPOINTS, value: legacy}
"#,
    );
    let settings = Settings {
        region: Some("us-east-1".into()),
        regional_sts: true,
        ..Settings::default()
    };
    let m = mutate(&pod, Some(&irsa_sa()), false, &settings).unwrap();
    check_patch(&pod, &m);
    let vars = env(&m.pod, "app");
    assert_eq!(vars.len(), 3, "nothing added beside the user's: {vars:?}");
    assert!(vars.contains(&("AWS_ROLE_ARN", "arn:aws:iam::999999999999:role/mine")));
    assert!(vars.contains(&("AWS_STS_REGIONAL_ENDPOINTS", "legacy")));
    // The mount is still added: the token must be there for the user's own variables.
    assert_eq!(
        m.pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
        "aws-iam-token"
    );
}

#[test]
fn skipped_containers_opted_out_pods_and_roleless_service_accounts() {
    let pod = yaml(
        r#"
metadata:
  name: app
  annotations: {eks.amazonaws.com/skip-containers: "sidecar, logger"}
spec:
  containers:
    - {name: app}
    - {name: sidecar}
    - {name: logger}
"#,
    );
    let m = mutate(&pod, Some(&irsa_sa()), false, &Settings::default()).unwrap();
    check_patch(&pod, &m);
    assert_eq!(m.pod["spec"]["containers"][1], json!({"name": "sidecar"}));
    assert_eq!(m.pod["spec"]["containers"][2], json!({"name": "logger"}));
    let skipped: Vec<&str> = m
        .containers
        .iter()
        .filter(|c| !c.changed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(skipped, ["sidecar", "logger"]);
    assert!(m.containers[1]
        .skipped_because
        .as_deref()
        .unwrap()
        .contains("skip-containers"));

    let opted_out = yaml("metadata: {labels: {eks.amazonaws.com/skip-pod-identity-webhook: \"\"}}\nspec: {containers: [{name: app}]}\n");
    let m = mutate(&opted_out, Some(&irsa_sa()), true, &Settings::default()).unwrap();
    assert_eq!(m.mode, Mode::Untouched(Skip::OptedOut));
    assert!(m.patch.0.is_empty() && m.pod == opted_out);

    for sa in [
        None,
        Some(service_account(&[])),
        Some(service_account(&[("eks.amazonaws.com/role-arn", "")])),
    ] {
        let m = mutate(&yaml(APP), sa.as_ref(), false, &Settings::default()).unwrap();
        assert_eq!(m.mode, Mode::Untouched(Skip::NoRole));
        assert!(m.patch.0.is_empty());
    }
}

#[test]
fn an_association_gives_container_credentials_and_wins_over_irsa() {
    for (name, pod) in [
        ("no labels", yaml(APP)),
        (
            "labels",
            yaml("metadata: {name: app, labels: {app: web}}\nspec: {containers: [{name: app}]}\n"),
        ),
    ] {
        let m = mutate(&pod, Some(&irsa_sa()), true, &Settings::default()).unwrap();
        assert_eq!(m.mode, Mode::ContainerCredentials, "{name}");
        check_patch(&pod, &m);
        let vars = env(&m.pod, "app");
        assert!(
            vars.contains(&(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials"
            )),
            "{vars:?}"
        );
        assert!(vars.contains(&(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
        )));
        assert!(!vars.iter().any(|(n, _)| *n == "AWS_ROLE_ARN"), "{vars:?}");
        assert_eq!(
            m.pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
            "enabled"
        );
        let volume = &m.pod["spec"]["volumes"][0];
        assert_eq!(volume["name"], "eks-pod-identity-token");
        assert_eq!(
            volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "pods.eks.amazonaws.com"
        );
        assert_eq!(
            m.pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
        );
    }
}

#[test]
fn lifetimes_audiences_regions_and_windows() {
    let sa = service_account(&[
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/audience", "my-audience"),
        ("eks.amazonaws.com/token-expiration", "3600"),
        ("eks.amazonaws.com/sts-regional-endpoints", "true"),
    ]);
    let settings = Settings {
        region: Some("us-east-1".into()),
        ..Settings::default()
    };
    let m = mutate(&yaml(APP), Some(&sa), false, &settings).unwrap();
    let token = m.token.clone().unwrap();
    assert_eq!(
        (token.audience.as_str(), token.expiration_seconds),
        ("my-audience", 3600)
    );
    let vars = env(&m.pod, "app");
    for want in [
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ] {
        assert!(vars.contains(&want), "{want:?} in {vars:?}");
    }
    // The pod's own lifetime wins, but never below the API server's 600 s; nonsense is ignored.
    for (value, want) in [("7200", 7200), ("100", 600), ("soon", 3600)] {
        let pod = yaml(&format!(
            "metadata: {{name: app, annotations: {{eks.amazonaws.com/token-expiration: \"{value}\"}}}}\nspec: {{containers: [{{name: app}}]}}\n"
        ));
        let m = mutate(&pod, Some(&sa), false, &settings).unwrap();
        assert_eq!(m.token.unwrap().expiration_seconds, want, "{value}");
    }
    // Pod Identity tokens with the default lifetime are spread over 22–24 hours.
    for n in [0, 1, 7200, 7201, u64::MAX] {
        let m = mutate(
            &yaml(APP),
            None,
            true,
            &Settings {
                token_jitter: Some(n),
                ..Settings::default()
            },
        )
        .unwrap();
        let e = m.token.unwrap().expiration_seconds;
        assert!((79_200..=86_400).contains(&e), "{n}: {e}");
    }
    // Windows nodes read the token from C:\.
    let windows = yaml("metadata: {name: w}\nspec: {nodeSelector: {kubernetes.io/os: windows}, containers: [{name: app}]}\n");
    let m = mutate(&windows, Some(&irsa_sa()), false, &Settings::default()).unwrap();
    assert_eq!(
        m.token.unwrap().token_file,
        r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token"
    );
}

#[test]
fn what_is_not_a_pod_is_refused() {
    for bad in [
        json!(null),
        json!({}),
        json!({"spec": {}}),
        json!({"spec": {"containers": "x"}}),
        json!({"spec": {"containers": [1]}}),
        json!({"spec": {"containers": [], "initContainers": {}}}),
    ] {
        assert!(
            mutate(&bad, Some(&irsa_sa()), false, &Settings::default()).is_err(),
            "{bad}"
        );
    }
}
