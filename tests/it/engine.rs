//! The engine and the CLI against the built-in target: scripts in LoadDensity's
//! format, the summary, errors, directories, stdin, bench, validate and Ctrl-C.

use crate::common;

use std::time::{Duration, Instant};

use common::{Target, Workdir, closed_port, run, stderr, stdout};
use serde_json::{Value, json};

fn script(actions: Value) -> String {
    json!({ "load_density": actions }).to_string()
}

#[test]
fn loaddensity_script_runs_unchanged_and_writes_the_summary() {
    let target = Target::start();
    let work = Workdir::new();
    let report = work.path("report");
    // LoadDensity's own template shape: legacy task map, fast_http_user.
    let file = work.write(
        "test.json",
        &script(json!([
            ["LD_start_test", {
                "user_detail_dict": {"user": "fast_http_user"},
                "user_count": 4, "spawn_rate": 100, "test_time": 2,
                "wait_time": {"constant": 0.01},
                "tasks": {
                    "get": {"request_url": target.url("/json")},
                    "post": {"request_url": target.url("/status/404"), "name": "missing"}
                }
            }],
            ["LD_generate_summary_report", {"report_name": report.to_str().expect("utf8")}]
        ])),
    );
    let summary_path = work.path("summary.json");
    let output = run(
        &[
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            summary_path.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.contains("Aggregated"), "{table}");
    assert!(table.contains("missing"), "{table}");

    let summary = common::read_json(&summary_path);
    let totals = &summary["totals"];
    let requests = totals["requests"].as_u64().expect("requests");
    let failures = totals["failures"].as_u64().expect("failures");
    assert!(requests > 50, "only {requests} requests");
    assert_eq!(
        requests,
        totals["successes"].as_u64().expect("successes") + failures
    );
    let json_name = target.url("/json");
    let ok = &summary["per_name"][&json_name];
    let missing = &summary["per_name"]["missing"];
    assert_eq!(ok["failures"], 0);
    assert_eq!(missing["failures"], missing["count"]);
    assert_eq!(
        ok["count"].as_u64().expect("count") + missing["count"].as_u64().expect("count"),
        requests
    );
    // Both tasks run once per iteration, in order: counts differ by at most the users.
    let diff = ok["count"].as_i64().expect("n") - missing["count"].as_i64().expect("n");
    assert!((0..=4).contains(&diff), "diff {diff}");
    assert_eq!(summary["errors"][0]["error"], "HTTP 404 Not Found");
    assert!(totals["rps"].as_f64().expect("rps") > 0.0);
    assert!((1.9..4.0).contains(&totals["duration_s"].as_f64().expect("duration")));
    for key in ["count", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"] {
        assert!(summary["latency_overall"][key].is_number(), "{key}");
    }
    // LD_generate_summary_report wrote the same schema.
    let report = work.read_json("report.json");
    assert_eq!(report["totals"]["requests"], requests);
}

#[test]
fn failures_connection_errors_timeouts_and_redirects() {
    let target = Target::start();
    let work = Workdir::new();
    let refused = format!("http://127.0.0.1:{}/", closed_port());
    let file = work.write(
        "t.json",
        &script(json!([["LD_start_test", {
            "user_count": 2, "spawn_rate": 100, "test_time": 1.5,
            "wait_time": {"constant": 0},
            "tasks": [
                {"method": "GET", "url": refused, "name": "refused"},
                {"method": "get", "url": target.url("/delay/1000"), "name": "slow", "timeout": 0.2},
                {"method": "get", "url": target.url("/redirect/3"), "name": "followed"},
                {"method": "get", "url": target.url("/redirect/3"), "name": "not-followed", "allow_redirects": false},
                {"method": "get", "url": target.url("/bytes/3000"), "name": "bytes"}
            ]
        }]])),
    );
    let (_, summary) = common::run_ok_with_summary(&file, &work);
    let per_name = &summary["per_name"];
    for name in ["refused", "slow"] {
        assert!(
            per_name[name]["count"].as_u64().expect("count") > 0,
            "{name}"
        );
        assert_eq!(
            per_name[name]["failures"], per_name[name]["count"],
            "{name}"
        );
    }
    for name in ["followed", "not-followed", "bytes"] {
        assert_eq!(per_name[name]["failures"], 0, "{name}");
    }
    // The timeout bounds the slow request: about 200 ms, never the full second.
    let slow_max = per_name["slow"]["max_ms"].as_f64().expect("max");
    assert!((190.0..600.0).contains(&slow_max), "slow max {slow_max}");
    let errors: Vec<String> = summary["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| format!("{}: {}", e["name"], e["error"]))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("refused") && e.contains("connect to 127.0.0.1")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("slow") && e.contains("timeout")),
        "{errors:?}"
    );
}

#[test]
fn bad_scripts_name_file_action_field_and_other_actions_still_run() {
    let work = Workdir::new();
    let report = work.path("after");
    let file = work.write(
        "bad.json",
        &script(json!([
            ["LD_start_test", {"user_count": 1, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/", "colour": "red"}]}],
            ["LD_start_test", {"user_count": "many", "tasks": []}],
            ["LD_start_test", {"user_detail_dict": {"user": "kafka_user"}, "tasks": []}],
            ["LD_start_test", {"runner_mode": "master", "tasks": []}],
            ["LD_no_such_command", {}],
            ["LD_sleep", {"secs": 1}],
            "not an action",
            ["LD_generate_summary_report", {"report_name": report.to_str().expect("utf8")}]
        ])),
    );
    let name = file.to_str().expect("utf8");
    let output = run(&["run", name], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let expect = [
        format!("{name}: action[0] (LD_start_test): field `tasks[0].colour`: unknown field"),
        format!("{name}: action[1] (LD_start_test): field `user_count`: invalid type"),
        format!(
            "{name}: action[2] (LD_start_test): field `user_detail_dict.user`: unknown user type `kafka_user`; expected one of: fast_http_user, http_user"
        ),
        format!(
            "{name}: action[3] (LD_start_test): field `runner_mode`: loaddensity does not run a Locust master"
        ),
        format!("{name}: action[4] (LD_no_such_command): unknown command"),
        format!(
            "{name}: action[5] (LD_sleep): field `secs`: unknown field `secs`, expected `seconds`"
        ),
        format!("{name}: action[6] (?): malformed action"),
    ];
    for line in &expect {
        assert!(err.contains(line), "missing `{line}` in:\n{err}");
    }
    // runner_mode master says how to run one instead.
    assert!(err.contains("locust --master"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The last action still ran.
    assert_eq!(work.read_json("after.json")["totals"]["requests"], 0);
}

#[test]
fn malformed_json_reports_line_and_column() {
    let work = Workdir::new();
    let file = work.write(
        "broken.json",
        "{\"load_density\": [\n  [\"LD_summary\"],\n  ]\n}",
    );
    let name = file.to_str().expect("utf8");
    let output = run(&["run", name], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{name}: line 3, column 3: malformed JSON")),
        "{err}"
    );
    let output = run(&["validate", name], None);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn validate_checks_without_sending() {
    let work = Workdir::new();
    // Nothing listens there: validate must not care.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let good = work.write(
        "good.json",
        &script(json!([["LD_start_test", {"user_count": 1, "test_time": 600, "tasks": [{"method": "get", "url": url}]}]])),
    );
    let started = Instant::now();
    let output = run(&["validate", good.to_str().expect("utf8")], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr(&output).contains(": ok"));

    let bad = work.write(
        "bad.json",
        &script(json!([
            ["LD_start_test", {"tasks": [{"method": "get", "url": url, "timeout": -1}]}],
            ["LD_sleep", [1, 2]]
        ])),
    );
    let output = run(&["validate", bad.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("action[0] (LD_start_test): field `tasks[0].timeout`"),
        "{err}"
    );
    assert!(
        err.contains("action[1] (LD_sleep): takes at most 1 positional"),
        "{err}"
    );
}

#[test]
fn directory_runs_in_sorted_order_and_stdin_works() {
    let target = Target::start();
    let work = Workdir::new();
    let scripts = work.path("scripts");
    std::fs::create_dir(&scripts).expect("mkdir");
    let report = work.path("report");
    // 2-report.json must run after 1-load.json, or the report is empty.
    std::fs::write(
        scripts.join("2-report.json"),
        script(json!([[
            "LD_generate_summary_report",
            [report.to_str().expect("utf8")]
        ]])),
    )
    .expect("write");
    std::fs::write(
        scripts.join("1-load.json"),
        script(json!([["LD_start_test", {"user_count": 1, "test_time": 1, "wait_time": {"constant": 0.05}, "tasks": [{"method": "get", "url": target.url("/")}]}]])),
    )
    .expect("write");
    std::fs::write(scripts.join("notes.txt"), "ignored").expect("write");
    let output = run(&["run", scripts.to_str().expect("utf8")], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(work.read_json("report.json")["totals"]["requests"].as_u64() > Some(0));

    let summary = work.path("stdin.json");
    let output = run(
        &[
            "run",
            "-",
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        Some(&script(
            json!([["LD_start_test", [{"user": "http_user"}, 1, 10, 1, null], ], ["LD_summary"]]),
        )),
    );
    // Positional LD_start_test without tasks is an error naming the field.
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("<stdin>: action[0] (LD_start_test): missing field `tasks`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bench_command_loads_one_url() {
    let target = Target::start();
    let work = Workdir::new();
    let summary = work.path("bench.json");
    let output = run(
        &[
            "bench",
            &target.url("/bytes/100"),
            "-u",
            "4",
            "-d",
            "1s",
            "-H",
            "X-Test: 1",
            "--quiet",
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary);
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    assert!(requests > 100, "{requests}");
    assert_eq!(summary["totals"]["failures"], 0);
}

#[test]
fn ctrl_c_stops_gracefully_and_still_writes_the_summary() {
    let target = Target::start();
    let work = Workdir::new();
    let report = work.path("after-interrupt");
    let file = work.write(
        "forever.json",
        &script(json!([
            ["LD_start_test", {"user_count": 3, "test_time": null, "wait_time": {"constant": 0.01},
                "tasks": [{"method": "get", "url": target.url("/delay/20")}]}],
            ["LD_sleep", {"seconds": 600}],
            ["LD_generate_summary_report", {"report_name": report.to_str().expect("utf8")}]
        ])),
    );
    let summary = work.path("summary.json");
    let child = common::bin()
        .args([
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            summary.to_str().expect("utf8"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let output = child.wait_with_output().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // The sleep was skipped (an interrupted action), the report was still written;
    // the exit code says the run was interrupted by SIGINT (128 + 2).
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stdout(&output).contains("Aggregated"));
    let written = common::read_json(&summary);
    let requests = written["totals"]["requests"].as_u64().expect("requests");
    assert!(requests > 10, "{requests}");
    assert_eq!(
        written["totals"]["failures"], 0,
        "in-flight requests finished, not cut"
    );
    assert_eq!(
        work.read_json("after-interrupt.json")["totals"]["requests"],
        requests
    );
}

#[test]
fn target_server_actions_and_execute_action() {
    let work = Workdir::new();
    let port = closed_port();
    let summary = work.path("s.json");
    let file = work.write(
        "t.json",
        &script(json!([
            ["LD_start_target_server", {"addr": format!("127.0.0.1:{port}")}],
            ["LD_execute_action", {"action_list": [
                ["LD_start_test", {"user_count": 2, "test_time": 1, "host": format!("http://127.0.0.1:{port}"),
                    "wait_time": {"between": [0.01, 0.02]}, "tasks": [{"method": "get", "url": "/json"}]}]
            ]}],
            ["LD_stop_target_server"],
            ["LD_clear_records"],
            ["LD_start_test", {"user_count": 1, "test_time": 0.5, "tasks": [{"method": "get", "url": format!("http://127.0.0.1:{port}/")}]}]
        ])),
    );
    let output = run(
        &[
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // The first test ran (its table was printed); after the records were cleared and
    // the target stopped, only connection failures remain.
    assert!(stdout(&output).contains("/json"));
    let summary = common::read_json(&summary);
    assert!(summary["per_name"].get("/json").is_none());
    let totals = &summary["totals"];
    assert!(totals["requests"].as_u64() > Some(0));
    assert_eq!(totals["failures"], totals["requests"]);
}

/// `bench --max-in-flight N` runs at most N users (LoadDensity's in-flight cap), and
/// `--http2` runs the client that offers HTTP/2 (plain http stays HTTP/1.1, as with
/// LoadDensity's httpx client).
#[test]
fn bench_http2_and_max_in_flight() {
    let target = Target::start();
    let work = Workdir::new();
    let summary = work.path("bench.json");
    let output = run(
        &[
            "bench",
            &target.url("/"),
            "-u",
            "8",
            "--max-in-flight",
            "2",
            "--http2",
            "-d",
            "1s",
            "--quiet",
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary);
    assert!(
        summary["totals"]["requests"].as_u64() > Some(100),
        "{summary}"
    );
    assert_eq!(summary["totals"]["failures"], 0);
    let load = &summary["run"]["load"][0];
    assert_eq!(load["users"], 2, "{load}");
    assert_eq!(load["users_started"], 2, "{load}");
    let refused = run(&["bench", &target.url("/"), "--max-in-flight", "0"], None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

/// LD_start_test's `engine`: LoadDensity's `locust` and `asyncio` both run here;
/// anything else is an error naming the field.
#[test]
fn engine_locust_and_asyncio_are_accepted() {
    let target = Target::start();
    let work = Workdir::new();
    let start = |engine: &str| {
        json!(["LD_start_test", {"user_count": 1, "spawn_rate": 10, "test_time": 0.3,
            "wait_time": {"constant": 0.01}, "engine": engine,
            "tasks": [{"method": "get", "url": target.url("/"), "name": engine}]}])
    };
    let file = work.write(
        "engines.json",
        &script(json!([start("locust"), start("asyncio")])),
    );
    let (_, summary) = common::run_ok_with_summary(&file, &work);
    for engine in ["locust", "asyncio"] {
        assert!(
            summary["per_name"][engine]["count"].as_u64() > Some(3),
            "{summary}"
        );
    }
    common::summary::assert_action_errors(
        &work,
        vec![start("trio")],
        &[("engine", "expected one of: locust, asyncio")],
    );
}
