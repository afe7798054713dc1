//! The hot path: the listener that copies each request into a bounded, per-thread
//! sharded queue, and the sink's counters.
//!
//! `on_request` takes its thread's shard (one uncontended lock) and pushes a small
//! record, paid from a slot the shard reserved from the shared budget of
//! `max_pending_spans` ([`RESERVE`] at a time, so the shared counter is touched once
//! per [`RESERVE`] requests). When the budget is spent the span is dropped and counted;
//! the request loop never waits. A slot is given back when its span has been sent or
//! given up.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::event::{Endpoint, EndpointId, Outcome, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::sinks::influxdb::line_protocol::truncate_error;
use crate::sinks::lock;

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

/// An endpoint a shard saw for the first time: the flusher builds its span name.
#[derive(Debug)]
pub(crate) struct NewEndpoint {
    pub(crate) id: EndpointId,
    pub(crate) request_type: Arc<str>,
    pub(crate) name: Arc<str>,
}

/// Slots a shard takes from the shared budget at once.
pub(crate) const RESERVE: usize = 256;

/// One thread's queue.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) records: Vec<Record>,
    pub(crate) new_endpoints: Vec<NewEndpoint>,
    seen: Vec<bool>,
    /// Slots of the budget this shard holds and has not used yet.
    reserved: usize,
}

impl Shard {
    #[inline]
    fn push(&mut self, endpoint: &Endpoint, record: Record) {
        let index = endpoint.id.0 as usize;
        if !self.seen.get(index).copied().unwrap_or(false) {
            if self.seen.len() <= index {
                self.seen.resize(index + 1, false);
            }
            self.seen[index] = true;
            self.new_endpoints.push(NewEndpoint {
                id: endpoint.id,
                request_type: endpoint.request_type.clone(),
                name: endpoint.name.clone(),
            });
        }
        self.records.push(record);
    }
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

/// The listener attached to the request event.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) shards: Box<[Padded<Mutex<Shard>>]>,
    /// Spans accepted and not yet sent or given up (unused reservations included).
    pending: AtomicUsize,
    max_pending: usize,
    pub(crate) counters: Arc<Counters>,
}

impl Queue {
    pub(crate) fn new(max_pending: usize, counters: Arc<Counters>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            pending: AtomicUsize::new(0),
            max_pending,
            counters,
        }
    }

    /// Takes up to `wanted` slots of the budget; returns how many it got (0 when spent).
    fn reserve(&self, wanted: usize) -> usize {
        let mut pending = self.pending.load(Ordering::Relaxed);
        loop {
            let got = wanted.min(self.max_pending.saturating_sub(pending));
            if got == 0 {
                return 0;
            }
            match self.pending.compare_exchange_weak(
                pending,
                pending + got,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return got,
                Err(now) => pending = now,
            }
        }
    }

    /// Gives `n` slots back: their spans were sent or given up.
    pub(crate) fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }

    /// True when no slot is left.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= self.max_pending
    }
}

impl RequestListener for Queue {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.reserved == 0 {
            shard.reserved = self.reserve(RESERVE);
            if shard.reserved == 0 {
                drop(shard);
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                self.counters.spans_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        shard.reserved -= 1;
        let record = Record {
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
        };
        shard.push(event.endpoint, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndpointInterner;
    use std::time::{Duration, SystemTime};

    #[test]
    fn bounded_and_counted() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/x");
        let counters = Arc::new(Counters::default());
        let queue = Queue::new(3, counters.clone());
        for i in 0..5 {
            queue.on_request(&RequestEvent {
                endpoint: &endpoint,
                url: None,
                response: None,
                start_time: SystemTime::now(),
                response_time: Duration::from_millis(2),
                response_length: 10,
                status: Some(500),
                outcome: if i % 2 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Failure("boom")
                },
            });
        }
        assert_eq!(Counters::get(&counters.dropped_queue_full), 2);
        assert_eq!(Counters::get(&counters.spans_dropped), 2);
        assert!(queue.is_full());
        let shard = lock(&queue.shards[shard_index()].0);
        assert_eq!(shard.records.len(), 3);
        assert_eq!(shard.new_endpoints.len(), 1);
        assert_eq!(shard.records[1].error.as_deref(), Some("boom"));
        assert_eq!(shard.records[0].duration_ns, 2_000_000);
        drop(shard);
        queue.release(3);
        assert!(!queue.is_full());
    }
}
