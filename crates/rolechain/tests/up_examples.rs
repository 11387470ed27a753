//! `rolechain up`'s examples: one working chain per seed (and a three-hop chain), seeded into a
//! new data directory and checked through the real path at every start, one line each; a
//! broken example is a `✗` line with the reason and the `explain pod` to run. `lint` finds
//! nothing wrong with them, and the seeds' own scripts run beside them (`examples.rs`).

mod support;

use support::*;

const END: &str = "Try one as its pod:";

fn example_lines(up: &Up) -> Vec<String> {
    up.output_until(END)
        .into_iter()
        .filter(|l| l.starts_with("  ✓") || l.starts_with("  ✗"))
        .collect()
}

#[test]
fn up_checks_each_example_chain_at_start() {
    let dir = TempDir::new("up-examples");
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    let lines = example_lines(&up);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    // Where the seeds' scripts are: this checkout's.
    let all = up.output_until(END);
    let scripts = all
        .iter()
        .find_map(|l| l.strip_prefix("Each seed, command for command: "))
        .unwrap_or_else(|| panic!("{all:#?}"));
    let first = scripts.split(' ').next().unwrap();
    assert!(
        first.ends_with("/examples/seed-000/run.sh") && std::path::Path::new(first).is_file(),
        "{scripts}"
    );
    for (line, expected) in lines.iter().zip([
        "irsa-same-account → role/example-002-irsa → s3://rolechain-examples/hello.txt",
        "irsa-other-account → role/example-000-irsa → s3://pics/indoor-cat.jpg",
        "irsa-then-assume-role → role/example-001-second → s3://pics/indoor-cat.jpg",
        "pod-identity → role/example-004-target → s3://pics/indoor-cat.jpg",
        "three-hops → role/example-chain-third → s3://pics/indoor-cat.jpg",
    ]) {
        assert!(
            line.starts_with("  ✓") && line.ends_with(expected),
            "{line} (expected ✓ … {expected})"
        );
    }
    // The examples are what lint calls clean: no finding at all.
    let out = rolechain_at(&data, &["lint"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("0 error(s), 0 warning(s)"),
        "{}",
        stdout(&out)
    );
    // Commands that mean the only cluster still mean development-cluster.
    let out = rolechain_at(&data, &["cluster", "get", "serviceaccounts", "-A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("irsa-same-account"),
        "{}",
        stdout(&out)
    );
    let out = rolechain_at(
        &data,
        &[
            "cluster",
            "get",
            "serviceaccounts",
            "--cluster",
            "rolechain-examples",
            "-A",
        ],
    );
    assert!(
        stdout(&out).contains("irsa-same-account"),
        "{}",
        stdout(&out)
    );

    // Break one (the shared account's role loses its permission), restart on the same data:
    // its line says what refused it and what to run.
    let Some(removed) = up.aws(
        Some("shared_content"),
        &[
            "iam",
            "delete-role-policy",
            "--role-name",
            "example-000-irsa",
            "--policy-name",
            "example",
        ],
    ) else {
        return;
    };
    assert!(removed.status.success(), "{}", stderr(&removed));
    // The same address: the issuers' URLs name it.
    let addr = up.addr().to_string();
    drop(up);
    let up = Up::start_on(&data, &addr, &[]);
    let lines = example_lines(&up);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let broken: Vec<&String> = lines.iter().filter(|l| l.starts_with("  ✗")).collect();
    assert_eq!(broken.len(), 1, "{lines:#?}");
    assert!(
        broken[0].contains("irsa-other-account")
            && broken[0].contains("s3:GetObject s3://pics/indoor-cat.jpg as role/example-000-irsa")
            && broken[0].contains("AccessDenied"),
        "{}",
        broken[0]
    );
    let all = up.output_until(END);
    assert!(
        all.iter().any(|l| l.contains(
            "rolechain explain pod --cluster rolechain-examples -n rolechain-examples --service-account irsa-other-account --action s3:GetObject --resource arn:aws:s3:::pics/indoor-cat.jpg"
        )),
        "{all:#?}"
    );
    // That command names the missing permission.
    let out = rolechain_at(
        &data,
        &[
            "explain",
            "pod",
            "--cluster",
            "rolechain-examples",
            "-n",
            "rolechain-examples",
            "--service-account",
            "irsa-other-account",
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::pics/indoor-cat.jpg",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("example-000-irsa"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_world_file_has_no_examples() {
    let dir = TempDir::new("up-world-no-examples");
    let world = dir.file(
        "world.yaml",
        "accounts:\n  - id: \"333333333333\"\n    alias: solo\n",
    );
    let up = Up::start(&dir.path().join("data"), &["--world", &world]);
    assert!(
        !up.banner.iter().any(|l| l.contains("rolechain-examples")),
        "{:#?}",
        up.banner
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        !up.later
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Examples")),
        "a world file's twin checks no examples"
    );
}
