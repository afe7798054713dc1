//! `loaddensity merge`: counts add, merged percentiles are those of one histogram of
//! every recorded value, self-merge with `--force` doubles counts and keeps every
//! percentile, different scripts and a segment seen twice are refused, and the
//! Indexed-Job pattern (N segments run as processes, then merged) adds up.

use crate::common;

use std::time::{Duration, SystemTime};

use common::{Target, Workdir, bin, read_json, stderr};
use loaddensity::event::intern_endpoint;
use loaddensity::listener::RequestListener;
use loaddensity::stats::{ResultDocument, merge_results};
use loaddensity::{Outcome, RequestEvent, StatsRecorder, Summary};
use serde_json::json;

fn record(recorders: &[&StatsRecorder], name: &str, micros: u64, ok: bool) {
    let endpoint = intern_endpoint("GET", name);
    let event = RequestEvent {
        endpoint: &endpoint,
        start_time: SystemTime::now(),
        response_time: Duration::from_micros(micros),
        response_length: 10,
        status: Some(if ok { 200 } else { 500 }),
        url: None,
        response: None,
        retry: false,
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failure("HTTP 500")
        },
    };
    for recorder in recorders {
        recorder.on_request(&event);
    }
}

fn summary(recorder: &StatsRecorder, segment: &str) -> Summary {
    recorder.add_duration(Duration::from_secs(2));
    let mut summary = Summary::from_snapshot(&recorder.snapshot());
    summary.run.script = Some("s.json".into());
    summary.run.segment = Some(segment.into());
    summary
}

#[test]
fn merged_percentiles_are_those_of_all_values() {
    let (a, b, all) = (
        StatsRecorder::default(),
        StatsRecorder::default(),
        StatsRecorder::default(),
    );
    // Two instances with very different latencies: averaging percentiles would be wrong.
    for i in 0..5000u64 {
        record(&[&a, &all], "fast", 1000 + i % 700, i % 50 != 0);
        if i % 3 == 0 {
            record(&[&b, &all], "slow", 80_000 + i * 13, true);
            record(&[&b, &all], "fast", 5_000 + i, true);
        }
    }
    let docs = vec![
        ("a.json".to_string(), summary(&a, "0/2")),
        ("b.json".to_string(), summary(&b, "1/2")),
    ];
    let merged = merge_results(&docs, false).expect("merges");
    let whole = summary(&all, "0/1");
    assert_eq!(merged.totals.requests, whole.totals.requests);
    assert_eq!(
        merged.totals.requests,
        docs[0].1.totals.requests + docs[1].1.totals.requests
    );
    assert_eq!(merged.totals.failures, whole.totals.failures);
    assert_eq!(merged.latency_overall, whole.latency_overall);
    for name in ["fast", "slow"] {
        let (m, w) = (&merged.per_name[name], &whole.per_name[name]);
        assert_eq!(m.count, w.count, "{name}");
        assert_eq!(m.failures, w.failures, "{name}");
        assert_eq!(
            (m.p50_ms, m.p90_ms, m.p95_ms, m.p99_ms, m.max_ms, m.min_ms),
            (w.p50_ms, w.p90_ms, w.p95_ms, w.p99_ms, w.max_ms, w.min_ms),
            "{name}"
        );
    }
    // The merged histograms decode to the same numbers.
    let overall = merged.overall_histogram().expect("decodes");
    assert_eq!(overall.len(), whole.totals.requests);
    let errors: u64 = merged.errors.iter().map(|e| e.occurrences).sum();
    assert_eq!(errors, whole.totals.failures);
}

#[test]
fn self_merge_doubles_counts_and_keeps_percentiles() {
    let recorder = StatsRecorder::default();
    for i in 0..1000u64 {
        record(&[&recorder], "x", 500 + i * 7, i % 10 != 0);
    }
    let doc = summary(&recorder, "0/2");
    let docs = vec![
        ("r.json".to_string(), doc.clone()),
        ("r.json".to_string(), doc.clone()),
    ];
    let error = merge_results(&docs, false).expect_err("same segment twice");
    assert!(error.to_string().contains("segment 0/2"), "{error}");
    let merged = merge_results(&docs, true).expect("--force merges");
    assert_eq!(merged.totals.requests, 2 * doc.totals.requests);
    assert_eq!(merged.totals.failures, 2 * doc.totals.failures);
    assert_eq!(merged.per_name["x"].count, 2 * doc.per_name["x"].count);
    let (m, d) = (&merged.latency_overall, &doc.latency_overall);
    assert_eq!(
        (m.p50_ms, m.p90_ms, m.p95_ms, m.p99_ms, m.max_ms),
        (d.p50_ms, d.p90_ms, d.p95_ms, d.p99_ms, d.max_ms)
    );
    assert_eq!(m.count, 2 * d.count);
    // Different scripts are refused, with both names.
    let mut other = doc.clone();
    other.run.script = Some("other.json".into());
    other.run.segment = Some("1/2".into());
    let error = merge_results(&[("a".into(), doc), ("b".into(), other)], true)
        .expect_err("different scripts");
    assert!(error.to_string().contains("other.json"), "{error}");
}

#[test]
fn segments_run_as_processes_merge_into_one_result() {
    let target = Target::start();
    let work = Workdir::new();
    let file = work.write(
        "s.json",
        &json!({"load_density": [["LD_start_test", {
            "user_count": 5, "spawn_rate": 100, "test_time": 1,
            "wait_time": {"constant": 0.01},
            "tasks": [
                {"method": "GET", "url": target.url("/"), "name": "home"},
                {"method": "GET", "url": target.url("/status/503"), "name": "down"},
            ],
        }]]})
        .to_string(),
    );
    let at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(2)).to_string();
    let children: Vec<_> = (0..2)
        .map(|i| {
            bin()
                .args(["run", file.to_str().expect("utf8"), "--start-at", &at])
                .args([
                    "--segment",
                    &format!("{i}/2"),
                    "--instance",
                    &format!("pod-{i}"),
                ])
                .arg("--summary-json")
                .arg(work.path(&format!("r{i}.json")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait");
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let (r0, r1) = (work.path("r0.json"), work.path("r1.json"));
    let merged_path = work.path("merged.json");
    let output = bin()
        .args([
            "merge",
            r0.to_str().expect("utf8"),
            r1.to_str().expect("utf8"),
            "-o",
        ])
        .arg(&merged_path)
        .output()
        .expect("merge");
    assert!(output.status.success(), "{}", stderr(&output));
    let (a, b) = (
        ResultDocument::read(&r0).expect("r0"),
        ResultDocument::read(&r1).expect("r1"),
    );
    let merged = ResultDocument::read(&merged_path).expect("merged");
    assert_eq!(
        merged.totals.requests,
        a.totals.requests + b.totals.requests
    );
    assert_eq!(
        merged.totals.failures,
        a.totals.failures + b.totals.failures
    );
    assert_eq!(
        merged.per_name["down"].count,
        a.per_name["down"].count + b.per_name["down"].count
    );
    let mut expected = a.overall_histogram().expect("a");
    expected
        .add(b.overall_histogram().expect("b"))
        .expect("adds");
    assert_eq!(
        merged.latency_overall.p99_ms,
        expected.value_at_quantile(0.99) as f64 / 1000.0
    );
    // Each instance describes its slice of the load; the merge, the whole of it.
    let users = |d: &ResultDocument| (d.run.load[0].users, d.run.load[0].spawn_rate);
    assert_eq!((users(&a), users(&b)), ((2, 50.0), (3, 50.0)));
    assert_eq!(users(&merged), (5, 100.0));
    assert_eq!(
        merged.run.load[0].users_started,
        a.run.load[0].users_started + b.run.load[0].users_started
    );
    let raw = read_json(&merged_path);
    let instances = raw["run"]["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 2, "{}", raw["run"]);
    assert_eq!(instances[1]["instance"], "pod-1");
    assert_eq!(instances[1]["segment"], "1/2");
    assert_eq!(
        raw["run"]["started_at"],
        json!(a.run.started_at.clone().min(b.run.started_at.clone()))
    );
    let timeline_requests: u64 = merged.timeline.iter().map(|e| e.requests).sum();
    let parts: u64 = a
        .timeline
        .iter()
        .chain(&b.timeline)
        .map(|e| e.requests)
        .sum();
    assert_eq!(timeline_requests, parts);

    // One segment twice: refused without --force; an SLA gate on the merged result.
    let output = bin()
        .args([
            "merge",
            r0.to_str().expect("utf8"),
            r0.to_str().expect("utf8"),
            "-o",
        ])
        .arg(work.path("twice.json"))
        .output()
        .expect("merge");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    let rules = work.write(
        "rules.json",
        &json!([{"type": "failure_rate", "op": "lt", "value": 0.01}]).to_string(),
    );
    let output = bin()
        .args([
            "merge",
            r0.to_str().expect("utf8"),
            r1.to_str().expect("utf8"),
            "-o",
        ])
        .arg(work.path("gated.json"))
        .arg("--sla")
        .arg(&rules)
        .output()
        .expect("merge");
    assert_eq!(output.status.code(), Some(99), "{}", stderr(&output));
}
