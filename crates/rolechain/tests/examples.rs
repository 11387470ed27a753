//! The README's walkthroughs and the seeds' acceptance tests, run literally: each
//! `examples/*/run.sh` against a fresh `rolechain up`, with the exports `up` prints, the real
//! AWS CLI as `aws`, the pinned Python (with boto3) as `python3`, and the built binary as
//! `rolechain`; the README quotes the scripts it walks through as they are.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

/// Runs `examples/NAME/run.sh` in an empty directory; its output, or `None` without the CLI.
fn run_example(name: &str) -> Option<std::process::Output> {
    run_example_against(name, &[])
}

/// [`run_example`] against `rolechain up UP_ARGS`.
fn run_example_against(name: &str, up_args: &[&str]) -> Option<std::process::Output> {
    let script = repository().join("examples").join(name).join("run.sh");
    run_script(&format!("example-{name}"), &script, up_args)
}

/// The README's code block that starts with `first_line`, as it is.
fn readme_block(first_line: &str) -> String {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            let block: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            if block.first().is_some_and(|l| l.starts_with(first_line)) {
                return block.join("\n") + "\n";
            }
        }
    }
    panic!("README.md has no code block starting with {first_line:?}");
}

/// Runs the README's block starting with `first_line` literally (`set -e`), as a user who
/// exported what `up` printed, with `cargo run --release --` running the built binary.
fn run_readme_block(first_line: &str) -> Option<std::process::Output> {
    let dir = TempDir::new("readme-block");
    let script = dir.file(
        "block.sh",
        &format!("set -euo pipefail\n{}", readme_block(first_line)),
    );
    run_script("readme", Path::new(&script), &[])
}

/// Runs `script` with bash in an empty directory against a fresh `rolechain up UP_ARGS`; its
/// output, or `None` without the CLI.
fn run_script(name: &str, script: &Path, up_args: &[&str]) -> Option<std::process::Output> {
    let dir = TempDir::new(name);
    let up = Up::start(&dir.path().join("data"), up_args);
    // The interpreter's own path: the wrappers below put a `python3` first on PATH, so a bare
    // `python3` in them would run themselves.
    let python = python()?;
    let exe = Command::new(&python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(exe.stdout).unwrap().trim().to_owned();
    // `aws` as a user has it: the AWS CLI of the pinned Python.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        format!("#!/bin/sh\nexec \"{python}\" -m awscli \"$@\"\n"),
    )
    .unwrap();
    // `python3` as the seeds' apps have it: the pinned Python, with boto3.
    let python3 = bin.join("python3");
    std::fs::write(&python3, format!("#!/bin/sh\nexec \"{python}\" \"$@\"\n")).unwrap();
    // The README's `cargo run --release -- ARGS` and `rolechain ARGS`: the built binary.
    let exe = env!("CARGO_BIN_EXE_rolechain");
    let rolechain = bin.join("rolechain");
    std::fs::write(&rolechain, format!("#!/bin/sh\nexec \"{exe}\" \"$@\"\n")).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\n[ \"$1 $2 $3\" = \"run --release --\" ] || {{ echo \"cargo shim: $*\" >&2; exit 2; }}\nshift 3\nexec \"{exe}\" \"$@\"\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for script in [&aws, &python3, &rolechain, &cargo] {
            std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new("bash")
        .arg(script)
        .current_dir(&work)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", &work)
        // What `up` told the user to export.
        .env("AWS_CONFIG_FILE", up.data_dir.join("aws/config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            up.data_dir.join("aws/credentials"),
        )
        .env("ROLECHAIN", env!("CARGO_BIN_EXE_rolechain"))
        .env("ROLECHAIN_DATA_DIR", &up.data_dir)
        .env("AWS_PAGER", "")
        .output()
        .unwrap();
    Some(out)
}

/// The README holds the script from its first command on, word for word.
fn quoted_in_readme(name: &str) {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let script =
        std::fs::read_to_string(repository().join("examples").join(name).join("run.sh")).unwrap();
    let body: String = script
        .lines()
        .skip_while(|l| {
            l.starts_with('#')
                || l.starts_with("set ")
                || l.starts_with("rolechain()")
                || l.is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        readme.contains(&body),
        "README.md does not quote examples/{name}/run.sh as it is"
    );
}

#[test]
fn seed_002_as_the_readme_shows_it() {
    quoted_in_readme("seed-002");
    let Some(out) = run_example("seed-002") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("arn:aws:sts::111111111111:assumed-role/my-test-role/"),
        "{text}"
    );
    assert!(text.contains("hello.txt"), "{text}");
    // Before the annotation, the pod had no credentials, and exec said why.
    assert!(text.contains("denied, as the seed shows"), "{text}");
    assert!(
        stderr(&out).contains("has no eks.amazonaws.com/role-arn annotation"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_agent_chain_as_the_readme_shows_it() {
    quoted_in_readme("agent-chain");
    let Some(out) = run_example("agent-chain") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/second/my-app-namespace.my-app-sa"),
        "{text}"
    );
    assert!(
        text.contains("download: s3://pics/indoor-cat.jpg"),
        "{text}"
    );
}

#[test]
fn seed_000_cross_account_irsa_and_the_blue_green_chain() {
    let Some(out) = run_example("seed-000") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // eksctl's step, as rolechain does it.
    assert!(
        text.contains(
            "created IAM Open ID Connect provider arn:aws:iam::111111111111:oidc-provider/"
        ),
        "{text}"
    );
    // The seed's get-object, on credentials of shared_content's role, from the pod's token.
    assert!(text.contains("\"ContentType\": \"image/jpeg\""), "{text}");
    // The blue/green way: the developer account's role, then a standard AssumeRole.
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/pics-from-developer/blue-green"),
        "{text}"
    );
    // The second cluster: ACTIVE at once, listed beside the first.
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"ACTIVE"), "{text}");
    assert!(
        lines.contains(&"development-cluster\tgreen\trolechain-examples"),
        "{text}"
    );
    // Its pods read the picture both ways: through the developer account's role (whose trust
    // alone learned the new issuer) and straight through shared_content's provider for it.
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/s3-read-object/"),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "517").count(),
        3,
        "three get-objects' ContentLength: {text}"
    );
    // The old cluster retired, green is the one left, and its pods still work.
    assert!(lines.contains(&"DELETING"), "{text}");
    assert!(lines.contains(&"green\trolechain-examples"), "{text}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("arn:aws:sts::111111111111:assumed-role/pics-hop/")),
        "{text}"
    );
}

#[test]
fn seed_001_entrypoint_and_refreshing_credentials() {
    let Some(out) = run_example("seed-001") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("app as arn:aws:sts::222222222222:assumed-role/pics-reader/entrypoint"),
        "{text}"
    );
    assert!(text.contains("read 517 bytes"), "{text}");
    // botocore renewed the other account's session on each read: three sessions, no app code.
    assert!(
        text.contains(
            "3 reads on 3 sessions of arn:aws:sts::222222222222:assumed-role/pics-reader/refreshing-app"
        ),
        "{text}"
    );
    // The rolechain way: no refresh code, the agent's chain renewed under a running app.
    let line = text
        .lines()
        .find(|l| l.starts_with("8 reads over 8 s on"))
        .unwrap_or_else(|| panic!("{text}"));
    let sets: usize = line
        .split_whitespace()
        .nth(6)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(sets >= 3, "at least two renewals under the app: {line}");
    assert!(
        line.ends_with("of arn:aws:sts::222222222222:assumed-role/pics-reader/default.python-app"),
        "{line}"
    );
}

#[test]
fn seed_003_both_methods_and_chained_profiles() {
    let Some(out) = run_example("seed-003") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // Method 1: account B's role straight from the pod's token, through B's provider.
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/account-b-role/"),
        "{text}"
    );
    // Method 2: the ~/.aws/config profiles, account_b_role sourcing account_a_role.
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/account-b-chained/"),
        "{text}"
    );
    assert!(
        text.contains("download: s3://pics/indoor-cat.jpg"),
        "{text}"
    );
    assert!(text.contains("boto3: image/jpeg"), "{text}");
}

#[test]
fn seed_004_pod_identity_with_a_target_role() {
    let Some(out) = run_example("seed-004") else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // The test pod's first attempt lists the bucket of account B.
    assert!(text.contains("--- AWS CLI attempt #1 ---"), "{text}");
    assert!(text.contains("data.txt"), "{text}");
    assert!(!text.contains("attempt #2"), "{text}");
    assert!(
        text.contains("arn:aws:sts::222222222222:assumed-role/s3-reader-target-role/"),
        "{text}"
    );
    // The pitfall: no sts:TagSession in the primary role's trust, and the pod is told why.
    assert!(
        text.contains("is not authorized to perform: sts:TagSession on resource: arn:aws:iam::111111111111:role/primary-without-tagsession"),
        "{text}"
    );
    assert!(text.contains("refused, as the seed warns"), "{text}");
    // The deployment-order pitfall, in IAM's words.
    assert!(
        text.contains("Invalid principal in policy")
            && text.contains("refused: create the primary role first, as the seed says"),
        "{text}"
    );
    // explain pod names the broken link and its fix.
    assert!(text.contains("sts:TagSession"), "{text}");
    let explained = &text[text.find("refused, as the seed warns").unwrap()..];
    assert!(
        explained.contains("✗") && explained.contains("pods.eks.amazonaws.com"),
        "{explained}\n{}",
        stderr(&out)
    );
}

/// Seed 004's eventual-consistency pitfall: with IAM changes reaching STS 4 s late, the test
/// pod's first attempt fails and a retry succeeds, as the seed's retry loop expects.
#[test]
fn seed_004_retries_through_iam_propagation() {
    let Some(out) = run_example_against("seed-004", &["--iam-propagation-delay", "4s"]) else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let loop_output = &text[..text.find("data.txt").unwrap_or_else(|| panic!("{text}"))];
    assert!(
        loop_output.contains("--- Command failed. Retrying in 1 second... ---"),
        "the first attempt fails before IAM has propagated: {text}"
    );
    assert!(
        !text.contains("Command failed after 5 attempts"),
        "a retry succeeds: {text}"
    );
}

/// The README's snippets that stand alone, run as written, each against a fresh twin.
#[test]
fn the_readmes_snippets_run_as_written() {
    let run = |first: &str| {
        let out = run_readme_block(first)?;
        Some((out.status.code(), stdout(&out), stderr(&out)))
    };
    // A pod's token, redirected: exactly the token.
    let Some((code, _, err)) = run("cargo run --release -- cluster token") else {
        return;
    };
    assert_eq!(code, Some(0), "{err}");
    // S3 in both accounts.
    let (code, out, err) = run("aws s3 ls --profile shared_content").unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("pics"), "{out}");
    assert!(out.contains("\"Location\": \"/my-bucket\""), "{out}");
    // Service accounts with kubectl's own YAML, and the OIDC provider eksctl would make.
    if std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let (code, out, err) = run("kubectl create serviceaccount my-service-account").unwrap();
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(
            out.contains("serviceaccount/my-service-account created"),
            "{out}"
        );
        assert!(
            out.contains("serviceaccount/my-service-account annotated"),
            "{out}"
        );
        assert!(
            out.contains("arn:aws:iam::111111111111:role/my-test-role"),
            "{out}"
        );
        assert!(
            out.contains("created IAM Open ID Connect provider"),
            "{out}"
        );
    } else {
        eprintln!("NOTICE: kubectl is not installed: skipping the README's kubectl block");
        assert!(
            std::env::var("ROLECHAIN_REQUIRE_PEERS").as_deref() != Ok("1"),
            "kubectl is required (ROLECHAIN_REQUIRE_PEERS=1)"
        );
    }
    // The plain AWS CLI's way to the same provider.
    let (code, out, err) = run("issuer=$(aws eks describe-cluster").unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(
            "\"OpenIDConnectProviderArn\": \"arn:aws:iam::111111111111:oidc-provider/127.0.0.1:"
        ),
        "{out}"
    );
    // Time passing.
    let (code, out, err) = run("rolechain clock ").unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("(3300s ahead of real time"), "{out}");
    // The offline explain: a denial (exit 1) printed as the README shows it.
    let (code, out, err) = run("cat > trust.json <<'EOF'").unwrap();
    assert_eq!(code, Some(1), "{out}{err}");
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let shown = readme_block("DENY (implicit): sts:AssumeRoleWithWebIdentity");
    for line in shown.lines().filter(|l| *l != "...") {
        assert!(
            out.contains(line),
            "README shows {line:?}; explain printed:\n{out}"
        );
    }
    assert!(readme.contains(&shown));
}
