//! The data behind the charts: the timeline, downsampled when long, and the bins of
//! a response-time distribution taken from an HDR histogram.

use hdrhistogram::Histogram;

use super::chart::Bin;
use crate::stats::TimelineEntry;

/// Most points a chart line gets; longer timelines are downsampled into buckets of
/// several seconds (a 1-hour run: 6 s a point).
pub(crate) const MAX_POINTS: usize = 600;

/// Bars of a distribution chart.
pub(crate) const DISTRIBUTION_BINS: usize = 30;

/// One point of the timeline charts, covering `seconds` seconds from `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimelinePoint {
    /// Start of the bucket, seconds.
    pub(crate) t: f64,
    /// Average requests per second over the bucket.
    pub(crate) rps: f64,
    /// Average failures per second over the bucket.
    pub(crate) failures_per_s: f64,
    /// Median of the bucket's seconds, weighted by their requests, ms.
    pub(crate) p50_ms: f64,
    /// The worst second's 95th percentile, ms (a spike stays visible).
    pub(crate) p95_ms: f64,
    /// The worst second's 99th percentile, ms.
    pub(crate) p99_ms: f64,
    /// Users running at the end of the bucket.
    pub(crate) users: f64,
}

/// The timeline as at most [`MAX_POINTS`] points, and how many seconds each covers.
pub(crate) fn timeline_points(timeline: &[TimelineEntry]) -> (Vec<TimelinePoint>, usize) {
    let per_point = timeline.len().div_ceil(MAX_POINTS).max(1);
    let points = timeline
        .chunks(per_point)
        .filter_map(|bucket| {
            let first = bucket.first()?;
            let last = bucket.last()?;
            let seconds = bucket.len() as f64;
            let requests: u64 = bucket.iter().map(|e| e.requests).sum();
            let failures: u64 = bucket.iter().map(|e| e.failures).sum();
            let p50_ms = if requests == 0 {
                0.0
            } else {
                bucket
                    .iter()
                    .map(|e| e.p50_ms * e.requests as f64)
                    .sum::<f64>()
                    / requests as f64
            };
            Some(TimelinePoint {
                t: first.t as f64,
                rps: requests as f64 / seconds,
                failures_per_s: failures as f64 / seconds,
                p50_ms,
                p95_ms: bucket.iter().map(|e| e.p95_ms).fold(0.0, f64::max),
                p99_ms: bucket.iter().map(|e| e.p99_ms).fold(0.0, f64::max),
                users: last.users as f64,
            })
        })
        .collect();
    (points, per_point)
}

/// The histogram (µs) as about [`DISTRIBUTION_BINS`] bars between its minimum and
/// maximum, on a logarithmic scale when the range is wide (latencies have long tails).
pub(crate) fn distribution_bins(histogram: &Histogram<u64>) -> Vec<Bin> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let low = histogram.min().max(1) as f64;
    let high = (histogram.max() as f64).max(low);
    if high <= low || histogram.equivalent(histogram.min(), histogram.max()) {
        return vec![Bin {
            low_ms: low / 1000.0,
            high_ms: high / 1000.0,
            count: histogram.len(),
        }];
    }
    let n = DISTRIBUTION_BINS;
    let logarithmic = high / low > 20.0;
    let edge = |i: usize| {
        let f = i as f64 / n as f64;
        if logarithmic {
            low * (high / low).powf(f)
        } else {
            low + (high - low) * f
        }
    };
    let mut bins: Vec<Bin> = (0..n)
        .map(|i| Bin {
            low_ms: edge(i) / 1000.0,
            high_ms: edge(i + 1) / 1000.0,
            count: 0,
        })
        .collect();
    for value in histogram.iter_recorded() {
        let v = (histogram.highest_equivalent(value.value_iterated_to()) as f64).clamp(low, high);
        let f = if logarithmic {
            (v / low).ln() / (high / low).ln()
        } else {
            (v - low) / (high - low)
        };
        let i = ((f * n as f64) as usize).min(n - 1);
        bins[i].count += value.count_at_value();
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: u64, requests: u64, p95: f64) -> TimelineEntry {
        TimelineEntry {
            t,
            users: t,
            requests,
            failures: requests / 10,
            p50_ms: 10.0,
            p95_ms: p95,
            p99_ms: p95 * 2.0,
        }
    }

    #[test]
    fn short_timelines_are_kept_whole() {
        let timeline: Vec<_> = (0..60).map(|t| entry(t, 100, 20.0)).collect();
        let (points, per_point) = timeline_points(&timeline);
        assert_eq!((points.len(), per_point), (60, 1));
        assert_eq!(points[5].rps, 100.0);
        assert_eq!(points[5].failures_per_s, 10.0);
    }

    #[test]
    fn an_hour_is_downsampled_keeping_spikes_and_rates() {
        let timeline: Vec<_> = (0..3600)
            .map(|t| entry(t, 50, if t == 1234 { 900.0 } else { 20.0 }))
            .collect();
        let (points, per_point) = timeline_points(&timeline);
        assert_eq!(per_point, 6);
        assert_eq!(points.len(), 600);
        assert!(points.iter().all(|p| (p.rps - 50.0).abs() < 1e-9));
        assert_eq!(points.iter().map(|p| p.p95_ms).fold(0.0, f64::max), 900.0);
        assert_eq!(points.last().map(|p| p.users), Some(3599.0));
    }

    #[test]
    fn bins_count_every_request() {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for v in [1_000u64, 1_500, 2_000, 10_000, 400_000] {
            h.record_n(v, 7).expect("record");
        }
        let bins = distribution_bins(&h);
        assert_eq!(bins.len(), DISTRIBUTION_BINS);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 35);
        assert!(bins[0].low_ms >= 0.99 && bins[0].low_ms <= 1.0, "{bins:?}");
        assert_eq!(bins.last().map(|b| b.count), Some(7));
        let mut one = Histogram::<u64>::new(3).expect("histogram");
        one.record(5_000).expect("record");
        assert_eq!(distribution_bins(&one).len(), 1);
        assert!(distribution_bins(&Histogram::<u64>::new(3).expect("h")).is_empty());
    }
}
