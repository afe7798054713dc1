//! Metric sinks: listeners of the request event that publish what the load test does
//! to an outside monitoring system, while it runs.
//!
//! Each sink is started and stopped by a pair of functions (and the matching `LD_*`
//! actions) and keeps process-wide state, as LoadDensity's `start_*` helpers do.

mod http_post;
pub mod influxdb;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
pub mod prometheus;
pub mod prometheus_remote_write;

use std::sync::{Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::listener::{ListenerId, request_event};

/// Locks a sink's state. A thread that panicked while holding it leaves plain data
/// behind (counters, handles), so the state is taken over rather than lost.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running sink: its listener on the request event and its background thread.
pub(crate) struct Attached {
    /// The listener it added to [`request_event`].
    pub(crate) listener: ListenerId,
    /// Cancelled to end the thread (which then flushes or closes).
    pub(crate) shutdown: CancellationToken,
    /// The thread that serves or sends.
    pub(crate) thread: std::thread::JoinHandle<()>,
}

impl Attached {
    /// Detaches the listener, then ends the thread and waits for it.
    pub(crate) fn detach_and_join(self, sink: &str) {
        request_event().remove(self.listener);
        self.shutdown.cancel();
        if self.thread.join().is_err() {
            tracing::warn!("{sink} thread panicked");
        }
    }
}
