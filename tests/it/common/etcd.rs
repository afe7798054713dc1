//! An `etcd` (Debian's `etcd-server`) on free loopback ports with a temporary data
//! directory, and its store's revision.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::servers::{ServerProcess, wait_until};

/// A running single-member etcd, killed on drop.
pub struct Etcd {
    process: ServerProcess,
}

impl Etcd {
    /// Starts a server; `None` when etcd is not installed (outside CI only).
    pub fn start() -> Option<Self> {
        let program = super::require_program(&["etcd"], "apt-get install etcd-server")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::closed_port();
        let peer = super::closed_port();
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.path().join("etcd.log");
        let child = Command::new(program)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--name", "ld"])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("ld={peer_url}")])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start etcd");
        let server = Self {
            process: ServerProcess { child, dir, port },
        };
        wait_until("etcd", Duration::from_secs(30), &log, || {
            server.revision().is_some()
        });
        Some(server)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The store's revision (from a `Range` call's header), `None` when the server
    /// does not answer.
    pub fn revision(&self) -> Option<i64> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = format!("127.0.0.1:{}", self.port());
        runtime.block_on(async {
            let channel = loaddensity::protocol::etcd::connect(&server, Duration::from_secs(2))
                .await
                .ok()?;
            let range = loaddensity::protocol::etcd::kv::range(channel, "probe")
                .await
                .ok()?;
            range.header.map(|h| h.revision)
        })
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = format!("127.0.0.1:{}", self.port());
        runtime.block_on(async {
            let channel = loaddensity::protocol::etcd::connect(&server, Duration::from_secs(2))
                .await
                .ok()?;
            let value = loaddensity::protocol::etcd::kv::get(channel, key)
                .await
                .ok()??;
            Some(String::from_utf8_lossy(&value).into_owned())
        })
    }
}
