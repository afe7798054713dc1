//! The control socket server driven by real TCP clients: legacy and framed modes,
//! with and without a token, over TLS, with bad clients and 200 connections at once.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Target, Workdir, bin};
use serde_json::{Value, json};

const TERMINATOR: &[u8] = b"Return_Data_Over_JE\n";
const TIMEOUT: Duration = Duration::from_secs(30);

/// A `loaddensity` child serving the control socket, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(args: &[&str], token_env: Option<&str>) -> Self {
        let mut command = bin();
        command
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env_remove("LOAD_DENSITY_SOCKET_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(token) = token_env {
            command.env("LOAD_DENSITY_SOCKET_TOKEN", token);
        }
        let mut child = command.spawn().expect("spawn serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let addr = started_addr(&mut stdout);
        Self {
            child,
            addr,
            stdout,
        }
    }

    /// Waits (bounded) for the process to exit and returns its success.
    fn wait_exit(mut self) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut rest = String::new();
                let _ = self.stdout.read_to_string(&mut rest);
                assert!(rest.contains("Server shutdown complete"), "{rest}");
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not exit after quit");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `Server started on ADDR (...)` from the child's stdout.
fn started_addr(stdout: &mut impl BufRead) -> SocketAddr {
    let mut line = String::new();
    for _ in 0..50 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read stdout") > 0,
            "no start line"
        );
        if let Some(rest) = line.strip_prefix("Server started on ") {
            let addr = rest.split_whitespace().next().expect("address");
            return addr.parse().expect("socket address");
        }
    }
    panic!("no `Server started on` line");
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// Legacy mode: raw bytes out, everything up to the terminator (or EOF) back.
fn legacy_exchange(stream: &mut (impl Read + Write), payload: &[u8]) -> String {
    stream.write_all(payload).expect("send");
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while !reply.ends_with(TERMINATOR) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(reply).expect("utf8 reply")
}

fn send_frame(stream: &mut impl Write, payload: &[u8]) {
    let length = u32::try_from(payload.len()).expect("fits");
    stream.write_all(&length.to_be_bytes()).expect("header");
    stream.write_all(payload).expect("payload");
}

/// Framed mode: the reply frames up to and including the terminator, or up to EOF.
fn read_frames(stream: &mut impl Read) -> Vec<String> {
    let mut frames = Vec::new();
    for _ in 0..1000 {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).is_err() {
            break;
        }
        let length = u32::from_be_bytes(header) as usize;
        if length > 2 << 20 {
            break; // not a frame (e.g. a TLS alert on a plain connection)
        }
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).expect("frame payload");
        let frame = String::from_utf8(payload).expect("utf8 frame");
        let done = frame.as_bytes() == TERMINATOR;
        frames.push(frame);
        if done {
            break;
        }
    }
    frames
}

fn framed_exchange(stream: &mut (impl Read + Write), payload: &[u8]) -> Vec<String> {
    send_frame(stream, payload);
    read_frames(stream)
}

fn small_test(target: &Target) -> Value {
    json!({"load_density": [
        ["LD_start_test", {"user_count": 2, "spawn_rate": 20, "test_time": 1,
                           "wait_time": {"constant": 0.01},
                           "tasks": [{"method": "get", "request_url": target.url("/json"),
                                      "assertions": [{"type": "status_code", "value": 200}]}]}],
        ["LD_sleep", {"seconds": 0}],
        ["LD_sleep", {"seconds": -1}]
    ]})
}

/// The three reply pieces of `small_test`: the test's result, the sleep's, the error.
fn assert_small_test_reply(pieces: &[String]) {
    assert_eq!(pieces.len(), 4, "{pieces:?}");
    let result: Value = serde_json::from_str(pieces[0].trim_end()).expect("JSON line");
    assert!(
        result["requests"].as_u64().expect("requests") > 0,
        "{result}"
    );
    assert_eq!(result["failures_total"], 0, "{result}");
    assert_eq!(pieces[1], "{\"slept_s\":0.0}\n");
    assert!(
        pieces[2].starts_with("Error: <socket>: action[2] (LD_sleep): field `seconds`"),
        "{}",
        pieces[2]
    );
    assert!(
        pieces
            .iter()
            .all(|p| p.ends_with('\n') && p.matches('\n').count() == 1)
    );
    assert_eq!(pieces[3].as_bytes(), TERMINATOR);
}

#[test]
fn legacy_mode_runs_a_test_and_quits() {
    let target = Target::start();
    let server = Server::start(&[], None);
    let reply = legacy_exchange(
        &mut connect(server.addr),
        small_test(&target).to_string().as_bytes(),
    );
    let pieces: Vec<String> = reply.split_inclusive('\n').map(String::from).collect();
    assert_small_test_reply(&pieces);

    // Malformed JSON: an error line, then the terminator.
    let reply = legacy_exchange(&mut connect(server.addr), b"{\"load_density\": [");
    assert!(reply.starts_with("Error: "), "{reply}");
    assert!(reply.ends_with("Return_Data_Over_JE\n"), "{reply}");
    // A client that sends nothing does not stop the server.
    drop(connect(server.addr));
    let reply = legacy_exchange(&mut connect(server.addr), b"  quit_server\n");
    assert_eq!(reply, "Server shutting down\n");
    assert!(server.wait_exit());
}

#[test]
fn framed_mode_with_token_from_the_environment() {
    let target = Target::start();
    let token = "t0ken-from-env";
    let server = Server::start(&["--framed"], Some(token));
    let addr = server.addr;
    let envelope =
        |command: &Value, token: &str| json!({"token": token, "command": command}).to_string();

    let pieces = framed_exchange(
        &mut connect(addr),
        envelope(&small_test(&target), token).as_bytes(),
    );
    assert_small_test_reply(&pieces);

    let wrong = framed_exchange(
        &mut connect(addr),
        envelope(&json!([["LD_summary"]]), "t0ken").as_bytes(),
    );
    assert_eq!(wrong, ["Error: unauthorised\n"]);
    let bare = framed_exchange(
        &mut connect(addr),
        json!([["LD_summary"]]).to_string().as_bytes(),
    );
    assert_eq!(bare, ["Error: token required\n"]);
    let quit = framed_exchange(&mut connect(addr), b"quit_server");
    assert_eq!(quit, ["Error: token required\n"]);
    let quit = framed_exchange(
        &mut connect(addr),
        json!({"token": "nope", "op": "quit"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(quit, ["Error: unauthorised\n"]);

    // Oversized frame: announced 2 MiB, answered with an error, connection closed.
    let mut stream = connect(addr);
    stream
        .write_all(&(2u32 << 20).to_be_bytes())
        .expect("header");
    let frames = read_frames(&mut stream);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].contains("over the 1048576-byte limit"),
        "{frames:?}"
    );
    // Invalid UTF-8: an error, then the terminator.
    let frames = framed_exchange(&mut connect(addr), b"\xff\xfe{}");
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[0].contains("not valid UTF-8"), "{frames:?}");
    // A truncated frame and a silent client are dropped.
    let mut stream = connect(addr);
    stream.write_all(&[0, 0, 0, 50, b'{']).expect("partial");
    drop(stream);
    drop(connect(addr));

    // 200 clients at once, each answered.
    let command = envelope(&json!([["LD_sleep", {"seconds": 0}]]), token);
    let answered = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let command = command.as_bytes();
                scope.spawn(move || framed_exchange(&mut connect(addr), command))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .filter(|frames| frames == &["{\"slept_s\":0.0}\n", "Return_Data_Over_JE\n"])
            .count()
    });
    assert_eq!(answered, 200);

    let quit = framed_exchange(
        &mut connect(addr),
        json!({"token": token, "op": "quit"}).to_string().as_bytes(),
    );
    assert_eq!(quit, ["Server shutting down\n"]);
    assert!(server.wait_exit());
}

fn write_certificate(
    work: &Workdir,
) -> (rustls::pki_types::CertificateDer<'static>, String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    let cert = work.write("server.crt", &certified.cert.pem());
    let key = work.write("server.key", &certified.signing_key.serialize_pem());
    let text = |p: &Path| p.to_str().expect("utf8").to_string();
    (certified.cert.der().clone(), text(&cert), text(&key))
}

fn tls_connect(
    addr: SocketAddr,
    root: &rustls::pki_types::CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    rustls::StreamOwned::new(connection, connect(addr))
}

#[test]
fn tls_framed_and_legacy() {
    let work = Workdir::new();
    let (root, cert, key) = write_certificate(&work);
    let token = "tls-token";
    let server = Server::start(
        &[
            "--framed",
            "--token",
            token,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        None,
    );
    let command = json!({"token": token, "command": [["LD_sleep", {"seconds": 0}]]}).to_string();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let mut stream = tls_connect(server.addr, &root, versions);
        let frames = framed_exchange(&mut stream, command.as_bytes());
        assert_eq!(frames, ["{\"slept_s\":0.0}\n", "Return_Data_Over_JE\n"]);
    }
    // A plain-TCP client on the TLS port gets nothing and does not stop the server.
    let frames = framed_exchange(&mut connect(server.addr), command.as_bytes());
    assert!(frames.is_empty(), "{frames:?}");
    let mut stream = tls_connect(server.addr, &root, &[&rustls::version::TLS13]);
    let quit = framed_exchange(
        &mut stream,
        json!({"token": token, "op": "quit"}).to_string().as_bytes(),
    );
    assert_eq!(quit, ["Server shutting down\n"]);
    assert!(server.wait_exit());

    // Legacy mode over TLS, no token.
    let server = Server::start(&["--tls-cert", &cert, "--tls-key", &key], None);
    let mut stream = tls_connect(server.addr, &root, &[&rustls::version::TLS13]);
    let reply = legacy_exchange(&mut stream, b"[[\"LD_sleep\", {\"seconds\": 0}]]");
    assert_eq!(reply, "{\"slept_s\":0.0}\nReturn_Data_Over_JE\n");
    let mut stream = tls_connect(server.addr, &root, &[&rustls::version::TLS13]);
    assert_eq!(
        legacy_exchange(&mut stream, b"quit_server"),
        "Server shutting down\n"
    );
    assert!(server.wait_exit());
}

#[test]
fn refuses_non_loopback_without_token_and_bad_tls_files() {
    let output = bin()
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .env_remove("LOAD_DENSITY_SOCKET_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("refusing to serve on 0.0.0.0"), "{err}");
    assert!(err.contains("LOAD_DENSITY_SOCKET_TOKEN"), "{err}");

    let work = Workdir::new();
    let bogus = work.write("bogus.pem", "not a certificate");
    let bogus = bogus.to_str().expect("utf8");
    let output = bin()
        .args([
            "serve",
            "--port",
            "0",
            "--tls-cert",
            bogus,
            "--tls-key",
            bogus,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("TLS:") && err.contains("bogus.pem"), "{err}");
}

#[test]
fn ld_start_socket_server_action_blocks_until_quit() {
    let mut child = bin()
        .args([
            "run-str",
            r#"{"load_density": [["LD_start_socket_server", {"host": "127.0.0.1", "port": 0, "framed": true}], ["LD_sleep", {"seconds": 0}]]}"#,
        ])
        .env_remove("LOAD_DENSITY_SOCKET_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let addr = started_addr(&mut stdout);
    // A document that tries to start a second server is refused.
    let nested = framed_exchange(
        &mut connect(addr),
        br#"[["LD_start_socket_server", {"host": "127.0.0.1", "port": 0}]]"#,
    );
    assert!(nested[0].contains("already running"), "{nested:?}");
    let quit = framed_exchange(&mut connect(addr), br#"{"command": null, "op": "quit"}"#);
    assert_eq!(quit, ["Server shutting down\n"]);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not end after quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The refused nested action ran in this process: it counts as a failed action.
    assert_eq!(status.code(), Some(1));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    assert!(rest.contains("Server shutdown complete"), "{rest}");
}

/// Issue #26: a client of `serve` sent `LD_start_socket_server` on another port and
/// a second server listened (blocking the first). The library refuses every nested
/// start, so `serve` answers with an error and nothing listens on that port.
#[test]
fn serve_refuses_a_document_that_starts_another_server() {
    let server = Server::start(&[], None);
    let port = common::closed_port();
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let nested =
        format!(r#"[["LD_start_socket_server", {{"host": "127.0.0.1", "port": {port}}}]]"#);
    let reply = legacy_exchange(&mut stream, nested.as_bytes());
    assert!(
        reply.starts_with("Error: ") && reply.contains("already running"),
        "{reply}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a second server listens on {port}"
    );
    let quit = legacy_exchange(&mut connect(server.addr), b"quit_server");
    assert_eq!(quit, "Server shutting down\n");
    assert!(server.wait_exit());
}

/// A frame of `length` announced, `start` sent; the reply frames.
fn announce(addr: SocketAddr, length: u32, start: &[u8]) -> Vec<String> {
    let mut stream = connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(&length.to_be_bytes()).expect("header");
    stream.write_all(start).expect("start");
    read_frames(&mut stream)
}

/// Issue #26: every connection announcing 1 MiB got a 1 MiB buffer before its
/// token was checked. With a token, a frame over `PREAUTH_READ` bytes is read on
/// only when its first `PREAUTH_READ` bytes carry the right token.
#[test]
fn a_long_frame_is_read_only_after_its_token() {
    use loaddensity::control::PREAUTH_READ;
    let token = "t0ken-long";
    let server = Server::start(&["--framed"], Some(token));
    let padded = |start: &str| {
        let mut bytes = start.as_bytes().to_vec();
        bytes.resize(PREAUTH_READ, b'x');
        bytes
    };
    // 1 MiB announced, its first 8 KiB sent: no token there, refused unread.
    let frames = announce(
        server.addr,
        1 << 20,
        &padded(r#"{"command": [["LD_sleep", {"seconds": 0}]], "pad": ""#),
    );
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].contains("token required within the first 8192 bytes"),
        "{frames:?}"
    );
    // A wrong token first: unauthorised, unread.
    let frames = announce(
        server.addr,
        1 << 20,
        &padded(r#"{"token": "guess", "pad": ""#),
    );
    assert_eq!(frames, ["Error: unauthorised\n"]);
    // The right token first: the whole frame is read and run.
    let long = json!({"token": token, "command": [["LD_sleep", {"seconds": 0}]],
                      "pad": "x".repeat(200_000)})
    .to_string();
    let frames = framed_exchange(&mut connect(server.addr), long.as_bytes());
    assert_eq!(frames, ["{\"slept_s\":0.0}\n", "Return_Data_Over_JE\n"]);
    let quit = json!({"token": token, "op": "quit"}).to_string();
    let quit = framed_exchange(&mut connect(server.addr), quit.as_bytes());
    assert_eq!(quit, ["Server shutting down\n"]);
    assert!(server.wait_exit());
}

/// Issue #26: 1030 idle connections locked a client with the right token out for
/// 30 s. Connections still reading their request are capped (the oldest closed
/// first) and closed after a few seconds of silence.
#[test]
fn idle_clients_cannot_lock_out_one_with_the_token() {
    let token = "t0ken-idle";
    let server = Server::start(&["--framed"], Some(token));
    let idle: Vec<TcpStream> = (0..1100)
        .map(|_| TcpStream::connect_timeout(&server.addr, TIMEOUT).expect("connect"))
        .collect();
    let opened = Instant::now();
    let command = json!({"token": token, "command": [["LD_sleep", {"seconds": 0}]]}).to_string();
    let frames = framed_exchange(&mut connect(server.addr), command.as_bytes());
    assert_eq!(frames, ["{\"slept_s\":0.0}\n", "Return_Data_Over_JE\n"]);
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "served after {:?}",
        opened.elapsed()
    );
    // The newest idle client (never evicted) is closed within a few seconds.
    let mut newest = idle.last().expect("idle clients");
    newest
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let closed = newest.read(&mut [0u8; 16]);
    assert!(matches!(closed, Ok(0)), "{closed:?}");
    assert!(
        opened.elapsed() < Duration::from_secs(9),
        "closed after {:?}",
        opened.elapsed()
    );
    drop(idle);
    let quit = json!({"token": token, "op": "quit"}).to_string();
    let quit = framed_exchange(&mut connect(server.addr), quit.as_bytes());
    assert_eq!(quit, ["Server shutting down\n"]);
    assert!(server.wait_exit());
}
