//! Test servers written in Python (`tests/servers/*.py`): started on a free loopback
//! port in their own process group, and stopped whole when dropped. Each script
//! prints the port it listens on as its first line.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running Python test server; dropping it stops it.
pub struct PythonServer {
    child: Child,
    /// Its standard error, shown when it fails to start.
    stderr: tempfile::NamedTempFile,
    /// The port it listens on.
    pub port: u16,
}

impl PythonServer {
    /// Runs `tests/servers/{script}` with `args` and waits up to 30 s for its port.
    /// `None` (outside CI only) when python3 or one of the `modules` it imports is
    /// missing: `hint` says how to install them.
    pub fn start(script: &str, args: &[&str], modules: &[&str], hint: &str) -> Option<Self> {
        super::require_program(&["python3"], "apt-get install python3")?;
        for module in modules {
            let found = Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "python module `{module}` is missing, and CI must run this test: {hint}"
                );
                eprintln!("SKIPPED: python module `{module}` is missing: {hint}");
                return None;
            }
        }
        let path = format!("{}/tests/servers/{script}", env!("CARGO_MANIFEST_DIR"));
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr file"))
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} did not print its port (got {line:?}): {}",
                std::fs::read_to_string(stderr.path()).unwrap_or_default()
            );
        };
        Some(Self {
            child,
            stderr,
            port,
        })
    }
}

impl PythonServer {
    /// What it wrote to its standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// The JSON document it serves at `path` (a plain HTTP GET).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let addr = format!("127.0.0.1:{}", self.port).parse().expect("address");
        let response = super::http_get_text(addr, path);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
