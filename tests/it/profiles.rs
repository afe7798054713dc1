//! Load shapes read from the timeline, the timeline itself, and shape errors.

use crate::common;

use common::{Target, Workdir, run, stderr};
use serde_json::{Value, json};

/// Runs one LD_start_test with these extra arguments against `path` and returns the summary.
fn run_shape(target: &Target, path: &str, extra: Value) -> Value {
    let work = Workdir::new();
    let mut args = json!({
        "user_count": 1, "test_time": 60,
        "wait_time": {"constant": 0.02},
        "tasks": [{"method": "get", "url": target.url(path)}]
    });
    if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        args.extend(extra.clone());
    }
    let file = work.write("t.json", &json!([["LD_start_test", args]]).to_string());
    common::run_ok_with_summary(&file, &work).1
}

fn users_at(summary: &Value, t: u64) -> u64 {
    summary["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["t"] == t)
        .and_then(|e| e["users"].as_u64())
        .unwrap_or_else(|| panic!("no timeline entry at t={t}: {}", summary["timeline"]))
}

#[test]
fn stages_follow_the_users_and_end_the_test() {
    let target = Target::start();
    let summary = run_shape(
        &target,
        "/delay/100",
        json!({"load_shape": "stages", "shape_config": {"stages": [
            {"duration": 2.5, "users": 4, "spawn_rate": 100},
            {"duration": 2.0, "users": 1, "spawn_rate": 100}
        ]}}),
    );
    // Ended by the shape (4.5 s), not by test_time (60 s).
    let duration = summary["totals"]["duration_s"].as_f64().expect("duration");
    assert!((4.4..6.0).contains(&duration), "duration {duration}");
    assert_eq!(users_at(&summary, 0), 4);
    assert_eq!(users_at(&summary, 1), 4);
    assert_eq!(users_at(&summary, 3), 1);
    // Stopped users finished their in-flight requests: nothing was cut.
    assert_eq!(summary["totals"]["failures"], 0);
}

#[test]
fn spike_and_soak_shapes() {
    let target = Target::start();
    let spike = run_shape(
        &target,
        "/",
        json!({"load_shape": "spike", "shape_config": {
            "baseline_users": 1, "spike_users": 5, "spawn_rate": 100,
            "pre_seconds": 1.5, "spike_seconds": 1.5, "post_seconds": 1.5}}),
    );
    assert_eq!(users_at(&spike, 0), 1);
    assert_eq!(users_at(&spike, 1), 5);
    assert_eq!(users_at(&spike, 3), 1);

    let soak = run_shape(
        &target,
        "/",
        json!({"load_shape": "soak", "shape_config": {
            "users": 6, "spawn_rate": 100, "ramp_seconds": 2, "hold_seconds": 1.5, "cooldown_seconds": 2}}),
    );
    // Ramp: 3 users at 1 s (4 if the sample comes late on a busy machine), all 6
    // while holding, back down during the cooldown.
    assert!(
        (3..=4).contains(&users_at(&soak, 0)),
        "{}",
        users_at(&soak, 0)
    );
    assert_eq!(users_at(&soak, 2), 6);
    assert!(users_at(&soak, 4) < 6);
    let duration = soak["totals"]["duration_s"].as_f64().expect("duration");
    assert!((5.4..7.0).contains(&duration), "duration {duration}");
}

#[test]
fn test_time_caps_a_shape_and_the_timeline_adds_up() {
    let target = Target::start();
    let summary = run_shape(
        &target,
        "/",
        json!({"test_time": 2.5, "load_shape": "stages",
               "shape_config": {"stages": [{"duration": 30, "users": 2}]}}),
    );
    let duration = summary["totals"]["duration_s"].as_f64().expect("duration");
    assert!((2.4..4.0).contains(&duration), "duration {duration}");
    let timeline = summary["timeline"].as_array().expect("timeline");
    // Two whole seconds and the last partial one.
    assert_eq!(timeline.len(), 3, "{timeline:?}");
    let sum: u64 = timeline
        .iter()
        .map(|e| e["requests"].as_u64().expect("n"))
        .sum();
    assert_eq!(
        sum,
        summary["totals"]["requests"].as_u64().expect("requests")
    );
    for entry in timeline {
        for key in [
            "t", "users", "requests", "failures", "p50_ms", "p95_ms", "p99_ms",
        ] {
            assert!(entry[key].is_number(), "{key} in {entry}");
        }
        assert!(entry["p95_ms"].as_f64() >= entry["p50_ms"].as_f64());
    }
}

#[test]
fn bad_shapes_are_clear_errors() {
    let work = Workdir::new();
    let file = work.write(
        "bad.json",
        &json!([
            ["LD_start_test", {"load_shape": "ramp", "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}],
            ["LD_start_test", {"load_shape": "spike", "shape_config": {"peak": 1}, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}],
            ["LD_start_test", {"shape_config": {"users": 1}, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}]
        ])
        .to_string(),
    );
    let output = run(&["validate", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    for needle in [
        "action[0] (LD_start_test): field `load_shape`: unknown shape `ramp`; expected one of: stages, spike, soak",
        "action[1] (LD_start_test): field `shape_config.peak`: unknown key; expected one of: baseline_users",
        "action[2] (LD_start_test): field `shape_config`: given without `load_shape`",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in {err}");
    }
}
