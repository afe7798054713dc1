//! SLA gates end to end: `LD_evaluate_sla`, `LD_assert_sla`, `bench --sla`, validate,
//! and the exit codes (0 passed, 99 only gates failed, 1 otherwise).

use crate::common;

use common::{Target, Workdir, run, stderr, stdout};
use serde_json::json;

fn script_with_gates(
    target: &Target,
    gates: serde_json::Value,
    extra: serde_json::Value,
) -> String {
    let mut actions = json!([
        ["LD_start_test", {"user_count": 2, "spawn_rate": 100, "test_time": 1,
            "wait_time": {"constant": 0.01},
            "tasks": [
                {"method": "get", "url": target.url("/delay/20"), "name": "slow"},
                {"method": "get", "url": target.url("/"), "name": "fast"}
            ]}],
        ["LD_evaluate_sla", {"rules": gates.clone()}],
        ["LD_assert_sla", {"rules": gates}]
    ]);
    if let (Some(list), Some(more)) = (actions.as_array_mut(), extra.as_array()) {
        list.extend(more.iter().cloned());
    }
    json!({"load_density": actions}).to_string()
}

#[test]
fn passing_gates_exit_zero_and_failing_gates_exit_99() {
    let target = Target::start();
    let work = Workdir::new();
    let passing = json!([
        {"type": "latency_p95", "name": "slow", "op": "gte", "value": 20},
        {"type": "latency_p50", "name": "fast", "op": "lt", "value": 20},
        {"type": "failure_rate", "op": "lte", "value": 0},
        {"type": "requests", "op": "gte", "value": 10}
    ]);
    let file = work.write("pass.json", &script_with_gates(&target, passing, json!([])));
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("PASS  latency_p95(slow)="),
        "{}",
        stdout(&output)
    );

    let failing = json!([
        {"type": "latency_p95", "name": "slow", "op": "lte", "value": 1},
        {"type": "requests", "op": "gte", "value": 1}
    ]);
    let file = work.write("fail.json", &script_with_gates(&target, failing, json!([])));
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(99), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("action[2] (LD_assert_sla): SLA failed: latency_p95(slow)=")
            && err.contains("not lte 1"),
        "{err}"
    );
    // LD_evaluate_sla reports but does not fail.
    assert!(!err.contains("action[1]"), "{err}");

    // A broken script on top of a failed gate: exit 1.
    let file = work.write(
        "both.json",
        &script_with_gates(
            &target,
            json!([{"type": "latency_p95", "op": "lt", "value": 0.001}]),
            json!([["LD_no_such_command"]]),
        ),
    );
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[test]
fn validate_reports_bad_rules() {
    let work = Workdir::new();
    let file = work.write(
        "bad.json",
        &json!([
            ["LD_assert_sla", {"rules": [{"type": "latency_p42", "value": 1}]}],
            ["LD_evaluate_sla", {"rules": [{"type": "requests", "op": "eq", "value": 1}]}],
            ["LD_assert_sla", {"rules": [{"type": "requests"}]}]
        ])
        .to_string(),
    );
    let output = run(&["validate", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    for needle in [
        "action[0] (LD_assert_sla): field `rules[0].type`: unknown type `latency_p42`",
        "action[1] (LD_evaluate_sla): field `rules[0].op`: unknown op `eq`",
        "action[2] (LD_assert_sla): field `rules[0].value`: missing",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in {err}");
    }
}

#[test]
fn bench_accepts_gates_as_flags() {
    let target = Target::start();
    let url = target.url("/delay/5");
    let ok = run(
        &[
            "bench",
            &url,
            "-u",
            "2",
            "-d",
            "1s",
            "--quiet",
            "--sla",
            "p99>=5",
            "--sla",
            "failure_rate<0.01",
            "--sla",
            "mean<1000",
        ],
        None,
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let slow = run(
        &[
            "bench", &url, "-u", "2", "-d", "1s", "--quiet", "--sla", "p95<1",
        ],
        None,
    );
    assert_eq!(slow.status.code(), Some(99), "{}", stderr(&slow));
    assert!(stderr(&slow).contains("latency_p95="), "{}", stderr(&slow));
    let bad = run(&["bench", &url, "-d", "1s", "--sla", "p97<1"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("unknown metric `p97`"),
        "{}",
        stderr(&bad)
    );
}

/// `summary`: the gates judge a given summary (LoadDensity's `build_summary()` shape,
/// or a file written by `LD_generate_summary_report`) instead of the live one.
#[test]
fn gates_take_a_given_summary() {
    let work = Workdir::new();
    // LoadDensity's own summary: no duration, no per-name failures or rps.
    let loaddensity_summary = json!({
        "totals": {"requests": 100, "successes": 90, "failures": 10, "failure_rate": 0.1},
        "latency_overall": {"count": 100, "p50_ms": 10.0, "p90_ms": 20.0, "p95_ms": 30.0,
                            "p99_ms": 40.0, "max_ms": 50.0},
        "per_name": {"home": {"count": 90, "min_ms": 1.0, "max_ms": 50.0, "mean_ms": 12.0,
                              "p50_ms": 10.0, "p90_ms": 20.0, "p95_ms": 30.0, "p99_ms": 40.0}}
    });
    let path = work.write("given.json", &loaddensity_summary.to_string());
    let gates = json!([
        {"type": "requests", "op": "gte", "value": 100},
        {"type": "latency_p95", "name": "home", "op": "lte", "value": 30}
    ]);
    let failing = json!([{"type": "failure_rate", "op": "lt", "value": 0.05}]);
    let file = work.write(
        "given-sla.json",
        &json!({"load_density": [
            ["LD_assert_sla", {"rules": gates, "summary": loaddensity_summary}],
            ["LD_assert_sla", {"rules": gates, "summary": path.to_str().expect("utf8")}],
            ["LD_evaluate_sla", {"rules": failing, "summary": loaddensity_summary}]
        ]})
        .to_string(),
    );
    // No request was recorded live: the given summary alone passes the gates.
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output) + &stderr(&output);
    assert!(text.contains("PASS  requests=100"), "{text}");
    assert!(text.contains("FAIL  failure_rate=0.1"), "{text}");
    let bad = work.write(
        "bad-summary.json",
        &json!({"load_density": [
            ["LD_evaluate_sla", {"rules": gates, "summary": {"totals": {}}}],
            ["LD_evaluate_sla", {"rules": gates, "summary": 42}]
        ]})
        .to_string(),
    );
    let output = run(&["run", bad.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("action[0]") && text.contains("summary"),
        "{text}"
    );
    assert!(
        text.contains("action[1]") && text.contains("expected a summary object"),
        "{text}"
    );
}
