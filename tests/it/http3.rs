//! `http3_user` against a real HTTP/3 server built on aioquic
//! (`tests/servers/http3_server.py`, with a test CA made by openssl): LoadDensity's
//! documented task list with the server's count of requests, `expect_status`, the
//! echoed body's length, a timeout, an untrusted certificate, nothing listening, and
//! the errors of bad fields.

use crate::common;

use common::python_server::PythonServer;
use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
};
use common::{Workdir, closed_port};
use serde_json::{Value, json};

struct Server {
    server: PythonServer,
    ca: String,
    stats: std::path::PathBuf,
    _dir: Workdir,
}

impl Server {
    fn start() -> Option<Self> {
        let dir = Workdir::new();
        let (ca, cert, key) = common::openssl_certificates(dir.dir.path())?;
        let stats = dir.path("stats.json");
        let server = PythonServer::start(
            "http3_server.py",
            &[
                cert.to_str().expect("utf8"),
                key.to_str().expect("utf8"),
                stats.to_str().expect("utf8"),
            ],
            &["aioquic"],
            "python3 -m pip install aioquic (scripts/test does)",
        )?;
        Some(Self {
            server,
            ca: ca.display().to_string(),
            stats,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.server.port)
    }

    /// Requests the server answered (or held) on `path`.
    fn requests(&self, path: &str) -> u64 {
        let text = std::fs::read_to_string(&self.stats).unwrap_or_else(|_| "{}".into());
        let stats: Value = serde_json::from_str(&text).expect("stats JSON");
        stats["requests"][path].as_u64().unwrap_or(0)
    }
}

fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "http3_user"},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

#[test]
fn loaddensity_documented_task_list_matches_the_server_count() {
    let Some(server) = Server::start() else {
        return;
    };
    let work = Workdir::new();
    // LoadDensity's template docstring, pointed at the local server (its CA given
    // once, in `connection`).
    let mut start = start_test(
        2,
        1.0,
        json!([
            {"method": "get", "request_url": server.url("/ok"), "name": "get"},
            {"method": "post", "request_url": server.url("/echo"), "json": {"k": "v"},
             "expect_status": 201, "timeout": 5, "name": "post"},
            {"method": "get", "request_url": server.url("/nope"), "name": "any status"},
            {"method": "get", "request_url": server.url("/nope"), "expect_status": 200,
             "name": "wrong status"},
        ]),
    );
    start[1]["connection"] = json!({"ca_file": server.ca});
    let summary = run_script(&work, "h3.json", json!([start]));
    let gets = count(&summary, "get");
    assert!(gets >= 10, "too few requests: {summary}");
    for name in ["get", "post", "any status"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(
        failures(&summary, "wrong status"),
        count(&summary, "wrong status")
    );
    assert_eq!(
        errors_of(&summary, "wrong status")[0],
        "http3 status expected 200, got 404"
    );
    assert!(error_request_types(&summary).iter().all(|t| *t == "HTTP/3"));
    // The body's length: `hello`, and the JSON echoed back.
    assert_eq!(bytes(&summary, "get"), 5 * gets);
    assert_eq!(
        bytes(&summary, "post"),
        r#"{"k":"v"}"#.len() as u64 * count(&summary, "post")
    );
    // The server answered as many as the client counted (one per user may have been
    // in flight when the test stopped).
    for (path, names) in [
        ("/ok", &["get"][..]),
        ("/echo", &["post"][..]),
        ("/nope", &["any status", "wrong status"][..]),
    ] {
        let client: u64 = names.iter().map(|n| count(&summary, n)).sum();
        let served = server.requests(path);
        assert!(
            (client..=client + 2).contains(&served),
            "{path}: server {served}, client {client}"
        );
    }
}

#[test]
fn timeout_untrusted_certificate_and_nothing_listening_are_counted_failures() {
    let Some(server) = Server::start() else {
        return;
    };
    let work = Workdir::new();
    let mut start = start_test(
        1,
        1.0,
        json!([
            {"request_url": "/ok", "ca_file": server.ca, "name": "relative to host"},
            {"request_url": "/slow", "ca_file": server.ca, "timeout": 0.2, "name": "slow"},
            {"request_url": "/ok", "name": "untrusted", "timeout": 2},
            {"request_url": "/ok", "verify_mode": 0, "name": "unverified"},
            {"request_url": format!("https://127.0.0.1:{}/", closed_port()), "timeout": 0.3,
             "verify": false, "name": "nothing listening"},
        ]),
    );
    start[1]["host"] = json!(server.url(""));
    let summary = run_script(&work, "h3.json", json!([start]));
    assert!(count(&summary, "relative to host") >= 1, "{summary}");
    assert_eq!(failures(&summary, "relative to host"), 0, "{summary}");
    assert_eq!(failures(&summary, "unverified"), 0, "{summary}");
    for (name, needle) in [
        ("slow", "timed out after 200ms"),
        ("untrusted", "connect to localhost:"),
        ("nothing listening", "timed out after 300ms"),
    ] {
        assert!(count(&summary, name) >= 1, "{name}: {summary}");
        assert_eq!(failures(&summary, name), count(&summary, name), "{name}");
        let errors = errors_of(&summary, name);
        assert!(errors[0].contains(needle), "{name}: {errors:?}");
    }
    assert!(
        errors_of(&summary, "untrusted")[0].contains("UnknownIssuer"),
        "{:?}",
        errors_of(&summary, "untrusted")
    );
    assert_eq!(server.requests("/slow"), count(&summary, "slow"));
}

#[test]
fn bad_fields_are_refused_naming_the_field() {
    let work = Workdir::new();
    let cases = [
        (
            json!([{"method": "get"}]),
            "tasks[0].request_url",
            "missing field",
        ),
        (
            json!([{"request_url": "http://h/"}]),
            "tasks[0].request_url",
            "scheme `http` is not supported",
        ),
        (
            json!([{"method": "fetch", "request_url": "https://h/"}]),
            "tasks[0].method",
            "unsupported http3 method",
        ),
        (
            json!([{"request_url": "https://h/", "expect_status": 99}]),
            "tasks[0].expect_status",
            "from 100 to 599",
        ),
        (
            json!([{"request_url": "https://h/", "verify_mode": "none"}]),
            "tasks[0].verify_mode",
            "CERT_NONE",
        ),
        (
            json!([{"request_url": "https://h/", "ca_file": "/nonexistent.pem"}]),
            "tasks[0].ca_file",
            "cannot read",
        ),
        (
            json!([{"request_url": "https://h/", "data": "x"}]),
            "tasks[0].data",
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
