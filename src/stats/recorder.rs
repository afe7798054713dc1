//! The statistics listener.
//!
//! Each worker thread records into its own shard (an uncontended mutex around a vector
//! indexed by [`EndpointId`]); readers merge the shards. No per-request message is sent
//! anywhere and no sample is kept: latencies go into HDR histograms (µs, 3 significant
//! digits), which merge exactly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::timeline::TimelineEntry;
use crate::event::{Outcome, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};

/// How many distinct error texts are kept per endpoint; further ones are counted as `other errors`.
const MAX_ERROR_KINDS: usize = 100;
const OTHER_ERRORS: &str = "(other errors)";
/// How many of the newest timeline entries keep the wall-clock time they ended at
/// (for the live dashboard's last 120 s).
pub const RECENT_SECONDS: usize = 120;

/// Statistics of one endpoint (request type, name).
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Request type, e.g. `GET`.
    pub request_type: Arc<str>,
    /// Endpoint name.
    pub name: Arc<str>,
    /// Response times in microseconds, successes and failures alike (as Locust counts them).
    pub latency_us: Histogram<u64>,
    /// Number of failed requests.
    pub failures: u64,
    /// Sum of response body lengths.
    pub response_bytes: u64,
    /// Failure texts and how often each occurred.
    pub errors: HashMap<Box<str>, u64>,
    /// Requests that retried a failed one (`retry`); counted in the requests too.
    pub retries: u64,
}

impl EndpointStats {
    fn new(request_type: Arc<str>, name: Arc<str>) -> Self {
        Self {
            request_type,
            name,
            latency_us: new_histogram(),
            failures: 0,
            response_bytes: 0,
            errors: HashMap::new(),
            retries: 0,
        }
    }

    /// Number of requests, successes and failures.
    pub fn count(&self) -> u64 {
        self.latency_us.len()
    }

    fn record(&mut self, event: &RequestEvent<'_>) {
        let micros = u64::try_from(event.response_time.as_micros()).unwrap_or(u64::MAX);
        // With auto-resize on, recording cannot fail for a positive value.
        let _ = self.latency_us.record(micros.max(1));
        self.response_bytes += event.response_length;
        self.retries += u64::from(event.retry);
        if let Outcome::Failure(text) = event.outcome {
            self.failures += 1;
            self.count_error(text, 1);
        }
    }

    fn count_error(&mut self, text: &str, n: u64) {
        if let Some(count) = self.errors.get_mut(text) {
            *count += n;
        } else if self.errors.len() < MAX_ERROR_KINDS {
            self.errors.insert(text.into(), n);
        } else {
            *self.errors.entry(OTHER_ERRORS.into()).or_default() += n;
        }
    }

    fn merge(&mut self, other: &EndpointStats) {
        // Both histograms auto-resize, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.failures += other.failures;
        self.response_bytes += other.response_bytes;
        self.retries += other.retries;
        for (text, n) in &other.errors {
            self.count_error(text, *n);
        }
    }
}

/// A new latency histogram: µs, 3 significant digits, growing as needed.
pub(crate) fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is always a valid precision.
    #[allow(clippy::unwrap_used)]
    Histogram::new(3).unwrap()
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<EndpointStats>>,
}

/// An endpoint's counters, summed over the shards ([`StatsRecorder::endpoint_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EndpointTotals {
    /// Requests, successes and failures.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Sum of the latencies, µs (from the histograms: within their precision).
    pub latency_sum_us: f64,
}

/// Merged statistics at one point in time.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    /// Per endpoint, ordered by (name, request type).
    pub endpoints: Vec<EndpointStats>,
    /// Time the recorded tests ran, added up.
    pub duration: Duration,
    /// One entry per second of the recorded tests.
    pub timeline: Vec<TimelineEntry>,
    /// Open-model iterations that could not start.
    pub dropped_iterations: u64,
}

impl StatsSnapshot {
    /// All endpoints merged into one, named `Aggregated`.
    pub fn aggregated(&self) -> EndpointStats {
        let mut total = EndpointStats::new("".into(), "Aggregated".into());
        for endpoint in &self.endpoints {
            total.merge(endpoint);
        }
        total
    }
}

/// The statistics listener. Attach it to a [`crate::ListenerRegistry`]; read it with
/// [`StatsRecorder::snapshot`].
pub struct StatsRecorder {
    shards: Box<[Padded<Mutex<Shard>>]>,
    duration: Mutex<Duration>,
    timeline: Mutex<Timeline>,
    dropped_iterations: AtomicU64,
}

/// The timeline, and when its newest entries ended.
#[derive(Default)]
struct Timeline {
    entries: Vec<TimelineEntry>,
    recent_ends: VecDeque<SystemTime>,
}

impl Default for StatsRecorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            duration: Mutex::default(),
            timeline: Mutex::default(),
            dropped_iterations: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for StatsRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsRecorder").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StatsRecorder {
    /// Adds the wall time of one test run, for requests per second.
    pub fn add_duration(&self, elapsed: Duration) {
        *lock(&self.duration) += elapsed;
    }

    /// Forgets everything recorded (`LD_clear_records`).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            lock(&shard.0).slots.clear();
        }
        *lock(&self.duration) = Duration::ZERO;
        *lock(&self.timeline) = Timeline::default();
        self.dropped_iterations.store(0, Ordering::Relaxed);
    }

    /// Forgets the recorded requests but keeps the timeline (the web UI's reset, as
    /// Locust's `/stats/reset`: the charts go on, the table starts again).
    pub fn reset_counts(&self) {
        for shard in self.shards.iter() {
            lock(&shard.0).slots.clear();
        }
        *lock(&self.duration) = Duration::ZERO;
        self.dropped_iterations.store(0, Ordering::Relaxed);
    }

    /// Adds open-model iterations that could not start (`max_users` all busy).
    pub fn add_dropped_iterations(&self, dropped: u64) {
        self.dropped_iterations
            .fetch_add(dropped, Ordering::Relaxed);
    }

    /// All latencies merged into one histogram, and the failure count.
    pub fn aggregate_latency(&self) -> (Histogram<u64>, u64) {
        let mut merged = new_histogram();
        let mut failures = 0;
        for shard in self.shards.iter() {
            for stats in lock(&shard.0).slots.iter().flatten() {
                let _ = merged.add(&stats.latency_us);
                failures += stats.failures;
            }
        }
        (merged, failures)
    }

    /// Appends a timeline entry.
    pub fn push_timeline(&self, entry: TimelineEntry) {
        let mut timeline = lock(&self.timeline);
        timeline.entries.push(entry);
        if timeline.recent_ends.len() == RECENT_SECONDS {
            timeline.recent_ends.pop_front();
        }
        timeline.recent_ends.push_back(SystemTime::now());
    }

    /// The `t` of the next timeline entry: tests run one after another on one axis.
    pub fn timeline_next_second(&self) -> u64 {
        lock(&self.timeline).entries.last().map_or(0, |e| e.t + 1)
    }

    /// The newest `n` timeline entries (at most [`RECENT_SECONDS`]), oldest first,
    /// each with the wall-clock time it ended at. Copies only those.
    pub fn recent_timeline(&self, n: usize) -> Vec<(TimelineEntry, SystemTime)> {
        let timeline = lock(&self.timeline);
        let n = n.min(timeline.recent_ends.len());
        let entries = &timeline.entries[timeline.entries.len() - n..];
        let ends = timeline.recent_ends.range(timeline.recent_ends.len() - n..);
        entries.iter().cloned().zip(ends.copied()).collect()
    }

    /// The endpoints merged over the shards, ordered by (name, request type): a
    /// snapshot without the timeline.
    pub fn endpoints(&self) -> Vec<EndpointStats> {
        let mut merged: BTreeMap<(Arc<str>, Arc<str>), EndpointStats> = BTreeMap::new();
        for shard in self.shards.iter() {
            let shard = lock(&shard.0);
            for stats in shard.slots.iter().flatten() {
                merged
                    .entry((stats.name.clone(), stats.request_type.clone()))
                    .and_modify(|m| m.merge(stats))
                    .or_insert_with(|| stats.clone());
            }
        }
        merged.into_values().collect()
    }

    /// Per endpoint (request type, name, over all shards): requests, failures and the
    /// sum of the latencies in µs, without cloning a histogram.
    pub fn endpoint_totals(&self) -> HashMap<(Arc<str>, Arc<str>), EndpointTotals> {
        let mut totals: HashMap<(Arc<str>, Arc<str>), EndpointTotals> = HashMap::new();
        for shard in self.shards.iter() {
            for stats in lock(&shard.0).slots.iter().flatten() {
                let entry = totals
                    .entry((stats.request_type.clone(), stats.name.clone()))
                    .or_default();
                let count = stats.count();
                entry.requests += count;
                entry.failures += stats.failures;
                if count > 0 {
                    entry.latency_sum_us += stats.latency_us.mean() * count as f64;
                }
            }
        }
        totals
    }

    /// Time the recorded tests ran, added up (the running test is not in it yet).
    pub fn duration(&self) -> Duration {
        *lock(&self.duration)
    }

    /// Open-model iterations that could not start.
    pub fn dropped_iterations(&self) -> u64 {
        self.dropped_iterations.load(Ordering::Relaxed)
    }

    /// Merges all shards.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            endpoints: self.endpoints(),
            duration: *lock(&self.duration),
            timeline: lock(&self.timeline).entries.clone(),
            dropped_iterations: self.dropped_iterations.load(Ordering::Relaxed),
        }
    }

    /// Total requests and failures so far, without cloning histograms.
    pub fn counts(&self) -> (u64, u64) {
        let mut requests = 0;
        let mut failures = 0;
        for shard in self.shards.iter() {
            for stats in lock(&shard.0).slots.iter().flatten() {
                requests += stats.count();
                failures += stats.failures;
            }
        }
        (requests, failures)
    }
}

impl RequestListener for StatsRecorder {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let slot = event.endpoint.id.0 as usize;
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.slots.len() <= slot {
            shard.slots.resize_with(slot + 1, || None);
        }
        shard.slots[slot]
            .get_or_insert_with(|| {
                EndpointStats::new(
                    event.endpoint.request_type.clone(),
                    event.endpoint.name.clone(),
                )
            })
            .record(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndpointInterner;
    use std::time::SystemTime;

    fn event<'a>(
        endpoint: &'a crate::event::Endpoint,
        ms: u64,
        outcome: Outcome<'a>,
    ) -> RequestEvent<'a> {
        RequestEvent {
            endpoint,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(ms),
            response_length: 10,
            status: Some(200),
            outcome,
            url: None,
            response: None,
            retry: false,
        }
    }

    #[test]
    fn records_from_many_threads_and_merges() {
        let interner = EndpointInterner::default();
        let a = interner.intern("GET", "/a");
        let b = interner.intern("GET", "/b");
        let stats = Arc::new(StatsRecorder::default());
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let stats = stats.clone();
                let (a, b) = (a.clone(), b.clone());
                scope.spawn(move || {
                    for i in 0..1000u64 {
                        stats.on_request(&event(&a, 1 + (i % 100), Outcome::Success));
                        if i % 10 == t {
                            stats.on_request(&event(&b, 5, Outcome::Failure("HTTP 500")));
                        }
                    }
                });
            }
        });
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.endpoints.len(), 2);
        let ea = &snapshot.endpoints[0];
        assert_eq!(&*ea.name, "/a");
        assert_eq!(ea.count(), 4000);
        assert_eq!(ea.failures, 0);
        let eb = &snapshot.endpoints[1];
        assert_eq!(eb.count(), 400);
        assert_eq!(eb.failures, 400);
        assert_eq!(eb.errors.get("HTTP 500"), Some(&400));
        let total = snapshot.aggregated();
        assert_eq!(total.count(), 4400);
        // p50 of 1..=100 ms is about 50 ms (within HDR precision).
        let p50 = ea.latency_us.value_at_quantile(0.5);
        assert!((49_000..=51_100).contains(&p50), "p50 {p50}");
        assert_eq!(stats.counts(), (4400, 400));
        stats.clear();
        assert_eq!(stats.counts(), (0, 0));
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut e = EndpointStats::new("GET".into(), "/".into());
        for i in 0..(MAX_ERROR_KINDS + 50) {
            e.count_error(&format!("error {i}"), 1);
        }
        assert_eq!(e.errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(e.errors.get(OTHER_ERRORS), Some(&50));
    }
}
