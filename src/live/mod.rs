//! Watching a test live in a browser: LoadDensity's dashboard (`LD_start_dashboard`:
//! `GET /`, `/snapshot`, `/events`) and a web UI that speaks Locust's web API
//! (`web_ui_dict`, `loaddensity run --web`: `/stats/requests`, `/swarm`, `/stop`,
//! `/stats/reset`, the CSV downloads), on one small HTTP server.
//!
//! The server runs on a thread of its own. It reads the run's statistics (the
//! per-second timeline and the merged HDR histograms) on its own schedule: once a
//! second for the rolling rates, once per `refresh_seconds` for the event stream
//! whoever listens, and per request for `/snapshot` and `/stats/requests`. The load
//! itself pays nothing: no listener is added to the request event.
//!
//! Each [`crate::RunContext`] owns its servers ([`LiveServers`]); stopping them frees
//! their ports.

mod auth;
mod locust_api;
mod rerun;
mod server;
mod snapshot;

pub use auth::BasicAuth;
pub use rerun::{RerunError, Reruns};
pub use server::LiveServer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::{RunControl, RunState};
use crate::stats::{RunInfo, StatsRecorder};

/// LoadDensity's dashboard port.
pub const DASHBOARD_PORT: u16 = 8765;
/// Locust's web UI port.
pub const WEB_UI_PORT: u16 = 8089;
/// Where both bind unless told otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Why a live server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The host is not an IP address (or `localhost`).
    #[error("host: `{0}` is not an IP address (expected e.g. 127.0.0.1, 0.0.0.0 or ::1)")]
    InvalidHost(String),
    /// `refresh_seconds` or `window_seconds` is not a positive finite number.
    #[error("{field}: expected a finite positive number of seconds, got {value}")]
    InvalidSeconds {
        /// The field.
        field: &'static str,
        /// What was given.
        value: f64,
    },
    /// The web UI's controls on a non-loopback address without credentials.
    #[error(
        "refusing to serve the web UI on {0} without auth: its controls change the load. \
         Give `web_ui_dict.auth` / --web-auth USER:PASSWORD, or bind a loopback address such as 127.0.0.1"
    )]
    NotLoopback(SocketAddr),
    /// `auth` is not `user:password`.
    #[error("auth: expected USER:PASSWORD with neither empty")]
    InvalidAuth,
    /// The port is taken (or the address is not this machine's).
    #[error("cannot bind {addr}: {source} (pick another port, or 0 for a free one)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not start.
    #[error("cannot start the server: {0}")]
    Server(#[source] std::io::Error),
}

/// What a live server serves and how.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// IP address to bind (or `localhost`).
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// How often `/events` sends a snapshot.
    pub refresh_seconds: f64,
    /// The window `rps` and `avg_ms` of a snapshot cover.
    pub window_seconds: f64,
    /// Serve the controls (`/swarm`, `/stop`, `/stats/reset`): the web UI does, the
    /// dashboard does not.
    pub controls: bool,
    /// HTTP basic auth every request must carry.
    pub auth: Option<BasicAuth>,
}

impl LiveOptions {
    /// LoadDensity's dashboard defaults: 127.0.0.1:8765, a snapshot a second, a 10 s
    /// window, no controls.
    pub fn dashboard() -> Self {
        Self {
            host: DEFAULT_HOST.into(),
            port: DASHBOARD_PORT,
            refresh_seconds: 1.0,
            window_seconds: 10.0,
            controls: false,
            auth: None,
        }
    }

    /// Locust's web UI defaults: 127.0.0.1:8089 with its controls.
    pub fn web_ui() -> Self {
        Self {
            port: WEB_UI_PORT,
            controls: true,
            ..Self::dashboard()
        }
    }

    /// Checks the options and resolves the address to bind.
    pub fn check(&self) -> Result<SocketAddr, LiveError> {
        for (field, value) in [
            ("refresh_seconds", self.refresh_seconds),
            ("window_seconds", self.window_seconds),
        ] {
            if !(value > 0.0 && value.is_finite() && value < 1e6) {
                return Err(LiveError::InvalidSeconds { field, value });
            }
        }
        let ip = parse_host(&self.host)?;
        let addr = SocketAddr::new(ip, self.port);
        if self.controls && !ip.is_loopback() && self.auth.is_none() {
            return Err(LiveError::NotLoopback(addr));
        }
        Ok(addr)
    }
}

/// An IPv4 or IPv6 literal (brackets allowed), or `localhost`.
pub fn parse_host(text: &str) -> Result<IpAddr, LiveError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    bare.parse()
        .map_err(|_| LiveError::InvalidHost(text.to_string()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the executor tells the live servers about its run: the test running now
/// (its controls and start), and the run block (tests done, SLA results).
#[derive(Debug, Default)]
pub struct LiveRun {
    inner: Mutex<LiveRunInner>,
    reruns: Reruns,
}

#[derive(Debug, Default)]
struct LiveRunInner {
    control: Option<Arc<RunControl>>,
    started: Option<Instant>,
    tests: u64,
    info: RunInfo,
}

impl LiveRun {
    /// A test starts, with these controls.
    pub fn begin_test(&self, control: Arc<RunControl>) {
        let mut inner = lock(&self.inner);
        inner.control = Some(control);
        inner.started = Some(Instant::now());
    }

    /// The test has ended (its duration is in the statistics now).
    pub fn end_test(&self) {
        let mut inner = lock(&self.inner);
        inner.control = None;
        inner.started = None;
        inner.tests += 1;
    }

    /// The last test's arguments and `/swarm`'s requests to start it again.
    pub fn reruns(&self) -> &Reruns {
        &self.reruns
    }

    /// The run block as the executor has it now.
    pub fn set_info(&self, info: RunInfo) {
        lock(&self.inner).info = info;
    }

    /// The run block as last given.
    pub fn info(&self) -> RunInfo {
        lock(&self.inner).info.clone()
    }

    /// The controls of the running test, if one runs.
    pub fn control(&self) -> Option<Arc<RunControl>> {
        lock(&self.inner).control.clone()
    }

    /// How long the running test has run.
    pub fn running_for(&self) -> Duration {
        lock(&self.inner)
            .started
            .map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Locust's state: `ready` before the first test, the running test's state,
    /// `stopped` after.
    pub fn state(&self) -> &'static str {
        let inner = lock(&self.inner);
        match &inner.control {
            Some(control) => control.state().as_str(),
            None if inner.tests == 0 => "ready",
            None => RunState::Stopped.as_str(),
        }
    }

    /// Users running now.
    pub fn user_count(&self) -> usize {
        lock(&self.inner)
            .control
            .as_ref()
            .map_or(0, |c| c.active_users())
    }
}

/// What a server reads: the run's statistics and what the executor tells it.
#[derive(Debug, Clone)]
pub struct LiveSource {
    /// The run's statistics.
    pub stats: Arc<StatsRecorder>,
    /// The running test and the run block.
    pub run: Arc<LiveRun>,
}

impl LiveSource {
    /// Seconds the recorded tests ran, the running one included.
    pub(crate) fn duration(&self) -> Duration {
        self.stats.duration() + self.run.running_for()
    }
}

/// The live servers of one run: LoadDensity's dashboard and the web UI, at most one
/// of each.
#[derive(Debug, Default)]
pub struct LiveServers {
    run: Arc<LiveRun>,
    dashboard: Mutex<Option<LiveServer>>,
    web_ui: Mutex<Option<WebUi>>,
}

#[derive(Debug)]
struct WebUi {
    server: LiveServer,
    /// Started for one `LD_start_test` (`web_ui_dict`), which stops it at its end.
    per_test: bool,
}

impl LiveServers {
    /// What the executor tells the servers.
    pub fn run(&self) -> &Arc<LiveRun> {
        &self.run
    }

    /// Starts the dashboard (restarting it when it runs). Returns its address.
    pub fn start_dashboard(
        &self,
        stats: &Arc<StatsRecorder>,
        options: LiveOptions,
    ) -> Result<SocketAddr, LiveError> {
        let mut dashboard = lock(&self.dashboard);
        options.check()?;
        if let Some(running) = dashboard.take() {
            running.stop();
        }
        let server = LiveServer::start(options, self.source(stats))?;
        let addr = server.addr();
        *dashboard = Some(server);
        Ok(addr)
    }

    /// Stops the dashboard; returns the address it served on, if it ran.
    pub fn stop_dashboard(&self) -> Option<SocketAddr> {
        let server = lock(&self.dashboard).take()?;
        let addr = server.addr();
        server.stop();
        Some(addr)
    }

    /// The dashboard's address, while it runs.
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        lock(&self.dashboard).as_ref().map(LiveServer::addr)
    }

    /// Starts the web UI. `per_test`: for one test, which stops it with
    /// [`LiveServers::end_test_web_ui`]. When one runs already, that one is kept
    /// and its address returned.
    pub fn start_web_ui(
        &self,
        stats: &Arc<StatsRecorder>,
        options: LiveOptions,
        per_test: bool,
    ) -> Result<SocketAddr, LiveError> {
        let mut web_ui = lock(&self.web_ui);
        options.check()?;
        if let Some(running) = web_ui.as_ref() {
            tracing::info!(
                "the web UI already runs on http://{}/",
                running.server.addr()
            );
            return Ok(running.server.addr());
        }
        let server = LiveServer::start(options, self.source(stats))?;
        let addr = server.addr();
        *web_ui = Some(WebUi { server, per_test });
        Ok(addr)
    }

    /// Stops the web UI if a test started it.
    pub fn end_test_web_ui(&self) {
        let mut web_ui = lock(&self.web_ui);
        if web_ui.as_ref().is_some_and(|w| w.per_test)
            && let Some(running) = web_ui.take()
        {
            running.server.stop();
        }
    }

    /// Stops the web UI, however it was started.
    pub fn stop_web_ui(&self) -> Option<SocketAddr> {
        let running = lock(&self.web_ui).take()?;
        let addr = running.server.addr();
        running.server.stop();
        Some(addr)
    }

    /// The web UI's address, while it runs.
    pub fn web_ui_addr(&self) -> Option<SocketAddr> {
        lock(&self.web_ui).as_ref().map(|w| w.server.addr())
    }

    /// Stops both.
    pub fn stop_all(&self) {
        self.stop_dashboard();
        self.stop_web_ui();
    }

    fn source(&self, stats: &Arc<StatsRecorder>) -> LiveSource {
        LiveSource {
            stats: stats.clone(),
            run: self.run.clone(),
        }
    }
}

impl Drop for LiveServers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A JSON number, or `null` when not finite.
pub(crate) fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}
