//! A `memcached` (Debian's) on a free loopback port, TCP only, and its `stats`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::servers::{ServerProcess, wait_until};

/// A running memcached, killed on drop.
pub struct Memcached {
    process: ServerProcess,
}

impl Memcached {
    /// Starts a server; `None` when memcached is not installed (outside CI only).
    pub fn start() -> Option<Self> {
        let program = super::require_program(&["memcached"], "apt-get install memcached")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::closed_port();
        let log = dir.path().join("memcached.log");
        let child = Command::new(program)
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
            .args(["-u", "root", "-m", "64", "-c", "1024"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start memcached");
        let server = Self {
            process: ServerProcess { child, dir, port },
        };
        // A connection counts in `total_connections` only once a worker thread took it:
        // wait for an answer, so that the probe is counted before a test reads `stats`.
        wait_until("memcached", Duration::from_secs(10), &log, || {
            server.answers_version()
        });
        Some(server)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Whether the server answers `version` on a new connection.
    fn answers_version(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port())) else {
            return false;
        };
        let mut line = String::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .is_ok()
            && stream.write_all(b"version\r\n").is_ok()
            && BufReader::new(stream).read_line(&mut line).is_ok()
            && line.starts_with("VERSION")
    }

    /// `stats`: name to value.
    pub fn stats(&self) -> HashMap<String, u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(b"stats\r\n").expect("write");
        let mut stats = HashMap::new();
        let mut reader = BufReader::new(stream);
        for _ in 0..1000 {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read") == 0 || line.trim() == "END" {
                break;
            }
            let mut parts = line.split_whitespace().skip(1);
            if let (Some(name), Some(value)) = (parts.next(), parts.next())
                && let Ok(value) = value.parse()
            {
                stats.insert(name.to_string(), value);
            }
        }
        stats
    }
}
