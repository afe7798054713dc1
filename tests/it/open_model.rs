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
