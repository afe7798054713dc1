//! The StatsD sink's record and counters, for the push sinks' shared request-path
//! queue ([`crate::sinks::queue`]).
//!
//! The queue's budget is `max_queued_requests`; the sender gives slots back as it takes
//! records off. The record is smaller than the InfluxDB sink's (no timestamp, no error
//! text: StatsD carries neither). A request dropped because the budget is spent counts
//! in `requests_dropped`, and its three metrics in `metrics_dropped`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::event::{EndpointId, RequestEvent};
use crate::sinks::lock;
use crate::sinks::queue::{QueueRecord, ShardedQueue};

/// One request, as queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) endpoint: EndpointId,
    pub(crate) success: bool,
    /// Whole milliseconds, truncated (LoadDensity's `int(response_time)`).
    pub(crate) latency_ms: u64,
    pub(crate) response_bytes: u64,
}

/// What the sink counts; reported in the summary's `sinks.statsd`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests_queued: AtomicU64,
    /// Requests counted by the counter lines sent (`1|c` each, or summed).
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_dropped: AtomicU64,
    pub(crate) datagrams_sent: AtomicU64,
    pub(crate) metrics_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    /// Metrics never encoded because the queue was full (three per request).
    pub(crate) metrics_dropped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    /// Metrics in datagrams whose send failed.
    pub(crate) metrics_failed: AtomicU64,
    pub(crate) running: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters as the summary shows them, with the sink's settings.
    pub(crate) fn report(&self, settings: Value) -> Value {
        let get = Self::get;
        let mut report = json!({
            "running": self.running.load(Ordering::Relaxed),
            "requests_queued": get(&self.requests_queued),
            "requests_sent": get(&self.requests_sent),
            "requests_dropped": get(&self.requests_dropped),
            "datagrams_sent": get(&self.datagrams_sent),
            "metrics_sent": get(&self.metrics_sent),
            "bytes_sent": get(&self.bytes_sent),
            "metrics_dropped": get(&self.metrics_dropped),
            "send_errors": get(&self.send_errors),
            "metrics_failed": get(&self.metrics_failed),
            "last_error": *lock(&self.last_error),
        });
        if let (Some(report), Value::Object(settings)) = (report.as_object_mut(), settings) {
            for (key, value) in settings {
                report.insert(key, value);
            }
        }
        report
    }
}

/// The sink's queue: its records, bounded by `max_queued_requests`.
pub(crate) type Queue = ShardedQueue<Record>;

impl QueueRecord for Record {
    type Counters = Counters;

    #[inline]
    fn from_event(event: &RequestEvent<'_>) -> Self {
        Record {
            endpoint: event.endpoint.id,
            success: event.outcome.is_success(),
            latency_ms: u64::try_from(event.response_time.as_millis()).unwrap_or(u64::MAX),
            response_bytes: event.response_length,
        }
    }

    fn count_drop(counters: &Counters) {
        Counters::add(&counters.requests_dropped, 1);
        Counters::add(&counters.metrics_dropped, 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::queue::{drain_all, fire};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn bounded_and_counted() {
        let counters = Arc::new(Counters::default());
        let queue = Queue::new(3, counters.clone());
        fire(&queue, 5, Duration::from_micros(2_999));
        assert_eq!(Counters::get(&counters.requests_dropped), 2);
        assert_eq!(Counters::get(&counters.metrics_dropped), 6);
        let (endpoints, drained) = drain_all(&queue, |r| *r);
        assert_eq!((endpoints, drained.len()), (1, 3));
        assert_eq!(drained[0].latency_ms, 2);
        assert!(!drained[1].success);
    }
}
