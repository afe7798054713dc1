//! `async_http_user` against nginx over TLS with a test CA (`ca_file`): HTTP/2 when
//! LD_start_test says `http2: true`, HTTP/1.1 otherwise, each request counted in
//! nginx's access log with its protocol; `expect_status`, a 404, a refused
//! connection, an untrusted certificate, and the errors of bad fields.

use crate::common;

use common::summary::{
    assert_action_errors, count, error_request_types, errors_of, failures, run_script,
};
use common::{Workdir, closed_port};
use serde_json::{Value, json};

struct Nginx {
    port: u16,
    ca: String,
    server: common::nginx::Nginx,
}

impl Nginx {
    fn start() -> Option<Self> {
        Self::start_with("")
    }

    /// nginx with `directives` added to its `http` block.
    fn start_with(directives: &str) -> Option<Self> {
        common::require_program(&["nginx"], "apt-get install nginx-light")?;
        let dir = Workdir::new();
        let (ca, _, _) = common::openssl_certificates(dir.dir.path())?;
        let d = dir.dir.path().display().to_string();
        let port = closed_port();
        let conf = format!(
            r#"worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format proto '$server_protocol $status $request_method $uri $connection';
  access_log {d}/access.log proto;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  {directives}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    location /ok {{ default_type text/plain; return 200 "hello"; }}
    location /created {{ default_type text/plain; return 201 "made"; }}
    location /missing {{ return 404; }}
  }}
}}"#
        );
        let server = common::nginx::Nginx::start(dir, &conf, port);
        Some(Self {
            port,
            ca: ca.display().to_string(),
            server,
        })
    }

    /// The access log's lines: `protocol status method uri connection`.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.server.dir.path("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "async_http_user"},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

#[test]
fn http2_requests_match_nginx_log_and_expect_status_decides() {
    let Some(nginx) = Nginx::start() else { return };
    let work = Workdir::new();
    let mut start = start_test(
        2,
        1.0,
        json!([
            {"method": "get", "request_url": "/ok", "expect_status": 200, "name": "ok"},
            {"method": "post", "request_url": "/created", "json": {"a": 1},
             "expect_status": 201, "name": "created"},
            {"method": "get", "request_url": "/missing", "name": "missing"},
            {"method": "get", "request_url": "/missing", "expect_status": "404",
             "name": "expected missing"},
            {"method": "get", "request_url": "/ok", "expect_status": 201, "name": "wrong status"},
        ]),
    );
    start[1]["host"] = json!(format!("https://localhost:{}", nginx.port));
    start[1]["http2"] = json!(true);
    start[1]["connection"] = json!({"ca_file": nginx.ca});
    let summary = run_script(&work, "async.json", json!([start]));
    let ok = count(&summary, "ok");
    assert!(ok >= 10, "too few requests: {summary}");
    for name in ["ok", "created", "expected missing"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    for (name, needle) in [("missing", "HTTP 404"), ("wrong status", "201")] {
        assert_eq!(failures(&summary, name), count(&summary, name), "{name}");
        let errors = errors_of(&summary, name);
        assert!(errors[0].contains(needle), "{name}: {errors:?}");
    }
    assert!(error_request_types(&summary).iter().all(|t| *t == "HTTPX"));
    // nginx saw every request over HTTP/2; one per user may have been in flight when
    // the test stopped.
    let log = nginx.log();
    let client: u64 = [
        "ok",
        "created",
        "missing",
        "expected missing",
        "wrong status",
    ]
    .iter()
    .map(|name| count(&summary, name))
    .sum();
    let served = log.len() as u64;
    assert!(
        (client..=client + 2).contains(&served),
        "nginx served {served}, client sent {client}"
    );
    assert!(log.iter().all(|l| l.starts_with("HTTP/2.0 ")), "{log:?}");
    let posts = log.iter().filter(|l| l.contains(" POST /created")).count() as u64;
    assert!(
        (count(&summary, "created")..=count(&summary, "created") + 2).contains(&posts),
        "{posts}"
    );
}

/// nginx ends each HTTP/2 connection after 3 requests (GOAWAY, then close): the user
/// goes on over a new connection every time, each request counted once and none
/// failed, as over the one connection nginx keeps for 1000 requests by default.
#[test]
fn http2_connections_that_nginx_closes_are_reopened_and_every_request_counts() {
    let Some(nginx) = Nginx::start_with("keepalive_requests 3;") else {
        return;
    };
    let work = Workdir::new();
    let mut start = start_test(
        1,
        1.0,
        json!([
            {"method": "get", "request_url": "/ok", "name": "ok"},
            {"method": "post", "request_url": "/created", "data": "x", "name": "created"},
        ]),
    );
    start[1]["host"] = json!(format!("https://localhost:{}", nginx.port));
    start[1]["http2"] = json!(true);
    start[1]["connection"] = json!({"ca_file": nginx.ca});
    start[1]["wait_time"] = json!({"constant": 0.002});
    let summary = run_script(&work, "async.json", json!([start]));
    let sent = count(&summary, "ok") + count(&summary, "created");
    assert!(sent >= 30, "too few requests: {summary}");
    for name in ["ok", "created"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    let log = nginx.log();
    assert!(log.iter().all(|l| l.starts_with("HTTP/2.0 ")), "{log:?}");
    // One request may have been in flight when the test stopped.
    let served = log.len() as u64;
    assert!(
        (sent..=sent + 1).contains(&served),
        "nginx served {served}, client sent {sent}"
    );
    let mut per_connection = std::collections::BTreeMap::<&str, u64>::new();
    for line in &log {
        let connection = line.rsplit(' ').next().expect("a connection number");
        *per_connection.entry(connection).or_default() += 1;
    }
    assert!(
        per_connection.values().all(|&n| n <= 3),
        "{per_connection:?}"
    );
    assert!(
        per_connection.len() as u64 >= served.div_ceil(3),
        "{} connections for {served} requests",
        per_connection.len()
    );
}

/// nginx closes a connection idle for 1 s (HTTP/2: GOAWAY, then close); a user that
/// waits 1.5 s between requests sends each over a new connection, and none fails,
/// over HTTP/2 and over HTTP/1.1 alike.
#[test]
fn connections_nginx_closed_while_the_user_waited_are_reopened() {
    let Some(nginx) = Nginx::start_with("keepalive_timeout 1s;") else {
        return;
    };
    let work = Workdir::new();
    let start = |name: &str, http2: bool| {
        let mut start = start_test(
            1,
            3.3,
            json!([{"method": "get", "request_url": "/ok", "name": name}]),
        );
        start[1]["host"] = json!(format!("https://localhost:{}", nginx.port));
        start[1]["http2"] = json!(http2);
        start[1]["connection"] = json!({"ca_file": nginx.ca});
        start[1]["wait_time"] = json!({"constant": 1.5});
        start
    };
    let summary = run_script(
        &work,
        "async.json",
        json!([start("h2", true), start("h1", false)]),
    );
    for name in ["h2", "h1"] {
        assert!(count(&summary, name) >= 3, "{name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    // Every request on a connection of its own: nginx closed each one while idle.
    let log = nginx.log();
    let connections: std::collections::BTreeSet<&str> = log
        .iter()
        .map(|line| line.rsplit(' ').next().expect("a connection number"))
        .collect();
    assert_eq!(connections.len(), log.len(), "{log:?}");
    assert_eq!(
        log.iter().filter(|l| l.starts_with("HTTP/2.0 ")).count() as u64,
        count(&summary, "h2"),
        "{log:?}"
    );
}

#[test]
fn without_http2_it_is_http1_and_an_untrusted_certificate_or_refusal_fails() {
    let Some(nginx) = Nginx::start() else { return };
    let work = Workdir::new();
    let url = format!("https://localhost:{}/ok", nginx.port);
    let summary = run_script(
        &work,
        "async.json",
        json!([start_test(
            1,
            0.5,
            json!([
                {"method": "get", "url": url, "ca_file": nginx.ca, "follow_redirects": true,
                 "name": "http1"},
                {"method": "get", "url": url, "name": "untrusted"},
                {"method": "get", "url": format!("http://127.0.0.1:{}/", closed_port()),
                 "name": "refused"},
            ])
        )]),
    );
    assert!(count(&summary, "http1") >= 3, "{summary}");
    assert_eq!(failures(&summary, "http1"), 0, "{summary}");
    let log = nginx.log();
    assert!(
        !log.is_empty() && log.iter().all(|l| l.starts_with("HTTP/1.1 200 GET /ok ")),
        "{log:?}"
    );
    let sent = count(&summary, "http1");
    assert!(
        (sent..=sent + 1).contains(&(log.len() as u64)),
        "{sent} vs {log:?}"
    );
    for (name, needle) in [
        ("untrusted", "TLS handshake"),
        ("refused", "connect to 127.0.0.1:"),
    ] {
        assert_eq!(failures(&summary, name), count(&summary, name), "{name}");
        let errors = errors_of(&summary, name);
        assert!(errors[0].contains(needle), "{name}: {errors:?}");
    }
}

#[test]
fn bad_fields_are_refused_naming_the_field() {
    let work = Workdir::new();
    let task = |extra: Value| {
        let mut task = json!({"method": "get", "request_url": "http://127.0.0.1:9/"});
        for (k, v) in extra.as_object().expect("object") {
            task[k] = v.clone();
        }
        json!([task])
    };
    let cases = [
        (
            task(json!({"expect_status": 700})),
            "tasks[0].expect_status",
            "from 100 to 599",
        ),
        (
            task(json!({"ca_file": "/nonexistent.pem"})),
            "tasks[0].ca_file",
            "cannot read",
        ),
        (
            task(json!({"follow_redirects": true, "allow_redirects": false})),
            "tasks[0].follow_redirects",
            "not both",
        ),
        (
            task(json!({"verify_mode": 0})),
            "tasks[0].verify_mode",
            "unknown field",
        ),
        (task(json!({"method": "fetch"})), "tasks[0].method", "fetch"),
    ];
    let mut actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, _, _)| start_test(1, 0.2, tasks.clone()))
        .collect();
    // `http2` belongs to the HTTP user types.
    let mut ws = json!(["LD_start_test", {
        "user_detail_dict": {"user": "websocket_user"}, "http2": true,
        "test_time": 0.2, "tasks": [{"method": "connect", "request_url": "ws://127.0.0.1:9/"}]}]);
    ws[1]["user_count"] = json!(1);
    actions.push(ws);
    let mut expected: Vec<(&str, &str)> = cases.iter().map(|(_, f, n)| (*f, *n)).collect();
    expected.push(("http2", "websocket_user does not read it"));
    assert_action_errors(&work, actions, &expected);
}
