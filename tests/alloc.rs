//! The `fast_http_user` client allocates nothing per request once warmed up: counted
//! with a counting global allocator (this test binary's own), against the built-in
//! target running as a separate process (so that its allocations do not count), on
//! a current-thread runtime (so that no other thread of this process runs).

#[path = "it/common/mod.rs"]
mod common;

use std::alloc::System;
use std::time::Duration;

use loaddensity::engine::parse_tasks;
use loaddensity::http::FastSession;
use loaddensity::http::PreparedRequest;
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// `loaddensity target` on a free port, killed on drop.
struct TargetProcess {
    child: std::process::Child,
    port: u16,
}

impl TargetProcess {
    fn start() -> Self {
        let port = common::closed_port();
        let child = common::bin()
            .args(["target", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("loaddensity target");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Self { child, port }
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prepared(url: &str) -> PreparedRequest {
    let tasks = parse_tasks(&json!([{"method": "get", "url": url}]), None).expect("task");
    tasks.tasks[0].prepared().expect("static").clone()
}

#[test]
fn no_allocation_per_request_in_the_steady_state() {
    let target = TargetProcess::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let serialized = prepared(&format!("http://127.0.0.1:{}/", target.port));
    assert!(
        serialized.wire.is_some(),
        "a static task is serialized once"
    );
    // The same request rendered per send (as a templated one is).
    let mut rendered = serialized.clone();
    rendered.wire = None;
    runtime.block_on(async {
        let mut session = FastSession::new(Default::default());
        for request in [&serialized, &rendered] {
            for _ in 0..20 {
                session.execute(request).await.expect("warm-up");
            }
            let region = Region::new(GLOBAL);
            let mut bytes = 0;
            for _ in 0..500 {
                bytes += session.execute(request).await.expect("response").body_len;
            }
            let change = region.change();
            assert!(bytes > 0);
            assert_eq!(
                (change.allocations, change.reallocations),
                (0, 0),
                "allocations in 500 requests ({} serialized): {change:?}",
                if request.wire.is_some() { "pre" } else { "not" }
            );
        }
    });
}
