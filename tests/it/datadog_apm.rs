//! The Datadog APM exporter against Datadog's own test agent (`ddapm-test-agent`, from
//! PyPI), which decodes and validates each payload and returns the received traces;
//! an agent that is down or never answers; and bad arguments.
//!
//! Needs `ddapm-test-agent`; scripts/test installs it.

use crate::common;
use common::stalled::Stalled;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Target, Workdir, bin, closed_port, executor, stderr};
use loaddensity::ActionError;
use loaddensity::sinks::datadog_apm::datadog_apm_running;
use serde_json::{Value, json};

/// "The exporter never blocks the request loop", as a test can check it on a shared
/// machine: a loop that waited on a stalled agent would run at a small fraction of its
/// speed. The exporter's cost is measured in bench/, not here.
const NOT_BLOCKED: f64 = 0.5;

/// Datadog's test agent on free loopback ports, with the header checks on; killed on
/// drop.
struct TestAgent {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl TestAgent {
    /// None: not installed, outside CI (the test then skips, saying so).
    fn start(work: &Workdir) -> Option<Self> {
        let program = common::require_program(
            &["ddapm-test-agent"],
            "python3 -m pip install ddapm-test-agent (scripts/test does)",
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
        let log = work.path("ddapm-test-agent.log");
        let child = Command::new(program)
            .arg(format!("--port={}", addr.port()))
            .arg(format!("--otlp-http-port={}", closed_port()))
            .arg(format!("--otlp-grpc-port={}", closed_port()))
            .env(
                "ENABLED_CHECKS",
                "trace_count_header,meta_tracer_version_header,trace_content_length",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn ddapm-test-agent");
        let agent = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get("/info").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "ddapm-test-agent not ready after 30 s:\n{}",
                std::fs::read_to_string(&agent.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(agent)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET path`: (status, body); status 0 when nothing answers.
    fn get(&self, path: &str) -> (u16, String) {
        if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_err() {
            return (0, String::new());
        }
        let response = common::http_get_text(self.addr, path);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// Every trace the agent received (each a list of spans).
    fn traces(&self) -> Vec<Value> {
        let (status, body) = self.get("/test/session/traces");
        assert_eq!(status, 200, "{body}");
        let traces: Value = serde_json::from_str(&body).expect("traces JSON");
        traces.as_array().expect("a list of traces").clone()
    }

    /// Asserts that no payload failed the agent's checks (headers, format).
    fn assert_checks_passed(&self) {
        let (status, body) = self.get("/test/trace_check/failures");
        assert_eq!(status, 200, "trace check failures: {body}");
        let (status, summary) = self.get("/test/trace_check/summary");
        assert_eq!(status, 200);
        let summary: Value = serde_json::from_str(&summary).expect("summary JSON");
        for check in [
            "trace_count_header",
            "meta_tracer_version_header",
            "trace_content_length",
        ] {
            assert!(
                summary[check]["Passed_Checks"].as_u64().unwrap_or(0) >= 1
                    && summary[check]["Failed_Checks"] == 0,
                "{check}: {summary}"
            );
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn count(summary: &Value, name: &str) -> u64 {
    common::summary::count(summary, name)
}

#[test]
fn every_request_is_one_span_with_loaddensity_tags() {
    let work = Workdir::new();
    let Some(agent) = TestAgent::start(&work) else {
        return;
    };
    let target = Target::start();
    let mut executor = executor();
    let before = now_ns();
    let records = executor.execute_document(
        &json!([
            ["LD_start_datadog_apm_exporter", {
                "service": "checkout-load", "env": "staging", "agent_url": agent.url(),
                "flush_interval_ms": 100, "batch_size": 50,
            }],
            ["LD_start_test", {
                "user_count": 2, "spawn_rate": 100, "test_time": 1.5,
                "wait_time": {"constant": 0.01},
                "tasks": [
                    {"method": "GET", "url": target.url("/bytes/7"), "name": "seven bytes"},
                    {"method": "POST", "url": target.url("/status/503"), "name": "always 503"},
                ],
            }],
            ["LD_stop_datadog_apm_exporter", {}],
        ]),
        "<test>",
    );
    let after = now_ns();
    for record in &records {
        common::ok(record);
    }
    assert!(!datadog_apm_running(executor.sinks()));
    let summary = serde_json::to_value(executor.summary()).expect("summary");
    let ok_count = count(&summary, "seven bytes");
    let failed_count = count(&summary, "always 503");
    assert!(ok_count > 10 && failed_count > 10, "{summary}");
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    assert_eq!(requests, ok_count + failed_count);

    let report = &summary["sinks"]["datadog_apm"];
    assert_eq!(report["spans_sent"], requests, "{report}");
    assert_eq!(report["spans_dropped"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(
        report["payloads_sent"].as_u64().unwrap_or(0) >= 2,
        "{report}"
    );
    assert_eq!(report["agent_url"], agent.url());

    let traces = agent.traces();
    // The agent groups spans by trace id: one span per trace means distinct ids.
    assert_eq!(traces.len() as u64, requests, "one trace per request");
    let mut span_ids = std::collections::HashSet::new();
    let (mut ok_spans, mut error_spans) = (0, 0);
    for trace in &traces {
        let spans = trace.as_array().expect("spans");
        assert_eq!(spans.len(), 1, "{trace}");
        let span = &spans[0];
        assert!(span_ids.insert(span["span_id"].as_u64().expect("span id")));
        assert_eq!(span["parent_id"], 0);
        assert_eq!(span["service"], "checkout-load");
        assert_eq!(span["type"], "http");
        assert_eq!(span["meta"]["env"], "staging");
        let start = span["start"].as_i64().expect("start");
        let duration = span["duration"].as_i64().expect("duration");
        assert!(
            start >= before && duration > 0 && start + duration <= after,
            "{span}"
        );
        match span["resource"].as_str() {
            Some("seven bytes") => {
                ok_spans += 1;
                assert_eq!(span["name"], "GET.seven bytes");
                assert_eq!(span["error"], 0);
                assert_eq!(span["meta"]["request.type"], "GET");
                assert_eq!(span["meta"]["request.name"], "seven bytes");
                assert_eq!(span["metrics"]["response.length"], 7.0);
                assert!(span["meta"].get("error.type").is_none(), "{span}");
            }
            Some("always 503") => {
                error_spans += 1;
                assert_eq!(span["name"], "POST.always 503");
                assert_eq!(span["error"], 1);
                assert_eq!(span["meta"]["request.type"], "POST");
                assert_eq!(span["meta"]["request.name"], "always 503");
                assert_eq!(span["meta"]["error.type"], "HTTPError");
                let message = span["meta"]["error.msg"].as_str().unwrap_or("");
                assert!(message.contains("503"), "{span}");
            }
            _ => panic!("unexpected span {span}"),
        }
    }
    assert_eq!((ok_spans, error_spans), (ok_count, failed_count));
    agent.assert_checks_passed();
}

/// Runs `loaddensity run SCRIPT --summary-json` with extra arguments and environment;
/// returns the output, the summary and the wall time.
fn run_binary(
    work: &Workdir,
    name: &str,
    actions: &Value,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, Value, Duration) {
    let path = work.write(&format!("{name}.json"), &actions.to_string());
    let summary = work.path(&format!("{name}-summary.json"));
    let mut command = bin();
    command
        .args(["--threads", "1", "--quiet", "run"])
        .arg(&path)
        .arg("--summary-json")
        .arg(&summary)
        .args(args)
        .env_remove("DD_TRACE_AGENT_URL");
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let output = command.output().expect("run loaddensity");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{name}: {}", stderr(&output));
    (output, common::read_json(&summary), elapsed)
}

#[test]
fn the_agent_url_comes_from_the_flag_or_dd_trace_agent_url() {
    let work = Workdir::new();
    let Some(agent) = TestAgent::start(&work) else {
        return;
    };
    let target = Target::start();
    let test = json!(["LD_start_test", {
        "user_count": 1, "spawn_rate": 100, "test_time": 0.5,
        "wait_time": {"constant": 0.01},
        "tasks": [{"method": "GET", "url": target.url("/"), "name": "home"}],
    }]);
    // `--datadog-apm AGENT_URL` on `run`: stopped, and counted, before the summary.
    let url = agent.url();
    let (_, flag, _) = run_binary(&work, "flag", &json!([test]), &["--datadog-apm", &url], &[]);
    let flag_requests = flag["totals"]["requests"].as_u64().expect("requests");
    assert!(flag_requests > 0);
    assert_eq!(
        flag["sinks"]["datadog_apm"]["spans_sent"], flag_requests,
        "{flag}"
    );
    assert_eq!(flag["sinks"]["datadog_apm"]["service"], "loaddensity");
    assert_eq!(flag["sinks"]["datadog_apm"]["api_version"], "v0.5");
    // No agent_url: DD_TRACE_AGENT_URL; and the v0.4 format, as DD_TRACE_API_VERSION
    // asks (ddtrace's setting), which the agent reads as well.
    let (_, env, _) = run_binary(
        &work,
        "env",
        &json!([
            ["LD_start_datadog_apm_exporter", {}],
            test,
            ["LD_stop_datadog_apm_exporter"]
        ]),
        &[],
        &[
            ("DD_TRACE_AGENT_URL", &url),
            ("DD_TRACE_API_VERSION", "v0.4"),
        ],
    );
    let env_requests = env["totals"]["requests"].as_u64().expect("requests");
    assert_eq!(env["sinks"]["datadog_apm"]["spans_sent"], env_requests);
    assert_eq!(env["sinks"]["datadog_apm"]["api_version"], "v0.4");
    assert_eq!(env["sinks"]["datadog_apm"]["agent_url"], url);
    let traces = agent.traces();
    assert_eq!(traces.len() as u64, flag_requests + env_requests);
    assert!(traces.iter().all(|t| t[0]["name"] == "GET.home"
        && t[0]["service"] == "loaddensity"
        && t[0]["meta"].get("env").is_none()));
    agent.assert_checks_passed();
}

#[test]
fn an_agent_that_is_down_or_stalled_never_slows_the_load() {
    let target = Target::start();
    let work = Workdir::new();
    let stalled = Stalled::start();
    let test_time = 2.0;
    let test = json!(["LD_start_test", {
        "user_count": 8, "spawn_rate": 1000, "test_time": test_time,
        "wait_time": {"constant": 0},
        "tasks": [{"method": "GET", "url": target.url("/")}],
    }]);
    let with_agent = |url: String| {
        json!([
            ["LD_start_datadog_apm_exporter", {
                "agent_url": url, "timeout": 1.0, "max_pending_spans": 20000,
                "flush_interval_ms": 100, "batch_size": 1000,
            }],
            test,
            ["LD_stop_datadog_apm_exporter", {}],
        ])
    };
    let agents = [
        ("stalled", format!("http://{}", stalled.addr)),
        ("down", format!("http://127.0.0.1:{}", closed_port())),
    ];
    for (kind, url) in agents {
        // The machine is shared: take the best of up to three pairs of runs.
        let mut best = 0.0f64;
        for attempt in 0..3 {
            let (_, base, _) = run_binary(
                &work,
                &format!("base-{kind}{attempt}"),
                &json!([test]),
                &[],
                &[],
            );
            let (output, summary, elapsed) = run_binary(
                &work,
                &format!("{kind}{attempt}"),
                &with_agent(url.clone()),
                &[],
                &[],
            );
            let report = &summary["sinks"]["datadog_apm"];
            let requests = summary["totals"]["requests"].as_u64().expect("requests");
            assert_eq!(report["spans_sent"], 0, "{kind}: {report}");
            assert_eq!(
                report["spans_dropped"], requests,
                "{kind}: every span is reported dropped: {report}"
            );
            assert!(
                report["errors"].as_u64().unwrap_or(0) >= 1,
                "{kind}: {report}"
            );
            assert!(report["last_error"].is_string(), "{kind}: {report}");
            if kind == "stalled" {
                assert!(
                    report["dropped_queue_full"].as_u64().unwrap_or(0) > 0,
                    "{report}"
                );
            }
            // The final flush is bounded by the 1 s timeout.
            assert!(
                elapsed < Duration::from_secs_f64(test_time + 1.0 + 3.0),
                "{kind}: the run took {elapsed:?}"
            );
            let text = stderr(&output);
            assert!(text.contains("spans dropped"), "{kind}: {text}");
            let base_rps = base["totals"]["rps"].as_f64().expect("rps");
            let rps = summary["totals"]["rps"].as_f64().expect("rps");
            eprintln!("{kind} agent: {rps:.0} rps vs {base_rps:.0} without the exporter");
            best = best.max(rps / base_rps);
            if best >= NOT_BLOCKED {
                break;
            }
        }
        assert!(
            best >= NOT_BLOCKED,
            "{kind} agent: rps {best:.3} of the rps without the exporter"
        );
    }
}

#[test]
fn bad_arguments_give_clear_errors_and_later_actions_run() {
    let mut executor = executor();
    let actions = json!([
        ["LD_start_datadog_apm_exporter", {"agent_url": "unix:///var/run/datadog/apm.socket"}],
        ["LD_start_datadog_apm_exporter", {"agent_url": "localhost:8126"}],
        ["LD_start_datadog_apm_exporter", {"service": ""}],
        ["LD_start_datadog_apm_exporter", {"batch_size": 0}],
        ["LD_start_datadog_apm_exporter", {"timeout": -1}],
        ["LD_start_datadog_apm_exporter", {"agent": "http://127.0.0.1:8126"}],
        ["LD_start_datadog_apm_exporter", {"service": 5}],
        ["LD_stop_datadog_apm_exporter", {}],
    ]);
    let failures = executor
        .validate_document(&actions, "<test>")
        .expect("document");
    let invalid: Vec<usize> = failures.iter().map(|f| f.index).collect();
    assert_eq!(invalid, [0, 1, 2, 3, 4, 5, 6], "validate: {failures:?}");
    let records = executor.execute_document(&actions, "<test>");
    assert_eq!(records.len(), actions.as_array().map_or(0, Vec::len));
    let text = |i: usize| match &records[i].result {
        Ok(value) => panic!("action {i} should have failed, returned {value}"),
        Err(failure) => {
            assert!(
                matches!(&failure.error, ActionError::Argument { .. }),
                "{i}: {:?}",
                failure.error
            );
            failure.error.to_string()
        }
    };
    let unix = text(0);
    assert!(
        unix.contains("field `agent_url`")
            && unix.contains("must start with http:// or https://")
            && unix.contains("unix://"),
        "{unix}"
    );
    assert!(text(1).contains("field `agent_url`"), "{}", text(1));
    assert!(
        text(2).contains("field `service`") && text(2).contains("must not be empty"),
        "{}",
        text(2)
    );
    assert!(text(3).contains("field `batch_size`"), "{}", text(3));
    assert!(text(4).contains("field `timeout`"), "{}", text(4));
    assert!(text(5).contains("agent"), "{}", text(5));
    assert!(text(6).contains("service"), "{}", text(6));
    // The later action ran: nothing was started.
    assert!(matches!(&records[7].result, Ok(v) if v == &json!({"stopped": false})));
    assert!(!datadog_apm_running(executor.sinks()));

    // The flag checks the same way, before any request.
    let work = Workdir::new();
    let script = work.write("s.json", "[]");
    let bad = common::run(
        &[
            "run",
            script.to_str().expect("utf8"),
            "--datadog-apm",
            "ftp://agent:8126",
        ],
        None,
    );
    assert!(!bad.status.success());
    let text = stderr(&bad);
    assert!(
        text.contains("--datadog-apm") && text.contains("must start with http:// or https://"),
        "{text}"
    );
    // ddtrace's DD_TRACE_API_VERSION, when it names no format of ours.
    let bad = bin()
        .args(["run", script.to_str().expect("utf8")])
        .args(["--datadog-apm", "http://127.0.0.1:1"])
        .env("DD_TRACE_API_VERSION", "v0.7")
        .output()
        .expect("run loaddensity");
    assert!(!bad.status.success());
    let text = stderr(&bad);
    assert!(
        text.contains("DD_TRACE_API_VERSION") && text.contains("expected v0.4 or v0.5, got `v0.7`"),
        "{text}"
    );
}
