//! Prometheus remote write against a real Prometheus started with
//! `--web.enable-remote-write-receiver`: after the run, the pushed counters equal the
//! run's count exactly, with `job` and `instance` labels; a receiver that is down is
//! retried, counted and reported without failing the run.
//!
//! Needs `prometheus` (scripts/test installs it).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Target, Workdir, bin, closed_port, read_json, stderr};
use serde_json::{Value, json};

/// A Prometheus accepting remote write on a free loopback port, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(dir: &Path) -> Self {
        let found = Command::new("prometheus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`prometheus` is not installed: install the Debian package (scripts/test does)"
        );
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("config");
        let addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn prometheus");
        let prometheus = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(addr, "/-/ready").map(|(status, _)| status) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s:\n{}",
                std::fs::read_to_string(&prometheus.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn query(&self, query: &str) -> Vec<Value> {
        let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let (status, body) = http_get(self.addr, &format!("/api/v1/query?query={encoded}"))
            .expect("prometheus answers");
        assert_eq!(status, 200, "{query}: {body}");
        let value: Value = serde_json::from_str(&body).expect("JSON");
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn scalar(&self, query: &str) -> Option<f64> {
        self.query(query)
            .first()
            .and_then(|s| s["value"][1].as_str().and_then(|v| v.parse().ok()))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn test_script(target: &Target) -> String {
    json!({"load_density": [["LD_start_test", {
        "user_count": 2, "spawn_rate": 100, "test_time": 1.5,
        "wait_time": {"constant": 0.001},
        "tasks": [
            {"method": "GET", "url": target.url("/"), "name": "home"},
            {"method": "GET", "url": target.url("/status/500"), "name": "broken"},
        ],
    }]]})
    .to_string()
}

#[test]
fn pushed_counts_equal_the_run_exactly() {
    let target = Target::start();
    let work = Workdir::new();
    let prometheus = Prometheus::start(work.dir.path());
    let file = work.write("s.json", &test_script(&target));
    let summary = work.path("out.json");
    let output = bin()
        .args(["run", file.to_str().expect("utf8")])
        .args(["--prometheus-remote-write", &prometheus.write_url()])
        .args(["--instance", "pod-7"])
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = read_json(&summary);
    let requests = summary["totals"]["requests"].as_f64().expect("requests");
    let failures = summary["totals"]["failures"].as_f64().expect("failures");
    assert!(requests > 10.0 && failures > 0.0, "{}", summary["totals"]);
    let report = &summary["sinks"]["prometheus_remote_write"];
    assert_eq!(report["failed_pushes"], 0, "{report}");
    assert!(report["pushes"].as_u64() >= Some(1), "{report}");

    // The pushed samples are queryable at once; allow the head a moment anyway.
    let deadline = Instant::now() + Duration::from_secs(10);
    let total = loop {
        let total = prometheus.scalar("sum(loaddensity_requests_total)");
        if total == Some(requests) || Instant::now() > deadline {
            break total;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(total, Some(requests), "sum(loaddensity_requests_total)");
    assert_eq!(
        prometheus.scalar(r#"sum(loaddensity_requests_total{outcome="failure"})"#),
        Some(failures)
    );
    assert_eq!(
        prometheus.scalar("sum(loaddensity_request_latency_ms_count)"),
        Some(requests)
    );
    assert_eq!(
        prometheus.scalar(r#"sum(loaddensity_request_latency_ms_bucket{le="+Inf"})"#),
        Some(requests)
    );
    assert_eq!(
        prometheus.scalar(r#"sum(loaddensity_response_bytes_bucket{le="+Inf"})"#),
        Some(requests)
    );
    let labelled = prometheus.query(r#"loaddensity_requests_total{name="home",outcome="success"}"#);
    assert_eq!(labelled.len(), 1, "{labelled:?}");
    let metric = &labelled[0]["metric"];
    assert_eq!(metric["job"], "loaddensity");
    assert_eq!(metric["instance"], "pod-7");
    assert_eq!(metric["request_type"], "GET");
    // The pull exporter's buckets.
    let buckets = prometheus.query(r#"loaddensity_request_latency_ms_bucket{name="home"}"#);
    let mut les: Vec<String> = buckets
        .iter()
        .filter_map(|s| s["metric"]["le"].as_str().map(str::to_string))
        .collect();
    les.sort();
    assert_eq!(les.len(), 12, "{les:?}");
    assert!(les.contains(&"+Inf".to_string()) && les.contains(&"10000.0".to_string()));
}

#[test]
fn actions_push_and_a_down_receiver_is_counted() {
    let target = Target::start();
    let work = Workdir::new();
    let down = format!("http://127.0.0.1:{}/api/v1/write", closed_port());
    let script = json!({"load_density": [
        ["LD_start_prometheus_remote_write", {"url": down, "interval_ms": 200, "timeout_ms": 500}],
        ["LD_start_test", {
            "user_count": 1, "spawn_rate": 10, "test_time": 0.5,
            "tasks": [{"method": "GET", "url": target.url("/")}],
        }],
        ["LD_stop_prometheus_remote_write", {}],
    ]});
    let file = work.write("s.json", &script.to_string());
    let summary = work.path("out.json");
    let started = Instant::now();
    let output = bin()
        .args(["run", file.to_str().expect("utf8"), "--summary-json"])
        .arg(&summary)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = &read_json(&summary)["sinks"]["prometheus_remote_write"];
    assert!(report["failed_pushes"].as_u64() >= Some(1), "{report}");
    assert!(report["retries"].as_u64() >= Some(2), "{report}");
    assert_eq!(report["pushes"], 0, "{report}");
    assert!(
        report["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "{report}"
    );

    // Bad arguments name the field.
    let bad = json!({"load_density": [
        ["LD_start_prometheus_remote_write", {"url": "ftp://x/y"}],
        ["LD_start_prometheus_remote_write", {"url": down, "interval_ms": 0}],
        ["LD_start_prometheus_remote_write", {"url": down, "headers": {"bad name": "x"}}],
    ]});
    let file = work.write("bad.json", &bad.to_string());
    let output = bin()
        .args(["validate", file.to_str().expect("utf8")])
        .output()
        .expect("validate");
    assert!(!output.status.success());
    let text = stderr(&output);
    for field in ["`url`", "`interval_ms`", "`headers.bad name`"] {
        assert!(text.contains(field), "{field} in {text}");
    }
}
