//! Locust's statistics as a worker reports them (`locust/stats.py`): per
//! (name, method) entry the requests, failures, response time sum, min and max,
//! the rounded response time histogram, requests and failures per second and
//! content length since the last report, the same for all requests together
//! (`Aggregated`), and the errors. A report takes everything recorded since the
//! previous one (`get_stripped_report`): the master adds the reports up, so every
//! request is in exactly one report.
//!
//! [`LocustStats`] is a request listener, sharded like [`crate::stats::StatsRecorder`]
//! so that users on different threads never wait for each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmpv::Value;

use crate::event::{Outcome, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};

/// Distinct error texts kept per report; more are counted under one key.
const MAX_ERRORS: usize = 200;
const OTHER_ERRORS: &str = "(other errors)";

/// Locust's `bucket_response_time`: a response time in milliseconds rounded to two
/// significant digits (147 → 150, 3432 → 3400), half to even as Python's `round`.
/// Computed on whole nanoseconds, so ties are exact.
pub fn bucket_response_time(response_time: Duration) -> u64 {
    let nanos = response_time.as_nanos();
    let ms = 1_000_000u128;
    let unit = if nanos < 100 * ms {
        1
    } else if nanos < 1_000 * ms {
        10
    } else if nanos < 10_000 * ms {
        100
    } else {
        1_000
    };
    let divisor = unit * ms;
    let (quotient, remainder) = (nanos / divisor, nanos % divisor);
    let rounded = match (2 * remainder).cmp(&divisor) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
    };
    u64::try_from(rounded * unit).unwrap_or(u64::MAX)
}

/// One entry's counts since the last report (Locust's `StatsEntry`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// Requests, failed or not.
    pub num_requests: u64,
    /// Failed requests.
    pub num_failures: u64,
    /// Sum of response times, ms.
    pub total_response_time: f64,
    /// Smallest response time, ms.
    pub min_response_time: Option<f64>,
    /// Largest response time, ms.
    pub max_response_time: f64,
    /// Sum of response body lengths.
    pub total_content_length: u64,
    /// Requests per rounded response time (ms).
    pub response_times: BTreeMap<u64, u64>,
    /// Requests per Unix second in which they ended.
    pub num_reqs_per_sec: BTreeMap<i64, u64>,
    /// Failures per Unix second.
    pub num_fail_per_sec: BTreeMap<i64, u64>,
    /// Unix time at which the last request ended.
    pub last_request_timestamp: Option<f64>,
}

impl Entry {
    fn record(&mut self, response_time: Duration, length: u64, failed: bool, end: f64) {
        let ms = response_time.as_nanos() as f64 / 1e6;
        self.num_requests += 1;
        self.total_response_time += ms;
        self.min_response_time = Some(self.min_response_time.map_or(ms, |m| m.min(ms)));
        self.max_response_time = self.max_response_time.max(ms);
        self.total_content_length += length;
        *self
            .response_times
            .entry(bucket_response_time(response_time))
            .or_default() += 1;
        let second = end.floor() as i64;
        *self.num_reqs_per_sec.entry(second).or_default() += 1;
        if failed {
            self.num_failures += 1;
            *self.num_fail_per_sec.entry(second).or_default() += 1;
        }
        self.last_request_timestamp = Some(self.last_request_timestamp.map_or(end, |t| t.max(end)));
    }

    fn merge(&mut self, other: &Entry) {
        self.num_requests += other.num_requests;
        self.num_failures += other.num_failures;
        self.total_response_time += other.total_response_time;
        self.min_response_time = match (self.min_response_time, other.min_response_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_response_time = self.max_response_time.max(other.max_response_time);
        self.total_content_length += other.total_content_length;
        for (k, v) in &other.response_times {
            *self.response_times.entry(*k).or_default() += v;
        }
        for (k, v) in &other.num_reqs_per_sec {
            *self.num_reqs_per_sec.entry(*k).or_default() += v;
        }
        for (k, v) in &other.num_fail_per_sec {
            *self.num_fail_per_sec.entry(*k).or_default() += v;
        }
        self.last_request_timestamp =
            match (self.last_request_timestamp, other.last_request_timestamp) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
    }

    /// The entry as `StatsEntry.serialize()` writes it.
    pub fn to_value(&self, name: &str, method: &str, start_time: f64) -> Value {
        fn counts<K: Copy + Into<Value>>(map: &BTreeMap<K, u64>) -> Value {
            Value::Map(
                map.iter()
                    .map(|(k, v)| ((*k).into(), Value::from(*v)))
                    .collect(),
            )
        }
        super::protocol::map([
            ("name", Value::from(name)),
            ("method", Value::from(method)),
            (
                "last_request_timestamp",
                self.last_request_timestamp.map_or(Value::Nil, Value::F64),
            ),
            ("start_time", Value::F64(start_time)),
            ("num_requests", Value::from(self.num_requests)),
            ("num_none_requests", Value::from(0)),
            ("num_failures", Value::from(self.num_failures)),
            ("total_response_time", Value::F64(self.total_response_time)),
            ("max_response_time", Value::F64(self.max_response_time)),
            (
                "min_response_time",
                self.min_response_time.map_or(Value::Nil, Value::F64),
            ),
            (
                "total_content_length",
                Value::from(self.total_content_length),
            ),
            ("response_times", counts(&self.response_times)),
            ("num_reqs_per_sec", counts(&self.num_reqs_per_sec)),
            ("num_fail_per_sec", counts(&self.num_fail_per_sec)),
        ])
    }
}

/// One error's occurrences since the last report (Locust's `StatsError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEntry {
    /// The request type.
    pub method: String,
    /// The entry name.
    pub name: String,
    /// The failure text.
    pub error: String,
    /// How often.
    pub occurrences: u64,
    /// Unix time of the first.
    pub first_seen: f64,
    /// Unix time of the last.
    pub last_seen: f64,
}

impl ErrorEntry {
    fn merge(&mut self, other: &ErrorEntry) {
        self.occurrences += other.occurrences;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

/// One endpoint's entry in a shard: its name, its method and its counts.
type NamedEntry = (Arc<str>, Arc<str>, Entry);

/// What one shard recorded since the last report.
#[derive(Debug, Default)]
struct Shard {
    /// By endpoint id: (name, method, entry).
    entries: Vec<Option<NamedEntry>>,
    total: Entry,
    /// By (endpoint id, error text).
    errors: HashMap<(u32, Box<str>), ErrorEntry>,
}

/// Everything recorded between two reports, merged over the shards.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Per (name, method).
    pub entries: BTreeMap<(String, String), Entry>,
    /// All requests together.
    pub total: Entry,
    /// Per (method, name, error text).
    pub errors: BTreeMap<(String, String, String), ErrorEntry>,
    /// Unix time of the previous report (the entries' `start_time`).
    pub start_time: f64,
}

impl Report {
    /// The `stats`, `stats_total` and `errors` fields of a `stats` message.
    pub fn fields(&self) -> Vec<(Value, Value)> {
        let stats = self
            .entries
            .iter()
            .filter(|(_, e)| e.num_requests > 0 || e.num_failures > 0)
            .map(|((name, method), e)| e.to_value(name, method, self.start_time))
            .collect();
        let errors = self
            .errors
            .values()
            .map(|e| {
                (
                    Value::from(error_key(&e.method, &e.name, &e.error)),
                    super::protocol::map([
                        ("name", Value::from(e.name.as_str())),
                        ("method", Value::from(e.method.as_str())),
                        ("error", Value::from(e.error.as_str())),
                        ("occurrences", Value::from(e.occurrences)),
                        ("first_seen", Value::F64(e.first_seen)),
                        ("last_seen", Value::F64(e.last_seen)),
                    ]),
                )
            })
            .collect();
        vec![
            (Value::from("stats"), Value::Array(stats)),
            (
                Value::from("stats_total"),
                self.total.to_value("Aggregated", "", self.start_time),
            ),
            (Value::from("errors"), Value::Map(errors)),
        ]
    }
}

/// Locust's `StatsError.create_key`: the SHA-256 of `method.name.repr(error)` in hex,
/// so that the same error from a Python worker and from this one is one row.
pub fn error_key(method: &str, name: &str, error: &str) -> String {
    let text = format!("{method}.{name}.{}", python_repr(error));
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Python's `repr` of a string, for the common cases (quotes, backslashes, control
/// characters).
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The listener that gathers Locust's statistics between reports.
#[derive(Debug)]
pub struct LocustStats {
    shards: Box<[Padded<Mutex<Shard>>]>,
    last_report: Mutex<f64>,
}

impl Default for LocustStats {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            last_report: Mutex::new(unix_seconds(SystemTime::now())),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl LocustStats {
    /// Takes everything recorded since the last report (`get_stripped_report`).
    pub fn take_report(&self) -> Report {
        let now = unix_seconds(SystemTime::now());
        let start_time = std::mem::replace(&mut *lock(&self.last_report), now);
        let mut report = Report {
            start_time,
            ..Report::default()
        };
        for shard in self.shards.iter() {
            let shard = std::mem::take(&mut *lock(&shard.0));
            for (name, method, entry) in shard.entries.into_iter().flatten() {
                report
                    .entries
                    .entry((name.to_string(), method.to_string()))
                    .or_default()
                    .merge(&entry);
            }
            report.total.merge(&shard.total);
            for error in shard.errors.into_values() {
                let key = (
                    error.method.clone(),
                    error.name.clone(),
                    error.error.clone(),
                );
                let full = report.errors.len() >= MAX_ERRORS;
                match report.errors.get_mut(&key) {
                    Some(existing) => existing.merge(&error),
                    None if !full => {
                        report.errors.insert(key, error);
                    }
                    None => {
                        let other = (
                            error.method.clone(),
                            error.name.clone(),
                            OTHER_ERRORS.into(),
                        );
                        report
                            .errors
                            .entry(other)
                            .and_modify(|e| e.merge(&error))
                            .or_insert(ErrorEntry {
                                error: OTHER_ERRORS.into(),
                                ..error
                            });
                    }
                }
            }
        }
        report
    }
}

impl RequestListener for LocustStats {
    fn on_request(&self, event: &RequestEvent<'_>) {
        let end = unix_seconds(event.start_time + event.response_time);
        let failure = match event.outcome {
            Outcome::Success => None,
            Outcome::Failure(text) => Some(text),
        };
        let endpoint = event.endpoint;
        let slot = endpoint.id.0 as usize;
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.entries.len() <= slot {
            shard.entries.resize_with(slot + 1, || None);
        }
        let (_, _, entry) = shard.entries[slot].get_or_insert_with(|| {
            (
                endpoint.name.clone(),
                endpoint.request_type.clone(),
                Entry::default(),
            )
        });
        let (time, length, failed) = (
            event.response_time,
            event.response_length,
            failure.is_some(),
        );
        entry.record(time, length, failed, end);
        shard.total.record(time, length, failed, end);
        if let Some(text) = failure {
            let len = shard.errors.len();
            let text =
                if len >= MAX_ERRORS && !shard.errors.contains_key(&(endpoint.id.0, text.into())) {
                    OTHER_ERRORS
                } else {
                    text
                };
            shard
                .errors
                .entry((endpoint.id.0, text.into()))
                .and_modify(|e| {
                    e.occurrences += 1;
                    e.last_seen = e.last_seen.max(end);
                    e.first_seen = e.first_seen.min(end);
                })
                .or_insert_with(|| ErrorEntry {
                    method: endpoint.request_type.to_string(),
                    name: endpoint.name.to_string(),
                    error: text.to_string(),
                    occurrences: 1,
                    first_seen: end,
                    last_seen: end,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndpointInterner;

    #[test]
    fn buckets_round_as_python_does() {
        let ms = |x: f64| Duration::from_nanos((x * 1e6).round() as u64);
        for (input, want) in [
            (0.4, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (99.4, 99),
            (99.6, 100),
            (147.0, 150),
            (145.0, 140),
            (155.0, 160),
            (3432.0, 3400),
            (58760.0, 59000),
        ] {
            assert_eq!(bucket_response_time(ms(input)), want, "{input} ms");
        }
    }

    #[test]
    fn reports_take_what_came_since_the_last() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("GET", "/a");
        let stats = LocustStats::default();
        let event = |ms: u64, outcome| RequestEvent {
            endpoint: &endpoint,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(ms),
            response_length: 10,
            status: Some(200),
            outcome,
            url: None,
            response: None,
            retry: false,
        };
        stats.on_request(&event(5, Outcome::Success));
        stats.on_request(&event(150, Outcome::Failure("HTTP 500")));
        let report = stats.take_report();
        let entry = &report.entries[&("/a".to_string(), "GET".to_string())];
        assert_eq!((entry.num_requests, entry.num_failures), (2, 1));
        assert_eq!(entry.total_response_time, 155.0);
        assert_eq!(entry.min_response_time, Some(5.0));
        assert_eq!(entry.max_response_time, 150.0);
        assert_eq!(entry.total_content_length, 20);
        assert_eq!(entry.response_times, BTreeMap::from([(5, 1), (150, 1)]));
        assert_eq!(report.total.num_requests, 2);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(stats.take_report().total.num_requests, 0);
        // Python: hashlib.sha256("GET./a.'HTTP 500'".encode()).hexdigest()
        assert_eq!(
            error_key("GET", "/a", "HTTP 500"),
            "f36815a2ebd748d44d0445e3b93def367b65cc746157dd755e3224456e85f609"
        );
    }
}
