//! `graphql_ws_user` against a real GraphQL server with subscriptions
//! (`tests/servers/graphql_server.py`: strawberry-graphql on uvicorn, speaking
//! graphql-transport-ws): LoadDensity's documented task list with the server's count
//! of subscriptions and messages, `max_messages` on an endless subscription with
//! `complete`, and the failures: refused, a refused subscription, a timeout,
//! `subscribe` before `connect`, and the errors of bad fields.

use crate::common;

use common::python_server::PythonServer;
use common::summary::{
    assert_action_errors, assert_all_failed, assert_no_failures, bytes, count, errors_of, failures,
    run_script, start_user_test,
};
use common::{Workdir, closed_port};
use serde_json::{Value, json};

fn server() -> Option<PythonServer> {
    PythonServer::start(
        "graphql_server.py",
        &[],
        &["strawberry", "uvicorn", "starlette", "websockets"],
        "python3 -m pip install 'strawberry-graphql[asgi]' uvicorn websockets (scripts/test does)",
    )
}

fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    start_user_test("graphql_ws_user", users, seconds, tasks)
}

#[test]
fn loaddensity_documented_task_list_matches_the_server_count() {
    let Some(server) = server() else { return };
    let work = Workdir::new();
    let url = format!("ws://127.0.0.1:{}/graphql", server.port);
    // LoadDensity's template docstring, pointed at the local server: a subscription
    // of three messages, read whole (three `next` and the `complete`).
    let tasks = json!([
        {"method": "connect", "url": url, "protocol": "graphql-transport-ws"},
        {"method": "subscribe", "id": "1", "query": "subscription { count(target: 3) }",
         "variables": {}, "max_messages": 10, "timeout": 5.0},
        {"method": "complete", "id": "1"},
        {"method": "close"},
    ]);
    let summary = run_script(&work, "gql.json", json!([start_test(2, 1.5, tasks)]));
    let subscribes = count(&summary, "subscribe");
    assert!(subscribes >= 5, "too few requests: {summary}");
    assert_no_failures(&summary, &["connect", "subscribe", "complete", "close"]);
    // The server started as many subscriptions as the client reported (one per user
    // may still have been in flight when the test stopped), and sent three messages each.
    let stats = server.get_json("/stats");
    let started = stats["subscriptions"].as_u64().expect("subscriptions");
    assert!(
        (subscribes..=subscribes + 2).contains(&started),
        "server {started}, client {subscribes}"
    );
    assert_eq!(stats["messages"].as_u64(), Some(3 * started));
    // Each subscribe read three `next` messages and the `complete`.
    let next = |i: u32| {
        json!({"id": "1", "type": "next", "payload": {"data": {"count": i}}})
            .to_string()
            .len() as u64
    };
    let complete = r#"{"id":"1","type":"complete"}"#.len() as u64;
    assert_eq!(
        bytes(&summary, "subscribe"),
        subscribes * (next(0) + next(1) + next(2) + complete)
    );
    assert_eq!(
        bytes(&summary, "connect"),
        count(&summary, "connect") * r#"{"type":"connection_ack"}"#.len() as u64
    );
}

#[test]
fn max_messages_then_complete_on_an_endless_subscription_with_connection_defaults() {
    let Some(server) = server() else { return };
    let work = Workdir::new();
    let mut start = start_test(
        1,
        1.0,
        json!([
            {"method": "connect"},
            {"method": "subscribe", "query": "subscription { forever }", "max_messages": 2,
             "id": "f", "name": "two of forever"},
            {"method": "complete", "id": "f", "name": "complete"},
            {"method": "subscribe", "query": "subscription { nope }", "name": "refused"},
            {"method": "subscribe", "query": "subscription { forever }", "max_messages": 100,
             "timeout": 0.2, "id": "slow", "name": "too slow"},
            {"method": "close"},
            {"method": "subscribe", "query": "subscription { count }", "name": "after close"},
        ]),
    );
    start[1]["host"] = json!(format!("ws://127.0.0.1:{}/graphql", server.port));
    start[1]["connection"] = json!({"timeout": 3, "init_payload": {"token": "t"}});
    let summary = run_script(&work, "gql.json", json!([start]));
    let two = count(&summary, "two of forever");
    assert!(two >= 2, "{summary}");
    assert_eq!(failures(&summary, "connect"), 0, "{summary}");
    assert_eq!(failures(&summary, "two of forever"), 0, "{summary}");
    for (name, needle) in [
        ("refused", "the server refused the subscription: [{"),
        ("too slow", "timed out after 200ms"),
        ("after close", "graphql-ws not connected"),
    ] {
        assert_eq!(failures(&summary, name), count(&summary, name), "{name}");
        let errors = errors_of(&summary, name);
        assert!(
            errors.iter().any(|e| e.contains(needle)) && !errors.is_empty(),
            "{name}: {errors:?}"
        );
    }
    assert!(
        errors_of(&summary, "refused")[0].contains("Cannot query field 'nope'"),
        "{summary}"
    );
}

#[test]
fn refused_connection_is_a_counted_failure() {
    let work = Workdir::new();
    let url = format!("ws://127.0.0.1:{}/graphql", closed_port());
    let summary = run_script(
        &work,
        "gql.json",
        json!([start_test(
            1,
            0.3,
            json!([{"method": "connect", "url": url, "name": "refused"}])
        )]),
    );
    assert_all_failed(&summary, "refused", "connect to `ws://127.0.0.1:");
}

#[test]
fn bad_fields_and_methods_are_refused_naming_the_field() {
    let work = Workdir::new();
    let cases = [
        (
            json!([{"method": "publish"}]),
            "tasks[0].method",
            "unsupported graphql_ws method",
        ),
        (json!([{"query": "x"}]), "tasks[0].method", "missing field"),
        (
            json!([{"method": "connect"}]),
            "tasks[0].url",
            "missing field",
        ),
        (
            json!([{"method": "subscribe"}]),
            "tasks[0].query",
            "missing field",
        ),
        (
            json!([{"method": "subscribe", "query": "q", "variables": [1]}]),
            "tasks[0].variables",
            "JSON object",
        ),
        (
            json!([{"method": "subscribe", "query": "q", "max_message": 1}]),
            "tasks[0].max_message",
            "unknown field",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, _, _)| start_test(1, 0.2, tasks.clone()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, f, n)| (*f, *n)).collect();
    assert_action_errors(&work, actions, &expected);
}
