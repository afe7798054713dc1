//! Execution segments and the start barrier, with real processes against real
//! servers: the segments of a closed-model script add up to its users, those of an
//! open-model script keep its rate, and instances started 2 s apart with the same
//! `--start-at` send their first requests together.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::{Target, Workdir, bin, read_json, run, stderr};
use loaddensity::Segment;
use serde_json::json;

fn script(start: serde_json::Value) -> String {
    json!({"load_density": [["LD_start_test", start]]}).to_string()
}

fn spawn_run(file: &std::path::Path, extra: &[&str], summary: &std::path::Path) -> Child {
    bin()
        .arg("run")
        .arg(file)
        .args(extra)
        .arg("--summary-json")
        .arg(summary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loaddensity")
}

fn wait_ok(child: Child) {
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn closed_model_segments_add_up_to_the_users() {
    let target = Target::start();
    let mut executor = common::executor();
    let start = json!({
        "user_count": 10, "spawn_rate": 300, "test_time": 1,
        "wait_time": {"constant": 0.05},
        "tasks": [{"method": "GET", "url": target.url("/")}],
    });
    let mut users = Vec::new();
    for index in 0..3 {
        executor.set_segment(Segment::new(index, 3));
        let records = executor.execute_document(&json!([["LD_start_test", start]]), "<test>");
        let result = common::ok(&records[0]);
        assert_eq!(result["segment"], format!("{index}/3"));
        assert_eq!(result["user_count"], result["users_started"], "{result}");
        users.push(result["users_started"].as_u64().expect("a count"));
    }
    assert_eq!(users, [3, 3, 4]);
    assert_eq!(users.iter().sum::<u64>(), 10);
}

#[test]
fn open_model_segments_keep_the_rate() {
    let target = Target::start();
    let work = Workdir::new();
    let file = work.write(
        "open.json",
        &script(json!({
            "test_time": 3,
            "arrival_rate": {"rate": 3000, "max_users": 300},
            "tasks": [{"method": "GET", "url": target.url("/")}],
        })),
    );
    let children: Vec<(Child, std::path::PathBuf)> = (0..3)
        .map(|i| {
            let summary = work.path(&format!("open-{i}.json"));
            let segment = format!("{i}/3");
            (
                spawn_run(&file, &["--segment", &segment, "--threads", "1"], &summary),
                summary,
            )
        })
        .collect();
    let mut total = 0;
    for (child, summary) in children {
        wait_ok(child);
        let summary = read_json(&summary);
        let requests = summary["totals"]["requests"].as_u64().expect("requests");
        let rate = requests as f64 / 3.0;
        // A third of 3000/s, each within ±10%.
        assert!(
            (900.0..=1100.0).contains(&rate),
            "one segment ran {rate:.0}/s, not about 1000/s: {}",
            summary["totals"]
        );
        total += requests;
    }
    let rate = total as f64 / 3.0;
    assert!((2700.0..=3300.0).contains(&rate), "together {rate:.0}/s");
}

#[test]
fn validate_prints_each_segment_slice() {
    let work = Workdir::new();
    let file = work.write(
        "s.json",
        &script(json!({
            "user_count": 10, "spawn_rate": 3,
            "tasks": [{"method": "GET", "url": "http://127.0.0.1:1/"}],
        })),
    );
    let path = file.to_str().expect("utf8");
    let output = run(&["validate", path, "--segment", "2/3"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("segment 2/3: closed model: 4 users at 1/s"),
        "{}",
        stderr(&output)
    );
    let output = run(&["validate", path, "--segment", "3/3"], None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("0 <= I < N"),
        "{}",
        stderr(&output)
    );
    // The environment variable works like the flag.
    let output = bin()
        .args(["run", path, "--start-at", "+0s"])
        .env("LOADDENSITY_SEGMENT", "1/x")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("LOADDENSITY_SEGMENT"),
        "{}",
        stderr(&output)
    );
}

/// A loopback HTTP server that notes when it first saw each path.
struct FirstSeen {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<(String, SystemTime)>>>,
}

impl FirstSeen {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<(String, SystemTime)>>> = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000) {
                let Ok(mut stream) = stream else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    for _ in 0..1000 {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let at = SystemTime::now();
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" {
                                break;
                            }
                        }
                        {
                            let mut seen = record.lock().expect("lock");
                            if !seen.iter().any(|(p, _)| *p == path) {
                                seen.push((path, at));
                            }
                        }
                        if stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, seen }
    }

    fn first(&self, path: &str) -> Option<SystemTime> {
        let seen = self.seen.lock().expect("lock");
        seen.iter().find(|(p, _)| p == path).map(|(_, at)| *at)
    }
}

#[test]
fn instances_started_apart_begin_together() {
    let server = FirstSeen::start();
    let work = Workdir::new();
    let file_for = |name: &str| {
        work.write(
            &format!("{name}.json"),
            &script(json!({
                "user_count": 1, "spawn_rate": 10, "test_time": 1,
                "wait_time": {"constant": 0.05},
                "tasks": [{"method": "GET", "url": format!("http://{}/{name}", server.addr)}],
            })),
        )
    };
    let (a, b) = (file_for("a"), file_for("b"));
    let start_at = SystemTime::now() + Duration::from_secs(5);
    let at = humantime::format_rfc3339_millis(start_at).to_string();
    let launched = Instant::now();
    let first = spawn_run(&a, &["--start-at", &at], &work.path("a-out.json"));
    std::thread::sleep(Duration::from_secs(2));
    let second = spawn_run(&b, &["--start-at", &at], &work.path("b-out.json"));
    assert!(
        launched.elapsed() < Duration::from_secs(4),
        "the machine is too slow to launch both before the start time"
    );
    wait_ok(first);
    wait_ok(second);
    let (a, b) = (
        server.first("/a").expect("instance a sent requests"),
        server.first("/b").expect("instance b sent requests"),
    );
    let apart = a.duration_since(b).unwrap_or_else(|e| e.duration());
    assert!(
        apart < Duration::from_millis(200),
        "first requests {apart:?} apart"
    );
    let early = start_at.duration_since(a.min(b)).unwrap_or_default();
    assert!(
        early < Duration::from_millis(20),
        "started {early:?} before --start-at"
    );
}

#[test]
fn a_start_time_in_the_past_starts_at_once_with_a_warning() {
    let target = Target::start();
    let work = Workdir::new();
    let file = work.write(
        "s.json",
        &script(json!({
            "user_count": 1, "spawn_rate": 10, "test_time": 0.3,
            "tasks": [{"method": "GET", "url": target.url("/")}],
        })),
    );
    let started = Instant::now();
    let output = bin()
        .env("LOADDENSITY_LOG", "info")
        .args([
            "run",
            file.to_str().expect("utf8"),
            "--start-at",
            "2020-01-01T00:00:00Z",
        ])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&output).contains("starting now"),
        "{}",
        stderr(&output)
    );
    // An invalid script does not wait for its start time.
    let bad = work.write("bad.json", &script(json!({"user_count": 0, "tasks": []})));
    let started = Instant::now();
    let output = run(
        &["run", bad.to_str().expect("utf8"), "--start-at", "+60s"],
        None,
    );
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        stderr(&output).contains("not starting"),
        "{}",
        stderr(&output)
    );
}
