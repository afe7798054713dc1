//! LoadDensity's dashboard snapshot (`/snapshot`, each `/events` message) and the
//! rolling counters behind its `rps` and `avg_ms` (and Locust's `current_rps`).
//!
//! The rolling counters are cumulative samples taken on the server's own schedule
//! (a few a second at most) from the statistics' per-endpoint totals; a window's
//! rate is the difference of two samples. Locust's current percentiles come the same
//! way from the merged latency histogram, kept once a second for the last
//! [`CURRENT_WINDOW`]. Nothing is kept per request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::{LiveSource, lock, number};
use crate::stats::{EndpointTotals, RECENT_SECONDS, StatsSnapshot, Summary};

/// The most samples kept (a window longer than this many intervals is cut).
const MAX_SAMPLES: usize = 4096;
/// The window of Locust's `current_rps` and of its current response time percentiles
/// (`CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`).
pub(crate) const CURRENT_WINDOW: Duration = Duration::from_secs(10);
/// Locust's youngest acceptable base for its current percentiles: 2 s (its window
/// less 8 s); without one, they are null.
const YOUNGEST_BASE: Duration = Duration::from_secs(2);

/// One cumulative sample of the counters.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) endpoints: HashMap<(Arc<str>, Arc<str>), EndpointTotals>,
}

impl Sample {
    pub(crate) fn take(source: &LiveSource) -> Self {
        Self {
            at: Instant::now(),
            endpoints: source.stats.endpoint_totals(),
        }
    }

    /// All endpoints added up.
    pub(crate) fn total(&self) -> EndpointTotals {
        let mut total = EndpointTotals::default();
        for e in self.endpoints.values() {
            total.requests += e.requests;
            total.failures += e.failures;
            total.latency_sum_us += e.latency_sum_us;
        }
        total
    }
}

/// What changed between two samples, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) requests_per_s: f64,
    pub(crate) failures_per_s: f64,
    /// Mean latency of the requests in between, ms (0 without any).
    pub(crate) mean_ms: f64,
}

impl Rates {
    fn between(old: &EndpointTotals, new: &EndpointTotals, seconds: f64) -> Self {
        // A reset in between: count from zero.
        let old = if new.requests < old.requests {
            EndpointTotals::default()
        } else {
            *old
        };
        let requests = new.requests - old.requests;
        if seconds <= 0.0 {
            return Self::default();
        }
        Self {
            requests_per_s: requests as f64 / seconds,
            failures_per_s: new.failures.saturating_sub(old.failures) as f64 / seconds,
            mean_ms: if requests == 0 {
                0.0
            } else {
                (new.latency_sum_us - old.latency_sum_us).max(0.0) / requests as f64 / 1000.0
            },
        }
    }
}

/// The cumulative samples of the last window.
#[derive(Debug)]
pub(crate) struct Rolling {
    samples: Mutex<VecDeque<Sample>>,
    keep: Duration,
    /// The merged latency histogram once a second, for [`CURRENT_WINDOW`].
    latency: Mutex<VecDeque<(Instant, Histogram<u64>)>>,
}

impl Rolling {
    /// Keeps what windows of up to `window` need.
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            samples: Mutex::new(VecDeque::new()),
            keep: window.max(CURRENT_WINDOW) + Duration::from_secs(2),
            latency: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps the merged latency histogram of now when the newest kept is a second
    /// old, and drops those older than [`CURRENT_WINDOW`] but the newest of them.
    pub(crate) fn push_latency(&self, source: &LiveSource) {
        let now = Instant::now();
        let mut kept = lock(&self.latency);
        if kept
            .back()
            .is_some_and(|(at, _)| now.duration_since(*at) < Duration::from_millis(900))
        {
            return;
        }
        while kept.len() > 1 && now.duration_since(kept[1].0) >= CURRENT_WINDOW {
            kept.pop_front();
        }
        kept.push_back((now, source.stats.aggregate_latency().0));
    }

    /// Locust's current response time percentiles: `quantiles` (0..=1, ms) of the
    /// requests of about the last [`CURRENT_WINDOW`], from the oldest kept histogram
    /// at least [`YOUNGEST_BASE`] old to `now` (cumulative); `None` without such a
    /// base, 0 without requests in between (as Locust).
    pub(crate) fn current_percentiles(
        &self,
        now: &Histogram<u64>,
        quantiles: &[f64],
    ) -> Option<Vec<f64>> {
        let kept = lock(&self.latency);
        let (at, base) = kept.front()?;
        if at.elapsed() < YOUNGEST_BASE {
            return None;
        }
        let mut window = now.clone();
        // A reset in between (the base counts more): everything since counts.
        if window.subtract(base).is_err() {
            window = now.clone();
        }
        Some(
            quantiles
                .iter()
                .map(|&q| {
                    if window.is_empty() {
                        0.0
                    } else {
                        window.value_at_quantile(q) as f64 / 1000.0
                    }
                })
                .collect(),
        )
    }

    /// Adds a sample, dropping those too old to matter.
    pub(crate) fn push(&self, sample: Sample) {
        let mut samples = lock(&self.samples);
        while samples.len() >= MAX_SAMPLES
            || samples
                .front()
                .is_some_and(|s| sample.at.duration_since(s.at) > self.keep)
        {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The oldest kept sample no older than `window` before `now`.
    fn base(&self, now: Instant, window: Duration) -> Option<Sample> {
        lock(&self.samples)
            .iter()
            .find(|s| now.duration_since(s.at) <= window + Duration::from_millis(250))
            .cloned()
    }

    /// The rates of everything over `window`, ending at `now` (a fresh sample).
    pub(crate) fn total_rates(&self, now: &Sample, window: Duration) -> Rates {
        match self.base(now.at, window) {
            Some(base) => Rates::between(
                &base.total(),
                &now.total(),
                now.at.duration_since(base.at).as_secs_f64(),
            ),
            None => Rates::default(),
        }
    }

    /// The rates of each endpoint over `window`, ending at `now`.
    pub(crate) fn endpoint_rates(
        &self,
        now: &Sample,
        window: Duration,
    ) -> HashMap<(Arc<str>, Arc<str>), Rates> {
        let Some(base) = self.base(now.at, window) else {
            return HashMap::new();
        };
        let seconds = now.at.duration_since(base.at).as_secs_f64();
        now.endpoints
            .iter()
            .map(|(key, new)| {
                let old = base.endpoints.get(key).copied().unwrap_or_default();
                (key.clone(), Rates::between(&old, new, seconds))
            })
            .collect()
    }
}

/// What is recorded now, with the running test's time in its duration (no timeline).
fn live_stats(source: &LiveSource) -> StatsSnapshot {
    StatsSnapshot {
        endpoints: source.stats.endpoints(),
        duration: source.duration(),
        timeline: Vec::new(),
        dropped_iterations: source.stats.dropped_iterations(),
    }
}

/// The summary of what is recorded now, with the running test's time in its rates.
pub(crate) fn live_summary(source: &LiveSource) -> Summary {
    Summary::from_snapshot(&live_stats(source))
}

/// The rows of the statistics table (the terminal table's columns), `Aggregated` last.
fn table(stats: &StatsSnapshot) -> Vec<Value> {
    let seconds = stats.duration.as_secs_f64();
    let total = stats.aggregated();
    stats
        .endpoints
        .iter()
        .chain(std::iter::once(&total))
        .map(|e| {
            let h = &e.latency_us;
            let ms = |v: u64| v as f64 / 1000.0;
            let pct = |q: f64| {
                if h.is_empty() {
                    0.0
                } else {
                    ms(h.value_at_quantile(q))
                }
            };
            json!({
                "type": &*e.request_type,
                "name": &*e.name,
                "requests": e.count(),
                "failures": e.failures,
                "avg_ms": number(if h.is_empty() { 0.0 } else { h.mean() / 1000.0 }),
                "min_ms": if h.is_empty() { 0.0 } else { ms(h.min()) },
                "max_ms": if h.is_empty() { 0.0 } else { ms(h.max()) },
                "p50_ms": pct(0.5),
                "p90_ms": pct(0.9),
                "p95_ms": pct(0.95),
                "p99_ms": pct(0.99),
                "rps": number(if seconds > 0.0 { e.count() as f64 / seconds } else { 0.0 }),
            })
        })
        .collect()
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// LoadDensity's snapshot: `totals`, `latency_overall`, `per_name`, `rps` and
/// `avg_ms` over `window`, `ts`, `latency_windows` (the last 120 s, one a second);
/// and beyond it, what the page shows: `users`, `state`, `table`, `errors`, `sla`,
/// `controls`, `restartable` (`/swarm` would start the script's last test again).
pub(crate) fn snapshot(
    source: &LiveSource,
    rolling: &Rolling,
    window: Duration,
    controls: bool,
) -> Value {
    let now = Sample::take(source);
    let rates = rolling.total_rates(&now, window);
    let stats = live_stats(source);
    let summary = Summary::from_snapshot(&stats);
    let windows: Vec<Value> = source
        .stats
        .recent_timeline(RECENT_SECONDS)
        .into_iter()
        .map(|(entry, ended)| {
            let optional = |v: f64| {
                if entry.requests == 0 {
                    Value::Null
                } else {
                    number(v)
                }
            };
            json!({
                "start_time": epoch_seconds(ended) - 1.0,
                "duration_seconds": 1.0,
                "count": entry.requests,
                "rps": entry.requests as f64,
                "p50_ms": optional(entry.p50_ms),
                "p95_ms": optional(entry.p95_ms),
                "p99_ms": optional(entry.p99_ms),
                "failures": entry.failures,
                "users": entry.users,
            })
        })
        .collect();
    let control = source.run.control();
    let info = source.run.info();
    json!({
        "totals": summary.totals,
        "latency_overall": summary.latency_overall,
        "per_name": summary.per_name,
        "rps": number(rates.requests_per_s),
        "avg_ms": number(rates.mean_ms),
        "ts": epoch_seconds(SystemTime::now()),
        "latency_windows": windows,
        "fail_per_s": number(rates.failures_per_s),
        "users": source.run.user_count(),
        "state": source.run.state(),
        "target_users": control.as_ref().map(|c| c.target_users()),
        "spawn_rate": control.as_ref().map(|c| number(c.spawn_rate())),
        "adjustable": control.as_ref().is_some_and(|c| c.is_adjustable()),
        "restartable": controls && control.is_none() && source.run.reruns().accepting(),
        "controls": controls,
        "errors": summary.errors,
        "table": table(&stats),
        "sla": info.sla,
        "tests": info.load.len(),
    })
}
