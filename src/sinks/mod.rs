//! Metric sinks: listeners of the request event that publish what the load test does
//! to an outside monitoring system, while it runs.
//!
//! Each sink is started and stopped by a pair of functions (and the matching `LD_*`
//! actions), as LoadDensity's `start_*` helpers are. Where LoadDensity keeps them in
//! process-wide globals, each run here holds its own [`Sinks`]: the functions act on
//! the one they are given, and dropping it stops every sink it runs.

pub mod datadog_apm;
mod endpoint;
mod http_post;
pub mod influxdb;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
pub mod prometheus;
pub mod prometheus_remote_write;
mod queue;
pub mod statsd;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::listener::{ListenerId, ListenerRegistry};

/// The sinks of one run, and the request event they attach to. At most one of each
/// kind runs at a time; starting a running one returns what it runs as.
pub struct Sinks {
    listeners: Arc<ListenerRegistry>,
    pub(crate) prometheus: prometheus::SinkState,
    pub(crate) influxdb: influxdb::SinkState,
    pub(crate) datadog_apm: datadog_apm::SinkState,
    #[cfg(feature = "opentelemetry")]
    pub(crate) opentelemetry: opentelemetry::SinkState,
    #[cfg(feature = "opentelemetry")]
    pub(crate) opentelemetry_traces: opentelemetry::traces::SinkState,
    pub(crate) remote_write: prometheus_remote_write::SinkState,
    pub(crate) statsd: statsd::SinkState,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").finish_non_exhaustive()
    }
}

impl Sinks {
    /// No sink running yet; each one started attaches to `listeners`.
    pub fn new(listeners: Arc<ListenerRegistry>) -> Self {
        Self {
            listeners,
            prometheus: Default::default(),
            influxdb: Default::default(),
            datadog_apm: Default::default(),
            #[cfg(feature = "opentelemetry")]
            opentelemetry: Default::default(),
            #[cfg(feature = "opentelemetry")]
            opentelemetry_traces: Default::default(),
            remote_write: Default::default(),
            statsd: Default::default(),
        }
    }

    /// The request event the sinks attach to.
    pub fn listeners(&self) -> &Arc<ListenerRegistry> {
        &self.listeners
    }

    /// Stops every running sink (each flushes what it holds first).
    pub fn stop_all(&self) {
        prometheus::stop_prometheus_exporter(self);
        influxdb::stop_influxdb_sink(self);
        datadog_apm::stop_datadog_apm_exporter(self);
        #[cfg(feature = "opentelemetry")]
        opentelemetry::stop_opentelemetry_exporter(self);
        #[cfg(feature = "opentelemetry")]
        opentelemetry::stop_opentelemetry_tracing_exporter(self);
        prometheus_remote_write::stop_prometheus_remote_write(self);
        statsd::stop_statsd_sink(self);
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Locks a sink's state. A thread that panicked while holding it leaves plain data
/// behind (counters, handles), so the state is taken over rather than lost.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running sink: its listener on the request event and its background thread.
pub(crate) struct Attached {
    /// The listener it added to its run's request event.
    pub(crate) listener: ListenerId,
    /// Cancelled to end the thread (which then flushes or closes).
    pub(crate) shutdown: CancellationToken,
    /// The thread that serves or sends.
    pub(crate) thread: std::thread::JoinHandle<()>,
}

impl Attached {
    /// Detaches the listener, then ends the thread and waits for it.
    pub(crate) fn detach_and_join(self, listeners: &ListenerRegistry, sink: &str) {
        listeners.remove(self.listener);
        self.shutdown.cancel();
        if self.thread.join().is_err() {
            tracing::warn!("{sink} thread panicked");
        }
    }
}
