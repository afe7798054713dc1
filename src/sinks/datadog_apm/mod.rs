//! The Datadog APM exporter: every request as one span of its own trace, sent in
//! batches to a Datadog agent's trace intake (`PUT /v0.5/traces`, or `/v0.4/traces`
//! as `DD_TRACE_API_VERSION` says; msgpack), never in the way of the load.
//!
//! - Span: LoadDensity's ddtrace span ([`span`]): name `"{request_type}.{name}"`,
//!   resource the name, type `http`, the request's real start and duration; meta
//!   `request.type`, `request.name`, `env`; `response.length` (a metric, as ddtrace
//!   stores integer tags); on failure `error = 1`, `error.type`, `error.msg`.
//! - The request path only pushes a small record into a bounded, per-thread sharded
//!   queue (`max_pending_spans`); when it is full the span is dropped and counted.
//! - A background thread encodes the spans and sends a payload every `flush_interval`
//!   or at `batch_size` spans ([`datadog_apm_report`]: spans sent and dropped,
//!   payloads, errors, the last error).
//! - `agent_url` defaults to `DD_TRACE_AGENT_URL`, else `http://localhost:8126`.
//!   LoadDensity takes the argument and ignores it; it is honoured here.
//!
//! One exporter runs per run ([`crate::sinks::Sinks`]): starting it while it runs
//! changes nothing, and [`stop_datadog_apm_exporter`] detaches it, sends what is
//! pending (bounded by `timeout`) and ends the background thread.

mod agent;
mod flusher;
mod queue;
mod span;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::endpoint::{Endpoint, Refusal, credential_free_endpoint};
use super::{Attached, Sinks, lock};
use agent::{AgentAddress, AgentClient};
use flusher::{FlushSettings, Flusher};
use queue::{Counters, Queue};
pub use span::ApiVersion;

/// Default service name, as in LoadDensity.
pub const DEFAULT_SERVICE: &str = "loaddensity";
/// Where the agent is when neither `agent_url` nor `DD_TRACE_AGENT_URL` says.
pub const DEFAULT_AGENT_URL: &str = "http://localhost:8126";
/// The environment variable Datadog tracers read the agent's URL from.
pub const AGENT_URL_ENV: &str = "DD_TRACE_AGENT_URL";
/// Default send timeout, and bound of the final flush, in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 2.0;
/// Default flush interval, in milliseconds.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
/// Default spans per payload.
pub const DEFAULT_BATCH_SIZE: usize = 5000;
/// Largest spans per payload: keeps a payload well under the agent's 25 MB limit.
pub const MAX_BATCH_SIZE: usize = 50_000;
/// Default bound of the queue, in spans.
pub const DEFAULT_MAX_PENDING_SPANS: usize = 200_000;

/// Settings of [`start_datadog_apm_exporter`].
#[derive(Debug, Clone, PartialEq)]
pub struct DatadogOptions {
    /// The spans' service. Default `loaddensity`.
    pub service: String,
    /// The `env` tag, when set.
    pub env: Option<String>,
    /// The agent, `http://HOST:PORT` or `https://...`; `None`: `DD_TRACE_AGENT_URL`,
    /// else `http://localhost:8126`.
    pub agent_url: Option<String>,
    /// The most one send may take; also bounds the final flush at stop. Default 2 s.
    pub timeout: Duration,
    /// Send at least this often. Default 1 s.
    pub flush_interval: Duration,
    /// Send when this many spans are waiting. Default 5000, at most 50,000.
    pub batch_size: usize,
    /// Spans held at most (queued, being sent, waiting for a retry); beyond it new
    /// spans are dropped and counted. Default 200,000.
    pub max_pending_spans: usize,
    /// The intake's format. `None`: `DD_TRACE_API_VERSION` (`v0.4` or `v0.5`, as
    /// ddtrace reads it), else v0.5.
    pub api_version: Option<ApiVersion>,
}

impl Default for DatadogOptions {
    fn default() -> Self {
        Self {
            service: DEFAULT_SERVICE.to_string(),
            env: None,
            agent_url: None,
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            flush_interval: Duration::from_millis(DEFAULT_FLUSH_INTERVAL_MS),
            batch_size: DEFAULT_BATCH_SIZE,
            max_pending_spans: DEFAULT_MAX_PENDING_SPANS,
            api_version: None,
        }
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum DatadogError {
    /// The agent URL's scheme is not http or https.
    #[error(
        "the agent url must start with http:// or https:// (got `{0}`), e.g. http://localhost:8126"
    )]
    UnsupportedScheme(String),
    /// The agent URL cannot be used.
    #[error("invalid agent url: {0}")]
    InvalidUrl(String),
    /// A setting is out of range.
    #[error("{name}: {message}")]
    InvalidSetting {
        /// The setting's name, as in the action.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The runtime or thread could not be set up.
    #[error("cannot start the datadog apm exporter: {0}")]
    Start(#[source] std::io::Error),
}

/// The agent URL the options name: `agent_url`, else `DD_TRACE_AGENT_URL`, else
/// [`DEFAULT_AGENT_URL`].
pub fn resolve_agent_url(agent_url: Option<&str>) -> String {
    agent_url
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .or_else(|| {
            std::env::var(AGENT_URL_ENV)
                .ok()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_AGENT_URL.to_string())
}

/// The intake format the options name: `api_version`, else `DD_TRACE_API_VERSION`,
/// else v0.5. A variable set to anything but `v0.4` or `v0.5` is an error.
pub fn resolve_api_version(options: &DatadogOptions) -> Result<ApiVersion, DatadogError> {
    if let Some(version) = options.api_version {
        return Ok(version);
    }
    match std::env::var(ApiVersion::ENV) {
        Ok(text) if !text.trim().is_empty() => {
            ApiVersion::parse(&text).ok_or_else(|| DatadogError::InvalidSetting {
                name: ApiVersion::ENV,
                message: format!("expected v0.4 or v0.5, got `{}`", text.trim()),
            })
        }
        _ => Ok(ApiVersion::V05),
    }
}

/// Checks options without side effects (nothing sent, the host not resolved).
pub fn check_options(options: &DatadogOptions) -> Result<(), DatadogError> {
    check_settings(options)?;
    agent_address(&resolve_agent_url(options.agent_url.as_deref())).map(|_| ())
}

fn check_settings(options: &DatadogOptions) -> Result<(), DatadogError> {
    let invalid = |name, message: &str| {
        Err(DatadogError::InvalidSetting {
            name,
            message: message.to_string(),
        })
    };
    if options.service.trim().is_empty() {
        return invalid("service", "must not be empty");
    }
    if options.env.as_deref().is_some_and(|e| e.trim().is_empty()) {
        return invalid("env", "must not be empty (leave it out for no env)");
    }
    if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
        return invalid("batch_size", "must be between 1 and 50000");
    }
    if options.max_pending_spans == 0 {
        return invalid("max_pending_spans", "must be at least 1");
    }
    if options.flush_interval.is_zero() {
        return invalid("flush_interval_ms", "must be at least 1");
    }
    if options.timeout.is_zero() {
        return invalid("timeout", "must be positive");
    }
    resolve_api_version(options).map(|_| ())
}

fn agent_address(url: &str) -> Result<AgentAddress, DatadogError> {
    let Endpoint {
        url: parsed,
        host,
        port,
        https,
    } = credential_free_endpoint(url, "").map_err(|refusal| match refusal {
        Refusal::UnsupportedScheme(scheme) => DatadogError::UnsupportedScheme(scheme),
        Refusal::InvalidUrl(why) => DatadogError::InvalidUrl(why),
    })?;
    Ok(AgentAddress {
        host,
        port,
        https,
        base_path: parsed.path().trim_end_matches('/').to_string(),
    })
}

struct Running {
    attached: Attached,
    agent: String,
}

/// The counters of the running exporter, or of the last one, kept after stop.
struct Report {
    counters: Arc<Counters>,
    agent: String,
    service: String,
    env: Option<String>,
    api_version: ApiVersion,
}

/// This exporter's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    report: Mutex<Option<Report>>,
}

/// Starts the exporter: checks the options (before anything is sent), attaches a
/// listener to the request event of `sinks` and starts the background thread. Returns
/// true when it started, false when it was already running (the options are then
/// ignored, as in LoadDensity).
pub fn start_datadog_apm_exporter(
    sinks: &Sinks,
    options: DatadogOptions,
) -> Result<bool, DatadogError> {
    let mut running = lock(&sinks.datadog_apm.running);
    if let Some(current) = running.as_ref() {
        tracing::info!(
            "datadog apm exporter already running, sending to {}; start ignored",
            current.agent
        );
        return Ok(false);
    }
    check_settings(&options)?;
    let api_version = resolve_api_version(&options)?;
    let address = agent_address(&resolve_agent_url(options.agent_url.as_deref()))?;
    let agent = address.display();
    let client = AgentClient::new(address, api_version).map_err(DatadogError::InvalidUrl)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DatadogError::Start)?;
    let counters = Arc::new(Counters::default());
    let queue = Arc::new(Queue::new(options.max_pending_spans, counters.clone()));
    let service = options.service.trim().to_string();
    let env = options.env.as_deref().map(|e| e.trim().to_string());
    let flusher = Flusher::new(
        queue.clone(),
        client,
        FlushSettings {
            service: service.clone(),
            env: env.clone(),
            flush_interval: options.flush_interval,
            batch_size: options.batch_size,
            timeout: options.timeout,
            api_version,
        },
    );
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("loaddensity-datadog-apm".into())
        .spawn(move || runtime.block_on(flusher.run(token)))
        .map_err(DatadogError::Start)?;
    counters.running.store(true, Ordering::Relaxed);
    *lock(&sinks.datadog_apm.report) = Some(Report {
        counters,
        agent: agent.clone(),
        service,
        env,
        api_version,
    });
    let listener = sinks.listeners().add(queue);
    tracing::info!(
        "datadog apm exporter sending spans to {agent} ({})",
        api_version.path()
    );
    *running = Some(Running {
        attached: Attached {
            listener,
            shutdown,
            thread,
        },
        agent,
    });
    Ok(true)
}

/// Stops the exporter: detaches its listener, sends what is pending (for at most the
/// `timeout` it was started with) and ends the background thread. Returns false when
/// it was not running. Its counters stay readable ([`datadog_apm_report`]).
pub fn stop_datadog_apm_exporter(sinks: &Sinks) -> bool {
    let mut running = lock(&sinks.datadog_apm.running);
    let Some(current) = running.take() else {
        return false;
    };
    current
        .attached
        .detach_and_join(sinks.listeners(), "datadog apm exporter");
    if let Some(report) = lock(&sinks.datadog_apm.report).as_ref() {
        report.counters.running.store(false, Ordering::Relaxed);
    }
    tracing::info!("datadog apm exporter to {} stopped", current.agent);
    true
}

/// True while the exporter runs.
pub fn datadog_apm_running(sinks: &Sinks) -> bool {
    lock(&sinks.datadog_apm.running).is_some()
}

/// The counters of the running exporter, or of the last one stopped (`null` when none
/// ever started): `spans_sent`, `spans_dropped` (of which `dropped_queue_full`),
/// `payloads_sent`, `bytes_sent`, `errors`, `retries`, `last_error`, `agent_url`,
/// `api_version`...
pub fn datadog_apm_report(sinks: &Sinks) -> Value {
    match lock(&sinks.datadog_apm.report).as_ref() {
        Some(report) => {
            let mut value =
                report
                    .counters
                    .report(&report.agent, &report.service, report.env.as_deref());
            value["api_version"] = report.api_version.name().into();
            value
        }
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> DatadogOptions {
        DatadogOptions {
            agent_url: Some(url.into()),
            ..DatadogOptions::default()
        }
    }

    #[test]
    fn agent_urls() {
        let address = agent_address("http://127.0.0.1:8126").expect("address");
        assert_eq!(address.display(), "http://127.0.0.1:8126");
        let address = agent_address("HTTPS://[::1]/proxy/").expect("address");
        assert_eq!(address.display(), "https://[::1]:443/proxy");
        for bad in ["unix:///var/run/datadog/apm.socket", "localhost:8126"] {
            let error = check_options(&with_url(bad)).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("must start with http:// or https://")),
                "{bad}: {error:?}"
            );
        }
        assert!(check_options(&with_url("http://u:p@host:8126")).is_err());
        assert_eq!(
            resolve_agent_url(Some(" http://agent:1 ")),
            "http://agent:1"
        );
    }

    #[test]
    fn settings() {
        let bad = DatadogOptions {
            batch_size: 0,
            ..with_url("http://127.0.0.1:8126")
        };
        assert!(matches!(
            check_options(&bad),
            Err(DatadogError::InvalidSetting {
                name: "batch_size",
                ..
            })
        ));
        let bad = DatadogOptions {
            service: " ".into(),
            ..with_url("http://127.0.0.1:8126")
        };
        assert!(check_options(&bad).is_err());
        assert!(check_options(&with_url("http://127.0.0.1:8126")).is_ok());
    }

    #[test]
    fn the_api_version_option_wins_over_the_environment() {
        let options = DatadogOptions {
            api_version: Some(ApiVersion::V04),
            ..with_url("http://127.0.0.1:8126")
        };
        // The option is read before the variable, which this test does not set.
        assert_eq!(resolve_api_version(&options).ok(), Some(ApiVersion::V04));
    }
}
