//! The Datadog APM exporter's record and counters, for the push sinks' shared
//! request-path queue ([`crate::sinks::queue`]).
//!
//! The queue's budget is `max_pending_spans`. A slot is given back when its span has
//! been sent or given up. A span dropped because the budget is spent counts in
//! `dropped_queue_full` and `spans_dropped`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::event::{EndpointId, Outcome, RequestEvent};
use crate::sinks::influxdb::line_protocol::truncate_error;
use crate::sinks::lock;
use crate::sinks::queue::{QueueRecord, ShardedQueue};

/// One request, as queued: what its span needs, without its endpoint's strings.
#[derive(Debug)]
pub(crate) struct Record {
    /// Start, in nanoseconds since the Unix epoch.
    pub(crate) start_ns: i64,
    /// The request's response time, in nanoseconds.
    pub(crate) duration_ns: i64,
    pub(crate) response_length: u64,
    pub(crate) endpoint: EndpointId,
    /// The response's status, when one arrived.
    pub(crate) status: Option<u16>,
    /// The failure text (at most 512 characters), on failure only.
    pub(crate) error: Option<Box<str>>,
}

/// What the sink counts; reported in the summary's `sinks.datadog_apm`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Spans the agent accepted.
    pub(crate) spans_sent: AtomicU64,
    /// Spans given up: the queue was full, the agent refused them or never answered.
    pub(crate) spans_dropped: AtomicU64,
    /// Of `spans_dropped`, those dropped on the request path (queue full).
    pub(crate) dropped_queue_full: AtomicU64,
    /// Payloads (`PUT /v0.4/traces`) the agent accepted.
    pub(crate) payloads_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    /// Failed PUTs (refused, server error, timeout, connection).
    pub(crate) errors: AtomicU64,
    pub(crate) retries: AtomicU64,
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

    /// The counters as the summary shows them.
    pub(crate) fn report(&self, agent: &str, service: &str, env: Option<&str>) -> Value {
        let get = Self::get;
        json!({
            "agent_url": agent,
            "service": service,
            "env": env,
            "running": self.running.load(Ordering::Relaxed),
            "spans_sent": get(&self.spans_sent),
            "spans_dropped": get(&self.spans_dropped),
            "dropped_queue_full": get(&self.dropped_queue_full),
            "payloads_sent": get(&self.payloads_sent),
            "bytes_sent": get(&self.bytes_sent),
            "errors": get(&self.errors),
            "retries": get(&self.retries),
            "last_error": *lock(&self.last_error),
        })
    }
}

/// The exporter's queue: its records, bounded by `max_pending_spans`.
pub(crate) type Queue = ShardedQueue<Record>;

impl QueueRecord for Record {
    type Counters = Counters;

    #[inline]
    fn from_event(event: &RequestEvent<'_>) -> Self {
        Record {
            start_ns: event
                .start_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            duration_ns: i64::try_from(event.response_time.as_nanos()).unwrap_or(i64::MAX),
            response_length: event.response_length,
            endpoint: event.endpoint.id,
            status: event.status,
            error: match event.outcome {
                Outcome::Success => None,
                Outcome::Failure(text) => Some(truncate_error(text).into()),
            },
        }
    }

    fn count_drop(counters: &Counters) {
        counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        counters.spans_dropped.fetch_add(1, Ordering::Relaxed);
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
        fire(&queue, 5, Duration::from_millis(2));
        assert_eq!(Counters::get(&counters.dropped_queue_full), 2);
        assert_eq!(Counters::get(&counters.spans_dropped), 2);
        assert!(queue.is_full());
        let (endpoints, drained) =
            drain_all(&queue, |r| (r.duration_ns, r.status, r.error.clone()));
        assert_eq!((endpoints, drained.len()), (1, 3));
        assert_eq!(drained[0], (2_000_000, Some(500), None));
        assert_eq!(drained[1].2.as_deref(), Some("boom"));
        queue.release(3);
        assert!(!queue.is_full());
    }
}
