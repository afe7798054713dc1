//! `socket_user` against real servers started here: a TCP line server (answers
//! `PONG` to a line containing `PING`, echoes other lines, and keeps the
//! connection open) and a UDP echo server.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loaddensity::Summary;
use serde_json::{Value, json};

use common::{closed_port, error, executor, ok};

/// A TCP line server on a free loopback port; counts its connections.
struct LineServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl LineServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                counter.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut writer = stream.try_clone().expect("clone");
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    // Bounded: the client closes, or 30 s of silence.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        let reply = if line.contains("PING") {
                            "PONG\n".to_string()
                        } else if line.trim() == "quiet" {
                            line.clear();
                            continue;
                        } else {
                            line.clone()
                        };
                        if writer.write_all(reply.as_bytes()).is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
            }
        });
        Self { addr, connections }
    }
}

/// A UDP echo server on a free loopback port.
fn udp_echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..n], from);
        }
    });
    addr
}

fn start_test(tasks: Value, users: u32, seconds: f64) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "socket_user"},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.01},
        "tasks": tasks,
    }])
}

fn name_stats<'a>(summary: &'a Summary, name: &str) -> &'a loaddensity::stats::NameStats {
    summary
        .per_name
        .iter()
        .find(|(key, _)| key.ends_with(name))
        .map(|(_, stats)| stats)
        .unwrap_or_else(|| panic!("no `{name}` in {:?}", summary.per_name.keys()))
}

fn errors(summary: &Summary) -> Vec<String> {
    summary
        .errors
        .iter()
        .map(|e| format!("{} {}: {}", e.request_type, e.name, e.error))
        .collect()
}

#[test]
fn loaddensity_documented_example_runs_without_failures() {
    let tcp = LineServer::start();
    let udp = udp_echo();
    let mut executor = executor();
    // LoadDensity's README example, pointed at the local servers. The line server
    // keeps connections open: reading stops once `PONG` has arrived.
    let tasks = json!([
        {"protocol": "tcp", "target": tcp.addr.to_string(),
         "payload": "PING\n", "expect_bytes": 64,
         "expect_substring": "PONG"},
        {"protocol": "udp", "target": udp.to_string(),
         "payload": "hex:DEADBEEF", "expect_bytes": 4},
    ]);
    let records = executor.execute_document(&json!([start_test(tasks, 2, 1.0)]), "<socket>");
    ok(&records[0]);
    let summary = executor.summary();
    assert!(summary.totals.requests >= 20, "{:?}", summary.totals);
    assert_eq!(summary.totals.failures, 0, "{:?}", errors(&summary));
    let tcp_stats = name_stats(&summary, &format!("tcp:{}", tcp.addr));
    let udp_stats = name_stats(&summary, &format!("udp:{udp}"));
    assert!(tcp_stats.count.abs_diff(udp_stats.count) <= 2);
    // A new connection per step, as in LoadDensity.
    assert!(tcp.connections.load(Ordering::Relaxed) as u64 >= tcp_stats.count);
}

#[test]
fn keep_alive_reuses_one_connection_per_user() {
    let tcp = LineServer::start();
    let mut executor = executor();
    let tasks = json!([
        {"protocol": "tcp", "target": tcp.addr.to_string(), "payload": "hello\n",
         "expect_bytes": 6, "expect_substring": "hello", "keep_alive": true, "name": "kept"},
    ]);
    let records = executor.execute_document(&json!([start_test(tasks, 2, 0.5)]), "<socket>");
    ok(&records[0]);
    let summary = executor.summary();
    let stats = name_stats(&summary, "kept");
    assert!(stats.count >= 10, "{stats:?}");
    assert_eq!(stats.failures, 0, "{:?}", errors(&summary));
    assert_eq!(tcp.connections.load(Ordering::Relaxed), 2);
}

#[test]
fn wrong_expect_refused_connection_and_timeout_are_counted_failures() {
    let tcp = LineServer::start();
    let refused = format!("127.0.0.1:{}", closed_port());
    let silent_udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut executor = executor();
    let tasks = json!([
        {"protocol": "tcp", "target": tcp.addr.to_string(), "payload": "PING\n",
         "expect_bytes": 5, "expect_substring": "NOPE", "name": "wrong expect"},
        {"protocol": "tcp", "target": refused, "payload": "PING\n", "name": "refused"},
        {"protocol": "tcp", "target": tcp.addr.to_string(), "payload": "quiet\n",
         "expect_bytes": 5, "timeout": 0.2, "name": "silent tcp"},
        {"protocol": "udp", "target": silent_udp.local_addr().expect("addr").to_string(),
         "payload": "x", "expect_bytes": 1, "timeout": 0.2, "name": "silent udp"},
        {"protocol": "udp", "target": silent_udp.local_addr().expect("addr").to_string(),
         "payload": "fire and forget", "name": "udp send only"},
    ]);
    let records = executor.execute_document(&json!([start_test(tasks, 1, 1.0)]), "<socket>");
    ok(&records[0]);
    let summary = executor.summary();
    for (name, failed) in [
        ("wrong expect", true),
        ("refused", true),
        ("silent tcp", true),
        ("silent udp", true),
        ("udp send only", false),
    ] {
        let stats = name_stats(&summary, name);
        assert!(stats.count >= 1, "{name}");
        assert_eq!(stats.failures == stats.count, failed, "{name}: {stats:?}");
    }
    let errors = errors(&summary);
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("TCP wrong expect: expected `NOPE` in the response, got `PONG"),
        "{errors:?}"
    );
    assert!(has("TCP refused: connect to 127.0.0.1:"), "{errors:?}");
    assert!(has("TCP silent tcp: timed out after 200ms"), "{errors:?}");
    assert!(has("UDP silent udp: timed out after 200ms"), "{errors:?}");
}

#[test]
fn unknown_protocol_and_bad_fields_name_the_field() {
    let mut executor = executor();
    let cases = [
        (
            json!([{"protocol": "sctp", "target": "127.0.0.1:1"}]),
            "field `tasks[0].protocol`: unsupported protocol `sctp`; expected one of: tcp, udp",
        ),
        (
            json!([{"protocol": "tcp"}]),
            "field `tasks[0].target`: missing field",
        ),
        (
            json!([{"protocol": "tcp", "target": "no-port"}]),
            "field `tasks[0].target`: `no-port` is not \"host:port\"",
        ),
        (
            json!([{"protocol": "tcp", "target": "127.0.0.1:1", "expect_bytes": -1}]),
            "field `tasks[0].expect_bytes`",
        ),
        (
            json!([{"protocol": "udp", "target": "127.0.0.1:1", "keep_alive": true}]),
            "field `tasks[0].keep_alive`: only for `tcp`",
        ),
        (
            json!([{"protocol": "tcp", "target": "127.0.0.1:1", "method": "get"}]),
            "field `tasks[0].method`: unknown field",
        ),
    ];
    for (tasks, expected) in cases {
        let records = executor.execute_document(&json!([start_test(tasks, 1, 0.1)]), "<socket>");
        let message = error(&records[0]).to_string();
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn prometheus_and_influxdb_show_request_types_tcp_and_udp() {
    let tcp = LineServer::start();
    let udp = udp_echo();
    let mut executor = executor();
    let tasks = json!([
        {"protocol": "tcp", "target": tcp.addr.to_string(), "payload": "PING\n",
         "expect_bytes": 5, "name": "tcp ping"},
        {"protocol": "udp", "target": udp.to_string(), "payload": "x", "expect_bytes": 1,
         "name": "udp ping"},
    ]);
    common::sinks::assert_request_types_in_sinks(
        &mut executor,
        start_test(tasks, 1, 0.5),
        "<socket>",
        &[("TCP", "tcp ping"), ("UDP", "udp ping")],
    );
}
