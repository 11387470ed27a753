//! `rolechain agent` as a child process in front of `rolechain up`, and the two-hop chain it is
//! tested with: a role in the developer account assumed with the pod's own token, then a role
//! in shared_content (with an external id) that may read seed 000's picture.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{cluster_token, file_arg, ok_json, Up};

pub const DEV: &str = "111111111111";
pub const SHARED: &str = "222222222222";
pub const FIRST: &str = "agent-first";
pub const PICS: &str = "agent-pics";
pub const EXTERNAL_ID: &str = "pics-external-id";
pub const POD_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// The issuer of the development cluster, as `aws eks describe-cluster` gives it.
pub fn issuer(up: &Up) -> String {
    let out = up
        .aws(
            Some("developer"),
            &[
                "eks",
                "describe-cluster",
                "--name",
                "development-cluster",
                "--query",
                "cluster.identity.oidc.issuer",
                "--output",
                "text",
            ],
        )
        .expect("peers checked first");
    assert!(out.status.success(), "{}", super::stderr(&out));
    super::stdout(&out).trim().to_string()
}

/// Creates the chain's IAM side with the AWS CLI: the OIDC provider (audience
/// `pods.eks.amazonaws.com`) and role `agent-first` in the developer account, trusting every
/// service account of namespace `default`, allowed to assume `agent-pics` in shared_content,
/// which trusts `agent-first` with the external id and may read `pics/*`. Returns the issuer.
pub fn create_chain(up: &Up, files: &Path) -> String {
    let issuer = issuer(up);
    let hp = issuer.trim_start_matches("http://").to_string();
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            POD_AUDIENCE,
        ],
    ));
    let first_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
  "Principal":{{"Federated":"arn:aws:iam::{DEV}:oidc-provider/{hp}"}},
  "Action":"sts:AssumeRoleWithWebIdentity",
  "Condition":{{"StringLike":{{"{hp}:sub":"system:serviceaccount:default:*"}},
                "StringEquals":{{"{hp}:aud":"{POD_AUDIENCE}"}}}}}}]}}"#
    );
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-role",
            "--role-name",
            FIRST,
            "--assume-role-policy-document",
            &file_arg(files, "first-trust.json", &first_trust),
        ],
    ));
    let assume_pics = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::{SHARED}:role/{PICS}"}}]}}"#
    );
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            FIRST,
            "--policy-name",
            "assume-pics",
            "--policy-document",
            &assume_pics,
        ],
    ));
    let pics_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
  "Principal":{{"AWS":"arn:aws:iam::{DEV}:role/{FIRST}"}},
  "Action":["sts:AssumeRole","sts:TagSession"],
  "Condition":{{"StringEquals":{{"sts:ExternalId":"{EXTERNAL_ID}"}}}}}}]}}"#
    );
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "create-role",
            "--role-name",
            PICS,
            "--assume-role-policy-document",
            &file_arg(files, "pics-trust.json", &pics_trust),
        ],
    ));
    ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            PICS,
            "--policy-name",
            "read-pics",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
        ],
    ));
    issuer
}

/// An association file giving each of `service_accounts` (namespace `default`) the chain.
pub fn associations(service_accounts: &[&str]) -> String {
    let mut text = String::from("associations:\n");
    for sa in service_accounts {
        text.push_str(&format!(
            "  - namespace: default\n    serviceAccount: {sa}\n    roleArn: arn:aws:iam::{DEV}:role/{FIRST}\n    targetRoleArns:\n      - arn: arn:aws:iam::{SHARED}:role/{PICS}\n        externalId: {EXTERNAL_ID}\n"
        ));
    }
    text
}

/// A pod-bound token of `default/SERVICE_ACCOUNT` for pod `pod`, audience
/// `pods.eks.amazonaws.com` unless `extra` says otherwise.
pub fn pod_token(up: &Up, service_account: &str, pod: &str, extra: &[&str]) -> String {
    let mut args = vec!["--pod-name", pod];
    if !extra.contains(&"--audience") {
        args.extend(["--audience", POD_AUDIENCE]);
    }
    args.extend_from_slice(extra);
    cluster_token(&up.data_dir, service_account, &args)
}

/// `rolechain agent` on loopback ports, pointed at `up`; killed on drop.
pub struct Agent {
    pub child: Child,
    /// `127.0.0.1:PORT` of the credentials listener.
    pub addr: String,
    pub probes: String,
    pub metrics: String,
}

impl Agent {
    pub fn start(up: &Up, issuer: &str, associations: &Path, extra: &[&str]) -> Agent {
        Agent::start_with_env(up, issuer, associations, extra, &[])
    }

    /// [`start`](Self::start) with more environment variables; when they name the endpoint
    /// (`AWS_ENDPOINT_URL…`), `--endpoint-url` is not passed.
    pub fn start_with_env(
        up: &Up,
        issuer: &str,
        associations: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let assoc = associations.display().to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rolechain"));
        command.args([
            "agent",
            "--cluster",
            "development-cluster",
            "--issuer",
            issuer,
            "--associations",
            &assoc,
            "--region",
            "us-east-1",
            "--bind",
            "127.0.0.1:0",
            "--probe-bind",
            "127.0.0.1:0",
            "--metrics-bind",
            "127.0.0.1:0",
        ]);
        if !env.iter().any(|(k, _)| k.starts_with("AWS_ENDPOINT_URL")) {
            command.args(["--endpoint-url", &up.base_url]);
        }
        let mut child = command
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", up.data_dir.join("agent-home"))
            .env("AWS_CONFIG_FILE", up.data_dir.join("aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                up.data_dir.join("aws/credentials"),
            )
            .env("AWS_PROFILE", "developer")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rolechain agent starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut url = |prefix: &str| -> String {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("agent exited before printing {prefix}"))
                .unwrap();
            let rest = line
                .strip_prefix(&format!("rolechain agent: {prefix} at http://"))
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            rest.split('/').next().unwrap().to_string()
        };
        let addr = url("credentials");
        let probes = url("probes");
        let metrics = url("metrics");
        std::thread::spawn(move || for _ in lines {});
        // Logs to the test's stderr, shown when a test fails.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
            }
        });
        let agent = Agent {
            child,
            addr,
            probes,
            metrics,
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if super::try_http_get(&self.probes, "/readyz")
                .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent never became ready");
    }

    /// `GET /v1/credentials` with `Host` and `Authorization` as given: (status, body).
    pub fn get(&self, host: Option<&str>, authorization: Option<&str>) -> (u16, serde_json::Value) {
        self.request("/v1/credentials", host, authorization)
    }

    pub fn request(
        &self,
        path: &str,
        host: Option<&str>,
        authorization: Option<&str>,
    ) -> (u16, serde_json::Value) {
        // No Host at all is sent as an empty one: `http` adds the address otherwise.
        let mut headers = vec![("Host", host.unwrap_or(""))];
        if let Some(token) = authorization {
            headers.push(("Authorization", token));
        }
        let (status, body) = super::http(&self.addr, "GET", path, &headers, "");
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {status} {body}"));
        (status, json)
    }

    /// A request as a pod makes it: `Host` the agent's address.
    pub fn credentials(&self, token: &str) -> (u16, serde_json::Value) {
        self.get(Some(&self.addr.clone()), Some(token))
    }

    /// The value of the Prometheus sample `name{labels}` (labels as written), 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        metric(&super::http_get(&self.metrics, "/metrics"), sample)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of sample `sample` (`name{label="v",…}` exactly as exposed) in a metrics page.
pub fn metric(page: &str, sample: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The twin's count of STS `action` answered 200 since `up` started (after its example
/// checks).
pub fn sts_calls(up: &Up, action: &str) -> f64 {
    let page = super::http_get(up.addr(), "/_rolechain/metrics");
    let sample =
        format!(r#"rolechain_twin_requests_total{{service="sts",action="{action}",code="200"}}"#);
    metric(&page, &sample) - metric(&up.baseline_metrics, &sample)
}

/// Runs `python -c SCRIPT` as a pod whose SDK finds credentials through the agent: the
/// container provider's two variables, the twin's endpoint and region from `up`'s config
/// file, and no other credentials.
pub fn as_pod(
    python: &str,
    up: &Up,
    agent: &Agent,
    token_file: &Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(python)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", up.data_dir.join("pod-home"))
        .env("AWS_CONFIG_FILE", up.data_dir.join("aws/config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            up.data_dir.join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{}/v1/credentials", agent.addr),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file)
        .output()
        .expect("python runs")
}
