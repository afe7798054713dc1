//! The OpenTelemetry exporter: pushes per-request metrics over OTLP (gRPC, or HTTP
//! with protobuf bodies) to any collector, with the official Rust SDK.
//!
//! Instruments, with LoadDensity's names, each with the attributes `request_type`,
//! `name` and `outcome` (`success` or `failure`):
//! - `loaddensity.requests`, a counter (unit `1`);
//! - `loaddensity.request.latency`, a histogram in `ms` with the Prometheus exporter's
//!   bucket bounds (or base-2 exponential buckets);
//! - `loaddensity.response.size`, a histogram in `By`, likewise.
//!
//! The SDK's periodic reader collects and exports on a thread of its own every
//! `export_interval_ms`; the transport runs on a small runtime of its own. Recording
//! goes through instrument handles bound once per (endpoint, outcome) (see
//! [`recorder`]), so the request path never allocates, hashes attributes, or waits
//! for the collector. Export failures are counted and logged at a limited rate.
//!
//! Stopping detaches the listener, then flushes and shuts the SDK down on a separate
//! thread, waiting at most the export timeout: a collector that never answers cannot
//! hold the process.

mod config;
mod export;
mod recorder;
pub mod traces;

pub use config::DEFAULT_HTTP_TRACES_ENDPOINT;
pub use config::{
    DEFAULT_EXPORT_INTERVAL_MS, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT, DEFAULT_SERVICE_NAME,
    DEFAULT_TIMEOUT_MS, HistogramKind, OtelConfigError, OtelOptions, OtelTemporality, OtlpProtocol,
    ResolvedOptions, check_url, resolve_endpoint,
};
pub use recorder::{LATENCY, REQUESTS, RESPONSE_SIZE, SCOPE};
pub use traces::{
    OtelTracingConfigError, OtelTracingError, OtelTracingOptions, OtelTracingStarted,
    ResolvedTracingOptions, opentelemetry_tracing_exporter_running, opentelemetry_tracing_report,
    start_opentelemetry_tracing_exporter, stop_opentelemetry_tracing_exporter,
};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{
    MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use serde_json::{Value, json};

use crate::listener::ListenerId;
use crate::sinks::{Sinks, lock};
use export::{CountingExporter, ExportStats, RuntimeHttpClient};
use recorder::Recorder;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] OtelConfigError),
    /// The SDK refused the exporter's configuration.
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// The exporter's runtime or threads could not be started.
    #[error("cannot start the exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What [`start_opentelemetry_exporter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelStarted {
    /// The collector URL exports go to.
    pub endpoint: String,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// Time between exports.
    pub export_interval: Duration,
    /// True when an exporter was already running: nothing changed, and this
    /// describes the running one.
    pub already_running: bool,
}

impl OtelStarted {
    /// The action's answer.
    pub fn to_json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "protocol": self.protocol.as_str(),
            "export_interval_ms": u64::try_from(self.export_interval.as_millis()).unwrap_or(u64::MAX),
            "already_running": self.already_running,
        })
    }
}

struct Running {
    options: ResolvedOptions,
    listener: ListenerId,
    /// The attached listener, kept until the SDK is shut down: its shards are replayed
    /// into the SDK before every collection, the final one included.
    recorder: Arc<Recorder>,
    provider: SdkMeterProvider,
    runtime: tokio::runtime::Runtime,
}

/// The last exporter started: its counters stay readable after the stop, for the
/// summary.
struct Last {
    options: ResolvedOptions,
    stats: Arc<ExportStats>,
    running: bool,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    last: Mutex<Option<Last>>,
}

/// Starts the exporter and attaches its listener to the request event of `sinks`.
///
/// When an exporter is already running this returns its settings with
/// `already_running` set, and the options are ignored. Counts start from zero at
/// every start.
pub fn start_opentelemetry_exporter(
    sinks: &Sinks,
    options: &OtelOptions,
) -> Result<OtelStarted, OtelError> {
    let mut running = lock(&sinks.opentelemetry.running);
    if let Some(current) = running.as_ref() {
        tracing::info!(
            "opentelemetry exporter already running, exporting to {}",
            current.options.endpoint
        );
        return Ok(started(&current.options, true));
    }
    let resolved = options.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loaddensity-otlp")
        .enable_all()
        .build()
        .map_err(OtelError::Runtime)?;
    let stats = Arc::new(ExportStats::default());
    let exporter = {
        let _context = runtime.enter();
        build_exporter(&resolved, runtime.handle())?
    };
    let reader = PeriodicReader::builder(CountingExporter::new(exporter, stats.clone()))
        .with_interval(resolved.export_interval)
        .build();
    let mut resource = Resource::builder().with_service_name(resolved.service_name.clone());
    // One of several instances (a segment or `--instance`): say which.
    if let Some(instance) = crate::instance::instance_name() {
        resource = resource.with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance,
        ));
    }
    let resource = resource.build();
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader);
    if resolved.histogram == HistogramKind::Exponential {
        builder = builder.with_view(exponential_histograms);
    }
    let provider = builder.build();
    let recorder = Recorder::new(&provider);
    let listener = sinks.listeners().add(recorder.clone());
    tracing::info!(
        "opentelemetry exporter: OTLP {} to {} every {:?} ({}, {} histograms)",
        resolved.protocol.as_str(),
        resolved.endpoint,
        resolved.export_interval,
        resolved.temporality.as_str(),
        resolved.histogram.as_str(),
    );
    let answer = started(&resolved, false);
    *lock(&sinks.opentelemetry.last) = Some(Last {
        options: resolved.clone(),
        stats,
        running: true,
    });
    *running = Some(Running {
        options: resolved,
        listener,
        recorder,
        provider,
        runtime,
    });
    Ok(answer)
}

fn started(options: &ResolvedOptions, already_running: bool) -> OtelStarted {
    OtelStarted {
        endpoint: options.endpoint.clone(),
        protocol: options.protocol,
        export_interval: options.export_interval,
        already_running,
    }
}

fn exponential_histograms(instrument: &Instrument) -> Option<Stream> {
    if instrument.kind() != InstrumentKind::Histogram {
        return None;
    }
    Stream::builder()
        .with_aggregation(Aggregation::Base2ExponentialHistogram {
            max_size: 160,
            max_scale: 20,
            record_min_max: true,
        })
        .build()
        .ok()
}

fn build_exporter(
    options: &ResolvedOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<MetricExporter, OtelError> {
    let temporality = match options.temporality {
        OtelTemporality::Cumulative => Temporality::Cumulative,
        OtelTemporality::Delta => Temporality::Delta,
    };
    let https = options.endpoint.starts_with("https:");
    let built = match options.protocol {
        OtlpProtocol::Grpc => {
            let headers: HeaderMap = options.headers.iter().cloned().collect();
            let mut builder = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(options.endpoint.clone())
                .with_timeout(options.timeout)
                .with_metadata(MetadataMap::from_headers(headers))
                .with_temporality(temporality);
            if https {
                builder = builder.with_tls_config(ClientTlsConfig::new().with_enabled_roots());
            }
            builder.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let client = RuntimeHttpClient::new(
                runtime,
                &options.endpoint,
                options.timeout,
                &options.headers,
            )?;
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(options.endpoint.clone())
                .with_timeout(options.timeout)
                .with_http_client(client)
                .with_temporality(temporality)
                .build()
        }
    };
    built.map_err(|e| OtelError::Build(e.to_string()))
}

/// Stops the exporter: detaches its listener, then force-flushes and shuts the SDK
/// down, waiting at most the export timeout (a collector that never answers is given
/// up on, with a warning). Returns false when it was not running.
pub fn stop_opentelemetry_exporter(sinks: &Sinks) -> bool {
    let Some(current) = lock(&sinks.opentelemetry.running).take() else {
        return false;
    };
    sinks.listeners().remove(current.listener);
    if let Some(last) = lock(&sinks.opentelemetry.last).as_mut() {
        last.running = false;
    }
    let Running {
        options,
        recorder,
        provider,
        runtime,
        ..
    } = current;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = std::thread::Builder::new()
        .name("loaddensity-otlp-stop".into())
        .spawn(move || {
            // The flush's collection replays what the recorder's shards still hold.
            let flushed = provider.force_flush();
            let shut = provider.shutdown();
            drop(provider);
            drop(recorder);
            runtime.shutdown_background();
            let _ = done_tx.send((flushed, shut));
        });
    if let Err(error) = stopper {
        tracing::warn!("opentelemetry exporter: cannot start the stop thread: {error}");
        return true;
    }
    match done_rx.recv_timeout(options.timeout) {
        Ok((Ok(()), _)) => {
            tracing::info!(
                "opentelemetry exporter to {} stopped, final metrics flushed",
                options.endpoint
            );
        }
        Ok((Err(error), _)) => tracing::warn!(
            "opentelemetry exporter to {} stopped; the final flush failed: {error}",
            options.endpoint
        ),
        Err(_) => tracing::warn!(
            "opentelemetry exporter to {}: the final flush did not finish within {:?}; stopped without it",
            options.endpoint,
            options.timeout
        ),
    }
    true
}

/// The exporter's counters for the summary's `sinks` section: the last exporter
/// started, running or stopped. `None` when none was started.
pub fn opentelemetry_report(sinks: &Sinks) -> Option<Value> {
    let last = lock(&sinks.opentelemetry.last);
    let last = last.as_ref()?;
    Some(json!({
        "endpoint": last.options.endpoint,
        "protocol": last.options.protocol.as_str(),
        "running": last.running,
        "exports": last.stats.exports(),
        "export_errors": last.stats.errors(),
        "last_error": last.stats.last_error(),
    }))
}

/// True while the exporter runs.
pub fn opentelemetry_exporter_running(sinks: &Sinks) -> bool {
    lock(&sinks.opentelemetry.running).is_some()
}
