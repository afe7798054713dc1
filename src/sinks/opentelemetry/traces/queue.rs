//! The request path of the traces exporter: decides per request whether it becomes a
//! span, and copies what the span needs into a bounded, per-thread shard.
//!
//! The sampling decision is one step of a per-thread generator and a comparison, made
//! before anything else; a request that is not kept costs nothing more. A kept one
//! takes one uncontended lock (its thread's shard) and pushes a small fixed-size
//! record; its URL, when the event has one, is appended to the shard's text buffer
//! unless it repeats the shard's last one, so nothing is allocated per request once
//! the buffers have grown. No counter shared between threads is touched per request:
//! the exporter counts the spans it takes off the shards. Shards reserve
//! slots of the shared budget (`max_queue_size`) [`RESERVE`] at a time, as the
//! InfluxDB sink's do; when it is spent the span is dropped and counted, and the
//! request goes on.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use crate::event::{Endpoint, EndpointId, Outcome, RequestEvent, TraceIds};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::sinks::lock;

/// Slots a shard takes from the shared budget at once.
pub(super) const RESERVE: usize = 256;
/// Longest failure text kept in a span (longer ones are cut at a character boundary).
const MAX_ERROR: usize = 512;

/// One kept request: what its span needs, without its endpoint's strings.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) endpoint: EndpointId,
    /// Start, in nanoseconds since the Unix epoch.
    pub(super) start_ns: u64,
    /// Response time in nanoseconds.
    pub(super) duration_ns: u64,
    pub(super) response_length: u64,
    /// The protocol status, 0 when none.
    pub(super) status: u16,
    /// The failure text, on failure only.
    pub(super) failure: Option<Box<str>>,
    /// The URL's place in the shard's `urls`, `(start, length)`; length 0: none.
    pub(super) url: (u32, u32),
    /// The trace and span ids the request was sent with (`propagate`); `None`: the
    /// exporter draws its own.
    pub(super) ids: Option<(u128, u64)>,
}

/// An endpoint a shard saw for the first time.
#[derive(Debug)]
pub(super) struct NewEndpoint {
    pub(super) id: EndpointId,
    pub(super) request_type: Arc<str>,
    pub(super) name: Arc<str>,
}

/// One thread's spans waiting for the exporter.
#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) records: Vec<Record>,
    /// The URLs of `records`, end to end.
    pub(super) urls: String,
    pub(super) new_endpoints: Vec<NewEndpoint>,
    seen: Vec<bool>,
    /// Budget slots held and not used yet.
    reserved: usize,
    /// The place in `urls` of the last URL appended, `(start, length)`: a record whose
    /// URL is the same text points there instead of appending it again.
    last_url: (u32, u32),
}

/// What the exporter counts; reported at stop and in the summary.
#[derive(Debug, Default)]
pub(super) struct TraceStats {
    /// Requests kept by the sampler and queued (a span each), counted as the exporter
    /// takes them off the shards.
    pub(super) spans_sampled: AtomicU64,
    /// Spans the collector accepted.
    pub(super) spans_exported: AtomicU64,
    /// Spans dropped because the queue was full (a slow or absent collector).
    pub(super) spans_dropped: AtomicU64,
    /// Spans whose export failed, or that were still queued when the stop's time ran out.
    pub(super) spans_failed: AtomicU64,
    /// Successful exports.
    pub(super) exports: AtomicU64,
    /// Failed exports.
    pub(super) export_errors: AtomicU64,
    pub(super) last_error: Mutex<Option<String>>,
}

impl TraceStats {
    pub(super) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(super) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The sampler: keeps a request when a uniform 64-bit draw is below `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sampler {
    /// Every request (ratio 1.0).
    All,
    /// No request (ratio 0.0).
    None,
    /// Draws below this keep the request.
    Below(u64),
}

impl Sampler {
    /// The sampler of `ratio` (checked to be in 0..=1 before).
    pub(super) fn new(ratio: f64) -> Self {
        if ratio >= 1.0 {
            Self::All
        } else if ratio <= 0.0 {
            Self::None
        } else {
            // The cast saturates; `ratio < 1` keeps it below 2^64.
            Self::Below((ratio * 18_446_744_073_709_551_616.0) as u64)
        }
    }

    #[inline]
    fn keep(self) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Below(threshold) => next_random() < threshold,
        }
    }
}

thread_local! {
    /// The thread's sampling generator (splitmix64); 0 until seeded.
    static SAMPLER_STATE: Cell<u64> = const { Cell::new(0) };
}

/// The next draw of the thread's generator: a handful of arithmetic operations.
#[inline]
fn next_random() -> u64 {
    SAMPLER_STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = seed();
        }
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cold]
fn seed() -> u64 {
    rand::random::<u64>() | 1
}

/// The listener attached to the request event while the exporter runs.
#[derive(Debug)]
pub(super) struct SpanQueue {
    pub(super) shards: Box<[Padded<Mutex<Shard>>]>,
    sampler: Sampler,
    /// Spans accepted and not yet exported or given up.
    pending: AtomicUsize,
    max_pending: usize,
    pub(super) stats: Arc<TraceStats>,
}

impl SpanQueue {
    pub(super) fn new(sampler: Sampler, max_pending: usize, stats: Arc<TraceStats>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            sampler,
            pending: AtomicUsize::new(0),
            max_pending,
            stats,
        }
    }

    /// Takes up to `wanted` slots of the budget; returns how many it got.
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

    /// Gives `n` slots back: their spans were exported or given up.
    pub(super) fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Shard {
    /// Where `url` (not empty) is in `urls`: the last URL's place when it is the same
    /// text, otherwise its place once appended; `(0, 0)` when the buffer is past 4 GiB.
    #[inline]
    fn url_place(&mut self, url: &str) -> (u32, u32) {
        let (start, length) = (self.last_url.0 as usize, self.last_url.1 as usize);
        if length == url.len() && self.urls.get(start..start + length) == Some(url) {
            return self.last_url;
        }
        let start = u32::try_from(self.urls.len()).unwrap_or(u32::MAX);
        let length = u32::try_from(url.len()).unwrap_or(0);
        if start == u32::MAX || length == 0 {
            return (0, 0);
        }
        self.urls.push_str(url);
        self.last_url = (start, length);
        self.last_url
    }

    #[inline]
    fn announce(&mut self, endpoint: &Endpoint) {
        let index = endpoint.id.0 as usize;
        if self.seen.get(index).copied().unwrap_or(false) {
            return;
        }
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
}

/// `text` cut to at most [`MAX_ERROR`] bytes at a character boundary.
fn truncate(text: &str) -> &str {
    if text.len() <= MAX_ERROR {
        return text;
    }
    let mut end = MAX_ERROR;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl RequestListener for SpanQueue {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        if self.sampler.keep() {
            self.push(event, None);
        }
    }

    /// A request sent with a `traceparent` (`propagate`): the engine already sampled
    /// it, and its span takes the ids that were sent.
    fn on_traced_request(&self, event: &RequestEvent<'_>, trace: TraceIds) {
        if trace.sampled {
            self.push(event, Some((trace.trace_id, trace.span_id)));
        }
    }
}

impl SpanQueue {
    /// Queues the span of a kept request, or drops and counts it when the budget is
    /// spent.
    #[inline]
    fn push(&self, event: &RequestEvent<'_>, ids: Option<(u128, u64)>) {
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.reserved == 0 {
            shard.reserved = self.reserve(RESERVE);
            if shard.reserved == 0 {
                drop(shard);
                self.stats.spans_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        shard.reserved -= 1;
        shard.announce(event.endpoint);
        let url = match event.url {
            Some(url) if !url.is_empty() => shard.url_place(url),
            _ => (0, 0),
        };
        let record = Record {
            endpoint: event.endpoint.id,
            start_ns: event
                .start_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            duration_ns: u64::try_from(event.response_time.as_nanos()).unwrap_or(u64::MAX),
            response_length: event.response_length,
            status: event.status.unwrap_or(0),
            failure: match event.outcome {
                Outcome::Success => None,
                Outcome::Failure(text) => Some(truncate(text).into()),
            },
            url,
            ids,
        };
        shard.records.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndpointInterner;
    use std::time::{Duration, SystemTime};

    fn event<'a>(endpoint: &'a Endpoint, url: Option<&'a str>) -> RequestEvent<'a> {
        RequestEvent {
            endpoint,
            url,
            response: None,
            retry: false,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(3),
            response_length: 42,
            status: Some(503),
            outcome: Outcome::Failure("HTTP 503 Service Unavailable"),
        }
    }

    #[test]
    fn keeps_what_a_span_needs_within_the_budget() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/x");
        let stats = Arc::new(TraceStats::default());
        let queue = SpanQueue::new(Sampler::All, 3, stats.clone());
        for i in 0..5 {
            let url = format!("http://127.0.0.1:1/x?{i}");
            queue.on_request(&event(&endpoint, Some(&url)));
        }
        assert_eq!(TraceStats::get(&stats.spans_dropped), 2);
        let shard = lock(&queue.shards[shard_index()].0);
        assert_eq!(shard.records.len(), 3);
        assert_eq!(shard.new_endpoints.len(), 1);
        let (start, length) = shard.records[2].url;
        assert_eq!(
            &shard.urls[start as usize..(start + length) as usize],
            "http://127.0.0.1:1/x?2"
        );
        assert_eq!(shard.records[0].status, 503);
        assert_eq!(
            shard.records[0].failure.as_deref(),
            Some("HTTP 503 Service Unavailable")
        );
        assert_eq!(shard.records[0].duration_ns, 3_000_000);
    }

    #[test]
    fn traced_requests_keep_their_ids_and_sampling() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/t");
        let stats = Arc::new(TraceStats::default());
        // The queue's own sampler would keep nothing: the engine's decision rules.
        let queue = SpanQueue::new(Sampler::None, 10, stats.clone());
        let sent = TraceIds {
            trace_id: 0x1234,
            span_id: 0x56,
            sampled: true,
        };
        queue.on_traced_request(&event(&endpoint, None), sent);
        queue.on_traced_request(
            &event(&endpoint, None),
            TraceIds {
                sampled: false,
                ..sent
            },
        );
        queue.on_request(&event(&endpoint, None));
        let shard = lock(&queue.shards[shard_index()].0);
        assert_eq!(shard.records.len(), 1);
        assert_eq!(shard.records[0].ids, Some((0x1234, 0x56)));
    }

    #[test]
    fn a_repeated_url_is_kept_once_per_run_of_repeats() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/r");
        let queue = SpanQueue::new(Sampler::All, 10, Arc::new(TraceStats::default()));
        for url in [
            "http://h/a",
            "http://h/a",
            "http://h/b",
            "http://h/a",
            "http://h/a",
        ] {
            queue.on_request(&event(&endpoint, Some(url)));
        }
        let shard = lock(&queue.shards[shard_index()].0);
        assert_eq!(shard.urls, "http://h/ahttp://h/bhttp://h/a");
        let text = |i: usize| {
            let (start, length) = shard.records[i].url;
            &shard.urls[start as usize..(start + length) as usize]
        };
        let urls: Vec<&str> = (0..5).map(text).collect();
        assert_eq!(
            urls,
            [
                "http://h/a",
                "http://h/a",
                "http://h/b",
                "http://h/a",
                "http://h/a"
            ]
        );
        assert_eq!(shard.records[0].url, shard.records[1].url);
    }

    #[test]
    fn the_sampler_keeps_about_its_ratio() {
        assert_eq!(Sampler::new(1.0), Sampler::All);
        assert_eq!(Sampler::new(0.0), Sampler::None);
        let sampler = Sampler::new(0.01);
        let kept = (0..200_000).filter(|_| sampler.keep()).count();
        // Expected 2000, standard deviation ~44.5: ±10 deviations never flakes.
        assert!((1555..=2445).contains(&kept), "kept {kept}");
        assert!((0..1000).all(|_| Sampler::All.keep()));
        assert!(!(0..1000).any(|_| Sampler::None.keep()));
    }

    #[test]
    fn long_failures_are_cut_at_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_ERROR && cut.len() >= MAX_ERROR - 1);
        assert!(long.starts_with(cut));
    }
}
