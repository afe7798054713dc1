//! The task fields LoadDensity 0.0.79 added: `retry` (attempts counted at a real
//! server and in the summary), `throttle` (a shared token bucket; waiting is not
//! latency) and `think_time` (a pause after the task), on HTTP and on raw sockets.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::summary::{assert_action_errors, count, failures, run_script};
use common::{Target, Workdir, closed_port};

/// An HTTP/1.1 keep-alive server that counts requests per path and answers by path:
/// `/cycle` 503, 503, 200 in turn; `/down` always 503; `/busy` 429; `/gone` 404;
/// `/json` 200 with a body that is not JSON; anything else 200.
struct CountingServer {
    port: u16,
    seen: Arc<Mutex<HashMap<String, u64>>>,
    _runtime: tokio::runtime::Runtime,
}

impl CountingServer {
    fn start() -> Self {
        let (runtime, listener) = common::loopback_server();
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let counts = seen.clone();
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counts = counts.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                        let n = {
                            let mut counts = counts.lock().expect("lock");
                            let n = counts.entry(path.clone()).or_insert(0);
                            *n += 1;
                            *n
                        };
                        let (status, body) = match path.as_str() {
                            "/cycle" if n % 3 != 0 => ("503 Service Unavailable", "busy"),
                            "/down" => ("503 Service Unavailable", "down"),
                            "/busy" => ("429 Too Many Requests", "slow down"),
                            "/gone" => ("404 Not Found", "gone"),
                            "/json" => ("200 OK", "<html>"),
                            _ => ("200 OK", "{\"ok\": true}"),
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            port,
            seen,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self, path: &str) -> u64 {
        self.seen
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn start_test(user: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": user},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0},
        "tasks": tasks,
    }])
}

fn retries(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["retries"].as_u64().unwrap_or(0)
}

fn p50(summary: &Value, name: &str) -> f64 {
    summary["per_name"][name]["p50_ms"]
        .as_f64()
        .unwrap_or(f64::MAX)
}

#[test]
fn retry_counts_every_attempt_at_the_server_and_per_name() {
    let server = CountingServer::start();
    let work = Workdir::new();
    let refused = format!("http://127.0.0.1:{}/", closed_port());
    let fast = json!({"base_delay": 0, "jitter": 0});
    let with = |extra: Value| {
        let mut retry = fast.clone();
        for (k, v) in extra.as_object().expect("object") {
            retry[k] = v.clone();
        }
        retry
    };
    let summary = run_script(
        &work,
        "retry.json",
        json!([start_test(
            "fast_http_user",
            1,
            1.0,
            json!([
                // 503, 503, 200: two flaky retries, then success.
                {"method": "get", "url": server.url("/cycle"), "name": "cycle", "retry": fast},
                // Always 503: the flaky budget (1 here) then the failure stands.
                {"method": "get", "url": server.url("/down"), "name": "down", "retry": with(json!({"flaky": 1}))},
                // 429 counts as flaky too.
                {"method": "get", "url": server.url("/busy"), "name": "busy", "retry": with(json!({"flaky": 1}))},
                // 404 is permanent: no retry by default.
                {"method": "get", "url": server.url("/gone"), "name": "gone", "retry": fast},
                // An assertion that fails is flaky: retried twice (the default).
                {"method": "get", "url": server.url("/json"), "name": "json", "retry": fast,
                 "assertions": [{"type": "json_path", "path": "ok", "value": true}]},
                // A refused connection is transient: five retries (the default).
                {"method": "get", "url": refused, "name": "refused", "retry": fast},
                // No retry field: a failure is reported once.
                {"method": "get", "url": server.url("/down"), "name": "plain-down"},
            ])
        )]),
    );
    // One attempt per iteration; the last iteration may be cut short by the stop,
    // hence the slack of one iteration below.
    let iterations = count(&summary, "gone");
    assert!(iterations >= 3, "{}", summary["per_name"]);
    let per_name = &summary["per_name"];
    // Every attempt is a request event, and the server saw each one.
    for (name, path) in [
        ("cycle", "/cycle"),
        ("busy", "/busy"),
        ("gone", "/gone"),
        ("json", "/json"),
    ] {
        assert_eq!(
            count(&summary, name),
            server.seen(path),
            "{name}: {per_name}"
        );
    }
    assert_eq!(
        count(&summary, "down") + count(&summary, "plain-down"),
        server.seen("/down")
    );
    // 503, 503, 200: two retries per iteration, and the failures are the retried ones.
    assert!(
        near(retries(&summary, "cycle"), 2 * iterations, 2),
        "{per_name}"
    );
    assert!(near(
        count(&summary, "cycle") - retries(&summary, "cycle"),
        iterations,
        1
    ));
    assert!(near(
        failures(&summary, "cycle"),
        retries(&summary, "cycle"),
        1
    ));
    // Always 503 with `flaky: 1`: two attempts, both failures.
    assert!(
        near(count(&summary, "down"), 2 * iterations, 2),
        "{per_name}"
    );
    assert!(near(retries(&summary, "down"), iterations, 1));
    assert_eq!(failures(&summary, "down"), count(&summary, "down"));
    assert!(
        near(count(&summary, "busy"), 2 * iterations, 2),
        "{per_name}"
    );
    // 404 is permanent.
    assert_eq!(retries(&summary, "gone"), 0);
    // A failed assertion: flaky, two retries.
    assert!(
        near(count(&summary, "json"), 3 * iterations, 3),
        "{per_name}"
    );
    // A refused connection: transient, five retries.
    assert!(
        near(count(&summary, "refused"), 6 * iterations, 6),
        "{per_name}"
    );
    assert!(near(retries(&summary, "refused"), 5 * iterations, 5));
    // Without `retry`: once per iteration, and no `retries` in the document.
    assert!(near(count(&summary, "plain-down"), iterations, 1));
    assert!(
        per_name["plain-down"].get("retries").is_none(),
        "{per_name}"
    );
}

/// `a` within `slack` of `b`.
fn near(a: u64, b: u64, slack: u64) -> bool {
    a.abs_diff(b) <= slack
}

#[test]
fn retry_backs_off_and_permanent_budget_applies() {
    let server = CountingServer::start();
    let work = Workdir::new();
    // base_delay 0.2, factor 2, no jitter: attempts at 0, 0.2 and 0.6 s, and the third
    // retry would come at 1.4 s, after the test's 1 s (without the backoff there would
    // be five attempts).
    let summary = run_script(
        &work,
        "backoff.json",
        json!([start_test(
            "http_user",
            1,
            1.0,
            json!([
                {"method": "get", "url": server.url("/gone"), "name": "gone",
                 "retry": {"permanent": 3, "base_delay": 0.2, "jitter": 0}},
            ])
        )]),
    );
    assert_eq!(count(&summary, "gone"), 3, "{}", summary["per_name"]);
    assert_eq!(server.seen("/gone"), 3);
    assert_eq!(retries(&summary, "gone"), 2);
    assert_eq!(failures(&summary, "gone"), 3);
}

#[test]
fn throttle_is_shared_by_key_and_waiting_is_not_latency() {
    let target = Target::start();
    let work = Workdir::new();
    let seconds = 2.0;
    let summary = run_script(
        &work,
        "throttle.json",
        json!([start_test(
            "fast_http_user",
            4,
            seconds,
            json!([
                // Two tasks share the key `api`: 10 requests per second between them.
                {"method": "get", "url": target.url("/a"), "name": "a",
                 "throttle": {"rps": 10, "key": "api", "burst": 1}},
                {"method": "get", "url": target.url("/b"), "name": "b",
                 "throttle": {"rps": 10, "key": "api", "burst": 1}},
                // Its own bucket (the key defaults to the name): 5 per second, burst 5.
                {"method": "get", "url": target.url("/c"), "name": "c", "throttle": {"rps": 5}},
            ])
        )]),
    );
    let shared = count(&summary, "a") + count(&summary, "b");
    assert!((14..=23).contains(&shared), "{}", summary["per_name"]);
    let own = count(&summary, "c");
    assert!((6..=16).contains(&own), "{}", summary["per_name"]);
    // Each user waited ~100-400 ms per request for a token; none of it is latency.
    for name in ["a", "b", "c"] {
        assert!(
            p50(&summary, name) < 50.0,
            "{name}: {}",
            summary["per_name"][name]
        );
    }
}

#[test]
fn think_time_pauses_after_each_task() {
    let target = Target::start();
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "think.json",
        json!([
            start_test(
                "fast_http_user",
                1,
                1.0,
                json!([
                    {"method": "get", "url": target.url("/fixed"), "name": "fixed", "think_time": 0.2},
                ])
            ),
            start_test(
                "fast_http_user",
                1,
                1.0,
                json!([
                    {"method": "get", "url": target.url("/range"), "name": "range",
                     "think_time": {"min": 0.1, "max": 0.3}},
                ])
            ),
            start_test(
                "fast_http_user",
                1,
                0.3,
                json!([
                    {"method": "get", "url": target.url("/zero"), "name": "zero", "think_time": 0},
                ])
            ),
        ]),
    );
    let fixed = count(&summary, "fixed");
    assert!((4..=6).contains(&fixed), "{}", summary["per_name"]);
    let range = count(&summary, "range");
    assert!((3..=11).contains(&range), "{}", summary["per_name"]);
    // The pause is not latency.
    assert!(p50(&summary, "fixed") < 50.0);
    // `think_time: 0` does not pause.
    assert!(count(&summary, "zero") > 50, "{}", summary["per_name"]);
}

#[test]
fn task_fields_work_on_other_user_types() {
    // socket_user against a UDP port nobody answers: every attempt times out
    // (transient) and is retried.
    let work = Workdir::new();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    let summary = run_script(
        &work,
        "socket.json",
        json!([start_test(
            "socket_user",
            1,
            1.0,
            json!([
                {"protocol": "udp", "target": addr.to_string(), "payload": "ping", "expect_bytes": 4,
                 "timeout": 0.05, "name": "udp",
                 "retry": {"transient": 2, "base_delay": 0, "jitter": 0},
                 "think_time": 0.1},
            ])
        )]),
    );
    let attempts = count(&summary, "udp");
    assert!(attempts >= 3, "{}", summary["per_name"]);
    assert_eq!(failures(&summary, "udp"), attempts);
    // Three attempts (two retries) per iteration, the last one maybe cut short.
    let iterations = attempts - retries(&summary, "udp");
    assert!(
        near(retries(&summary, "udp"), 2 * iterations, 2),
        "{}",
        summary["per_name"]
    );
    // 3 x 50 ms of timeouts and 100 ms of thinking per iteration.
    assert!((2..=6).contains(&iterations), "{}", summary["per_name"]);
    let mut buf = [0u8; 16];
    socket.set_nonblocking(true).expect("nonblocking");
    let mut received = 0;
    while socket.recv(&mut buf).is_ok() && received < 10_000 {
        received += 1;
    }
    assert_eq!(received as u64, attempts);
}

#[test]
fn refused_connections_of_the_newer_user_types_are_transient() {
    // Each user type connects to a closed port: a transient failure, retried
    // `transient` (2) times, so three attempts per iteration. A step that cannot run
    // (an SSE `wait` on a stream that never opened) is permanent: never retried.
    let work = Workdir::new();
    let closed = closed_port();
    let local = format!("127.0.0.1:{closed}");
    let cases = [
        (
            "sse_user",
            json!({}),
            json!({"method": "open", "request_url": format!("http://{local}/")}),
        ),
        (
            "graphql_ws_user",
            json!({}),
            json!({"method": "connect", "url": format!("ws://{local}/graphql")}),
        ),
        (
            "memcached_user",
            json!({"host": local}),
            json!({"method": "connect"}),
        ),
        (
            "etcd_user",
            json!({"host": local}),
            json!({"method": "connect"}),
        ),
        (
            "nats_user",
            json!({"connection": {"url": format!("nats://{local}")}}),
            json!({"method": "connect"}),
        ),
        (
            "amqp_user",
            json!({"connection": {"url": format!("amqp://guest:guest@{local}/%2F")}}),
            json!({"method": "connect"}),
        ),
    ];
    let tests: Vec<Value> = cases
        .iter()
        .map(|(user, fields, task)| {
            let mut task = task.clone();
            task["name"] = json!(user);
            task["retry"] = json!({"transient": 2, "base_delay": 0, "jitter": 0});
            task["think_time"] = json!(0.1);
            let mut tasks = vec![task];
            if *user == "sse_user" {
                tasks.push(json!({"method": "wait", "name": "sse-unopened",
                                  "retry": {"base_delay": 0, "jitter": 0}}));
            }
            let mut test = start_test(user, 1, 0.5, json!(tasks));
            for (k, v) in fields.as_object().expect("object") {
                test[1][k] = v.clone();
            }
            test
        })
        .collect();
    let summary = run_script(&work, "refused.json", json!(tests));
    let per_name = &summary["per_name"];
    for (user, _, _) in &cases {
        let attempts = count(&summary, user);
        assert!(attempts >= 3, "{user}: {per_name}");
        assert_eq!(failures(&summary, user), attempts, "{user}: {per_name}");
        let iterations = attempts - retries(&summary, user);
        assert!(iterations >= 1, "{user}: {per_name}");
        assert!(
            near(retries(&summary, user), 2 * iterations, 2),
            "{user}: {per_name}"
        );
    }
    assert!(count(&summary, "sse-unopened") > 0, "{per_name}");
    assert_eq!(retries(&summary, "sse-unopened"), 0, "{per_name}");
}

#[test]
fn bad_task_fields_name_the_field() {
    let work = Workdir::new();
    let task = |extra: Value| {
        let mut task = json!({"method": "get", "url": "http://127.0.0.1:1/", "name": "t"});
        for (k, v) in extra.as_object().expect("object") {
            task[k] = v.clone();
        }
        start_test("http_user", 1, 1.0, json!([task]))
    };
    assert_action_errors(
        &work,
        vec![
            task(json!({"retry": {"flakey": 1}})),
            task(json!({"retry": {"transient": -1}})),
            task(json!({"throttle": {"burst": 2}})),
            task(json!({"throttle": {"rps": "fast"}})),
            task(json!({"think_time": {"min": 2, "max": 1}})),
            task(json!({"think_time": "1s"})),
        ],
        &[
            ("tasks[0].retry.flakey", "unknown field"),
            ("tasks[0].retry.transient", "from 0 to 1000"),
            ("tasks[0].throttle.rps", "missing field"),
            ("tasks[0].throttle.rps", "requests per second"),
            ("tasks[0].think_time.max", "at least min"),
            ("tasks[0].think_time", "seconds"),
        ],
    );
    // Two tasks sharing a key with different settings.
    assert_action_errors(
        &work,
        vec![start_test(
            "http_user",
            1,
            1.0,
            json!([
                {"method": "get", "url": "http://127.0.0.1:1/a", "throttle": {"rps": 5, "key": "k"}},
                {"method": "get", "url": "http://127.0.0.1:1/b", "throttle": {"rps": 6, "key": "k"}},
            ]),
        )],
        &[("tasks[1].throttle", "same settings")],
    );
}
