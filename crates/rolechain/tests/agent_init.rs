//! `rolechain agent init` in a network namespace of its own (`unshare --net`, needs root or
//! user namespaces): the agent's addresses land on the link, twice is the same as once, and a
//! kernel without dummy links is told to name an existing one.

mod support;

use std::process::Command;

use support::*;

/// Runs `script` with `sh` in a new network namespace, `$0` the rolechain binary; `None` (said
/// loudly) where namespaces cannot be made here.
fn in_netns(script: &str) -> Option<std::process::Output> {
    let probe = Command::new("unshare").args(["--net", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        // A privilege of the machine, not a peer to install: skipped (loudly) where missing.
        eprintln!(
            "NOTICE: skipping: unshare --net is not available (needs root or user namespaces)"
        );
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["--net", "sh", "-c", script, env!("CARGO_BIN_EXE_rolechain")])
            .output()
            .expect("unshare runs"),
    )
}

#[test]
fn init_puts_the_agents_addresses_on_a_link_idempotently() {
    let Some(out) = in_netns(
        r#"set -e
"$0" agent init --link lo
"$0" agent init --link lo
ip -o addr show dev lo"#,
    ) else {
        return;
    };
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(
        text.contains("rolechain agent init: link lo exists"),
        "{text}"
    );
    assert_eq!(text.matches("inet 169.254.170.23/32").count(), 1, "{text}");
    assert_eq!(text.matches("inet6 fd00:ec2::23/128").count(), 1, "{text}");
}

#[test]
fn init_creates_a_dummy_link_or_says_what_to_do() {
    let Some(out) = in_netns(
        r#""$0" agent init || exit 3
ip -o addr show dev rolechain0"#,
    ) else {
        return;
    };
    match out.status.code() {
        Some(0) => {
            let text = stdout(&out);
            assert!(text.contains("link rolechain0 created (dummy)"), "{text}");
            assert!(text.contains("inet 169.254.170.23/32"), "{text}");
        }
        Some(3) => {
            // This kernel has no dummy links (no `dummy` module): the error says how to go on.
            let text = stderr(&out);
            assert!(text.contains("--link"), "{text}");
            eprintln!("NOTICE: this kernel has no dummy links; checked the error instead: {text}");
        }
        other => panic!("{other:?}: {}{}", stdout(&out), stderr(&out)),
    }
}

#[test]
fn init_refuses_addresses_that_are_not_addresses() {
    for (args, field) in [
        (&["--ipv4", "169.254.170.23"][..], "--ipv4"),
        (&["--ipv4", "fd00::1/128"][..], "--ipv4"),
        (&["--ipv6", "fd00::1/129"][..], "--ipv6"),
    ] {
        let mut all = vec!["agent", "init"];
        all.extend_from_slice(args);
        let out = rolechain(&all);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(field), "{args:?}: {}", stderr(&out));
    }
}
