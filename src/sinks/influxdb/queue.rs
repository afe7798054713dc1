//! The InfluxDB sink's record and counters, for the push sinks' shared request-path
//! queue ([`crate::sinks::queue`]).
//!
//! The queue's budget is `max_pending_points`. A slot is given back when its point has
//! been sent or given up, so the budget bounds everything the sink holds, encoded
//! batches waiting for a retry and the shards' unused reservations included. A point
//! dropped because the budget is spent counts in `dropped_queue_full` and
//! `points_dropped`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::line_protocol::truncate_error;
use crate::event::{EndpointId, Outcome, RequestEvent};
use crate::sinks::lock;
use crate::sinks::queue::{QueueRecord, ShardedQueue};

/// One request, as queued: what its line needs, without its endpoint's strings.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) timestamp_ns: i64,
    pub(crate) latency_ns: u64,
    pub(crate) response_bytes: u64,
    pub(crate) endpoint: EndpointId,
    pub(crate) success: bool,
    /// The failure text (at most 512 characters), on failure only.
    pub(crate) error: Option<Box<str>>,
}

/// What the sink counts; reported in the summary's `sinks` section.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Points taken off the queue and encoded (counted by the flusher).
    pub(crate) points_queued: AtomicU64,
    pub(crate) points_sent: AtomicU64,
    pub(crate) points_dropped: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) running: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn set_last_error(&self, text: String) {
        *lock(&self.last_error) = Some(text);
    }

    /// The counters as the summary shows them. `transport` and `target` name where
    /// the points go (never with the URL's query, which may hold credentials).
    pub(crate) fn report(&self, transport: &str, target: &str) -> Value {
        let get = Self::get;
        json!({
            "transport": transport,
            "target": target,
            "running": self.running.load(Ordering::Relaxed),
            "points_queued": get(&self.points_queued),
            "points_sent": get(&self.points_sent),
            "points_dropped": get(&self.points_dropped),
            "dropped_queue_full": get(&self.dropped_queue_full),
            "write_errors": get(&self.write_errors),
            "retries": get(&self.retries),
            "batches_sent": get(&self.batches_sent),
            "bytes_sent": get(&self.bytes_sent),
            "last_error": *lock(&self.last_error),
        })
    }
}

/// The sink's queue: its records, bounded by `max_pending_points`.
pub(crate) type Queue = ShardedQueue<Record>;

impl QueueRecord for Record {
    type Counters = Counters;

    #[inline]
    fn from_event(event: &RequestEvent<'_>) -> Self {
        Record {
            timestamp_ns: event
                .start_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            latency_ns: u64::try_from(event.response_time.as_nanos()).unwrap_or(u64::MAX),
            response_bytes: event.response_length,
            endpoint: event.endpoint.id,
            success: event.outcome.is_success(),
            error: match event.outcome {
                Outcome::Success => None,
                Outcome::Failure(text) => Some(truncate_error(text).into()),
            },
        }
    }

    fn count_drop(counters: &Counters) {
        counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        counters.points_dropped.fetch_add(1, Ordering::Relaxed);
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
        fire(&queue, 5, Duration::from_millis(1));
        assert_eq!(Counters::get(&counters.dropped_queue_full), 2);
        assert_eq!(Counters::get(&counters.points_dropped), 2);
        assert!(queue.is_full());
        let (endpoints, drained) = drain_all(&queue, |r| (r.latency_ns, r.error.clone()));
        assert_eq!((endpoints, drained.len()), (1, 3));
        assert_eq!(drained[0], (1_000_000, None));
        assert_eq!(drained[1].1.as_deref(), Some("boom"));
        queue.release(3);
        assert!(!queue.is_full());
    }
}
