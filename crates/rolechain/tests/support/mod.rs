//! Running the real `rolechain` binary in tests: `rolechain up` as a child process, one-shot
//! commands, and the AWS CLI pointed at the profiles `up` writes.

#![allow(dead_code)]

pub mod agent;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Runs `rolechain ARGS` to completion.
pub fn rolechain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(args)
        .output()
        .expect("the rolechain binary runs")
}

/// Runs `rolechain ARGS` against the data directory `data` (`ROLECHAIN_DATA_DIR`, none of the
/// caller's endpoint or agent settings), with `env` added.
pub fn rolechain_in(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(args)
        .env("ROLECHAIN_DATA_DIR", data)
        .env_remove("ROLECHAIN_ENDPOINT")
        .env_remove("ROLECHAIN_AGENT")
        .envs(env.iter().copied())
        .output()
        .expect("the rolechain binary runs")
}

/// [`rolechain_in`] with no extra environment.
pub fn rolechain_at(data: &Path, args: &[&str]) -> Output {
    rolechain_in(data, args, &[])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "rolechain-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `rolechain up` running as a child process on a free loopback port; killed on drop.
pub struct Up {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub data_dir: PathBuf,
    /// What `up` printed after its first line.
    pub banner: Vec<String>,
    /// Everything `up` printed after the banner, as it arrives.
    pub later: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The twin's metrics once `up` had checked its examples: what tests count from.
    pub baseline_metrics: String,
}

impl Up {
    /// Starts `up` on `data_dir` with extra arguments and waits until it is serving.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Up {
        Up::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// [`start`](Self::start) on a given `--listen` address: a restart on the same data
    /// directory must serve where the clusters' issuers were created.
    pub fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Up {
        let data = data_dir.display().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rolechain"));
        cmd.args(["up", "--data-dir", &data, "--listen", listen])
            .args(extra);
        Up::spawn(cmd, data_dir)
    }

    /// [`start_on`](Self::start_on) run by `sh` after `umask UMASK`, as a user's shell would
    /// start it: what `up` creates must not depend on the umask.
    pub fn start_with_umask(data_dir: &Path, listen: &str, umask: &str) -> Up {
        let data = data_dir.display().to_string();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!("umask {umask} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_rolechain"),
            "up",
            "--data-dir",
            &data,
            "--listen",
            listen,
        ]);
        Up::spawn(cmd, data_dir)
    }

    fn spawn(mut cmd: Command, data_dir: &Path) -> Up {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("rolechain up starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines
            .next()
            .expect("up prints where it serves")
            .expect("utf-8");
        let base_url = first.rsplit(' ').next().unwrap_or_default().to_string();
        assert!(base_url.starts_with("http://"), "{first}");
        let banner: Vec<String> = lines.by_ref().take(8).map_while(Result::ok).collect();
        // Keep draining stdout so `up` never blocks on a full pipe.
        let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = std::sync::Arc::clone(&later);
        std::thread::spawn(move || {
            for line in lines.by_ref().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        let up = Up {
            child,
            base_url,
            data_dir: data_dir.to_path_buf(),
            banner,
            later,
            baseline_metrics: String::new(),
        };
        let mut up = up;
        up.wait_healthy();
        // The examples' checks make STS, EKS Auth and S3 calls of their own: let them finish,
        // and count what a test does from there.
        if up
            .banner
            .iter()
            .any(|l| l.contains("cluster rolechain-examples"))
        {
            up.output_until("Try one as its pod:");
        }
        up.baseline_metrics = try_http_get(up.addr(), "/_rolechain/metrics").unwrap_or_default();
        up
    }

    /// What `up` printed after the banner, once a line contains `until` (panics after 60 s).
    pub fn output_until(&self, until: &str) -> Vec<String> {
        for _ in 0..600 {
            let lines = self.later.lock().unwrap().clone();
            if lines.iter().any(|l| l.contains(until)) {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "rolechain up never printed {until:?}: {:?}",
            self.later.lock().unwrap()
        );
    }

    pub fn addr(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    fn wait_healthy(&self) {
        for _ in 0..200 {
            if try_http_get(self.addr(), "/_rolechain/health")
                .is_ok_and(|body| body.contains(r#""status":"ok""#))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("rolechain up at {} never became healthy", self.base_url);
    }

    /// `aws ARGS --profile PROFILE` through the config and credentials files `up` wrote, as a
    /// user who exported the lines `up` printed. `None` when the AWS CLI is not available (and
    /// peers are not required).
    pub fn aws(&self, profile: Option<&str>, args: &[&str]) -> Option<Output> {
        let mut cmd = self.aws_cli(&self.data_dir.join("aws/credentials"))?;
        cmd.args(args);
        match profile {
            Some(p) => {
                cmd.args(["--profile", p]);
            }
            None => {
                // An unsigned caller, like a pod with only its token.
                cmd.arg("--no-sign-request")
                    .env("AWS_DEFAULT_REGION", "us-east-1");
            }
        }
        Some(cmd.output().expect("python runs"))
    }

    /// `aws ARGS` with temporary credentials in the environment, as a pod does after exporting
    /// what `assume-role-with-web-identity` returned (seed 000); the endpoint comes from the
    /// default profile `up` wrote.
    pub fn aws_with_session(
        &self,
        (key, secret, token): (&str, &str, &str),
        args: &[&str],
    ) -> Option<Output> {
        let mut cmd = self.aws_cli(&self.data_dir.join("no-credentials"))?;
        cmd.args(args)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token);
        Some(cmd.output().expect("python runs"))
    }

    /// The pod's call with nothing but its token: unsigned `aws sts
    /// assume-role-with-web-identity` for `role_arn` with the token in `token_file`
    /// (`file://…`).
    pub fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token_file: &str,
    ) -> Option<Output> {
        self.aws(
            None,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                role_arn,
                "--role-session-name",
                session_name,
                "--web-identity-token",
                token_file,
            ],
        )
    }

    /// A token of the development cluster's service account `default/SERVICE_ACCOUNT` (see
    /// [`cluster_token`]).
    pub fn pod_token(&self, service_account: &str) -> String {
        cluster_token(&self.data_dir, service_account, &[])
    }

    /// `python -m awscli --output json` isolated from the machine's AWS set-up: `HOME` in the
    /// data directory, the config file `up` wrote and `credentials` as the credentials file.
    fn aws_cli(&self, credentials: &Path) -> Option<Command> {
        let mut cmd = Command::new(python()?);
        cmd.args(["-m", "awscli", "--output", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.data_dir)
            .env("AWS_CONFIG_FILE", self.data_dir.join("aws/config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1");
        Some(cmd)
    }
}

/// `rolechain cluster token` for the development cluster's service account
/// `default/SERVICE_ACCOUNT` in `data_dir`, with `extra` arguments (`--audience …`); asserts
/// success and returns the token.
pub fn cluster_token(data_dir: &Path, service_account: &str, extra: &[&str]) -> String {
    let data_dir = data_dir.display().to_string();
    let mut args = vec![
        "cluster",
        "token",
        "--data-dir",
        &data_dir,
        "--cluster",
        "development-cluster",
        "--namespace",
        "default",
        "--service-account",
        service_account,
    ];
    args.extend_from_slice(extra);
    let out = rolechain(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// The `[default]` profile's keys in the `aws/credentials` file `up` wrote in `data_dir`.
pub fn default_credentials(data_dir: &Path) -> aws_credential_types::Credentials {
    let text = std::fs::read_to_string(data_dir.join("aws/credentials")).unwrap();
    let section = text
        .split("\n[")
        .find(|s| s.trim_start_matches('[').starts_with("default]"))
        .unwrap_or_else(|| panic!("no [default] profile in {text}"));
    let value = |key: &str| {
        section
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {key} in {section}"))
    };
    aws_credential_types::Credentials::new(
        value("aws_access_key_id"),
        value("aws_secret_access_key"),
        None,
        None,
        "rolechain-up",
    )
}

/// The JSON an AWS CLI call printed, asserting it succeeded (`null` for no output).
pub fn ok_json(out: Option<Output>) -> serde_json::Value {
    let out = out.expect("peers checked first");
    assert!(
        out.status.success(),
        "aws failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Writes `text` to `dir/name` and returns it as the CLI takes files: `file://…`.
pub fn file_arg(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("file://{}", path.display())
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The interpreter with awscli and boto3 (`$ROLECHAIN_PYTHON`, default `python3`), or `None`
/// with a notice; a failure instead when `ROLECHAIN_REQUIRE_PEERS=1` (the `peers` gate).
pub fn python() -> Option<String> {
    peers::available("awscli, boto3").then(peers::python)
}

/// A raw HTTP/1.1 GET over loopback, enough for the twin's JSON endpoints.
pub fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"))
}

pub fn try_http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A raw HTTP/1.1 request over loopback with `headers` (besides `Content-Length`,
/// `Connection: close`, and `Host: ADDR` unless `headers` has a `Host`) and `body`, as
/// `curl -X METHOD -H … -d BODY` sends it: the status and the body of the answer.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
