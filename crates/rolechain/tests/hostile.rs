//! `rolechain up` under hostile input from loopback: unauthenticated requests that once grew
//! its memory without bound, admin endpoints asked for under a foreign `Host` (DNS
//! rebinding), and a denied caller fishing for another account's `sts:ExternalId`.

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use support::*;

const ACCOUNT: &str = "111111111111";

/// The twin process's resident memory, from `/proc/PID/status`.
fn rss_kib(up: &Up) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", up.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// One keep-alive HTTP/1.1 connection to the twin.
struct Connection {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl Connection {
    fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            reader: BufReader::new(stream),
            addr: addr.to_string(),
        }
    }

    /// Sends one request and reads its answer: (status, body).
    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // One write: a request split in two waits on Nagle and the peer's delayed ACK.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// A well-formed, unsigned-looking JWT naming `iss`: enough to reach the issuer lookup, which
/// is where issuer variants once made the twin cache keys and fetch discovery documents.
fn token_naming(iss: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": iss, "sub": "system:serviceaccount:default:x", "aud": "sts.amazonaws.com",
        "exp": 4_102_444_800u64, "iat": 1_700_000_000u64,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode([7u8; 256]);
    format!("{header}.{claims}.{signature}")
}

#[test]
fn issuer_variants_of_a_registered_provider_do_not_grow_memory() {
    let dir = TempDir::new("hostile-memory");
    let up = Up::start(&dir.path().join("data"), &[]);
    let Some(described) = up.aws(
        Some("developer"),
        &["eks", "describe-cluster", "--name", "development-cluster"],
    ) else {
        return;
    };
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    let issuer = described["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    ok_json(up.aws(
        Some("developer"),
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            &issuer,
            "--client-id-list",
            "sts.amazonaws.com",
        ],
    ));

    let mut conn = Connection::open(up.addr());
    let mut ask = |variant: usize| {
        // Trailing slashes and the other scheme all name the same provider's host and path.
        let iss = if variant.is_multiple_of(2) {
            format!("{issuer}{}", "/".repeat(variant % 1500 + 1))
        } else {
            format!(
                "{}{}",
                issuer.replacen("http://", "https://", 1),
                "/".repeat(variant % 1500)
            )
        };
        let body = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=pod-session&RoleArn=arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Arole%2Fnone&WebIdentityToken={}",
            token_naming(&iss)
        );
        let (status, text) = conn.send(
            "POST",
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("<Code>InvalidIdentityToken</Code>"), "{text}");
    };
    // Past the decision log's capacity (1,000 entries), so what is measured next is growth.
    for i in 0..1500 {
        ask(i);
    }
    let before = rss_kib(&up);
    for i in 1500..6000 {
        ask(i);
    }
    let after = rss_kib(&up);
    println!("twin RSS {before} KiB before 4,500 more issuer variants, {after} KiB after");
    // Each variant once cost ~8 KiB that never came back (~36 MiB here).
    assert!(
        after < before + 4 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 4,500 unauthenticated requests"
    );

    // The provider's own issuer is still the one that works: a real token reaches the trust
    // policy (there is no such role, so STS says AccessDenied, not InvalidIdentityToken).
    let token = up.pod_token("my-service-account");
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=pod-session&RoleArn=arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Arole%2Fnone&WebIdentityToken={token}"
    );
    let (status, text) = conn.send(
        "POST",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
}

#[test]
fn admin_endpoints_answer_only_under_the_twins_own_names() {
    let dir = TempDir::new("hostile-host");
    let up = Up::start(&dir.path().join("data"), &[]);
    let port = up.addr().rsplit(':').next().unwrap().to_string();
    let mut conn = Connection::open(up.addr());
    for path in ["/_rolechain/decisions", "/_rolechain/metrics"] {
        for host in [
            up.addr().to_string(),
            format!("localhost:{port}"),
            format!("LOCALHOST:{port}"),
            format!("[::1]:{port}"),
        ] {
            let (status, text) = conn.send("GET", path, &[("Host", &host)], b"");
            assert_eq!(status, 200, "{path} as {host}: {text}");
        }
        // A page that rebound its own name to 127.0.0.1 sends that name.
        for host in [
            format!("evil.example:{port}"),
            "evil.example".to_string(),
            format!("127.0.0.1.evil.example:{port}"),
            format!("localhost:{}", port.parse::<u16>().unwrap().wrapping_add(1)),
        ] {
            let (status, text) = conn.send("GET", path, &[("Host", &host)], b"");
            assert_eq!(status, 421, "{path} as {host}: {text}");
            assert!(!text.contains("decisions\""), "{text}");
        }
    }
    // Health stays open to probes under any name.
    let (status, _) = conn.send(
        "GET",
        "/_rolechain/health",
        &[("Host", "kubelet-probe.internal")],
        b"",
    );
    assert_eq!(status, 200);

    // --public-url adds its host (`up` then prints that URL, so it is started by hand here).
    drop(conn);
    drop(up);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data2").display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rolechain"))
        .args(["up", "--data-dir", &data, "--listen", &listen])
        .args(["--public-url", "http://twin.test:8080"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let healthy = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        try_http_get(&listen, "/_rolechain/health").is_ok_and(|b| b.contains("\"ok\""))
    });
    let answers = healthy.then(|| {
        let mut conn = Connection::open(&listen);
        [
            ("twin.test:8080", 200),
            ("evil.example:8080", 421),
            (listen.as_str(), 200),
        ]
        .map(|(host, want)| {
            let (status, text) = conn.send("GET", "/_rolechain/decisions", &[("Host", host)], b"");
            (host.to_string(), status, want, text)
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    for (host, status, want, text) in answers.expect("up with --public-url became healthy") {
        assert_eq!(status, want, "{host}: {text}");
    }
}

#[test]
fn a_denied_caller_is_never_shown_the_external_id() {
    const SECRET: &str = "s3cr3t-ext-id-4917";
    const GUESS: &str = "guessed-ext-id-0042";
    let dir = TempDir::new("hostile-external-id");
    let up = Up::start(&dir.path().join("data"), &[]);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"{SECRET}"}}}}}}]}}"#
    );
    let trust = file_arg(dir.path(), "trust.json", &trust);
    let Some(created) = up.aws(
        Some("shared_content"),
        &[
            "iam",
            "create-role",
            "--role-name",
            "partner",
            "--assume-role-policy-document",
            &trust,
        ],
    ) else {
        return;
    };
    assert!(created.status.success(), "{}", stderr(&created));
    let role_arn = "arn:aws:iam::222222222222:role/partner";
    for external_id in [Some(GUESS), None] {
        let mut args = vec![
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "fishing",
        ];
        if let Some(id) = external_id {
            args.extend(["--external-id", id]);
        }
        let denied = up.aws(Some("developer"), &args).unwrap();
        assert!(!denied.status.success());
        assert!(
            stderr(&denied).contains("AccessDenied"),
            "{}",
            stderr(&denied)
        );

        let log = http_get(up.addr(), "/_rolechain/decisions?verdict=deny&limit=5");
        assert!(log.contains("sts:ExternalId"), "{log}");
        assert!(log.contains("\"redacted\":true"), "{log}");
        for secret in [SECRET, GUESS] {
            assert!(
                !log.contains(secret),
                "the decision log shows {secret}: {log}"
            );
        }
        let explained = rolechain(&["explain", "--last-denied", "--twin", &up.base_url]);
        let text = stdout(&explained);
        assert_eq!(explained.status.code(), Some(1), "{}", stderr(&explained));
        let expected = match external_id {
            Some(_) => "condition StringEquals on sts:ExternalId did not match (its value is a shared secret, not shown)",
            None => "condition StringEquals on sts:ExternalId did not match: the request has no value for this key",
        };
        assert!(text.contains(expected), "{text}");
        let json = stdout(&rolechain(&[
            "explain",
            "--last-denied",
            "--json",
            "--twin",
            &up.base_url,
        ]));
        for secret in [SECRET, GUESS] {
            assert!(!text.contains(secret), "explain shows {secret}: {text}");
            assert!(
                !json.contains(secret),
                "explain --json shows {secret}: {json}"
            );
        }
    }
    // With the right id the chain works: the redaction changed what is shown, not what is
    // decided.
    let allowed = up
        .aws(
            Some("developer"),
            &[
                "sts",
                "assume-role",
                "--role-arn",
                role_arn,
                "--role-session-name",
                "partner",
                "--external-id",
                SECRET,
            ],
        )
        .unwrap();
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}
