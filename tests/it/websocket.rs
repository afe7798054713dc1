//! `websocket_user` against a real WebSocket server started here (tokio-tungstenite):
//! it answers `pong` to a frame containing `ping`, echoes other frames, closes on
//! `bye` and stays silent on `quiet`.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use loaddensity::Summary;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::{closed_port, error, executor, ok};

/// A WebSocket server on a free loopback port, on its own runtime thread.
struct EchoServer {
    scheme: &'static str,
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// The same server behind TLS (`wss://`, a self-signed certificate).
    fn start_tls() -> Self {
        Self::start_with(Some(common::tls_acceptor(&[b"http/1.1"])))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let (runtime, listener) = common::loopback_server();
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let tls_scheme = tls.is_some();
        let counter = connections.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                match tls.clone() {
                    None => tokio::spawn(serve(stream)),
                    Some(acceptor) => tokio::spawn(async move {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream).await;
                        }
                    }),
                };
            }
        });
        Self {
            scheme: if tls_scheme { "wss" } else { "ws" },
            addr,
            connections,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

async fn serve<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(text) if text.contains("ping") => Message::text("pong"),
            Message::Text(text) if text.as_str() == "bye" => Message::Close(None),
            Message::Text(text) if text.as_str() == "quiet" => continue,
            Message::Text(text) => Message::Text(text),
            Message::Binary(bytes) => Message::Binary(bytes),
            Message::Close(_) => break,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}

fn start_test(tasks: Value, users: u32, seconds: f64) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "websocket_user"},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.01},
        "tasks": tasks,
    }])
}

fn summary(executor: &loaddensity::Executor) -> Summary {
    executor.summary()
}

fn name_stats<'a>(summary: &'a Summary, name: &str) -> &'a loaddensity::stats::NameStats {
    summary
        .per_name
        .iter()
        .find(|(key, _)| key.ends_with(name))
        .map(|(_, stats)| stats)
        .unwrap_or_else(|| panic!("no `{name}` in {:?}", summary.per_name.keys()))
}

#[test]
fn loaddensity_documented_example_runs_without_failures() {
    let server = EchoServer::start();
    let mut executor = executor();
    // LoadDensity's README example, pointed at the local server.
    let tasks = json!([
        {"method": "connect", "request_url": server.url("/socket")},
        {"method": "sendrecv", "payload": "{\"ping\": 1}", "expect": "pong"},
        {"method": "close"},
    ]);
    let records = executor.execute_document(&json!([start_test(tasks, 2, 1.0)]), "<ws>");
    let result = ok(&records[0]);
    let summary = summary(&executor);
    assert!(summary.totals.requests >= 30, "{result}");
    assert_eq!(summary.totals.failures, 0, "{:?}", summary.errors);
    // Every step is one event, and, as in LoadDensity, the steps without a URL or a
    // name are named by the user's current URL: connect, sendrecv and close are one
    // row (within one iteration in flight per user when the test stopped).
    assert_eq!(summary.per_name.len(), 1, "{:?}", summary.per_name.keys());
    let steps = name_stats(&summary, &server.url("/socket")).count;
    let connections = server.connections.load(Ordering::Relaxed) as u64;
    assert!(
        steps.abs_diff(3 * connections) <= 6,
        "{steps} steps, {connections} connections"
    );
}

/// A step without URL or name is reported under the URL the user is connected to
/// (else `host`), not under its method: LoadDensity's naming.
#[test]
fn steps_are_named_by_the_current_url() {
    let server = EchoServer::start();
    let mut executor = executor();
    let other = server.url("/other");
    let host = server.url("/host");
    let tasks = json!([
        // No connection and no URL yet: it connects to `host` and is named by it.
        {"method": "sendrecv", "payload": "first", "expect": "first"},
        {"method": "connect", "request_url": other, "name": "c"},
        {"method": "sendrecv", "payload": "hello", "expect": "hello"},
        {"method": "close", "name": "bye"},
    ]);
    let mut start = start_test(tasks, 1, 0.5);
    start[1]["host"] = json!(host);
    let records = executor.execute_document(&json!([start]), "<ws>");
    ok(&records[0]);
    let summary = summary(&executor);
    assert_eq!(summary.totals.failures, 0, "{:?}", summary.errors);
    let got: Vec<&str> = summary.per_name.keys().map(String::as_str).collect();
    assert_eq!(got, ["bye", "c", host.as_str(), other.as_str()]);
    // Only the first iteration found no current URL; later ones reconnect to the
    // last URL, `other`, and their first step is named by it.
    assert_eq!(name_stats(&summary, &host).count, 1);
    let iterations = name_stats(&summary, "c").count;
    assert!(iterations >= 3, "{iterations}");
    assert!(name_stats(&summary, &other).count.abs_diff(2 * iterations) <= 2);
}

#[test]
fn wrong_expect_refused_connection_and_timeout_are_counted_failures() {
    let server = EchoServer::start();
    let refused = format!("ws://127.0.0.1:{}/", closed_port());
    let mut executor = executor();
    let tasks = json!([
        {"method": "connect", "request_url": server.url("/"), "name": "open"},
        {"method": "sendrecv", "payload": "ping", "expect": "nope", "name": "wrong expect"},
        {"method": "sendrecv", "payload": "hex:DEADBEEF", "name": "binary"},
        {"method": "sendrecv", "payload": "quiet", "timeout": 0.2, "name": "silent"},
        {"method": "sendrecv", "payload": "bye", "name": "server closes"},
        {"method": "connect", "request_url": refused, "name": "refused", "timeout": 1},
        {"method": "send", "payload": "x", "name": "after refused"},
    ]);
    let records = executor.execute_document(&json!([start_test(tasks, 1, 1.0)]), "<ws>");
    ok(&records[0]);
    let summary = summary(&executor);
    for (name, failed) in [
        ("open", false),
        ("wrong expect", true),
        ("binary", false),
        ("silent", true),
        ("server closes", true),
        ("refused", true),
    ] {
        let stats = name_stats(&summary, name);
        assert!(stats.count >= 1, "{name}");
        assert_eq!(stats.failures == stats.count, failed, "{name}: {stats:?}");
    }
    let errors: Vec<String> = summary
        .errors
        .iter()
        .map(|e| format!("{} {}: {}", e.request_type, e.name, e.error))
        .collect();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("WS wrong expect: expected `nope` in the response, got `pong`"),
        "{errors:?}"
    );
    assert!(has("WS silent: timed out after 200ms"), "{errors:?}");
    assert!(
        has("WS server closes: the server closed the connection"),
        "{errors:?}"
    );
    assert!(has("WS refused: connect to `ws://127.0.0.1:"), "{errors:?}");
    // A step after a failed connect reconnects to the last URL and fails clearly.
    assert!(has("WS after refused:"), "{errors:?}");
}

#[test]
fn a_step_before_any_connection_fails_clearly() {
    let mut executor = executor();
    let tasks = json!([{"method": "recv", "name": "lonely recv"}]);
    let records = executor.execute_document(&json!([start_test(tasks, 1, 0.3)]), "<ws>");
    ok(&records[0]);
    let summary = summary(&executor);
    assert!(summary.totals.requests >= 1);
    assert_eq!(summary.totals.failures, summary.totals.requests);
    assert!(
        summary.errors[0]
            .error
            .contains("`recv` on a connection that is not open"),
        "{:?}",
        summary.errors
    );
}

#[test]
fn wss_verifies_the_certificate_unless_told_not_to() {
    let server = EchoServer::start_tls();
    assert!(server.url("/").starts_with("wss://"));
    let mut executor = executor();
    let tasks = |verify: bool| {
        json!([
            {"method": "connect", "request_url": server.url("/"), "name": "open", "verify": verify},
            {"method": "sendrecv", "payload": "ping", "expect": "pong", "name": "echo"},
        ])
    };
    // Self-signed: refused by default, with the reason.
    executor.execute_document(&json!([["LD_clear_records", {}]]), "<ws>");
    let records = executor.execute_document(&json!([start_test(tasks(true), 1, 0.3)]), "<ws>");
    ok(&records[0]);
    let refused = summary(&executor);
    assert_eq!(refused.totals.failures, refused.totals.requests);
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.error.contains("certificate")),
        "{:?}",
        refused.errors
    );
    // `verify: false`: the exchange runs over TLS.
    executor.execute_document(&json!([["LD_clear_records", {}]]), "<ws>");
    let records = executor.execute_document(&json!([start_test(tasks(false), 1, 0.5)]), "<ws>");
    ok(&records[0]);
    let summary = summary(&executor);
    assert_eq!(summary.totals.failures, 0, "{:?}", summary.errors);
    assert!(name_stats(&summary, "echo").count >= 5);
    assert!(server.connections.load(Ordering::Relaxed) >= 2);
}

#[test]
fn unknown_method_and_bad_urls_name_the_field() {
    let mut executor = executor();
    let cases = [
        (
            json!([{"method": "publish", "request_url": "ws://127.0.0.1:1/"}]),
            "field `tasks[0].method`: unsupported websocket method `publish`",
        ),
        (
            json!([{"method": "connect", "request_url": "http://127.0.0.1:1/"}]),
            "field `tasks[0].request_url`: scheme `http` is not supported",
        ),
        (
            json!([{"method": "connect"}]),
            "field `tasks[0].request_url`: missing field",
        ),
        (
            json!([{"method": "send", "payload": "hex:XYZ"}]),
            "field `tasks[0].payload`",
        ),
        (
            json!([{"method": "send", "colour": "red"}]),
            "field `tasks[0].colour`: unknown field",
        ),
    ];
    for (tasks, expected) in cases {
        let records = executor.execute_document(&json!([start_test(tasks, 1, 0.1)]), "<ws>");
        let message = error(&records[0]).to_string();
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn prometheus_and_influxdb_show_request_type_ws() {
    let server = EchoServer::start();
    let mut executor = executor();
    let tasks = json!([
        {"method": "sendrecv", "request_url": server.url("/"), "payload": "ping", "expect": "pong", "name": "echo"},
    ]);
    common::sinks::assert_request_types_in_sinks(
        &mut executor,
        start_test(tasks, 1, 0.5),
        "<ws>",
        &[("WS", "echo")],
    );
}

/// Credentials in a WebSocket URL never show: not in the names the steps are reported
/// under (named by the URL), the summary or the request log's reports.
#[test]
fn url_credentials_are_never_shown() {
    let server = EchoServer::start();
    let work = common::Workdir::new();
    let url = server.url("/x").replacen("://", "://admin:secret@", 1);
    let mut executor = executor();
    let tasks = json!([
        {"method": "sendrecv", "payload": "hello", "expect": "hello"},
        {"method": "sendrecv", "request_url": url, "payload": "again", "expect": "again"},
    ]);
    let mut start = start_test(tasks, 1, 0.3);
    start[1]["host"] = json!(url);
    let report = work.path("ws");
    let records = executor.execute_document(
        &json!([start, ["LD_generate_json_report", {"json_file_name": report}]]),
        "<ws>",
    );
    ok(&records[0]);
    ok(&records[1]);
    let summary = summary(&executor);
    assert_eq!(summary.totals.failures, 0, "{:?}", summary.errors);
    assert!(summary.totals.requests >= 2);
    let shown = serde_json::to_string(&summary).expect("summary");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("admin:***@"), "{shown}");
    let written = std::fs::read_to_string(work.path("ws_success.json")).expect("report");
    assert!(written.contains("admin:***@"), "{written}");
    assert!(!written.contains("secret"), "{written}");
}
