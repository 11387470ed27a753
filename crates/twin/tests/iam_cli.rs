//! The twin's IAM driven by the real AWS CLI over loopback HTTP: seed 002's IRSA commands as
//! written, the rest of the implemented actions, and the errors IAM answers with.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (default `python3`), which must have awscli. Without
//! it the tests skip with a notice, unless `ROLECHAIN_REQUIRE_PEERS=1`, which makes them fail.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::aws_cli::{aws_cli, isolated_python, peers_available, Run};
use serde_json::{json, Value};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use twin::{DecisionLog, IamService, TwinConfig, TwinServer, VerdictFilter};
use twin_state::{NewSession, Store, World};

const ACCOUNT: &str = "111111111111";

// ---------------------------------------------------------------------------------------------
// the twin

struct Twin {
    port: u16,
    store: Arc<Store>,
    decisions: DecisionLog,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

impl Twin {
    fn start() -> Twin {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = TwinConfig::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut server = rt.block_on(TwinServer::bind(config)).unwrap();
        store
            .seed_if_empty(&World::default_world(|c| {
                server.issuer_url(&twin::derive_issuer_id(c))
            }))
            .unwrap();
        let decisions = server.decisions().clone();
        server
            .register(Arc::new(IamService::new(
                Arc::clone(&store),
                decisions.clone(),
            )))
            .unwrap();
        let port = server.local_addr().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(server.serve(async {
                let _ = stopped.await;
            }))
            .unwrap();
        });
        Twin {
            port,
            store,
            decisions,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// The cluster's issuer as host/path (the OIDC provider ARN's resource part).
    fn issuer_host_path(&self) -> String {
        let clusters = self.store.all_clusters().unwrap();
        let issuer = &clusters[0].issuer_url;
        issuer
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string()
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the AWS CLI

struct Profile {
    name: String,
    key: String,
    secret: String,
    token: Option<String>,
}

struct Cli {
    dir: TempDir,
    port: u16,
    profiles: Vec<Profile>,
}

impl Cli {
    fn new(twin: &Twin) -> Cli {
        let key = twin.store.list_access_keys(ACCOUNT).unwrap().remove(0);
        let mut cli = Cli {
            dir: tempfile::tempdir().unwrap(),
            port: twin.port,
            profiles: Vec::new(),
        };
        cli.add_profile("default", &key.access_key_id, &key.secret_access_key, None);
        cli
    }

    fn add_profile(&mut self, name: &str, key: &str, secret: &str, token: Option<&str>) {
        self.profiles.retain(|p| p.name != name);
        self.profiles.push(Profile {
            name: name.into(),
            key: key.into(),
            secret: secret.into(),
            token: token.map(Into::into),
        });
        let mut config = String::new();
        let mut creds = String::new();
        for p in &self.profiles {
            let section = if p.name == "default" {
                "default".to_string()
            } else {
                format!("profile {}", p.name)
            };
            config.push_str(&format!(
                "[{section}]\nregion = us-east-1\noutput = json\nendpoint_url = http://127.0.0.1:{}\n\n",
                self.port
            ));
            creds.push_str(&format!(
                "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                p.name, p.key, p.secret
            ));
            if let Some(t) = &p.token {
                creds.push_str(&format!("aws_session_token = {t}\n"));
            }
            creds.push('\n');
        }
        std::fs::write(self.dir.path().join("config"), config).unwrap();
        std::fs::write(self.dir.path().join("credentials"), creds).unwrap();
    }

    fn file(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content).unwrap();
    }

    /// Points `cmd` at this CLI's config and credentials files, in its directory.
    fn configure(&self, mut cmd: Command) -> Command {
        cmd.current_dir(self.dir.path())
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            );
        cmd
    }

    /// `aws iam …` as the admin.
    fn iam(&self, args: &[&str]) -> Run {
        self.iam_as("default", args)
    }

    fn iam_as(&self, profile: &str, args: &[&str]) -> Run {
        let mut cmd = self.configure(aws_cli(self.dir.path()));
        cmd.arg("--profile").arg(profile).arg("iam").args(args);
        Run::blocking(cmd, None)
    }

    /// A botocore script (for requests the CLI would refuse to send).
    fn python(&self, script: &str) -> Run {
        let mut cmd = self.configure(isolated_python(self.dir.path()));
        cmd.arg("-c").arg(script);
        Run::blocking(cmd, None)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The twin and a CLI for its admin, or `None` (skip) when the AWS CLI is missing and not
/// required.
fn setup() -> Option<(Twin, Cli)> {
    if !peers_available("awscli, botocore") {
        return None;
    }
    let twin = Twin::start();
    let cli = Cli::new(&twin);
    Some((twin, cli))
}

fn trust_for(provider: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{provider}:aud"): "sts.amazonaws.com",
                format!("{provider}:sub"): "system:serviceaccount:default:my-service-account"
            }}
        }]
    })
}

fn trust_aws(principal: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// seed 002

#[test]
fn iam_seed_002_irsa_commands_as_written() {
    let Some((twin, cli)) = setup() else { return };
    let provider = twin.issuer_host_path();
    let provider_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}");

    // "Check if you already have an OIDC provider": none yet.
    let list = cli.iam(&["list-open-id-connect-providers"]).json();
    assert_eq!(list, json!({"OpenIDConnectProviderList": []}));

    let url = format!("https://{provider}");
    let thumb = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";
    let created = cli
        .iam(&[
            "create-open-id-connect-provider",
            "--url",
            &url,
            "--client-id-list",
            "sts.amazonaws.com",
            "--thumbprint-list",
            thumb,
        ])
        .json();
    assert_eq!(created["OpenIDConnectProviderArn"], provider_arn);
    let list = cli.iam(&["list-open-id-connect-providers"]).json();
    assert_eq!(
        list["OpenIDConnectProviderList"],
        json!([{"Arn": provider_arn}])
    );
    let got = cli
        .iam(&[
            "get-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &provider_arn,
        ])
        .json();
    assert_eq!(got["Url"], provider);
    assert_eq!(got["ClientIDList"], json!(["sts.amazonaws.com"]));
    assert_eq!(got["ThumbprintList"], json!([thumb]));

    // The policy, as the post writes it.
    let policy_doc = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Action": "s3:*",
            "Effect": "Allow",
            "Resource": ["arn:aws:s3:::my-test-bucket", "arn:aws:s3:::my-test-bucket/*"]
        }]
    });
    cli.file(
        "my-test-policy.json",
        &serde_json::to_string_pretty(&policy_doc).unwrap(),
    );
    let policy = cli
        .iam(&[
            "create-policy",
            "--policy-name",
            "my-test-policy",
            "--policy-document",
            "file://my-test-policy.json",
        ])
        .json();
    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/my-test-policy");
    assert_eq!(policy["Policy"]["Arn"], policy_arn);
    assert_eq!(policy["Policy"]["DefaultVersionId"], "v1");
    assert!(policy["Policy"]["PolicyId"]
        .as_str()
        .unwrap()
        .starts_with("ANPA"));

    let trust = trust_for(&provider);
    cli.file(
        "trust-relationship.json",
        &serde_json::to_string_pretty(&trust).unwrap(),
    );
    let role = cli
        .iam(&[
            "create-role",
            "--role-name",
            "my-test-role",
            "--assume-role-policy-document",
            "file://trust-relationship.json",
            "--description",
            "my-irsa-role",
        ])
        .json();
    assert_eq!(
        role["Role"]["Arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/my-test-role")
    );
    assert_eq!(role["Role"]["Description"], "my-irsa-role");
    assert!(role["Role"]["RoleId"].as_str().unwrap().starts_with("AROA"));
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"], trust);

    let attach = cli.iam(&[
        "attach-role-policy",
        "--role-name",
        "my-test-role",
        &format!("--policy-arn={policy_arn}"),
    ]);
    assert_eq!(attach.expect_ok().text().trim(), "");

    let attached = cli.iam(&[
        "list-attached-role-policies",
        "--role-name",
        "my-test-role",
        "--query",
        "AttachedPolicies[].PolicyArn",
        "--output",
        "text",
    ]);
    assert_eq!(attached.expect_ok().text().trim(), policy_arn);

    let got = cli.iam(&["get-policy", "--policy-arn", &policy_arn]).json();
    assert_eq!(got["Policy"]["PolicyName"], "my-test-policy");
    assert_eq!(got["Policy"]["AttachmentCount"], 1);
    assert_eq!(got["Policy"]["IsAttachable"], true);

    let version = cli
        .iam(&[
            "get-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v1",
        ])
        .json();
    assert_eq!(version["PolicyVersion"]["Document"], policy_doc);
    assert_eq!(version["PolicyVersion"]["IsDefaultVersion"], true);
    assert_eq!(version["PolicyVersion"]["VersionId"], "v1");

    let shown = cli
        .iam(&[
            "get-role",
            "--role-name",
            "my-test-role",
            "--query",
            "Role.AssumeRolePolicyDocument",
        ])
        .json();
    assert_eq!(shown, trust);

    // Every call was authorized and logged as the admin user.
    let allowed = twin.decisions.recent(100, VerdictFilter::Allow);
    assert!(allowed.iter().any(|d| d.action == "iam:CreateRole"
        && d.caller == format!("arn:aws:iam::{ACCOUNT}:user/admin")
        && d.resource == format!("arn:aws:iam::{ACCOUNT}:role/my-test-role")));
    assert!(twin.decisions.recent(100, VerdictFilter::Deny).is_empty());
}

// ---------------------------------------------------------------------------------------------
// the other actions

#[test]
fn iam_role_policy_and_provider_lifecycle() {
    let Some((_twin, cli)) = setup() else { return };
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let doc2 = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let trust = trust_aws(&format!("arn:aws:iam::{ACCOUNT}:root"));
    let role = cli
        .iam(&[
            "create-role",
            "--role-name",
            "app",
            "--path",
            "/team/",
            "--assume-role-policy-document",
            &trust,
            "--max-session-duration",
            "7200",
            "--tags",
            "Key=team,Value=blue",
        ])
        .json();
    assert_eq!(
        role["Role"]["Arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/team/app")
    );
    assert_eq!(role["Role"]["MaxSessionDuration"], 7200);

    // Tags.
    assert!(
        cli.iam(&[
            "tag-role",
            "--role-name",
            "app",
            "--tags",
            "Key=env,Value=dev"
        ])
        .ok
    );
    let tags = cli.iam(&["list-role-tags", "--role-name", "app"]).json();
    assert_eq!(
        tags["Tags"],
        json!([{"Key": "team", "Value": "blue"}, {"Key": "env", "Value": "dev"}])
    );
    assert!(
        cli.iam(&["untag-role", "--role-name", "app", "--tag-keys", "team"])
            .ok
    );
    let tags = cli.iam(&["list-role-tags", "--role-name", "app"]).json();
    assert_eq!(tags["Tags"], json!([{"Key": "env", "Value": "dev"}]));

    // Update.
    assert!(
        cli.iam(&[
            "update-role",
            "--role-name",
            "app",
            "--description",
            "the app"
        ])
        .ok
    );
    let new_trust = trust_aws(&format!("arn:aws:iam::{ACCOUNT}:user/admin"));
    assert!(
        cli.iam(&[
            "update-assume-role-policy",
            "--role-name",
            "app",
            "--policy-document",
            &new_trust
        ])
        .ok
    );
    let got = cli.iam(&["get-role", "--role-name", "app"]).json();
    assert_eq!(got["Role"]["Description"], "the app");
    assert_eq!(
        got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{ACCOUNT}:user/admin")
    );
    assert_eq!(got["Role"]["Tags"], json!([{"Key": "env", "Value": "dev"}]));
    let roles = cli.iam(&["list-roles", "--path-prefix", "/team/"]).json();
    assert_eq!(roles["Roles"].as_array().unwrap().len(), 1);
    assert_eq!(roles["Roles"][0]["RoleName"], "app");

    // Inline policies.
    assert!(
        cli.iam(&[
            "put-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read",
            "--policy-document",
            doc
        ])
        .ok
    );
    let names = cli
        .iam(&["list-role-policies", "--role-name", "app"])
        .json();
    assert_eq!(names["PolicyNames"], json!(["read"]));
    let inline = cli
        .iam(&[
            "get-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read",
        ])
        .json();
    assert_eq!(
        inline["PolicyDocument"],
        serde_json::from_str::<Value>(doc).unwrap()
    );

    // Managed policy versions, attachment, boundary.
    let p = cli
        .iam(&[
            "create-policy",
            "--policy-name",
            "bound",
            "--path",
            "/b/",
            "--policy-document",
            doc,
            "--description",
            "a boundary",
            "--tags",
            "Key=team,Value=platform",
        ])
        .json();
    let arn = p["Policy"]["Arn"].as_str().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT}:policy/b/bound"));
    assert_eq!(
        p["Policy"]["Tags"],
        serde_json::json!([{"Key": "team", "Value": "platform"}])
    );
    let got = cli.iam(&["get-policy", "--policy-arn", &arn]).json();
    assert_eq!(got["Policy"]["Tags"][0]["Value"], "platform");
    assert_eq!(got["Policy"]["Description"], "a boundary");
    let v2 = cli
        .iam(&[
            "create-policy-version",
            "--policy-arn",
            &arn,
            "--policy-document",
            doc2,
            "--set-as-default",
        ])
        .json();
    assert_eq!(v2["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(v2["PolicyVersion"]["IsDefaultVersion"], true);
    let versions = cli
        .iam(&["list-policy-versions", "--policy-arn", &arn])
        .json();
    let ids: Vec<&str> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v2", "v1"]);
    // One version per page: the CLI follows IsTruncated and Marker to the same list.
    let paged = cli
        .iam(&[
            "list-policy-versions",
            "--policy-arn",
            &arn,
            "--page-size",
            "1",
        ])
        .json();
    assert_eq!(paged["Versions"], versions["Versions"]);
    // With one item asked for, the CLI's NextToken carries the twin's Marker (a list the twin
    // did not page would be cut by the CLI instead: `{"Marker": null, "boto_truncate_amount": 1}`).
    let first = cli
        .iam(&[
            "list-policy-versions",
            "--policy-arn",
            &arn,
            "--page-size",
            "1",
            "--max-items",
            "1",
        ])
        .json();
    assert_eq!(first["Versions"][0]["VersionId"], "v2");
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD
        .decode(first["NextToken"].as_str().unwrap())
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&token).unwrap();
    assert_eq!(token["Marker"], "1", "{token}");
    assert!(
        cli.iam(&[
            "set-default-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v1"
        ])
        .ok
    );
    assert!(
        cli.iam(&[
            "delete-policy-version",
            "--policy-arn",
            &arn,
            "--version-id",
            "v2"
        ])
        .ok
    );
    let listed = cli
        .iam(&["list-policies", "--scope", "Local", "--path-prefix", "/b/"])
        .json();
    assert_eq!(listed["Policies"][0]["Arn"], arn);
    assert!(
        cli.iam(&[
            "put-role-permissions-boundary",
            "--role-name",
            "app",
            "--permissions-boundary",
            &arn
        ])
        .ok
    );
    let got = cli.iam(&["get-role", "--role-name", "app"]).json();
    assert_eq!(
        got["Role"]["PermissionsBoundary"],
        json!({"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn})
    );
    assert!(
        cli.iam(&[
            "attach-role-policy",
            "--role-name",
            "app",
            "--policy-arn",
            &arn
        ])
        .ok
    );

    // Simulation: the role's inline policy allows s3:GetObject, nothing allows iam:CreateRole.
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/team/app");
    let sim = cli
        .iam(&[
            "simulate-principal-policy",
            "--policy-source-arn",
            &role_arn,
            "--action-names",
            "s3:GetObject",
            "iam:CreateRole",
        ])
        .json();
    let results = sim["EvaluationResults"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["EvalActionName"], "s3:GetObject");
    assert_eq!(results[0]["EvalResourceName"], "*");
    assert_eq!(results[0]["EvalDecision"], "allowed");
    assert_eq!(results[0]["MatchedStatements"][0]["SourcePolicyId"], "read");
    assert_eq!(
        results[0]["MatchedStatements"][0]["StartPosition"],
        json!({"Line": 1, "Column": 38})
    );
    assert_eq!(results[1]["EvalDecision"], "implicitDeny");
    assert_eq!(results[1]["MatchedStatements"], json!([]));

    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/x":"y"}}},
{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}"#;
    let sim = cli
        .iam(&[
            "simulate-custom-policy",
            "--policy-input-list",
            deny,
            "--action-names",
            "s3:PutObject",
            "s3:DeleteObject",
            "--resource-arns",
            "arn:aws:s3:::b/k",
        ])
        .json();
    let results = sim["EvaluationResults"].as_array().unwrap();
    assert_eq!(results[0]["EvalDecision"], "explicitDeny");
    assert_eq!(
        results[0]["MatchedStatements"][0],
        json!({"SourcePolicyId": "PolicyInputList.1",
               "StartPosition": {"Line": 3, "Column": 1},
               "EndPosition": {"Line": 3, "Column": 57}})
    );
    assert_eq!(results[1]["EvalDecision"], "allowed");
    assert_eq!(
        results[1]["MissingContextValues"],
        json!(["aws:RequestTag/x"])
    );

    // Teardown in IAM's order.
    assert!(
        cli.iam(&[
            "detach-role-policy",
            "--role-name",
            "app",
            "--policy-arn",
            &arn
        ])
        .ok
    );
    assert!(
        cli.iam(&["delete-role-permissions-boundary", "--role-name", "app"])
            .ok
    );
    assert!(
        cli.iam(&[
            "delete-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read"
        ])
        .ok
    );
    assert!(cli.iam(&["delete-policy", "--policy-arn", &arn]).ok);
    assert!(cli.iam(&["delete-role", "--role-name", "app"]).ok);
    cli.iam(&["get-role", "--role-name", "app"])
        .error_message("NoSuchEntity");

    // OIDC provider updates.
    let thumb = "a".repeat(40);
    let p = cli
        .iam(&[
            "create-open-id-connect-provider",
            "--url",
            "https://oidc.example.com/id/X",
            "--client-id-list",
            "sts.amazonaws.com",
            "--thumbprint-list",
            &thumb,
        ])
        .json();
    let parn = p["OpenIDConnectProviderArn"].as_str().unwrap().to_string();
    assert!(
        cli.iam(&[
            "add-client-id-to-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &parn,
            "--client-id",
            "other"
        ])
        .ok
    );
    assert!(
        cli.iam(&[
            "remove-client-id-from-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &parn,
            "--client-id",
            "sts.amazonaws.com"
        ])
        .ok
    );
    let b = "b".repeat(40);
    assert!(
        cli.iam(&[
            "update-open-id-connect-provider-thumbprint",
            "--open-id-connect-provider-arn",
            &parn,
            "--thumbprint-list",
            &b
        ])
        .ok
    );
    let got = cli
        .iam(&[
            "get-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &parn,
        ])
        .json();
    assert_eq!(got["ClientIDList"], json!(["other"]));
    assert_eq!(got["ThumbprintList"], json!([b]));
    assert!(
        cli.iam(&[
            "delete-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            &parn
        ])
        .ok
    );

    // GetUser: the caller's own user.
    let me = cli.iam(&["get-user"]).json();
    assert_eq!(me["User"]["UserName"], "admin");
    assert_eq!(
        me["User"]["Arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/admin")
    );
    assert!(me["User"]["UserId"].as_str().unwrap().starts_with("AIDA"));
    let _ = cli.path();
}

// ---------------------------------------------------------------------------------------------
// errors

#[test]
fn iam_errors_as_aws_answers_them() {
    let Some((twin, mut cli)) = setup() else {
        return;
    };

    // A trust policy naming a role that does not exist.
    let ghost = format!("arn:aws:iam::{ACCOUNT}:role/ghost");
    let msg = cli
        .iam(&[
            "create-role",
            "--role-name",
            "r1",
            "--assume-role-policy-document",
            &trust_aws(&ghost),
        ])
        .error_message("MalformedPolicyDocument");
    assert_eq!(
        msg,
        format!("Invalid principal in policy: \"AWS\":\"{ghost}\"")
    );

    // A trusted role deleted and recreated: the other role's trust shows the old unique id.
    let a = cli
        .iam(&[
            "create-role",
            "--role-name",
            "a",
            "--assume-role-policy-document",
            &trust_aws(ACCOUNT),
        ])
        .json();
    let old_id = a["Role"]["RoleId"].as_str().unwrap().to_string();
    let a_arn = format!("arn:aws:iam::{ACCOUNT}:role/a");
    cli.iam(&[
        "create-role",
        "--role-name",
        "b",
        "--assume-role-policy-document",
        &trust_aws(&a_arn),
    ])
    .json();
    let b = cli.iam(&["get-role", "--role-name", "b"]).json();
    assert_eq!(
        b["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        a_arn
    );
    assert!(cli.iam(&["delete-role", "--role-name", "a"]).ok);
    let a2 = cli
        .iam(&[
            "create-role",
            "--role-name",
            "a",
            "--assume-role-policy-document",
            &trust_aws(ACCOUNT),
        ])
        .json();
    assert_ne!(a2["Role"]["RoleId"], old_id);
    let b = cli.iam(&["get-role", "--role-name", "b"]).json();
    assert_eq!(
        b["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        old_id
    );

    // NoSuchEntity, EntityAlreadyExists, DeleteConflict.
    let msg = cli
        .iam(&["get-role", "--role-name", "nope"])
        .error_message("NoSuchEntity");
    assert_eq!(msg, "The role with name nope cannot be found.");
    let msg = cli
        .iam(&[
            "create-role",
            "--role-name",
            "b",
            "--assume-role-policy-document",
            &trust_aws(ACCOUNT),
        ])
        .error_message("EntityAlreadyExists");
    assert_eq!(msg, "Role with name b already exists.");
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let p = cli
        .iam(&[
            "create-policy",
            "--policy-name",
            "p",
            "--policy-document",
            doc,
        ])
        .json();
    let parn = p["Policy"]["Arn"].as_str().unwrap().to_string();
    assert!(
        cli.iam(&[
            "attach-role-policy",
            "--role-name",
            "b",
            "--policy-arn",
            &parn
        ])
        .ok
    );
    let msg = cli
        .iam(&["delete-role", "--role-name", "b"])
        .error_message("DeleteConflict");
    assert_eq!(msg, "Cannot delete entity, must detach all policies first.");
    cli.iam(&["delete-policy", "--policy-arn", &parn])
        .error_message("DeleteConflict");

    // A malformed policy names the element.
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEqual":{"s3:prefix":"a"}}}]}"#;
    let msg = cli
        .iam(&[
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            bad,
        ])
        .error_message("MalformedPolicyDocument");
    assert!(msg.contains("Statement[0].Condition.StringEqual"), "{msg}");

    // Constraint failures: server-side ValidationError in AWS's words.
    let msg = cli
        .iam(&["get-role", "--role-name", "a b"])
        .error_message("ValidationError");
    assert_eq!(
        msg,
        r"1 validation error detected: Value 'a b' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+"
    );
    // A missing required parameter (botocore's own check turned off so the request is sent).
    let missing = cli.python(
        "import botocore.session, botocore.config\n\
         s = botocore.session.get_session()\n\
         c = s.create_client('iam', config=botocore.config.Config(parameter_validation=False, retries={'max_attempts': 0}))\n\
         try:\n    c.get_role()\nexcept c.exceptions.ClientError as e:\n    print(e.response['Error']['Code'] + '|' + e.response['Error']['Message'])\n",
    );
    assert!(missing.ok, "{}", missing.stderr);
    assert_eq!(
        missing.text().trim(),
        "ValidationError|1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
    );

    // A role session without IAM permissions: AccessDenied, and the decision is logged.
    let session = twin
        .store
        .issue_session(&NewSession {
            role_arn: a_arn.clone(),
            role_id: a2["Role"]["RoleId"].as_str().unwrap().to_string(),
            session_name: "s".into(),
            issued: OffsetDateTime::now_utc(),
            expires: OffsetDateTime::now_utc() + time::Duration::hours(1),
            session_policy: None,
            session_policy_arns: Vec::new(),
            session_tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            chained: false,
        })
        .unwrap();
    cli.add_profile(
        "limited",
        &session.access_key_id,
        &session.secret_access_key,
        Some(&session.session_token),
    );
    let msg = cli
        .iam_as(
            "limited",
            &[
                "create-role",
                "--role-name",
                "x",
                "--assume-role-policy-document",
                &trust_aws(ACCOUNT),
            ],
        )
        .error_message("AccessDenied");
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/a/s is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::{ACCOUNT}:role/x because no identity-based policy allows the iam:CreateRole action"
        )
    );
    let denied = twin.decisions.last_denied().expect("a denied decision");
    assert_eq!(denied.action, "iam:CreateRole");
    assert_eq!(denied.service, "iam");
    assert_eq!(
        denied.caller,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/a/s")
    );
    assert_eq!(denied.resource, format!("arn:aws:iam::{ACCOUNT}:role/x"));
    // The role's own policies decide for its sessions: an inline policy allowing ListRoles.
    let list_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#;
    assert!(
        cli.iam(&[
            "put-role-policy",
            "--role-name",
            "a",
            "--policy-name",
            "list",
            "--policy-document",
            list_only,
        ])
        .ok
    );
    let roles = cli.iam_as("limited", &["list-roles"]).json();
    assert!(roles["Roles"].as_array().unwrap().len() >= 2);
    let allowed = twin.decisions.recent(1, VerdictFilter::Allow);
    assert_eq!(allowed[0].action, "iam:ListRoles");
    assert_eq!(
        allowed[0].caller,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/a/s")
    );
    // GetUser with role credentials and no user name.
    cli.iam_as("limited", &["get-user"])
        .error_message("ValidationError");

    // A session whose token is wrong, one that expired, a bad signature, an unknown key.
    cli.add_profile(
        "wrongtoken",
        &session.access_key_id,
        &session.secret_access_key,
        Some("not-the-token"),
    );
    cli.iam_as("wrongtoken", &["list-roles"])
        .error_message("InvalidClientTokenId");
    let expired = twin
        .store
        .issue_session(&NewSession {
            role_arn: a_arn.clone(),
            role_id: a2["Role"]["RoleId"].as_str().unwrap().to_string(),
            session_name: "old".into(),
            issued: OffsetDateTime::now_utc() - time::Duration::hours(2),
            expires: OffsetDateTime::now_utc() - time::Duration::hours(1),
            session_policy: None,
            session_policy_arns: Vec::new(),
            session_tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            chained: false,
        })
        .unwrap();
    cli.add_profile(
        "expired",
        &expired.access_key_id,
        &expired.secret_access_key,
        Some(&expired.session_token),
    );
    let msg = cli
        .iam_as("expired", &["list-roles"])
        .error_message("ExpiredToken");
    assert_eq!(msg, "The security token included in the request is expired");

    let key = twin.store.list_access_keys(ACCOUNT).unwrap().remove(0);
    cli.add_profile(
        "badsig",
        &key.access_key_id,
        "0000000000000000000000000000000000000000",
        None,
    );
    cli.iam_as("badsig", &["list-roles"])
        .error_message("SignatureDoesNotMatch");
    cli.add_profile(
        "unknown",
        "AKIAAAAAAAAAAAAAAAAA",
        "0000000000000000000000000000000000000000",
        None,
    );
    cli.iam_as("unknown", &["list-roles"])
        .error_message("InvalidClientTokenId");

    // Deleting the session's role ends the session.
    cli.iam(&[
        "detach-role-policy",
        "--role-name",
        "b",
        "--policy-arn",
        &parn,
    ]);
    assert!(
        cli.iam(&[
            "delete-role-policy",
            "--role-name",
            "a",
            "--policy-name",
            "list"
        ])
        .ok
    );
    assert!(cli.iam(&["delete-role", "--role-name", "a"]).ok);
    let run = cli.iam_as("limited", &["list-roles"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("InvalidClientTokenId") || run.stderr.contains("ExpiredToken"),
        "{}",
        run.stderr
    );
}
