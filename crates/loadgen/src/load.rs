//! Running one scenario: many keep-alive connections, each sending its next request as soon as
//! the previous answer is read and checked, for a fixed time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Serialize;

use crate::targets::Prepared;
use crate::wire::{self, Connection};

/// Makes a scenario's next request.
type MakeRequest = Box<dyn Fn() -> anyhow::Result<Request<Full<Bytes>>> + Send + Sync>;
/// Checks a 200 answer's body: the session's access key id, or what is wrong.
type CheckAnswer = Box<dyn Fn(&[u8]) -> Result<SessionKey, String> + Send + Sync>;

/// The temporary credentials of a session an answer handed out.
#[derive(Debug, Clone)]
pub struct SessionKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// How a scenario's requests are made and their answers checked.
pub struct Scenario {
    pub name: &'static str,
    /// A new request (signed ones are signed afresh, as a client does).
    pub make: MakeRequest,
    /// Checks a 200 response; the session's access key id when it is well-formed.
    pub check: CheckAnswer,
    /// Whether every answer must hand out a new session (STS) or the same one may come back
    /// (the agent's cache).
    pub unique_sessions: bool,
}

/// What a run of a scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub target: String,
    pub scenario: &'static str,
    pub connections: usize,
    pub seconds: f64,
    /// Well-formed 200 answers completed in the measured window.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Failed requests, warm-up included: any makes the run fail.
    pub errors: u64,
    /// Access key ids handed out twice (every session must get its own).
    pub duplicate_keys: u64,
    /// Server CPU time (user + system) per answered request, warm-up included: a figure that
    /// other work on the machine disturbs less than requests/s.
    pub server_cpu_us_per_request: Option<f64>,
    /// The first few failures, for the report.
    pub error_samples: Vec<String>,
}

/// Checks an `AssumeRole*Result`: credentials present, the session's ARN that of `role_arn`'s
/// session `session_name`, and `extra` fields with the expected values.
fn check_session(
    body: &[u8],
    account: &str,
    role_arn: &str,
    session_name: &str,
    extra: &[(&str, &str)],
) -> Result<SessionKey, String> {
    let mut names = vec![
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
        "Arn",
    ];
    names.extend(extra.iter().map(|(n, _)| *n));
    let f = wire::xml_fields(body, &names)?;
    for n in &names {
        if f.get(*n).is_none_or(String::is_empty) {
            return Err(format!("the response has no <{n}>"));
        }
    }
    let role_name = role_arn.rsplit('/').next().unwrap_or_default();
    let want = format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}");
    if f["Arn"] != want {
        return Err(format!("AssumedRoleUser Arn {} is not {want}", f["Arn"]));
    }
    for (name, value) in extra {
        if f[*name] != *value {
            return Err(format!("{name} is {}, not {value}", f[*name]));
        }
    }
    Ok(SessionKey {
        access_key_id: f["AccessKeyId"].clone(),
        secret_access_key: f["SecretAccessKey"].clone(),
        session_token: f["SessionToken"].clone(),
    })
}

pub const SESSION_NAME: &str = "loadgen";

/// AssumeRoleWithWebIdentity: unsigned, the token the credential.
pub fn web_identity(p: &Prepared) -> Scenario {
    let body = wire::form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", &p.web_identity_role_arn),
        ("RoleSessionName", SESSION_NAME),
        ("WebIdentityToken", &p.token),
    ]);
    let endpoint = p.endpoint.clone();
    let (account, role, subject) = (
        p.account.clone(),
        p.web_identity_role_arn.clone(),
        p.subject.clone(),
    );
    Scenario {
        name: "AssumeRoleWithWebIdentity",
        unique_sessions: true,
        make: Box::new(move || wire::unsigned(&endpoint, body.clone())),
        check: Box::new(move |b| {
            let extra: Vec<(&str, &str)> = subject
                .iter()
                .map(|s| ("SubjectFromWebIdentityToken", s.as_str()))
                .collect();
            check_session(b, &account, &role, SESSION_NAME, &extra)
        }),
    }
}

/// AssumeRole: SigV4-signed by the account's admin, a role of the same account.
pub fn assume_role(p: &Prepared) -> Scenario {
    let body = wire::form(&[
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", &p.assume_role_arn),
        ("RoleSessionName", SESSION_NAME),
    ]);
    let endpoint = p.endpoint.clone();
    let signer = p.signer.clone();
    let (account, role) = (p.account.clone(), p.assume_role_arn.clone());
    Scenario {
        name: "AssumeRole",
        unique_sessions: true,
        make: Box::new(move || wire::signed(&endpoint, &signer, "sts", body.clone())),
        check: Box::new(move |b| check_session(b, &account, &role, SESSION_NAME, &[])),
    }
}

struct Tally {
    ok_in_window: u64,
    ok_total: u64,
    latencies_us: Vec<u32>,
    errors: u64,
    samples: Vec<String>,
    keys: Vec<String>,
}

const MAX_SAMPLES: usize = 5;

/// Runs `scenario` against `addr` (served by `server`) over `connections` connections:
/// `warmup` unmeasured, then `duration` measured.
pub async fn run(
    server: &crate::targets::Server,
    addr: std::net::SocketAddr,
    scenario: Scenario,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let scenario = Arc::new(scenario);
    let cpu_before = server.cpu_seconds();
    let start = Instant::now();
    let window_start = start + warmup;
    let end = window_start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let scenario = Arc::clone(&scenario);
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(addr);
            let mut t = Tally {
                ok_in_window: 0,
                ok_total: 0,
                latencies_us: Vec::new(),
                errors: 0,
                samples: Vec::new(),
                keys: Vec::new(),
            };
            let fail = |t: &mut Tally, why: String| {
                t.errors += 1;
                if t.samples.len() < MAX_SAMPLES {
                    t.samples.push(why);
                }
            };
            while Instant::now() < end {
                let req = match (scenario.make)() {
                    Ok(r) => r,
                    Err(e) => {
                        fail(&mut t, format!("building the request: {e:#}"));
                        break;
                    }
                };
                let sent = Instant::now();
                let result = conn.send(req).await;
                let done = Instant::now();
                match result {
                    Ok((StatusCode::OK, body)) => match (scenario.check)(&body) {
                        Ok(key) => {
                            if done >= window_start && done <= end {
                                t.ok_in_window += 1;
                                let us = done.duration_since(sent).as_micros();
                                t.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                            }
                            t.ok_total += 1;
                            if scenario.unique_sessions {
                                t.keys.push(key.access_key_id);
                            }
                        }
                        Err(why) => fail(&mut t, format!("malformed 200 response: {why}")),
                    },
                    Ok((status, body)) => fail(&mut t, wire::describe_error(status, &body)),
                    Err(e) => fail(&mut t, format!("{e:#}")),
                }
            }
            t
        }));
    }
    let mut requests = 0;
    let mut answered = 0u64;
    let mut errors = 0;
    let mut latencies = Vec::new();
    let mut error_samples = Vec::new();
    let mut keys = HashSet::new();
    let mut duplicate_keys = 0;
    for task in tasks {
        match task.await {
            Ok(t) => {
                requests += t.ok_in_window;
                answered += t.ok_total;
                errors += t.errors;
                latencies.extend(t.latencies_us);
                for s in t.samples {
                    if error_samples.len() < MAX_SAMPLES {
                        error_samples.push(s);
                    }
                }
                for k in t.keys {
                    if !keys.insert(k) {
                        duplicate_keys += 1;
                    }
                }
            }
            Err(e) => {
                errors += 1;
                error_samples.push(format!("a connection task failed: {e}"));
            }
        }
    }
    let cpu = cpu_before.zip(server.cpu_seconds()).map(|(a, b)| b - a);
    let answered = answered as f64;
    latencies.sort_unstable();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        f64::from(latencies[rank - 1]) / 1000.0
    };
    let seconds = duration.as_secs_f64();
    Outcome {
        target: server.name.to_string(),
        scenario: scenario.name,
        connections,
        seconds,
        requests,
        requests_per_second: requests as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
        duplicate_keys,
        server_cpu_us_per_request: cpu.filter(|_| answered > 0.0).map(|c| c * 1e6 / answered),
        error_samples,
    }
}

/// Runs `scenario` until `kill` is called back (after `kill_after`) and the server stops
/// answering: the sessions acknowledged before the connections broke, and how many answers
/// were not well-formed 200s before the kill (failures after it are expected).
pub async fn run_until_killed<F, Fut>(
    p: &Prepared,
    scenario: Scenario,
    connections: usize,
    kill_after: Duration,
    kill: F,
) -> anyhow::Result<(Vec<SessionKey>, Vec<String>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let scenario = Arc::new(scenario);
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let scenario = Arc::clone(&scenario);
        let killed = Arc::clone(&killed);
        let addr = p.endpoint.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(addr);
            let mut acknowledged = Vec::new();
            let mut failures = Vec::new();
            loop {
                let req = match (scenario.make)() {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("building the request: {e:#}"));
                        break;
                    }
                };
                match conn.send(req).await {
                    Ok((StatusCode::OK, body)) => match (scenario.check)(&body) {
                        Ok(key) => acknowledged.push(key),
                        Err(why) => failures.push(format!("malformed 200 response: {why}")),
                    },
                    // Once the server is killed, failing requests are the point.
                    _ if killed.load(std::sync::atomic::Ordering::SeqCst) => break,
                    Ok((status, body)) => failures.push(wire::describe_error(status, &body)),
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
            (acknowledged, failures)
        }));
    }
    tokio::time::sleep(kill_after).await;
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    kill().await?;
    let mut acknowledged = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (a, f) = task.await?;
        acknowledged.extend(a);
        failures.extend(f);
    }
    Ok((acknowledged, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:loadgen</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/r/loadgen</Arn></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>";

    #[test]
    fn accepts_a_session_of_the_role_and_refuses_others() {
        let role = "arn:aws:iam::111111111111:role/r";
        assert_eq!(
            check_session(OK.as_bytes(), "111111111111", role, "loadgen", &[])
                .unwrap()
                .access_key_id,
            "ASIAX"
        );
        let other = "arn:aws:iam::111111111111:role/other";
        assert!(check_session(OK.as_bytes(), "111111111111", other, "loadgen", &[]).is_err());
        let no_token = OK.replace("<SessionToken>t</SessionToken>", "");
        assert!(check_session(no_token.as_bytes(), "111111111111", role, "loadgen", &[]).is_err());
        assert!(check_session(
            OK.as_bytes(),
            "111111111111",
            role,
            "loadgen",
            &[("SubjectFromWebIdentityToken", "x")]
        )
        .is_err());
    }
}
