//! The servers under load, started as separate processes the way users run them, and the roles
//! each scenario assumes, created through the server's own IAM API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::wire::{self, Endpoint, Signer};

/// The audience of IRSA tokens, and the OIDC provider's client id.
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// The service account whose tokens the web identity role trusts.
pub const NAMESPACE: &str = "default";
pub const SERVICE_ACCOUNT: &str = "loadgen";
pub const WEB_IDENTITY_ROLE: &str = "loadgen-web-identity";
pub const ASSUME_ROLE_ROLE: &str = "loadgen-assume-role";
/// The cluster of the default world whose issuer `rolechain up` serves.
const CLUSTER: &str = "development-cluster";
const STARTUP: Duration = Duration::from_secs(60);

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped or by [`Server::stop`].
pub struct Server {
    pub name: &'static str,
    pub endpoint: Endpoint,
    /// Where the server's stderr goes.
    pub log: PathBuf,
    child: Child,
}

impl Server {
    /// Asks the server to stop (SIGTERM) and waits; `Ok(true)` when it exited with status 0.
    pub async fn stop(mut self) -> anyhow::Result<bool> {
        terminate(&self.child);
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => Ok(status?.success()),
            Err(_) => {
                self.child.start_kill()?;
                Ok(false)
            }
        }
    }

    /// CPU time the server process has used so far (user and system, all its threads), from
    /// `/proc` (Linux; `None` elsewhere).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()?)).ok()?;
        // Fields after the command name (which may hold spaces, so split after its ")"):
        // state is field 3, utime 14 and stime 15, in USER_HZ (100 per second on Linux).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    /// The last lines of the server's log, for failure reports.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // The graceful stop `rolechain up` handles; `kill_on_drop` is the fallback.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&self.child);
    }
}

/// What a scenario needs from a target: where to send, whom to sign as, which roles to assume
/// and the token to assume the web identity role with.
pub struct Prepared {
    pub endpoint: Endpoint,
    pub signer: Signer,
    pub account: String,
    pub web_identity_role_arn: String,
    pub assume_role_arn: String,
    pub token: String,
    /// The `SubjectFromWebIdentityToken` to expect, for targets that answer it (moto does not).
    pub subject: Option<String>,
}

impl Server {
    /// Kills the server with SIGKILL, as a crash would, and waits for it to be gone.
    pub async fn kill_hard(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Starts `rolechain up` with the data directory in `dir` (new, or left by an earlier run,
/// which must then listen on the same address: the issuer URLs name it), on `listen`.
pub async fn start_twin(rolechain: &Path, dir: &Path, listen: &str) -> anyhow::Result<Server> {
    let data_dir = dir.join("twin");
    // Appended to, so a restart keeps the log of the run before it.
    let log = dir.join("twin.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let mut child = Command::new(rolechain)
        .arg("up")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(listen)
        // Sessions are logged at info, as a user running `up` sees them.
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} up", rolechain.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout from rolechain up"))?;
    let mut lines = BufReader::new(stdout).lines();
    let base_url = tokio::time::timeout(STARTUP, async {
        while let Some(line) = lines.next_line().await? {
            if let Some((_, url)) = line.split_once("the AWS twin is serving on ") {
                return anyhow::Ok(url.trim().to_string());
            }
        }
        bail!(
            "rolechain up exited before serving; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
    .await
    .map_err(|_| anyhow!("rolechain up did not start within {STARTUP:?}"))??;
    // Keep reading so that the twin never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        name: "twin",
        endpoint: Endpoint::from_base_url(&base_url)?,
        log,
        child,
    })
}

/// Starts `command` as server `name` (stderr to `log`) and returns it with the stdout lines it
/// printed up to and including the first containing `until`; its endpoint is the first
/// `http://` URL on those lines.
pub async fn start_process(
    name: &'static str,
    mut command: Command,
    log: PathBuf,
    until: &str,
) -> anyhow::Result<(Server, Vec<String>)> {
    let log_file = std::fs::File::create(&log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout from {name}"))?;
    let mut lines = BufReader::new(stdout).lines();
    let printed = tokio::time::timeout(STARTUP, async {
        let mut printed = Vec::new();
        while let Some(line) = lines.next_line().await? {
            let done = line.contains(until);
            printed.push(line);
            if done {
                return anyhow::Ok(printed);
            }
        }
        bail!(
            "{name} exited before serving; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
    .await
    .map_err(|_| anyhow!("{name} did not start within {STARTUP:?}"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = printed
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .ok_or_else(|| anyhow!("{name} printed no URL: {printed:?}"))?;
    let base = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let endpoint = Endpoint::from_base_url(&format!("http://{base}"))?;
    Ok((
        Server {
            name,
            endpoint,
            log,
            child,
        },
        printed,
    ))
}

impl Server {
    /// The server's resident memory now, in KiB, from `/proc` (Linux; `None` elsewhere).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

/// Starts moto's server (`moto_server`) on a free loopback port.
pub async fn start_moto(moto_server: &Path, dir: &Path) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = dir.join("moto.log");
    let child = Command::new(moto_server)
        .arg("-H")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("moto.out"))?)
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", moto_server.display()))?;
    let server = Server {
        name: "moto",
        endpoint: Endpoint::from_base_url(&format!("http://127.0.0.1:{port}"))?,
        log,
        child,
    };
    let started = Instant::now();
    loop {
        let probe = http::Request::builder()
            .uri("/moto-api/")
            .header("host", &server.endpoint.host)
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))?;
        let mut conn = wire::Connection::new(server.endpoint.addr);
        if let Ok((status, _)) = conn.send(probe).await {
            if status.is_success() {
                return Ok(server);
            }
        }
        if started.elapsed() > STARTUP {
            bail!(
                "moto_server did not answer within {STARTUP:?}; its log:\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The twin's admin key and development-cluster issuer, from the files `rolechain up` writes
/// in its data directory (the same ones `rolechain cluster token` and the AWS CLI use).
pub fn twin_identity(dir: &Path) -> anyhow::Result<(Signer, Arc<oidc::Issuer>)> {
    let data_dir = dir.join("twin");
    let credentials = std::fs::read_to_string(data_dir.join("aws").join("credentials"))
        .context("reading the twin's aws/credentials")?;
    let profile = ini_section(&credentials, "default")
        .ok_or_else(|| anyhow!("aws/credentials has no [default] profile"))?;
    let key = |name: &str| {
        profile
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("aws/credentials [default] has no {name}"))
    };
    let signer = Signer::new(&key("aws_access_key_id")?, &key("aws_secret_access_key")?);

    let mut issuer = None;
    for entry in std::fs::read_dir(data_dir.join("oidc")).context("reading the twin's oidc/")? {
        let path = entry?.path();
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("issuer.json"))?)?;
        if record["cluster"] == CLUSTER {
            let url = record["issuer_url"]
                .as_str()
                .ok_or_else(|| anyhow!("{} has no issuer_url", path.display()))?;
            issuer = Some(oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
                url,
                path.join("keys"),
            ))?);
        }
    }
    let issuer = issuer.ok_or_else(|| anyhow!("the twin serves no issuer for {CLUSTER}"))?;
    Ok((signer, Arc::new(issuer)))
}

/// The `key = value` pairs of `[name]` in an INI file.
fn ini_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let header = format!("[{name}]");
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// Creates, through the target's IAM API, the OIDC provider for `issuer` and the two roles
/// the scenarios assume, and mints the token.
pub async fn prepare(
    endpoint: &Endpoint,
    signer: Signer,
    issuer: &oidc::Issuer,
) -> anyhow::Result<Prepared> {
    let who = wire::call(
        endpoint,
        wire::signed(
            endpoint,
            &signer,
            "sts",
            wire::form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
        )?,
        "GetCallerIdentity",
        &["Account", "Arn"],
    )
    .await?;
    let account = who["Account"].clone();
    let caller = who["Arn"].clone();

    let host_path = issuer
        .issuer_url()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string();
    let provider = wire::call(
        endpoint,
        wire::signed(
            endpoint,
            &signer,
            "iam",
            wire::form(&[
                ("Action", "CreateOpenIDConnectProvider"),
                ("Version", "2010-05-08"),
                ("Url", &format!("https://{host_path}")),
                ("ClientIDList.member.1", AUDIENCE),
            ]),
        )?,
        "CreateOpenIDConnectProvider",
        &["OpenIDConnectProviderArn"],
    )
    .await?;
    let provider_arn = &provider["OpenIDConnectProviderArn"];
    let subject = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    // Seed 002's trust policy: the provider, and the token's audience and subject.
    let web_trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{host_path}:aud"): AUDIENCE,
                format!("{host_path}:sub"): subject,
            }}
        }]
    });
    let assume_trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": caller},
            "Action": "sts:AssumeRole"
        }]
    });
    let mut arns = Vec::new();
    for (name, trust) in [
        (WEB_IDENTITY_ROLE, web_trust),
        (ASSUME_ROLE_ROLE, assume_trust),
    ] {
        let role = wire::call(
            endpoint,
            wire::signed(
                endpoint,
                &signer,
                "iam",
                wire::form(&[
                    ("Action", "CreateRole"),
                    ("Version", "2010-05-08"),
                    ("RoleName", name),
                    ("AssumeRolePolicyDocument", &trust.to_string()),
                ]),
            )?,
            &format!("CreateRole {name}"),
            &["Arn"],
        )
        .await?;
        arns.push(role["Arn"].clone());
    }
    let token = issuer.mint(&oidc::TokenRequest::new(
        NAMESPACE,
        SERVICE_ACCOUNT,
        "6a0c3b4e-7d1f-4e2a-9b3c-000000000001",
        AUDIENCE,
    ))?;
    Ok(Prepared {
        endpoint: endpoint.clone(),
        signer,
        account,
        web_identity_role_arn: arns[0].clone(),
        assume_role_arn: arns[1].clone(),
        token,
        subject: Some(subject),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_ini_section() {
        let text = "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s=1\n\n[dev]\naws_access_key_id = AKIA2\n";
        let s = ini_section(text, "default").unwrap();
        assert_eq!(
            s,
            vec![
                ("aws_access_key_id".to_string(), "AKIA1".to_string()),
                ("aws_secret_access_key".to_string(), "s=1".to_string())
            ]
        );
        assert!(ini_section(text, "missing").is_none());
    }
}
