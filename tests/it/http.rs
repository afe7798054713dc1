//! The request path in-process: what goes on the wire for a task, and listeners
//! attached and detached while a test runs.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use loaddensity::engine::parse_tasks;
use loaddensity::engine::{RunObservers, TestPlan, WaitTime, run_test};
use loaddensity::http::{Session, TlsConnectors};
use loaddensity::{ListenerRegistry, RequestEvent, RequestListener, StatsRecorder};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Accepts one connection, reads one request (head and Content-Length body), answers
/// 201 with a 5-byte body, and returns the raw request text.
async fn capture_one_request(listener: tokio::net::TcpListener) -> String {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.expect("read");
        assert!(n > 0, "client closed early");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if raw.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    socket
        .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .expect("write");
    String::from_utf8(raw).expect("utf8")
}

#[tokio::test]
async fn task_fields_reach_the_wire() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(capture_one_request(listener));
    let tasks = parse_tasks(
        &json!([{
            "method": "patch", "url": "/items/7", "params": {"q": "a b", "n": 2},
            "headers": {"X-Token": "t1"}, "data": {"name": "x&y"}
        }]),
        url::Url::parse(&format!("http://{addr}")).ok().as_ref(),
    )
    .expect("task");
    let mut session = Session::new(Arc::new(TlsConnectors::default()));
    let response = session
        .execute(tasks.tasks[0].prepared().expect("static"))
        .await
        .expect("response");
    assert_eq!(response.status.as_u16(), 201);
    assert_eq!(response.body_len, 5);
    let raw = server.await.expect("server");
    let lower = raw.to_ascii_lowercase();
    assert!(
        raw.starts_with("PATCH /items/7?q=a+b&n=2 HTTP/1.1\r\n"),
        "{raw}"
    );
    assert!(lower.contains(&format!("host: {addr}\r\n")), "{raw}");
    assert!(lower.contains("x-token: t1\r\n"), "{raw}");
    assert!(lower.contains("user-agent: loaddensity/"), "{raw}");
    assert!(
        lower.contains("content-type: application/x-www-form-urlencoded\r\n"),
        "{raw}"
    );
    assert!(raw.ends_with("\r\n\r\nname=x%26y"), "{raw}");
}

struct Counter(AtomicU64);

impl RequestListener for Counter {
    fn on_request(&self, _event: &RequestEvent<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn listeners_attach_and_detach_while_a_test_runs() {
    let target = common::Target::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let registry = Arc::new(ListenerRegistry::default());
    let stats = Arc::new(StatsRecorder::default());
    registry.add(stats.clone());
    let tasks =
        parse_tasks(&json!([{"method": "get", "url": target.url("/")}]), None).expect("task");
    let plan = TestPlan {
        users: 2,
        spawn_rate: 100.0,
        test_time: Some(Duration::from_millis(1500)),
        wait: WaitTime::Constant(Duration::from_millis(2)),
        shape: None,
        arrival: None,
        scenario: Arc::new(tasks),
    };
    let late = Arc::new(Counter(AtomicU64::new(0)));
    let run = runtime.spawn(run_test(
        plan,
        registry.clone(),
        CancellationToken::new(),
        RunObservers::default(),
    ));
    std::thread::sleep(Duration::from_millis(400));
    let id = registry.add(late.clone());
    std::thread::sleep(Duration::from_millis(500));
    assert!(registry.remove(id));
    let seen_at_removal = late.0.load(Ordering::Relaxed);
    let report = runtime.block_on(run).expect("run");
    let (total, failures) = stats.counts();
    assert_eq!(failures, 0);
    assert_eq!(report.users_started, 2);
    assert!(seen_at_removal > 10, "late listener saw {seen_at_removal}");
    // Detached: it saw nothing after removal (at most the events already in flight).
    assert!(late.0.load(Ordering::Relaxed) <= seen_at_removal + 2);
    assert!(
        total > late.0.load(Ordering::Relaxed) * 3 / 2,
        "total {total}, late {}",
        late.0.load(Ordering::Relaxed)
    );
}
