//! `rolechain exec` as users run it against `rolechain up`: the command gets a pod's
//! environment (the webhook's variables, a private token file holding exactly the token, the
//! twin as endpoint) and nothing of the caller's AWS settings; its exit status comes back; and
//! what a real cluster would refuse is refused with the API server's words.

mod support;

use std::process::Output;

use support::*;

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

const ROLE: &str = "arn:aws:iam::111111111111:role/my-test-role";

/// A twin with `default/my-service-account` annotated for IRSA.
fn annotated(dir: &TempDir) -> (Up, std::path::PathBuf) {
    let data = dir.0.join("data");
    let up = Up::start(&data, &[]);
    let sa = dir.file(
        "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-service-account\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/my-test-role\n    eks.amazonaws.com/token-expiration: \"3600\"\n",
    );
    ok(rolechain_in(&data, &["cluster", "apply", "-f", &sa], &[]));
    (up, data)
}

fn env_lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_command_sees_a_pod_environment_and_none_of_the_callers_aws_settings() {
    let dir = TempDir::new("exec-env");
    let (up, data) = annotated(&dir);
    // The caller's own AWS settings, which must not reach the pod.
    let leaked = [
        ("AWS_ACCESS_KEY_ID", "AKIAREALKEYOFTHEUSER1"),
        ("AWS_SECRET_ACCESS_KEY", "real-secret"),
        ("AWS_SESSION_TOKEN", "real-token"),
        ("AWS_PROFILE", "production"),
        ("AWS_CONFIG_FILE", "/home/user/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/home/user/.aws/credentials"),
        ("AWS_REGION", "eu-west-3"),
    ];
    let script = "env; f=\"$AWS_WEB_IDENTITY_TOKEN_FILE\"; echo TOKEN_MODE=$(stat -c %a \"$f\"); echo TOKEN_LINES=$(wc -l < \"$f\"); echo HOME_MODE=$(stat -c %a \"$(dirname \"$(dirname \"$f\")\")\")";
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "-n",
            "default",
            "--service-account",
            "my-service-account",
            "--",
            "sh",
            "-c",
            script,
        ],
        &leaked,
    );
    let env = env_lines(&ok(out));
    for (k, _) in leaked.iter().filter(|(k, _)| *k != "AWS_REGION") {
        assert!(!env.contains_key(*k), "{k} leaked into the pod: {env:?}");
    }
    assert_eq!(env["AWS_ROLE_ARN"], ROLE);
    assert_eq!(
        env["AWS_REGION"], "us-east-1",
        "the cluster's region, not the caller's"
    );
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert_eq!(env["AWS_ENDPOINT_URL"], up.base_url);
    assert_eq!(env["AWS_EC2_METADATA_DISABLED"], "true");
    assert_eq!(env["HOSTNAME"], "exec-my-service-account");
    assert_eq!(env["TOKEN_MODE"], "600");
    assert_eq!(
        env["TOKEN_LINES"], "0",
        "a token file holds exactly the token"
    );
    assert_eq!(env["HOME_MODE"], "700");
    let token_file = std::path::PathBuf::from(&env["AWS_WEB_IDENTITY_TOKEN_FILE"]);
    assert!(
        env["HOME"].contains("rolechain-exec"),
        "HOME is the private directory: {}",
        env["HOME"]
    );
    // The private directory is gone once the command is done.
    assert!(
        !token_file.exists(),
        "{} outlived the command",
        token_file.display()
    );
}

#[test]
fn the_token_is_the_pods_bound_to_its_stored_service_account() {
    let dir = TempDir::new("exec-token");
    let (_up, data) = annotated(&dir);
    let Some(py) = python() else { return };
    // The token's claims, read inside the "pod".
    let script = "import base64,json,os;t=open(os.environ['AWS_WEB_IDENTITY_TOKEN_FILE']).read();p=t.split('.')[1];print(json.dumps(json.loads(base64.urlsafe_b64decode(p+'='*(-len(p)%4)))))";
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            &py,
            "-c",
            script,
        ],
        &[],
    );
    let claims: serde_json::Value = serde_json::from_str(ok(out).trim()).unwrap();
    assert_eq!(
        claims["sub"],
        "system:serviceaccount:default:my-service-account"
    );
    assert_eq!(claims["aud"], serde_json::json!(["sts.amazonaws.com"]));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600, "the service account's token-expiration");
    let sa_uid = &claims["kubernetes.io"]["serviceaccount"]["uid"];
    let stored = ok(rolechain_in(
        &data,
        &["cluster", "get", "sa", "my-service-account", "-o", "json"],
        &[],
    ));
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        *sa_uid, stored["metadata"]["uid"],
        "the token carries the stored uid"
    );
    assert_eq!(
        claims["kubernetes.io"]["pod"]["name"],
        "exec-my-service-account"
    );
}

/// The pod's token is re-minted while the command runs, as kubelet rotates a projected token
/// (here every second): the file always holds exactly one whole, newer token.
#[test]
fn the_token_is_kept_fresh_while_the_command_runs() {
    let dir = TempDir::new("exec-token-refresh");
    let (_up, data) = annotated(&dir);
    let script = r#"f="$AWS_WEB_IDENTITY_TOKEN_FILE"
first=$(cat "$f"); sleep 3.5; second=$(cat "$f")
[ "$first" != "$second" ] && echo rotated
case "$second" in *$'\n'*) echo "a newline" ;; esac
echo "parts: $(printf %s "$second" | tr -cd . | wc -c)""#;
    let out = ok(rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--token-refresh",
            "1s",
            "--",
            "bash",
            "-c",
            script,
        ],
        &[],
    ));
    assert!(out.contains("rotated"), "{out}");
    assert!(!out.contains("a newline"), "{out}");
    assert!(out.contains("parts: 2"), "a whole JWT: {out}");
}

#[test]
fn a_pod_file_chooses_the_container_and_keeps_what_the_user_set() {
    let dir = TempDir::new("exec-pod");
    let (_up, data) = annotated(&dir);
    let pod = dir.file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: awscli\n  namespace: default\nspec:\n  serviceAccountName: my-service-account\n  containers:\n  - name: first\n    image: amazon/aws-cli\n  - name: awscli\n    image: amazon/aws-cli\n    env:\n    - name: AWS_REGION\n      value: eu-central-1\n    - name: GREETING\n      value: hello\n",
    );
    let out = rolechain_in(
        &data,
        &["exec", "-f", &pod, "-c", "awscli", "--", "env"],
        &[],
    );
    let env = env_lines(&ok(out));
    assert_eq!(
        env["AWS_REGION"], "eu-central-1",
        "what the user set is kept"
    );
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["AWS_ROLE_ARN"], ROLE);
    assert_eq!(env["HOSTNAME"], "awscli");

    let out = rolechain_in(
        &data,
        &["exec", "-f", &pod, "-c", "nope", "--", "true"],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("its containers are: first, awscli"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exit_status_and_refusals() {
    let dir = TempDir::new("exec-status");
    let (_up, data) = annotated(&dir);
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(7));
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(128 + 15));

    let out = rolechain_in(
        &data,
        &["exec", "--service-account", "ghost", "--", "true"],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods \"exec-ghost\" is forbidden: error looking up service account default/ghost"
        ),
        "{}",
        stderr(&out)
    );
    // The namespace's default exists, without credentials: the command runs, told why.
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "default",
            "--",
            "sh",
            "-c",
            "echo AWS_ROLE_ARN=${AWS_ROLE_ARN:-unset}",
        ],
        &[],
    );
    assert_eq!(ok_text(&out), "AWS_ROLE_ARN=unset\n");
    assert!(
        stderr(&out).contains("gets no AWS credentials"),
        "{}",
        stderr(&out)
    );
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            "/nonexistent/cmd",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("running /nonexistent/cmd"),
        "{}",
        stderr(&out)
    );
    let not_a_pod = dir.file(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n",
    );
    let out = rolechain_in(&data, &["exec", "-f", &not_a_pod, "--", "true"], &[]);
    assert!(
        stderr(&out).contains("must hold exactly one Pod"),
        "{}",
        stderr(&out)
    );
}

fn ok_text(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

/// Seed 004's association (a role trusting `pods.eks.amazonaws.com`) for
/// `default/my-service-account`, made with the AWS CLI; `None` without the CLI.
fn associate(up: &Up) -> Option<()> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let created = up.aws(
        Some("default"),
        &[
            "iam",
            "create-role",
            "--role-name",
            "pi-role",
            "--assume-role-policy-document",
            trust,
        ],
    )?;
    assert!(created.status.success(), "{}", stderr(&created));
    let associated = up.aws(
        Some("default"),
        &[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "development-cluster",
            "--namespace",
            "default",
            "--service-account",
            "my-service-account",
            "--role-arn",
            "arn:aws:iam::111111111111:role/pi-role",
        ],
    )?;
    assert!(associated.status.success(), "{}", stderr(&associated));
    Some(())
}

#[test]
fn a_pod_identity_association_is_served_by_the_agent_up_runs() {
    let dir = TempDir::new("exec-pi");
    let (up, data) = annotated(&dir);
    let Some(py) = python() else { return };
    if associate(&up).is_none() {
        return;
    }
    // The association wins over the IRSA annotation, as in the webhook: the pod asks the
    // agent `up` runs, which goes through the twin's EKS Auth.
    let script = "import boto3;print(boto3.client('sts').get_caller_identity()['Arn'])";
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            &py,
            "-c",
            script,
        ],
        &[],
    );
    let arn = ok(out);
    assert!(
        arn.starts_with("arn:aws:sts::111111111111:assumed-role/pi-role/eks-development-cluster-"),
        "{arn}"
    );
    let env = env_lines(&ok(rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            "env",
        ],
        &[],
    )));
    assert!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].starts_with("http://127.0.0.1:"),
        "{env:?}"
    );
    assert!(
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].ends_with("eks-pod-identity-token"),
        "{env:?}"
    );
    assert!(!env.contains_key("AWS_ROLE_ARN"), "{env:?}");
    // --agent names another agent.
    let env = env_lines(&ok(rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--agent",
            "http://127.0.0.1:9/v1/credentials",
            "--",
            "env",
        ],
        &[],
    )));
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        "http://127.0.0.1:9/v1/credentials"
    );
}

#[test]
fn without_an_agent_exec_says_what_to_start() {
    let dir = TempDir::new("exec-noagent");
    let data = dir.0.join("data");
    let up = Up::start(&data, &["--no-agent"]);
    let sa = dir.file(
        "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-service-account\n",
    );
    ok(rolechain_in(&data, &["cluster", "apply", "-f", &sa], &[]));
    if associate(&up).is_none() {
        return;
    }
    let out = rolechain_in(
        &data,
        &[
            "exec",
            "--service-account",
            "my-service-account",
            "--",
            "true",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has a Pod Identity association or a chain"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--agent"), "{}", stderr(&out));
}
