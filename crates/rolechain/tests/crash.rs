//! Durability end to end: `rolechain up` killed with SIGKILL in the middle of a stream of IAM
//! writes loses none it acknowledged.
//!
//! Each round starts the real binary on one data directory, has several writers send IAM
//! writes over loopback HTTP, signed with SigV4 by the admin key `up` wrote to
//! `aws/credentials`, records every write answered with a 200, and kills `up` (SIGKILL: no
//! destructor, no flush, no clean close) once a randomly chosen number of writes has been
//! acknowledged. `up` is then restarted on the same directory and every write acknowledged in
//! any round so far is read back through the IAM API with its exact content; the listings must
//! work and every listed role must read back whole.
//!
//! The documents of every write are a function of its name, so the checker knows what each
//! write must have left without trusting anything the server said.

mod support;

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use awswire::iam_policy_encode;
use support::{TempDir, Up};

const ACCOUNT: &str = "111111111111";
const ROUNDS: usize = 3;
const WRITERS: usize = 4;
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// A write the twin acknowledged with a 200. `id` makes every name and document unique.
#[derive(Debug, Clone)]
enum Write {
    CreateRole { id: String },
    PutRolePolicy { id: String },
    TagRole { id: String },
    UpdateAssumeRolePolicy { id: String },
    CreatePolicy { id: String },
}

fn role_name(id: &str) -> String {
    format!("crash-{id}")
}

fn policy_name(id: &str) -> String {
    format!("crash-policy-{id}")
}

/// The trust policy a role is created with (`version` 1) or updated to (2). The Sid carries
/// the write's id, so a document from another write never matches.
fn trust_doc(id: &str, version: u8) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Trust{version}x{}","Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}}]}}"#,
        id.replace('-', "x")
    )
}

fn permissions_doc(id: &str, kind: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{kind}x{}","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::crash/{id}/*"}}]}}"#,
        id.replace('-', "x")
    )
}

fn description(id: &str) -> String {
    format!("written by crash writer {id}")
}

/// The write's Query parameters.
fn params(write: &Write) -> Vec<(&'static str, String)> {
    match write {
        Write::CreateRole { id } => vec![
            ("Action", "CreateRole".into()),
            ("RoleName", role_name(id)),
            ("AssumeRolePolicyDocument", trust_doc(id, 1)),
            ("Description", description(id)),
        ],
        Write::PutRolePolicy { id } => vec![
            ("Action", "PutRolePolicy".into()),
            ("RoleName", role_name(id)),
            ("PolicyName", "inline".into()),
            ("PolicyDocument", permissions_doc(id, "Inline")),
        ],
        Write::TagRole { id } => vec![
            ("Action", "TagRole".into()),
            ("RoleName", role_name(id)),
            ("Tags.member.1.Key", "writer".into()),
            ("Tags.member.1.Value", id.clone()),
        ],
        Write::UpdateAssumeRolePolicy { id } => vec![
            ("Action", "UpdateAssumeRolePolicy".into()),
            ("RoleName", role_name(id)),
            ("PolicyDocument", trust_doc(id, 2)),
        ],
        Write::CreatePolicy { id } => vec![
            ("Action", "CreatePolicy".into()),
            ("PolicyName", policy_name(id)),
            ("PolicyDocument", permissions_doc(id, "Managed")),
        ],
    }
}

/// A writer's `n`th write: a role is created, given an inline policy and a tag, its trust
/// policy replaced, and a managed policy created; then the next role.
fn nth_write(id_prefix: &str, n: usize) -> Write {
    let id = format!("{id_prefix}-{}", n / 5);
    match n % 5 {
        0 => Write::CreateRole { id },
        1 => Write::PutRolePolicy { id },
        2 => Write::TagRole { id },
        3 => Write::UpdateAssumeRolePolicy { id },
        _ => Write::CreatePolicy { id },
    }
}

/// The admin access key of the `default` profile `up` wrote.
#[derive(Clone)]
struct Admin {
    identity: Identity,
}

impl Admin {
    fn from_credentials_file(up: &Up) -> Admin {
        Admin {
            identity: support::default_credentials(&up.data_dir).into(),
        }
    }
}

/// An IAM Query request over a fresh loopback connection, signed with `aws-sigv4` as the
/// SDKs sign: the status and body, or the I/O error of a server that went away.
fn iam(addr: &str, admin: &Admin, params: &[(&str, String)]) -> std::io::Result<(u16, String)> {
    let mut body = String::from("Version=2010-05-08");
    for (name, value) in params {
        body.push('&');
        body.push_str(name);
        body.push('=');
        body.push_str(&iam_policy_encode(value));
    }
    let url = format!("http://{addr}/");
    let headers = [("host", addr), ("content-type", FORM)];
    let signing = v4::SigningParams::builder()
        .identity(&admin.identity)
        .region("us-east-1")
        .name("iam")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &signing).unwrap().into_parts();
    let mut request = String::from("POST / HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));

    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn call(addr: &str, admin: &Admin, params: &[(&str, String)]) -> Result<String, String> {
    match iam(addr, admin, params) {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(format!("{params:?}: HTTP {status}: {body}")),
        Err(e) => Err(format!("{params:?}: {e}")),
    }
}

/// The text of the first `<tag>` element.
fn field<'b>(body: &'b str, tag: &str) -> Option<&'b str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{tag}>"))?;
    Some(&body[start..start + len])
}

fn expect_field(body: &str, tag: &str, expected: &[String]) -> Result<(), String> {
    match field(body, tag) {
        Some(v) if expected.iter().any(|e| e == v) => Ok(()),
        other => Err(format!("{tag} is {other:?}, expected one of {expected:?}")),
    }
}

/// Reads back what an acknowledged write must have left. A trust policy whose update was in
/// flight when the twin died may be either version; once the update was acknowledged, only
/// the new one.
fn verify(addr: &str, admin: &Admin, write: &Write, acked: &[Write]) -> Result<(), String> {
    let role_params =
        |action: &str, id: &str| vec![("Action", action.to_string()), ("RoleName", role_name(id))];
    match write {
        Write::CreateRole { id } => {
            let body = call(addr, admin, &role_params("GetRole", id))?;
            expect_field(&body, "RoleName", &[role_name(id)])?;
            expect_field(&body, "Description", &[description(id)])?;
            let updated = acked
                .iter()
                .any(|w| matches!(w, Write::UpdateAssumeRolePolicy { id: u } if u == id));
            let mut trust = vec![iam_policy_encode(&trust_doc(id, 2))];
            if !updated {
                trust.push(iam_policy_encode(&trust_doc(id, 1)));
            }
            expect_field(&body, "AssumeRolePolicyDocument", &trust)
        }
        Write::UpdateAssumeRolePolicy { id } => {
            let body = call(addr, admin, &role_params("GetRole", id))?;
            expect_field(
                &body,
                "AssumeRolePolicyDocument",
                &[iam_policy_encode(&trust_doc(id, 2))],
            )
        }
        Write::PutRolePolicy { id } => {
            let mut p = role_params("GetRolePolicy", id);
            p.push(("PolicyName", "inline".into()));
            let body = call(addr, admin, &p)?;
            expect_field(
                &body,
                "PolicyDocument",
                &[iam_policy_encode(&permissions_doc(id, "Inline"))],
            )
        }
        Write::TagRole { id } => {
            let body = call(addr, admin, &role_params("ListRoleTags", id))?;
            let tag = format!("<Key>writer</Key><Value>{id}</Value>");
            if body.contains(&tag) {
                Ok(())
            } else {
                Err(format!("tag writer={id} missing: {body}"))
            }
        }
        Write::CreatePolicy { id } => {
            let arn = format!("arn:aws:iam::{ACCOUNT}:policy/{}", policy_name(id));
            let body = call(
                addr,
                admin,
                &[
                    ("Action", "GetPolicyVersion".into()),
                    ("PolicyArn", arn),
                    ("VersionId", "v1".into()),
                ],
            )?;
            expect_field(
                &body,
                "Document",
                &[iam_policy_encode(&permissions_doc(id, "Managed"))],
            )
        }
    }
}

/// The store reads back as a whole: the listings answer, and every role listed reads whole
/// (its trust policy one of the documents a write gave it).
fn check_consistent(addr: &str, admin: &Admin) -> Result<usize, String> {
    let roles = call(
        addr,
        admin,
        &[("Action", "ListRoles".into()), ("MaxItems", "1000".into())],
    )?;
    expect_field(&roles, "IsTruncated", &["false".into()])?;
    let mut listed = 0;
    for chunk in roles.split("<RoleName>").skip(1) {
        let name = chunk.split('<').next().unwrap_or_default();
        let Some(id) = name.strip_prefix("crash-") else {
            continue;
        };
        let body = call(
            addr,
            admin,
            &[("Action", "GetRole".into()), ("RoleName", name.into())],
        )?;
        expect_field(
            &body,
            "AssumeRolePolicyDocument",
            &[
                iam_policy_encode(&trust_doc(id, 1)),
                iam_policy_encode(&trust_doc(id, 2)),
            ],
        )?;
        listed += 1;
    }
    call(
        addr,
        admin,
        &[
            ("Action", "ListPolicies".into()),
            ("Scope", "Local".into()),
            ("MaxItems", "1000".into()),
        ],
    )?;
    Ok(listed)
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A number in `low..high` that differs from run to run.
fn random_between(low: usize, high: usize) -> usize {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    low + usize::try_from(nanos).unwrap_or_default() % (high - low)
}

/// Runs `WRITERS` writers against `up` until `target` writes are acknowledged, then kills
/// `up` with SIGKILL while they are still writing. Returns the acknowledged writes.
fn write_until_killed(mut up: Up, admin: &Admin, round: usize, target: usize) -> Vec<Write> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acked, stop, admin) = (Arc::clone(&acked), Arc::clone(&stop), admin.clone());
            let addr = up.addr().to_string();
            std::thread::spawn(move || {
                let prefix = format!("r{round}w{w}");
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let write = nth_write(&prefix, n);
                    match iam(&addr, &admin, &params(&write)) {
                        Ok((200, _)) => acked.lock().unwrap().push(write),
                        // The twin died under this write: it may or may not have happened.
                        Err(_) => break,
                        Ok((status, body)) => {
                            panic!("{write:?} refused with HTTP {status}: {body}")
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < target {
        assert!(
            Instant::now() < deadline,
            "only {} writes acknowledged in 120 s",
            acked.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Child::kill is SIGKILL on Unix; the writers are still sending.
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().expect("a writer failed");
    }
    let out = acked.lock().unwrap().clone();
    out
}

#[test]
fn acknowledged_iam_writes_survive_sigkill_of_up() {
    let dir = TempDir::new("crash");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut acked: Vec<Write> = Vec::new();
    for round in 0..ROUNDS {
        let up = Up::start_on(&data, &listen, &[]);
        let admin = Admin::from_credentials_file(&up);
        let target = random_between(40, 160);
        let this_round = write_until_killed(up, &admin, round, target);
        assert!(this_round.len() >= target);
        acked.extend(this_round);

        let up = Up::start_on(&data, &listen, &[]);
        assert!(
            up.banner.iter().any(|l| l.contains("(existing)")),
            "{:?}",
            up.banner
        );
        let addr = up.addr().to_string();
        for write in &acked {
            if let Err(e) = verify(&addr, &admin, write, &acked) {
                panic!("round {round}: acknowledged {write:?} not intact after SIGKILL: {e}");
            }
        }
        let listed = check_consistent(&addr, &admin)
            .unwrap_or_else(|e| panic!("round {round}: store inconsistent after SIGKILL: {e}"));
        eprintln!(
            "round {round}: killed after {target}+ acknowledged writes; all {} acknowledged so far intact, {listed} crash roles listed",
            acked.len()
        );

        if round == 0 {
            // The checker notices a write that is not there, or not as written.
            let never = Write::CreateRole {
                id: "never-written".into(),
            };
            assert!(verify(&addr, &admin, &never, &acked).is_err());
            let put = acked
                .iter()
                .find_map(|w| match w {
                    Write::PutRolePolicy { id } => Some(id.clone()),
                    _ => None,
                })
                .expect("some PutRolePolicy acknowledged");
            let other = acked
                .iter()
                .find_map(|w| match w {
                    Write::CreateRole { id } if *id != put => Some(id.clone()),
                    _ => None,
                })
                .expect("two roles created");
            // One role's inline policy checked against another's document.
            let body = call(
                &addr,
                &admin,
                &[
                    ("Action", "GetRolePolicy".into()),
                    ("RoleName", role_name(&put)),
                    ("PolicyName", "inline".into()),
                ],
            )
            .unwrap();
            assert!(expect_field(
                &body,
                "PolicyDocument",
                &[iam_policy_encode(&permissions_doc(&other, "Inline"))]
            )
            .is_err());
        }
        drop(up);
    }
}
