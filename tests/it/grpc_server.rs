//! The gRPC server of tests/grpc.rs: tonic's HTTP/2 server with hand-routed
//! services whose messages are `DynamicMessage`s of tests/data/grpc/store.proto
//! (compiled with protox, as the tool does; no protoc, no generated code),
//! carried by the tool's own `DynamicCodec`. It counts its calls, and answers
//! server reflection (grpc.reflection.v1) when asked to.
#![allow(unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use loaddensity::protocol::grpc::DynamicCodec;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as Field};
use tonic::server::{
    ClientStreamingService, NamedService, ServerStreamingService, StreamingService, UnaryService,
};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

const SERVICE: &str = "loadtest.store.Store";

pub fn proto_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpc/store.proto")
}

pub fn data_dir() -> String {
    format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"))
}

pub fn proto() -> String {
    proto_path().to_str().expect("utf8").to_string()
}

pub fn pool() -> DescriptorPool {
    compile(proto_path())
}

pub fn compile(path: PathBuf) -> DescriptorPool {
    let dir = path.parent().expect("dir").to_path_buf();
    let mut compiler = protox::Compiler::new([dir]).expect("compiler");
    compiler.include_imports(true);
    compiler.open_file(&path).expect("store.proto compiles");
    compiler.descriptor_pool()
}

pub fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(&format!("loadtest.store.{name}"))
        .expect("message type")
}

/// What the server saw.
#[derive(Default)]
pub struct State {
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub denied: AtomicU64,
    pub slows: AtomicU64,
    pub lists: AtomicU64,
    /// Upload calls, and the entries they sent.
    pub uploads: AtomicU64,
    pub uploaded: AtomicU64,
    /// Chat calls, and the entries they sent.
    pub chats: AtomicU64,
    pub chatted: AtomicU64,
    pub store: Mutex<HashMap<String, String>>,
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

pub fn entry(pool: &DescriptorPool, key: &str, value: &str) -> Bytes {
    let mut reply = DynamicMessage::new(message(pool, "Entry"));
    reply.set_field_by_name("key", Field::String(key.to_string()));
    reply.set_field_by_name("value", Field::String(value.to_string()));
    Bytes::from(reply.encode_to_vec())
}

pub fn text_field(message: &DynamicMessage, name: &str) -> String {
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

/// The client-streaming method: Upload stores every entry sent.
struct Upload {
    store: Store,
}

impl ClientStreamingService<DynamicMessage> for Upload {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Streaming<DynamicMessage>>) -> Self::Future {
        let store = self.store.clone();
        Box::pin(async move {
            store.state.uploads.fetch_add(1, Ordering::SeqCst);
            let mut stream = request.into_inner();
            let mut stored = 0;
            while let Some(entry) = stream.message().await? {
                store.state.uploaded.fetch_add(1, Ordering::SeqCst);
                store
                    .state
                    .store
                    .lock()
                    .expect("lock")
                    .insert(text_field(&entry, "key"), text_field(&entry, "value"));
                stored += 1;
            }
            let mut reply = DynamicMessage::new(message(&store.pool, "PutReply"));
            reply.set_field_by_name("stored", Field::I64(stored));
            Ok(Response::new(Bytes::from(reply.encode_to_vec())))
        })
    }
}

/// The bidirectional method: Chat answers each entry with itself.
struct Chat {
    store: Store,
}

type ChatStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, Status>> + Send>>;

impl StreamingService<DynamicMessage> for Chat {
    type Response = Bytes;
    type ResponseStream = ChatStream;
    type Future = BoxFuture<Result<Response<ChatStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<DynamicMessage>>) -> Self::Future {
        let store = self.store.clone();
        Box::pin(async move {
            store.state.chats.fetch_add(1, Ordering::SeqCst);
            let state = store.state.clone();
            let stream = request.into_inner();
            let replies = futures_util::StreamExt::map(stream, move |entry| {
                let entry = entry?;
                state.chatted.fetch_add(1, Ordering::SeqCst);
                Ok(Bytes::from(entry.encode_to_vec()))
            });
            Ok(Response::new(Box::pin(replies) as ChatStream))
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
                "Upload" | "Chat" => "Entry",
                _ => return Ok(Status::unimplemented(format!("no method {path}")).into_http()),
            };
            let codec = DynamicCodec::new(message(&store.pool, input));
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(if method == "List" {
                grpc.server_streaming(List { store }, request).await
            } else if method == "Upload" {
                grpc.client_streaming(Upload { store }, request).await
            } else if method == "Chat" {
                grpc.streaming(Chat { store }, request).await
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
pub struct GrpcServer {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    pub state: Arc<State>,
    pub pool: DescriptorPool,
}

impl GrpcServer {
    pub fn start() -> Self {
        Self::start_with(None, true)
    }

    /// With TLS when given `(certificate PEM, key PEM)`; with server reflection
    /// when `reflection`.
    pub fn start_with(tls: Option<(String, String)>, reflection: bool) -> Self {
        let (runtime, listener) = crate::common::loopback_server();
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

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn count(&self, counter: fn(&State) -> &AtomicU64) -> u64 {
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
