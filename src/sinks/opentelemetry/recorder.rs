//! The exporter's listener: records every request into the SDK's three instruments
//! through handles bound once per (endpoint, outcome), in per-thread batches.
//!
//! A bound handle resolves its attribute set (`request_type`, `name`, `outcome`) when
//! it is created, so recording is a direct update of the SDK's aggregator: no
//! attribute vector, no hashing, no map lookup. But the SDK's aggregators are shared
//! by every thread (a counter is an atomic, a histogram sits behind a `Mutex`), so
//! two worker threads recording each request straight into them would pass their
//! cache lines back and forth on every request. Each thread therefore appends its
//! requests to its own shard ([`crate::shard`]: an uncontended lock) and replays them
//! into the SDK [`BATCH`] at a time; before every collection (the periodic export,
//! a flush, the shutdown) an observable instrument's callback replays what every shard
//! still holds, so an export misses nothing. The callback observes nothing, so that
//! instrument is never exported.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::ArcSwap;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, Counter, Histogram, Meter, MeterProvider as _, ObservableGauge,
};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::event::{Endpoint, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::sinks::lock;
use crate::sinks::prometheus::{BYTES_BUCKETS, LATENCY_BUCKETS_MS};

/// Name of the request counter.
pub const REQUESTS: &str = "loaddensity.requests";
/// Name of the latency histogram.
pub const LATENCY: &str = "loaddensity.request.latency";
/// Name of the response size histogram.
pub const RESPONSE_SIZE: &str = "loaddensity.response.size";
/// The instrumentation scope's name.
pub const SCOPE: &str = "loaddensity";
/// The instrument whose callback replays the shards before a collection; it observes
/// nothing and is never exported.
const REPLAY: &str = "loaddensity.internal.replay";
/// Requests a shard holds before it replays them into the SDK.
const BATCH: usize = 128;

/// The three instruments.
struct Instruments {
    requests: Counter<u64>,
    latency: Histogram<f64>,
    size: Histogram<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(REQUESTS)
                .with_unit("1")
                .with_description("Requests completed by loaddensity, by outcome.")
                .build(),
            latency: meter
                .f64_histogram(LATENCY)
                .with_unit("ms")
                .with_description(
                    "Request latency in milliseconds, from start to end of the response body.",
                )
                .with_boundaries(LATENCY_BUCKETS_MS.to_vec())
                .build(),
            size: meter
                .u64_histogram(RESPONSE_SIZE)
                .with_unit("By")
                .with_description("Response body size in bytes.")
                .with_boundaries(BYTES_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// The instruments bound to one attribute set.
struct Bound {
    requests: BoundCounter<u64>,
    latency: BoundHistogram<f64>,
    size: BoundHistogram<u64>,
}

/// The handles of one endpoint, one per outcome (bound on the outcome's first
/// request, so an endpoint that never fails exports no failure series).
struct Slot {
    // The endpoint's own strings, to notice an id reused by another interner.
    request_type: Arc<str>,
    name: Arc<str>,
    outcomes: [OnceLock<Bound>; 2],
}

impl Slot {
    #[inline]
    fn is_for(&self, endpoint: &Endpoint) -> bool {
        Arc::ptr_eq(&self.name, &endpoint.name)
            && Arc::ptr_eq(&self.request_type, &endpoint.request_type)
    }
}

type Table = Vec<Option<Arc<Slot>>>;

/// One request, as a shard holds it until the replay.
struct Pending {
    /// Index into the shard's `slots`.
    slot: u32,
    failed: bool,
    latency_ms: f64,
    size: u64,
}

/// One thread's batch, and the slots it refers to (its own references, so that the
/// request path touches no reference count shared with other threads).
#[derive(Default)]
struct Shard {
    slots: Vec<Arc<Slot>>,
    /// Endpoint id to index into `slots`, plus one (0: not seen yet).
    by_endpoint: Vec<u32>,
    pending: Vec<Pending>,
    /// Requests per slot and outcome since the last replay (one counter update per
    /// slot and outcome per replay, not per request).
    counts: Vec<[u64; 2]>,
}

impl Shard {
    /// The index of the endpoint's slot in this shard.
    #[inline]
    fn slot_of(&mut self, recorder: &Recorder, endpoint: &Endpoint) -> usize {
        let id = endpoint.id.0 as usize;
        if let Some(&known) = self.by_endpoint.get(id)
            && known > 0
            && self.slots[known as usize - 1].is_for(endpoint)
        {
            return known as usize - 1;
        }
        self.add_slot(recorder.slot(endpoint), id)
    }

    #[cold]
    fn add_slot(&mut self, slot: Arc<Slot>, id: usize) -> usize {
        if self.by_endpoint.len() <= id {
            self.by_endpoint.resize(id + 1, 0);
        }
        let index = self.slots.len();
        self.slots.push(slot);
        self.counts.push([0; 2]);
        self.by_endpoint[id] = u32::try_from(index + 1).unwrap_or(u32::MAX);
        index
    }

    /// Records what the shard holds into the SDK's bound instruments.
    fn replay(&mut self) {
        for pending in self.pending.drain(..) {
            let slot = &self.slots[pending.slot as usize];
            if let Some(bound) = slot.outcomes[usize::from(pending.failed)].get() {
                bound.latency.record(pending.latency_ms);
                bound.size.record(pending.size);
            }
        }
        for (slot, counts) in self.slots.iter().zip(self.counts.iter_mut()) {
            for (outcome, count) in counts.iter_mut().enumerate() {
                if *count > 0
                    && let Some(bound) = slot.outcomes[outcome].get()
                {
                    bound.requests.add(*count);
                }
                *count = 0;
            }
        }
    }
}

/// The listener attached to the request event while the exporter runs.
pub(super) struct Recorder {
    instruments: Instruments,
    /// Every endpoint's slot, shared by the shards (read when a shard meets an
    /// endpoint for the first time).
    slots: ArcSwap<Table>,
    grow: Mutex<()>,
    shards: Box<[Padded<Mutex<Shard>>]>,
    /// Kept for its callback, which replays the shards before each collection.
    _replay: ObservableGauge<u64>,
}

impl Recorder {
    /// Creates the instruments on `provider`.
    pub(super) fn new(provider: &SdkMeterProvider) -> Arc<Self> {
        let meter = provider.meter(SCOPE);
        Arc::new_cyclic(|weak: &Weak<Recorder>| {
            let weak = weak.clone();
            let replay = meter
                .u64_observable_gauge(REPLAY)
                .with_callback(move |_| {
                    if let Some(recorder) = weak.upgrade() {
                        recorder.replay_all();
                    }
                })
                .build();
            Self {
                instruments: Instruments::new(&meter),
                slots: ArcSwap::from_pointee(Vec::new()),
                grow: Mutex::new(()),
                shards: (0..SHARDS).map(|_| Padded::default()).collect(),
                _replay: replay,
            }
        })
    }

    /// Replays every shard into the SDK.
    fn replay_all(&self) {
        for shard in self.shards.iter() {
            lock(&shard.0).replay();
        }
    }

    /// The endpoint's slot (created on its first request, or when its id was reused
    /// by another interner). Runs once per endpoint and thread, never per request.
    #[cold]
    fn slot(&self, endpoint: &Endpoint) -> Arc<Slot> {
        let _grow = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let index = endpoint.id.0 as usize;
        let current = self.slots.load();
        if let Some(Some(slot)) = current.get(index)
            && slot.is_for(endpoint)
        {
            return slot.clone();
        }
        let slot = Arc::new(Slot {
            request_type: endpoint.request_type.clone(),
            name: endpoint.name.clone(),
            outcomes: [OnceLock::new(), OnceLock::new()],
        });
        let mut next = Table::clone(&current);
        if next.len() <= index {
            next.resize(index + 1, None);
        }
        next[index] = Some(slot.clone());
        self.slots.store(Arc::new(next));
        slot
    }

    #[cold]
    fn bind(&self, slot: &Slot, outcome: &'static str) -> Bound {
        let attributes = [
            KeyValue::new("request_type", slot.request_type.clone()),
            KeyValue::new("name", slot.name.clone()),
            KeyValue::new("outcome", outcome),
        ];
        Bound {
            requests: self.instruments.requests.bind(&attributes),
            latency: self.instruments.latency.bind(&attributes),
            size: self.instruments.size.bind(&attributes),
        }
    }
}

impl RequestListener for Recorder {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let mut shard = lock(&self.shards[shard_index()].0);
        let index = shard.slot_of(self, event.endpoint);
        let failed = !event.outcome.is_success();
        // Bound here, on the outcome's first request, not during a collection.
        shard.slots[index].outcomes[usize::from(failed)]
            .get_or_init(|| self.bind(&shard.slots[index], event.outcome.label()));
        shard.counts[index][usize::from(failed)] += 1;
        shard.pending.push(Pending {
            slot: u32::try_from(index).unwrap_or(u32::MAX),
            failed,
            latency_ms: event.response_time_ms(),
            size: event.response_length,
        });
        if shard.pending.len() >= BATCH {
            shard.replay();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::{PeriodicReader, Temporality};
    use std::time::{Duration, SystemTime};

    /// What an export held: (name, outcome, count) of the counter, the latency
    /// histogram's total count and bounds, and the units.
    #[derive(Debug, Default, Clone)]
    struct Seen {
        requests: Vec<(String, String, u64)>,
        latency_count: u64,
        latency_bounds: Vec<f64>,
        units: Vec<(String, String)>,
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Seen>>>);

    impl PushMetricExporter for Capture {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            let mut seen = Seen::default();
            for scope in metrics.scope_metrics() {
                for metric in scope.metrics() {
                    seen.units
                        .push((metric.name().to_string(), metric.unit().to_string()));
                    match metric.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                            for p in sum.data_points() {
                                let get = |key: &str| {
                                    p.attributes()
                                        .find(|kv| kv.key.as_str() == key)
                                        .map(|kv| kv.value.to_string())
                                        .unwrap_or_default()
                                };
                                seen.requests.push((get("name"), get("outcome"), p.value()));
                            }
                        }
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                            for p in h.data_points() {
                                seen.latency_count += p.count();
                                seen.latency_bounds = p.bounds().collect();
                            }
                        }
                        _ => {}
                    }
                }
            }
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(seen);
            Ok(())
        }

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }

        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    fn event(endpoint: &Endpoint, ok: bool) -> RequestEvent<'_> {
        RequestEvent {
            endpoint,
            url: None,
            response: None,
            retry: false,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(7),
            response_length: 100,
            status: Some(if ok { 200 } else { 500 }),
            outcome: if ok {
                Outcome::Success
            } else {
                Outcome::Failure("HTTP 500")
            },
        }
    }

    #[test]
    fn records_per_endpoint_and_outcome() {
        let capture = Capture::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(capture.clone()).build())
            .build();
        let recorder = Recorder::new(&provider);
        let interner = EndpointInterner::default();
        let a = interner.intern("GET", "/a");
        let b = interner.intern("POST", "/b");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (recorder, a, b) = (recorder.clone(), a.clone(), b.clone());
                scope.spawn(move || {
                    for i in 0..100 {
                        recorder.on_request(&event(&a, true));
                        recorder.on_request(&event(&b, i % 4 != 0));
                    }
                });
            }
        });
        // An id reused by another interner keeps its own attributes.
        let other = EndpointInterner::default().intern("GET", "/reused");
        assert_eq!(other.id, a.id);
        recorder.on_request(&event(&other, true));
        provider.force_flush().expect("flush");
        let mut seen = capture
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
            .expect("one export");
        seen.requests.sort();
        assert_eq!(
            seen.requests,
            vec![
                ("/a".into(), "success".into(), 400),
                ("/b".into(), "failure".into(), 100),
                ("/b".into(), "success".into(), 300),
                ("/reused".into(), "success".into(), 1),
            ]
        );
        assert_eq!(seen.latency_count, 801);
        assert_eq!(seen.latency_bounds, LATENCY_BUCKETS_MS);
        seen.units.sort();
        assert_eq!(
            seen.units,
            [(LATENCY, "ms"), (REQUESTS, "1"), (RESPONSE_SIZE, "By")]
                .map(|(n, u)| (n.to_string(), u.to_string()))
        );
        provider.shutdown().expect("shutdown");
    }
}
