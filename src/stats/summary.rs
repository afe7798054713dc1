//! The summary object, in LoadDensity's summary schema (`totals`, `latency_overall`,
//! `per_name`), extended with `errors`, the sinks' counters (`sinks`), and the result
//! document's `run` and `histograms` blocks (see [`super::document`]).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::document::{Histograms, ResponseSample, RunInfo, encode_histogram};
use super::recorder::{EndpointStats, StatsSnapshot};
use super::timeline::TimelineEntry;

/// Whole-run counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Requests completed.
    pub requests: u64,
    /// Requests that succeeded.
    pub successes: u64,
    /// Requests that failed.
    pub failures: u64,
    /// `failures / requests` (0 when there were none).
    pub failure_rate: f64,
    /// Seconds the tests ran (0 in LoadDensity's own summaries, which lack it).
    #[serde(default)]
    pub duration_s: f64,
    /// Requests per second over `duration_s`.
    #[serde(default)]
    pub rps: f64,
    /// Open model: iterations not started because every user was busy.
    #[serde(default)]
    pub dropped_iterations: u64,
}

/// Latency over all requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyOverall {
    /// Number of latency samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

/// Statistics of one request name (all request types with that name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameStats {
    /// Requests.
    pub count: u64,
    /// Failed requests (LoadDensity's own summaries leave them out: 0 then).
    #[serde(default)]
    pub failures: u64,
    /// Requests per second.
    #[serde(default)]
    pub rps: f64,
    /// Minimum, ms.
    #[serde(default)]
    pub min_ms: f64,
    /// Maximum, ms.
    #[serde(default)]
    pub max_ms: f64,
    /// Mean, ms.
    #[serde(default)]
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Sum of the response body lengths, bytes (the average size is this over `count`).
    #[serde(default)]
    pub response_bytes: u64,
    /// Requests that retried a failed one of the same task (`retry`); each is counted
    /// in `count` too. Left out of the document when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl NameStats {
    /// Average response body size in bytes, `None` without requests.
    pub fn avg_size_bytes(&self) -> Option<f64> {
        (self.count > 0).then(|| self.response_bytes as f64 / self.count as f64)
    }
}

/// One distinct failure text and how often it occurred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Request type.
    pub request_type: String,
    /// Request name.
    pub name: String,
    /// Failure text.
    pub error: String,
    /// Occurrences.
    pub occurrences: u64,
}

/// The summary of the recorded requests (`LD_summary`, `--summary-json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Whole-run counters.
    pub totals: Totals,
    /// Latency over all requests.
    pub latency_overall: LatencyOverall,
    /// Per request name.
    pub per_name: BTreeMap<String, NameStats>,
    /// Failures grouped by text.
    #[serde(default)]
    pub errors: Vec<ErrorCount>,
    /// One entry per second of the recorded tests.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Counters reported by the metric sinks (drops, write errors), by sink name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sinks: BTreeMap<String, serde_json::Value>,
    /// When and how the requests were produced (filled in by the executor).
    #[serde(default)]
    pub run: RunInfo,
    /// Sampled responses (headers and body start), for the HTML report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ResponseSample>,
    /// The latency histograms the percentiles come from.
    #[serde(default)]
    pub histograms: Histograms,
}

/// A histogram value in µs as milliseconds.
pub(crate) fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The value at a percentile (0–100) in ms; 0 for an empty histogram.
pub(crate) fn percentile_ms(histogram: &Histogram<u64>, pct: f64) -> f64 {
    if histogram.is_empty() {
        0.0
    } else {
        ms(histogram.value_at_quantile(pct / 100.0))
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl NameStats {
    fn from_endpoint(stats: &EndpointStats, seconds: f64) -> Self {
        let h = &stats.latency_us;
        let empty = h.is_empty();
        Self {
            count: stats.count(),
            failures: stats.failures,
            rps: per_second(stats.count(), seconds),
            min_ms: if empty { 0.0 } else { ms(h.min()) },
            max_ms: if empty { 0.0 } else { ms(h.max()) },
            mean_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: percentile_ms(h, 50.0),
            p90_ms: percentile_ms(h, 90.0),
            p95_ms: percentile_ms(h, 95.0),
            p99_ms: percentile_ms(h, 99.0),
            response_bytes: stats.response_bytes,
            retries: stats.retries,
        }
    }
}

impl Summary {
    /// Builds the summary of a snapshot.
    pub fn from_snapshot(snapshot: &StatsSnapshot) -> Self {
        let seconds = snapshot.duration.as_secs_f64();
        let total = snapshot.aggregated();
        let requests = total.count();
        let h = &total.latency_us;

        // LoadDensity keys per_name by name alone: merge request types sharing a name.
        let mut by_name: BTreeMap<String, EndpointStats> = BTreeMap::new();
        for endpoint in &snapshot.endpoints {
            by_name
                .entry(endpoint.name.to_string())
                .and_modify(|merged| {
                    let _ = merged.latency_us.add(&endpoint.latency_us);
                    merged.failures += endpoint.failures;
                    merged.response_bytes += endpoint.response_bytes;
                    merged.retries += endpoint.retries;
                })
                .or_insert_with(|| endpoint.clone());
        }

        let mut errors: Vec<ErrorCount> = snapshot
            .endpoints
            .iter()
            .flat_map(|e| {
                e.errors.iter().map(|(text, n)| ErrorCount {
                    request_type: e.request_type.to_string(),
                    name: e.name.to_string(),
                    error: text.to_string(),
                    occurrences: *n,
                })
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.occurrences));

        Summary {
            totals: Totals {
                requests,
                successes: requests - total.failures,
                failures: total.failures,
                failure_rate: if requests == 0 {
                    0.0
                } else {
                    total.failures as f64 / requests as f64
                },
                duration_s: seconds,
                rps: per_second(requests, seconds),
                dropped_iterations: snapshot.dropped_iterations,
            },
            latency_overall: LatencyOverall {
                count: requests,
                p50_ms: percentile_ms(h, 50.0),
                p90_ms: percentile_ms(h, 90.0),
                p95_ms: percentile_ms(h, 95.0),
                p99_ms: percentile_ms(h, 99.0),
                max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            },
            per_name: by_name
                .iter()
                .map(|(name, stats)| (name.clone(), NameStats::from_endpoint(stats, seconds)))
                .collect(),
            errors,
            timeline: snapshot.timeline.clone(),
            sinks: BTreeMap::new(),
            run: RunInfo::default(),
            samples: Vec::new(),
            histograms: Histograms {
                overall: encode_histogram(h),
                per_name: by_name
                    .iter()
                    .map(|(name, stats)| (name.clone(), encode_histogram(&stats.latency_us)))
                    .collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome, RequestEvent};
    use crate::listener::RequestListener;
    use crate::stats::StatsRecorder;
    use std::time::{Duration, SystemTime};

    #[test]
    fn summary_schema_and_values() {
        let interner = EndpointInterner::default();
        let get = interner.intern("GET", "home");
        let post = interner.intern("POST", "home");
        let stats = StatsRecorder::default();
        for (endpoint, ms, outcome) in [
            (&get, 10, Outcome::Success),
            (&get, 20, Outcome::Success),
            (
                &post,
                30,
                Outcome::Failure("HTTP 500 Internal Server Error"),
            ),
        ] {
            stats.on_request(&RequestEvent {
                endpoint,
                start_time: SystemTime::now(),
                response_time: Duration::from_millis(ms),
                response_length: 1,
                status: Some(200),
                outcome,
                url: None,
                response: None,
                retry: false,
            });
        }
        stats.add_duration(Duration::from_secs(2));
        let summary = Summary::from_snapshot(&stats.snapshot());
        assert_eq!(summary.totals.requests, 3);
        assert_eq!(summary.totals.failures, 1);
        assert!((summary.totals.rps - 1.5).abs() < 1e-9);
        let home = &summary.per_name["home"];
        assert_eq!(home.count, 3);
        assert_eq!(home.failures, 1);
        assert!((home.min_ms - 10.0).abs() < 0.02);
        assert!((home.max_ms - 30.0).abs() < 0.05);
        assert_eq!(summary.errors[0].error, "HTTP 500 Internal Server Error");
        let json = serde_json::to_value(&summary).unwrap_or_default();
        for key in ["totals", "latency_overall", "per_name", "errors"] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert!(json["per_name"]["home"]["p99_ms"].is_number());
    }
}
