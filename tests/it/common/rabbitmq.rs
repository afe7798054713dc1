//! A private RabbitMQ node (Debian's `rabbitmq-server`) for the tests that run
//! against it: its own node name, ports (AMQP, distribution, epmd), cookie, data and
//! logs in a temporary folder, listening on loopback only. Starting one takes 5–10 s,
//! so the tests of a module share one ([`shared`]) and use queue names of their own.
//!
//! A node in a static is never dropped, so a watchdog stops it: the shell that
//! starts the node waits while the test process lives, then stops the node
//! (`rabbitmqctl stop`, else SIGKILL), stops its epmd and removes the folder. That
//! holds when the test process is killed too.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{closed_port, find_program};

/// Where Debian keeps RabbitMQ's own scripts (`/usr/sbin/rabbitmq-server` is a
/// wrapper that switches to the `rabbitmq` user and Debian's folders).
const SCRIPTS: &str = "/usr/lib/rabbitmq/bin";

/// A running private RabbitMQ node.
pub struct RabbitMq {
    /// The AMQP port.
    pub port: u16,
    /// `ld_test_<pid>@localhost`.
    pub node: String,
    epmd_port: u16,
    dir: PathBuf,
    /// The watchdog shell: it outlives this process on purpose (see the module doc).
    _watchdog: Option<std::process::Child>,
}

/// The node shared by this test process, started on first use. `None` when
/// RabbitMQ is not installed (outside CI only; see [`super::require_program`]).
pub fn shared() -> Option<&'static RabbitMq> {
    static NODE: OnceLock<Option<RabbitMq>> = OnceLock::new();
    NODE.get_or_init(RabbitMq::start).as_ref()
}

impl RabbitMq {
    fn start() -> Option<Self> {
        let installed = Path::new(SCRIPTS).join("rabbitmq-server").is_file()
            && find_program(&["rabbitmq-server"]).is_some();
        if !installed {
            super::require_program(&["rabbitmq-server"], "apt-get install rabbitmq-server")?;
            panic!("rabbitmq-server is installed, but {SCRIPTS}/rabbitmq-server is missing");
        }
        let dir = tempfile::Builder::new()
            .prefix("ld-rabbitmq-")
            .tempdir()
            .expect("tempdir")
            .keep();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        std::fs::write(dir.join("env.conf"), "").expect("env.conf");
        let mut node = Self {
            port: closed_port(),
            node: format!("ld_test_{}@localhost", std::process::id()),
            epmd_port: closed_port(),
            dir,
            _watchdog: None,
        };
        let dist_port = closed_port();
        // The watchdog: starts the node, waits while this process lives, stops it.
        let script = format!(
            r#"{scripts}/rabbitmq-server >"$D/server.log" 2>&1 &
SERVER=$!
while kill -0 {pid} 2>/dev/null && kill -0 $SERVER 2>/dev/null; do sleep 0.5; done
timeout 60 {scripts}/rabbitmqctl -n {node} stop >/dev/null 2>&1 || kill -9 $SERVER 2>/dev/null
for _ in $(seq 1 100); do kill -0 $SERVER 2>/dev/null || break; sleep 0.2; done
kill -9 $SERVER 2>/dev/null
epmd -port {epmd} -kill >/dev/null 2>&1
rm -rf "$D""#,
            scripts = SCRIPTS,
            pid = std::process::id(),
            node = node.node,
            epmd = node.epmd_port,
        );
        let mut command = Command::new("sh");
        command.args(["-c", &script]);
        let watchdog = node
            .env(&mut command)
            .env("D", &node.dir)
            .env("RABBITMQ_NODE_PORT", node.port.to_string())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", node.dir.join("rabbitmq"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_CONF_ENV_FILE", node.dir.join("env.conf"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            // Its own group, no inherited output: nothing holds the test runner's
            // output open, and the watchdog outlives this process.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the rabbitmq watchdog");
        node._watchdog = Some(watchdog);
        // The AMQP listener opens last, once the broker has booted; the node is
        // slow to start on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "RabbitMQ did not start: {}",
                std::fs::read_to_string(node.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(node)
    }

    /// The variables that find this node: its cookie (`HOME`) and its epmd.
    fn env<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2F`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", self.port)
    }

    /// `rabbitmqctl ARGS` against this node; its stdout. Panics when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut command = Command::new(Path::new(SCRIPTS).join("rabbitmqctl"));
        self.env(&mut command)
            .args(["-n", &self.node, "-q"])
            .args(args)
            .stdin(Stdio::null());
        let output = command.output().expect("run rabbitmqctl");
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The queue's messages (ready and unacknowledged), as the broker counts them;
    /// `None` when there is no such queue.
    pub fn queue_depth(&self, queue: &str) -> Option<u64> {
        let text = self.ctl(&["list_queues", "name", "messages", "--formatter", "json"]);
        let queues: Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        queues
            .as_array()
            .expect("a list of queues")
            .iter()
            .find(|q| q["name"] == queue)
            .map(|q| q["messages"].as_u64().expect("messages"))
    }
}
