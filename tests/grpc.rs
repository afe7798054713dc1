//! `grpc_user` against a real gRPC server built here: tonic's HTTP/2 server with
//! a hand-routed service whose messages are `DynamicMessage`s of
//! tests/data/grpc/store.proto (compiled with protox, as the tool does; no
//! protoc, no generated code). The server counts its calls, so the summary's
//! counts are checked against it; plus non-OK statuses, timeouts, refused
//! connections, placeholders, metadata and the errors of bad fields.

mod common;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{Workdir, closed_port, run, run_ok_with_summary, stderr};
use loaddensity::protocol::grpc::DynamicCodec;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as Field};
use serde_json::{Value, json};
use tonic::server::{NamedService, ServerStreamingService, StreamingService, UnaryService};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

const SERVICE: &str = "loadtest.store.Store";

fn proto_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpc/store.proto")
}

fn data_dir() -> String {
    format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"))
}

fn proto() -> String {
    proto_path().to_str().expect("utf8").to_string()
}

fn pool() -> DescriptorPool {
    compile(proto_path())
}

fn compile(path: PathBuf) -> DescriptorPool {
    let dir = path.parent().expect("dir").to_path_buf();
    let mut compiler = protox::Compiler::new([dir]).expect("compiler");
    compiler.include_imports(true);
    compiler.open_file(&path).expect("store.proto compiles");
    compiler.descriptor_pool()
}

fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(&format!("loadtest.store.{name}"))
        .expect("message type")
}

/// What the server saw.
#[derive(Default)]
struct State {
    gets: AtomicU64,
    puts: AtomicU64,
    denied: AtomicU64,
    slows: AtomicU64,
    lists: AtomicU64,
    store: Mutex<HashMap<String, String>>,
}

/// The routed service (one per connection, cloned).
#[derive(Clone)]
struct Store {
    state: Arc<State>,
    pool: DescriptorPool,
}

impl NamedService for Store {
    const NAME: &'static str = SERVICE;
}

fn entry(pool: &DescriptorPool, key: &str, value: &str) -> Bytes {
    let mut reply = DynamicMessage::new(message(pool, "Entry"));
    reply.set_field_by_name("key", Field::String(key.to_string()));
    reply.set_field_by_name("value", Field::String(value.to_string()));
    Bytes::from(reply.encode_to_vec())
}

fn text_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The unary methods: Get, Put, Slow.
struct Unary {
    store: Store,
    method: String,
}

impl UnaryService<DynamicMessage> for Unary {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let store = self.store.clone();
        let method = self.method.clone();
        Box::pin(async move {
            let state = &store.state;
            let token_ok = request
                .metadata()
                .get("x-token")
                .and_then(|v| v.to_str().ok())
                == Some("secret");
            let body = request.into_inner();
            let key = text_field(&body, "key");
            match method.as_str() {
                "Get" => {
                    state.gets.fetch_add(1, Ordering::SeqCst);
                    let value = state.store.lock().expect("lock").get(&key).cloned();
                    match value {
                        Some(value) => Ok(Response::new(entry(&store.pool, &key, &value))),
                        None => Err(Status::not_found("no such key")),
                    }
                }
                "Put" => {
                    if !token_ok {
                        state.denied.fetch_add(1, Ordering::SeqCst);
                        return Err(Status::unauthenticated("missing or bad x-token"));
                    }
                    let value = text_field(&body, "value");
                    let tags = body
                        .get_field_by_name("tags")
                        .map(|t| t.as_message().is_some())
                        .unwrap_or(false);
                    let version = body
                        .get_field_by_name("version")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0);
                    if !tags || version != 7 {
                        return Err(Status::invalid_argument("tags and version 7 expected"));
                    }
                    state.puts.fetch_add(1, Ordering::SeqCst);
                    state.store.lock().expect("lock").insert(key, value);
                    let mut reply = DynamicMessage::new(message(&store.pool, "PutReply"));
                    reply.set_field_by_name("stored", Field::I64(1));
                    Ok(Response::new(Bytes::from(reply.encode_to_vec())))
                }
                "Slow" => {
                    state.slows.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(Response::new(entry(&store.pool, &key, "late")))
                }
                other => Err(Status::unimplemented(format!("no method {other}"))),
            }
        })
    }
}

/// The server-streaming method: List sends `count` entries.
struct List {
    store: Store,
}

type EntryStream = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Status>>>;

impl ServerStreamingService<DynamicMessage> for List {
    type Response = Bytes;
    type ResponseStream = EntryStream;
    type Future = BoxFuture<Result<Response<EntryStream>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let store = self.store.clone();
        Box::pin(async move {
            store.state.lists.fetch_add(1, Ordering::SeqCst);
            let count = request
                .get_ref()
                .get_field_by_name("count")
                .and_then(|v| v.as_u32())
                .unwrap_or(0)
                .min(100);
            let items: Vec<Result<Bytes, Status>> = (0..count)
                .map(|i| Ok(entry(&store.pool, &format!("k{i}"), "listed")))
                .collect();
            Ok(Response::new(futures_util::stream::iter(items)))
        })
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Store {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let store = self.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let method = path
                .strip_prefix(&format!("/{SERVICE}/"))
                .unwrap_or("")
                .to_string();
            let input = match method.as_str() {
                "Get" | "Slow" => "GetRequest",
                "Put" => "Entry",
                "List" => "ListRequest",
                _ => return Ok(Status::unimplemented(format!("no method {path}")).into_http()),
            };
            let codec = DynamicCodec::new(message(&store.pool, input));
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(if method == "List" {
                grpc.server_streaming(List { store }, request).await
            } else {
                grpc.unary(Unary { store, method }, request).await
            })
        })
    }
}

/// Server reflection (grpc.reflection.v1): a symbol's own file, or a file by
/// name (so that imports take a second round).
#[derive(Clone)]
struct Reflection {
    store: DescriptorPool,
    protocol: DescriptorPool,
}

impl NamedService for Reflection {
    const NAME: &'static str = "grpc.reflection.v1.ServerReflection";
}

impl Reflection {
    fn message(&self, name: &str) -> MessageDescriptor {
        self.protocol
            .get_message_by_name(&format!("grpc.reflection.v1.{name}"))
            .expect("reflection message")
    }

    fn answer(&self, request: &DynamicMessage) -> Bytes {
        let symbol = text_field(request, "file_containing_symbol");
        let file_name = text_field(request, "file_by_filename");
        let file = if symbol.is_empty() {
            self.store.get_file_by_name(&file_name)
        } else {
            self.store
                .get_service_by_name(&symbol)
                .map(|s| s.parent_file())
        };
        let mut reply = DynamicMessage::new(self.message("ServerReflectionResponse"));
        match file {
            Some(file) => {
                let mut files = DynamicMessage::new(self.message("FileDescriptorResponse"));
                let encoded = Bytes::from(file.file_descriptor_proto().encode_to_vec());
                files.set_field_by_name(
                    "file_descriptor_proto",
                    Field::List(vec![Field::Bytes(encoded)]),
                );
                reply.set_field_by_name("file_descriptor_response", Field::Message(files));
            }
            None => {
                let mut error = DynamicMessage::new(self.message("ErrorResponse"));
                error.set_field_by_name("error_code", Field::I32(5));
                error.set_field_by_name("error_message", Field::String("symbol not found".into()));
                reply.set_field_by_name("error_response", Field::Message(error));
            }
        }
        Bytes::from(reply.encode_to_vec())
    }
}

impl StreamingService<DynamicMessage> for Reflection {
    type Response = Bytes;
    type ResponseStream = EntryStream;
    type Future = BoxFuture<Result<Response<EntryStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<DynamicMessage>>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut requests = request.into_inner();
            let mut replies = Vec::new();
            while let Some(request) = requests.message().await? {
                replies.push(Ok(this.answer(&request)));
            }
            Ok(Response::new(futures_util::stream::iter(replies)))
        })
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Reflection {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let codec = DynamicCodec::new(this.message("ServerReflectionRequest"));
            Ok(tonic::server::Grpc::new(codec)
                .streaming(this, request)
                .await)
        })
    }
}

/// The test server on a free loopback port, with its own runtime.
struct GrpcServer {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    state: Arc<State>,
    pool: DescriptorPool,
}

impl GrpcServer {
    fn start() -> Self {
        Self::start_with(None, true)
    }

    /// With TLS when given `(certificate PEM, key PEM)`; with server reflection
    /// when `reflection`.
    fn start_with(tls: Option<(String, String)>, reflection: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State::default());
        state
            .store
            .lock()
            .expect("lock")
            .insert("fixed".to_string(), "v1".to_string());
        let pool = pool();
        let store = Store {
            state: state.clone(),
            pool: pool.clone(),
        };
        let mut builder = Server::builder();
        if let Some((cert, key)) = tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let identity = tonic::transport::Identity::from_pem(cert, key);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .expect("server TLS");
        }
        let reflection = reflection.then(|| Reflection {
            store: pool.clone(),
            protocol: compile(proto_path().with_file_name("reflection.proto")),
        });
        runtime.spawn(async move {
            let incoming = TcpIncoming::from(listener);
            let _ = builder
                .add_service(store)
                .add_optional_service(reflection)
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            runtime: Some(runtime),
            port,
            state,
            pool,
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn count(&self, counter: fn(&State) -> &AtomicU64) -> u64 {
        counter(&self.state).load(Ordering::SeqCst)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn script(actions: Value) -> String {
    json!({ "load_density": actions }).to_string()
}

fn start_test(host: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "grpc_user"},
        "host": host,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.002}, "tasks": tasks
    }])
}

fn count(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["count"].as_u64().unwrap_or(0)
}

fn failures(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["failures"].as_u64().unwrap_or(0)
}

fn bytes(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["response_bytes"]
        .as_u64()
        .unwrap_or(0)
}

fn errors_of(summary: &Value, name: &str) -> Vec<String> {
    summary["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|e| e["name"] == name)
                .filter_map(|e| e["error"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn run_script(work: &Workdir, actions: Value) -> Value {
    let file = work.write("grpc.json", &script(actions));
    run_ok_with_summary(&file, work).1
}

#[test]
fn call_counts_match_the_server_and_placeholders_render() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let mut start = start_test(
        &server.target(),
        4,
        1.5,
        json!([
            {"proto": proto(), "method": "loadtest.store.Store/Put", "name": "put",
             "payload": {"key": "user-${uuid()}", "value": "${var.colour}", "version": "7",
                         "tags": {"labels": ["a", "${var.colour}"], "notes": {"n": "x"}}},
             "metadata": [["x-token", "secret"], ["x-user", "${var.colour}"]]},
            {"proto": proto(), "method": "loadtest.store.Store/Get",
             "payload": {"key": "fixed"}, "metadata": {"x-token": "unused"}},
            {"proto": proto(), "method": "loadtest.store.Store/List", "name": "list",
             "target": format!("http://{}", server.target()), "payload": {"count": 3},
             // store.proto is found there as grpc/store.proto; its import
             // types.proto in the proto's own directory.
             "includes": [data_dir()]},
        ]),
    );
    start[1]["variables"] = json!({"colour": "blue"});
    let summary = run_script(&work, json!([start]));
    let get_name = "loadtest.store.Store/Get";
    for name in ["put", get_name, "list"] {
        assert!(count(&summary, name) > 10, "too few {name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(count(&summary, "put"), server.count(|s| &s.puts));
    assert_eq!(count(&summary, get_name), server.count(|s| &s.gets));
    assert_eq!(count(&summary, "list"), server.count(|s| &s.lists));
    // A fresh key per put (uuid), each holding the variable's value.
    let store = server.state.store.lock().expect("lock").clone();
    let put_keys: HashSet<&String> = store.keys().filter(|k| k.starts_with("user-")).collect();
    assert_eq!(put_keys.len() as u64, count(&summary, "put"));
    assert!(
        store
            .iter()
            .filter(|(k, _)| k.starts_with("user-"))
            .all(|(_, v)| v == "blue"),
        "values: {store:?}"
    );
    // Response length = encoded reply size (3 entries per List).
    let get_reply = entry(&server.pool, "fixed", "v1").len() as u64;
    assert_eq!(
        bytes(&summary, get_name),
        get_reply * count(&summary, get_name)
    );
    let listed: u64 = (0..3)
        .map(|i| entry(&server.pool, &format!("k{i}"), "listed").len() as u64)
        .sum();
    assert_eq!(bytes(&summary, "list"), listed * count(&summary, "list"));
}

#[test]
fn statuses_timeouts_and_refused_connections_are_failures() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let refused = format!("127.0.0.1:{}", closed_port());
    let summary = run_script(
        &work,
        json!([
            start_test(
                &server.target(),
                2,
                1.2,
                json!([
                    {"proto": proto(), "method": "loadtest.store.Store/Get", "name": "missing",
                     "payload": {"key": "nope"}},
                    {"proto": proto(), "method": "loadtest.store.Store/Put", "name": "no token",
                     "payload": {"key": "k", "value": "v", "version": 7, "tags": {}}},
                    {"proto": proto(), "method": "loadtest.store.Store/Slow", "name": "slow",
                     "payload": {"key": "k"}, "timeout": 0.2},
                    {"proto": proto(), "method": "loadtest.store.Store/Get", "name": "after",
                     "payload": {"key": "fixed"}},
                ])
            ),
            start_test(
                &refused,
                1,
                0.5,
                json!([{"proto": proto(), "method": "loadtest.store.Store/Get", "name": "refused"}])
            ),
        ]),
    );
    let missing = count(&summary, "missing");
    assert!(missing > 0, "{summary}");
    assert_eq!(failures(&summary, "missing"), missing);
    assert!(
        errors_of(&summary, "missing")
            .iter()
            .any(|e| e == "status NOT_FOUND: no such key"),
        "{:?}",
        errors_of(&summary, "missing")
    );
    assert_eq!(
        server.count(|s| &s.gets),
        missing + count(&summary, "after")
    );
    let denied = count(&summary, "no token");
    assert_eq!(failures(&summary, "no token"), denied);
    assert_eq!(server.count(|s| &s.denied), denied);
    assert!(
        errors_of(&summary, "no token")
            .iter()
            .any(|e| e == "status UNAUTHENTICATED: missing or bad x-token"),
        "{:?}",
        errors_of(&summary, "no token")
    );
    let slow = count(&summary, "slow");
    assert!(slow > 0, "{summary}");
    assert_eq!(failures(&summary, "slow"), slow);
    assert_eq!(server.count(|s| &s.slows), slow);
    assert!(
        errors_of(&summary, "slow")
            .iter()
            .any(|e| e.contains("loadtest.store.Store/Slow timed out after 200ms")),
        "{:?}",
        errors_of(&summary, "slow")
    );
    // After a timeout the user's channel still works.
    assert!(count(&summary, "after") > 0, "{summary}");
    assert_eq!(
        failures(&summary, "after"),
        0,
        "{:?}",
        errors_of(&summary, "after")
    );
    let refused_count = count(&summary, "refused");
    assert!(refused_count > 0, "{summary}");
    assert_eq!(failures(&summary, "refused"), refused_count);
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.starts_with(&format!("connect {refused}")) && e.contains("refused")),
        "{:?}",
        errors_of(&summary, "refused")
    );
    let types: Vec<&str> = summary["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["request_type"].as_str())
        .collect();
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == "GRPC"),
        "{types:?}"
    );
}

#[test]
fn bad_fields_are_clear_errors() {
    let work = Workdir::new();
    let host = format!("127.0.0.1:{}", closed_port());
    let get = "loadtest.store.Store/Get";
    let cases = [
        (
            json!([{"proto": proto(), "method": get, "payload": {"kye": "x"}}]),
            "tasks[0].payload",
            "unknown field `kye` in message type `loadtest.store.GetRequest`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Put",
                    "payload": {"tags": {"colour": "red"}}}]),
            "tasks[0].payload",
            "tags: unknown field `colour` in message type `loadtest.types.Tags`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Put",
                    "payload": {"version": "many"}}]),
            "tasks[0].payload",
            "not a valid `loadtest.store.Entry`",
        ),
        (
            json!([{"stub_path": "pkg.greeter_pb2_grpc.GreeterStub",
                    "request_path": "pkg.greeter_pb2.HelloRequest", "method": "SayHello"}]),
            "tasks[0].stub_path",
            "give `proto`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Nope/Get"}]),
            "tasks[0].method",
            "service `loadtest.store.Nope` is not defined",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Delete"}]),
            "tasks[0].method",
            "method `Delete` is not in service `loadtest.store.Store`",
        ),
        (
            json!([{"proto": proto(), "method": "Get"}]),
            "tasks[0].method",
            "`package.Service/Method`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Upload"}]),
            "tasks[0].method",
            "client-streaming",
        ),
        (
            json!([{"proto": "/nonexistent/store.proto", "method": get}]),
            "tasks[0].proto",
            "no such file",
        ),
        (
            json!([{"reflection": true, "proto": proto(), "method": get}]),
            "tasks[0].reflection",
            "not both",
        ),
        (
            json!([{"proto": proto(), "method": get, "metadata": "x-token: secret"}]),
            "tasks[0].metadata",
            "list of [key, value] pairs",
        ),
        (
            json!([{"proto": proto(), "method": get, "target": "ftp://h:1"}]),
            "tasks[0].target",
            "expected `host:port`",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, _, _)| start_test(&host, 1, 0.2, tasks.clone()))
        .collect();
    let file = work.write("bad.json", &script(Value::Array(actions)));
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    for (i, (_, field, needle)) in cases.iter().enumerate() {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("action[{i}]")))
            .unwrap_or_else(|| panic!("no error for action[{i}] in:\n{text}"));
        assert!(line.contains(field), "{line}");
        assert!(line.contains(needle), "{line}");
    }
}

#[test]
fn tls_targets_verify_the_certificate_unless_told_not_to() {
    let work = Workdir::new();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    let cert = certified.cert.pem();
    let server = GrpcServer::start_with(
        Some((cert.clone(), certified.signing_key.serialize_pem())),
        false,
    );
    let target = format!("https://{}", server.target());
    let get = |name: &str, verify: bool| {
        json!({"proto": proto(), "method": "loadtest.store.Store/Get", "name": name,
               "payload": {"key": "fixed"}, "verify": verify})
    };
    let actions = json!([
        start_test(&target, 2, 0.6, json!([get("unverified", false)])),
        start_test(&target, 1, 0.4, json!([get("verified", true)])),
    ]);
    // Without the certificate among the trusted roots: verification fails.
    let summary = run_script(&work, actions.clone());
    let unverified = count(&summary, "unverified");
    assert!(unverified > 0, "{summary}");
    assert_eq!(
        failures(&summary, "unverified"),
        0,
        "{:?}",
        errors_of(&summary, "unverified")
    );
    let verified = count(&summary, "verified");
    assert!(verified > 0, "{summary}");
    assert_eq!(failures(&summary, "verified"), verified);
    assert!(
        errors_of(&summary, "verified")
            .iter()
            .any(|e| e.starts_with(&format!("connect {target}")) && e.contains("certificate")),
        "{:?}",
        errors_of(&summary, "verified")
    );
    assert_eq!(server.count(|s| &s.gets), unverified);
    // Trusted through SSL_CERT_FILE (read by the system roots' loader): it succeeds.
    let ca = work.write("ca.pem", &cert);
    let file = work.write("tls.json", &script(actions));
    let summary_path = work.path("tls-summary.json");
    let output = common::bin()
        .env("SSL_CERT_FILE", &ca)
        .args(["run", file.to_str().expect("utf8"), "--summary-json"])
        .arg(&summary_path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run loaddensity");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary_path);
    assert!(count(&summary, "verified") > 0, "{summary}");
    assert_eq!(
        failures(&summary, "verified"),
        0,
        "{:?}",
        errors_of(&summary, "verified")
    );
}

#[test]
fn reflection_finds_the_service_and_its_imports() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let summary = run_script(
        &work,
        json!([start_test(
            &server.target(),
            2,
            0.8,
            json!([
                {"reflection": true, "method": "loadtest.store.Store/Get", "name": "get",
                 "payload": {"key": "fixed"}},
                // Entry's `tags` is defined in the imported types.proto.
                {"reflection": true, "method": "loadtest.store.Store/Put", "name": "put",
                 "payload": {"key": "r-${uuid()}", "value": "v", "version": 7,
                             "tags": {"labels": ["x"]}},
                 "metadata": {"x-token": "secret"}},
            ])
        )]),
    );
    for name in ["get", "put"] {
        assert!(count(&summary, name) > 0, "{summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(count(&summary, "get"), server.count(|s| &s.gets));
    assert_eq!(count(&summary, "put"), server.count(|s| &s.puts));
    // Errors: a service the server does not know; a server without reflection;
    // an unknown payload field, checked against the reflected types.
    let bare = GrpcServer::start_with(None, false);
    let cases = [
        (
            server.target(),
            json!([{"reflection": true, "method": "loadtest.store.Nope/Get"}]),
            "does not know service `loadtest.store.Nope`: symbol not found",
        ),
        (
            bare.target(),
            json!([{"reflection": true, "method": "loadtest.store.Store/Get"}]),
            "status UNIMPLEMENTED",
        ),
        (
            server.target(),
            json!([{"reflection": true, "method": "loadtest.store.Store/Get", "payload": {"kye": 1}}]),
            "unknown field `kye` in message type `loadtest.store.GetRequest`",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(target, tasks, _)| start_test(target, 1, 0.2, tasks.clone()))
        .collect();
    let file = work.write("bad-reflection.json", &script(Value::Array(actions)));
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    for (i, (_, _, needle)) in cases.iter().enumerate() {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("action[{i}]")))
            .unwrap_or_else(|| panic!("no error for action[{i}] in:\n{text}"));
        assert!(line.contains(needle), "{line}");
    }
}
