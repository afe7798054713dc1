//! The OpenTelemetry traces exporter: one span per request over OTLP (gRPC, or HTTP
//! with protobuf bodies), as LoadDensity's `start_opentelemetry_tracing_exporter`.
//!
//! Each span is named `"{request_type} {name}"`, of kind CLIENT, with the request's
//! real start and end times and LoadDensity's attributes `request.type`,
//! `request.name`, `response.length` and `outcome`, plus the semantic conventions'
//! `http.request.method`, `http.response.status_code`, `url.full` and
//! `server.address` where they apply. A failure sets the span's status to error with
//! its message (and adds an `exception` event, as LoadDensity's `record_exception`).
//!
//! Why not the SDK's tracer and `BatchSpanProcessor`: every span would go through one
//! channel shared by all worker threads (a contended cache line per request), its
//! drops are only logged at shutdown and cannot be read, and the tracer builds the
//! span (attribute vector, name) on the request path. Why not the official OTLP span
//! exporter either: it converts each span into owned protobuf structs before encoding
//! them, which cost the load generator more than the requests themselves. Here the
//! request path keeps a small record in its thread's shard ([`queue`]); a task of the
//! exporter's own runtime ([`flusher`]) writes records as spans straight into OTLP
//! export requests ([`encode`]) and sends them over gRPC or HTTP ([`transport`]),
//! with the endpoint, header and `OTEL_*` rules of the metrics exporter. Drops are
//! counted and reported at stop and in the summary (`sinks.opentelemetry_traces`).

mod encode;
mod flusher;
mod queue;
mod transport;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::OtelError;
use super::config::{
    DEFAULT_SERVICE_NAME, OtelConfigError, OtlpProtocol, Signal, env, env_number, parse_headers,
    resolve_protocol, resolve_signal_endpoint, resolve_timeout_ms,
};
use crate::listener::ListenerId;
use crate::sinks::{Sinks, lock};
use encode::BatchHeader;
use flusher::{FlushSettings, Flusher};
use queue::{Sampler, SpanQueue, TraceStats};
use transport::Transport;

/// Default largest number of spans waiting for export; more are dropped and counted.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 65_536;
/// Default largest number of spans in one export (the SDK's batch default).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Default longest time a span waits before it is exported, in milliseconds.
pub const DEFAULT_TRACES_EXPORT_INTERVAL_MS: u64 = 1000;

/// Settings of [`start_opentelemetry_tracing_exporter`]. Fields left `None` follow the
/// OpenTelemetry environment variables, then the defaults, as the metrics exporter's.
#[derive(Clone, PartialEq)]
pub struct OtelTracingOptions {
    /// Collector URL. `None`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (HTTP appends `v1/traces`), then
    /// `http://localhost:4317` (gRPC) or `http://localhost:4318/v1/traces` (HTTP).
    pub endpoint: Option<String>,
    /// The resource's `service.name`. Default `loaddensity`.
    pub service_name: String,
    /// Transport. `None`: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then gRPC.
    pub protocol: Option<OtlpProtocol>,
    /// Extra request headers (gRPC metadata). Never printed.
    pub headers: BTreeMap<String, String>,
    /// Time limit of one export, and of the final export at stop, in milliseconds.
    /// `None`: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// then 10000.
    pub timeout_ms: Option<u64>,
    /// Share of requests that become spans, from 0 to 1, decided per request. `None`:
    /// `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio` with
    /// `OTEL_TRACES_SAMPLER_ARG`, or their `parentbased_` forms), then 1 (all, as
    /// LoadDensity).
    pub sample_ratio: Option<f64>,
    /// Send a W3C `traceparent` header on HTTP requests (default false), so that
    /// the server's own traces join the request's span: the engine then decides the
    /// sampling and the ids before each request, and the span carries the ids sent.
    pub propagate: bool,
    /// Spans waiting for export at most; more are dropped and counted. `None`:
    /// `OTEL_BSP_MAX_QUEUE_SIZE`, then [`DEFAULT_MAX_QUEUE_SIZE`].
    pub max_queue_size: Option<usize>,
    /// Spans per export at most. `None`: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, then
    /// [`DEFAULT_MAX_EXPORT_BATCH_SIZE`].
    pub max_export_batch_size: Option<usize>,
    /// Longest time a span waits before it is exported, in milliseconds. `None`:
    /// `OTEL_BSP_SCHEDULE_DELAY`, then [`DEFAULT_TRACES_EXPORT_INTERVAL_MS`].
    pub export_interval_ms: Option<u64>,
}

impl Default for OtelTracingOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            protocol: None,
            headers: BTreeMap::new(),
            timeout_ms: None,
            sample_ratio: None,
            propagate: false,
            max_queue_size: None,
            max_export_batch_size: None,
            export_interval_ms: None,
        }
    }
}

impl std::fmt::Debug for OtelTracingOptions {
    // Header values are secrets (API keys): only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelTracingOptions")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_ms", &self.timeout_ms)
            .field("sample_ratio", &self.sample_ratio)
            .field("propagate", &self.propagate)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_export_batch_size", &self.max_export_batch_size)
            .field("export_interval_ms", &self.export_interval_ms)
            .finish()
    }
}

/// A tracing setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OtelTracingConfigError {
    /// A setting shared with the metrics exporter.
    #[error(transparent)]
    Otlp(#[from] OtelConfigError),
    /// `sample_ratio` is not a number from 0 to 1.
    #[error("sample_ratio must be a number from 0 to 1 (0.01 keeps 1% of requests), got {0}")]
    SampleRatio(f64),
    /// `max_queue_size` is 0.
    #[error("max_queue_size must be at least 1")]
    QueueSize,
    /// `max_export_batch_size` is 0.
    #[error("max_export_batch_size must be at least 1")]
    BatchSize,
    /// `export_interval_ms` is 0.
    #[error("export_interval_ms must be at least 1")]
    Interval,
}

/// The settings with every default and environment variable applied, checked.
#[derive(Clone, PartialEq)]
pub struct ResolvedTracingOptions {
    /// Collector URL (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Validated extra headers. Never printed.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Time limit of one export and of the stop.
    pub timeout: Duration,
    /// Share of requests that become spans.
    pub sample_ratio: f64,
    /// Send a W3C `traceparent` header on HTTP requests.
    pub propagate: bool,
    /// Spans waiting for export at most.
    pub max_queue_size: usize,
    /// Spans per export at most.
    pub max_export_batch_size: usize,
    /// Longest wait of a span before its export.
    pub export_interval: Duration,
}

impl std::fmt::Debug for ResolvedTracingOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedTracingOptions")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("sample_ratio", &self.sample_ratio)
            .field("propagate", &self.propagate)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_export_batch_size", &self.max_export_batch_size)
            .field("export_interval", &self.export_interval)
            .finish()
    }
}

impl OtelTracingOptions {
    /// Applies the environment variables and defaults, and checks every setting.
    pub fn resolve(&self) -> Result<ResolvedTracingOptions, OtelTracingConfigError> {
        let protocol = resolve_protocol(self.protocol, Signal::Traces)?;
        let endpoint = resolve_signal_endpoint(self.endpoint.as_deref(), protocol, Signal::Traces)?;
        let timeout_ms = resolve_timeout_ms(self.timeout_ms, Signal::Traces)?;
        if self.service_name.trim().is_empty() {
            return Err(OtelConfigError::ServiceName.into());
        }
        let headers = parse_headers(&self.headers)?;
        let sample_ratio = match self.sample_ratio {
            Some(ratio) => ratio,
            None => env_sample_ratio()?.unwrap_or(1.0),
        };
        if !(0.0..=1.0).contains(&sample_ratio) {
            return Err(OtelTracingConfigError::SampleRatio(sample_ratio));
        }
        let spans = "a number of spans";
        let max_queue_size = or_env(
            self.max_queue_size,
            "OTEL_BSP_MAX_QUEUE_SIZE",
            spans,
            DEFAULT_MAX_QUEUE_SIZE,
        )?;
        if max_queue_size == 0 {
            return Err(OtelTracingConfigError::QueueSize);
        }
        let max_export_batch_size = or_env(
            self.max_export_batch_size,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            spans,
            DEFAULT_MAX_EXPORT_BATCH_SIZE,
        )?;
        if max_export_batch_size == 0 {
            return Err(OtelTracingConfigError::BatchSize);
        }
        let export_interval_ms = match self.export_interval_ms {
            Some(ms) => ms,
            None => env_number(&["OTEL_BSP_SCHEDULE_DELAY"], "a number of milliseconds")?
                .unwrap_or(DEFAULT_TRACES_EXPORT_INTERVAL_MS),
        };
        if export_interval_ms == 0 {
            return Err(OtelTracingConfigError::Interval);
        }
        Ok(ResolvedTracingOptions {
            endpoint,
            service_name: self.service_name.clone(),
            protocol,
            headers,
            timeout: Duration::from_millis(timeout_ms),
            sample_ratio,
            propagate: self.propagate,
            max_queue_size,
            max_export_batch_size,
            export_interval: Duration::from_millis(export_interval_ms),
        })
    }
}

/// A count given, else `variable`'s, else `default`.
fn or_env(
    given: Option<usize>,
    variable: &'static str,
    what: &str,
    default: usize,
) -> Result<usize, OtelConfigError> {
    Ok(match given {
        Some(count) => count,
        None => env_number(&[variable], what)?
            .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// The sampling ratio `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG` for the
/// ratio samplers, 1.0 when unset) asks for, when it is set. Every request's span is a
/// root span, so a `parentbased_` sampler samples as its root sampler does.
fn env_sample_ratio() -> Result<Option<f64>, OtelConfigError> {
    let Some(sampler) = env("OTEL_TRACES_SAMPLER") else {
        return Ok(None);
    };
    match sampler.to_ascii_lowercase().as_str() {
        "always_on" | "parentbased_always_on" => Ok(Some(1.0)),
        "always_off" | "parentbased_always_off" => Ok(Some(0.0)),
        "traceidratio" | "parentbased_traceidratio" => {
            let Some(arg) = env("OTEL_TRACES_SAMPLER_ARG") else {
                return Ok(Some(1.0));
            };
            match arg.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(Some(ratio)),
                _ => Err(OtelConfigError::Environment {
                    variable: "OTEL_TRACES_SAMPLER_ARG",
                    message: format!("expected a ratio from 0 to 1, got `{arg}`"),
                }),
            }
        }
        _ => Err(OtelConfigError::Environment {
            variable: "OTEL_TRACES_SAMPLER",
            message: format!(
                "`{sampler}` is not supported: expected always_on, always_off, traceidratio \
                 or their parentbased_ forms"
            ),
        }),
    }
}

/// Why the traces exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtelTracingError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] OtelTracingConfigError),
    /// The SDK refused the exporter's configuration, or its runtime did not start.
    #[error(transparent)]
    Start(#[from] OtelError),
}

/// What [`start_opentelemetry_tracing_exporter`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelTracingStarted {
    /// The collector URL spans go to.
    pub endpoint: String,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// Share of requests that become spans.
    pub sample_ratio: f64,
    /// True when an exporter was already running: nothing changed, and this
    /// describes the running one.
    pub already_running: bool,
}

impl OtelTracingStarted {
    /// The action's answer.
    pub fn to_json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "protocol": self.protocol.as_str(),
            "sample_ratio": self.sample_ratio,
            "already_running": self.already_running,
        })
    }
}

struct Running {
    options: ResolvedTracingOptions,
    listener: ListenerId,
    shutdown: CancellationToken,
    done: std::sync::mpsc::Receiver<()>,
    runtime: tokio::runtime::Runtime,
}

/// The last exporter started: its counters stay readable after the stop.
struct Last {
    options: ResolvedTracingOptions,
    stats: Arc<TraceStats>,
    running: bool,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    last: Mutex<Option<Last>>,
}

/// Starts the traces exporter and attaches its listener to the request event of
/// `sinks` (claiming URLs for `url.full` while attached).
///
/// When one is already running this returns its settings with `already_running`
/// set, and the options are ignored. Counts start from zero at every start.
pub fn start_opentelemetry_tracing_exporter(
    sinks: &Sinks,
    options: &OtelTracingOptions,
) -> Result<OtelTracingStarted, OtelTracingError> {
    let mut running = lock(&sinks.opentelemetry_traces.running);
    if let Some(current) = running.as_ref() {
        tracing::info!(
            "opentelemetry traces exporter already running, exporting to {}",
            current.options.endpoint
        );
        return Ok(started(&current.options, true));
    }
    let resolved = options.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loaddensity-otlp-traces")
        .enable_all()
        .build()
        .map_err(OtelError::Runtime)?;
    let transport = {
        let _context = runtime.enter();
        Transport::new(&resolved, runtime.handle())?
    };
    let instance = crate::instance::instance_name();
    let mut resource = vec![
        ("service.name", resolved.service_name.as_str()),
        ("telemetry.sdk.name", "loaddensity"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(instance) = instance.as_deref() {
        resource.push(("service.instance.id", instance));
    }
    let header = BatchHeader::new(
        &resource,
        crate::sinks::opentelemetry::SCOPE,
        env!("CARGO_PKG_VERSION"),
    );
    let stats = Arc::new(TraceStats::default());
    let queue = Arc::new(SpanQueue::new(
        Sampler::new(resolved.sample_ratio),
        resolved.max_queue_size,
        stats.clone(),
    ));
    let flusher = Flusher::new(
        queue.clone(),
        transport,
        header,
        FlushSettings {
            interval: resolved.export_interval,
            batch_size: resolved.max_export_batch_size,
            timeout: resolved.timeout,
        },
    );
    let shutdown = CancellationToken::new();
    let (done_tx, done) = std::sync::mpsc::channel();
    let token = shutdown.clone();
    runtime.spawn(async move {
        flusher.run(token).await;
        let _ = done_tx.send(());
    });
    sinks.listeners().detail().want_urls();
    let listener = sinks.listeners().add(queue);
    if resolved.propagate {
        sinks.listeners().detail().want_trace(resolved.sample_ratio);
    }
    tracing::info!(
        "opentelemetry traces exporter: OTLP {} to {}, sample ratio {}{}",
        resolved.protocol.as_str(),
        resolved.endpoint,
        resolved.sample_ratio,
        if resolved.propagate {
            ", sending traceparent on HTTP requests"
        } else {
            ""
        },
    );
    let answer = started(&resolved, false);
    *lock(&sinks.opentelemetry_traces.last) = Some(Last {
        options: resolved.clone(),
        stats,
        running: true,
    });
    *running = Some(Running {
        options: resolved,
        listener,
        shutdown,
        done,
        runtime,
    });
    Ok(answer)
}

fn started(options: &ResolvedTracingOptions, already_running: bool) -> OtelTracingStarted {
    OtelTracingStarted {
        endpoint: options.endpoint.clone(),
        protocol: options.protocol,
        sample_ratio: options.sample_ratio,
        already_running,
    }
}

/// Stops the traces exporter: detaches its listener, then exports what is queued,
/// waiting at most twice the export timeout (an export in flight, then the last
/// ones; a collector that never answers is given up on, and what it did not take is
/// counted as failed). Logs what was sent, dropped and
/// failed. Returns false when it was not running.
pub fn stop_opentelemetry_tracing_exporter(sinks: &Sinks) -> bool {
    let Some(current) = lock(&sinks.opentelemetry_traces.running).take() else {
        return false;
    };
    if current.options.propagate {
        sinks.listeners().detail().release_trace();
    }
    sinks.listeners().remove(current.listener);
    sinks.listeners().detail().release_urls();
    let Running {
        options,
        shutdown,
        done,
        runtime,
        ..
    } = current;
    shutdown.cancel();
    // An export in flight ends within the timeout, the final ones within another; the
    // margin covers the flusher's last steps.
    if done
        .recv_timeout(2 * options.timeout + Duration::from_secs(1))
        .is_err()
    {
        tracing::warn!(
            "opentelemetry traces exporter to {}: the final export did not finish within {:?}; stopped without it",
            options.endpoint,
            options.timeout
        );
    }
    runtime.shutdown_background();
    let mut last = lock(&sinks.opentelemetry_traces.last);
    if let Some(last) = last.as_mut() {
        last.running = false;
        let stats = &last.stats;
        tracing::info!(
            "opentelemetry traces exporter to {} stopped: {} span(s) exported, {} dropped (queue full), {} failed",
            options.endpoint,
            TraceStats::get(&stats.spans_exported),
            TraceStats::get(&stats.spans_dropped),
            TraceStats::get(&stats.spans_failed),
        );
    }
    true
}

/// The traces exporter's counters for the summary's `sinks` section: the last one
/// started, running or stopped. `None` when none was started.
pub fn opentelemetry_tracing_report(sinks: &Sinks) -> Option<Value> {
    let last = lock(&sinks.opentelemetry_traces.last);
    let last = last.as_ref()?;
    let stats = &last.stats;
    let get = TraceStats::get;
    Some(json!({
        "endpoint": last.options.endpoint,
        "protocol": last.options.protocol.as_str(),
        "sample_ratio": last.options.sample_ratio,
        "propagate": last.options.propagate,
        "running": last.running,
        "spans_sampled": get(&stats.spans_sampled),
        "spans_exported": get(&stats.spans_exported),
        "spans_dropped": get(&stats.spans_dropped),
        "spans_failed": get(&stats.spans_failed),
        "exports": get(&stats.exports),
        "export_errors": get(&stats.export_errors),
        "last_error": *lock(&stats.last_error),
    }))
}

/// True while the traces exporter runs.
pub fn opentelemetry_tracing_exporter_running(sinks: &Sinks) -> bool {
    lock(&sinks.opentelemetry_traces.running).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_use_their_own_path_and_checks() {
        let options = OtelTracingOptions {
            endpoint: Some("http://collector:4318".into()),
            protocol: Some(OtlpProtocol::HttpProtobuf),
            ..OtelTracingOptions::default()
        };
        let resolved = options.resolve().expect("valid");
        assert_eq!(resolved.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(resolved.sample_ratio, 1.0);
        for ratio in [-0.1, 1.5, f64::NAN] {
            let bad = OtelTracingOptions {
                sample_ratio: Some(ratio),
                ..options.clone()
            };
            let error = bad.resolve().expect_err("ratio out of range");
            assert!(error.to_string().contains("sample_ratio"), "{error}");
        }
        let secret = OtelTracingOptions {
            headers: [("x-api-key".to_string(), "s3cr3t".to_string())].into(),
            ..options
        };
        let resolved = secret.resolve().expect("valid");
        assert!(!format!("{secret:?}{resolved:?}").contains("s3cr3t"));
    }
}
