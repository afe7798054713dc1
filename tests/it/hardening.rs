//! Issue #26 (hardening): credentials in URLs. `http://admin:secret@host/x` is sent
//! as basic auth and never shown: not on the terminal, in the summary, a report, the
//! history database or a sink's error.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Workdir, bin, closed_port, stderr, stdout};
use serde_json::json;

/// `admin:secret`, base64.
const ADMIN_SECRET: &str = "Basic YWRtaW46c2VjcmV0";

/// What the server saw: each request's path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A loopback HTTP/1.1 server that answers 200 to a request whose `Authorization`
/// is `admin:secret` or `Bearer mine`, and 401 to any other, recording each.
struct AuthServer {
    addr: SocketAddr,
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuthServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Seen::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let seen = seen.clone();
                            std::thread::spawn(move || serve_connection(stream, &seen));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The `Authorization` headers seen on `path`.
    fn authorizations(&self, path: &str) -> Vec<Option<String>> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, auth)| auth.clone())
            .collect()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keep-alive requests without bodies (GET), each answered at once.
fn serve_connection(stream: TcpStream, seen: &Seen) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    for _ in 0..100_000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut authorization = None;
        for _ in 0..100 {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_string());
            }
        }
        let ok = matches!(authorization.as_deref(), Some(ADMIN_SECRET | "Bearer mine"));
        if let Ok(mut seen) = seen.lock()
            && seen.len() < 100_000
        {
            seen.push((path, authorization));
        }
        let status = if ok { "200 OK" } else { "401 Unauthorized" };
        let response = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every file under `dir` but `except`, with its bytes.
fn files(dir: &Path, except: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_file() && path != except)
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            (path.display().to_string(), bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn url_credentials_are_sent_as_basic_auth_and_never_shown() {
    let server = AuthServer::start();
    let work = Workdir::new();
    let base = format!("http://admin:secret@{}", server.addr);
    let down = format!("http://admin:secret@127.0.0.1:{}/down", closed_port());
    let script = work.write(
        "script.json",
        &json!([
            ["LD_start_test", {
                "user_count": 2, "spawn_rate": 20, "test_time": 1,
                "wait_time": {"constant": 0.05},
                "host": base,
                "tasks": {"mode": "sequence", "tasks": [
                    {"method": "get", "request_url": format!("{base}/url"),
                     "assertions": [{"type": "status_code", "value": 200}]},
                    {"method": "get", "url": "/relative"},
                    {"method": "get", "request_url": format!("{base}/own"),
                     "headers": {"Authorization": "Bearer mine"}},
                    {"method": "get", "request_url": down}
                ]}
            }],
            ["LD_generate_html_report", {"html_name": "r"}],
            ["LD_generate_json_report", {"json_file_name": "r"}],
            ["LD_generate_xml_report", {"xml_file_name": "r"}],
            ["LD_generate_csv_report", {"csv_name": "r"}],
            ["LD_generate_junit_report", {"report_name": "junit"}],
            ["LD_generate_summary_report", {"report_name": "summary"}],
            ["LD_persist_records", {"database_path": "runs.db"}]
        ])
        .to_string(),
    );
    let summary_path = work.path("s.json");
    let output = bin()
        .current_dir(work.path(""))
        .args([
            "run",
            script.to_str().expect("utf8"),
            "--summary-json",
            summary_path.to_str().expect("utf8"),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let (out, err) = (stdout(&output), stderr(&output));

    // The credentials went as basic auth, never displacing the task's own header.
    for path in ["/url", "/relative"] {
        let seen = server.authorizations(path);
        assert!(!seen.is_empty(), "no request to {path}: {err}");
        assert!(
            seen.iter().all(|a| a.as_deref() == Some(ADMIN_SECRET)),
            "{path}: {seen:?}"
        );
    }
    let own = server.authorizations("/own");
    assert!(
        !own.is_empty() && own.iter().all(|a| a.as_deref() == Some("Bearer mine")),
        "{own:?}"
    );
    let summary = common::read_json(&summary_path);
    let url_name = format!("http://admin:***@{}/url", server.addr);
    assert!(summary.to_string().contains(&url_name), "{summary}");
    assert_eq!(
        common::summary::failures(&summary, &url_name),
        0,
        "{summary}"
    );

    // Nowhere a password: terminal, summary, reports, history.
    assert!(!out.contains("secret"), "stdout: {out}");
    assert!(!err.contains("secret"), "stderr: {err}");
    let written = files(&work.path(""), &script);
    for expected in [
        "r.html",
        "r_success.json",
        "r_success.xml",
        "r.csv",
        "junit.xml",
        "summary.json",
        "runs.db",
    ] {
        assert!(
            written.iter().any(|(name, _)| name.ends_with(expected)),
            "no {expected}: {err}"
        );
    }
    for (name, bytes) in &written {
        assert!(!contains(bytes, b"secret"), "`secret` in {name}");
    }
}

/// The InfluxDB and OTLP sinks refuse credentials in their URL; their errors about a
/// URL that does not parse quoted the password.
#[test]
fn sink_url_errors_mask_the_password() {
    let work = Workdir::new();
    let script = work.write(
        "sinks.json",
        &json!([
            ["LD_start_influxdb_sink", {"transport": "http",
                "url": "http://admin:secret@127.0.0.1:99999/write?db=x"}],
            ["LD_start_opentelemetry_exporter", {"endpoint": "http://admin:secret@[::1/"}]
        ])
        .to_string(),
    );
    for command in ["validate", "run"] {
        let output = common::run(&[command, script.to_str().expect("utf8")], None);
        let (out, err) = (stdout(&output), stderr(&output));
        assert!(!output.status.success(), "{command}: {err}");
        assert!(
            err.contains("action[0]") && err.contains("admin:***@127.0.0.1:99999"),
            "{command}: {err}"
        );
        assert!(
            err.contains("action[1]") && err.contains("admin:***@[::1"),
            "{command}: {err}"
        );
        assert!(
            !out.contains("secret") && !err.contains("secret"),
            "{command}: {out}{err}"
        );
    }
}
