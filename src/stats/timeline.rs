//! The per-second timeline of a run (`timeline` in the summary).
//!
//! Each entry's percentiles come from that second's own histogram: the difference of
//! two cumulative snapshots merged from the worker shards. Only the numbers are kept
//! (about 60 bytes a second), so memory stays bounded for runs of hours.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::summary::percentile_ms;

/// One second of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Seconds since the first test since start or `LD_clear_records` began.
    pub t: u64,
    /// Users running at the end of that second.
    pub users: u64,
    /// Requests completed in that second.
    pub requests: u64,
    /// Of those, failures.
    pub failures: u64,
    /// Median latency in that second, ms.
    pub p50_ms: f64,
    /// 95th percentile in that second, ms.
    pub p95_ms: f64,
    /// 99th percentile in that second, ms.
    pub p99_ms: f64,
}

impl TimelineEntry {
    /// The entry for the requests recorded between two cumulative snapshots.
    pub(crate) fn between(
        t: u64,
        users: u64,
        before: (&Histogram<u64>, u64),
        after: (&Histogram<u64>, u64),
    ) -> Self {
        let mut second = after.0.clone();
        // `after` is a later snapshot of the same counts, so nothing goes below zero.
        let _ = second.subtract(before.0);
        Self {
            t,
            users,
            requests: second.len(),
            failures: after.1.saturating_sub(before.1),
            p50_ms: percentile_ms(&second, 50.0),
            p95_ms: percentile_ms(&second, 95.0),
            p99_ms: percentile_ms(&second, 99.0),
        }
    }
}
