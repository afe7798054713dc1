//! Samples the statistics once a second while a test runs, for the summary's timeline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::RunShared;
use crate::protocol::Protocol;
use crate::stats::{StatsRecorder, TimelineEntry};

/// Appends one entry per second until `done`, then one for the last partial second.
pub(super) async fn sample_every_second<P: Protocol>(
    stats: Arc<StatsRecorder>,
    shared: Arc<RunShared<P>>,
    done: CancellationToken,
) {
    let mut t = stats.timeline_next_second();
    let mut before = stats.aggregate_latency();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let finished = tokio::select! {
            _ = ticker.tick() => false,
            _ = done.cancelled() => true,
        };
        if finished {
            // Let stopping users report their last requests first.
            let _ = tokio::time::timeout(super::STOP_GRACE, async {
                while shared.active_users.load(Ordering::Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        let after = stats.aggregate_latency();
        let users = shared.active_users.load(Ordering::Relaxed) as u64;
        stats.push_timeline(TimelineEntry::between(
            t,
            users,
            (&before.0, before.1),
            (&after.0, after.1),
        ));
        before = after;
        t += 1;
        if finished {
            break;
        }
    }
}
