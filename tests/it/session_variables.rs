//! `${session.NAME}`: an extractor with `"scope": "session"` sets it, each user has
//! its own copy (as LoadDensity 0.0.79 forks a resolver per HTTP user), and it is a
//! namespace of its own (`${var.NAME}` does not read it).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{self, Workdir};

/// A keep-alive HTTP/1.1 server on loopback: `/login` answers `{"n": K}` with K
/// counting from 1; every request's target is recorded.
struct CountingServer {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl CountingServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(AtomicU64::new(0));
        let (p, s) = (paths.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (p, s, logins) = (p.clone(), s.clone(), logins.clone());
                        std::thread::spawn(move || serve(stream, &p, &s, &logins));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, paths, stop }
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: std::net::TcpStream,
    paths: &Mutex<Vec<String>>,
    stop: &AtomicBool,
    logins: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    // At most 10,000 requests per connection, and none after the test stops.
    for _ in 0..10_000 {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(_) => continue,
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let body = if target == "/login" {
            format!("{{\"n\": {}}}", logins.fetch_add(1, Ordering::SeqCst) + 1)
        } else {
            "ok".to_string()
        };
        paths.lock().expect("lock").push(target);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn each_user_keeps_its_own_session_variables() {
    let work = Workdir::new();
    for user in ["fast_http_user", "http_user"] {
        let server = CountingServer::start();
        let script = work.write(
            "session.json",
            &serde_json::json!({"load_density": [["LD_start_test", {
            "user_detail_dict": {"user": user},
            "user_count": 3, "spawn_rate": 100, "test_time": 1.0,
            "wait_time": {"constant": 0.02},
            "host": format!("http://127.0.0.1:{}", server.port),
            "tasks": [
                {"method": "get", "request_url": "/login", "name": "login",
                 "skip_if": "${session.n}",
                 "extract": [{"var": "n", "from": "json_path", "path": "n", "scope": "session"}]},
                {"method": "get", "request_url": "/work?u=${session.n}&v=${var.n}", "name": "work"}
            ]}]]})
            .to_string(),
        );
        let (_, summary) = common::run_ok_with_summary(&script, &work);
        let paths = server.paths.lock().expect("lock").clone();
        let logins = paths.iter().filter(|p| *p == "/login").count();
        // Shared, the second and third users would find `n` set and skip the login.
        assert_eq!(logins, 3, "{user}: {paths:?}");
        let users: std::collections::BTreeSet<&str> = paths
            .iter()
            .filter_map(|p| p.strip_prefix("/work?u="))
            .map(|rest| rest.split('&').next().unwrap_or(""))
            .collect();
        assert_eq!(
            users.into_iter().collect::<Vec<_>>(),
            ["1", "2", "3"],
            "{user}: {paths:?}"
        );
        // `${var.n}` is another namespace: it stays as written.
        assert!(
            paths
                .iter()
                .filter(|p| p.starts_with("/work"))
                .all(|p| !p.ends_with("v=1") && !p.ends_with("v=2") && !p.ends_with("v=3")),
            "{user}: {paths:?}"
        );
        assert!(
            summary["per_name"]["work"]["count"].as_u64().unwrap_or(0) >= 3,
            "{summary}"
        );
    }
}
