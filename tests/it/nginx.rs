//! Against nginx (installed by scripts/test): plain HTTP/1.1 keep-alive, and HTTPS
//! where ALPN negotiates HTTP/2, with and without certificate verification.

use crate::common;

use std::process::Command;

use common::summary::{assert_action_errors, count, errors_of, failures, run_script};
use common::{Workdir, closed_port};
use serde_json::json;

/// nginx on a plain and an HTTPS port (ALPN offers `h2`); every path answers 200
/// `ok $http2` (`ok h2` over HTTP/2), except `/missing` (404) and `/busy` (503).
pub(crate) struct Nginx {
    pub(crate) http_port: u16,
    pub(crate) https_port: u16,
    _server: common::nginx::Nginx,
}

impl Nginx {
    pub(crate) fn start() -> Self {
        let dir = Workdir::new();
        let d = dir.dir.path().display().to_string();
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
                &format!("{d}/key.pem"),
                "-out",
                &format!("{d}/cert.pem"),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl failed");
        let (http_port, https_port) = (closed_port(), closed_port());
        let conf = format!(
            r#"worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl http2;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    location / {{ default_type text/plain; return 200 "ok $http2"; }}
    location /missing {{ return 404; }}
    location /busy {{ return 503; }}
  }}
}}"#
        );
        let server = common::nginx::Nginx::start(dir, &conf, https_port);
        Self {
            http_port,
            https_port,
            _server: server,
        }
    }
}

#[test]
fn http_and_https_h2_against_nginx() {
    let nginx = Nginx::start();
    let work = Workdir::new();
    let http = format!("http://127.0.0.1:{}", nginx.http_port);
    let https = format!("https://localhost:{}", nginx.https_port);
    let summary = run_script(
        &work,
        "t.json",
        json!([["LD_start_test", {
            "user_detail_dict": {"user": "fast_http_user"},
            "user_count": 4, "spawn_rate": 100, "test_time": 2,
            "wait_time": {"constant": 0},
            "tasks": [
                {"method": "get", "url": format!("{http}/"), "name": "plain"},
                {"method": "get", "url": format!("{http}/missing"), "name": "missing"},
                {"method": "get", "url": format!("{https}/"), "name": "h2", "verify": false},
                {"method": "get", "url": format!("{https}/"), "name": "verified"}
            ]
        }]]),
    );
    let per_name = &summary["per_name"];
    assert!(per_name["plain"]["count"].as_u64() > Some(100));
    assert_eq!(per_name["plain"]["failures"], 0);
    assert_eq!(
        per_name["missing"]["failures"],
        per_name["missing"]["count"]
    );
    assert!(per_name["h2"]["count"].as_u64() > Some(10));
    assert_eq!(per_name["h2"]["failures"], 0);
    // A self-signed certificate fails verification.
    assert_eq!(
        per_name["verified"]["failures"],
        per_name["verified"]["count"]
    );
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains("TLS handshake with localhost failed"),
        "{errors}"
    );
}

/// A templated URL is rendered per request into a target of its own; over HTTP/2 that
/// target must still carry the absolute form (`:scheme`, `:authority`).
#[test]
fn templated_https_urls_go_over_http2() {
    let nginx = Nginx::start();
    let work = Workdir::new();
    let https = format!("https://localhost:{}", nginx.https_port);
    let summary = run_script(
        &work,
        "t.json",
        json!([["LD_start_test", {
            "user_detail_dict": {"user": "http_user"},
            "user_count": 2, "spawn_rate": 100, "test_time": 1,
            "wait_time": {"constant": 0},
            "tasks": [{
                "method": "get", "url": format!("{https}/items/${{randint(1, 9)}}"),
                "name": "templated", "verify": false,
                "assertions": [{"type": "contains", "value": "ok h2"}]
            }]
        }]]),
    );
    assert!(count(&summary, "templated") > 10, "{}", summary["per_name"]);
    assert_eq!(
        failures(&summary, "templated"),
        0,
        "{:?}",
        errors_of(&summary, "templated")
    );
}

#[test]
fn https_negotiates_http2() {
    let nginx = Nginx::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tasks = loaddensity::engine::parse_tasks(
        &json!([{"method": "get", "url": format!("https://localhost:{}/", nginx.https_port), "verify": false}]),
        None,
    )
    .expect("task");
    let mut session = loaddensity::http::Session::new(Default::default());
    // nginx answers "ok h2" over HTTP/2 and "ok " over HTTP/1.1.
    let response = runtime
        .block_on(session.execute(tasks.tasks[0].prepared().expect("static")))
        .expect("response");
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(response.body_len, "ok h2".len() as u64);
}

/// LoadDensity's asyncio-engine options on `LD_start_test`: `http2: true` makes
/// `fast_http_user` (HTTP/1.1 only) speak HTTP/2 where ALPN offers it, as
/// LoadDensity's httpx client does; `max_in_flight` at or above the users holds;
/// what cannot be honoured is refused naming the field.
#[test]
fn http2_and_max_in_flight_of_the_asyncio_engine() {
    let nginx = Nginx::start();
    let work = Workdir::new();
    let https = format!("https://localhost:{}/", nginx.https_port);
    let test = |user: &str, extra: serde_json::Value| {
        let mut start = json!({
            "user_detail_dict": {"user": user}, "engine": "asyncio",
            "user_count": 2, "spawn_rate": 100, "test_time": 1,
            "wait_time": {"constant": 0},
            "tasks": [{"method": "get", "url": https, "name": user, "verify": false,
                       "assertions": [{"type": "contains", "value": "ok h2"}]}]
        });
        for (key, value) in extra.as_object().into_iter().flatten() {
            start[key] = value.clone();
        }
        json!(["LD_start_test", start])
    };
    let summary = run_script(
        &work,
        "h2.json",
        json!([
            test("fast_http_user", json!({"http2": true, "max_in_flight": 2})),
            test("http_user", json!({"http2": true, "max_in_flight": 50}))
        ]),
    );
    for user in ["fast_http_user", "http_user"] {
        assert!(count(&summary, user) > 5, "{}", summary["per_name"]);
        assert_eq!(
            failures(&summary, user),
            0,
            "{:?}",
            errors_of(&summary, user)
        );
    }
    // Without `http2`, fast_http_user stays on HTTP/1.1: every `ok h2` check fails.
    let summary = run_script(&work, "h1.json", json!([test("fast_http_user", json!({}))]));
    assert!(count(&summary, "fast_http_user") > 5);
    assert_eq!(
        failures(&summary, "fast_http_user"),
        count(&summary, "fast_http_user")
    );
    assert_action_errors(
        &work,
        vec![
            test("fast_http_user", json!({"max_in_flight": 1})),
            test("http_user", json!({"http2": false})),
            test("socket_user", json!({"http2": true})),
            test("fast_http_user", json!({"max_in_flight": "8"})),
        ],
        &[
            ("max_in_flight", "below the 2 users"),
            ("http2", "use fast_http_user"),
            ("http2", "socket_user does not read it"),
            ("max_in_flight", "expected a positive integer"),
        ],
    );
}
