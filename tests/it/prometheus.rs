//! The Prometheus exporter against real components: a real Prometheus scraping a run,
//! `promtool check metrics` and the official Python parser reading the exposition, the
//! port freed by the stop action, restart, and bad arguments.
//!
//! Needs `prometheus`, `promtool` and the Python package `prometheus-client`
//! (scripts/test installs them).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{Target, Workdir, bin, closed_port, error, executor, ok, stderr};
use loaddensity::action::ActionRecord;
use loaddensity::event::intern_endpoint;
use loaddensity::sinks::prometheus::{
    PrometheusOptions, start_prometheus_exporter, stop_prometheus_exporter,
};
use loaddensity::{ActionError, Executor, Outcome, RequestEvent, RunContext};
use serde_json::{Value, json};

/// Fails with a clear message when a program the tests need is missing (these
/// tests never skip: scripts/test installs what they need).
fn require(program: &str, hint: &str) {
    assert!(
        common::find_program(&[program]).is_some(),
        "`{program}` is not installed: {hint}"
    );
}

/// One HTTP/1.1 request with `Connection: close`: (status, headers, body).
fn http_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, head.to_string(), body.to_string())
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn run_actions(executor: &mut Executor, actions: Value) -> Vec<ActionRecord> {
    executor.execute_document(&actions, "<test>")
}

/// A Prometheus server on a free loopback port, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: SocketAddr) -> Self {
        require(
            "prometheus",
            "install the Debian package `prometheus` (scripts/test does)",
        );
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: loaddensity\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write config");
        let addr = local(closed_port());
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn prometheus");
        let prometheus = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(addr).is_ok() && http_get(addr, "/-/ready", None).0 == 200 {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s:\n{}",
                prometheus.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until Prometheus has tried its first scrape (its scrape manager picks new
    /// targets up after a few seconds), so the run that follows is scraped throughout.
    fn wait_for_scraping(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, _, body) = http_get(self.addr, "/api/v1/targets", None);
            let targets: Value = serde_json::from_str(&body).expect("targets JSON");
            let scraped = targets["data"]["activeTargets"]
                .as_array()
                .is_some_and(|t| {
                    t.iter().any(|t| {
                        t["lastScrape"]
                            .as_str()
                            .is_some_and(|s| !s.starts_with("0001"))
                    })
                });
            if scraped {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not start scraping within 20 s: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The result vector of an instant query.
    fn query(&self, query: &str) -> Vec<Value> {
        let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let (status, _, body) =
            http_get(self.addr, &format!("/api/v1/query?query={encoded}"), None);
        assert_eq!(status, 200, "query {query}: {body}");
        let value: Value = serde_json::from_str(&body).expect("query JSON");
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("query {query}: {body}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample_value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {sample}"))
}

#[test]
fn prometheus_scrapes_a_run_and_stores_every_request() {
    let target = Target::start();
    let work = Workdir::new();
    let exporter_port = closed_port();
    let prometheus = Prometheus::start(work.dir.path(), local(exporter_port));
    prometheus.wait_for_scraping();
    let script = json!([
        ["LD_start_prometheus_exporter", {"port": exporter_port}],
        ["LD_start_test", {
            "user_count": 2, "spawn_rate": 100, "test_time": 2,
            "wait_time": {"constant": 0.0005},
            "tasks": [
                {"method": "GET", "url": target.url("/")},
                {"method": "GET", "url": target.url("/status/500"), "name": "status 500"},
            ],
        }],
        // Keep the endpoint up for a final scrape (scrape_interval is 1 s).
        ["LD_sleep", {"seconds": 3}],
        ["LD_stop_prometheus_exporter", {}],
    ]);
    let path = work.write("run.json", &script.to_string());
    let summary = work.path("summary.json");
    let output = bin()
        .args(["run", path.to_str().expect("path"), "--summary-json"])
        .arg(&summary)
        .stdout(Stdio::null())
        .output()
        .expect("run loaddensity");
    assert!(output.status.success(), "run failed: {}", stderr(&output));
    let summary = common::read_json(&summary);
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    let failures = summary["totals"]["failures"].as_u64().expect("failures");
    assert!(requests > failures && failures > 0, "{summary}");

    // The series went stale when the exporter stopped; max_over_time still sees them.
    let by_outcome = prometheus.query(
        "sum by (outcome) (max_over_time(loaddensity_requests_total{job=\"loaddensity\"}[5m]))",
    );
    let mut stored: Vec<(String, f64)> = by_outcome
        .iter()
        .map(|s| {
            (
                s["metric"]["outcome"].as_str().unwrap_or("?").to_string(),
                sample_value(s),
            )
        })
        .collect();
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    let outcomes: Vec<&str> = stored.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["failure", "success"],
        "stored {stored:?}\ntargets: {}\n{}",
        http_get(prometheus.addr, "/api/v1/targets", None).2,
        prometheus.log_text()
    );
    let total: f64 = stored.iter().map(|(_, v)| v).sum();
    #[allow(clippy::cast_precision_loss)]
    let expected = requests as f64;
    assert_eq!(
        total, expected,
        "Prometheus stored {stored:?}, the run made {requests}"
    );
    assert_eq!(stored[0].1, failures as f64, "failures: {stored:?}");

    let latency_count =
        prometheus.query("sum(max_over_time(loaddensity_request_latency_ms_count[5m]))");
    assert_eq!(sample_value(&latency_count[0]), expected);
    let bytes_count = prometheus.query("sum(max_over_time(loaddensity_response_bytes_count[5m]))");
    assert_eq!(sample_value(&bytes_count[0]), expected);
}

fn fire(context: &RunContext, name: &str, ms: u64, bytes: u64, ok: bool) {
    let endpoint = intern_endpoint("GET", name);
    context.listeners().fire(&RequestEvent {
        endpoint: &endpoint,
        start_time: SystemTime::now(),
        response_time: Duration::from_millis(ms),
        response_length: bytes,
        status: Some(if ok { 200 } else { 503 }),
        url: None,
        response: None,
        retry: false,
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failure("HTTP 503")
        },
    });
}

const PYTHON_CHECK: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as classic
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
parse = classic if sys.argv[1] == "classic" else openmetrics
families = {}
for family in parse(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(families))
"#;

fn python_parse(format: &str, text: &str) -> Value {
    let mut python = Command::new("python3");
    python.args(["-c", PYTHON_CHECK, format]);
    let output = common::run_with_stdin(python, text);
    assert!(
        output.status.success(),
        "the Python parser ({format}) rejected the exposition (is the package prometheus-client \
         installed? scripts/test installs it): {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser JSON")
}

#[test]
fn promtool_and_the_python_parser_accept_the_exposition() {
    require(
        "promtool",
        "install the Debian package `prometheus` (scripts/test does)",
    );
    let context = RunContext::new();
    let port = start_prometheus_exporter(
        context.sinks(),
        PrometheusOptions {
            port: 0,
            ..PrometheusOptions::default()
        },
    )
    .expect("start");
    let weird = "/search?q=\"a\\b\"\nnext";
    for i in 0..50 {
        fire(&context, "/exposition", 3 + i, 100 * i, i % 5 != 0);
        fire(&context, weird, 20, 2_000_000, false);
    }
    let (status, head, text) = http_get(local(port), "/metrics", None);
    let (om_status, om_head, om_text) = http_get(
        local(port),
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(stop_prometheus_exporter(context.sinks()));
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(om_status, 200);
    assert!(
        om_head.contains("application/openmetrics-text"),
        "{om_head}"
    );
    assert!(om_text.ends_with("# EOF\n"));
    for name in [
        "loaddensity_requests_total",
        "loaddensity_request_latency_ms",
        "loaddensity_response_bytes",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
    }

    let mut promtool = Command::new("promtool");
    promtool.args(["check", "metrics"]);
    let output = common::run_with_stdin(promtool, &text);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let problems: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        problems,
        ["loaddensity_request_latency_ms metric names should not contain abbreviated units"],
        "promtool check metrics:\n{report}\n{text}"
    );

    for (format, exposition, counter) in [
        ("classic", &text, "loaddensity_requests"),
        ("openmetrics", &om_text, "loaddensity_requests"),
    ] {
        let families = python_parse(format, exposition);
        assert_eq!(families[counter]["type"], "counter", "{format}: {families}");
        assert_eq!(
            families["loaddensity_request_latency_ms"]["type"],
            "histogram"
        );
        assert_eq!(families["loaddensity_response_bytes"]["type"], "histogram");
        let samples = families[counter]["samples"].as_array().expect("samples");
        let find = |name: &str, outcome: &str| {
            samples
                .iter()
                .find(|s| s[1]["name"] == name && s[1]["outcome"] == outcome)
                .map(|s| s[2].as_f64().unwrap_or(-1.0))
        };
        assert_eq!(find("/exposition", "success"), Some(40.0), "{format}");
        assert_eq!(find("/exposition", "failure"), Some(10.0), "{format}");
        // Quotes, backslashes and newlines in names survive the round trip.
        assert_eq!(find(weird, "failure"), Some(50.0), "{format}: {samples:?}");
    }
}

#[test]
fn stop_action_frees_the_port_and_start_works_again() {
    let mut executor = executor();
    let records = run_actions(
        &mut executor,
        json!([["LD_start_prometheus_exporter", {"port": 0}]]),
    );
    let port = u16::try_from(ok(&records[0])["port"].as_u64().expect("port")).expect("u16");
    assert_ne!(port, 0);
    assert_eq!(http_get(local(port), "/metrics", None).0, 200);
    assert_eq!(http_get(local(port), "/nothing", None).0, 404);

    // Start while running: the running port, no error.
    let again = run_actions(
        &mut executor,
        json!([["LD_start_prometheus_exporter", {"port": 0}]]),
    );
    assert_eq!(ok(&again[0])["port"], port);

    // A scraper keeps its connection open across the stop.
    let mut idle = TcpStream::connect(local(port)).expect("connect");
    let stopped = run_actions(&mut executor, json!([["LD_stop_prometheus_exporter", {}]]));
    assert_eq!(ok(&stopped[0]), &json!({"stopped": true}));
    match TcpStream::connect_timeout(&local(port), Duration::from_secs(2)) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("port {port} still accepts connections after the stop action"),
    }
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buffer = [0u8; 16];
    let _ = idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        idle.read(&mut buffer).unwrap_or(0),
        0,
        "an open connection was not closed by the stop"
    );
    let twice = run_actions(&mut executor, json!([["LD_stop_prometheus_exporter", {}]]));
    assert_eq!(ok(&twice[0]), &json!({"stopped": false}));

    // Start again on the same port: it was freed.
    let restarted = run_actions(
        &mut executor,
        json!([["LD_start_prometheus_exporter", [port, "127.0.0.1"]]]),
    );
    assert_eq!(ok(&restarted[0])["port"], port);
    let (status, _, body) = http_get(local(port), "/metrics", None);
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE loaddensity_requests_total counter"));

    // The Rust API, too.
    let sinks = executor.sinks();
    assert!(stop_prometheus_exporter(sinks));
    assert!(!stop_prometheus_exporter(sinks));
    let port = start_prometheus_exporter(
        sinks,
        PrometheusOptions {
            port: 0,
            ..PrometheusOptions::default()
        },
    )
    .expect("start");
    assert_eq!(http_get(local(port), "/metrics", None).0, 200);
    assert!(stop_prometheus_exporter(sinks));
    assert!(TcpStream::connect(local(port)).is_err());
}

#[test]
fn bad_arguments_give_clear_errors_and_later_actions_run() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port();
    let mut executor = executor();
    let actions = json!([
        ["LD_start_prometheus_exporter", {"port": 70000}],
        ["LD_start_prometheus_exporter", {"port": -1}],
        ["LD_start_prometheus_exporter", {"port": 0, "addr": "not-an-address"}],
        ["LD_start_prometheus_exporter", {"port": busy_port}],
        ["LD_start_prometheus_exporter", {"port": 0, "max_series": 0}],
        ["LD_start_prometheus_exporter", {"prot": 0}],
        ["LD_start_prometheus_exporter", {"port": 0}],
        ["LD_stop_prometheus_exporter", {}],
    ]);
    let failures = executor
        .validate_document(&actions, "<test>")
        .expect("document");
    let invalid: Vec<usize> = failures.iter().map(|f| f.index).collect();
    assert_eq!(invalid, [0, 1, 2, 4, 5], "validate: {failures:?}");

    let records = run_actions(&mut executor, actions);
    assert_eq!(records.len(), 8);
    let text = |i: usize| error(&records[i]).to_string();
    assert!(
        matches!(error(&records[0]), ActionError::Argument { field, .. } if field == "port"),
        "{}",
        text(0)
    );
    assert!(
        text(0).contains("0..=65535") && text(0).contains("70000"),
        "{}",
        text(0)
    );
    assert!(text(1).contains("got -1"), "{}", text(1));
    assert!(
        matches!(error(&records[2]), ActionError::Argument { field, .. } if field == "addr"),
        "{}",
        text(2)
    );
    assert!(text(2).contains("not-an-address"), "{}", text(2));
    assert!(
        matches!(error(&records[3]), ActionError::Failed(_)),
        "{}",
        text(3)
    );
    assert!(
        text(3).contains(&format!("cannot bind 127.0.0.1:{busy_port}"))
            && text(3).contains("in use"),
        "{}",
        text(3)
    );
    assert!(text(4).contains("max_series"), "{}", text(4));
    assert!(text(5).contains("prot"), "{}", text(5));
    // The later actions ran as usual.
    let port = ok(&records[6])["port"].as_u64().expect("port");
    assert_ne!(port, 0);
    assert_eq!(ok(&records[7]), &json!({"stopped": true}));
    assert_eq!(executor.failures(), 6);
    drop(busy);
}

#[test]
fn cli_prometheus_flag_serves_during_bench() {
    let target = Target::start();
    let port = closed_port();
    let flag = format!("127.0.0.1:{port}");
    let url = target.url("/");
    let child = bin()
        .env("LOADDENSITY_LOG", "info")
        .args([
            "--quiet",
            "bench",
            &url,
            "-u",
            "2",
            "-d",
            "2s",
            "--prometheus",
            &flag,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    // Scrape while the bench runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        if TcpStream::connect(local(port)).is_ok() {
            let (status, _, body) = http_get(local(port), "/metrics", None);
            if status == 200 && body.contains("outcome=\"success\"") {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metrics on {flag} during bench"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("bench");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(body.contains(&format!("name=\"{url}\"")), "{body}");
    assert!(
        stderr(&output).contains(&format!("http://{flag}/metrics")),
        "{}",
        stderr(&output)
    );

    let bad = common::run(&["bench", &url, "--prometheus", "70000"], None);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("0..=65535"), "{}", stderr(&bad));
}
