//! `rolechain explain pod` and `rolechain lint` as users run them: against `rolechain up`
//! (a cross-account EKS Pod Identity chain made with the AWS CLI, as seed 004 makes it, and a
//! broken one beside it), offline from world files, and on malformed input.

mod support;

use support::*;

const DEV: &str = "111111111111";
const SHARED: &str = "222222222222";
const PICTURE: &str = "arn:aws:s3:::pics/indoor-cat.jpg";

fn aws_ok(up: &Up, profile: &str, args: &[&str]) -> Option<()> {
    let out = up.aws(Some(profile), args)?;
    assert!(out.status.success(), "aws {args:?}: {}", stderr(&out));
    Some(())
}

/// Seed 004's chain for `default/my-app` (primary role in developer trusting
/// `pods.eks.amazonaws.com` with both actions, target role in shared_content reading pics), and
/// `default/broken` whose role's trust lacks `sts:TagSession`. `None` without the AWS CLI.
fn chains(up: &Up) -> Option<()> {
    let primary_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    aws_ok(
        up,
        "developer",
        &[
            "iam",
            "create-role",
            "--role-name",
            "primary",
            "--assume-role-policy-document",
            primary_trust,
        ],
    )?;
    let assume = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::{SHARED}:role/target"}}]}}"#
    );
    aws_ok(
        up,
        "developer",
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "primary",
            "--policy-name",
            "assume-target",
            "--policy-document",
            &assume,
        ],
    )?;
    let target_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{DEV}:role/primary"}},"Action":["sts:AssumeRole"]}},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{DEV}:role/primary"}},"Action":["sts:TagSession"]}}]}}"#
    );
    aws_ok(
        up,
        "shared_content",
        &[
            "iam",
            "create-role",
            "--role-name",
            "target",
            "--assume-role-policy-document",
            &target_trust,
        ],
    )?;
    aws_ok(
        up,
        "shared_content",
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "target",
            "--policy-name",
            "read-pics",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
        ],
    )?;
    let broken_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_ok(
        up,
        "developer",
        &[
            "iam",
            "create-role",
            "--role-name",
            "broken",
            "--assume-role-policy-document",
            broken_trust,
        ],
    )?;
    for (sa, role) in [("my-app", "primary"), ("broken", "broken")] {
        let role_arn = format!("arn:aws:iam::{DEV}:role/{role}");
        aws_ok(
            up,
            "developer",
            &[
                "eks",
                "create-pod-identity-association",
                "--cluster-name",
                "development-cluster",
                "--namespace",
                "default",
                "--service-account",
                sa,
                "--role-arn",
                &role_arn,
            ],
        )?;
    }
    // The AWS CLI of this mirror may predate --target-role-arn on create; update sets it.
    let listed = ok_json(up.aws(
        Some("developer"),
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "development-cluster",
            "--service-account",
            "my-app",
        ],
    ));
    let id = listed["associations"][0]["associationId"]
        .as_str()
        .unwrap()
        .to_string();
    let target_arn = format!("arn:aws:iam::{SHARED}:role/target");
    aws_ok(
        up,
        "developer",
        &[
            "eks",
            "update-pod-identity-association",
            "--cluster-name",
            "development-cluster",
            "--association-id",
            &id,
            "--target-role-arn",
            &target_arn,
        ],
    )?;
    Some(())
}

#[test]
fn explain_pod_and_lint_against_the_running_twin() {
    let dir = TempDir::new("diagnose");
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    // The default world: nothing to complain about.
    let out = rolechain_at(&data, &["lint"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 error(s)"), "{}", stdout(&out));
    if chains(&up).is_none() {
        return;
    }

    let pod = |sa: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "pod",
            "--cluster",
            "development-cluster",
            "-n",
            "default",
            "--service-account",
            sa,
            "--action",
            "s3:GetObject",
            "--resource",
            PICTURE,
        ];
        args.extend_from_slice(extra);
        rolechain_at(&data, &args)
    };
    let out = pod("my-app", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(!text.contains('✗'), "{text}");
    assert!(
        text.contains("✓ ") && text.contains("EKS Pod Identity"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "chained session of arn:aws:iam::{SHARED}:role/target"
        )),
        "{text}"
    );
    assert!(text.contains("Result: every step holds"), "{text}");

    let out = pod("broken", &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains(
            "✗ 5. trust policy of arn:aws:iam::111111111111:role/broken allows sts:TagSession"
        ),
        "{text}"
    );
    assert!(text.contains(r#"fix: add to the trust policy of arn:aws:iam::111111111111:role/broken: {"Action":["sts:AssumeRole","sts:TagSession"]"#), "{text}");

    let out = pod("broken", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["ok"], false);
    let failed: Vec<&serde_json::Value> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .collect();
    assert_eq!(failed[0]["check"], "trust-tag-session", "{json}");
    assert!(failed[0]["fix"]
        .as_str()
        .unwrap()
        .contains("sts:TagSession"));
    // No secret in what the twin hands out.
    assert!(
        !stdout(&out).contains("secretAccessKey") && !stdout(&out).contains("secret_access_key")
    );

    // lint sees the broken chain and only it.
    let out = rolechain_at(&data, &["lint", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["rule"], "trust-tag-session");
    assert!(findings[0]["at"]
        .as_str()
        .unwrap()
        .contains("default/broken"));

    // Malformed input: exit 2 with a clear message.
    let out = pod("nobody", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no service account default/nobody"),
        "{}",
        stderr(&out)
    );
    let out = rolechain_at(
        &data,
        &[
            "explain",
            "pod",
            "--service-account",
            "my-app",
            "--action",
            "s3:GetObject",
            "--resource",
            "pics/cat.jpg",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --resource 'pics/cat.jpg'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lint_offline_from_world_files() {
    let dir = TempDir::new("lint-world");
    let broken = dir.file(
        "broken.yaml",
        r#"accounts:
  - id: "111111111111"
    alias: developer
    roles:
      - name: pod-role
        trust_policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: {Service: pods.eks.amazonaws.com}
              Action: sts:AssumeRole
"#,
    );
    let out = rolechain(&["lint", "--world", &broken]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("error[pod-identity-trust-without-tag-session]: role arn:aws:iam::111111111111:role/pod-role"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("fix: add sts:TagSession"),
        "{}",
        stdout(&out)
    );

    let fixed = dir.file(
        "fixed.yaml",
        &std::fs::read_to_string(&broken).unwrap().replace(
            "Action: sts:AssumeRole",
            "Action: [sts:AssumeRole, sts:TagSession]",
        ),
    );
    let out = rolechain(&["lint", "--world", &fixed]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let missing = dir.path().join("missing.yaml").display().to_string();
    let out = rolechain(&["lint", "--world", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read world file"),
        "{}",
        stderr(&out)
    );
    let out = rolechain(&[
        "explain",
        "pod",
        "--world",
        &missing,
        "--service-account",
        "a",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read world file"),
        "{}",
        stderr(&out)
    );
}
