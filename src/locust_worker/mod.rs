//! A worker of a Locust 2.x master (`runner_mode: "worker"`, `loaddensity worker`):
//! speaks Locust's master/worker protocol over ZeroMQ (a DEALER socket to the
//! master's ROUTER, msgpack messages), runs the script's tasks as the user class the
//! master asks for, with the user count it sets, and reports statistics in Locust's
//! form every 3 s. The master's web UI, CSV files and totals then include this
//! worker's requests; this process's own summary, sinks and reports work as in a
//! standalone run.
//!
//! - [`protocol`]: the messages and their msgpack encoding.
//! - [`stats`]: Locust's serialized statistics, gathered by a request listener.
//! - [`worker`]: the state machine (join, spawn, stop, heartbeats, reports, quit).

pub mod protocol;
pub mod stats;
pub mod worker;

pub use worker::{REPORT_INTERVAL, WorkerOutcome, run_worker};

use std::time::Duration;

/// LoadDensity's default master host.
pub const DEFAULT_MASTER_HOST: &str = "127.0.0.1";
/// Locust's default master port.
pub const DEFAULT_MASTER_PORT: u16 = 5557;
/// Heartbeats every second, as Locust's workers send them: a stock master marks a
/// worker missing after 3 s without one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// LoadDensity's `worker_lost_timeout`: a master silent this long is gone.
pub const DEFAULT_LOST_TIMEOUT: Duration = Duration::from_secs(15);
/// LoadDensity's `worker_startup_timeout`: how long to wait for the master's `ack`.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the master is and how this worker behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// The master's host name or IP address.
    pub master_host: String,
    /// The master's port (`--master-bind-port`).
    pub master_port: u16,
    /// The Locust user class this worker runs, as named in the master's locustfile.
    pub user_class: String,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// The worker stops its users and fails when the master is silent this long.
    pub lost_timeout: Duration,
    /// How long to keep trying to join the master.
    pub startup_timeout: Duration,
}

impl WorkerOptions {
    /// Defaults for a master on `127.0.0.1:5557`, running `user_class`.
    pub fn new(user_class: impl Into<String>) -> Self {
        Self {
            master_host: DEFAULT_MASTER_HOST.to_string(),
            master_port: DEFAULT_MASTER_PORT,
            user_class: user_class.into(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            lost_timeout: DEFAULT_LOST_TIMEOUT,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        if self.master_host.contains(':') {
            format!("[{}]:{}", self.master_host, self.master_port)
        } else {
            format!("{}:{}", self.master_host, self.master_port)
        }
    }

    /// The ZeroMQ endpoint, `tcp://host:port`.
    pub fn endpoint(&self) -> String {
        format!("tcp://{}", self.addr())
    }

    /// Checks the timings: positive, and the lost timeout longer than the heartbeat
    /// interval. The error is (field, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.master_host.is_empty() {
            return Err(("master_host", "expected a host name or address".into()));
        }
        if self.user_class.is_empty() {
            return Err(("user_class", "expected a Locust user class name".into()));
        }
        for (field, value) in [
            ("worker_heartbeat_interval", self.heartbeat_interval),
            ("worker_lost_timeout", self.lost_timeout),
            ("worker_startup_timeout", self.startup_timeout),
        ] {
            if value.is_zero() {
                return Err((field, "expected a positive number of seconds".into()));
            }
        }
        if self.lost_timeout <= self.heartbeat_interval {
            return Err((
                "worker_lost_timeout",
                format!(
                    "must be longer than worker_heartbeat_interval ({:?})",
                    self.heartbeat_interval
                ),
            ));
        }
        Ok(())
    }
}

/// Worker settings given in part: by the command line (`loaddensity worker`), which
/// win, or by a script's `LD_start_test`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSettings {
    /// `--master-host` / `master_host`.
    pub master_host: Option<String>,
    /// `--master-port` / `master_port`.
    pub master_port: Option<u16>,
    /// `--user-class`; a script names it with `user_detail_dict.user`.
    pub user_class: Option<String>,
    /// `worker_heartbeat_interval`.
    pub heartbeat_interval: Option<Duration>,
    /// `worker_lost_timeout`.
    pub lost_timeout: Option<Duration>,
    /// `worker_startup_timeout`.
    pub startup_timeout: Option<Duration>,
}

impl WorkerSettings {
    /// These settings over `base` (fields given here win), over the defaults.
    #[must_use]
    pub fn over(&self, base: &WorkerSettings) -> WorkerSettings {
        WorkerSettings {
            master_host: self
                .master_host
                .clone()
                .or_else(|| base.master_host.clone()),
            master_port: self.master_port.or(base.master_port),
            user_class: self.user_class.clone().or_else(|| base.user_class.clone()),
            heartbeat_interval: self.heartbeat_interval.or(base.heartbeat_interval),
            lost_timeout: self.lost_timeout.or(base.lost_timeout),
            startup_timeout: self.startup_timeout.or(base.startup_timeout),
        }
    }

    /// The options, with defaults for what is not given; `default_class` when no
    /// user class is.
    pub fn options(&self, default_class: &str) -> WorkerOptions {
        let defaults = WorkerOptions::new(default_class);
        WorkerOptions {
            master_host: self.master_host.clone().unwrap_or(defaults.master_host),
            master_port: self.master_port.unwrap_or(defaults.master_port),
            user_class: self.user_class.clone().unwrap_or(defaults.user_class),
            heartbeat_interval: self
                .heartbeat_interval
                .unwrap_or(defaults.heartbeat_interval),
            lost_timeout: self.lost_timeout.unwrap_or(defaults.lost_timeout),
            startup_timeout: self.startup_timeout.unwrap_or(defaults.startup_timeout),
        }
    }
}

/// Why a worker could not join or stay with its master.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The TCP/ZeroMQ connection could not be made.
    #[error("cannot connect to the Locust master at {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The underlying error.
        reason: String,
    },
    /// Connected, but no `ack` came back.
    #[error(
        "no Locust master answered at {addr} within {after:?}: start one with `locust --master -f locustfile.py` (Locust 2.x), or check the master host and port"
    )]
    NoAck {
        /// `host:port`.
        addr: String,
        /// How long the worker waited.
        after: Duration,
    },
    /// Something answered, but not with Locust 2.x messages.
    #[error("the peer at {addr} does not speak the protocol of a Locust 2.x master ({problem})")]
    Incompatible {
        /// `host:port`.
        addr: String,
        /// What was wrong with what it sent.
        problem: String,
    },
    /// The master went silent.
    #[error(
        "lost the Locust master at {addr}: nothing heard for {after:?} (worker_lost_timeout); the users were stopped"
    )]
    MasterLost {
        /// `host:port`.
        addr: String,
        /// The lost timeout.
        after: Duration,
    },
    /// Ctrl-C before the master answered.
    #[error("interrupted before joining the Locust master")]
    Interrupted,
}
