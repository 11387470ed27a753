//! Durability: a writer killed with SIGKILL loses nothing it acknowledged.
//!
//! The test re-executes its own binary as the writer (selected by an environment variable):
//! the child creates roles in a loop and prints each name only after `create_role` returned,
//! i.e. after the commit. The parent kills it mid-stream, reopens the store and checks that
//! every acknowledged role is there.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use twin_state::Store;

const CHILD_ENV: &str = "TWIN_STATE_CRASH_WRITER_DIR";

/// The writer's body; a no-op unless run as the child.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&dir).unwrap();
    store.create_account(DEV, "developer").unwrap();
    let mut out = std::io::stdout().lock();
    // libtest has already printed "test crash_writer_child ... " without a newline.
    writeln!(out, "\nREADY").unwrap();
    out.flush().unwrap();
    // A bound, so an orphaned writer (the parent died) stops on its own.
    let started = Instant::now();
    for i in 0.. {
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let name = format!("crash-{i}");
        store
            .create_role(&role(DEV, &name, &service_trust()))
            .unwrap();
        // Acknowledged only now that the commit has returned.
        writeln!(out, "ACK {name}").unwrap();
        out.flush().unwrap();
    }
}

/// Kills the writer if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the writer to start (building its store), then let it write for ~300 ms.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line == "READY" => break,
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => {}
            Err(e) => panic!("the writer did not start: {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no clean close.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    reader.join().unwrap();
    let mut acked = Vec::new();
    for line in rx.try_iter() {
        if let Some(name) = line.strip_prefix("ACK ") {
            acked.push(name.to_string());
        }
    }
    assert!(
        !acked.is_empty(),
        "the writer acknowledged nothing in 300 ms"
    );
    let store = Store::open(dir.path()).unwrap();
    for name in &acked {
        store
            .get_role(DEV, name)
            .unwrap_or_else(|e| panic!("acknowledged role {name} lost after SIGKILL: {e}"));
    }
    eprintln!("{} acknowledged roles all survived SIGKILL", acked.len());
}
