//! `sse_user` against a real Server-Sent Events endpoint (`tests/servers/sse_server.py`,
//! the standard library's threading HTTP server): LoadDensity's documented task list
//! with the server's count of streams opened, `expect` across events, and the
//! failures: refused, 404, timeout, a stream the server ended, `wait` before `open`,
//! and the errors of bad fields.

use crate::common;

use common::python_server::PythonServer;
use common::summary::{
    assert_action_errors, assert_all_failed, assert_no_failures, bytes, count, errors_of, failures,
    run_script, start_user_test,
};
use common::{Workdir, closed_port};
use serde_json::{Value, json};

fn server() -> Option<PythonServer> {
    PythonServer::start("sse_server.py", &[], &[], "apt-get install python3")
}

fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    start_user_test("sse_user", users, seconds, tasks)
}

#[test]
fn loaddensity_documented_task_list_matches_the_server_count() {
    let Some(server) = server() else { return };
    let work = Workdir::new();
    let url = format!("http://127.0.0.1:{}/events?count=2&interval=5", server.port);
    // LoadDensity's template docstring, pointed at the local server.
    let tasks = json!([
        {"method": "open", "request_url": url, "name": "open"},
        {"method": "wait", "expect": "ready", "timeout": 5, "name": "wait"},
        {"method": "close", "name": "close"},
    ]);
    let summary = run_script(&work, "sse.json", json!([start_test(2, 1.0, tasks)]));
    let opens = count(&summary, "open");
    assert!(opens >= 10, "too few requests: {summary}");
    assert_no_failures(&summary, &["open", "wait", "close"]);
    // Every `open` reached the server with `Accept: text/event-stream`; one per user
    // may still have been in flight when the test stopped.
    let stats = server.get_json("/stats");
    let opened = stats["opened"].as_u64().expect("opened");
    assert!(
        (opens..=opens + 2).contains(&opened),
        "server opened {opened}, client {opens}"
    );
    assert_eq!(stats["refused"], 0);
    // `wait` counts the values of the event it read: `status` and `ready`.
    assert_eq!(bytes(&summary, "wait"), 11 * count(&summary, "wait"));
    assert_eq!(bytes(&summary, "open"), 0);
}

#[test]
fn expect_reads_across_events_and_host_and_connection_give_defaults() {
    let Some(server) = server() else { return };
    let work = Workdir::new();
    let mut start = start_test(
        1,
        0.8,
        json!([
            {"method": "open", "name": "open"},
            {"method": "wait", "expect": "tick 2", "name": "third tick"},
            {"method": "wait", "name": "ended", "expect": "never"},
            {"method": "wait", "name": "after the end"},
        ]),
    );
    start[1]["host"] = json!(format!(
        "http://127.0.0.1:{}/events?count=3&interval=5",
        server.port
    ));
    start[1]["connection"] = json!({"timeout": 3});
    let summary = run_script(&work, "sse.json", json!([start]));
    let ticks = count(&summary, "third tick");
    assert!(ticks >= 3, "{summary}");
    assert_eq!(failures(&summary, "open"), 0, "{summary}");
    assert_eq!(failures(&summary, "third tick"), 0, "{summary}");
    // ready (11) and three ticks (1 + 6 each).
    assert_eq!(bytes(&summary, "third tick"), (11 + 3 * 7) * ticks);
    assert_eq!(failures(&summary, "ended"), count(&summary, "ended"));
    assert!(
        errors_of(&summary, "ended")
            .iter()
            .all(|e| e == "the SSE stream ended before an event containing `never`"),
        "{:?}",
        errors_of(&summary, "ended")
    );
    assert_eq!(
        failures(&summary, "after the end"),
        count(&summary, "after the end")
    );
    assert!(
        errors_of(&summary, "after the end")[0].contains("the SSE stream is not open"),
        "{summary}"
    );
}

#[test]
fn refused_not_found_timeout_and_wait_before_open_are_counted_failures() {
    let Some(server) = server() else { return };
    let work = Workdir::new();
    let base = format!("http://127.0.0.1:{}", server.port);
    let tasks = json!([
        {"method": "wait", "name": "wait before open"},
        {"method": "open", "request_url": format!("http://127.0.0.1:{}/", closed_port()),
         "name": "refused", "timeout": 2},
        {"method": "open", "request_url": format!("{base}/missing"), "name": "not found"},
        {"method": "open", "request_url": format!("{base}/silent"), "name": "silent open"},
        {"method": "wait", "timeout": 0.2, "name": "silent wait", "expect": "x"},
        {"method": "close", "name": "close"},
    ]);
    let summary = run_script(&work, "sse.json", json!([start_test(1, 1.0, tasks)]));
    for (name, needle) in [
        (
            "wait before open",
            "the SSE stream is not open: add an `open` step before `wait`",
        ),
        ("refused", "connect to 127.0.0.1:"),
        ("not found", "HTTP 404 Not Found"),
        (
            "silent wait",
            "timed out after 200ms waiting for an event containing `x`",
        ),
    ] {
        assert_all_failed(&summary, name, needle);
    }
    assert_eq!(failures(&summary, "silent open"), 0, "{summary}");
    assert_eq!(failures(&summary, "close"), 0, "{summary}");
}

#[test]
fn bad_fields_and_methods_are_refused_naming_the_field() {
    let work = Workdir::new();
    let cases = [
        (
            json!([{"method": "listen"}]),
            "tasks[0].method",
            "unsupported sse method `listen`",
        ),
        (
            json!([{"method": "open"}]),
            "tasks[0].request_url",
            "missing field",
        ),
        (
            json!([{"method": "open", "url": "ws://h/"}]),
            "tasks[0].url",
            "scheme `ws` is not supported",
        ),
        (
            json!([{"method": "wait", "expct": "x"}]),
            "tasks[0].expct",
            "unknown field",
        ),
        (
            json!([{"method": "wait", "timeout": -1}]),
            "tasks[0].timeout",
            "positive number",
        ),
    ];
    let mut actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, _, _)| start_test(1, 0.2, tasks.clone()))
        .collect();
    let mut bad_connection = start_test(1, 0.2, json!([{"method": "wait"}]));
    bad_connection[1]["connection"] = json!({"colour": "red"});
    actions.push(bad_connection);
    let mut expected: Vec<(&str, &str)> = cases.iter().map(|(_, f, n)| (*f, *n)).collect();
    expected.push(("connection.colour", "unknown field"));
    assert_action_errors(&work, actions, &expected);
}
