//! Tests of the whole page: sections, escaping, size of a long run.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::render_html;
use crate::stats::document::encode_histogram;
use crate::stats::{
    ErrorCount, LatencyOverall, LoadDescription, NameStats, ResponseSample, RunInfo, SlaGateResult,
    Summary, TimelineEntry, Totals,
};

fn name_stats(count: u64, failures: u64) -> NameStats {
    NameStats {
        count,
        failures,
        rps: count as f64 / 3600.0,
        min_ms: 1.0,
        max_ms: 950.0,
        mean_ms: 21.5,
        p50_ms: 12.0,
        p90_ms: 40.0,
        p95_ms: 80.0,
        p99_ms: 400.0,
        response_bytes: count * 512,
        retries: 0,
    }
}

/// A summary of an hour with a few endpoints, one of them failing.
pub(super) fn hour_summary(seconds: u64) -> Summary {
    let mut per_name = BTreeMap::new();
    per_name.insert("/fast".to_string(), name_stats(300_000, 0));
    per_name.insert("/slow <b>".to_string(), name_stats(60_000, 0));
    per_name.insert("/status/500".to_string(), name_stats(6_000, 6_000));
    Summary {
        totals: Totals {
            requests: 366_000,
            successes: 360_000,
            failures: 6_000,
            failure_rate: 6_000.0 / 366_000.0,
            duration_s: seconds as f64,
            rps: 366_000.0 / seconds as f64,
            dropped_iterations: 0,
        },
        latency_overall: LatencyOverall {
            count: 366_000,
            p50_ms: 12.0,
            p90_ms: 40.0,
            p95_ms: 80.0,
            p99_ms: 400.0,
            max_ms: 950.0,
        },
        per_name,
        errors: vec![ErrorCount {
            request_type: "GET".into(),
            name: "/status/500".into(),
            error: "HTTP 500 Internal Server Error".into(),
            occurrences: 6_000,
        }],
        timeline: (0..seconds)
            .map(|t| TimelineEntry {
                t,
                users: (t / 10).min(50),
                requests: 100 + t % 37,
                failures: t % 3,
                p50_ms: 10.0 + (t % 11) as f64,
                p95_ms: 60.0 + (t % 23) as f64,
                p99_ms: 300.0 + (t % 97) as f64,
            })
            .collect(),
        sinks: BTreeMap::new(),
        run: RunInfo::default(),
        samples: Vec::new(),
        histograms: Default::default(),
    }
}

/// The summary with its `run`, `histograms` and `samples` blocks filled in.
fn document(mut summary: Summary) -> Summary {
    for (i, name) in summary.per_name.keys().enumerate() {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for v in 1..2_000u64 {
            h.record_n(v * 50 * (i as u64 + 1), 1 + v % 7)
                .expect("record");
        }
        summary
            .histograms
            .per_name
            .insert(name.clone(), encode_histogram(&h));
    }
    summary.run = RunInfo {
        started_at: Some("2026-11-26T07:00:00.000Z".into()),
        ended_at: Some("2026-11-26T08:00:00.000Z".into()),
        script: Some("checkout.json".into()),
        load: vec![LoadDescription {
            started_at: "2026-11-26T07:00:00.000Z".into(),
            ended_at: "2026-11-26T08:00:00.000Z".into(),
            duration_s: 3600.0,
            users: 50,
            spawn_rate: 10.0,
            test_time: Some(3600.0),
            shape: None,
            arrival_rate: None,
            users_started: 50,
            interrupted: false,
        }],
        sla: Some(vec![
            SlaGateResult {
                rule: "latency_p95".into(),
                passed: true,
                actual: Some(80.0),
                op: "lt".into(),
                value: 800.0,
                reason: String::new(),
            },
            SlaGateResult {
                rule: "failure_rate".into(),
                passed: false,
                actual: Some(0.0164),
                op: "lt".into(),
                value: 0.01,
                reason: String::new(),
            },
        ]),
        ..RunInfo::default()
    };
    summary.samples = vec![ResponseSample {
        request_type: "GET".into(),
        name: "/status/500".into(),
        url: "http://127.0.0.1:1/status/500".into(),
        status_code: Some(500),
        error: Some("HTTP 500 Internal Server Error".into()),
        start_time: "2026-11-26T07:00:01.000Z".into(),
        response_time_ms: 1.5,
        response_length: 13,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "<oops & more>".into(),
        body_truncated: false,
    }];
    summary
}

#[test]
fn an_hour_long_report_is_small_and_complete() {
    let html = render_html(&document(hour_summary(3600)));
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for id in [
        "id=\"endpoints\"",
        "id=\"timeline\"",
        "id=\"distributions\"",
        "id=\"errors\"",
        "id=\"sla\"",
        "id=\"samples\"",
        "id=\"downsampled\"",
        "data-chart=\"rps\"",
        "data-chart=\"latency\"",
        "data-chart=\"users\"",
        "data-chart=\"distribution-2\"",
        "SLA FAILED: 1 of 2 gates failed",
        "HTTP 500 Internal Server Error",
        "<td>512</td>",
        "50 users (spawn rate 10/s) for 3600 s",
        "checkout.json",
    ] {
        assert!(html.contains(id), "missing {id}");
    }
    // 3600 seconds downsampled to 600 points for each of the 6 timeline lines.
    assert_eq!(html.matches("data-points=\"600\"").count(), 6);
    // Text from the document is escaped, never markup.
    assert!(html.contains("/slow &lt;b&gt;"));
    assert!(!html.contains("/slow <b>"));
    assert!(html.contains("&lt;oops &amp; more&gt;"));
    // Self-contained: nothing to fetch.
    for needle in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "found {needle}");
    }
}

#[test]
fn missing_parts_are_said_so() {
    let mut summary = hour_summary(5);
    summary.errors.clear();
    summary
        .histograms
        .per_name
        .insert("/fast".into(), "!!".into());
    let html = render_html(&summary);
    assert!(html.contains("carries no histograms"));
    assert!(
        html.contains("Histogram not drawn"),
        "unreadable histogram named"
    );
    assert!(html.contains("No request failed."));
    assert!(html.contains("No SLA gate ran."));
    assert!(html.contains("No response samples"));
    assert!(!html.contains("id=\"sla-banner\""));
    assert!(!html.contains("id=\"downsampled\""));
    assert_eq!(html.matches("data-points=\"5\"").count(), 6);
}
