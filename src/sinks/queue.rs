//! The push sinks' hot path: a bounded, per-thread sharded queue of small records, one
//! per request, that the sink's thread drains.
//!
//! `on_request` takes its thread's shard (one uncontended lock) and pushes a record,
//! paid from a slot the shard reserved from the shared budget. A shard reserves
//! [`RESERVE`] slots at a time, so the shared counter is touched once per [`RESERVE`]
//! requests, not per request. When the budget is spent the record is dropped and counted
//! (by the sink, see [`QueueRecord::count_drop`]); the request loop never waits. The
//! sink gives slots back ([`ShardedQueue::release`]) when it is done with their records:
//! when they are sent or given up, or as soon as they are taken off, as it chooses.
//!
//! What differs between sinks is the record built from a [`RequestEvent`] and the
//! counters a drop is counted in: both come from the record type, through
//! [`QueueRecord`].
//!
//! The sink's thread warns about drops and errors at most once every [`WARN_EVERY`],
//! through a [`RateLimitedWarning`].

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::event::{Endpoint, EndpointId, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::sinks::lock;

/// Slots a shard takes from the shared budget at once.
pub(crate) const RESERVE: usize = 256;

/// What one sink queues per request, and how it counts a request dropped because its
/// budget was spent.
pub(crate) trait QueueRecord: Debug + Send + Sized + 'static {
    /// The sink's counters, where drops are counted.
    type Counters: Debug + Send + Sync + 'static;

    /// The record of one request; called under the shard's lock, so keep it cheap.
    fn from_event(event: &RequestEvent<'_>) -> Self;

    /// Counts one request dropped because the budget was spent.
    fn count_drop(counters: &Self::Counters);
}

/// An endpoint a shard saw for the first time: the sink prepares what it sends for it.
#[derive(Debug)]
pub(crate) struct NewEndpoint {
    /// The endpoint's id, as the records carry it.
    pub(crate) id: EndpointId,
    /// The request type (e.g. the HTTP method).
    pub(crate) request_type: Arc<str>,
    /// The endpoint's name.
    pub(crate) name: Arc<str>,
}

/// One thread's queue.
#[derive(Debug)]
struct Shard<R> {
    /// Records not yet taken off.
    records: Vec<R>,
    /// Endpoints announced before their first record.
    new_endpoints: Vec<NewEndpoint>,
    /// Endpoints this shard has announced, by id.
    seen: Vec<bool>,
    /// Slots of the budget this shard holds and has not used yet.
    reserved: usize,
}

impl<R> Default for Shard<R> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            new_endpoints: Vec::new(),
            seen: Vec::new(),
            reserved: 0,
        }
    }
}

impl<R> Shard<R> {
    #[inline]
    fn push(&mut self, endpoint: &Endpoint, record: R) {
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

/// The buffers the sink's thread drains shards into, kept between drains so that a
/// drain allocates nothing once they have grown.
#[derive(Debug)]
pub(crate) struct DrainBuffers<R> {
    records: Vec<R>,
    new_endpoints: Vec<NewEndpoint>,
}

impl<R> Default for DrainBuffers<R> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            new_endpoints: Vec::new(),
        }
    }
}

/// The listener attached to the request event: records of type `R`, bounded by a
/// budget of pending records.
#[derive(Debug)]
pub(crate) struct ShardedQueue<R: QueueRecord> {
    shards: Box<[Padded<Mutex<Shard<R>>>]>,
    /// Records accepted and not yet given back (unused reservations included).
    pending: AtomicUsize,
    max_pending: usize,
    /// The sink's counters.
    pub(crate) counters: Arc<R::Counters>,
}

impl<R: QueueRecord> ShardedQueue<R> {
    /// An empty queue holding at most `max_pending` records.
    pub(crate) fn new(max_pending: usize, counters: Arc<R::Counters>) -> Self {
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

    /// Gives `n` slots back: the sink is done with their records.
    pub(crate) fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }

    /// True when no slot is left.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= self.max_pending
    }

    /// Empties every shard in turn: takes its records and new endpoints into `buffers`
    /// (under the shard's lock, briefly) and then, the lock released, hands them to
    /// `each` (endpoints first announced, then the records). Shards holding nothing are
    /// skipped. Slots are not given back here.
    pub(crate) fn drain(
        &self,
        buffers: &mut DrainBuffers<R>,
        mut each: impl FnMut(&[NewEndpoint], &[R]),
    ) {
        for shard in self.shards.iter() {
            {
                let mut shard = lock(&shard.0);
                if shard.records.is_empty() && shard.new_endpoints.is_empty() {
                    continue;
                }
                std::mem::swap(&mut shard.records, &mut buffers.records);
                buffers.new_endpoints.append(&mut shard.new_endpoints);
            }
            each(&buffers.new_endpoints, &buffers.records);
            buffers.new_endpoints.clear();
            buffers.records.clear();
        }
    }
}

impl<R: QueueRecord> RequestListener for ShardedQueue<R> {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.reserved == 0 {
            shard.reserved = self.reserve(RESERVE);
            if shard.reserved == 0 {
                drop(shard);
                R::count_drop(&self.counters);
                return;
            }
        }
        shard.reserved -= 1;
        shard.push(event.endpoint, R::from_event(event));
    }
}

/// The least time between two warnings about a sink's drops and errors.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Drops and errors counted since the last warning, when a warning is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Warning {
    /// Drops since the last warning.
    pub(crate) dropped: u64,
    /// Errors since the last warning.
    pub(crate) errors: u64,
    /// Drops in all.
    pub(crate) total_dropped: u64,
    /// Errors in all.
    pub(crate) total_errors: u64,
    /// Whole seconds since the last warning ([`WARN_EVERY`] for the first).
    pub(crate) seconds: u64,
}

/// Lets a sink's thread warn about drops and errors at most once every
/// [`WARN_EVERY`], and only when they grew.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedWarning {
    last: Option<Instant>,
    /// The totals the last warning told.
    warned: (u64, u64),
}

impl RateLimitedWarning {
    /// Given the totals of drops and errors, what to warn about now, if anything.
    pub(crate) fn due(&mut self, total_dropped: u64, total_errors: u64) -> Option<Warning> {
        let now = Instant::now();
        if self.last.is_some_and(|at| now - at < WARN_EVERY) {
            return None;
        }
        if (total_dropped, total_errors) == self.warned {
            return None;
        }
        let warning = Warning {
            dropped: total_dropped - self.warned.0,
            errors: total_errors - self.warned.1,
            total_dropped,
            total_errors,
            seconds: self.last.map_or(WARN_EVERY, |at| now - at).as_secs(),
        };
        self.warned = (total_dropped, total_errors);
        self.last = Some(now);
        Some(warning)
    }
}

/// `"; last error: …"`, to end a warning with, or nothing when no error was kept.
pub(crate) fn last_error_suffix(last_error: &Mutex<Option<String>>) -> String {
    lock(last_error)
        .as_ref()
        .map_or(String::new(), |e| format!("; last error: {e}"))
}

/// Test help: fires `n` requests of `GET /x` that each take `response_time`, every
/// second one failing with `"boom"`.
#[cfg(test)]
pub(crate) fn fire<R: QueueRecord>(queue: &ShardedQueue<R>, n: usize, response_time: Duration) {
    use crate::event::{EndpointInterner, Outcome};
    let interner = EndpointInterner::default();
    let endpoint = interner.intern("GET", "/x");
    for i in 0..n {
        queue.on_request(&RequestEvent {
            endpoint: &endpoint,
            url: None,
            response: None,
            retry: false,
            start_time: std::time::SystemTime::now(),
            response_time,
            response_length: 10,
            status: Some(500),
            outcome: if i % 2 == 0 {
                Outcome::Success
            } else {
                Outcome::Failure("boom")
            },
        });
    }
}

/// Test help: drains `queue`; returns how many endpoints were announced and `f` of
/// each record.
#[cfg(test)]
pub(crate) fn drain_all<R: QueueRecord, T>(
    queue: &ShardedQueue<R>,
    f: impl Fn(&R) -> T,
) -> (usize, Vec<T>) {
    let mut announced = 0;
    let mut out = Vec::new();
    queue.drain(&mut DrainBuffers::default(), |endpoints, records| {
        announced += endpoints.len();
        out.extend(records.iter().map(&f));
    });
    (announced, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome};
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, SystemTime};

    #[derive(Debug)]
    struct Latency(u128);

    impl QueueRecord for Latency {
        type Counters = AtomicU64;

        fn from_event(event: &RequestEvent<'_>) -> Self {
            Latency(event.response_time.as_millis())
        }

        fn count_drop(counters: &AtomicU64) {
            counters.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn success(endpoint: &Endpoint) -> RequestEvent<'_> {
        RequestEvent {
            endpoint,
            url: None,
            response: None,
            retry: false,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(1),
            response_length: 10,
            status: Some(200),
            outcome: Outcome::Success,
        }
    }

    /// Records in the calling thread's shard.
    fn queued(queue: &ShardedQueue<Latency>) -> usize {
        lock(&queue.shards[shard_index()].0).records.len()
    }

    #[test]
    fn a_shard_takes_the_shared_budget_a_reservation_at_a_time() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/y");
        let dropped = Arc::new(AtomicU64::new(0));
        let budget = 3 * RESERVE + 7;
        let queue = ShardedQueue::<Latency>::new(budget, dropped.clone());
        queue.on_request(&success(&endpoint));
        assert_eq!(queue.pending.load(Ordering::Relaxed), RESERVE);
        for _ in 1..RESERVE {
            queue.on_request(&success(&endpoint));
        }
        // The first reservation is used up, and no other taken.
        assert_eq!(queue.pending.load(Ordering::Relaxed), RESERVE);
        queue.on_request(&success(&endpoint));
        assert_eq!(queue.pending.load(Ordering::Relaxed), 2 * RESERVE);
        // Every slot of the budget is usable; the next record is dropped.
        for _ in RESERVE + 1..budget {
            queue.on_request(&success(&endpoint));
        }
        assert_eq!(queue.pending.load(Ordering::Relaxed), budget);
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
        assert!(queue.is_full());
        queue.on_request(&success(&endpoint));
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert_eq!(queued(&queue), budget);
        // Slots given back are taken again.
        queue.release(5);
        assert!(!queue.is_full());
        for _ in 0..6 {
            queue.on_request(&success(&endpoint));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        assert_eq!(queued(&queue), budget + 5);
    }

    #[test]
    fn a_drain_hands_over_endpoints_then_records_and_empties_the_shards() {
        let interner = EndpointInterner::default();
        let x = interner.intern("GET", "/x");
        let y = interner.intern("POST", "/y");
        let queue = ShardedQueue::<Latency>::new(100, Arc::default());
        for endpoint in [&x, &y, &x] {
            queue.on_request(&success(endpoint));
        }
        let mut buffers = DrainBuffers::default();
        let mut seen = Vec::new();
        queue.drain(&mut buffers, |endpoints, records| {
            let names: Vec<_> = endpoints.iter().map(|e| e.name.to_string()).collect();
            let latencies: Vec<_> = records.iter().map(|r| r.0).collect();
            seen.push((names, latencies));
        });
        assert_eq!(
            seen,
            [(vec!["/x".to_string(), "/y".to_string()], vec![1, 1, 1])]
        );
        // Nothing is left, and endpoints are announced once.
        queue.on_request(&success(&x));
        let mut seen = Vec::new();
        queue.drain(&mut buffers, |endpoints, records| {
            seen.push((endpoints.len(), records.len()));
        });
        assert_eq!(seen, [(0, 1)]);
        // The drain gives no slot back (the shard reserved the whole budget of 100).
        assert!(queue.is_full());
    }

    #[test]
    fn warns_when_counts_grew_and_at_most_every_ten_seconds() {
        let mut warning = RateLimitedWarning::default();
        assert_eq!(warning.due(0, 0), None);
        let first = warning.due(3, 1).expect("the first warning is due");
        assert_eq!((first.dropped, first.errors, first.seconds), (3, 1, 10));
        assert_eq!(warning.due(5, 1), None, "within ten seconds");
        warning.last = Instant::now().checked_sub(WARN_EVERY);
        let next = warning.due(5, 1).expect("due again");
        assert_eq!((next.dropped, next.errors), (2, 0));
        assert_eq!((next.total_dropped, next.total_errors), (5, 1));
        warning.last = Instant::now().checked_sub(WARN_EVERY);
        assert_eq!(warning.due(5, 1), None, "nothing grew");
    }
}
