//! The StatsD / DogStatsD sink: LoadDensity's three metrics per request, packed into
//! datagrams and sent over UDP from the sink's own thread, never in the way of the load.
//!
//! - Metrics ([`encoder`]): `{prefix}.requests:1|c`, `{prefix}.request.latency:<ms>|ms`,
//!   `{prefix}.response.size:<bytes>|h`, tagged `#method:M,name:N,outcome:O` (DogStatsD,
//!   the default) or with the values folded into the name (`dialect: "statsd"`).
//! - Where LoadDensity sends three datagrams per request, lines are packed into
//!   datagrams of at most `max_packet_bytes` ([`packet`]); a server ends up with the
//!   same metrics. `aggregate_counters` sums the counter per flush and tag set (`N|c`),
//!   which keeps counts exact.
//! - The request path only pushes a small record into a bounded queue; when it is full
//!   the request is dropped and counted ([`statsd_sink_report`], the summary's
//!   `sinks.statsd`).
//!
//! One sink runs per run ([`crate::sinks::Sinks`]). Unlike the InfluxDB sink, starting
//! it again rebinds, as LoadDensity's `start_statsd_sink` does: the new options are
//! checked first, then the running sink is stopped (sending what it holds) and the new
//! one started.

mod datagrams;
pub mod encoder;
mod options;
pub mod packet;
mod queue;
mod sender;

pub use options::{
    DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_HOST, DEFAULT_MAX_PACKET_BYTES, DEFAULT_MAX_QUEUED_REQUESTS,
    DEFAULT_PORT, DEFAULT_PREFIX, Dialect, MAX_UDP_PAYLOAD, StatsdError, StatsdOptions,
    check_options,
};

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Attached, Sinks, lock};
use datagrams::{Transport, UdpTransport};
use encoder::Encoder;
use queue::{Counters, Queue};
use sender::{Sender, SenderSettings};

struct Running {
    attached: Attached,
    target: SocketAddr,
}

/// The counters of the running sink, or of the last one, kept after stop.
struct Report {
    counters: Arc<Counters>,
    settings: Value,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    report: Mutex<Option<Report>>,
}

/// What [`start_statsd_sink`] started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsdStarted {
    /// The address datagrams go to.
    pub target: SocketAddr,
    /// True when a running sink was stopped to start this one.
    pub replaced: bool,
}

/// Starts the sink: checks the options and resolves the host (before anything is
/// stopped or sent), stops a running one (it sends what it holds), attaches a listener
/// to the request event of `sinks` and starts the sink's thread.
pub fn start_statsd_sink(
    sinks: &Sinks,
    options: StatsdOptions,
) -> Result<StatsdStarted, StatsdError> {
    check_options(&options)?;
    let prefix = options::effective_prefix(&options.prefix).to_string();
    let encoder = Encoder::new(&prefix, options.dialect, options.max_packet_bytes)?;
    let target = options::resolve(&options)?;
    let send = Transport::Udp(UdpTransport::connect(target).map_err(StatsdError::Start)?);
    let mut running = lock(&sinks.statsd.running);
    let replaced = match running.take() {
        Some(current) => {
            stop(sinks, current);
            true
        }
        None => false,
    };
    let counters = Arc::new(Counters::default());
    let queue = Arc::new(Queue::new(options.max_queued_requests, counters.clone()));
    let sender = Sender::new(
        queue.clone(),
        send,
        SenderSettings {
            encoder,
            aggregate_counters: options.aggregate_counters,
            flush_interval: options.flush_interval,
        },
    );
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("loaddensity-statsd".into())
        .spawn(move || sender.run(token))
        .map_err(StatsdError::Start)?;
    counters.running.store(true, Ordering::Relaxed);
    *lock(&sinks.statsd.report) = Some(Report {
        counters,
        settings: json!({
            "target": format!("udp://{target}"),
            "dialect": options.dialect.as_str(),
            "prefix": prefix,
            "aggregate_counters": options.aggregate_counters,
            "max_packet_bytes": options.max_packet_bytes,
        }),
    });
    let listener = sinks.listeners().add(queue);
    tracing::info!(
        "statsd sink sending {} metrics to udp://{target}",
        options.dialect.as_str()
    );
    *running = Some(Running {
        attached: Attached {
            listener,
            shutdown,
            thread,
        },
        target,
    });
    Ok(StatsdStarted { target, replaced })
}

fn stop(sinks: &Sinks, current: Running) {
    current
        .attached
        .detach_and_join(sinks.listeners(), "statsd sink");
    if let Some(report) = lock(&sinks.statsd.report).as_ref() {
        report.counters.running.store(false, Ordering::Relaxed);
    }
    tracing::info!("statsd sink to udp://{} stopped", current.target);
}

/// Stops the sink: detaches its listener, sends what it holds and ends its thread.
/// Returns false when it was not running. Its counters stay readable
/// ([`statsd_sink_report`]).
pub fn stop_statsd_sink(sinks: &Sinks) -> bool {
    let Some(current) = lock(&sinks.statsd.running).take() else {
        return false;
    };
    stop(sinks, current);
    true
}

/// True while the sink runs.
pub fn statsd_sink_running(sinks: &Sinks) -> bool {
    lock(&sinks.statsd.running).is_some()
}

/// The counters of the running sink, or of the last one started (`null` when none
/// ever started): `requests_sent` (requests its counter lines count),
/// `datagrams_sent`, `metrics_sent`, `bytes_sent`, `metrics_dropped` and
/// `requests_dropped` (queue full), `send_errors`, `metrics_failed`, `last_error`, and
/// its settings.
pub fn statsd_sink_report(sinks: &Sinks) -> Value {
    match lock(&sinks.statsd.report).as_ref() {
        Some(report) => report.counters.report(report.settings.clone()),
        None => Value::Null,
    }
}
