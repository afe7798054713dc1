//! `amqp_user` against a real RabbitMQ node (Debian's `rabbitmq-server`, one private
//! node shared by this module; see `common::rabbitmq`): LoadDensity's documented
//! task list with the queue's depth as the broker counts it, the broker's channel
//! closes, refused connections and the errors of bad fields.

use crate::common;

use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
    script,
};
use common::{Workdir, closed_port, run, stderr};
use serde_json::{Value, json};

/// A queue name no other test uses.
fn queue(test: &str) -> String {
    format!("ld_{test}_{}", std::process::id())
}

fn start_test(connection: Value, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "amqp_user"},
        "connection": connection,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

#[test]
fn the_documented_task_list_leaves_the_depth_the_broker_counts() {
    let Some(rabbit) = common::rabbitmq::shared() else {
        return;
    };
    let work = Workdir::new();
    let q = queue("depth");
    // LoadDensity's documented steps, the queue supplied by `connection` (a default
    // of every step), two publishes for each consume of one message.
    let summary = run_script(
        &work,
        "amqp.json",
        json!([start_test(
            json!({"url": rabbit.url(), "queue": q}),
            3,
            2.0,
            json!([
                {"method": "connect"},
                {"method": "declare_queue", "durable": false},
                {"method": "publish", "exchange": "", "routing_key": q, "body": "hello"},
                {"method": "publish", "exchange": "", "routing_key": q, "body": "hello"},
                {"method": "consume", "auto_ack": true, "max_messages": 1},
                {"method": "close"},
            ])
        )]),
    );
    for name in ["connect", "declare_queue", "publish", "consume", "close"] {
        assert!(count(&summary, name) > 0, "{name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    let published = count(&summary, "publish");
    assert_eq!(bytes(&summary, "publish"), 5 * published);
    let consumed_bytes = bytes(&summary, "consume");
    assert_eq!(consumed_bytes % 5, 0, "{summary}");
    let consumed = consumed_bytes / 5;
    assert!(consumed > 0, "{summary}");
    assert_eq!(
        rabbit.queue_depth(&q),
        Some(published - consumed),
        "published {published}, consumed {consumed}"
    );
    // One more run that only consumes: every message left is taken, and the
    // broker's count goes to zero with the client's.
    let depth = published - consumed;
    let drain = run_script(
        &work,
        "drain.json",
        json!([start_test(
            json!({"url": rabbit.url()}),
            1,
            1.0,
            json!([
                {"method": "connect"},
                {"method": "consume", "queue": q, "max_messages": depth + 10, "name": "drain"},
                {"method": "close"},
            ])
        )]),
    );
    assert_eq!(failures(&drain, "drain"), 0, "{drain}");
    assert_eq!(bytes(&drain, "drain"), 5 * depth);
    assert_eq!(rabbit.queue_depth(&q), Some(0));
}

#[test]
fn broker_errors_and_closed_channels_fail_clearly() {
    let Some(rabbit) = common::rabbitmq::shared() else {
        return;
    };
    let work = Workdir::new();
    let missing = queue("missing");
    let q = queue("mismatch");
    let summary = run_script(
        &work,
        "amqp.json",
        json!([
            start_test(
                json!({"url": rabbit.url()}),
                1,
                1.0,
                json!([
                    {"method": "connect"},
                    {"method": "consume", "queue": missing, "name": "missing"},
                    {"method": "publish", "routing_key": missing, "body": "x", "name": "after close"},
                    {"method": "connect", "name": "reconnect"},
                    {"method": "declare_queue", "queue": q, "durable": false, "name": "declare"},
                    {"method": "declare_queue", "queue": q, "durable": true, "name": "mismatch"},
                    {"method": "close"},
                ])
            ),
            start_test(
                json!({"url": rabbit.url()}),
                1,
                0.5,
                json!([{"method": "publish", "routing_key": q, "body": "x", "name": "unconnected"}])
            ),
            start_test(
                json!({"url": format!("amqp://guest:hunter2@127.0.0.1:{}/%2F", closed_port())}),
                1,
                0.5,
                json!([{"method": "connect", "name": "refused"}])
            ),
        ]),
    );
    let expect_all = |name: &str, needle: &str| {
        let n = count(&summary, name);
        assert!(n > 0, "{name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            n,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
        let errors = errors_of(&summary, name);
        assert!(
            !errors.is_empty() && errors.iter().all(|e| e.contains(needle)),
            "{name}: {errors:?}"
        );
    };
    expect_all("missing", "NOT_FOUND - no queue");
    expect_all(
        "after close",
        "amqp channel not open (channel closed by the broker (404)",
    );
    expect_all("mismatch", "PRECONDITION_FAILED");
    expect_all("unconnected", "run a `connect` step first");
    expect_all("refused", "connect amqp://127.0.0.1:");
    assert_eq!(failures(&summary, "reconnect"), 0);
    assert_eq!(failures(&summary, "declare"), 0);
    let types = error_request_types(&summary);
    assert!(types.iter().all(|t| *t == "AMQP"), "{types:?}");
    assert!(!summary.to_string().contains("hunter2"));
    // The queue is there, as first declared (not durable).
    assert_eq!(rabbit.queue_depth(&q), Some(0));
    assert_eq!(rabbit.queue_depth(&missing), None);
}

#[test]
fn bad_fields_are_clear_errors() {
    let work = Workdir::new();
    let url = json!({"url": "amqp://127.0.0.1:9/%2F"});
    let cases = [
        (
            url.clone(),
            json!([{"method": "publish", "topic": "t"}]),
            "tasks[0].topic",
            "unknown field",
        ),
        (
            url.clone(),
            json!([{"method": "purge"}]),
            "tasks[0].method",
            "unknown method `purge`",
        ),
        (
            url.clone(),
            json!([{"body": "x"}]),
            "tasks[0].method",
            "missing field",
        ),
        (
            url.clone(),
            json!([{"method": "consume", "max_messages": -1}]),
            "tasks[0].max_messages",
            "expected an integer",
        ),
        (
            url.clone(),
            json!([{"method": "declare_queue", "durable": "yes"}]),
            "tasks[0].durable",
            "expected true or false",
        ),
        (
            url.clone(),
            json!([{"method": "connect", "url": "http://u:hunter2@127.0.0.1/"}]),
            "tasks[0].url",
            "is not AMQP",
        ),
        (
            json!({"url": "amqp://127.0.0.1:9/%2F", "qeueu": "x"}),
            json!([{"method": "connect"}]),
            "connection.qeueu",
            "unknown field",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(connection, tasks, _, _)| start_test(connection.clone(), 1, 0.2, tasks.clone()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, _, f, n)| (*f, *n)).collect();
    let text = assert_action_errors(&work, actions, &expected);
    assert!(!text.contains("hunter2"), "{text}");
    // LD_start_test's `host` is the default broker; a password in it is never printed.
    let secret = work.write(
        "secret.json",
        &script(json!([["LD_start_test", {
            "user_detail_dict": {"user": "amqp_user"},
            "host": format!("amqp://guest:hunter2@127.0.0.1:{}/%2F", closed_port()),
            "user_count": 1, "spawn_rate": 10, "test_time": 0.3,
            "tasks": [{"method": "connect", "name": "c"}]
        }]])),
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
    let summary = std::fs::read_to_string(&summary_path).unwrap_or_default();
    assert!(summary.contains("connect amqp://127.0.0.1:"), "{summary}");
    let all = format!("{}{}{summary}", stderr(&output), common::stdout(&output));
    assert!(!all.contains("hunter2"), "{all}");
}
