//! The hot path: the listener that copies each request into a bounded, sharded queue.
//!
//! `on_request` pushes a 24-byte record into its thread's shard (one uncontended lock)
//! and takes one slot of the shard's reservation; a shard takes [`RESERVE`] slots of
//! the shared budget (`max_queued_requests`) at a time, so the shared counter is
//! touched once per [`RESERVE`] requests. When the budget is spent the request is
//! dropped and counted; the request loop never waits. The sender gives slots back as
//! it takes records off. The same design as the InfluxDB sink's queue, with a smaller
//! record (no timestamp, no error text: StatsD carries neither).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::event::{Endpoint, EndpointId, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::sinks::lock;

/// One request, as queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) endpoint: EndpointId,
    pub(crate) success: bool,
    /// Whole milliseconds, truncated (LoadDensity's `int(response_time)`).
    pub(crate) latency_ms: u64,
    pub(crate) response_bytes: u64,
}

/// An endpoint a shard saw for the first time: the sender prepares its lines.
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

/// The listener attached to the request event.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) shards: Box<[Padded<Mutex<Shard>>]>,
    /// Requests accepted and not yet taken off by the sender.
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

    /// Gives `n` slots back: their records were taken off.
    pub(crate) fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
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
                Counters::add(&self.counters.requests_dropped, 1);
                Counters::add(&self.counters.metrics_dropped, 3);
                return;
            }
        }
        shard.reserved -= 1;
        let record = Record {
            endpoint: event.endpoint.id,
            success: event.outcome.is_success(),
            latency_ms: u64::try_from(event.response_time.as_millis()).unwrap_or(u64::MAX),
            response_bytes: event.response_length,
        };
        shard.push(event.endpoint, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome};
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
                response_time: Duration::from_micros(2_999),
                response_length: 10,
                status: Some(500),
                outcome: if i % 2 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Failure("boom")
                },
            });
        }
        assert_eq!(Counters::get(&counters.requests_dropped), 2);
        assert_eq!(Counters::get(&counters.metrics_dropped), 6);
        let shard = lock(&queue.shards[shard_index()].0);
        assert_eq!(shard.records.len(), 3);
        assert_eq!(shard.new_endpoints.len(), 1);
        assert_eq!(shard.records[0].latency_ms, 2);
        assert!(!shard.records[1].success);
    }
}
