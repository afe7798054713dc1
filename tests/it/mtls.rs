//! `cert` / `client_cert` (mutual TLS) against nginx with `ssl_verify_client on`:
//! certificates made here by openssl (a CA, the server's, a client's signed by the CA
//! and a stranger's self-signed one). nginx serves HTTP (HTTP/2 by ALPN), proxies
//! `wss://` to a WebSocket echo server and `grpc_pass`es gRPC to the test gRPC
//! server, and logs every request with the client certificate's subject.

use crate::common;
use crate::grpc_server::{GrpcServer, proto};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::summary::{assert_action_errors, count, errors_of, failures, run_script};
use common::{Workdir, closed_port};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (installed by scripts/test)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// nginx requiring client certificates signed by the test CA, and what it fronts.
struct MtlsServer {
    port: u16,
    certs: Workdir,
    _ws: tokio::runtime::Runtime,
    grpc: GrpcServer,
    nginx: common::nginx::Nginx,
}

impl MtlsServer {
    fn start() -> Self {
        let certs = Workdir::new();
        let c = certs.dir.path();
        let ext = certs.write("server.ext", "subjectAltName=DNS:localhost\n");
        let ext = ext.to_str().expect("utf8");
        let new_key = |name: &str, subject: &str| {
            openssl(
                c,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    subject,
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
        };
        let sign = |name: &str, extra: &[&str]| {
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &format!("{name}.pem"),
            ]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            openssl(c, &args);
        };
        openssl(
            c,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=loaddensity test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        new_key("server", "/CN=localhost");
        sign("server", &["-extfile", ext]);
        let client_ext = certs.write("client.ext", "extendedKeyUsage=clientAuth\n");
        new_key("client", "/CN=load-client");
        sign("client", &["-extfile", client_ext.to_str().expect("utf8")]);
        // The same key in an X.509 v1 certificate (no extensions), which rustls's
        // certificate parser refuses: it is still offered, and nginx accepts it.
        openssl(
            c,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                "client-v1.pem",
            ],
        );
        // A stranger: self-signed, not from the CA nginx trusts.
        openssl(
            c,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=stranger",
                "-keyout",
                "stranger.key",
                "-out",
                "stranger.pem",
            ],
        );
        // One file holding both, as `requests` takes it.
        let combined = format!(
            "{}{}",
            std::fs::read_to_string(c.join("client.pem")).expect("client.pem"),
            std::fs::read_to_string(c.join("client.key")).expect("client.key")
        );
        certs.write("client-combined.pem", &combined);

        let (ws, ws_port) = websocket_echo();
        let grpc = GrpcServer::start_with(None, false);
        let port = closed_port();
        let dir = Workdir::new();
        let d = dir.dir.path().display().to_string();
        let c = c.display();
        let conf = format!(
            r#"worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format mtls '$ssl_client_s_dn|$uri|$status';
  access_log {d}/access.log mtls;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {c}/server.pem; ssl_certificate_key {c}/server.key;
    ssl_client_certificate {c}/ca.pem; ssl_verify_client on;
    location / {{ default_type text/plain; return 200 "hello $ssl_client_s_dn"; }}
    location /ws {{
      proxy_pass http://127.0.0.1:{ws_port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }}
    location /loadtest.store.Store/ {{ grpc_pass grpc://{grpc}; }}
  }}
}}"#,
            grpc = grpc.target()
        );
        let nginx = common::nginx::Nginx::start(dir, &conf, port);
        Self {
            port,
            certs,
            _ws: ws,
            grpc,
            nginx,
        }
    }

    fn cert(&self, name: &str) -> String {
        self.certs.path(name).display().to_string()
    }

    /// The access log's lines: `subject|uri|status`.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.nginx.dir.path("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// [`Self::logged`], waiting up to 3 s for at least `at_least` (nginx logs a
    /// request when its connection is done with it).
    fn logged_at_least(&self, uri: &str, status: &str, with_client: bool, at_least: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let n = self.logged(uri, status, with_client);
            if n >= at_least || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Requests logged for `uri` with `status`, with or without the client's
    /// certificate.
    fn logged(&self, uri: &str, status: &str, with_client: bool) -> u64 {
        self.log()
            .iter()
            .filter(|l| {
                let parts: Vec<&str> = l.split('|').collect();
                parts.len() == 3
                    && parts[1].starts_with(uri)
                    && parts[2] == status
                    && parts[0].contains("CN=load-client") == with_client
            })
            .count() as u64
    }
}

/// A WebSocket echo server on a free port, on its own runtime.
fn websocket_echo() -> (tokio::runtime::Runtime, u16) {
    let (runtime, listener) = common::loopback_server();
    let port = listener.local_addr().expect("addr").port();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let reply = match message {
                        Message::Text(text) => Message::Text(text),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (runtime, port)
}

fn start_test(user: &str, host: Option<&str>, seconds: f64, tasks: Value) -> Value {
    let mut args = json!({
        "user_detail_dict": {"user": user},
        "user_count": 2, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.01},
        "tasks": tasks,
    });
    if let Some(host) = host {
        args["host"] = json!(host);
    }
    json!(["LD_start_test", args])
}

#[test]
fn http_users_present_the_client_certificate() {
    if common::require_program(&["openssl"], "apt-get install openssl").is_none() {
        return;
    }
    let server = MtlsServer::start();
    let work = Workdir::new();
    let url = format!("https://localhost:{}", server.port);
    let pair = json!([server.cert("client.pem"), server.cert("client.key")]);
    let v1 = json!([server.cert("client-v1.pem"), server.cert("client.key")]);
    let combined = server.cert("client-combined.pem");
    let stranger = json!([server.cert("stranger.pem"), server.cert("stranger.key")]);
    let task = |name: &str, cert_field: &str, cert: Value| {
        let mut task = json!({
            "method": "get", "url": format!("{url}/{name}"), "name": name, "verify": false,
            "assertions": [{"type": "contains", "value": "hello CN=load-client"}]
        });
        if !cert.is_null() {
            task[cert_field] = cert;
        }
        task
    };
    let mut actions = Vec::new();
    for user in ["http_user", "fast_http_user"] {
        actions.push(start_test(
            user,
            None,
            0.8,
            json!([
                task(&format!("{user}-pair"), "cert", pair.clone()),
                task(&format!("{user}-combined"), "client_cert", json!(combined)),
                task(&format!("{user}-v1"), "cert", v1.clone()),
                task(&format!("{user}-none"), "cert", Value::Null),
                task(&format!("{user}-stranger"), "cert", stranger.clone()),
            ]),
        ));
    }
    let summary = run_script(&work, "mtls.json", Value::Array(actions));
    for user in ["http_user", "fast_http_user"] {
        for good in ["pair", "combined", "v1"] {
            let name = format!("{user}-{good}");
            let n = count(&summary, &name);
            assert!(n > 5, "{name}: {}", summary["per_name"]);
            assert_eq!(
                failures(&summary, &name),
                0,
                "{:?}",
                errors_of(&summary, &name)
            );
            // nginx saw each request, with the client's certificate.
            assert_eq!(
                server.logged_at_least(&format!("/{name}"), "200", true, n),
                n,
                "{name}"
            );
        }
        // Without a certificate, or with one the server does not trust: refused.
        for bad in ["none", "stranger"] {
            let name = format!("{user}-{bad}");
            let n = count(&summary, &name);
            assert!(n > 5, "{name}: {}", summary["per_name"]);
            assert_eq!(failures(&summary, &name), n, "{name}");
            assert_eq!(
                server.logged_at_least(&format!("/{name}"), "400", false, n),
                n,
                "{name}"
            );
        }
    }
    // A key that is not the certificate's: refused at start, naming the field.
    let mismatched = json!([server.cert("client.pem"), server.cert("stranger.key")]);
    let stderr = assert_action_errors(
        &work,
        vec![start_test(
            "http_user",
            None,
            1.0,
            json!([task("x", "cert", mismatched)]),
        )],
        &[("tasks[0].cert", "the key is not the certificate's key")],
    );
    let key = std::fs::read_to_string(server.certs.path("stranger.key")).expect("key");
    let body_line = key.lines().nth(1).expect("a base64 line");
    assert!(!stderr.contains(body_line), "{stderr}");
}

#[test]
fn wss_and_grpc_present_the_client_certificate() {
    if common::require_program(&["openssl"], "apt-get install openssl").is_none() {
        return;
    }
    let server = MtlsServer::start();
    let work = Workdir::new();
    let wss = format!("wss://localhost:{}/ws", server.port);
    let pair = json!([server.cert("client.pem"), server.cert("client.key")]);
    let ws_steps = |prefix: &str, cert: Option<&Value>| {
        let mut connect = json!({"method": "connect", "url": wss, "name": format!("{prefix}-connect"), "verify": false});
        if let Some(cert) = cert {
            connect["cert"] = cert.clone();
        }
        json!([
            connect,
            {"method": "sendrecv", "payload": "hi", "expect": "hi", "name": format!("{prefix}-echo")},
            {"method": "close", "name": format!("{prefix}-close")}
        ])
    };
    let grpc_target = format!("https://localhost:{}", server.port);
    let get = |name: &str, cert: Option<&Value>| {
        let mut task = json!({"proto": proto(), "method": "loadtest.store.Store/Get", "name": name,
               "payload": {"key": "fixed"}, "verify": false});
        if let Some(cert) = cert {
            task["client_cert"] = cert.clone();
        }
        task
    };
    let summary = run_script(
        &work,
        "mtls.json",
        json!([
            start_test("websocket_user", None, 0.8, ws_steps("ws", Some(&pair))),
            start_test("websocket_user", None, 0.5, ws_steps("ws-none", None)),
            start_test(
                "grpc_user",
                Some(&grpc_target),
                0.8,
                json!([get("grpc", Some(&pair))])
            ),
            start_test(
                "grpc_user",
                Some(&grpc_target),
                0.5,
                json!([get("grpc-none", None)])
            ),
        ]),
    );
    let connects = count(&summary, "ws-connect");
    assert!(connects > 2, "{}", summary["per_name"]);
    assert_eq!(
        failures(&summary, "ws-connect"),
        0,
        "{:?}",
        errors_of(&summary, "ws-connect")
    );
    // (Each user's last iteration may be cut short by the stop.)
    assert!(count(&summary, "ws-echo").abs_diff(connects) <= 2);
    assert_eq!(
        failures(&summary, "ws-echo"),
        0,
        "{:?}",
        errors_of(&summary, "ws-echo")
    );
    // The upgrade went through nginx with the client's certificate.
    let upgraded = server.logged_at_least("/ws", "101", true, connects);
    assert!(
        upgraded <= connects && upgraded + 2 >= connects,
        "{upgraded} of {connects}"
    );
    let refused = count(&summary, "ws-none-connect");
    assert!(refused > 0);
    assert_eq!(failures(&summary, "ws-none-connect"), refused);
    // Refused with 400, never upgraded (the echo steps tried to connect too).
    assert!(server.logged_at_least("/ws", "400", false, refused) >= refused);
    assert_eq!(server.logged("/ws", "101", false), 0);

    let calls = count(&summary, "grpc");
    assert!(calls > 5, "{}", summary["per_name"]);
    assert_eq!(
        failures(&summary, "grpc"),
        0,
        "{:?}",
        errors_of(&summary, "grpc")
    );
    assert_eq!(server.grpc.count(|s| &s.gets), calls);
    assert_eq!(
        server.logged_at_least("/loadtest.store.Store/Get", "200", true, calls),
        calls
    );
    let refused = count(&summary, "grpc-none");
    assert!(refused > 0);
    assert_eq!(failures(&summary, "grpc-none"), refused);
}

#[test]
fn bad_certificates_are_clear_errors_without_the_key() {
    let work = Workdir::new();
    let secret =
        "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";
    let key = work.write("key.pem", secret);
    let not_pem = work.write("cert.pem", "not a certificate\n");
    let key = key.display().to_string();
    let cert = not_pem.display().to_string();
    let task = |field: &str, value: Value| {
        let mut task = json!({"method": "get", "url": "https://localhost:1/"});
        task[field] = value;
        start_test("http_user", None, 1.0, json!([task]))
    };
    let stderr = assert_action_errors(
        &work,
        vec![
            task("cert", json!(["/nonexistent/cert.pem", key])),
            task("client_cert", json!([cert, key])),
            task("cert", json!(42)),
            task("cert", json!(["only-one"])),
        ],
        &[
            (
                "tasks[0].cert",
                "cannot read the certificate /nonexistent/cert.pem",
            ),
            ("tasks[0].client_cert", "no PEM certificate"),
            ("tasks[0].cert", "expected a PEM file path"),
            ("tasks[0].cert", "[certificate path, key path]"),
        ],
    );
    assert!(!stderr.contains("TOP-SECRET"), "{stderr}");
}
