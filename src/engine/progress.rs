//! The status line printed to stderr every 2 s while a test runs.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::RunShared;
use crate::protocol::Protocol;
use crate::stats::StatsRecorder;

/// Prints elapsed time, users, requests per second, failures and p95.
#[derive(Debug, Clone)]
pub struct Progress {
    stats: Arc<StatsRecorder>,
    interval: Duration,
}

impl Progress {
    /// A status line every 2 s, read from `stats`.
    pub fn new(stats: Arc<StatsRecorder>) -> Self {
        Self {
            stats,
            interval: Duration::from_secs(2),
        }
    }

    pub(super) async fn run<P: Protocol>(self, shared: Arc<RunShared<P>>, done: CancellationToken) {
        let start = Instant::now();
        let (mut last_requests, mut last_failures) = self.stats.counts();
        let base_failures = last_failures;
        let mut last_at = start;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = done.cancelled() => return,
            }
            let (requests, failures) = self.stats.counts();
            let now = Instant::now();
            let rps = (requests - last_requests) as f64 / (now - last_at).as_secs_f64();
            let snapshot = self.stats.snapshot();
            let p95 = crate::stats::Summary::from_snapshot(&snapshot)
                .latency_overall
                .p95_ms;
            let line = format!(
                "[{:>6.1}s] users {:>6} | {:>10.1} req/s | failures {:>8} (+{}) | p95 {:>8.2} ms\n",
                start.elapsed().as_secs_f64(),
                shared.active_users.load(Ordering::Relaxed),
                rps,
                failures - base_failures,
                failures - last_failures,
                p95
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            last_requests = requests;
            last_failures = failures;
            last_at = now;
        }
    }
}
