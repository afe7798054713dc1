//! `nats-server` (Debian's) for the tests that run against it: on free loopback
//! ports, with its monitoring endpoint (`/varz`: the server's own message counts)
//! and an optional configuration file; killed when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Workdir, closed_port, http_get_text, require_program};

/// A running `nats-server`; dropping it kills it.
pub struct NatsServer {
    child: Child,
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/varz`).
    pub monitor: u16,
    _dir: Workdir,
}

impl NatsServer {
    /// Starts `nats-server` with `config` (a configuration file's text, when given)
    /// and waits up to 10 s for its monitoring endpoint. `None` when nats-server is
    /// not installed (outside CI only; see [`require_program`]).
    pub fn start(config: Option<&str>) -> Option<Self> {
        let program = require_program(&["nats-server"], "apt-get install nats-server")?;
        // A port taken between `closed_port` and the server's bind (by a test running
        // beside this one) makes it exit: try again with fresh ports, three times.
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = Workdir::new();
            let (port, monitor) = (closed_port(), closed_port());
            if port == monitor {
                continue;
            }
            let mut command = Command::new(&program);
            command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
            command.args(["-m", &monitor.to_string()]);
            if let Some(config) = config {
                let path: PathBuf = dir.write("nats.conf", config);
                command.arg("-c").arg(path);
            }
            let log = std::fs::File::create(dir.path("nats.log")).expect("log file");
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start nats-server");
            let mut server = Self {
                child,
                port,
                monitor,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", monitor)).is_ok()
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    last_log =
                        std::fs::read_to_string(server._dir.path("nats.log")).unwrap_or_default();
                    break;
                }
                assert!(Instant::now() < deadline, "nats-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nats-server exited three times: {last_log}");
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The monitoring endpoint's `/varz` document.
    pub fn varz(&self) -> Value {
        let addr: SocketAddr = ([127, 0, 0, 1], self.monitor).into();
        let response = http_get_text(addr, "/varz");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/varz: {e}: {response}"))
    }

    /// `in_msgs` and `out_msgs` of `/varz`: messages the server received from clients
    /// and delivered to them.
    pub fn message_counts(&self) -> (u64, u64) {
        let varz = self.varz();
        (
            varz["in_msgs"].as_u64().expect("in_msgs"),
            varz["out_msgs"].as_u64().expect("out_msgs"),
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
