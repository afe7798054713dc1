//! `redis_user` against a real `redis-server` (Debian's) started on a free port
//! with no persistence: exact counts the server confirms, error replies, `expect`,
//! timeouts, refused connections and the errors of bad fields.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::summary::{
    assert_action_errors, count, error_request_types, errors_of, failures, run_script, script,
};
use common::{Workdir, closed_port, run, stderr};
use serde_json::{Value, json};

/// A `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(work: &Workdir) -> Self {
        let port = closed_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(work.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (install redis-server)");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.cli(&["ping"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli` output of one command, trimmed.
    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (install redis-tools)");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_test(url: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "redis_user"},
        "connection": {"url": url},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.002}, "tasks": tasks
    }])
}

#[test]
fn incr_count_matches_the_server_and_placeholders_make_unique_keys() {
    let work = Workdir::new();
    let redis = RedisServer::start(&work);
    let csv = work.write("values.csv", "v\nalpha\nbeta\n");
    let mut start = start_test(
        &redis.url(),
        4,
        1.5,
        json!([
            {"method": "incr", "key": "counter", "name": "incr"},
            {"method": "set", "key": "session:${uuid()}", "value": "x", "name": "set"},
            {"method": "get", "key": "counter", "name": "get"},
            {"method": "rpush", "key": "list", "value": "${csv.values.v}",
             "args": ["${var.extra}"], "name": "rpush"},
        ]),
    );
    start[1]["variables"] = json!({"extra": "gamma"});
    start[1]["csv_sources"] = json!([{"name": "values", "file_path": csv.to_str().expect("utf8")}]);
    let summary = run_script(&work, "redis.json", json!([start]));
    let incr = count(&summary, "incr");
    assert!(incr > 10, "too few requests: {summary}");
    for name in ["incr", "set", "get", "rpush"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(redis.cli(&["get", "counter"]), incr.to_string());
    // One key per `set` (a fresh uuid each), plus `counter` and `list`.
    let keys: u64 = redis.cli(&["dbsize"]).parse().expect("dbsize");
    assert_eq!(keys, count(&summary, "set") + 2);
    // Each rpush adds the CSV value and the variable.
    let list_len: u64 = redis.cli(&["llen", "list"]).parse().expect("llen");
    assert_eq!(list_len, 2 * count(&summary, "rpush"));
    let items = redis.cli(&["lrange", "list", "0", "3"]);
    assert!(
        items.contains("alpha") && items.contains("gamma"),
        "{items}"
    );
}

#[test]
fn error_replies_and_expect_mismatches_are_failures_with_the_text() {
    let work = Workdir::new();
    let redis = RedisServer::start(&work);
    redis.cli(&["set", "text", "hello"]);
    let summary = run_script(
        &work,
        "redis.json",
        json!([start_test(
            &redis.url(),
            1,
            0.5,
            json!([
                {"method": "lpush", "key": "text", "value": "x", "name": "wrongtype"},
                {"method": "get", "key": "text", "expect": "hello", "name": "expect ok"},
                {"method": "get", "key": "text", "expect": "bye", "name": "expect bad"},
                {"method": "nosuchcommand", "key": "k", "name": "unknown"},
            ])
        )]),
    );
    let wrongtype = count(&summary, "wrongtype");
    assert!(wrongtype > 0, "{summary}");
    assert_eq!(failures(&summary, "wrongtype"), wrongtype);
    assert!(
        errors_of(&summary, "wrongtype")
            .iter()
            .any(|e| e.contains("WRONGTYPE")),
        "{:?}",
        errors_of(&summary, "wrongtype")
    );
    let types = error_request_types(&summary);
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == "REDIS"),
        "{types:?}"
    );
    assert_eq!(failures(&summary, "expect ok"), 0);
    assert_eq!(
        failures(&summary, "expect bad"),
        count(&summary, "expect bad")
    );
    assert!(
        errors_of(&summary, "expect bad")
            .iter()
            .any(|e| e.contains("expected reply `bye`, got `hello`")),
        "{:?}",
        errors_of(&summary, "expect bad")
    );
    assert_eq!(failures(&summary, "unknown"), count(&summary, "unknown"));
    assert!(
        errors_of(&summary, "unknown")
            .iter()
            .any(|e| e.to_lowercase().contains("unknown command")),
        "{:?}",
        errors_of(&summary, "unknown")
    );
    // The list was never created.
    assert_eq!(redis.cli(&["get", "text"]), "hello");
}

#[test]
fn timeouts_and_refused_connections_fail_clearly() {
    let work = Workdir::new();
    let redis = RedisServer::start(&work);
    let summary = run_script(
        &work,
        "redis.json",
        json!([
            start_test(
                &redis.url(),
                1,
                1.0,
                json!([
                    {"method": "blpop", "key": "never", "args": [5], "timeout": 0.2, "name": "blocked"},
                    {"method": "incr", "key": "after", "name": "after"},
                ])
            ),
            start_test(
                &format!("redis://127.0.0.1:{}/0", closed_port()),
                1,
                0.5,
                json!([{"method": "get", "key": "k", "name": "refused"}])
            ),
        ]),
    );
    let blocked = count(&summary, "blocked");
    assert!(blocked > 0, "{summary}");
    assert_eq!(failures(&summary, "blocked"), blocked);
    assert!(
        errors_of(&summary, "blocked")
            .iter()
            .any(|e| e.contains("timed out")),
        "{:?}",
        errors_of(&summary, "blocked")
    );
    // After a timeout the user reconnects and goes on.
    assert_eq!(
        failures(&summary, "after"),
        0,
        "{:?}",
        errors_of(&summary, "after")
    );
    assert_eq!(
        redis.cli(&["get", "after"]),
        count(&summary, "after").to_string()
    );
    let refused = count(&summary, "refused");
    assert!(refused > 0, "{summary}");
    assert_eq!(failures(&summary, "refused"), refused);
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.contains("connect redis://127.0.0.1")),
        "{:?}",
        errors_of(&summary, "refused")
    );
}

#[test]
fn bad_fields_are_clear_errors() {
    let work = Workdir::new();
    let url = "redis://127.0.0.1:9/0";
    let cases = [
        (
            json!([{"method": "get", "key": "k", "url": "x"}]),
            url,
            "tasks[0].url",
            "unknown field",
        ),
        (
            json!([{"method": "get", "args": "a b"}]),
            url,
            "tasks[0].args",
            "expected a list",
        ),
        (
            json!([{"key": "k"}]),
            url,
            "tasks[0].method",
            "missing field",
        ),
        (
            json!([{"method": "get key"}]),
            url,
            "tasks[0].method",
            "not a Redis command",
        ),
        (
            json!([{"method": "get", "key": {"a": 1}}]),
            url,
            "tasks[0].key",
            "expected a string",
        ),
        (
            json!([{"method": "get", "key": "k"}]),
            "http://127.0.0.1:9/",
            "connection.url",
            "not a Redis URL",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, url, _, _)| start_test(url, 1, 0.2, tasks.clone()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, _, f, n)| (*f, *n)).collect();
    assert_action_errors(&work, actions, &expected);
    // The password of a URL is never printed.
    let secret = work.write(
        "secret.json",
        &script(json!([start_test(
            &format!("redis://:hunter2@127.0.0.1:{}/0", closed_port()),
            1,
            0.3,
            json!([{"method": "get", "key": "k", "name": "k"}])
        )])),
    );
    let summary_path = work.path("secret-summary.json");
    let output = run(
        &[
            "run",
            secret.to_str().expect("utf8"),
            "--summary-json",
            summary_path.to_str().expect("utf8"),
        ],
        None,
    );
    let all = format!(
        "{}{}{}",
        stderr(&output),
        common::stdout(&output),
        std::fs::read_to_string(&summary_path).unwrap_or_default()
    );
    assert!(!all.contains("hunter2"), "{all}");
}
