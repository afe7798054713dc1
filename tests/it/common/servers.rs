//! What the database and cache starters share: waiting for a server with a
//! deadline, running a process as an unprivileged user when the tests run as root
//! (PostgreSQL refuses root), and killing the server on drop.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A server process, killed (and reaped) on drop, with its temporary data directory.
pub struct ServerProcess {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` every 100 ms until it is true; panics with `what` and `log` (the
/// server's log file) after `limit`.
pub fn wait_until(what: &str, limit: Duration, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not start within {limit:?}; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The uid and gid of `user`, when the tests run as root (else `None`: run as is).
pub fn unprivileged(user: &str) -> Option<(u32, u32)> {
    let uid = |flag: &str| -> Option<u32> {
        let output = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    Some((uid("-u")?, uid("-g")?))
}

/// Runs `command` to completion; panics with its output when it fails.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
