//! The open model: achieved rate, ramping stages, dropped iterations, and a stalled
//! target (SIGSTOP) showing in the percentiles (no coordinated omission).

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Target, Workdir, closed_port, run, stderr};
use serde_json::{Value, json};

fn run_arrival(url: &str, test_time: f64, arrival: Value) -> Value {
    let work = Workdir::new();
    let file = work.write(
        "t.json",
        &json!([["LD_start_test", {
            "test_time": test_time, "arrival_rate": arrival,
            "tasks": [{"method": "get", "url": url}]
        }]])
        .to_string(),
    );
    common::run_ok_with_summary(&file, &work).1
}

#[test]
fn achieved_rate_matches_the_requested_rate() {
    let target = Target::start();
    let work = Workdir::new();
    let summary = work.path("s.json");
    let output = run(
        &[
            "bench",
            &target.url("/"),
            "-r",
            "400",
            "-u",
            "50",
            "-d",
            "3s",
            "--quiet",
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let totals = common::read_json(&summary)["totals"].clone();
    let requests = totals["requests"].as_f64().expect("requests");
    // 400/s for 3 s: 1200 iterations (plus the one due at t = 0).
    assert!((requests - 1201.0).abs() <= 12.0, "requests {requests}");
    assert_eq!(totals["dropped_iterations"], 0);
    assert_eq!(totals["failures"], 0);
}

#[test]
fn ramping_stages_and_the_end_of_the_schedule() {
    let target = Target::start();
    let summary = run_arrival(
        &target.url("/"),
        60.0,
        json!({"stages": [{"duration": 1, "rate": 200}, {"duration": 1, "rate": 200}], "max_users": 20}),
    );
    let totals = &summary["totals"];
    // 0 -> 200/s over 1 s (100) then 200/s for 1 s (200).
    let requests = totals["requests"].as_f64().expect("requests");
    assert!((requests - 300.0).abs() <= 6.0, "requests {requests}");
    let duration = totals["duration_s"].as_f64().expect("duration");
    assert!(
        (1.9..3.0).contains(&duration),
        "ended by the schedule: {duration}"
    );
}

#[test]
fn busy_users_drop_iterations_and_count_them() {
    let target = Target::start();
    let summary = run_arrival(
        &target.url("/delay/200"),
        2.0,
        json!({"rate": 50, "max_users": 2}),
    );
    let totals = &summary["totals"];
    let requests = totals["requests"].as_u64().expect("requests");
    let dropped = totals["dropped_iterations"].as_u64().expect("dropped");
    // 2 users at 200 ms each serve about 20 of the ~100 iterations due.
    assert!((15..=25).contains(&requests), "requests {requests}");
    assert!(dropped >= 70, "dropped {dropped}");
    assert!(
        requests + dropped >= 99 && requests + dropped <= 102,
        "{requests} + {dropped}"
    );
}

struct TargetProcess(Child);

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stalled_target_shows_in_the_percentiles() {
    let port = closed_port();
    let target = TargetProcess(
        common::bin()
            .args(["target", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("target"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "target did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = target.0.id().to_string();
    let pauser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        let _ = Command::new("kill").args(["-STOP", &pid]).status();
        std::thread::sleep(Duration::from_millis(1000));
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
    });
    let summary = run_arrival(
        &format!("http://127.0.0.1:{port}/"),
        3.5,
        json!({"rate": 100, "max_users": 200}),
    );
    pauser.join().expect("pauser");
    let latency = &summary["latency_overall"];
    let p50 = latency["p50_ms"].as_f64().expect("p50");
    let p99 = latency["p99_ms"].as_f64().expect("p99");
    let max = latency["max_ms"].as_f64().expect("max");
    // A quarter of the iterations were due during the 1 s stall: they waited, and the
    // percentiles say so; the median stays fast.
    assert!(p50 < 50.0, "p50 {p50}");
    assert!(p99 > 700.0, "p99 {p99}");
    assert!(max > 900.0, "max {max}");
    assert_eq!(summary["totals"]["failures"], 0);
    // Every iteration due was sent (none dropped, none lost to the stall).
    let requests = summary["totals"]["requests"].as_f64().expect("requests");
    assert!((requests - 351.0).abs() <= 5.0, "requests {requests}");
}

#[test]
fn bad_arrival_rates_are_clear_errors() {
    let work = Workdir::new();
    let file = work.write(
        "bad.json",
        &json!([
            ["LD_start_test", {"arrival_rate": {"rate": 10}, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}],
            ["LD_start_test", {"arrival_rate": {"rate": 10, "max_users": 1}, "load_shape": "soak",
                "shape_config": {"users": 1}, "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]}]
        ])
        .to_string(),
    );
    let output = run(&["validate", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("action[0] (LD_start_test): field `arrival_rate.max_users`: missing field"),
        "{err}"
    );
    assert!(
        err.contains("action[1] (LD_start_test): field `arrival_rate`: give either"),
        "{err}"
    );
}

/// Runs the binary with `args`, killing it (and failing) if it outlives `limit`.
fn run_within(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = common::bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`loaddensity {}` ran past {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Issue #26: `validate` said ok and `run` hung (ignoring test_time and SIGTERM) on
/// a rate no machine can start or a unit that rounds to nothing. Both commands now
/// refuse each at once, naming the field and the limit.
#[test]
fn impossible_rates_and_units_are_refused_at_once() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    for (arrival, field, limit) in [
        (
            json!({"rate": 1e11, "max_users": 2}),
            "arrival_rate.rate",
            "limit of 1e6 per second",
        ),
        (
            json!({"rate": 1, "time_unit": 1e-12, "max_users": 2}),
            "arrival_rate.time_unit",
            "expected seconds >= 0.001",
        ),
        (
            json!({"stages": [{"duration": 1, "rate": 5e6}], "max_users": 2}),
            "arrival_rate.stages[0].rate",
            "limit of 1e6 per second",
        ),
    ] {
        let work = Workdir::new();
        let file = work.write(
            "t.json",
            &json!([["LD_start_test", {
                "test_time": 0.5, "arrival_rate": arrival,
                "tasks": [{"method": "get", "url": url}]
            }]])
            .to_string(),
        );
        let path = file.to_str().expect("utf8");
        for command in ["validate", "run"] {
            let started = Instant::now();
            let output = run_within(&[command, path], Duration::from_secs(20));
            let err = stderr(&output);
            assert!(!output.status.success(), "{command} {arrival}: {err}");
            assert!(
                err.contains("action[0] (LD_start_test)")
                    && err.contains(&format!("field `{field}`"))
                    && err.contains(limit),
                "{command} {arrival}: {err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{command} took {:?}",
                started.elapsed()
            );
        }
    }
}

/// The fastest legal rate, far beyond what two users can serve: the run still ends
/// at its test time, and a SIGTERM ends a long one at once.
#[test]
fn the_fastest_legal_rate_stops_at_test_time_and_on_sigterm() {
    let target = Target::start();
    let started = Instant::now();
    let summary = run_arrival(&target.url("/"), 0.5, json!({"rate": 1e6, "max_users": 2}));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let duration = summary["totals"]["duration_s"].as_f64().expect("duration");
    assert!(duration < 2.0, "duration {duration}");
    assert!(
        summary["totals"]["dropped_iterations"]
            .as_u64()
            .expect("dropped")
            > 1000,
        "{}",
        summary["totals"]
    );

    let work = Workdir::new();
    let file = work.write(
        "long.json",
        &json!([["LD_start_test", {
            "test_time": 60, "arrival_rate": {"rate": 1e6, "max_users": 2},
            "tasks": [{"method": "get", "url": target.url("/")}]
        }]])
        .to_string(),
    );
    let summary_path = work.path("long-summary.json");
    let mut child = common::bin()
        .args([
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            summary_path.to_str().expect("utf8"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let term = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = term + Duration::from_secs(15);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        term.elapsed() < Duration::from_secs(5),
        "{:?}",
        term.elapsed()
    );
    let summary = common::read_json(&summary_path);
    assert_eq!(summary["run"]["load"][0]["interrupted"], true, "{summary}");
}
