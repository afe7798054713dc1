//! The live dashboard (`LD_start_dashboard`: `/snapshot`, `/events`) and the web UI
//! (`web_ui_dict`, `run --web`: Locust's web API and its controls), against nginx.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Workdir, closed_port, error, ok};
use serde_json::{Value, json};

/// nginx on a free port: `/` answers 200, `/fail` 500.
pub(crate) struct Target {
    pub(crate) port: u16,
    _nginx: common::nginx::Nginx,
}

impl Target {
    pub(crate) fn start() -> Self {
        let dir = Workdir::new();
        let port = closed_port();
        let conf = format!(
            r#"worker_processes 1; daemon off; pid {{d}}/nginx.pid; error_log {{d}}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {{d}}/body; proxy_temp_path {{d}}/proxy; fastcgi_temp_path {{d}}/fcgi;
  uwsgi_temp_path {{d}}/uwsgi; scgi_temp_path {{d}}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "ok"; }}
    location /fail {{ return 500; }}
  }}
}}"#
        );
        let nginx = common::nginx::Nginx::start(dir, &conf, port);
        Self {
            port,
            _nginx: nginx,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A response: status, headers (lower-cased names) and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.0 request; `auth` is the `Authorization` header's value.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    form: Option<&str>,
    auth: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (headers, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Reply {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

pub(crate) fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, None, None)
}

/// Polls `check` every 100 ms for up to `limit`; panics with `what` when it never holds.
pub(crate) fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads `/events` for `span`; returns the snapshots received.
fn read_events(addr: SocketAddr, span: Duration) -> Vec<Value> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    write!(stream, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut reader = BufReader::new(stream);
    let mut events = Vec::new();
    let deadline = Instant::now() + span;
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                // Chunked: the data line sits inside a chunk.
                if let Some(at) = line.find("data: ") {
                    let data = line[at + 6..].trim();
                    events.push(serde_json::from_str(data).expect("an event is JSON"));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading events: {e}"),
        }
    }
    events
}

fn addr_of(value: &Value) -> SocketAddr {
    value["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {value}"))
}

#[test]
fn dashboard_snapshot_equals_the_summary_and_events_keep_pace() {
    let target = Target::start();
    let mut executor = common::executor();
    let records = executor.execute_document(
        &json!([["LD_start_dashboard", {"port": 0, "refresh_seconds": 0.5, "window_seconds": 2}]]),
        "t",
    );
    let addr = addr_of(ok(&records[0]));
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg") && page.body.contains("EventSource"),
        "the page"
    );
    let before = get(addr, "/snapshot").json();
    assert_eq!(before["totals"]["requests"], 0);
    assert_eq!(before["state"], "ready");

    // The stream, read on a thread while the test runs on this one.
    let reader = std::thread::spawn(move || read_events(addr, Duration::from_secs(5)));
    let test = json!([["LD_start_test", {
        "user_count": 2, "spawn_rate": 100, "test_time": 4,
        "wait_time": {"constant": 0.01},
        "tasks": [
            {"method": "get", "url": target.url("/"), "name": "ok"},
            {"method": "get", "url": target.url("/fail"), "name": "fail"},
        ],
    }]]);
    let records = executor.execute_document(&test, "t");
    ok(&records[0]);
    let events = reader.join().expect("reader");
    // One at once, then one every 0.5 s for 5 s: 11, give or take one.
    assert!(
        (10..=12).contains(&events.len()),
        "{} events in 5 s at refresh_seconds 0.5",
        events.len()
    );
    let during = events
        .iter()
        .find(|e| e["state"] == "running")
        .expect("an event while the test ran");
    for field in [
        "totals",
        "latency_overall",
        "per_name",
        "rps",
        "avg_ms",
        "ts",
        "latency_windows",
    ] {
        assert!(during.get(field).is_some(), "no `{field}` in {during}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["rps"].as_f64().unwrap_or(0.0) > 0.0),
        "no event saw requests per second"
    );
    let counts: Vec<u64> = events
        .iter()
        .map(|e| e["totals"]["requests"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "counts went down: {counts:?}"
    );

    let snapshot = get(addr, "/snapshot").json();
    let summary = serde_json::to_value(executor.summary()).expect("summary");
    assert!(summary["totals"]["requests"].as_u64().unwrap_or(0) > 10);
    assert!(summary["totals"]["failures"].as_u64().unwrap_or(0) > 0);
    for (block, field) in [
        ("totals", "requests"),
        ("totals", "failures"),
        ("totals", "successes"),
        ("latency_overall", "p95_ms"),
        ("latency_overall", "count"),
    ] {
        assert_eq!(
            snapshot[block][field], summary[block][field],
            "{block}.{field}"
        );
    }
    assert_eq!(snapshot["state"], "stopped");
    let windows = snapshot["latency_windows"].as_array().expect("windows");
    assert!(
        (3..=6).contains(&windows.len()),
        "{} windows",
        windows.len()
    );
    let in_windows: u64 = windows
        .iter()
        .map(|w| w["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        in_windows,
        summary["totals"]["requests"].as_u64().unwrap_or(0)
    );

    // Stopping frees the port.
    let records = executor.execute_document(&json!([["LD_stop_dashboard"]]), "t");
    assert_eq!(ok(&records[0])["stopped"], addr.to_string());
    std::net::TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn dashboard_bad_input_and_restart() {
    let mut executor = common::executor();
    for (args, field) in [
        (json!({"refresh_seconds": 0}), "refresh_seconds"),
        (json!({"window_seconds": -1}), "window_seconds"),
        (json!({"host": "not-an-ip"}), "host"),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let records = executor.execute_document(&json!([["LD_start_dashboard", args]]), "t");
        let e = error(&records[0]).to_string();
        assert!(e.contains(field), "{e}");
    }
    // Starting again restarts it: the first port is freed.
    let records = executor.execute_document(
        &json!([["LD_start_dashboard", {"port": 0}], ["LD_start_dashboard", {"port": 0}]]),
        "t",
    );
    let (first, second) = (addr_of(ok(&records[0])), addr_of(ok(&records[1])));
    std::net::TcpListener::bind(first).expect("the first port is free");
    assert_eq!(get(second, "/snapshot").status, 200);
    // The dashboard is read-only.
    assert_eq!(request(second, "POST", "/stop", None, None).status, 403);
}

#[test]
fn web_ui_dict_bad_input_starts_nothing() {
    let target = Target::start();
    let mut executor = common::executor();
    let test = |web_ui: Value| {
        json!([["LD_start_test", {
            "user_count": 1, "test_time": 1, "web_ui_dict": web_ui,
            "tasks": [{"method": "get", "url": target.url("/")}],
        }]])
    };
    let records = executor.execute_document(&test(json!({"port": 0, "theme": "dark"})), "t");
    let e = error(&records[0]).to_string();
    assert!(e.contains("web_ui_dict") && e.contains("theme"), "{e}");

    let records = executor.execute_document(&test(json!({"host": "0.0.0.0", "port": 0})), "t");
    let e = error(&records[0]).to_string();
    assert!(e.contains("auth") && e.contains("0.0.0.0"), "{e}");

    let records = executor.execute_document(&test(json!({"port": 0, "auth": "nopassword"})), "t");
    let e = error(&records[0]).to_string();
    assert!(e.contains("web_ui_dict.auth"), "{e}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let records = executor.execute_document(&test(json!({"port": port})), "t");
    let e = error(&records[0]).to_string();
    assert!(
        e.contains("cannot bind") && e.contains(&port.to_string()),
        "{e}"
    );
    // Nothing ran: no request, no test recorded.
    let summary = executor.summary();
    assert_eq!(summary.totals.requests, 0);
    assert!(summary.run.load.is_empty());

    // `{}` is 127.0.0.1:8089, up for the test only.
    let records = executor.execute_document(&test(json!({"port": 0})), "t");
    ok(&records[0]);
    assert!(
        executor.context().live().web_ui_addr().is_none(),
        "stopped with its test"
    );
}

/// `loaddensity run SCRIPT --web ADDR` in the background, with its stderr on a thread.
pub(crate) struct WebRun {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stderr: std::sync::mpsc::Receiver<String>,
}

impl WebRun {
    pub(crate) fn start(script: &std::path::Path, extra: &[&str]) -> Self {
        let port = closed_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut child = common::bin()
            .arg("run")
            .arg(script)
            .args(["--web", &addr.to_string(), "-q"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loaddensity");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        wait_for(Duration::from_secs(10), "the web UI to listen", || {
            TcpStream::connect(addr).ok()
        });
        Self {
            child,
            addr,
            stderr: lines,
        }
    }

    /// Waits for a stderr line containing `text`; returns the lines up to it.
    pub(crate) fn wait_line(&self, text: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(text);
                seen.push(line);
                if found {
                    return seen;
                }
            }
        }
        panic!("no line with `{text}` within {limit:?}; saw: {seen:#?}");
    }

    /// Ctrl-C, then the exit code.
    pub(crate) fn interrupt(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "loaddensity did not exit after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aggregated(stats: &Value) -> Value {
    stats["stats"]
        .as_array()
        .and_then(|s| s.iter().find(|e| e["name"] == "Aggregated"))
        .cloned()
        .unwrap_or_else(|| panic!("no Aggregated entry in {stats}"))
}

#[test]
fn web_ui_speaks_locusts_api_and_its_controls_drive_the_test() {
    let target = Target::start();
    let work = Workdir::new();
    let script = work.write(
        "t.json",
        &json!({"load_density": [["LD_start_test", {
            "user_count": 2, "spawn_rate": 50, "test_time": 60,
            "wait_time": {"constant": 0.02},
            "tasks": [
                {"method": "get", "url": target.url("/"), "name": "ok"},
                {"method": "get", "url": target.url("/fail"), "name": "fail"},
            ],
        }]]})
        .to_string(),
    );
    let summary_path = work.path("summary.json");
    let run = WebRun::start(
        &script,
        &["--summary-json", summary_path.to_str().expect("utf8")],
    );
    let addr = run.addr;
    let stats = wait_for(Duration::from_secs(10), "requests", || {
        let stats = get(addr, "/stats/requests").json();
        (aggregated(&stats)["num_requests"].as_u64().unwrap_or(0) > 20).then_some(stats)
    });
    // Locust 2.47's shape.
    for field in [
        "stats",
        "errors",
        "total_rps",
        "total_fail_per_sec",
        "current_rps",
        "current_fail_per_sec",
        "fail_ratio",
        "user_count",
        "state",
        "current_response_time_percentiles",
    ] {
        assert!(stats.get(field).is_some(), "no `{field}`");
    }
    let entry = &stats["stats"][0];
    for field in [
        "method",
        "name",
        "num_requests",
        "num_failures",
        "avg_response_time",
        "min_response_time",
        "max_response_time",
        "median_response_time",
        "response_time_percentile_0.95",
        "response_time_percentile_0.99",
        "current_rps",
        "current_fail_per_sec",
        "total_rps",
        "total_fail_per_sec",
        "avg_content_length",
    ] {
        assert!(entry.get(field).is_some(), "no `{field}` in {entry}");
    }
    assert_eq!(stats["errors"][0]["name"], "fail");
    assert!(
        stats["errors"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("500")
    );
    assert!(["spawning", "running"].contains(&stats["state"].as_str().unwrap_or("")));

    // More users, then fewer: the active users follow.
    let reply = request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=6&spawn_rate=100"),
        None,
    );
    assert_eq!(reply.json()["success"], true, "{}", reply.body);
    wait_for(Duration::from_secs(10), "6 users", || {
        (get(addr, "/stats/requests").json()["user_count"] == 6).then_some(())
    });
    request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=1&spawn_rate=100"),
        None,
    );
    wait_for(Duration::from_secs(10), "1 user", || {
        (get(addr, "/stats/requests").json()["user_count"] == 1).then_some(())
    });
    let reply = request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=x&spawn_rate=1"),
        None,
    );
    assert_eq!(reply.json()["success"], false);
    assert!(reply.body.contains("user_count"), "{}", reply.body);

    // Reset: the counts start again.
    let before = aggregated(&get(addr, "/stats/requests").json())["num_requests"]
        .as_u64()
        .unwrap_or(0);
    let reply = request(addr, "POST", "/stats/reset", None, None);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    let after = aggregated(&get(addr, "/stats/requests").json())["num_requests"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(after < before, "reset: {before} then {after}");
    wait_for(Duration::from_secs(10), "failures after the reset", || {
        let stats = get(addr, "/stats/requests").json();
        (aggregated(&stats)["num_failures"].as_u64().unwrap_or(0) > 0).then_some(())
    });

    // A cross-site form may not stop the test.
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /stop HTTP/1.0\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.0 403"), "{text}");

    // Stop: the test ends long before its 60 s, and the UI stays up after the script.
    let reply = request(addr, "POST", "/stop", None, None);
    assert_eq!(reply.json()["success"], true);
    run.wait_line("the script has ended", Duration::from_secs(15));
    let stats = get(addr, "/stats/requests").json();
    assert_eq!(stats["state"], "stopped");
    assert_eq!(stats["user_count"], 0);
    let summary = common::read_json(&summary_path);
    let total = aggregated(&stats);
    assert_eq!(total["num_requests"], summary["totals"]["requests"]);
    assert_eq!(total["num_failures"], summary["totals"]["failures"]);
    assert!(
        summary["run"]["load"][0]["duration_s"]
            .as_f64()
            .unwrap_or(99.0)
            < 30.0
    );

    // The downloads.
    let csv = get(addr, "/stats/requests/csv");
    assert!(csv.headers.contains("content-type: text/csv"));
    assert!(
        csv.body
            .starts_with("Type,Name,Request Count,Failure Count,Median Response Time")
    );
    let failures = get(addr, "/stats/failures/csv");
    assert!(failures.body.starts_with("Method,Name,Error,Occurrences"));
    assert!(failures.body.contains("fail,HTTP 500"), "{}", failures.body);
    let document = get(addr, "/result.json").json();
    assert_eq!(
        document["totals"]["requests"],
        summary["totals"]["requests"]
    );
    assert!(get(addr, "/report.html").body.contains("<html"));
    // /exceptions, Locust's shape: one row per distinct error, counted over all requests.
    let exceptions = get(addr, "/exceptions").json();
    let rows = exceptions["exceptions"].as_array().expect("a list");
    assert_eq!(rows.len(), 1, "{exceptions}");
    assert_eq!(
        rows[0]["count"], summary["totals"]["failures"],
        "{exceptions}"
    );
    assert!(
        rows[0]["msg"].as_str().unwrap_or("").contains("500"),
        "{exceptions}"
    );
    assert_eq!(rows[0]["nodes"], "local");
    assert!(
        rows[0]["traceback"].as_str().unwrap_or("").contains("fail"),
        "{exceptions}"
    );

    // A real consumer: locust-csv2openmetrics reads the requests CSV as it reads Locust's.
    consume_with_csv2openmetrics(&work, &csv.body, &summary);

    // After the script, /swarm starts its last test again with the posted users, the
    // statistics reset first (as Locust's start from its stopped state).
    let reply = request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=3&spawn_rate=100"),
        None,
    );
    assert_eq!(reply.json()["success"], true, "{}", reply.body);
    run.wait_line(
        "starting the last test again with 3 users",
        Duration::from_secs(10),
    );
    let rerun = wait_for(Duration::from_secs(10), "the re-run at 3 users", || {
        let stats = get(addr, "/stats/requests").json();
        (stats["user_count"] == 3 && stats["state"] == "running").then_some(stats)
    });
    assert_eq!(rerun["state"], "running");
    wait_for(Duration::from_secs(10), "the re-run's requests", || {
        (aggregated(&get(addr, "/stats/requests").json())["num_requests"]
            .as_u64()
            .unwrap_or(0)
            > 5)
        .then_some(())
    });
    assert_eq!(
        request(addr, "POST", "/stop", None, None).json()["success"],
        true
    );
    wait_for(Duration::from_secs(15), "the re-run to stop", || {
        (get(addr, "/stats/requests").json()["state"] == "stopped").then_some(())
    });

    // Locust's run_time: a malformed one is refused naming the field; a re-run with
    // one runs that long instead of the script's 60 s, and on a running test it stops
    // the test that long after the request.
    let bad = request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=2&spawn_rate=100&run_time=soon"),
        None,
    );
    assert_eq!(bad.json()["success"], false, "{}", bad.body);
    assert!(bad.body.contains("run_time"), "{}", bad.body);
    for (form, what) in [
        (
            "user_count=2&spawn_rate=100&run_time=2s",
            "the timed re-run",
        ),
        ("user_count=2&spawn_rate=100", "the untimed re-run"),
    ] {
        let started = Instant::now();
        let reply = request(addr, "POST", "/swarm", Some(form), None);
        assert_eq!(reply.json()["success"], true, "{}", reply.body);
        wait_for(Duration::from_secs(10), what, || {
            (get(addr, "/stats/requests").json()["state"] == "running").then_some(())
        });
        if what == "the untimed re-run" {
            let timed = "user_count=2&spawn_rate=100&run_time=1";
            let reply = request(addr, "POST", "/swarm", Some(timed), None);
            assert_eq!(reply.json()["success"], true, "{}", reply.body);
        }
        wait_for(Duration::from_secs(20), "the run_time to end it", || {
            (get(addr, "/stats/requests").json()["state"] == "stopped").then_some(())
        });
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
    }

    assert_eq!(
        run.interrupt(),
        Some(0),
        "Ctrl-C after the script keeps its exit code"
    );
}

#[test]
fn web_ui_current_percentiles_cover_locusts_ten_seconds() {
    let target = Target::start();
    let work = Workdir::new();
    let script = work.write(
        "t.json",
        &json!({"load_density": [
            ["LD_start_test", {
                "user_count": 2, "spawn_rate": 50, "test_time": 2,
                "wait_time": {"constant": 0.01},
                "tasks": [{"method": "get", "url": target.url("/"), "name": "ok"}],
            }],
            ["LD_sleep", {"seconds": 3}],
        ]})
        .to_string(),
    );
    let run = WebRun::start(&script, &[]);
    let addr = run.addr;
    let stats = wait_for(Duration::from_secs(15), "the test to end", || {
        let stats = get(addr, "/stats/requests").json();
        (stats["state"] == "stopped").then_some(stats)
    });
    // While the script runs, /swarm does not start a test of its own.
    let reply = request(
        addr,
        "POST",
        "/swarm",
        Some("user_count=3&spawn_rate=100"),
        None,
    );
    assert_eq!(reply.json()["success"], false, "{}", reply.body);
    assert!(reply.body.contains("No test running"), "{}", reply.body);
    // The test's requests are all within the last 10 s: the current median is the
    // whole test's (the last second alone has none).
    let total = aggregated(&stats);
    assert!(total["num_requests"].as_u64().unwrap_or(0) > 20, "{stats}");
    let current = &stats["current_response_time_percentiles"];
    assert!(
        current["response_time_percentile_0.5"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "{current}"
    );
    let (now50, all50) = (
        current["response_time_percentile_0.5"]
            .as_f64()
            .unwrap_or(0.0),
        total["median_response_time"].as_f64().unwrap_or(0.0),
    );
    assert!((now50 - all50).abs() <= 0.25 * all50, "{stats}");
    // The base may hold the test's very first requests: close, not equal.
    let (now95, all95) = (
        current["response_time_percentile_0.95"]
            .as_f64()
            .unwrap_or(0.0),
        total["response_time_percentile_0.95"]
            .as_f64()
            .unwrap_or(0.0),
    );
    assert!((now95 - all95).abs() <= 0.25 * all95, "{stats}");
    // Ten seconds on, the window holds no request: 0, as Locust; the totals stay.
    wait_for(
        Duration::from_secs(20),
        "the window to pass the test",
        || {
            let now = get(addr, "/stats/requests").json();
            assert_eq!(aggregated(&now)["num_requests"], total["num_requests"]);
            (now["current_response_time_percentiles"]["response_time_percentile_0.5"] == 0.0)
                .then_some(())
        },
    );
    run.wait_line("the script has ended", Duration::from_secs(5));
    assert_eq!(run.interrupt(), Some(0));
}

/// Runs `locust-csv2openmetrics` (installed by scripts/test) on the CSV and checks its
/// metrics against the summary.
fn consume_with_csv2openmetrics(work: &Workdir, csv: &str, summary: &Value) {
    let Some(python) = common::require_program(
        &["python3"],
        "scripts/test installs python3 and locust-csv2openmetrics",
    ) else {
        return;
    };
    let stats = work.write("requests.csv", csv);
    let metrics = work.path("metrics.txt");
    let output = Command::new(python)
        .args(["-m", "locust_csv2openmetrics"])
        .arg(&stats)
        .arg("-o")
        .arg(&metrics)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "locust_csv2openmetrics: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let requests = summary["totals"]["requests"].as_f64().unwrap_or(0.0);
    let failures = summary["totals"]["failures"].as_f64().unwrap_or(0.0);
    assert!((value("locust_failures_ratio") - failures / requests).abs() < 1e-9);
    let rps = summary["totals"]["rps"].as_f64().unwrap_or(0.0);
    assert!((value("locust_requests_per_second") - rps).abs() < 1e-6 * rps.max(1.0));
    // Locust's CSV rounds percentiles to whole milliseconds.
    let p95 = summary["latency_overall"]["p95_ms"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!((value("locust_response_time_p95_seconds") * 1000.0 - p95.round()).abs() < 1e-6);
}

#[test]
fn web_ui_off_loopback_needs_auth_and_never_prints_it() {
    let work = Workdir::new();
    let script = work.write(
        "t.json",
        r#"{"load_density": [["LD_sleep", {"seconds": 0}]]}"#,
    );
    let output = common::run(
        &["run", script.to_str().expect("utf8"), "--web", "0.0.0.0:0"],
        None,
    );
    assert!(!output.status.success());
    let text = common::stderr(&output);
    assert!(
        text.contains("without auth") && text.contains("--web-auth"),
        "{text}"
    );

    let run = WebRun::start(&script, &["--web-auth", "ann:pa55-word"]);
    assert_eq!(get(run.addr, "/stats/requests").status, 401);
    let wrong = request(
        run.addr,
        "GET",
        "/stats/requests",
        None,
        Some("Basic YW5uOndyb25n"),
    );
    assert_eq!(wrong.status, 401);
    // base64("ann:pa55-word")
    let right = request(
        run.addr,
        "GET",
        "/stats/requests",
        None,
        Some("Basic YW5uOnBhNTUtd29yZA=="),
    );
    assert_eq!(right.status, 200, "{}", right.body);
    let mut lines = run.wait_line("the script has ended", Duration::from_secs(10));
    while let Ok(line) = run.stderr.try_recv() {
        lines.push(line);
    }
    assert_eq!(run.interrupt(), Some(0));
    assert!(!lines.iter().any(|l| l.contains("pa55")), "{lines:?}");
}
