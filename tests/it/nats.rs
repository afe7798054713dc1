//! `nats_user` against a real `nats-server` (Debian's) on free loopback ports:
//! LoadDensity's documented task list with the server's own message counts (`/varz`
//! `in_msgs` and `out_msgs`) equal to the client's, subscriptions fed by a publisher
//! of the test's, the server's `-ERR`, no responders, timeouts, refused connections
//! and the errors of bad fields.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::nats::NatsServer;
use common::stalled::Stalled;
use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
};
use common::{Workdir, closed_port};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn start_test(connection: Value, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "nats_user"},
        "connection": connection,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

/// A runtime for the test's own NATS clients (a responder, a counter, a feed).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn the_documented_task_list_matches_the_servers_counts() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let rt = runtime();
    let (in_before, out_before) = server.message_counts();
    // A responder on `rpc` and a counter of what arrives on `topic`.
    let received = Arc::new(AtomicU64::new(0));
    let helper = rt.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connect");
        let mut rpc = client.subscribe("rpc").await.expect("subscribe rpc");
        let mut topic = client.subscribe("topic").await.expect("subscribe topic");
        client.flush().await.expect("flush");
        let replier = client.clone();
        tokio::spawn(async move {
            while let Some(message) = rpc.next().await {
                if let Some(reply) = message.reply {
                    let _ = replier.publish(reply, "pong!".into()).await;
                }
            }
        });
        let counter = received.clone();
        tokio::spawn(async move {
            while topic.next().await.is_some() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        client
    });
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "nats.json",
        json!([start_test(
            json!({"servers": [server.url()]}),
            3,
            1.5,
            json!([
                {"method": "connect"},
                {"method": "publish", "subject": "topic", "payload": "hello"},
                {"method": "request", "subject": "rpc", "payload": "ping", "timeout": 2.0},
                {"method": "close"},
            ])
        )]),
    );
    for name in ["connect", "publish", "request", "close"] {
        assert!(count(&summary, name) > 0, "{name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    let published = count(&summary, "publish");
    let requests = count(&summary, "request");
    assert_eq!(bytes(&summary, "publish"), 5 * published);
    assert_eq!(bytes(&summary, "request"), 5 * requests);
    rt.block_on(async {
        helper.flush().await.expect("flush");
        // Every published message reaches the counter (bounded wait).
        for _ in 0..100 {
            if received.load(Ordering::Relaxed) >= published {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(received.load(Ordering::Relaxed), published);
    // The server's counts: each publish is one message in and one out (to the
    // counter); each request two in (request, reply) and two out.
    let (in_after, out_after) = server.message_counts();
    assert_eq!(in_after - in_before, published + 2 * requests);
    assert_eq!(out_after - out_before, published + 2 * requests);
}

/// A subject and payload with placeholders are rendered per publish (a fixed one is
/// built once): what arrives is the rendered text, never the template.
#[test]
fn templated_subjects_and_payloads_are_rendered_per_publish() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let rt = runtime();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let helper = rt.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connect");
        let mut feed = client.subscribe("tmpl.>").await.expect("subscribe");
        client.flush().await.expect("flush");
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(message) = feed.next().await {
                let payload = String::from_utf8_lossy(&message.payload).into_owned();
                if let Ok(mut seen) = seen.lock() {
                    seen.push((message.subject.to_string(), payload));
                }
            }
        });
        client
    });
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "nats_templates.json",
        json!([start_test(
            json!({"servers": [server.url()]}),
            2,
            1.0,
            json!([
                {"method": "connect"},
                {"method": "publish", "subject": "tmpl.${randint(1, 3)}", "payload": "n${randint(7, 7)}", "name": "templated"},
                {"method": "publish", "subject": "tmpl.fixed", "payload": "fixed", "name": "fixed"},
                {"method": "close"},
            ])
        )]),
    );
    for name in ["templated", "fixed"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    let (templated, fixed) = (count(&summary, "templated"), count(&summary, "fixed"));
    assert!(templated > 0 && fixed > 0, "{summary}");
    assert_eq!(bytes(&summary, "templated"), 2 * templated);
    assert_eq!(bytes(&summary, "fixed"), 5 * fixed);
    let expected = usize::try_from(templated + fixed).expect("a count");
    rt.block_on(async {
        helper.flush().await.expect("flush");
        for _ in 0..100 {
            if seen.lock().map(|s| s.len()).unwrap_or(0) >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let seen = seen.lock().expect("the feed's messages").clone();
    assert_eq!(seen.len(), expected);
    for (subject, payload) in &seen {
        match subject.as_str() {
            "tmpl.fixed" => assert_eq!(payload, "fixed"),
            "tmpl.1" | "tmpl.2" | "tmpl.3" => assert_eq!(payload, "n7"),
            other => panic!("a message on `{other}` ({payload})"),
        }
    }
    assert_eq!(
        seen.iter().filter(|(s, _)| s == "tmpl.fixed").count(),
        usize::try_from(fixed).expect("a count")
    );
}

#[test]
fn subscribe_takes_max_messages_from_a_feed() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let rt = runtime();
    // A feed on `feed`: a message every 2 ms while the run lasts (bounded).
    let stop = Arc::new(AtomicBool::new(false));
    let feed = {
        let stop = stop.clone();
        let url = server.url();
        rt.spawn(async move {
            let client = async_nats::connect(url).await.expect("connect");
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = client.publish("feed", "tick".into()).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = client.flush().await;
        })
    };
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "nats.json",
        json!([start_test(
            json!({"url": server.url()}),
            2,
            1.0,
            json!([
                {"method": "connect"},
                {"method": "subscribe", "subject": "feed", "max_messages": 3, "timeout": 1.0},
                {"method": "subscribe", "subject": "silent", "timeout": 0.1, "name": "silent"},
                {"method": "close"},
            ])
        )]),
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(feed).expect("feed");
    let subscribes = count(&summary, "subscribe");
    assert!(subscribes > 0, "{summary}");
    assert_eq!(
        failures(&summary, "subscribe"),
        0,
        "{:?}",
        errors_of(&summary, "subscribe")
    );
    assert_eq!(bytes(&summary, "subscribe"), 3 * 4 * subscribes);
    let silent = count(&summary, "silent");
    assert!(silent > 0, "{summary}");
    assert_eq!(failures(&summary, "silent"), silent);
    assert!(
        errors_of(&summary, "silent")
            .iter()
            .all(|e| e
                .contains("subscribe `silent`: timed out after 100ms waiting for message 1 of 1")),
        "{:?}",
        errors_of(&summary, "silent")
    );
    // The server delivered at least every message the users counted (it may have
    // sent a few more just before an unsubscribe arrived).
    let (_, delivered) = server.message_counts();
    assert!(
        delivered >= 3 * subscribes,
        "{delivered} < 3 × {subscribes}"
    );
}

#[test]
fn server_errors_no_responders_and_refusals_fail_clearly() {
    let config = r#"
authorization {
  users = [
    {user: alice, password: hunter2, permissions: {publish: {deny: ["forbidden.>"]}}}
  ]
}
"#;
    let Some(server) = NatsServer::start(Some(config)) else {
        return;
    };
    let url = format!("nats://alice:hunter2@127.0.0.1:{}", server.port);
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "nats.json",
        json!([
            start_test(
                json!({"url": url}),
                1,
                1.0,
                json!([
                    {"method": "connect"},
                    {"method": "publish", "subject": "forbidden.x", "payload": "x", "name": "denied"},
                    {"method": "request", "subject": "nobody", "timeout": 0.5, "name": "no responders"},
                    {"method": "publish", "subject": "allowed", "payload": "x", "name": "allowed"},
                    {"method": "close"},
                ])
            ),
            start_test(
                json!({"url": url}),
                1,
                0.3,
                json!([{"method": "publish", "subject": "s", "name": "unconnected"}])
            ),
            start_test(
                json!({"url": format!("nats://alice:hunter2@127.0.0.1:{}", closed_port())}),
                1,
                0.3,
                json!([{"method": "connect", "name": "refused"}])
            ),
            start_test(
                json!({"url": format!("nats://alice:wrong@127.0.0.1:{}", server.port)}),
                1,
                0.3,
                json!([{"method": "connect", "name": "bad password"}])
            ),
        ]),
    );
    let expect_all = |name: &str, needle: &str| {
        let n = count(&summary, name);
        assert!(n > 0, "{name}: {summary}");
        assert_eq!(failures(&summary, name), n, "{name}: {summary}");
        let errors = errors_of(&summary, name);
        assert!(
            !errors.is_empty() && errors.iter().all(|e| e.contains(needle)),
            "{name}: {errors:?}"
        );
    };
    expect_all("no responders", "request `nobody`: no responders");
    expect_all(
        "unconnected",
        "publish: not connected; run a `connect` step first",
    );
    expect_all("refused", "connect nats://127.0.0.1:");
    expect_all("bad password", "authorization violation");
    // The server's -ERR for the denied publish fails a step of its iteration.
    let all_errors: Vec<String> = ["denied", "no responders", "allowed", "close"]
        .iter()
        .flat_map(|name| errors_of(&summary, name))
        .collect();
    assert!(
        all_errors
            .iter()
            .any(|e| e.contains("-ERR 'Permissions Violation for Publish to \"forbidden.x\"'")),
        "{all_errors:?}"
    );
    let types = error_request_types(&summary);
    assert!(types.iter().all(|t| *t == "NATS"), "{types:?}");
    assert!(!summary.to_string().contains("hunter2"), "{summary}");
}

#[test]
fn bad_fields_are_clear_errors() {
    let work = Workdir::new();
    let url = json!({"url": "nats://127.0.0.1:9"});
    let cases = [
        (
            url.clone(),
            json!([{"method": "publish", "subject": "s", "topic": "t"}]),
            "tasks[0].topic",
            "unknown field",
        ),
        (
            url.clone(),
            json!([{"method": "jetstream"}]),
            "tasks[0].method",
            "unknown method `jetstream`",
        ),
        (
            url.clone(),
            json!([{"method": "publish", "payload": "x"}]),
            "tasks[0].subject",
            "needs a subject",
        ),
        (
            url.clone(),
            json!([{"method": "subscribe", "subject": "s", "timeout": 0}]),
            "tasks[0].timeout",
            "positive number",
        ),
        (
            url.clone(),
            json!([{"method": "connect", "servers": ["nats://127.0.0.1:9", "http://u:hunter2@h/"]}]),
            "tasks[0].servers[1]",
            "not a NATS server",
        ),
        (
            json!({"url": "nats://127.0.0.1:9", "subjetc": "x"}),
            json!([{"method": "connect"}]),
            "connection.subjetc",
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
}

#[test]
fn a_server_url_that_renders_malformed_is_permanent_and_names_its_field() {
    // A placeholder leaves the URL unchecked until a step renders it; what it renders
    // to is then no NATS URL. Retrying cannot mend a configuration error: were it
    // classed transient (a connect failure), `transient` would retry it twice.
    let work = Workdir::new();
    let task = json!({
        "method": "connect", "name": "malformed",
        "servers": ["nats://127.0.0.1:4222", "http://127.0.0.1:${randint(1, 3)}"],
        "retry": {"transient": 2, "flaky": 2, "permanent": 0, "base_delay": 0, "jitter": 0},
    });
    let summary = run_script(
        &work,
        "nats.json",
        json!([start_test(json!({}), 1, 0.3, json!([task]))]),
    );
    let attempts = count(&summary, "malformed");
    assert!(attempts > 0, "{summary}");
    assert_eq!(failures(&summary, "malformed"), attempts, "{summary}");
    assert_eq!(
        summary["per_name"]["malformed"]["retries"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{summary}"
    );
    let errors = errors_of(&summary, "malformed");
    assert!(
        !errors.is_empty()
            && errors.iter().all(|e| e
                .starts_with("connect: tasks[0].servers[1]: `http://127.0.0.1:")
                && e.contains("is not a NATS server")),
        "{errors:?}"
    );
}

/// A NATS server that completes the handshake (INFO, then PONG to the client's
/// PING) and then reads nothing more: the client's writes fill the socket and its
/// flushes wait. Holds its connections until dropped.
fn stalled_nats() -> Stalled {
    use std::io::{Read, Write};
    Stalled::with_greeting(|stream| {
        let info = r#"INFO {"server_id":"stalled","version":"2.10.0","host":"127.0.0.1","port":4222,"max_payload":1048576,"proto":1,"headers":true}"#;
        if stream.write_all(format!("{info}\r\n").as_bytes()).is_err() {
            return;
        }
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(6).any(|w| w == b"PING\r\n") {
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let _ = stream.write_all(b"PONG\r\n");
    })
}

/// A publish the server does not take in fails when its `timeout` passes, and the
/// next one gets its own full `timeout` again: each step's deadline is its own (the
/// user's one timer is moved, even after it fired), neither the first step's nor
/// one that already passed.
#[test]
fn publishes_to_a_server_that_stops_reading_time_out_each_after_its_timeout() {
    let server = stalled_nats();
    let work = Workdir::new();
    // 256 KiB a message: the socket's buffers are full after a few dozen.
    let payload = "x".repeat(256 * 1024);
    let publish = json!({"method": "publish", "subject": "stall", "payload": payload,
        "timeout": 0.2, "name": "stalled"});
    let mut tasks = vec![json!({"method": "connect"})];
    tasks.extend(std::iter::repeat_n(publish, 200));
    tasks.push(json!({"method": "close", "timeout": 0.2}));
    let summary = run_script(
        &work,
        "nats.json",
        json!([start_test(
            json!({"url": format!("nats://{}", server.addr)}),
            1,
            1.5,
            json!(tasks)
        )]),
    );
    assert_eq!(failures(&summary, "connect"), 0, "{summary}");
    let timed_out = failures(&summary, "stalled");
    // 1.5 s of 200 ms timeouts: about 7. Fewer than 3: a deadline did not fire again
    // after the first; many more: a step's deadline had already passed.
    assert!(
        (3..=10).contains(&timed_out),
        "{timed_out} timeouts: {summary}"
    );
    let errors = errors_of(&summary, "stalled");
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e.contains("publish `stall`: timed out after 200ms")),
        "{errors:?}"
    );
    let slowest = summary["per_name"]["stalled"]["max_ms"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (190.0..1000.0).contains(&slowest),
        "{slowest} ms: {summary}"
    );
}
