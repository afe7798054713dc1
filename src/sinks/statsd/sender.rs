//! The sink's thread: takes records off the queue, writes their lines, packs them into
//! datagrams and sends each one as soon as it is full; partial datagrams and summed
//! counters go out every `flush_interval`, and at stop.
//!
//! Send errors (e.g. "connection refused" when nothing listens on a loopback port) are
//! counted with the metrics they carried, and warned about at most every
//! [`WARN_EVERY`](crate::sinks::queue::WARN_EVERY); the request path never sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::datagrams::{Output, Transport};
use super::encoder::{Encoder, Metric, Series};
use super::packet::{Packer, Packet};
use super::queue::{Counters, Queue, Record};
use crate::sinks::queue::{DrainBuffers, NewEndpoint, RateLimitedWarning, last_error_suffix};

/// How often the queue is emptied, at most.
const TICK: Duration = Duration::from_millis(10);
/// The sender's settings.
#[derive(Debug, Clone)]
pub(crate) struct SenderSettings {
    pub(crate) encoder: Encoder,
    pub(crate) aggregate_counters: bool,
    pub(crate) flush_interval: Duration,
}

/// The state of the sink's thread.
pub(crate) struct Sender {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    settings: SenderSettings,
    /// Prepared lines, by endpoint id.
    series: Vec<Option<Series>>,
    /// Summed counters by endpoint id and outcome (0 success), when aggregating.
    sums: Vec<[u64; 2]>,
    /// The (endpoint, outcome) pairs with a sum to send.
    touched: Vec<(usize, usize)>,
    /// What a drain takes off the shards.
    drained: DrainBuffers<Record>,
    line: Vec<u8>,
    packer: Packer,
    out: Output,
    warning: RateLimitedWarning,
}

impl Sender {
    pub(crate) fn new(queue: Arc<Queue>, transport: Transport, settings: SenderSettings) -> Self {
        let counters = queue.counters.clone();
        let max_packet_bytes = settings.encoder.max_packet_bytes();
        Self {
            packer: Packer::new(max_packet_bytes),
            out: Output::new(transport, max_packet_bytes, counters.clone()),
            counters,
            queue,
            settings,
            series: Vec::new(),
            sums: Vec::new(),
            touched: Vec::new(),
            drained: DrainBuffers::default(),
            line: Vec::with_capacity(256),
            warning: RateLimitedWarning::default(),
        }
    }

    /// Runs until `shutdown`, then sends what is left.
    pub(crate) fn run(mut self, shutdown: CancellationToken) {
        let tick = self.settings.flush_interval.min(TICK);
        let mut last_flush = Instant::now();
        while !shutdown.is_cancelled() {
            std::thread::sleep(tick);
            self.drain();
            if last_flush.elapsed() >= self.settings.flush_interval {
                self.flush();
                last_flush = Instant::now();
            }
            self.warn_if_due();
        }
        self.drain();
        self.flush();
        self.final_warning();
    }

    /// Empties every shard into datagrams (full ones are sent at once).
    pub(crate) fn drain(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        let queue = self.queue.clone();
        queue.drain(&mut drained, |new_endpoints, records| {
            queue.release(records.len());
            Counters::add(&self.counters.requests_queued, records.len() as u64);
            self.learn_endpoints(new_endpoints);
            for record in records {
                self.encode(record);
            }
        });
        self.drained = drained;
        self.out.flush();
    }

    fn learn_endpoints(&mut self, new_endpoints: &[NewEndpoint]) {
        for endpoint in new_endpoints {
            let index = endpoint.id.0 as usize;
            if self.series.len() <= index {
                self.series.resize(index + 1, None);
                self.sums.resize(index + 1, [0, 0]);
            }
            if self.series[index].is_none() {
                self.series[index] = Some(
                    self.settings
                        .encoder
                        .series(&endpoint.request_type, &endpoint.name),
                );
            }
        }
    }

    #[inline]
    fn encode(&mut self, record: &Record) {
        let index = record.endpoint.0 as usize;
        let Some(Some(series)) = self.series.get(index) else {
            // Cannot happen: a shard announces an endpoint before its first record.
            Counters::add(&self.counters.metrics_dropped, 3);
            return;
        };
        let out = &mut self.out;
        let mut send = |packet: Packet<'_>| out.send(packet);
        if self.settings.aggregate_counters {
            let outcome = usize::from(!record.success);
            let sum = &mut self.sums[index][outcome];
            if *sum == 0 {
                self.touched.push((index, outcome));
            }
            *sum += 1;
        } else {
            self.line.clear();
            series.write(record.success, Metric::Requests, 1, &mut self.line);
            self.packer.push(&self.line, 1, &mut send);
        }
        for (metric, value) in [
            (Metric::Latency, record.latency_ms),
            (Metric::ResponseSize, record.response_bytes),
        ] {
            self.line.clear();
            series.write(record.success, metric, value, &mut self.line);
            self.packer.push(&self.line, 0, &mut send);
        }
    }

    /// Sends the summed counters and the partial datagram.
    pub(crate) fn flush(&mut self) {
        let out = &mut self.out;
        let mut send = |packet: Packet<'_>| out.send(packet);
        for (index, outcome) in self.touched.drain(..) {
            let sum = std::mem::take(&mut self.sums[index][outcome]);
            if let Some(Some(series)) = self.series.get(index) {
                self.line.clear();
                series.write(outcome == 0, Metric::Requests, sum, &mut self.line);
                self.packer.push(&self.line, sum, &mut send);
            }
        }
        self.packer.flush(&mut send);
        self.out.flush();
    }

    fn problems(&self) -> (u64, u64) {
        (
            Counters::get(&self.counters.requests_dropped),
            Counters::get(&self.counters.send_errors),
        )
    }

    fn warn_if_due(&mut self) {
        let (dropped, errors) = self.problems();
        let Some(due) = self.warning.due(dropped, errors) else {
            return;
        };
        tracing::warn!(
            "statsd sink: {} requests dropped (queue full) and {} send errors since the last \
             warning ({dropped} and {errors} in all){}",
            due.dropped,
            due.errors,
            last_error_suffix(&self.counters.last_error),
        );
    }

    fn final_warning(&self) {
        let (dropped, errors) = self.problems();
        if dropped > 0 || errors > 0 {
            tracing::warn!(
                "statsd sink stopped: {} datagrams sent, {dropped} requests dropped, {errors} \
                 send errors{}",
                Counters::get(&self.counters.datagrams_sent),
                last_error_suffix(&self.counters.last_error),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome, RequestEvent};
    use crate::listener::RequestListener;
    use crate::sinks::lock;
    use crate::sinks::statsd::options::Dialect;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::SystemTime;

    type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

    fn sender(aggregate: bool, max: usize, queue: Arc<Queue>) -> (Sender, Seen) {
        let seen: Seen = Arc::default();
        let store = seen.clone();
        let send = Transport::Function(Box::new(move |bytes: &[u8]| {
            lock(&store).push(bytes.to_vec());
            Ok(bytes.len())
        }));
        let settings = SenderSettings {
            encoder: Encoder::new("ld", Dialect::DogStatsd, max).expect("encoder"),
            aggregate_counters: aggregate,
            flush_interval: Duration::from_millis(100),
        };
        (Sender::new(queue, send, settings), seen)
    }

    /// Counter totals by tag set, from the datagrams.
    fn counted(seen: &Seen, max: usize) -> (BTreeMap<String, u64>, usize) {
        let mut totals = BTreeMap::new();
        let mut lines = 0;
        for packet in lock(seen).iter() {
            assert!(packet.len() <= max, "{} > {max}", packet.len());
            for line in std::str::from_utf8(packet).expect("utf8").split('\n') {
                lines += 1;
                let Some(rest) = line.strip_prefix("ld.requests:") else {
                    continue;
                };
                let (value, tags) = rest.split_once("|c|#").expect("counter line");
                *totals.entry(tags.to_string()).or_insert(0) += value.parse::<u64>().expect("n");
            }
        }
        (totals, lines)
    }

    #[test]
    fn every_event_is_one_counter_increment() {
        let interner = EndpointInterner::default();
        let endpoints: Vec<_> = (0..5)
            .map(|i| interner.intern("GET", &format!("/e{i}")))
            .collect();
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 48,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[25; 32]),
        );
        let strategy = (
            prop::collection::vec((0usize..5, any::<bool>(), 0u64..100_000), 0..2_000),
            any::<bool>(),
            256usize..4096,
            1usize..5,
        );
        runner
            .run(&strategy, |(events, aggregate, max, flushes)| {
                let counters = Arc::new(Counters::default());
                let queue = Arc::new(Queue::new(1_000_000, counters.clone()));
                let (mut sender, seen) = sender(aggregate, max, queue.clone());
                let mut expected: BTreeMap<String, u64> = BTreeMap::new();
                let chunk = events.len() / flushes + 1;
                for part in events.chunks(chunk) {
                    for &(e, success, ms) in part {
                        queue.on_request(&RequestEvent {
                            endpoint: &endpoints[e],
                            url: None,
                            response: None,
                            retry: false,
                            start_time: SystemTime::now(),
                            response_time: Duration::from_millis(ms),
                            response_length: ms * 3,
                            status: None,
                            outcome: if success {
                                Outcome::Success
                            } else {
                                Outcome::Failure("x")
                            },
                        });
                        let outcome = if success { "success" } else { "failure" };
                        *expected
                            .entry(format!("method:GET,name:/e{e},outcome:{outcome}"))
                            .or_insert(0) += 1;
                    }
                    sender.drain();
                    sender.flush();
                }
                let (totals, lines) = counted(&seen, max);
                prop_assert_eq!(&totals, &expected);
                let n = events.len() as u64;
                prop_assert_eq!(Counters::get(&counters.requests_sent), n);
                prop_assert_eq!(Counters::get(&counters.metrics_sent), lines as u64);
                prop_assert_eq!(
                    Counters::get(&counters.datagrams_sent),
                    lock(&seen).len() as u64
                );
                if !aggregate {
                    prop_assert_eq!(lines as u64, 3 * n);
                }
                Ok(())
            })
            .expect("property");
    }
}
