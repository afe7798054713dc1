//! The StatsD sink against a real StatsD: Etsy's `statsd` 0.9 (npm), which parses
//! DogStatsD tags and multi-metric datagrams, run with no backend and a flush interval
//! longer than the tests, so that its management interface (`counters`, `timers`)
//! shows everything received. Also: rebinding, the CLI flag, a port where nothing
//! listens (the load is not slowed), and bad arguments.
//!
//! Needs `statsd` (`npm install -g statsd`); scripts/test installs it.

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::summary::{bytes, count, failures, run_script};
use common::{Target, Workdir, bin, closed_port, executor, stderr};
use loaddensity::sinks::statsd::statsd_sink_running;
use serde_json::{Value, json};

/// "The sink never blocks the request loop", as a test can check it on a shared
/// machine (see tests/it/influxdb.rs): the cost of a sink is measured in bench/.
const NOT_BLOCKED: f64 = 0.5;

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket.local_addr().expect("addr").port()
}

/// A real StatsD on free loopback ports (UDP and management TCP), killed on drop.
struct Statsd {
    child: Child,
    port: u16,
    mgmt: SocketAddr,
    log: PathBuf,
}

impl Statsd {
    /// None: `statsd` is missing outside CI (the test skips, saying so).
    fn start(dir: &Path) -> Option<Self> {
        let program = common::require_program(
            &["statsd"],
            "install Node.js and `npm install -g statsd` (scripts/test does)",
        )?;
        let port = free_udp_port();
        let mgmt = SocketAddr::from(([127, 0, 0, 1], closed_port()));
        let config = dir.join("statsd.js");
        std::fs::write(
            &config,
            format!(
                "{{ address: \"127.0.0.1\", port: {port}, mgmt_address: \"127.0.0.1\", \
                 mgmt_port: {}, backends: [], flushInterval: 3600000 }}\n",
                mgmt.port()
            ),
        )
        .expect("write config");
        let log = dir.join("statsd.log");
        let child = Command::new(program)
            .arg(&config)
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn statsd");
        let statsd = Self {
            child,
            port,
            mgmt,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while statsd.try_command("health").is_none() {
            assert!(
                Instant::now() < deadline,
                "statsd not ready after 30 s:\n{}",
                statsd.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(statsd)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One management command's answer (up to `END` for the ones that end so).
    fn try_command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.mgmt, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(format!("{command}\n").as_bytes()).ok()?;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let read = stream.read(&mut buffer).ok()?;
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&answer);
            if text.ends_with("END\n\n") || (command == "health" && text.ends_with('\n')) {
                break;
            }
        }
        Some(String::from_utf8_lossy(&answer).into_owned())
    }

    fn command(&self, command: &str) -> String {
        self.try_command(command)
            .unwrap_or_else(|| panic!("statsd `{command}` failed:\n{}", self.log_text()))
    }

    /// `counters`: name → value (util.inspect's object, keys quoted).
    fn counters(&self) -> BTreeMap<String, u64> {
        let text = self.command("counters");
        let pattern = regex::Regex::new(r"'([^']+)': (\d+)").expect("regex");
        pattern
            .captures_iter(&text)
            .map(|c| (c[1].to_string(), c[2].parse().expect("number")))
            .collect()
    }

    /// `timers`: name → how many values (util.inspect shows 100 and "... N more items").
    fn timer_counts(&self) -> BTreeMap<String, u64> {
        let text = self.command("timers");
        let pattern = regex::Regex::new(r"'([^']+)': \[([^\]]*)\]").expect("regex");
        let more = regex::Regex::new(r"\.\.\. (\d+) more items?").expect("regex");
        pattern
            .captures_iter(&text)
            .map(|c| {
                let values = &c[2];
                let hidden: u64 = more
                    .captures(values)
                    .map_or(0, |m| m[1].parse().expect("number"));
                let shown = more
                    .replace(values, "")
                    .split(|ch: char| ch == ',' || ch.is_whitespace())
                    .filter(|v| !v.is_empty())
                    .count() as u64;
                (c[1].to_string(), shown + hidden)
            })
            .collect()
    }

    /// Waits until StatsD has taken in `metrics` lines (UDP lands after the run).
    fn wait_for_metrics(&self, metrics: u64) -> BTreeMap<String, u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let counters = self.counters();
            let received = counters.get("statsd.metrics_received").copied();
            if received >= Some(metrics) || Instant::now() >= deadline {
                return counters;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Statsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// At most ~1000 requests/s: a few hundred datagrams/s, which StatsD (one Node.js
/// thread) reads without its socket buffer overflowing on a busy machine, so that the
/// counts can be asserted exactly.
fn load(seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_count": 4, "spawn_rate": 1000, "test_time": seconds,
        "wait_time": {"constant": 0.004},
        "tasks": tasks,
    }])
}

const HOME: &str = "home page/x";
const FAILS: &str = "fails:|#,";

fn tasks(target: &Target) -> Value {
    json!([
        {"method": "GET", "url": target.url("/"), "name": HOME},
        {"method": "GET", "url": target.url("/status/500"), "name": FAILS},
    ])
}

/// What StatsD 0.9 names a metric with tags: `name;tag=value...`, then its key
/// sanitizer (spaces to `_`, `/` to `-`).
fn tagged(prefix: &str, metric: &str, name: &str, outcome: &str) -> String {
    format!("{prefix}.{metric};method=GET;name={name};outcome={outcome}")
}

/// Checks the counters and timers StatsD holds for one run against its summary.
fn assert_exact(
    statsd: &Statsd,
    summary: &Value,
    key: impl Fn(&str, &str, &str) -> String,
    aggregated: bool,
) {
    let report = &summary["sinks"]["statsd"];
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    assert!(requests > 200, "{summary}");
    assert_eq!(report["requests_sent"], requests, "{summary}");
    assert_eq!(report["requests_dropped"], 0, "{summary}");
    assert_eq!(report["send_errors"], 0, "{summary}");
    assert_eq!(report["running"], false, "{summary}");
    let metrics = report["metrics_sent"].as_u64().expect("metrics_sent");
    let datagrams = report["datagrams_sent"].as_u64().expect("datagrams_sent");
    if aggregated {
        assert!(metrics < 3 * requests, "{summary}");
    } else {
        assert_eq!(metrics, 3 * requests, "{summary}");
    }
    // Packed: many lines per datagram where LoadDensity sends one.
    assert!(metrics >= 5 * datagrams, "{summary}");

    let counters = statsd.counters();
    let timers = statsd.timer_counts();
    assert_eq!(counters["statsd.bad_lines_seen"], 0, "{counters:?}");
    let home = (HOME_KEY, count(summary, HOME));
    let fails = (FAILS_KEY, failures(summary, FAILS));
    assert_eq!(failures(summary, HOME), 0, "{summary}");
    assert_eq!(count(summary, FAILS), fails.1, "{summary}");
    assert!(home.1 > 0 && fails.1 > 0, "{summary}");
    for ((name, n), outcome, summary_name) in [(home, "success", HOME), (fails, "failure", FAILS)] {
        let counter = key("requests", name, outcome);
        assert_eq!(counters.get(&counter), Some(&n), "{counter}: {counters:?}");
        let timer = key("request.latency", name, outcome);
        assert_eq!(timers.get(&timer), Some(&n), "{timer}: {timers:?}");
        // `|h` is a counter to StatsD: the bytes add up.
        let size = key("response.size", name, outcome);
        assert_eq!(
            counters.get(&size).copied().unwrap_or(0),
            bytes(summary, summary_name),
            "{size}: {counters:?}"
        );
    }
    // Nothing under the other outcome.
    assert_eq!(counters.get(&key("requests", HOME_KEY, "failure")), None);
    assert_eq!(counters.get(&key("requests", FAILS_KEY, "success")), None);
}

/// The names as StatsD keeps them: LoadDensity's sanitizing (`| , : #` to `_`), then
/// StatsD's (space to `_`, `/` to `-`).
const HOME_KEY: &str = "home_page-x";
const FAILS_KEY: &str = "fails____";

#[test]
fn statsd_holds_exactly_the_runs_requests_in_both_dialects_and_aggregated() {
    let target = Target::start();
    let work = Workdir::new();
    let Some(statsd) = Statsd::start(work.dir.path()) else {
        return;
    };
    let mut received = (0, 0);
    for (prefix, dialect, aggregate) in [
        ("dog", "dogstatsd", false),
        ("plain", "statsd", false),
        ("dogsum", "dogstatsd", true),
        ("plainsum", "statsd", true),
    ] {
        let summary = run_script(
            &work,
            &format!("{prefix}.json"),
            json!([
                ["LD_start_statsd_sink", {
                    "host": "127.0.0.1", "port": statsd.port, "prefix": prefix,
                    "dialect": dialect, "aggregate_counters": aggregate,
                }],
                load(1.0, tasks(&target)),
                ["LD_stop_statsd_sink", {}],
            ]),
        );
        let report = &summary["sinks"]["statsd"];
        assert_eq!(report["dialect"], dialect, "{summary}");
        received.0 += report["datagrams_sent"].as_u64().expect("datagrams");
        received.1 += report["metrics_sent"].as_u64().expect("metrics");
        let counters = statsd.wait_for_metrics(received.1);
        // Every datagram and line sent arrived, and none more.
        assert_eq!(
            (
                counters["statsd.packets_received"],
                counters["statsd.metrics_received"]
            ),
            received,
            "{prefix}: {summary}\n{counters:?}"
        );
        if dialect == "dogstatsd" {
            assert_exact(
                &statsd,
                &summary,
                |m, n, o| tagged(prefix, m, n, o),
                aggregate,
            );
        } else {
            assert_exact(
                &statsd,
                &summary,
                |m, n, o| format!("{prefix}.{m}.GET.{n}.{o}"),
                aggregate,
            );
        }
    }

    // The CLI flag: DogStatsD with LoadDensity's prefix.
    let script = work.write(
        "cli.json",
        &common::summary::script(json!([load(
            0.5,
            json!([
                {"method": "GET", "url": target.url("/"), "name": "cli"},
            ])
        )])),
    );
    let summary_path = work.path("cli-summary.json");
    let output = bin()
        .args(["--threads", "1", "--quiet", "run"])
        .arg(&script)
        .arg("--summary-json")
        .arg(&summary_path)
        .args(["--statsd", &format!("127.0.0.1:{}", statsd.port)])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary_path);
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    assert_eq!(
        summary["sinks"]["statsd"]["requests_sent"], requests,
        "{summary}"
    );
    let metrics = summary["sinks"]["statsd"]["metrics_sent"]
        .as_u64()
        .unwrap_or(0);
    let counters = statsd.wait_for_metrics(received.1 + metrics);
    assert_eq!(
        counters.get(&tagged("loaddensity", "requests", "cli", "success")),
        Some(&requests),
        "{counters:?}"
    );
}

/// Reads datagrams from `socket` until `enough` says so or `limit` passes.
fn receive(socket: &UdpSocket, limit: Duration, enough: impl Fn(&str) -> bool) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut text = String::new();
    let mut buffer = vec![0u8; 65536];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !enough(&text) {
        if let Ok(read) = socket.recv(&mut buffer) {
            text.push_str(&String::from_utf8_lossy(&buffer[..read]));
            text.push('\n');
        }
    }
    text
}

#[test]
fn starting_again_rebinds_and_an_empty_prefix_means_none() {
    let target = Target::start();
    let first = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let second = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = |s: &UdpSocket| s.local_addr().expect("addr").port();
    let mut executor = executor();
    let records = executor.execute_document(
        &json!([
            ["LD_start_statsd_sink", ["127.0.0.1", port(&first)]],
            ["LD_start_statsd_sink", ["127.0.0.1", port(&second), ""]],
            ["LD_start_test", {
                "user_count": 1, "spawn_rate": 10, "test_time": 0.3,
                "wait_time": {"constant": 0.01},
                "tasks": [{"method": "GET", "url": target.url("/"), "name": "r"}],
            }],
        ]),
        "rebind",
    );
    assert_eq!(common::ok(&records[0])["replaced"], false);
    assert_eq!(common::ok(&records[1])["replaced"], true);
    assert_eq!(
        common::ok(&records[1])["target"],
        format!("127.0.0.1:{}", port(&second))
    );
    common::ok(&records[2]);
    assert!(statsd_sink_running(executor.sinks()));
    let records = executor.execute_document(&json!([["LD_stop_statsd_sink"]]), "stop");
    assert_eq!(common::ok(&records[0])["stopped"], true);
    assert!(!statsd_sink_running(executor.sinks()));
    let text = receive(&second, Duration::from_secs(5), |t| {
        t.contains("requests:1|c")
    });
    assert!(
        text.lines()
            .any(|l| l == "requests:1|c|#method:GET,name:r,outcome:success"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("request.latency:")
            && l.ends_with("|ms|#method:GET,name:r,outcome:success")),
        "{text}"
    );
    let stale = receive(&first, Duration::from_millis(500), |t| !t.is_empty());
    assert_eq!(stale, "", "the first sink still sent after the rebind");
}

#[test]
fn bad_arguments_are_named_and_later_actions_still_run() {
    let mut executor = executor();
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = receiver.local_addr().expect("addr").port();
    let records = executor.execute_document(
        &json!([
            ["LD_start_statsd_sink", {"port": 70000}],
            ["LD_start_statsd_sink", {"port": port, "dialect": "graphite"}],
            ["LD_start_statsd_sink", {"port": port, "max_packet_bytes": 100}],
            ["LD_start_statsd_sink", {"port": port, "max_packet_bytes": 70000}],
            ["LD_start_statsd_sink", {"port": port, "prefix": "a:b"}],
            ["LD_start_statsd_sink", {"port": port, "aggregate": true}],
            ["LD_start_statsd_sink", {"port": port, "host": "no-such-host.invalid"}],
            ["LD_stop_statsd_sink"],
            ["LD_start_statsd_sink", {"port": port}],
            ["LD_stop_statsd_sink"],
        ]),
        "bad",
    );
    let expected = [
        "field `port`: expected a port number 1..=65535, got 70000",
        "field `dialect`: unknown dialect `graphite`: expected `dogstatsd` or `statsd`",
        "field `max_packet_bytes`: max_packet_bytes: expected at least ",
        "field `max_packet_bytes`: max_packet_bytes: expected at most 65507",
        "field `prefix`: prefix: must not contain ':'",
        "unknown field `aggregate`",
        "field `host`: cannot resolve `no-such-host.invalid:",
    ];
    for (record, text) in records.iter().zip(expected) {
        assert_eq!(record.command, "LD_start_statsd_sink");
        let error = common::error(record).to_string();
        assert!(error.contains(text), "expected {text:?} in {error:?}");
    }
    assert_eq!(common::ok(&records[7])["stopped"], false);
    assert_eq!(common::ok(&records[8])["started"], true);
    assert_eq!(common::ok(&records[9])["stopped"], true);
}

#[test]
fn nothing_listening_does_not_slow_the_load() {
    let target = Target::start();
    let work = Workdir::new();
    // Bound then released: nothing listens there, and loopback answers each datagram
    // with "port unreachable", so sends fail with "connection refused".
    let port = free_udp_port();
    let test = json!(["LD_start_test", {
        "user_count": 8, "spawn_rate": 1000, "test_time": 2.0,
        "wait_time": {"constant": 0},
        "tasks": [{"method": "GET", "url": target.url("/")}],
    }]);
    let mut best = 0.0f64;
    for attempt in 0..3 {
        let base = run_script(&work, &format!("base{attempt}.json"), json!([test]));
        let summary = run_script(
            &work,
            &format!("closed{attempt}.json"),
            json!([
                ["LD_start_statsd_sink", {"port": port}],
                test,
                ["LD_stop_statsd_sink", {}],
            ]),
        );
        let report = &summary["sinks"]["statsd"];
        assert!(
            report["send_errors"].as_u64().unwrap_or(0) >= 1,
            "{summary}"
        );
        assert!(
            report["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
            "{summary}"
        );
        // Every request was queued or dropped, none lost on the way.
        assert_eq!(
            report["requests_queued"].as_u64().unwrap_or(0)
                + report["requests_dropped"].as_u64().unwrap_or(0),
            summary["totals"]["requests"].as_u64().unwrap_or(u64::MAX),
            "{summary}"
        );
        let base_rps = base["totals"]["rps"].as_f64().expect("rps");
        let rps = summary["totals"]["rps"].as_f64().expect("rps");
        eprintln!("nothing listening: {rps:.0} rps vs {base_rps:.0} without the sink");
        best = best.max(rps / base_rps);
        if best >= NOT_BLOCKED {
            break;
        }
    }
    assert!(
        best >= NOT_BLOCKED,
        "rps with the sink to a closed port: {best:.3} of the no-sink rps"
    );
}
