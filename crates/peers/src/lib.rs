//! Test support only: the real peers rolechain's tests run against, and one rule for when one
//! is missing.
//!
//! A test that needs a peer asks [`available`] (Python modules) or calls [`missing`] (any
//! other program): without the peer it prints a `NOTICE: skipping …` line and the test returns
//! early, unless `ROLECHAIN_REQUIRE_PEERS=1` (what `scripts/test` sets after installing them)
//! makes that a failure. Never a silent pass.
//!
//! The AWS CLI (v1) and boto3 run from `$ROLECHAIN_PYTHON` (default `python3`), isolated from
//! the machine's AWS set-up ([`isolated_python`], [`aws_cli`]), and [`Run`] reads what they
//! printed.

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The interpreter with botocore, boto3 and the AWS CLI: `$ROLECHAIN_PYTHON`, default
/// `python3`.
pub fn python() -> String {
    std::env::var("ROLECHAIN_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether peers are required (`ROLECHAIN_REQUIRE_PEERS=1`).
pub fn required() -> bool {
    std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// Says that `what` is missing: a failure when peers are required, else a notice. Returns
/// `None`, so a test can `return` on it (`let Some(x) = … else { return missing(…) }`).
#[track_caller]
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(!required(), "{what}, and ROLECHAIN_REQUIRE_PEERS=1");
    eprintln!(
        "NOTICE: skipping: {what} (install it, or set ROLECHAIN_REQUIRE_PEERS=1 to make this a failure)"
    );
    None
}

/// True when `modules` (`"botocore"`, `"awscli, boto3"`) are importable by [`python`];
/// otherwise [`missing`] says so.
#[track_caller]
pub fn available(modules: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing::<()>(&format!(
            "{modules} not importable by {} (set ROLECHAIN_PYTHON)",
            python()
        ));
    }
    ok
}

/// [`python`] with nothing of the machine's AWS set-up: the environment cleared but `PATH`,
/// `HOME` in `home`, config and credentials files that do not exist (set `AWS_CONFIG_FILE` /
/// `AWS_SHARED_CREDENTIALS_FILE` after to give some), region `us-east-1`, no instance metadata,
/// no pager, one attempt per call.
pub fn isolated_python(home: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        .env("AWS_MAX_ATTEMPTS", "1");
    cmd
}

/// `aws --output json` ([`isolated_python`] running `-m awscli`); add global options (such as
/// `--endpoint-url`), then the command.
pub fn aws_cli(home: &Path) -> Command {
    let mut cmd = isolated_python(home);
    cmd.args(["-m", "awscli", "--output", "json"]);
    cmd
}

/// Gives `cmd` these credentials through the environment.
pub fn with_credentials<'c>(
    cmd: &'c mut Command,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
) -> &'c mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret_access_key);
    if let Some(token) = session_token {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    cmd
}

/// How a command ended.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end with `stdin` as its standard input (empty when `None`).
    pub fn blocking(mut cmd: Command, stdin: Option<Vec<u8>>) -> Run {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the command");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        if let Some(input) = stdin {
            pipe.write_all(&input).expect("write stdin");
        }
        drop(pipe);
        let out = child.wait_with_output().expect("wait for the command");
        Run {
            ok: out.status.success(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// [`blocking`](Self::blocking) off the async threads.
    pub async fn run(cmd: Command, stdin: Option<Vec<u8>>) -> Run {
        tokio::task::spawn_blocking(move || Run::blocking(cmd, stdin))
            .await
            .expect("command task")
    }

    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success.
    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok, "command failed: {}", self.stderr);
        self
    }

    /// Standard output as JSON (whether or not the command succeeded: some print JSON with a
    /// failing status); a panic showing standard error when it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.text(), self.stderr))
    }

    /// Asserts failure and returns standard error (the CLI's `An error occurred (CODE) when
    /// calling …: MESSAGE` line).
    #[track_caller]
    pub fn failure(&self) -> &str {
        assert!(!self.ok, "expected a failure, got: {}", self.text());
        &self.stderr
    }

    /// Asserts failure and returns the AWS error code the CLI printed, e.g. `AccessDenied`.
    #[track_caller]
    pub fn error(&self) -> String {
        let stderr = self.failure();
        stderr
            .split("An error occurred (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no error code in: {stderr}"))
            .to_string()
    }

    /// Asserts failure with `code` and returns the message after `operation: `.
    #[track_caller]
    pub fn error_message(&self, code: &str) -> String {
        assert!(!self.ok, "expected {code}, got success: {}", self.text());
        assert!(
            self.stderr.contains(&format!("An error occurred ({code})")),
            "expected {code}, got: {}",
            self.stderr
        );
        self.stderr
            .split_once("operation: ")
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_default()
    }
}
