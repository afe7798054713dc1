//! Helpers shared by the integration tests: the built binary, a built-in target
//! server on a free loopback port, and temporary scripts.
#![allow(dead_code, unreachable_pub)]

pub mod etcd;
pub mod fuzz;
pub mod mariadb;
pub mod memcached;
pub mod nats;
pub mod nginx;
#[cfg(feature = "opentelemetry")]
pub mod otlp;
pub mod postgres;
pub mod python_server;
pub mod rabbitmq;
pub mod servers;
pub mod sinks;
pub mod stalled;
pub mod summary;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use loaddensity::action::{ActionError, ActionRecord};
use loaddensity::target::TargetServer;
use loaddensity::{Executor, ExecutorOptions};
use serde_json::Value;

/// The `loaddensity` binary under test.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loaddensity"));
    command.env("LOADDENSITY_LOG", "warn");
    command
}

/// Runs the binary with `args` (and optional stdin) and returns its output.
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = bin();
    command.args(args);
    match stdin {
        Some(text) => run_with_stdin(command, text),
        None => command
            .stdin(Stdio::null())
            .output()
            .expect("run loaddensity"),
    }
}

/// Runs `command` with `text` on its stdin and returns its output.
pub fn run_with_stdin(mut command: Command, text: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for the child")
}

/// Runs `loaddensity run FILE --summary-json <tmp>`, asserts it succeeded, and
/// returns its output and the summary.
pub fn run_ok_with_summary(file: &Path, work: &Workdir) -> (Output, Value) {
    let summary = work.path("summary-out.json");
    let output = run(
        &[
            "run",
            file.to_str().expect("utf8 path"),
            "--summary-json",
            summary.to_str().expect("utf8 path"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    (output, read_json(&summary))
}

/// Text of stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Text of stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A built-in target server on a free loopback port, with its own runtime.
pub struct Target {
    runtime: tokio::runtime::Runtime,
    server: Option<TargetServer>,
}

impl Target {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let server = runtime.block_on(TargetServer::start(addr)).expect("target");
        Self {
            runtime,
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.server.as_ref().expect("running").addr()
        )
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// A temporary directory holding scripts and reports.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read_json(&self, name: &str) -> Value {
        read_json(&self.path(name))
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// A port on which nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An in-process executor on one worker thread, its table output discarded.
pub fn executor() -> Executor {
    let mut executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        progress: false,
    })
    .expect("executor");
    executor.set_output(Box::new(std::io::sink()));
    executor
}

/// The value of an action that must have succeeded.
pub fn ok(record: &ActionRecord) -> &Value {
    match &record.result {
        Ok(value) => value,
        Err(failure) => panic!("{} failed: {failure}", record.command),
    }
}

/// The error of an action that must have failed.
pub fn error(record: &ActionRecord) -> &ActionError {
    match &record.result {
        Ok(value) => panic!("{} should have failed, returned {value}", record.command),
        Err(failure) => &failure.error,
    }
}

/// The body of a plain `GET path` to a local HTTP server (HTTP/1.0, read to the end).
pub fn http_get_text(addr: SocketAddr, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

/// A rustls server configuration with a fresh self-signed rcgen certificate for
/// `localhost` and 127.0.0.1, offering `alpn` (clients connect with `verify: false`).
pub fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// The path of the first of `names` found on `PATH` (or in /usr/sbin, where Debian
/// puts some servers).
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/sbin"));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// A program a test needs. Under CI (`CI` set) a missing one fails the test, so that
/// no test passes by checking nothing; elsewhere the test may skip, saying so.
/// `hint` says how to install it. `None`: skip (outside CI only).
pub fn require_program(names: &[&str], hint: &str) -> Option<PathBuf> {
    let found = find_program(names);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{}` is not installed, and CI must run this test: {hint}",
            names.join("` or `")
        );
        eprintln!(
            "SKIPPED: `{}` is not installed: {hint}",
            names.join("` or `")
        );
    }
    found
}

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1, made by
/// `openssl` in `dir`: the paths of the CA's certificate, the server's certificate and
/// the server's key (PEM). `None` (outside CI only) without `openssl`.
pub fn openssl_certificates(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let openssl = require_program(&["openssl"], "apt-get install openssl")?;
    let path = |name: &str| dir.join(name);
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write leaf.ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec[..],
            &["-days", "1", "-subj", "/CN=loaddensity test CA"],
        ]
        .concat(),
        [&["req"][..], &ec[..], &["-subj", "/CN=localhost"]].concat(),
        vec!["x509", "-req", "-days", "1", "-CAcreateserial"],
    ];
    let files = [
        vec![
            "-keyout".to_string(),
            path("ca.key").display().to_string(),
            "-out".into(),
            path("ca.pem").display().to_string(),
        ],
        vec![
            "-keyout".into(),
            path("key.pem").display().to_string(),
            "-out".into(),
            path("leaf.csr").display().to_string(),
        ],
        vec![
            "-in".into(),
            path("leaf.csr").display().to_string(),
            "-CA".into(),
            path("ca.pem").display().to_string(),
            "-CAkey".into(),
            path("ca.key").display().to_string(),
            "-extfile".into(),
            path("leaf.ext").display().to_string(),
            "-out".into(),
            path("cert.pem").display().to_string(),
        ],
    ];
    for (args, files) in steps.iter().zip(&files) {
        let output = Command::new(&openssl)
            .args(args)
            .args(files)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Some((path("ca.pem"), path("cert.pem"), path("key.pem")))
}

/// A one-thread runtime and a listener on a free loopback port: the start of every
/// server the tests run in process.
pub fn loopback_server() -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    (runtime, listener)
}
